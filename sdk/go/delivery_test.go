package boost

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// failFirst answers the first len(replies) requests with the given
// replies and lets the rest through to the real handler.
func failFirst(replies ...func(w http.ResponseWriter)) func(int, http.ResponseWriter, *http.Request) bool {
	return func(n int, w http.ResponseWriter, r *http.Request) bool {
		if n < len(replies) {
			replies[n](w)
			return true
		}
		return false
	}
}

func TestRetriesTransientFailures(t *testing.T) {
	base := DefaultRetryBaseDelay
	tests := []struct {
		name    string
		replies []func(w http.ResponseWriter)
		// check validates each recorded wait.
		check func(t *testing.T, delays []time.Duration)
	}{
		{
			name:    "503 with Retry-After",
			replies: []func(http.ResponseWriter){retryAfterReply(503, "1")},
			check:   exactDelays(time.Second),
		},
		{
			name:    "429 with Retry-After",
			replies: []func(http.ResponseWriter){retryAfterReply(429, "2")},
			check:   exactDelays(2 * time.Second),
		},
		{
			name:    "429 with Retry-After 0",
			replies: []func(http.ResponseWriter){retryAfterReply(429, "0")},
			check:   exactDelays(0),
		},
		{
			name:    "500 without Retry-After backs off with jitter",
			replies: []func(http.ResponseWriter){retryAfterReply(500, ""), retryAfterReply(502, ""), retryAfterReply(504, "")},
			check: func(t *testing.T, delays []time.Duration) {
				if len(delays) != 3 {
					t.Fatalf("waited %d times, want 3", len(delays))
				}
				for i, d := range delays {
					if limit := base << i; d < 0 || d > limit {
						t.Errorf("wait %d = %v, want within [0, %v]", i+1, d, limit)
					}
				}
			},
		},
		{
			name:    "408 and a mix",
			replies: []func(http.ResponseWriter){retryAfterReply(408, ""), retryAfterReply(503, "3")},
			check: func(t *testing.T, delays []time.Duration) {
				if len(delays) != 2 || delays[0] > base || delays[1] != 3*time.Second {
					t.Errorf("waits = %v, want [≤%v 3s]", delays, base)
				}
			},
		},
		{
			name: "unreadable success is retried",
			replies: []func(http.ResponseWriter){func(w http.ResponseWriter) {
				w.Header().Set("Content-Length", "100")
				w.WriteHeader(http.StatusAccepted)
				w.Write([]byte(`{"status":`)) // connection cut mid-answer
			}},
			check: func(t *testing.T, delays []time.Duration) {
				if len(delays) != 1 {
					t.Errorf("waits = %v, want one", delays)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeServer(t)
			f.intercept = failFirst(tt.replies...)
			c, rec := newTestClient(t, f, nil, hooks{})
			ids := track(t, c, 3, func(i int) map[string]any { return map[string]any{"i": i} })
			if err := c.Flush(testCtx(t)); err != nil {
				t.Fatalf("Flush: %v", err)
			}
			reqs := f.reqs()
			if len(reqs) != len(tt.replies)+1 {
				t.Fatalf("%d requests, want %d", len(reqs), len(tt.replies)+1)
			}
			// Every attempt resends the same events, byte for byte: same
			// messageIds (so the server dedupes) and same timestamps.
			for i, r := range reqs {
				if !slices.Equal(r.MessageIDs, ids) {
					t.Errorf("attempt %d sent %v, want %v", i+1, r.MessageIDs, ids)
				}
				for j, it := range r.Items {
					if it.Timestamp != reqs[0].Items[j].Timestamp {
						t.Errorf("attempt %d changed the timestamp of item %d", i+1, j)
					}
				}
			}
			if f.stored() != 3 {
				t.Errorf("stored %d events, want 3", f.stored())
			}
			tt.check(t, rec.delays())
			if errs := rec.errors(); len(errs) != 0 {
				t.Errorf("errors: %v", errs)
			}
		})
	}
}

func exactDelays(want ...time.Duration) func(*testing.T, []time.Duration) {
	return func(t *testing.T, got []time.Duration) {
		t.Helper()
		if !slices.Equal(got, want) {
			t.Errorf("waits = %v, want %v (Retry-After honoured)", got, want)
		}
	}
}

func TestRetryAfterConnectionError(t *testing.T) {
	f := newFakeServer(t)
	addr := strings.TrimPrefix(f.URL(), "http://")
	var failures atomic.Int32
	sawFailures := make(chan struct{})
	reopened := make(chan struct{})
	var once sync.Once
	sleep := func(ctx context.Context, d time.Duration) error {
		// Called after each failed attempt: after the second, let the
		// test bring the server back, and wait for it.
		if failures.Add(1) == 2 {
			once.Do(func() { close(sawFailures) })
			<-reopened
		}
		return nil
	}
	c, rec := newTestClient(t, f, func(cfg *Config) { cfg.MaxAttempts = 10 }, hooks{sleep: sleep})

	f.closeServer()
	ids := track(t, c, 4, nil)
	flushed := make(chan error, 1)
	go func() { flushed <- c.Flush(context.Background()) }()
	<-sawFailures
	f.reopen(addr)
	close(reopened)

	if err := <-flushed; err != nil {
		t.Fatalf("Flush: %v", err)
	}
	reqs := f.reqs()
	if len(reqs) != 1 || !slices.Equal(reqs[0].MessageIDs, ids) {
		t.Errorf("requests after reopening = %v, want one with %v", batchSizes(reqs), ids)
	}
	if got := failures.Load(); got != 2 {
		t.Errorf("%d failed attempts, want 2", got)
	}
	if errs := rec.errors(); len(errs) != 0 {
		t.Errorf("errors: %v", errs)
	}
}

func TestRetriesGiveUp(t *testing.T) {
	always := func(status int, retryAfter string) func(int, http.ResponseWriter, *http.Request) bool {
		return func(n int, w http.ResponseWriter, r *http.Request) bool {
			retryAfterReply(status, retryAfter)(w)
			return true
		}
	}
	tests := []struct {
		name         string
		cfg          func(*Config)
		intercept    func(int, http.ResponseWriter, *http.Request) bool
		wantRequests int
		wantWaits    int
		wantStatus   int
	}{
		{name: "after MaxAttempts", cfg: func(cfg *Config) { cfg.MaxAttempts = 3 },
			intercept: always(503, "0"), wantRequests: 3, wantWaits: 2, wantStatus: 503},
		{name: "default MaxAttempts", intercept: always(500, ""),
			wantRequests: DefaultMaxAttempts, wantWaits: DefaultMaxAttempts - 1, wantStatus: 500},
		{name: "when Retry-After passes MaxRetryTime", cfg: func(cfg *Config) { cfg.MaxRetryTime = 30 * time.Second },
			intercept: always(429, "120"), wantRequests: 1, wantWaits: 0, wantStatus: 429},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeServer(t)
			f.intercept = tt.intercept
			c, rec := newTestClient(t, f, tt.cfg, hooks{})
			ids := track(t, c, 2, nil)
			err := c.Flush(testCtx(t))
			var ferr *FlushError
			if !errors.As(err, &ferr) || ferr.Failed != 2 {
				t.Fatalf("Flush = %v, want a *FlushError for 2 events", err)
			}
			var derr *DeliveryError
			if !errors.As(err, &derr) || !slices.Equal(derr.MessageIDs, ids) || derr.Attempts != tt.wantRequests {
				t.Errorf("delivery error = %+v, want messageIds %v after %d attempts", derr, ids, tt.wantRequests)
			}
			var apiErr *APIError
			if !errors.As(err, &apiErr) || apiErr.Status != tt.wantStatus {
				t.Errorf("API error = %+v, want status %d", apiErr, tt.wantStatus)
			}
			if n := len(f.reqs()); n != tt.wantRequests {
				t.Errorf("%d requests, want %d", n, tt.wantRequests)
			}
			if n := len(rec.delays()); n != tt.wantWaits {
				t.Errorf("%d waits, want %d", n, tt.wantWaits)
			}
			if errs := rec.errors(); len(errs) != 1 || !slices.Equal(MessageIDs(errs[0]), ids) {
				t.Errorf("OnError got %v, want one error naming %v", errs, ids)
			}
		})
	}
}

