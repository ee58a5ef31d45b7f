package projections_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/gamify/boost/bus"
	"github.com/gamify/boost/domain"
	"github.com/gamify/boost/health"
	"github.com/gamify/boost/internal/testenv"
	"github.com/gamify/boost/projections"
	"github.com/gamify/boost/readmodel"
	"github.com/gamify/boost/store"
)

// refusePoison makes the database refuse events named "poison", as a bug
// the projection cannot apply past would: a deterministic error while the
// database answers. The returned func is the fix.
func refusePoison(t *testing.T, db *store.DB) (fix func()) {
	t.Helper()
	add, drop := "ALTER TABLE events ADD CONSTRAINT no_poison CHECK (type <> 'poison')",
		"ALTER TABLE events DROP CONSTRAINT no_poison"
	if db.Dialect == store.SQLite {
		add = "CREATE TRIGGER no_poison BEFORE INSERT ON events WHEN NEW.type = 'poison' BEGIN SELECT RAISE(ABORT, 'no_poison: refused'); END"
		drop = "DROP TRIGGER no_poison"
	}
	if _, err := db.ExecContext(t.Context(), add); err != nil {
		t.Fatal(err)
	}
	return func() {
		if _, err := db.ExecContext(t.Context(), drop); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRunnerQuarantinesWhatItCannotApply puts a poison event and an
// undecodable record among two tenants' events: everything else is
// applied, the two are quarantined with their position, error, attempts and
// bytes, the checkpoint passes them, health counts them, and reprocessing
// the poison after the fix applies it once, with the outcome that came
// after it in the log.
func TestRunnerQuarantinesWhatItCannotApply(t *testing.T) {
	for _, mode := range testenv.Modes() {
		t.Run(string(mode), func(t *testing.T) {
			env := testenv.Start(t, mode)
			env.Migrate(t.Context())
			db := env.OpenDB(t.Context())
			fix := refusePoison(t, db)

			a, b := domain.NewID(), domain.NewID()
			log := append(history(t, a), history(t, b)...)
			poisonID := domain.EventIDFor(a, "poison")
			meta := domain.Meta{AggregateType: domain.AggregateEvent, AggregateID: poisonID, ProjectID: a, OccurredAt: time.Now()}
			poison, _ := domain.NewEventWithID(poisonID, domain.EventTracked, meta, domain.TrackedData{Event: "poison",
				UserID: "u-poison", KeyID: domain.NewID(), KeyType: domain.KeySecret, ReceivedAt: time.Now()})
			processed, _ := domain.NewEventWithID(domain.EventIDFor(poisonID, domain.EventProcessed), domain.EventProcessed,
				meta, domain.OutcomeData{EventID: poisonID})
			log = append(log[:30], append([]domain.Event{poison, processed}, log[30:]...)...)
			prefix := "q" + testenv.RandomSuffix()
			writeLog(t, env, prefix, 1, log)
			topic := prefix + ".events"
			produce(t, env, &kgo.Record{Topic: topic, Key: []byte(b), Value: []byte("not json at all")})

			p := projections.NewEvents(topic)
			r, err := projections.NewRunner(projections.RunnerConfig{DB: db, Brokers: env.Kafka.Addrs(), Group: prefix + ".group",
				Projection: p, Log: testenv.Logger(t), Metrics: nopMetrics{}, Stage: health.NewBoard(0).Stage(projections.StageName(p.Name()))})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() { done <- r.Run(ctx) }()
			total := int64(len(log) + 1)
			waitFor(t, 60*time.Second, "the runner to pass every record", func() bool {
				var next int64
				_ = db.NewRaw("SELECT COALESCE(MAX(next_offset), 0) FROM projection_checkpoints WHERE projection = ?", p.Name()).
					Scan(t.Context(), &next)
				return next == total
			})
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}

			for _, project := range []string{a, b} {
				var stored int
				_ = db.NewRaw("SELECT count(*) FROM events WHERE project_id = "+store.ProjectKeySQL("?"), project).Scan(t.Context(), &stored)
				if stored != 60 {
					t.Errorf("project %s: %d events stored, want 60", project, stored)
				}
			}
			var held []readmodel.QuarantinedRecord
			if err := db.NewSelect().Model(&held).Order("record_offset").Scan(t.Context()); err != nil {
				t.Fatal(err)
			}
			if len(held) != 2 {
				t.Fatalf("%d quarantined, want 2: %+v", len(held), held)
			}
			pq, uq := held[0], held[1]
			if pq.Offset != 30 || pq.Topic != topic || pq.Projection != "events" || pq.Attempts != 4 ||
				pq.EventID == nil || *pq.EventID != poisonID || pq.ProjectID == nil || *pq.ProjectID != a ||
				!strings.Contains(pq.Error, "no_poison") || pq.Status != readmodel.QuarantineHeld || pq.FirstSeenAt.IsZero() {
				t.Errorf("poison quarantined as %+v", pq)
			}
			if v, _ := json.Marshal(&poison); string(pq.Value) != string(v) {
				t.Errorf("poison kept as %s, want the record's bytes %s", pq.Value, v)
			}
			if uq.Offset != total-1 || string(uq.Value) != "not json at all" || !strings.Contains(uq.Error, "undecodable") {
				t.Errorf("undecodable record quarantined as %+v", uq)
			}
			if st := r.Stage.Snapshot(); st.Quarantined != 2 || st.Failures < 4 || st.Backlog != 0 {
				t.Errorf("stage %+v, want 2 quarantined, the failures counted, nothing waiting", st)
			}

			// Before the fix it still fails, and says so.
			var still *projections.StillFailing
			if err := projections.Reprocess(t.Context(), db, p, pq.ID); !errors.As(err, &still) {
				t.Fatalf("reprocess before the fix: %v, want StillFailing", err)
			}
			fix()
			if err := projections.Reprocess(t.Context(), db, p, pq.ID); err != nil {
				t.Fatalf("reprocess after the fix: %v", err)
			}
			if err := projections.Reprocess(t.Context(), db, p, pq.ID); !errors.Is(err, projections.ErrNotQuarantined) {
				t.Fatalf("second reprocess: %v, want ErrNotQuarantined", err)
			}
			var status string
			var count int
			_ = db.NewRaw("SELECT status FROM events WHERE id = ?", poisonID).Scan(t.Context(), &status)
			_ = db.NewRaw("SELECT event_count FROM end_users WHERE project_id = "+store.ProjectKeySQL("?")+" AND external_id = 'u-poison'", a).Scan(t.Context(), &count)
			if status != readmodel.StatusProcessed || count != 1 {
				t.Errorf("after reprocessing: status %q, user counted %d times; want processed, once", status, count)
			}
			var orphans, attempts int
			_ = db.NewRaw("SELECT count(*) FROM orphan_outcomes").Scan(t.Context(), &orphans)
			_ = db.NewRaw("SELECT attempts FROM quarantined_records WHERE id = ?", pq.ID).Scan(t.Context(), &attempts)
			if orphans != 2 || attempts != 5 { // each history's outcome of a missing event
				t.Errorf("%d orphan outcomes (want 2), %d attempts recorded (want 5)", orphans, attempts)
			}
			if err := projections.Reprocess(t.Context(), db, p, uq.ID); !errors.As(err, &still) {
				t.Errorf("reprocessing the undecodable record: %v, want StillFailing", err)
			}
		})
	}
}

func produce(t *testing.T, env *testenv.Env, recs ...*kgo.Record) {
	t.Helper()
	cl, err := bus.NewKafkaClient(env.Kafka.Addrs())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

type nopMetrics struct{}

func (nopMetrics) Projected(string, int)          {}
func (nopMetrics) SetProjectionLag(string, int64) {}

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
