package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	boost "github.com/gamify/boost/sdk/go"
)

func send(args []string) error {
	fs := flag.NewFlagSet("send", flag.ExitOnError)
	url := fs.String("url", "", "Boost base URL (required)")
	key := fs.String("key", "", "secret key (required)")
	n := fs.Int("n", 1000, "events to send")
	rate := fs.Float64("rate", 0, "events per second; 0 = as fast as possible")
	out := fs.String("out", "", "file to write the records to (required)")
	run := fs.String("run", "", "run id put in every event's properties (default: time-based)")
	phase := fs.String("phase", "soak", "phase name put in every event's properties")
	batch := fs.Int("batch", 0, "Config.BatchSize (0 = SDK default)")
	attempts := fs.Int("max-attempts", 0, "Config.MaxAttempts (0 = SDK default)")
	maxDelay := fs.Duration("retry-max-delay", 0, "Config.RetryMaxDelay (0 = SDK default)")
	maxTime := fs.Duration("max-retry-time", 0, "Config.MaxRetryTime (0 = SDK default)")
	expect := fs.String("expect", "", "comma-separated failures that must have happened: net, 429, 503")
	timeout := fs.Duration("timeout", 4*time.Minute, "overall bound; Close gets what is left of it")
	fs.Parse(args)
	if *url == "" || *key == "" || *out == "" || *n <= 0 {
		return errors.New("-url, -key, -out and a positive -n are required")
	}
	if *run == "" {
		*run = fmt.Sprintf("go-%d", time.Now().UnixNano())
	}
	deadline := time.Now().Add(*timeout)

	var (
		mu        sync.Mutex
		byMsg     = make(map[string]*record, *n)
		lost      []error
		delivered atomic.Int64
		enqueued  atomic.Int64
	)
	tr := newWire(http.DefaultTransport.(*http.Transport).Clone())
	c, err := boost.New(boost.Config{
		APIKey:        *key,
		Endpoint:      *url,
		HTTPClient:    &http.Client{Transport: tr, Timeout: 30 * time.Second},
		BatchSize:     *batch,
		MaxAttempts:   *attempts,
		RetryMaxDelay: *maxDelay,
		MaxRetryTime:  *maxTime,
		MaxQueueSize:  max(*n, boost.DefaultMaxQueueSize),
		OnDelivered: func(ds []boost.Delivered) {
			mu.Lock()
			defer mu.Unlock()
			for _, d := range ds {
				r := byMsg[d.MessageID]
				if r == nil {
					lost = append(lost, fmt.Errorf("OnDelivered named an unknown messageId %s", d.MessageID))
					continue
				}
				if len(r.IDs) == 0 {
					delivered.Add(1)
				}
				if !slices.Contains(r.IDs, d.ID) {
					r.IDs = append(r.IDs, d.ID)
				}
			}
		},
		OnError: func(err error) {
			mu.Lock()
			defer mu.Unlock()
			lost = append(lost, err)
		},
	})
	if err != nil {
		return err
	}

	stopProgress := make(chan struct{})
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				fmt.Printf("progress enqueued=%d delivered=%d\n", enqueued.Load(), delivered.Load())
			case <-stopProgress:
				return
			}
		}
	}()

	ctx := context.Background()
	recs := make([]*record, 0, *n)
	start := time.Now()
	var trackErrs []error
	for i := 0; i < *n; i++ {
		if *rate > 0 {
			if d := time.Until(start.Add(time.Duration(float64(i) / *rate * float64(time.Second)))); d > 0 {
				time.Sleep(d)
			}
		}
		if time.Now().After(deadline) {
			trackErrs = append(trackErrs, fmt.Errorf("timeout: only %d of %d events queued", i, *n))
			break
		}
		r, call := buildEvent(c, *run, *phase, i)
		mu.Lock()
		byMsg[r.MessageID] = r
		mu.Unlock()
		recs = append(recs, r)
		if err := call(ctx); err != nil {
			trackErrs = append(trackErrs, fmt.Errorf("event %d (%s): %w", i, r.MessageID, err))
			continue
		}
		enqueued.Add(1)
	}

	closeCtx, cancel := context.WithDeadline(ctx, deadline)
	closeErr := c.Close(closeCtx)
	cancel()
	close(stopProgress)
	<-progressDone

	mu.Lock()
	defer mu.Unlock()
	if err := writeRecords(*out, recs); err != nil {
		return err
	}
	statuses, early := tr.snapshot()
	fmt.Printf("progress enqueued=%d delivered=%d\n", enqueued.Load(), delivered.Load())
	fmt.Printf("go sender: %d events in %v; enqueued %d, delivered %d, lost %d; requests by answer %v\n",
		*n, time.Since(start).Round(time.Millisecond), enqueued.Load(), delivered.Load(), len(lost), statuses)

	var problems []string
	for _, e := range trackErrs {
		problems = append(problems, e.Error())
	}
	if closeErr != nil {
		problems = append(problems, fmt.Sprintf("Close: %v", closeErr))
	}
	for i, e := range lost {
		if i == 5 {
			problems = append(problems, fmt.Sprintf("… and %d more OnError reports", len(lost)-5))
			break
		}
		problems = append(problems, fmt.Sprintf("OnError: %v", e))
	}
	if got := delivered.Load(); got != int64(*n) {
		problems = append(problems, fmt.Sprintf("%d of %d events were reported delivered", got, *n))
	}
	for _, r := range recs {
		if len(r.IDs) > 1 {
			problems = append(problems, fmt.Sprintf("messageId %s was given several ids: %v", r.MessageID, r.IDs))
		}
	}
	for _, e := range early {
		problems = append(problems, "Retry-After not honoured: "+e)
	}
	for _, want := range strings.Split(*expect, ",") {
		if want = strings.TrimSpace(want); want != "" && statuses[want] == 0 {
			problems = append(problems, fmt.Sprintf("expected at least one %q answer, saw %v: the fault was not injected while sending", want, statuses))
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "\n  "))
	}
	fmt.Printf("go sender: OK (%d events, every one delivered once, Retry-After honoured)\n", *n)
	return nil
}

