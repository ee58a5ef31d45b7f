package boost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestNewChecksKeyAndConfig(t *testing.T) {
	hex64 := strings.Repeat("ab12", 16)
	tests := []struct {
		name    string
		cfg     Config
		wantErr error  // checked with errors.Is when set
		wantMsg string // substring of the error when set
		wantURL string // batch URL when no error is expected
	}{
		{name: "publishable key", cfg: Config{APIKey: "pk_live_" + hex64, Endpoint: "http://localhost:3000"},
			wantErr: ErrPublishableKey, wantMsg: "server SDK needs a secret key (sk_live_…); publishable keys are for browsers"},
		{name: "empty key", cfg: Config{Endpoint: "http://localhost:3000"}, wantErr: ErrMalformedKey},
		{name: "short key", cfg: Config{APIKey: "sk_live_abc", Endpoint: "http://localhost:3000"}, wantErr: ErrMalformedKey},
		{name: "long key", cfg: Config{APIKey: "sk_live_" + hex64 + "0", Endpoint: "http://localhost:3000"}, wantErr: ErrMalformedKey},
		{name: "upper-case hex", cfg: Config{APIKey: "sk_live_" + strings.ToUpper(hex64), Endpoint: "http://localhost:3000"}, wantErr: ErrMalformedKey},
		{name: "other prefix", cfg: Config{APIKey: "sk_test_" + hex64, Endpoint: "http://localhost:3000"}, wantErr: ErrMalformedKey},
		{name: "not hex", cfg: Config{APIKey: "sk_live_" + strings.Repeat("zz", 32), Endpoint: "http://localhost:3000"}, wantErr: ErrMalformedKey},
		{name: "empty endpoint", cfg: Config{APIKey: "sk_live_" + hex64}, wantMsg: "Endpoint is required"},
		{name: "endpoint without scheme", cfg: Config{APIKey: "sk_live_" + hex64, Endpoint: "localhost:3000"}, wantMsg: "http or https"},
		{name: "ftp endpoint", cfg: Config{APIKey: "sk_live_" + hex64, Endpoint: "ftp://example.com"}, wantMsg: "http or https"},
		{name: "endpoint with query", cfg: Config{APIKey: "sk_live_" + hex64, Endpoint: "http://x.test/?a=b"}, wantMsg: "query"},
		{name: "batch size over 500", cfg: Config{APIKey: "sk_live_" + hex64, Endpoint: "http://x.test", BatchSize: 501}, wantMsg: "BatchSize must be at most 500"},
		{name: "negative queue size", cfg: Config{APIKey: "sk_live_" + hex64, Endpoint: "http://x.test", MaxQueueSize: -1}, wantMsg: "MaxQueueSize must not be negative"},
		{name: "negative interval", cfg: Config{APIKey: "sk_live_" + hex64, Endpoint: "http://x.test", FlushInterval: -time.Second}, wantMsg: "FlushInterval"},
		{name: "valid", cfg: Config{APIKey: "sk_live_" + hex64, Endpoint: "http://localhost:3000"},
			wantURL: "http://localhost:3000/v1/events/batch"},
		{name: "valid with path prefix and slash", cfg: Config{APIKey: "sk_live_" + hex64, Endpoint: "https://api.example.com/boost/"},
			wantURL: "https://api.example.com/boost/v1/events/batch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.cfg)
			if tt.wantErr == nil && tt.wantMsg == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				defer c.Close(context.Background())
				if c.batchURL != tt.wantURL {
					t.Errorf("batch URL = %q, want %q", c.batchURL, tt.wantURL)
				}
				if c.cfg.BatchSize != DefaultBatchSize || c.cfg.MaxQueueSize != DefaultMaxQueueSize ||
					c.cfg.MaxAttempts != DefaultMaxAttempts || c.cfg.FlushInterval != DefaultFlushInterval ||
					c.cfg.UserAgent != "boost-go/0.1" {
					t.Errorf("defaults not applied: %+v", c.cfg)
				}
				return
			}
			if err == nil {
				c.Close(context.Background())
				t.Fatal("New succeeded, want an error")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("error = %v, want %v", err, tt.wantErr)
			}
			if tt.wantMsg != "" && !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error = %q, want it to contain %q", err, tt.wantMsg)
			}
		})
	}
}

