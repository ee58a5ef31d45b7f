package chaos

import (
	"encoding/json"
	"testing"
	"time"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		header string
		want   time.Duration
	}{
		{"", 0},
		{"2", 2 * time.Second},
		{"0", 0},
		{"-3", 0},
		{"Fri, 04 Dec 2026 10:00:05 GMT", 5 * time.Second},
		{"Fri, 04 Dec 2026 09:59:00 GMT", 0},
		{"soon", 0},
	}
	for _, tt := range tests {
		if got := parseRetryAfter(tt.header, now); got != tt.want {
			t.Errorf("parseRetryAfter(%q) = %s, want %s", tt.header, got, tt.want)
		}
	}
}

func TestBackoffFor(t *testing.T) {
	tests := []struct {
		attempt    int
		retryAfter time.Duration
		lo, hi     time.Duration
	}{
		{0, 0, 50 * time.Millisecond, 150 * time.Millisecond},
		{3, 0, 400 * time.Millisecond, 1200 * time.Millisecond},
		{20, 0, time.Second, 3 * time.Second},
		{0, 2 * time.Second, 2 * time.Second, 2 * time.Second},
		{0, time.Hour, 10 * time.Second, 10 * time.Second},
	}
	for _, tt := range tests {
		for range 50 {
			if d := backoffFor(tt.attempt, tt.retryAfter); d < tt.lo || d > tt.hi {
				t.Fatalf("backoffFor(%d, %s) = %s, want within [%s, %s]", tt.attempt, tt.retryAfter, d, tt.lo, tt.hi)
			}
		}
	}
}

func TestGeneratorIsDeterministicAndValid(t *testing.T) {
	fixed := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	gen := func() *generator {
		g := newGenerator(99, 1, "p")
		g.now = func() time.Time { return fixed }
		return g
	}
	a, b := gen(), gen()
	seen := map[string]bool{}
	for range 500 {
		ra, rb := a.request("pk", "sk"), b.request("pk", "sk")
		ja, _ := json.Marshal(ra)
		jb, _ := json.Marshal(rb)
		if string(ja) != string(jb) {
			t.Fatalf("the same seed made different requests:\n%s\n%s", ja, jb)
		}
		for _, e := range ra.Events {
			if seen[e.MessageID] {
				t.Fatalf("messageId %s reused", e.MessageID)
			}
			seen[e.MessageID] = true
			if e.UserID == "" && e.AnonymousID == "" {
				t.Errorf("%s has neither userId nor anonymousId", e.MessageID)
			}
			if e.Event == "purchase" && (ra.Key != "sk" || e.Amount <= 0 || len(e.Currency) != 3) {
				t.Errorf("purchase %s: key %s, amount %d, currency %q", e.MessageID, ra.Key, e.Amount, e.Currency)
			}
			if back := fixed.Sub(e.Timestamp); back < 0 || back > timestampSpread {
				t.Errorf("%s timestamp %s outside the spread", e.MessageID, e.Timestamp)
			}
		}
		if ra.Path == pathTrack && len(ra.Events) != 1 {
			t.Errorf("a track request carries %d events", len(ra.Events))
		}
	}
}

func TestEncodeRequest(t *testing.T) {
	now := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	ts := now.Add(-time.Hour)
	p := offer{MessageID: "m1", Event: "purchase", UserID: "u1", Timestamp: ts, Amount: 1999, Currency: "EUR"}
	c := offer{MessageID: "m2", Event: "click", AnonymousID: "a1", Timestamp: ts}

	body, err := encodeRequest(request{Path: pathTrack, Events: []offer{p}}, now)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"event":"purchase","userId":"u1","properties":{"amount":1999,"currency":"EUR","orderId":"order-m1"},` +
		`"timestamp":"2026-12-04T09:00:00Z","messageId":"m1"}`
	if string(body) != want {
		t.Errorf("track body\n%s\nwant\n%s", body, want)
	}

	body, err = encodeRequest(request{Path: pathBatch, Events: []offer{c}}, now)
	if err != nil {
		t.Fatal(err)
	}
	want = `{"batch":[{"event":"click","anonymousId":"a1","properties":{"path":"/chaos/click"},` +
		`"timestamp":"2026-12-04T09:00:00Z","messageId":"m2"}],"sentAt":"2026-12-04T10:00:00Z"}`
	if string(body) != want {
		t.Errorf("batch body\n%s\nwant\n%s", body, want)
	}
}

func TestLedger(t *testing.T) {
	l := newLedger()
	l.offer([]offer{{MessageID: "a"}, {MessageID: "b"}, {MessageID: "c"}})
	l.offer([]offer{{MessageID: "a", Event: "again"}}) // a retry: already offered
	l.accept("a", "id-a")
	l.accept("a", "id-a") // the retry's answer
	l.accept("b", "id-b")
	l.accept("b", "id-other")
	l.refuse("c", "400 bad")
	l.accept("zzz", "never offered")

	offers, conflicts := l.snapshot()
	if len(offers) != 3 || offers[0].Event != "" {
		t.Errorf("offers %+v", offers)
	}
	if l.acceptedCount() != 2 {
		t.Errorf("accepted %d, want 2", l.acceptedCount())
	}
	if len(conflicts) != 1 || conflicts[0] != "b: id-b then id-other" {
		t.Errorf("conflicts %q", conflicts)
	}
	if offers[2].Refusal != "400 bad" {
		t.Errorf("refusal %q", offers[2].Refusal)
	}
	if ids := l.acceptedIDs(); len(ids) != 2 || !ids["id-a"] || !ids["id-b"] {
		t.Errorf("accepted ids %v", ids)
	}
}
