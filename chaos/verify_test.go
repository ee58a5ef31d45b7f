package chaos

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func str(s string) *string { return &s }

func i64(n int64) *int64 { return &n }

var t0 = time.Date(2026, 12, 6, 23, 30, 0, 0, time.UTC) // a Sunday, late

// row is a stored event; opts tweak it.
func row(id, typ string, opts ...func(*eventRow)) eventRow {
	r := eventRow{ID: id, Type: typ, MessageID: str("m-" + id), Status: "processed", OccurredAt: t0}
	for _, o := range opts {
		o(&r)
	}
	return r
}

func user(u string) func(*eventRow)    { return func(r *eventRow) { r.UserID = str(u) } }
func anon(a string) func(*eventRow)    { return func(r *eventRow) { r.AnonymousID = str(a) } }
func at(t time.Time) func(*eventRow)   { return func(r *eventRow) { r.OccurredAt = t } }
func status(s string) func(*eventRow)  { return func(r *eventRow) { r.Status = s } }
func rejected() func(*eventRow)        { return func(r *eventRow) { r.Rejected = true; r.Status = "failed" } }
func message(m string) func(*eventRow) { return func(r *eventRow) { r.MessageID = str(m) } }
func paid(n int64, cur string) func(*eventRow) {
	return func(r *eventRow) { r.Amount, r.Currency = i64(n), str(cur) }
}

func TestExpectedRollups(t *testing.T) {
	hour := t0.Truncate(time.Hour)
	nextDay := t0.Add(time.Hour) // Monday 00:30: another day, week and hour
	rows := []eventRow{
		row("1", "page_view", user("u1")),
		row("2", "page_view", user("u1"), anon("a1")),
		row("3", "page_view", anon("a2")),
		row("4", "click", anon("a2"), at(nextDay)),
		row("5", "purchase", user("u2"), paid(1000, "EUR")),
		row("6", "purchase", user("u2"), paid(500, "EUR"), status("failed")),
		row("7", "purchase", user("u3"), paid(700, "EUR"), status("pending")),
		row("8", "page_view", user("u9"), rejected()),
	}
	got := expectedRollups(rows)

	tests := []struct {
		name      string
		got, want any
	}{
		{"end users count every counted event of a user id", got.EndUsers, map[string]int64{"u1": 2, "u2": 2, "u3": 1}},
		{"hourly per type and hour", got.Hourly, map[bucketKey]int64{
			bucket("page_view", hour): 3, bucket("purchase", hour): 3, bucket("click", nextDay.Truncate(time.Hour)): 1}},
		{"daily per type and UTC day", got.Daily, map[bucketKey]int64{
			bucket("page_view", utcDay(t0)): 3, bucket("purchase", utcDay(t0)): 3, bucket("click", utcDay(nextDay)): 1}},
		{"daily users by user id, else anonymous id", got.DailyUsers, map[bucketKey]int64{
			bucket("u1", utcDay(t0)): 1, bucket("a2", utcDay(t0)): 1, bucket("u2", utcDay(t0)): 1,
			bucket("u3", utcDay(t0)): 1, bucket("a2", utcDay(nextDay)): 1}},
		{"revenue leaves failed purchases out, keeps pending ones", got.Revenue, map[bucketKey]revenue{
			bucket("EUR", hour): {Amount: 1700, Count: 2}}},
		{"active users per day, ISO week and month", got.ActiveUsers, map[bucketKey]int64{
			bucket("day", utcDay(t0)): 4, bucket("day", utcDay(nextDay)): 1,
			bucket("week", time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)): 4,
			bucket("week", time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)):  1,
			bucket("month", time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)): 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !equalAny(tt.got, tt.want) {
				t.Errorf("got %v, want %v", tt.got, tt.want)
			}
		})
	}
}

func equalAny(a, b any) bool {
	switch a := a.(type) {
	case map[string]int64:
		return mapsEqual(a, b.(map[string]int64))
	case map[bucketKey]int64:
		return mapsEqual(a, b.(map[bucketKey]int64))
	case map[bucketKey]revenue:
		return mapsEqual(a, b.(map[bucketKey]revenue))
	}
	return false
}

