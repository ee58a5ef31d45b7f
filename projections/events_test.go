package projections_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/uptrace/bun"

	"github.com/gamify/boost/bus"
	"github.com/gamify/boost/domain"
	"github.com/gamify/boost/internal/testenv"
	"github.com/gamify/boost/projections"
	"github.com/gamify/boost/store"
)

var readTables = projections.NewEvents("events").Tables()

// history builds a project's log: tracked events (some commerce, some
// failing), identifies with conflicting traits, rejections and outcomes.
func history(t *testing.T, project string) []domain.Event {
	t.Helper()
	base := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	var log []domain.Event
	add := func(id, typ string, at time.Time, payload any) {
		e, err := domain.NewEventWithID(id, typ, domain.Meta{AggregateType: domain.AggregateEvent, AggregateID: id,
			ProjectID: project, OccurredAt: at}, payload)
		if err != nil {
			t.Fatal(err)
		}
		e.ReceivedAt = at.Add(time.Second)
		log = append(log, e)
	}
	key := domain.NewID()
	var lateFailure func()
	for i := range 60 {
		id := domain.EventIDFor(project, fmt.Sprint("m", i))
		// 4 days, so users come back to a type; whole seconds and fractions
		// of one (to 1, 2 and 6 digits, and finer than µs, which storage
		// drops).
		frac := []time.Duration{0, 500 * time.Millisecond, 120 * time.Millisecond, 1_234_567, 999_999_999}[i%5]
		at := base.Add(time.Duration(i)*97*time.Minute + frac)
		d := domain.TrackedData{Event: "page_view", UserID: fmt.Sprint("u", i%5), Properties: json.RawMessage(`{"i":1}`),
			ReceivedAt: at, KeyID: key, KeyType: domain.KeySecret}
		if i%7 == 0 {
			// What clients may send besides: every column of the row set.
			ts, sent := at.Add(-1500*time.Millisecond), at.Add(-250*time.Microsecond)
			d.Context = json.RawMessage(fmt.Sprintf(`{"ip":"192.0.2.%d","library":{"name":"boost-js"}}`, i))
			d.MessageID, d.Timestamp, d.SentAt = fmt.Sprint("msg-", i), &ts, &sent
			d.Integrations = json.RawMessage(`{"All":true,"Mixpanel":false}`)
		}
		typ := domain.EventTracked
		switch i % 6 {
		case 1:
			d.Event = "purchase"
			d.Properties = json.RawMessage(fmt.Sprintf(`{"orderId":"o%d","amount":%d,"currency":"EUR"}`, i, 100+i))
		case 2:
			typ, d.Event = domain.UserIdentified, domain.IdentifyEvent
			d.AnonymousID = fmt.Sprint("anon", i%4)
			d.Properties = json.RawMessage(fmt.Sprintf(`{"plan":"p%d","n":%d}`, i, i%3))
		case 3:
			d.UserID, d.AnonymousID = "", fmt.Sprint("anon", i%4)
		case 4:
			typ, d.Reason = domain.EventRejected, "forbidden"
			d.Traits, d.PreviousID = json.RawMessage(`{"plan":"rejected"}`), "never-linked" // a rejected event says nothing
		case 5:
			// PostHog's $set and $set_once on a capture, and an alias now
			// and then: set-once values lose to every set and to earlier
			// set-onces, whatever order they arrive in.
			d.Traits = json.RawMessage(fmt.Sprintf(`{"plan":"set%d"}`, i))
			d.TraitsOnce = json.RawMessage(fmt.Sprintf(`{"first":"once%d","plan":"never"}`, i))
			if i%4 == 1 {
				d.Event, d.PreviousID = domain.AliasEvent, fmt.Sprint("prev", i%3)
			}
		}
		add(id, typ, at, d)
		if typ == domain.EventTracked {
			outcome, payload := domain.EventProcessed, domain.OutcomeData{EventID: id}
			if i%12 == 7 {
				outcome, payload.Reason = domain.EventFailed, "unsupported currency"
			}
			if i == 7 {
				// A purchase that fails long after it was tracked: its
				// revenue is counted, then taken back (the bulk replay has
				// written its row by then).
				lateFailure = func() { add(domain.EventIDFor(id, outcome), outcome, at.Add(time.Hour), payload) }
				continue
			}
			add(domain.EventIDFor(id, outcome), outcome, at.Add(2*time.Second), payload)
		}
	}
	lateFailure()
	// The outcome of an event the log does not hold (it was quarantined):
	// it waits for its event.
	missing := domain.EventIDFor(project, "quarantined")
	add(domain.EventIDFor(missing, domain.EventFailed), domain.EventFailed, base.Add(time.Hour),
		domain.OutcomeData{EventID: missing, Reason: "unsupported currency"})
	return log
}