func TestPermanentErrorsAreNotRetried(t *testing.T) {
	otherKey := "sk_live_" + strings.Repeat("f", 64)
	reply := func(status int, body string) func(int, http.ResponseWriter, *http.Request) bool {
		return func(n int, w http.ResponseWriter, r *http.Request) bool {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			w.Write([]byte(body))
			return true
		}
	}
	tests := []struct {
		name      string
		key       string
		intercept func(int, http.ResponseWriter, *http.Request) bool
		status    int
		code      string
	}{
		{name: "401 bad key", key: otherKey, status: 401, code: "unauthorized"},
		{name: "403 forbidden", intercept: reply(403, `{"error":{"code":"forbidden","message":"key may not send this"}}`),
			status: 403, code: "forbidden"},
		{name: "400 malformed request", intercept: reply(400, `{"error":{"code":"invalid_request","message":"bad body"}}`),
			status: 400, code: "invalid_request"},
		{name: "404 without a JSON body", intercept: reply(404, `not here`), status: 404, code: "not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeServer(t)
			f.intercept = tt.intercept
			c, rec := newTestClient(t, f, func(cfg *Config) {
				if tt.key != "" {
					cfg.APIKey = tt.key
				}
			}, hooks{})
			ids := track(t, c, 3, nil)
			err := c.Flush(testCtx(t))
			var apiErr *APIError
			if !errors.As(err, &apiErr) || apiErr.Status != tt.status || apiErr.Code != tt.code {
				t.Fatalf("Flush = %v, want an *APIError %d %s", err, tt.status, tt.code)
			}
			if got := MessageIDs(err); !slices.Equal(got, ids) {
				t.Errorf("MessageIDs = %v, want %v", got, ids)
			}
			if n := len(f.reqs()); n != 1 {
				t.Errorf("%d requests, want 1 (no retry)", n)
			}
			if d := rec.delays(); len(d) != 0 {
				t.Errorf("waited %v before retrying a permanent error", d)
			}
			if errs := rec.errors(); len(errs) != 1 {
				t.Errorf("OnError got %v, want one error", errs)
			}
		})
	}
}

