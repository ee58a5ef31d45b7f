package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gamify/boost/internal/retry"
)

// loadConfig is the steady load one scenario puts on the API.
type loadConfig struct {
	Targets     []string // API base URLs; a request's attempts rotate over them
	Publishable string   // plaintext keys, never printed
	Secret      string
	Rate        float64 // events per second, all workers together
	Workers     int
	Duration    time.Duration
	// RetryFor is how long after the load ends a request not yet accepted
	// keeps being retried before the client gives up on it.
	RetryFor time.Duration
	Seed     uint64
	// Prefix makes messageIds unique to the run and scenario.
	Prefix string
}

// loadStats counts what the API answered.
type loadStats struct {
	Requests  atomic.Int64 // requests made (a retry is the same request)
	Attempts  atomic.Int64 // HTTP attempts
	Status5xx atomic.Int64
	Status429 atomic.Int64
	Status4xx atomic.Int64 // other 4xx answers, and items a batch rejected
	NetErrors atomic.Int64 // no answer, or an answer that could not be read
	GaveUp    atomic.Int64 // events still unaccepted when retries stopped
}

// loader sends the load SDK-style: every event has a messageId; on a
// network error, a 5xx or a 429 the same request is sent again (same
// messageIds) with backoff, honouring Retry-After, until it is accepted.
type loader struct {
	cfg    loadConfig
	ledger *ledger
	stats  *loadStats
	client *http.Client
}

func newLoader(cfg loadConfig, l *ledger) *loader {
	tr := &http.Transport{MaxIdleConnsPerHost: 4 * max(cfg.Workers, 1), IdleConnTimeout: 30 * time.Second}
	return &loader{cfg: cfg, ledger: l, stats: &loadStats{}, client: &http.Client{Transport: tr}}
}

// run loads until the duration ends and every request is accepted or
// given up; it returns when all workers are done.
func (l *loader) run(ctx context.Context) {
	start := time.Now()
	var wg sync.WaitGroup
	for w := range max(l.cfg.Workers, 1) {
		wg.Go(func() { l.worker(ctx, w, start) })
	}
	wg.Wait()
}

func (l *loader) worker(ctx context.Context, w int, start time.Time) {
	gen := newGenerator(l.cfg.Seed, uint64(w)+1, fmt.Sprintf("%s-w%d", l.cfg.Prefix, w))
	perWorker := l.cfg.Rate / float64(max(l.cfg.Workers, 1))
	end := start.Add(l.cfg.Duration)
	giveUp := end.Add(l.cfg.RetryFor)
	next := time.Now()
	for n := 0; ctx.Err() == nil && time.Now().Before(end); n++ {
		req := gen.request(l.cfg.Publishable, l.cfg.Secret)
		l.ledger.offer(req.Events)
		l.deliver(ctx, req, giveUp, w+n)
		next = next.Add(time.Duration(float64(len(req.Events)) / perWorker * float64(time.Second)))
		if now := time.Now(); next.Before(now) {
			next = now // behind after an outage: carry on, do not burst
		}
		if !sleepUntil(ctx, minTime(next, end)) {
			return
		}
	}
}

// request is one HTTP request of the load.
type request struct {
	Path   string // /v1/events/track or /v1/events/batch
	Key    string
	Events []offer
}

// outcome is what one attempt came to.
type outcome int

const (
	outcomeRetry outcome = iota
	outcomeAccepted
	outcomeRefused
)

// deliver sends req until it is accepted, refused, or giveUp passes.
func (l *loader) deliver(ctx context.Context, req request, giveUp time.Time, rotate int) {
	l.stats.Requests.Add(1)
	for attempt := 0; ; attempt++ {
		target := l.cfg.Targets[(rotate+attempt)%len(l.cfg.Targets)]
		res, retryAfter := l.attempt(ctx, target, req)
		if res != outcomeRetry {
			return
		}
		if ctx.Err() != nil || time.Now().After(giveUp) {
			l.stats.GaveUp.Add(int64(len(req.Events)))
			return
		}
		if !sleepUntil(ctx, time.Now().Add(backoffFor(attempt, retryAfter))) {
			l.stats.GaveUp.Add(int64(len(req.Events)))
			return
		}
	}
}

