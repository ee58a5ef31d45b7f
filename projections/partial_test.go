package projections_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/gamify/boost/domain"
	"github.com/gamify/boost/internal/testenv"
	"github.com/gamify/boost/projections"
	"github.com/gamify/boost/readmodel"
	"github.com/gamify/boost/store"
)

// TestPartialReplayWaitsForTheLiveRunner holds a partition's lock as a
// live batch does and checks that a partial replay of that partition
// waits for it and applies nothing until it is released: the two read and
// rewrite the same derived rows, so they must take turns.
func TestPartialReplayWaitsForTheLiveRunner(t *testing.T) {
	if !hasMode(testenv.Distributed) {
		t.Skip("row locks matter on PostgreSQL only; set BOOST_TEST_DATABASE_URL and BOOST_TEST_NATS_URL")
	}
	env := testenv.Start(t, testenv.Distributed)
	env.Migrate(t.Context())
	db := env.OpenDB(t.Context())
	project := domain.NewID()
	writeLog(t, env, "partial", 1, history(t, project))
	p := projections.NewEvents("partial.events")

	// A live batch in flight on the partition.
	tx, err := db.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck // committed below
	if err := projections.LockPartition(t.Context(), tx, db, p.Name(), "partial.events", 0); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		rp := &projections.Replay{DB: db, Brokers: env.Kafka.Addrs(), Projection: p, Log: testenv.Logger(t)}
		done <- rp.RunFrom(context.WithoutCancel(t.Context()), func(string, int32) kgo.Offset { return kgo.NewOffset().At(0) })
	}()
	events := func() int64 {
		n, err := db.NewSelect().Model((*readmodel.Event)(nil)).Where("project_id = "+store.ProjectKeySQL("?"), project).Count(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	// Wait until the replay is blocked on the lock, not merely slow to start.
	for waiting := 0; waiting == 0; {
		select {
		case err := <-done:
			t.Fatalf("partial replay finished (%v) while a live batch held its partition", err)
		case <-time.After(20 * time.Millisecond):
		}
		if err := db.NewRaw("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "+
			"AND wait_event_type = 'Lock' AND wait_event = 'advisory'").Scan(t.Context(), &waiting); err != nil {
			t.Fatal(err)
		}
	}
	if n := events(); n != 0 {
		t.Fatalf("%d events applied while a live batch held the partition", n)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := events(); n == 0 {
		t.Fatal("nothing applied once the partition was released")
	}
}

func hasMode(m testenv.Mode) bool {
	for _, x := range testenv.Modes() {
		if x == m {
			return true
		}
	}
	return false
}