func TestValidationRefusesLocally(t *testing.T) {
	ctx := context.Background()
	long := strings.Repeat("é", 256)
	tests := []struct {
		name  string
		call  func(c *Client) error
		field string
	}{
		{"missing event", func(c *Client) error { return c.Track(ctx, Event{UserID: "u1"}) }, "event"},
		{"blank event", func(c *Client) error { return c.Track(ctx, Event{Event: "  ", UserID: "u1"}) }, "event"},
		{"event too long", func(c *Client) error { return c.Track(ctx, Event{Event: long, UserID: "u1"}) }, "event"},
		{"event not UTF-8", func(c *Client) error { return c.Track(ctx, Event{Event: "a\xffb", UserID: "u1"}) }, "event"},
		{"no user", func(c *Client) error { return c.Track(ctx, Event{Event: "signup"}) }, "userId"},
		{"user id too long", func(c *Client) error { return c.Track(ctx, Event{Event: "signup", UserID: long}) }, "userId"},
		{"anonymous id too long", func(c *Client) error { return c.Track(ctx, Event{Event: "signup", AnonymousID: long}) }, "anonymousId"},
		{"message id not a UUID", func(c *Client) error {
			return c.Track(ctx, Event{Event: "signup", UserID: "u1", MessageID: "order-42"})
		}, "messageId"},
		{"properties not JSON", func(c *Client) error {
			return c.Track(ctx, Event{Event: "signup", UserID: "u1", Properties: map[string]any{"f": func() {}}})
		}, "properties"},
		{"properties too big", func(c *Client) error {
			return c.Track(ctx, Event{Event: "signup", UserID: "u1", Properties: map[string]any{"s": strings.Repeat("x", MaxPropertiesBytes)}})
		}, "properties"},
		{"tracked purchase without orderId", func(c *Client) error {
			return c.Track(ctx, Event{Event: "purchase", UserID: "u1", Properties: map[string]any{"amount": 100, "currency": "EUR"}})
		}, "properties.orderId"},
		{"tracked purchase, name in another case", func(c *Client) error {
			return c.Track(ctx, Event{Event: " Purchase", UserID: "u1", Properties: map[string]any{"amount": 100, "currency": "EUR"}})
		}, "properties.orderId"},
		{"tracked purchase with fractional amount", func(c *Client) error {
			return c.Track(ctx, Event{Event: "purchase", UserID: "u1", Properties: map[string]any{"orderId": "o1", "amount": 10.5, "currency": "EUR"}})
		}, "properties.amount"},
		{"tracked purchase with amount as string", func(c *Client) error {
			return c.Track(ctx, Event{Event: "checkout_success", UserID: "u1", Properties: map[string]any{"orderId": "o1", "amount": "10", "currency": "EUR"}})
		}, "properties.amount"},
		{"tracked purchase with lower-case currency", func(c *Client) error {
			return c.Track(ctx, Event{Event: "purchase", UserID: "u1", Properties: map[string]any{"orderId": "o1", "amount": 10, "currency": "eur"}})
		}, "properties.currency"},
		{"purchase without order id", func(c *Client) error {
			return c.Purchase(ctx, Purchase{UserID: "u1", Amount: 100, Currency: "EUR"})
		}, "properties.orderId"},
		{"purchase with negative amount", func(c *Client) error {
			return c.Purchase(ctx, Purchase{UserID: "u1", OrderID: "o1", Amount: -1, Currency: "EUR"})
		}, "properties.amount"},
		{"purchase with four-letter currency", func(c *Client) error {
			return c.Purchase(ctx, Purchase{UserID: "u1", OrderID: "o1", Amount: 1, Currency: "EURO"})
		}, "properties.currency"},
		{"purchase without user", func(c *Client) error {
			return c.Purchase(ctx, Purchase{OrderID: "o1", Amount: 1, Currency: "EUR"})
		}, "userId"},
		{"checkout without currency", func(c *Client) error {
			return c.CheckoutComplete(ctx, Checkout{UserID: "u1", OrderID: "o1", Amount: 1})
		}, "properties.currency"},
		{"identify without user", func(c *Client) error {
			return c.Identify(ctx, Identify{AnonymousID: "a1", Traits: map[string]any{"plan": "pro"}})
		}, "userId"},
		{"referral without referred user", func(c *Client) error {
			return c.ReferralSuccess(ctx, Referral{UserID: "u1", ReferralCode: "FRIEND"})
		}, "properties.referredUserId"},
		{"referral without referrer", func(c *Client) error {
			return c.ReferralSuccess(ctx, Referral{ReferredUserID: "u2"})
		}, "userId"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeServer(t)
			c, rec := newTestClient(t, f, nil, hooks{})
			err := tt.call(c)
			var verr *ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("error = %v, want a *ValidationError", err)
			}
			if verr.Field != tt.field {
				t.Errorf("field = %q, want %q (%v)", verr.Field, tt.field, err)
			}
			if err := c.Flush(testCtx(t)); err != nil {
				t.Fatalf("Flush: %v", err)
			}
			if n := len(f.reqs()); n != 0 {
				t.Errorf("server got %d requests, want none: the event must not be queued", n)
			}
			if errs := rec.errors(); len(errs) != 0 {
				t.Errorf("OnError got %v; validation errors are returned, not reported", errs)
			}
		})
	}
}