// attempt makes one HTTP attempt and records its answer.
func (l *loader) attempt(ctx context.Context, base string, req request) (outcome, time.Duration) {
	l.stats.Attempts.Add(1)
	actx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	body, err := encodeRequest(req, time.Now())
	var hreq *http.Request
	if err == nil {
		hreq, err = http.NewRequestWithContext(actx, http.MethodPost, base+req.Path, bytes.NewReader(body))
	}
	if err != nil {
		// Not the server's doing, but never silently dropped either.
		for _, e := range req.Events {
			l.ledger.refuse(e.MessageID, "the suite could not build the request: "+err.Error())
		}
		return outcomeRefused, 0
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("X-Api-Key", req.Key)
	resp, err := l.client.Do(hreq)
	if err != nil {
		l.stats.NetErrors.Add(1)
		return outcomeRetry, 0
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	switch {
	case err != nil:
		l.stats.NetErrors.Add(1)
		return outcomeRetry, 0
	case resp.StatusCode == http.StatusTooManyRequests:
		l.stats.Status429.Add(1)
		return outcomeRetry, parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	case resp.StatusCode >= 500:
		l.stats.Status5xx.Add(1)
		return outcomeRetry, parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	case resp.StatusCode >= 400:
		l.stats.Status4xx.Add(1)
		reason := fmt.Sprintf("%d %s", resp.StatusCode, truncate(string(answer), 200))
		for _, e := range req.Events {
			l.ledger.refuse(e.MessageID, reason)
		}
		return outcomeRefused, 0
	case resp.StatusCode/100 == 2:
		if err := l.record(req, answer); err != nil {
			l.stats.NetErrors.Add(1)
			return outcomeRetry, 0
		}
		return outcomeAccepted, 0
	default:
		l.stats.NetErrors.Add(1)
		return outcomeRetry, 0
	}
}

// record reads a 2xx answer into the ledger.
func (l *loader) record(req request, answer []byte) error {
	if req.Path == pathTrack {
		var a struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(answer, &a); err != nil || a.ID == "" {
			return fmt.Errorf("unreadable track answer %q", truncate(string(answer), 100))
		}
		l.ledger.accept(req.Events[0].MessageID, a.ID)
		return nil
	}
	var a struct {
		Accepted []struct {
			Index int    `json:"index"`
			ID    string `json:"id"`
		} `json:"accepted"`
		Rejected []struct {
			Index   int    `json:"index"`
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"rejected"`
	}
	if err := json.Unmarshal(answer, &a); err != nil {
		return fmt.Errorf("unreadable batch answer: %w", err)
	}
	for _, it := range a.Accepted {
		if it.Index >= 0 && it.Index < len(req.Events) && it.ID != "" {
			l.ledger.accept(req.Events[it.Index].MessageID, it.ID)
		}
	}
	for _, it := range a.Rejected {
		if it.Index >= 0 && it.Index < len(req.Events) {
			l.stats.Status4xx.Add(1)
			l.ledger.refuse(req.Events[it.Index].MessageID, "rejected in batch: "+it.Code+" "+it.Message)
		}
	}
	return nil
}

const (
	pathTrack = "/v1/events/track"
	pathBatch = "/v1/events/batch"
)

// wireEvent is an event as the SDKs send it.
type wireEvent struct {
	Event       string         `json:"event"`
	UserID      string         `json:"userId,omitempty"`
	AnonymousID string         `json:"anonymousId,omitempty"`
	Properties  map[string]any `json:"properties,omitempty"`
	Timestamp   string         `json:"timestamp"`
	MessageID   string         `json:"messageId"`
}

func toWire(o offer) wireEvent {
	w := wireEvent{Event: o.Event, UserID: o.UserID, AnonymousID: o.AnonymousID,
		Timestamp: o.Timestamp.UTC().Format(time.RFC3339Nano), MessageID: o.MessageID}
	if o.Currency != "" {
		w.Properties = map[string]any{"orderId": "order-" + o.MessageID, "amount": o.Amount, "currency": o.Currency}
	} else {
		w.Properties = map[string]any{"path": "/chaos/" + o.Event}
	}
	return w
}

// encodeRequest is the body of one attempt; a batch carries sentAt, the
// attempt's time, as the SDKs do.
func encodeRequest(req request, now time.Time) ([]byte, error) {
	if req.Path == pathTrack {
		return json.Marshal(toWire(req.Events[0]))
	}
	batch := make([]wireEvent, len(req.Events))
	for i, e := range req.Events {
		batch[i] = toWire(e)
	}
	return json.Marshal(map[string]any{"batch": batch, "sentAt": now.UTC().Format(time.RFC3339Nano)})
}

// parseRetryAfter reads a Retry-After header (seconds or an HTTP date);
// 0 when absent or unreadable.
func parseRetryAfter(h string, now time.Time) time.Duration {
	if h == "" {
		return 0
	}
	if s, err := strconv.Atoi(h); err == nil {
		if s < 0 {
			return 0
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// backoffFor is the wait before retry attempt+1: exponential from 100 ms
// to 2 s with ±50 % jitter, or Retry-After (at most 10 s) when longer.
func backoffFor(attempt int, retryAfter time.Duration) time.Duration {
	base := min(100*time.Millisecond<<min(attempt, 5), 2*time.Second)
	d := time.Duration(float64(base) * (0.5 + rand.Float64()))
	return max(d, min(retryAfter, 10*time.Second))
}

func sleepUntil(ctx context.Context, t time.Time) bool {
	if d := time.Until(t); d > 0 {
		return retry.Sleep(ctx, d)
	}
	return ctx.Err() == nil
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
