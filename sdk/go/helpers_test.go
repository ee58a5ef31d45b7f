package boost

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// recorder collects what the client reports, and stands in for sleeping:
// retries record the delay they would wait and go on at once, so tests
// check the backoff and Retry-After logic without waiting for it.
type recorder struct {
	mu        sync.Mutex
	errs      []error
	delivered []Delivered
	sleeps    []time.Duration
}

func (r *recorder) onError(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, err)
}

func (r *recorder) onDelivered(d []Delivered) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.delivered = append(r.delivered, d...)
}

func (r *recorder) sleep(ctx context.Context, d time.Duration) error {
	r.mu.Lock()
	r.sleeps = append(r.sleeps, d)
	r.mu.Unlock()
	return context.Cause(ctx)
}

func (r *recorder) errors() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]error(nil), r.errs...)
}

func (r *recorder) deliveries() []Delivered {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Delivered(nil), r.delivered...)
}

func (r *recorder) delays() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Duration(nil), r.sleeps...)
}

// newTestClient returns a client of f whose timer-driven flushes are off
// (FlushInterval 1h) unless mutate turns them on, with the recorder as
// OnError, OnDelivered and sleep. The client is closed at the end of the
// test.
func newTestClient(t *testing.T, f *fakeServer, mutate func(*Config), h hooks) (*Client, *recorder) {
	t.Helper()
	rec := &recorder{}
	cfg := Config{
		APIKey:        testKey,
		Endpoint:      f.URL(),
		FlushInterval: time.Hour,
		OnError:       rec.onError,
		OnDelivered:   rec.onDelivered,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	if h.sleep == nil {
		h.sleep = rec.sleep
	}
	c, err := newClient(cfg, h)
	if err != nil {
		t.Fatalf("newClient: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.Close(ctx); err != nil && !errors.Is(err, ErrClosed) {
			t.Logf("closing client: %v", err)
		}
	})
	return c, rec
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// track queues n simple events for user u and returns their messageIds.
func track(t *testing.T, c *Client, n int, props func(i int) map[string]any) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = NewMessageID()
		var p map[string]any
		if props != nil {
			p = props(i)
		}
		if err := c.Track(context.Background(), Event{Event: "page_view", UserID: "u1", Properties: p, MessageID: ids[i]}); err != nil {
			t.Fatalf("Track %d: %v", i, err)
		}
	}
	return ids
}

func batchSizes(reqs []fakeRequest) []int {
	var sizes []int
	for _, r := range reqs {
		sizes = append(sizes, len(r.MessageIDs))
	}
	return sizes
}
