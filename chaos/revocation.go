package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// revocationLimit is how soon every API node must refuse a revoked key.
const revocationLimit = time.Second

// revocationResult is what the revocation probe measured.
type revocationResult struct {
	Err          string
	DeleteStatus int
	DeleteTook   time.Duration
	Timeout      time.Duration
	Probes       []probeResult
}

// probeResult is one API process's answers to the revoked key.
type probeResult struct {
	API string
	// RefusedAfter is from sending the DELETE to the first 401; -1 if the
	// key was still accepted when the probe timed out.
	RefusedAfter time.Duration
	// AcceptedAfterRefusal counts 2xx answers after the first 401.
	AcceptedAfterRefusal int
	// RefusedBefore counts 401s before the key was revoked.
	RefusedBefore int
	Accepted      int // probe events accepted (all of them are verified)
	Refused       int // probe events refused after the revocation
}

func (r *revocationResult) failures() []string {
	if r.Err != "" {
		return []string{"REVOCATION: " + r.Err}
	}
	var out []string
	if r.DeleteStatus != http.StatusOK && r.DeleteStatus != http.StatusAccepted {
		out = append(out, fmt.Sprintf("REVOCATION: DELETE answered %d", r.DeleteStatus))
	}
	for _, p := range r.Probes {
		switch {
		case p.RefusedAfter < 0:
			out = append(out, fmt.Sprintf("REVOCATION: %s still accepted the revoked key %s after the DELETE (limit %s)",
				p.API, fmtDuration(r.Timeout), fmtDuration(revocationLimit)))
		case p.RefusedAfter > revocationLimit:
			out = append(out, fmt.Sprintf("REVOCATION: %s took %s to refuse the revoked key (limit %s)",
				p.API, fmtDuration(p.RefusedAfter), fmtDuration(revocationLimit)))
		}
		if p.AcceptedAfterRefusal > 0 {
			out = append(out, fmt.Sprintf("REVOCATION: %s accepted the revoked key %d times after refusing it",
				p.API, p.AcceptedAfterRefusal))
		}
		if p.RefusedBefore > 0 {
			out = append(out, fmt.Sprintf("REVOCATION: %s refused the key %d times before it was revoked", p.API, p.RefusedBefore))
		}
	}
	return out
}

// measureRevocation creates a key, sends events with it to every API
// process, revokes it at revokeAt and times how long each process keeps
// accepting it.
func (r *scenarioRun) measureRevocation(ctx context.Context, revokeAt time.Time) *revocationResult {
	res := &revocationResult{Timeout: r.plan.RevocationTimeout}
	adm := r.admin()
	key, err := adm.createKey(ctx, r.tenant.ProjectID, "chaos revocable", "publishable")
	if err != nil {
		res.Err = err.Error()
		return res
	}
	var revokedAt atomic.Int64 // Unix nanoseconds; 0 until the DELETE is sent
	probes := make([]probeResult, len(r.stack.apiURLs))
	var wg sync.WaitGroup
	for i, base := range r.stack.apiURLs {
		p := &prober{base: base, key: key.Plaintext, ledger: r.ledger, client: newHTTPClient(), revokedAt: &revokedAt,
			gen:     newGenerator(r.seed, 0x7e0+uint64(i), fmt.Sprintf("chaos-%s-%s-probe%d", r.env.runID, r.sc.Name, i+1)),
			timeout: r.plan.RevocationTimeout}
		wg.Go(func() { probes[i] = p.run(ctx, fmt.Sprintf("api-%d", i+1)) })
	}
	if sleepUntil(ctx, revokeAt) {
		t0 := time.Now()
		revokedAt.Store(t0.UnixNano())
		r.log.Info("revoking the probed key")
		res.DeleteStatus, err = adm.revokeKey(ctx, r.tenant.ProjectID, key.ID)
		res.DeleteTook = time.Since(t0)
		if err != nil {
			res.Err = err.Error()
		}
	}
	wg.Wait()
	res.Probes = probes
	return res
}

// prober sends one event at a time with the key to one API process.
type prober struct {
	base      string
	key       string
	gen       *generator
	ledger    *ledger
	client    *http.Client
	revokedAt *atomic.Int64
	timeout   time.Duration
}

// confirmRefusal is how long a probe keeps sending after the first 401,
// to catch a node that accepts the key again.
const confirmRefusal = time.Second

func (p *prober) run(ctx context.Context, name string) probeResult {
	res := probeResult{API: name, RefusedAfter: -1}
	var refusedAt time.Time
	for ctx.Err() == nil {
		if t0 := p.revokedAt.Load(); t0 != 0 && time.Since(time.Unix(0, t0)) > p.timeout {
			break
		}
		if !refusedAt.IsZero() && time.Since(refusedAt) > confirmRefusal {
			break
		}
		o := p.gen.behavioural()
		p.ledger.offer([]offer{o})
		status, id := p.send(ctx, o)
		t0 := p.revokedAt.Load()
		switch {
		case status == http.StatusAccepted && id != "":
			p.ledger.accept(o.MessageID, id)
			res.Accepted++
			if !refusedAt.IsZero() {
				res.AcceptedAfterRefusal++
			}
		case status == http.StatusUnauthorized && t0 == 0:
			res.RefusedBefore++
			p.ledger.refuse(o.MessageID, "401 before the key was revoked")
		case status == http.StatusUnauthorized:
			res.Refused++
			if refusedAt.IsZero() {
				refusedAt = time.Now()
				res.RefusedAfter = refusedAt.Sub(time.Unix(0, t0))
			}
		}
		sleepUntil(ctx, time.Now().Add(20*time.Millisecond))
	}
	return res
}

// send tracks one event; status 0 means no answer.
func (p *prober) send(ctx context.Context, o offer) (int, string) {
	body, _ := json.Marshal(toWire(o))
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.base+pathTrack, bytes.NewReader(body))
	if err != nil {
		return 0, ""
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Api-Key", p.key)
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	var a struct {
		ID string `json:"id"`
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	_ = json.Unmarshal(b, &a)
	return resp.StatusCode, a.ID
}

func newHTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8, IdleConnTimeout: 30 * time.Second}}
}
