package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"
)

func verify(args []string) error {
	fs := flag.NewFlagSet("verify", flag.ExitOnError)
	url := fs.String("url", "", "Boost base URL (required)")
	key := fs.String("key", "", "secret key, for -resend")
	project := fs.String("project", "", "project id (required)")
	admin := fs.String("admin", "", "admin token (required)")
	resend := fs.Bool("resend", false, "resend every record with its messageId and require the same ids")
	timeout := fs.Duration("timeout", time.Minute, "how long events may take to read back as wanted (then the resend gets as long)")
	workers := fs.Int("workers", 8, "concurrent reads")
	want := fs.String("want", "processed", "what each event must reach: stored (read back exactly, any status but failed) or processed (also status processed)")
	fs.Parse(args)
	if *want != "stored" && *want != "processed" {
		return fmt.Errorf("-want must be stored or processed, not %q", *want)
	}
	if *url == "" || *project == "" || *admin == "" || fs.NArg() == 0 || (*resend && *key == "") {
		return errors.New("-url, -project, -admin (and -key with -resend) and at least one records file are required")
	}
	base := strings.TrimRight(*url, "/")

	var recs []*record
	for _, path := range fs.Args() {
		rs, err := readRecords(path)
		if err != nil {
			return err
		}
		if len(rs) == 0 {
			return fmt.Errorf("%s holds no records", path)
		}
		recs = append(recs, rs...)
	}

	var problems []string
	fail := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	byID := map[string]*record{}
	var readable []*record
	for _, r := range recs {
		switch len(r.IDs) {
		case 0:
			fail("%s %s %s: no server id was reported (never accepted?)", r.SDK, r.Event, r.MessageID)
			continue
		case 1:
		default:
			fail("%s %s %s: several server ids %v", r.SDK, r.Event, r.MessageID, r.IDs)
			continue
		}
		if r.IDs[0] == "" {
			fail("%s %s %s: accepted without an id", r.SDK, r.Event, r.MessageID)
			continue
		}
		if o := byID[r.IDs[0]]; o != nil {
			fail("messageIds %s and %s were both given id %s", o.MessageID, r.MessageID, r.IDs[0])
			continue
		}
		byID[r.IDs[0]] = r
		readable = append(readable, r)
	}

	// Read every event back: all of them each round, until each is
	// settled, so that a few stuck events cannot hold the others up.
	client := &http.Client{Timeout: 10 * time.Second}
	var stuck []string
	readOK, stuckCount := readAll(time.Now().Add(*timeout), client, base, *project, *admin, *want, *workers, readable, &problems, &stuck)
	resent := 0
	if *resend && len(problems) == 0 {
		ctx, cancel := context.WithTimeout(context.Background(), *timeout)
		n, err := resendAll(ctx, client, base, *key, readable)
		cancel()
		resent = n
		if err != nil {
			fail("resend: %v", err)
		}
	}

	fmt.Printf("verify: %d records; %d with one distinct id; %d read back exactly (%s); %d resent with the same ids\n",
		len(recs), len(readable), readOK, map[string]string{"stored": "any status", "processed": "status processed"}[*want], resent)
	if stuckCount > 0 {
		fmt.Printf("verify: %d event(s) stored exactly but still pending when the time ran out, e.g. %s\n", stuckCount, strings.Join(stuck, ", "))
	}
	if len(problems) > 0 {
		if len(problems) > 20 {
			problems = append(problems[:20], fmt.Sprintf("… and %d more", len(problems)-20))
		}
		return fmt.Errorf("%d problem(s):\n  %s", len(problems), strings.Join(problems, "\n  "))
	}
	fmt.Println("verify: OK")
	return nil
}

// readAll reads the records back in rounds until each is settled or the
// deadline has passed (a round is never cut short). It returns how many were read back as wanted and how many were
// stored exactly but still pending at the end (want processed only); it
// appends a problem for each other record.
func readAll(deadline time.Time, client *http.Client, base, project, admin, want string, workers int,
	recs []*record, problems *[]string, stuck *[]string) (ok, pending int) {
	left := recs
	for round := 0; len(left) > 0; round++ {
		results := make([]readResult, len(left))
		var wg sync.WaitGroup
		next := make(chan int)
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range next {
					results[i] = readOnce(client, base, project, admin, want, left[i])
				}
			}()
		}
		for i := range left {
			next <- i
		}
		close(next)
		wg.Wait()

		var again []*record
		var lasts []readResult
		for _, res := range results {
			switch {
			case res.done && res.problem == "":
				ok++
			case res.done:
				*problems = append(*problems, res.problem)
			default:
				again = append(again, res.r)
				lasts = append(lasts, res)
			}
		}
		left = again
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			for _, res := range lasts {
				what := fmt.Sprintf("%s %s %s (id %s)", res.r.SDK, res.r.Event, res.r.MessageID, res.r.IDs[0])
				if res.stored {
					pending++
					if len(*stuck) < 5 {
						*stuck = append(*stuck, what)
					}
					*problems = append(*problems, fmt.Sprintf("read: %s: stored exactly but still pending", what))
				} else {
					*problems = append(*problems, fmt.Sprintf("read: %s: not read back in time; last answer: %s", what, res.last))
				}
			}
			return ok, pending
		}
		time.Sleep(250 * time.Millisecond)
	}
	return ok, pending
}

// readResult is what one GET said about a record.
type readResult struct {
	r       *record
	done    bool   // settled: satisfied, or a problem that waiting will not fix
	problem string // when done and not satisfied
	last    string // the last answer, for the deadline message
	stored  bool   // read back exactly, status pending
}