func TestRequestTooLarge(t *testing.T) {
	big := func(n int) map[string]any { return map[string]any{"pad": strings.Repeat("x", n)} }
	tests := []struct {
		name    string
		maxBody int
		props   []map[string]any // one event per entry
		dropped []int            // indexes expected to be dropped as too large
	}{
		{
			name:    "split in halves until each fits",
			maxBody: 3 * 1200,
			props:   slices.Repeat([]map[string]any{big(1000)}, 10),
		},
		{
			name:    "single item too large is dropped alone",
			maxBody: 4000,
			props:   []map[string]any{big(100), big(100), big(5000), big(100), big(100)},
			dropped: []int{2},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeServer(t)
			f.maxBody = tt.maxBody
			c, rec := newTestClient(t, f, nil, hooks{})
			ids := track(t, c, len(tt.props), func(i int) map[string]any { return tt.props[i] })
			err := c.Flush(testCtx(t))

			var wantLost []string
			for _, i := range tt.dropped {
				wantLost = append(wantLost, ids[i])
			}
			if got := MessageIDs(err); !slices.Equal(got, wantLost) {
				t.Errorf("Flush lost %v, want %v (err %v)", got, wantLost, err)
			}
			var apiErr *APIError
			if len(wantLost) > 0 && (!errors.As(err, &apiErr) || apiErr.Status != http.StatusRequestEntityTooLarge) {
				t.Errorf("Flush = %v, want a 413 *APIError", err)
			}
			counts := f.sentCounts()
			for i, id := range ids {
				_, stored := f.storedItem(id)
				if slices.Contains(tt.dropped, i) == stored {
					t.Errorf("event %d stored = %v", i, stored)
				}
				if stored && counts[id] == 0 {
					t.Errorf("event %d stored but never sent", i)
				}
			}
			for _, r := range f.reqs() {
				if r.Status == http.StatusAccepted && r.Bytes > tt.maxBody {
					t.Errorf("accepted a %d-byte request over the %d limit", r.Bytes, tt.maxBody)
				}
			}
			if d := rec.delays(); len(d) != 0 {
				t.Errorf("waited %v: a 413 is split at once, not retried", d)
			}
		})
	}
}