func TestWireFormat(t *testing.T) {
	at := time.Date(2025, 3, 4, 5, 6, 7, 891_234_567, time.FixedZone("CET", 3600))
	mid := "01957a3b-1c2d-7e4f-8a9b-0c1d2e3f4a5b"
	tests := []struct {
		name      string
		call      func(c *Client) error
		wantEvent string
		wantUser  string
		wantAnon  string
		wantProps string // JSON, compared by value; "" for none
	}{
		{
			name: "track",
			call: func(c *Client) error {
				return c.Track(context.Background(), Event{Event: "level_started", UserID: "u1", AnonymousID: "a1",
					Properties: map[string]any{"level": 3, "name": "<caves>", "nested": map[string]any{"ok": true}}, Timestamp: at, MessageID: mid})
			},
			wantEvent: "level_started", wantUser: "u1", wantAnon: "a1",
			wantProps: `{"level":3,"name":"<caves>","nested":{"ok":true}}`,
		},
		{
			name: "track without properties",
			call: func(c *Client) error {
				return c.Track(context.Background(), Event{Event: "ping", AnonymousID: "a1", Timestamp: at, MessageID: mid})
			},
			wantEvent: "ping", wantAnon: "a1",
		},
		{
			name: "purchase",
			call: func(c *Client) error {
				return c.Purchase(context.Background(), Purchase{UserID: "u1", OrderID: "o-1", Amount: 1999, Currency: "eur",
					Items:      []Item{{ProductID: "p1", Name: "Sword", Quantity: 2, Price: 999}, {ProductID: "p2", Quantity: 1, Price: 1}},
					Properties: map[string]any{"coupon": "SPRING", "amount": 5}, Timestamp: at, MessageID: mid})
			},
			wantEvent: "purchase", wantUser: "u1",
			wantProps: `{"coupon":"SPRING","orderId":"o-1","amount":1999,"currency":"EUR",
				"items":[{"productId":"p1","name":"Sword","quantity":2,"price":999},{"productId":"p2","quantity":1,"price":1}]}`,
		},
		{
			name: "checkout complete",
			call: func(c *Client) error {
				return c.CheckoutComplete(context.Background(), Checkout{UserID: "u1", OrderID: "o-2", Amount: 0, Currency: "USD", Timestamp: at, MessageID: mid})
			},
			wantEvent: "checkout_complete", wantUser: "u1",
			wantProps: `{"orderId":"o-2","amount":0,"currency":"USD"}`,
		},
		{
			name: "tracked purchase with json.Number and integral float",
			call: func(c *Client) error {
				return c.Track(context.Background(), Event{Event: "checkout_success", UserID: "u1", Timestamp: at, MessageID: mid,
					Properties: map[string]any{"orderId": "o-3", "amount": json.Number("250"), "currency": "GBP", "tax": 12.0}})
			},
			wantEvent: "checkout_success", wantUser: "u1",
			wantProps: `{"orderId":"o-3","amount":250,"currency":"GBP","tax":12}`,
		},
		{
			name: "identify",
			call: func(c *Client) error {
				return c.Identify(context.Background(), Identify{UserID: "u1", AnonymousID: "a1",
					Traits: map[string]any{"email": "ada@example.com", "plan": "pro"}, Timestamp: at, MessageID: mid})
			},
			wantEvent: "$identify", wantUser: "u1", wantAnon: "a1",
			wantProps: `{"email":"ada@example.com","plan":"pro"}`,
		},
		{
			name: "referral",
			call: func(c *Client) error {
				return c.ReferralSuccess(context.Background(), Referral{UserID: "u1", ReferredUserID: "u2", ReferralCode: "FRIEND",
					Properties: map[string]any{"campaign": "spring"}, Timestamp: at, MessageID: mid})
			},
			wantEvent: "referral_success", wantUser: "u1",
			wantProps: `{"campaign":"spring","referredUserId":"u2","referralCode":"FRIEND"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeServer(t)
			c, rec := newTestClient(t, f, func(cfg *Config) { cfg.UserAgent = "shop/2.0" }, hooks{})
			if err := tt.call(c); err != nil {
				t.Fatalf("call: %v", err)
			}
			before := time.Now()
			if err := c.Flush(testCtx(t)); err != nil {
				t.Fatalf("Flush: %v", err)
			}
			reqs := f.reqs()
			if len(reqs) != 1 || reqs[0].Status != http.StatusAccepted || len(reqs[0].Items) != 1 {
				t.Fatalf("requests = %+v, want one accepted request with one item", reqs)
			}
			r := reqs[0]
			if got := r.Header.Get("x-api-key"); got != testKey {
				t.Errorf("x-api-key = %q", got)
			}
			if got := r.Header.Get("User-Agent"); got != "shop/2.0 boost-go/0.1" {
				t.Errorf("User-Agent = %q", got)
			}
			if got := r.Header.Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type = %q", got)
			}
			sentAt, err := time.Parse(time.RFC3339, r.SentAt)
			if err != nil || !strings.HasSuffix(r.SentAt, "Z") || len(r.SentAt) != len("2006-01-02T15:04:05.000Z") {
				t.Errorf("sentAt = %q, want RFC 3339 UTC with milliseconds (%v)", r.SentAt, err)
			}
			if sentAt.Before(before.Truncate(time.Millisecond)) {
				t.Errorf("sentAt %v is before the flush started (%v): it must be the send time", sentAt, before)
			}
			it := r.Items[0]
			if it.Event != tt.wantEvent || it.UserID != tt.wantUser || it.AnonymousID != tt.wantAnon {
				t.Errorf("item = %+v, want event %q user %q anon %q", it, tt.wantEvent, tt.wantUser, tt.wantAnon)
			}
			if it.Timestamp != "2025-03-04T04:06:07.891Z" {
				t.Errorf("timestamp = %q, want the given time in UTC with ms", it.Timestamp)
			}
			if it.MessageID != mid {
				t.Errorf("messageId = %q, want the given %q", it.MessageID, mid)
			}
			switch {
			case tt.wantProps == "" && len(it.Properties) != 0:
				t.Errorf("properties = %s, want none", it.Properties)
			case tt.wantProps != "" && !jsonEqual(it.Properties, []byte(tt.wantProps)):
				t.Errorf("properties = %s, want %s", it.Properties, tt.wantProps)
			}
			if d := rec.deliveries(); len(d) != 1 || d[0].MessageID != mid || d[0].ID != eventID(mid) {
				t.Errorf("OnDelivered got %+v, want %s → %s", d, mid, eventID(mid))
			}
		})
	}
}

func TestEventStampedAtCreation(t *testing.T) {
	f := newFakeServer(t)
	created := time.Date(2025, 1, 2, 3, 4, 5, 6_000_000, time.UTC)
	clock := created
	var mu sync.Mutex
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	c, _ := newTestClient(t, f, nil, hooks{now: now})

	props := map[string]any{"score": 1}
	if err := c.Track(context.Background(), Event{Event: "scored", UserID: "u1", Properties: props}); err != nil {
		t.Fatal(err)
	}
	props["score"] = 2 // a caller reusing its map must not change what is sent
	mu.Lock()
	clock = created.Add(time.Hour)
	mu.Unlock()
	if err := c.Flush(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	r := f.reqs()[0]
	it := r.Items[0]
	if it.Timestamp != "2025-01-02T03:04:05.006Z" {
		t.Errorf("timestamp = %q, want the creation time", it.Timestamp)
	}
	if r.SentAt != "2025-01-02T04:04:05.006Z" {
		t.Errorf("sentAt = %q, want the send time", r.SentAt)
	}
	if !isUUID(it.MessageID) || it.MessageID[14] != '7' {
		t.Errorf("messageId = %q, want a UUIDv7", it.MessageID)
	}
	if !jsonEqual(it.Properties, []byte(`{"score":1}`)) {
		t.Errorf("properties = %s, want the values at Track time", it.Properties)
	}
}

func TestBatching(t *testing.T) {
	tests := []struct {
		name  string
		cfg   func(*Config)
		run   func(t *testing.T, c *Client, f *fakeServer)
		sizes []int
	}{
		{
			name: "by size, rest on flush",
			cfg:  func(cfg *Config) { cfg.BatchSize = 10 },
			run: func(t *testing.T, c *Client, f *fakeServer) {
				track(t, c, 25, nil)
				f.waitFor("two full batches", func() bool { return len(f.events) == 20 })
				if n := len(f.reqs()); n != 2 {
					t.Errorf("%d requests before Flush, want 2 full batches (5 events wait)", n)
				}
				if err := c.Flush(testCtx(t)); err != nil {
					t.Fatal(err)
				}
			},
			sizes: []int{10, 10, 5},
		},
		{
			name: "by interval",
			cfg:  func(cfg *Config) { cfg.FlushInterval = 5 * time.Millisecond },
			run: func(t *testing.T, c *Client, f *fakeServer) {
				track(t, c, 3, nil)
				f.waitFor("the interval flush", func() bool { return len(f.events) == 3 })
			},
			sizes: []int{3},
		},
		{
			name: "on Flush",
			run: func(t *testing.T, c *Client, f *fakeServer) {
				track(t, c, 7, nil)
				if n := len(f.reqs()); n != 0 {
					t.Errorf("%d requests before Flush, want none", n)
				}
				if err := c.Flush(testCtx(t)); err != nil {
					t.Fatal(err)
				}
				if err := c.Flush(testCtx(t)); err != nil { // nothing left: no request
					t.Fatal(err)
				}
			},
			sizes: []int{7},
		},
		{
			name: "on Close",
			cfg:  func(cfg *Config) { cfg.BatchSize = 4 },
			run: func(t *testing.T, c *Client, f *fakeServer) {
				track(t, c, 3, nil)
				if err := c.Close(testCtx(t)); err != nil {
					t.Fatal(err)
				}
			},
			sizes: []int{3},
		},
		{
			name: "Flush of more than a batch",
			cfg:  func(cfg *Config) { cfg.BatchSize = 500; cfg.MaxQueueSize = 2000 },
			run: func(t *testing.T, c *Client, f *fakeServer) {
				// Whether size-triggered sends take some first or the
				// Flush takes all, every request is full but the last.
				track(t, c, 1200, nil)
				if err := c.Flush(testCtx(t)); err != nil {
					t.Fatal(err)
				}
			},
			sizes: []int{500, 500, 200},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeServer(t)
			c, rec := newTestClient(t, f, tt.cfg, hooks{})
			tt.run(t, c, f)
			if got := batchSizes(f.reqs()); !slices.Equal(got, tt.sizes) {
				t.Errorf("batch sizes = %v, want %v", got, tt.sizes)
			}
			if errs := rec.errors(); len(errs) != 0 {
				t.Errorf("errors: %v", errs)
			}
		})
	}
}

// TestConcurrentFlushSendsOnce hammers Track and Flush from many
// goroutines and checks, server-side, that no messageId was ever sent
// twice and that no two requests overlapped.
func TestConcurrentFlushSendsOnce(t *testing.T) {
	f := newFakeServer(t)
	c, rec := newTestClient(t, f, func(cfg *Config) { cfg.BatchSize = 7 }, hooks{})
	const workers, perWorker = 8, 40
	var wg sync.WaitGroup
	flushErrs := make(chan error, workers*perWorker)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWorker; i++ {
				if err := c.Track(context.Background(), Event{Event: "tick", UserID: fmt.Sprint("u", w)}); err != nil {
					flushErrs <- err
				}
				if i%5 == w%5 {
					flushErrs <- c.Flush(context.Background())
				}
			}
			flushErrs <- c.Flush(context.Background())
		}()
	}
	// Bare flushers racing the others.
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				flushErrs <- c.Flush(context.Background())
			}
		}()
	}
	wg.Wait()
	close(flushErrs)
	for err := range flushErrs {
		if err != nil {
			t.Errorf("Track/Flush: %v", err)
		}
	}
	counts := f.sentCounts()
	if len(counts) != workers*perWorker {
		t.Errorf("server saw %d distinct messageIds, want %d", len(counts), workers*perWorker)
	}
	for id, n := range counts {
		if n != 1 {
			t.Errorf("messageId %s sent %d times", id, n)
		}
	}
	if f.stored() != workers*perWorker {
		t.Errorf("stored %d events, want %d", f.stored(), workers*perWorker)
	}
	f.mu.Lock()
	maxFlight := f.maxFlight
	f.mu.Unlock()
	if maxFlight != 1 {
		t.Errorf("up to %d requests were in flight at once, want 1", maxFlight)
	}
	for _, r := range f.reqs() {
		if len(r.MessageIDs) > 7 {
			t.Errorf("a request carried %d events, more than BatchSize", len(r.MessageIDs))
		}
	}
	if errs := rec.errors(); len(errs) != 0 {
		t.Errorf("errors: %v", errs)
	}
}

func TestQueueFull(t *testing.T) {
	tests := []struct {
		name string
		// fill puts the client in a state with MaxQueueSize (3) events
		// held, and returns a function that lets them go.
		fill func(t *testing.T, c *Client, f *fakeServer, release chan struct{}) (ids []string, flushed chan error)
	}{
		{
			name: "queued events",
			fill: func(t *testing.T, c *Client, f *fakeServer, release chan struct{}) ([]string, chan error) {
				close(release)
				return track(t, c, 3, nil), nil
			},
		},
		{
			name: "events in flight count too",
			fill: func(t *testing.T, c *Client, f *fakeServer, release chan struct{}) ([]string, chan error) {
				ids := track(t, c, 3, nil)
				flushed := make(chan error, 1)
				go func() { flushed <- c.Flush(context.Background()) }()
				f.waitFor("the request to be in flight", func() bool { return f.inflight == 1 })
				return ids, flushed
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeServer(t)
			release := make(chan struct{})
			f.intercept = func(n int, w http.ResponseWriter, r *http.Request) bool {
				<-release
				return false
			}
			c, rec := newTestClient(t, f, func(cfg *Config) { cfg.MaxQueueSize = 3 }, hooks{})
			ids, flushed := tt.fill(t, c, f, release)

			mid := NewMessageID()
			err := c.Track(context.Background(), Event{Event: "overflow", UserID: "u1", MessageID: mid})
			if !errors.Is(err, ErrQueueFull) {
				t.Fatalf("Track on a full queue = %v, want ErrQueueFull", err)
			}
			if got := MessageIDs(err); !slices.Equal(got, []string{mid}) {
				t.Errorf("MessageIDs(err) = %v, want [%s]", got, mid)
			}
			if errs := rec.errors(); len(errs) != 1 || !errors.Is(errs[0], ErrQueueFull) {
				t.Errorf("OnError got %v, want one ErrQueueFull", errs)
			}

			select {
			case <-release:
			default:
				close(release)
			}
			if flushed != nil {
				if err := <-flushed; err != nil {
					t.Fatal(err)
				}
			}
			if err := c.Flush(testCtx(t)); err != nil {
				t.Fatal(err)
			}
			counts := f.sentCounts()
			for _, id := range ids {
				if counts[id] != 1 {
					t.Errorf("queued event %s sent %d times, want 1", id, counts[id])
				}
			}
			if counts[mid] != 0 {
				t.Errorf("dropped event was sent")
			}
			// Room again once the queue drained.
			if err := c.Track(context.Background(), Event{Event: "after", UserID: "u1"}); err != nil {
				t.Errorf("Track after the queue drained: %v", err)
			}
		})
	}
}

func TestClose(t *testing.T) {
	t.Run("flushes, then every call returns ErrClosed", func(t *testing.T) {
		f := newFakeServer(t)
		c, _ := newTestClient(t, f, nil, hooks{})
		track(t, c, 5, nil)
		if err := c.Close(testCtx(t)); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if f.stored() != 5 {
			t.Errorf("stored %d, want the 5 queued events", f.stored())
		}
		select {
		case <-c.done:
		default:
			t.Error("the sending goroutine is still running after Close returned")
		}
		ctx := context.Background()
		calls := map[string]error{
			"Track":            c.Track(ctx, Event{Event: "e", UserID: "u"}),
			"Identify":         c.Identify(ctx, Identify{UserID: "u"}),
			"Purchase":         c.Purchase(ctx, Purchase{UserID: "u", OrderID: "o", Amount: 1, Currency: "EUR"}),
			"CheckoutComplete": c.CheckoutComplete(ctx, Checkout{UserID: "u", OrderID: "o", Amount: 1, Currency: "EUR"}),
			"ReferralSuccess":  c.ReferralSuccess(ctx, Referral{UserID: "u", ReferredUserID: "v"}),
			"Flush":            c.Flush(ctx),
			"Close":            c.Close(ctx),
		}
		for name, err := range calls {
			if !errors.Is(err, ErrClosed) {
				t.Errorf("%s after Close = %v, want ErrClosed", name, err)
			}
		}
	})

	t.Run("bounded by its context", func(t *testing.T) {
		f := newFakeServer(t)
		f.intercept = func(n int, w http.ResponseWriter, r *http.Request) bool {
			<-r.Context().Done() // hang until the client gives up
			return true
		}
		c, rec := newTestClient(t, f, func(cfg *Config) { cfg.BatchSize = 2 }, hooks{})
		ids := track(t, c, 5, nil)
		f.waitFor("a request in flight", func() bool { return f.inflight == 1 })

		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		err := c.Close(ctx)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Close = %v, want it to wrap context.DeadlineExceeded", err)
		}
		var ferr *FlushError
		if !errors.As(err, &ferr) || ferr.Failed != 5 {
			t.Errorf("Close = %#v, want a *FlushError for the 5 events", err)
		}
		got := MessageIDs(err)
		slices.Sort(got)
		slices.Sort(ids)
		if !slices.Equal(got, ids) {
			t.Errorf("lost messageIds = %v, want %v", got, ids)
		}
		var reported []string
		for _, e := range rec.errors() {
			reported = append(reported, MessageIDs(e)...)
		}
		slices.Sort(reported)
		if !slices.Equal(reported, ids) {
			t.Errorf("OnError reported %v, want %v", reported, ids)
		}
		select {
		case <-c.done:
		default:
			t.Error("the sending goroutine is still running after Close returned")
		}
	})

	t.Run("answers a Flush waiting on it", func(t *testing.T) {
		f := newFakeServer(t)
		release := make(chan struct{})
		f.intercept = func(n int, w http.ResponseWriter, r *http.Request) bool {
			<-release
			return false
		}
		c, _ := newTestClient(t, f, nil, hooks{})
		track(t, c, 2, nil)
		flushed := make(chan error, 1)
		go func() { flushed <- c.Flush(context.Background()) }()
		f.waitFor("a request in flight", func() bool { return f.inflight == 1 })
		track(t, c, 1, nil)
		closed := make(chan error, 1)
		go func() { closed <- c.Close(context.Background()) }()
		close(release)
		if err := <-flushed; err != nil {
			t.Errorf("Flush = %v", err)
		}
		if err := <-closed; err != nil {
			t.Errorf("Close = %v", err)
		}
		if f.stored() != 3 {
			t.Errorf("stored %d, want 3", f.stored())
		}
	})
}

func TestFlushReportsOnlyWhatFailedWhileItWaited(t *testing.T) {
	f := newFakeServer(t)
	f.reject = func(it fakeItem) *fakeRejection {
		if it.Event == "bad" {
			return &fakeRejection{"invalid_request", "event", "no bad events"}
		}
		return nil
	}
	c, _ := newTestClient(t, f, nil, hooks{})
	ctx := testCtx(t)
	if err := c.Track(ctx, Event{Event: "bad", UserID: "u"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(ctx); err == nil {
		t.Fatal("Flush = nil, want the rejection")
	}
	if err := c.Track(ctx, Event{Event: "good", UserID: "u"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(ctx); err != nil {
		t.Fatalf("second Flush = %v, want nil: the earlier failure was already returned", err)
	}
}