func mapsEqual[K, V comparable](a, b map[K]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestRollupMismatches(t *testing.T) {
	h := t0.Truncate(time.Hour)
	want := newRollups()
	want.EndUsers["u1"] = 2
	want.Hourly[bucket("click", h)] = 3
	want.Revenue[bucket("EUR", h)] = revenue{100, 1}
	got := newRollups()
	got.EndUsers["u1"] = 3
	got.Hourly[bucket("click", h)] = 3
	got.Hourly[bucket("search", h)] = 1
	// revenue row missing

	mismatches := rollupMismatches(want, got)
	wantLines := []string{
		"end_users.event_count u1: expected 2, found 3",
		"event_counts_hourly search @ 2026-12-06T23:00Z: expected no row, found 1",
		"revenue_hourly EUR @ 2026-12-06T23:00Z: expected 100 cents in 1 purchases, no row",
	}
	if !slices.Equal(mismatches, wantLines) {
		t.Errorf("mismatches:\n%s\nwant:\n%s", strings.Join(mismatches, "\n"), strings.Join(wantLines, "\n"))
	}
}

// accepted is an offer the API accepted as id.
func accepted(id, typ, userID string) offer {
	return offer{MessageID: "m-" + id, Event: typ, UserID: userID, AcceptedID: id}
}

func consistent(rows ...eventRow) *snapshot {
	return &snapshot{Events: rows, Stored: expectedRollups(rows)}
}

func TestVerify(t *testing.T) {
	expectedID := func(m string) string { return strings.TrimPrefix(m, "m-") }
	tests := []struct {
		name   string
		in     verifyInput
		check  func(verdict) bool
		failed []string // failure prefixes, in order
	}{
		{
			name: "everything stored once",
			in: verifyInput{Offers: []offer{accepted("1", "click", "u1"), accepted("2", "click", "u1")},
				Snapshot: consistent(row("1", "click", user("u1")), row("2", "click", user("u1"))),
				Kafka:    map[string]int{"1": 1, "2": 1}},
			check: func(v verdict) bool { return v.Accepted == 2 && v.Stored == 2 && v.KafkaChecked },
		},
		{
			name: "an accepted event missing from the read model and the log is lost",
			in: verifyInput{Offers: []offer{accepted("1", "click", "u1"), accepted("2", "click", "u1")},
				Snapshot: consistent(row("1", "click", user("u1"))), Kafka: map[string]int{"1": 1}},
			check:  func(v verdict) bool { return v.Lost == 1 && v.Stored == 1 && v.KafkaMissing == 1 },
			failed: []string{"LOST: 1 accepted events are not in the read model (0 of them are in the Kafka log", "KAFKA MISSING: 1"},
		},
		{
			name: "pending after the drain is stuck",
			in: verifyInput{Offers: []offer{accepted("1", "click", "u1")},
				Snapshot: consistent(row("1", "click", user("u1"), status("pending"))), Kafka: map[string]int{"1": 1}},
			check:  func(v verdict) bool { return v.Stuck == 1 },
			failed: []string{"STUCK: 1"},
		},
		{
			name: "two rows for one messageId are a duplicate",
			in: verifyInput{Offers: []offer{accepted("1", "click", "u1")},
				Snapshot: consistent(row("1", "click", user("u1")), row("x", "click", user("u1"), message("m-1"))),
				Kafka:    map[string]int{"1": 1}},
			check:  func(v verdict) bool { return v.Duplicated == 1 && v.Unexpected == 1 },
			failed: []string{"DUPLICATED: 1", "UNEXPECTED: 1"},
		},
		{
			name: "a stored event whose request never got a 2xx is allowed",
			in: verifyInput{Offers: []offer{{MessageID: "m-1", Event: "click", UserID: "u1"}},
				Snapshot: consistent(row("1", "click", user("u1"))), Kafka: map[string]int{"1": 1}, ExpectedID: expectedID},
			check: func(v verdict) bool { return v.Unacknowledged == 1 && v.Accepted == 0 },
		},
		{
			name: "a record twice in the log is a Kafka duplicate",
			in: verifyInput{Offers: []offer{accepted("1", "click", "u1")},
				Snapshot: consistent(row("1", "click", user("u1"))), Kafka: map[string]int{"1": 3}},
			check:  func(v verdict) bool { return v.KafkaDuplicated == 2 },
			failed: []string{"KAFKA DUPLICATED: 2"},
		},
		{
			name: "an event in the log but not in the read model is lost, not projected",
			in: verifyInput{Offers: []offer{accepted("1", "click", "u1")},
				Snapshot: consistent(), Kafka: map[string]int{"1": 1}},
			check:  func(v verdict) bool { return v.Lost == 1 && v.KafkaMissing == 0 },
			failed: []string{"LOST: 1 accepted events are not in the read model (1 of them are in the Kafka log, not projected"},
		},
		{
			name: "roll-ups that disagree with the rows fail",
			in: verifyInput{Offers: []offer{accepted("1", "click", "u1")},
				Snapshot: &snapshot{Events: []eventRow{row("1", "click", user("u1"))}, Stored: newRollups()},
				Kafka:    map[string]int{"1": 1}},
			check:  func(v verdict) bool { return len(v.Rollups) == 7 },
			failed: []string{"ROLL-UPS: 7"},
		},
		{
			name: "a row that differs from what was sent is mismatched",
			in: verifyInput{Offers: []offer{accepted("1", "click", "u1")},
				Snapshot: consistent(row("1", "search", user("u2"))), Kafka: map[string]int{"1": 1}},
			check:  func(v verdict) bool { return v.Mismatched == 1 },
			failed: []string{"MISMATCHED: 1"},
		},
		{
			name: "an outcome other than the rules give is mismatched",
			in: verifyInput{Offers: []offer{accepted("1", "click", "u1"),
				{MessageID: "m-2", Event: "purchase", UserID: "u1", Amount: 5, Currency: failingCurrency, AcceptedID: "2"}},
				Snapshot: consistent(row("1", "click", user("u1"), status("failed")),
					row("2", "purchase", user("u1"), paid(5, failingCurrency), status("failed"))),
				Kafka: map[string]int{"1": 1, "2": 1}},
			check:  func(v verdict) bool { return v.Mismatched == 1 },
			failed: []string{"MISMATCHED: 1 stored events differ from what was sent or from the outcome the rules give (e.g. 1 (status failed (), expected processed))"},
		},
		{
			name: "a refused valid event, an id conflict and an unreadable log fail",
			in: verifyInput{Offers: []offer{{MessageID: "m-1", Event: "click", Refusal: "401 unknown key"}},
				Conflicts: []string{"m-2: a then b"}, Snapshot: consistent(), KafkaErr: errors.New("broker down")},
			check:  func(v verdict) bool { return v.Refused == 1 && !v.KafkaChecked },
			failed: []string{"ID CONFLICT: 1", "REFUSED: 1", "KAFKA: the log could not be read: broker down"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := verify(tt.in)
			if !tt.check(v) {
				t.Errorf("verdict %+v", v)
			}
			if len(v.Failures) != len(tt.failed) {
				t.Fatalf("failures %q, want %d starting %q", v.Failures, len(tt.failed), tt.failed)
			}
			for i, prefix := range tt.failed {
				if !strings.HasPrefix(v.Failures[i], prefix) {
					t.Errorf("failure %d = %q, want it to start %q", i, v.Failures[i], prefix)
				}
			}
		})
	}
}

func TestDrained(t *testing.T) {
	tests := []struct {
		name     string
		accepted map[string]bool
		statuses map[string]string
		want     bool
	}{
		{"all stored and settled", map[string]bool{"a": true}, map[string]string{"a": "processed", "b": "failed"}, true},
		{"one missing", map[string]bool{"a": true, "c": true}, map[string]string{"a": "processed"}, false},
		{"one pending", map[string]bool{"a": true}, map[string]string{"a": "pending"}, false},
		{"an unacknowledged row pending", map[string]bool{"a": true}, map[string]string{"a": "processed", "z": "pending"}, false},
	}
	for _, tt := range tests {
		if got := drained(tt.accepted, tt.statuses); got != tt.want {
			t.Errorf("%s: drained = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestExamplesOf(t *testing.T) {
	tests := []struct {
		in   []string
		want string
	}{
		{nil, ""},
		{[]string{"b", "a"}, " (e.g. a; b)"},
		{[]string{"7", "6", "5", "4", "3", "2", "1"}, " (e.g. 1; 2; 3; 4; 5; … 2 more)"},
	}
	for _, tt := range tests {
		if got := examplesOf(tt.in); got != tt.want {
			t.Errorf("examplesOf(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