func TestLargeBatchIsSplitBeforeSending(t *testing.T) {
	f := newFakeServer(t)
	c, rec := newTestClient(t, f, nil, hooks{})
	// 40 events of ~30 KB: about 1.2 MB in one batch of 100.
	track(t, c, 40, func(i int) map[string]any { return map[string]any{"pad": strings.Repeat("y", 30_000)} })
	if err := c.Flush(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	reqs := f.reqs()
	if len(reqs) < 3 {
		t.Errorf("%d requests, want at least 3", len(reqs))
	}
	for _, r := range reqs {
		if r.Status != http.StatusAccepted || r.Bytes > MaxRequestBytes {
			t.Errorf("request of %d bytes got %d", r.Bytes, r.Status)
		}
	}
	if f.stored() != 40 {
		t.Errorf("stored %d, want 40", f.stored())
	}
	if errs := rec.errors(); len(errs) != 0 {
		t.Errorf("errors: %v", errs)
	}
}

func TestPerItemRejection(t *testing.T) {
	poison := func(it fakeItem) *fakeRejection {
		if strings.Contains(string(it.Properties), `"poison"`) {
			return &fakeRejection{"invalid_request", "properties.poison", "poison is not allowed"}
		}
		return nil
	}
	tests := []struct {
		name      string
		poisoned  []int
		events    int
		wantCode  int // status of the one request
		wantStore int
	}{
		{name: "partial", events: 5, poisoned: []int{2}, wantCode: 202, wantStore: 4},
		{name: "several", events: 6, poisoned: []int{0, 5}, wantCode: 202, wantStore: 4},
		{name: "all rejected", events: 3, poisoned: []int{0, 1, 2}, wantCode: 400, wantStore: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeServer(t)
			f.reject = poison
			c, rec := newTestClient(t, f, nil, hooks{})
			ids := track(t, c, tt.events, func(i int) map[string]any {
				if slices.Contains(tt.poisoned, i) {
					return map[string]any{"poison": true}
				}
				return map[string]any{"fine": i}
			})
			err := c.Flush(testCtx(t))

			reqs := f.reqs()
			if len(reqs) != 1 || reqs[0].Status != tt.wantCode {
				t.Fatalf("requests = %+v, want one answered %d (no retry)", batchSizes(reqs), tt.wantCode)
			}
			if f.stored() != tt.wantStore {
				t.Errorf("stored %d, want %d", f.stored(), tt.wantStore)
			}
			var wantLost []string
			for _, i := range tt.poisoned {
				wantLost = append(wantLost, ids[i])
			}
			if got := MessageIDs(err); !slices.Equal(got, wantLost) {
				t.Errorf("Flush lost %v, want %v", got, wantLost)
			}
			var ferr *FlushError
			if !errors.As(err, &ferr) || ferr.Failed != len(tt.poisoned) {
				t.Errorf("Flush = %v, want a *FlushError with %d failures", err, len(tt.poisoned))
			}
			errs := rec.errors()
			if len(errs) != len(tt.poisoned) {
				t.Fatalf("OnError got %d errors, want %d: %v", len(errs), len(tt.poisoned), errs)
			}
			for i, e := range errs {
				var rej *RejectedError
				if !errors.As(e, &rej) {
					t.Fatalf("OnError got %T %v, want *RejectedError", e, e)
				}
				want := RejectedError{MessageID: ids[tt.poisoned[i]], Event: "page_view", Code: "invalid_request",
					Field: "properties.poison", Message: "poison is not allowed"}
				if *rej != want {
					t.Errorf("rejection = %+v, want %+v", *rej, want)
				}
			}
			delivered := rec.deliveries()
			if len(delivered) != tt.wantStore {
				t.Errorf("OnDelivered got %d, want %d", len(delivered), tt.wantStore)
			}
			for _, d := range delivered {
				if d.ID != eventID(d.MessageID) || slices.Contains(wantLost, d.MessageID) {
					t.Errorf("delivered %+v", d)
				}
			}
		})
	}
}