// readOnce makes one GET for r.
func readOnce(client *http.Client, base, project, admin, want string, r *record) (res readResult) {
	res.r = r
	id := r.IDs[0]
	url := fmt.Sprintf("%s/v1/projects/%s/events/%s", base, project, id)
	what := fmt.Sprintf("read: %s %s %s (id %s)", r.SDK, r.Event, r.MessageID, id)
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+admin)
	resp, err := client.Do(req)
	if err != nil {
		res.last = err.Error()
		return res
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	res.last = fmt.Sprintf("%d %s", resp.StatusCode, bytes.TrimSpace(body))
	if resp.StatusCode != http.StatusOK {
		return res // 404 until the read model has it
	}
	var ev storedEvent
	if err := json.Unmarshal(body, &ev); err != nil {
		res.done, res.problem = true, fmt.Sprintf("%s: undecodable answer %s", what, body)
		return res
	}
	if msg := compare(what, r, &ev); msg != "" {
		res.done, res.problem = true, msg
		return res
	}
	switch {
	case ev.Status == "failed":
		res.done, res.problem = true, fmt.Sprintf("%s: status failed: %s", what, body)
	case ev.Status == "processed" || want == "stored":
		res.done = true
	default:
		res.stored = true // pending: the processor has not recorded its outcome yet
	}
	return res
}

type storedEvent struct {
	ID          string          `json:"id"`
	Event       string          `json:"event"`
	UserID      *string         `json:"userId"`
	AnonymousID *string         `json:"anonymousId"`
	MessageID   *string         `json:"messageId"`
	Properties  json.RawMessage `json:"properties"`
	Status      string          `json:"status"`
}

func compare(what string, r *record, ev *storedEvent) string {
	var diffs []string
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	if ev.ID != r.IDs[0] {
		diffs = append(diffs, fmt.Sprintf("id %q", ev.ID))
	}
	if ev.Event != r.Event {
		diffs = append(diffs, fmt.Sprintf("event %q", ev.Event))
	}
	if str(ev.UserID) != r.UserID {
		diffs = append(diffs, fmt.Sprintf("userId %q, sent %q", str(ev.UserID), r.UserID))
	}
	if r.AnonymousID != "" && str(ev.AnonymousID) != r.AnonymousID {
		diffs = append(diffs, fmt.Sprintf("anonymousId %q, sent %q", str(ev.AnonymousID), r.AnonymousID))
	}
	if ev.MessageID != nil && *ev.MessageID != r.MessageID {
		diffs = append(diffs, fmt.Sprintf("messageId %q", *ev.MessageID))
	}
	if !sameJSON(ev.Properties, r.Properties) {
		diffs = append(diffs, fmt.Sprintf("properties %s, sent %s", ev.Properties, r.Properties))
	}
	if len(diffs) == 0 {
		return ""
	}
	return what + ": stored " + strings.Join(diffs, "; ")
}

// sameJSON compares JSON values, so key order and number spelling do not
// matter.
func sameJSON(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

// resendAll posts every record again, with its messageId, and requires the
// server to answer with the id it gave the first time.
func resendAll(ctx context.Context, client *http.Client, base, key string, recs []*record) (int, error) {
	done := 0
	for start := 0; start < len(recs); start += 500 {
		chunk := recs[start:min(start+500, len(recs))]
		items := make([]map[string]any, len(chunk))
		for i, r := range chunk {
			it := map[string]any{"event": r.Event, "messageId": r.MessageID, "timestamp": r.Timestamp, "properties": r.Properties}
			if r.UserID != "" {
				it["userId"] = r.UserID
			}
			if r.AnonymousID != "" {
				it["anonymousId"] = r.AnonymousID
			}
			items[i] = it
		}
		body, err := json.Marshal(map[string]any{"batch": items, "sentAt": time.Now().UTC().Format(time.RFC3339Nano)})
		if err != nil {
			return done, err
		}
		var ans struct {
			Accepted []struct {
				Index int    `json:"index"`
				ID    string `json:"id"`
			} `json:"accepted"`
			Rejected []json.RawMessage `json:"rejected"`
		}
		for attempt := 1; ; attempt++ {
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/events/batch", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("x-api-key", key)
			resp, err := client.Do(req)
			if err != nil {
				return done, err
			}
			data, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
			resp.Body.Close()
			if (resp.StatusCode == 429 || resp.StatusCode == 503) && attempt < 10 {
				secs, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
				select {
				case <-ctx.Done():
					return done, ctx.Err()
				case <-time.After(time.Duration(max(secs, 1)) * time.Second):
				}
				continue
			}
			if resp.StatusCode != http.StatusAccepted {
				return done, fmt.Errorf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(data))
			}
			if err := json.Unmarshal(data, &ans); err != nil {
				return done, fmt.Errorf("undecodable answer: %s", data)
			}
			break
		}
		if len(ans.Rejected) > 0 || len(ans.Accepted) != len(chunk) {
			return done, fmt.Errorf("resent %d, accepted %d, rejected %d", len(chunk), len(ans.Accepted), len(ans.Rejected))
		}
		for _, a := range ans.Accepted {
			if a.Index < 0 || a.Index >= len(chunk) {
				return done, fmt.Errorf("answer names index %d of %d", a.Index, len(chunk))
			}
			if r := chunk[a.Index]; a.ID != r.IDs[0] {
				return done, fmt.Errorf("messageId %s resent got id %s, first %s: stored twice", r.MessageID, a.ID, r.IDs[0])
			}
			done++
		}
	}
	return done, nil
}