// writeLog creates the topics <prefix>.tenancy and <prefix>.events in
// env's Kafka and appends log to the events topic, keyed by project as the
// bridge does.
func writeLog(t *testing.T, env *testenv.Env, prefix string, partitions int32, log []domain.Event) {
	t.Helper()
	cl, err := bus.NewKafkaClient(env.Kafka.Addrs())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	topics := bus.Topics{Tenancy: prefix + ".tenancy", Events: prefix + ".events", Partitions: partitions, Replication: 1}
	if err := bus.EnsureTopics(t.Context(), cl, topics); err != nil {
		t.Fatal(err)
	}
	for _, e := range log {
		v, _ := json.Marshal(&e)
		if err := cl.ProduceSync(t.Context(), &kgo.Record{Topic: topics.Events, Key: []byte(e.ProjectID), Value: v}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

func apply(t *testing.T, db *store.DB, p projections.Projection, batches [][]domain.Event) {
	t.Helper()
	for _, b := range batches {
		if err := db.RunInTx(context.Background(), nil, func(ctx context.Context, tx bun.Tx) error {
			return p.Apply(ctx, tx, db, b)
		}); err != nil {
			t.Fatal(err)
		}
	}
}

func dump(t *testing.T, db *store.DB) map[string][]map[string]any {
	t.Helper()
	return testenv.DumpTables(t, db, readTables...)
}

// TestEventsProjectionIsOrderAndDuplicateProof applies one log in one
// batch, and again in small batches, reordered across subjects and with
// re-sent duplicates (what the bridge and parallel workers can produce):
// the read models must be identical.
func TestEventsProjectionIsOrderAndDuplicateProof(t *testing.T) {
	for _, mode := range testenv.Modes() {
		t.Run(string(mode), func(t *testing.T) {
			project := domain.NewID()
			log := history(t, project)
			p := projections.NewEvents("events")

			envA, envB := testenv.Start(t, mode), testenv.Start(t, mode)
			envA.Migrate(t.Context())
			envB.Migrate(t.Context())
			a, b := envA.OpenDB(t.Context()), envB.OpenDB(t.Context())
			apply(t, a, p, [][]domain.Event{log})

			// Parallel workers may append different events in any order,
			// but an outcome is always appended after its event; duplicates
			// are re-sent later.
			rng := rand.New(rand.NewPCG(1, 2))
			var groups [][]domain.Event
			for _, e := range log {
				if e.Type == domain.EventProcessed || e.Type == domain.EventFailed {
					groups[len(groups)-1] = append(groups[len(groups)-1], e)
					continue
				}
				groups = append(groups, []domain.Event{e})
			}
			rng.Shuffle(len(groups), func(i, j int) { groups[i], groups[j] = groups[j], groups[i] })
			var shuffled []domain.Event
			for _, g := range groups {
				shuffled = append(shuffled, g...)
			}
			shuffled = append(shuffled, log[:25]...)
			var batches [][]domain.Event
			for len(shuffled) > 0 {
				n := min(len(shuffled), 1+rng.IntN(9))
				batches = append(batches, shuffled[:n])
				shuffled = shuffled[n:]
			}
			apply(t, b, p, batches)

			da, db := dump(t, a), dump(t, b)
			for _, tbl := range readTables {
				if len(da[tbl]) == 0 {
					t.Fatalf("%s is empty: the comparison proves nothing", tbl)
				}
				if len(da[tbl]) != len(db[tbl]) {
					t.Errorf("%s: %d rows in one batch, %d reordered", tbl, len(da[tbl]), len(db[tbl]))
					continue
				}
				for i := range da[tbl] {
					if !reflect.DeepEqual(da[tbl][i], db[tbl][i]) {
						t.Errorf("%s row %d differs:\none batch: %v\nreordered: %v", tbl, i, da[tbl][i], db[tbl][i])
						break
					}
				}
			}
			var revenue, failed int
			_ = a.NewRaw("SELECT COALESCE(SUM(amount),0) FROM revenue_hourly").Scan(t.Context(), &revenue)
			_ = a.NewRaw("SELECT count(*) FROM events WHERE status = 'failed'").Scan(t.Context(), &failed)
			if revenue == 0 || failed == 0 {
				t.Fatalf("revenue %d, failed %d: history lacks cases", revenue, failed)
			}
		})
	}
}

// TestOutcomeWithReSentEventIsNotLost covers a bridge re-sending an event
// after a crash: the duplicate arrives in the same batch as the event's
// outcome, the duplicate's insert is a no-op, and the outcome must still
// reach the stored row.
func TestOutcomeWithReSentEventIsNotLost(t *testing.T) {
	env := testenv.Start(t, testenv.Embedded)
	env.Migrate(t.Context())
	db := env.OpenDB(t.Context())
	project := domain.NewID()
	id := domain.NewID()
	meta := domain.Meta{AggregateType: domain.AggregateEvent, AggregateID: id, ProjectID: project, OccurredAt: time.Now()}
	tracked, _ := domain.NewEventWithID(id, domain.EventTracked, meta, domain.TrackedData{Event: "click", UserID: "u",
		KeyID: domain.NewID(), KeyType: domain.KeySecret, ReceivedAt: time.Now()})
	done, _ := domain.NewEventWithID(domain.EventIDFor(id, domain.EventProcessed), domain.EventProcessed, meta,
		domain.OutcomeData{EventID: id})
	p := projections.NewEvents("events")
	apply(t, db, p, [][]domain.Event{{tracked}, {tracked, done}})
	var status string
	if err := db.NewRaw("SELECT status FROM events WHERE id = ?", id).Scan(t.Context(), &status); err != nil || status != "processed" {
		t.Fatalf("status %q (%v), want processed", status, err)
	}
}