// buildEvent makes the i-th event of a run (mostly tracks, some purchases
// and identifies, some anonymous) and the record of what the server should
// store for it.
func buildEvent(c *boost.Client, run, phase string, i int) (*record, func(context.Context) error) {
	mid := boost.NewMessageID()
	ts := time.Now().UTC().Truncate(time.Millisecond)
	user := fmt.Sprintf("soak-%s-u%d", run, i%17)
	base := map[string]any{"run": run, "phase": phase, "sdk": "go", "seq": i}
	r := &record{SDK: "go", MessageID: mid, UserID: user, Timestamp: ts.Format(time.RFC3339Nano)}
	var props map[string]any
	var call func(context.Context) error
	switch {
	case i%10 == 3:
		p := boost.Purchase{UserID: user, OrderID: fmt.Sprintf("%s-o%d", run, i), Amount: int64(100 + i), Currency: "eur",
			Properties: base, Timestamp: ts, MessageID: mid}
		r.Event = boost.EventPurchase
		props = map[string]any{"run": run, "phase": phase, "sdk": "go", "seq": i, "orderId": p.OrderID, "amount": p.Amount, "currency": "EUR"}
		call = func(ctx context.Context) error { return c.Purchase(ctx, p) }
	case i%25 == 7:
		id := boost.Identify{UserID: user, AnonymousID: fmt.Sprintf("soak-%s-anon%d", run, i), MessageID: mid, Timestamp: ts,
			Traits: map[string]any{"run": run, "seq": i, "plan": []string{"free", "pro"}[i%2]}}
		r.Event, r.AnonymousID = boost.EventIdentify, id.AnonymousID
		props = id.Traits
		call = func(ctx context.Context) error { return c.Identify(ctx, id) }
	default:
		props = base
		props["note"] = "événement ✓ <b>&</b>"
		props["nested"] = map[string]any{"list": []any{i, "x", true, nil}, "ratio": 0.5}
		e := boost.Event{Event: "soak_event", UserID: user, Properties: props, Timestamp: ts, MessageID: mid}
		if i%9 == 5 {
			e.UserID, r.UserID = "", ""
			e.AnonymousID = fmt.Sprintf("soak-%s-anon%d", run, i)
			r.AnonymousID = e.AnonymousID
		}
		r.Event = e.Event
		call = func(ctx context.Context) error { return c.Track(ctx, e) }
	}
	raw, err := json.Marshal(props)
	if err != nil {
		panic(err)
	}
	r.Properties = raw
	return r, call
}