// TestAnswerMissingItemsAreResent covers a 202 that does not mention every
// item: the unmentioned ones are resent (safe, thanks to messageIds)
// rather than assumed stored or lost.
func TestAnswerMissingItemsAreResent(t *testing.T) {
	f := newFakeServer(t)
	f.intercept = failFirst(func(w http.ResponseWriter) {
		w.WriteHeader(http.StatusAccepted)
		w.Write([]byte(`{"status":"accepted","accepted":[{"index":0,"id":"x"}],"rejected":[]}`))
	})
	c, rec := newTestClient(t, f, nil, hooks{})
	ids := track(t, c, 3, nil)
	if err := c.Flush(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	reqs := f.reqs()
	if len(reqs) != 2 || !slices.Equal(reqs[1].MessageIDs, ids[1:]) {
		t.Errorf("requests = %v, want the 2 unmentioned events resent", batchSizes(reqs))
	}
	if n := len(rec.deliveries()); n != 3 {
		t.Errorf("%d deliveries, want 3", n)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", -1},
		{"3", 3 * time.Second},
		{" 0 ", 0},
		{"-1", -1},
		{"soon", -1},
		{"1.5", -1},
		{"999999999", 24 * time.Hour},
		{"Wed, 01 Jan 2025 00:00:07 GMT", 7 * time.Second},
		{"Tue, 31 Dec 2024 23:59:00 GMT", 0},
	}
	for _, tt := range tests {
		if got := parseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestBackoffBounds(t *testing.T) {
	c := &Client{cfg: Config{RetryBaseDelay: 200 * time.Millisecond, RetryMaxDelay: 10 * time.Second}}
	for attempt := 1; attempt <= 70; attempt++ {
		limit := min(10*time.Second, 200*time.Millisecond<<min(attempt-1, 10))
		for i := 0; i < 50; i++ {
			if d := c.backoff(attempt); d < 0 || d > limit {
				t.Fatalf("backoff(%d) = %v, want within [0, %v]", attempt, d, limit)
			}
		}
	}
}

func TestNewMessageID(t *testing.T) {
	seen := map[string]bool{}
	prev := ""
	for i := 0; i < 1000; i++ {
		before := time.Now().UnixMilli()
		id := NewMessageID()
		if !isUUID(id) || id != strings.ToLower(id) {
			t.Fatalf("%q is not a lower-case canonical UUID", id)
		}
		if id[14] != '7' || !strings.ContainsRune("89ab", rune(id[19])) {
			t.Fatalf("%q is not version 7, variant 10", id)
		}
		var ms int64
		for _, c := range strings.ReplaceAll(id[:13], "-", "") {
			ms = ms*16 + int64(strings.IndexRune("0123456789abcdef", c))
		}
		if ms < before || ms > time.Now().UnixMilli() {
			t.Fatalf("%q carries time %d, want about %d", id, ms, before)
		}
		if seen[id] {
			t.Fatalf("duplicate %q", id)
		}
		seen[id] = true
		if prev != "" && id[:13] < prev[:13] {
			t.Fatalf("%q sorts before the earlier %q", id, prev)
		}
		prev = id
	}
	for _, bad := range []string{"", "not-a-uuid", "01957a3b1c2d7e4f8a9b0c1d2e3f4a5b", "01957a3b-1c2d-7e4f-8a9b-0c1d2e3f4a5g"} {
		if isUUID(bad) {
			t.Errorf("isUUID(%q) = true", bad)
		}
	}
}
