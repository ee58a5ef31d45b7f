package projections_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/gamify/boost/domain"
	"github.com/gamify/boost/internal/testenv"
	"github.com/gamify/boost/projections"
)

// TestBulkReplayBuildsWhatApplyBuilds replays a log with duplicates,
// failures, identifies and rejections through the bulk build (with rows
// written before and after their outcomes arrive) and compares every
// table with what Apply builds from the same log.
func TestBulkReplayBuildsWhatApplyBuilds(t *testing.T) {
	for _, window := range []int{100_000, 4} {
		for _, mode := range testenv.Modes() {
			// Names must differ: a '#' in a SQLite path ends it.
			t.Run(fmt.Sprintf("%s-window-%d", mode, window), func(t *testing.T) {
				defer projections.SetBulkWindow(window)()
				project := domain.NewID()
				log := history(t, project)
				log = append(log, log[3:20]...) // re-sent duplicates, some outcomes twice
				p := projections.NewEvents("events")

				envA, envB := testenv.Start(t, mode), testenv.Start(t, mode)
				envA.Migrate(t.Context())
				envB.Migrate(t.Context())
				a, b := envA.OpenDB(t.Context()), envB.OpenDB(t.Context())
				apply(t, a, p, [][]domain.Event{log})

				writeLog(t, envB, "bulk", 3, log)
				// Killed while finishing: the live tables are untouched, and
				// the next run starts afresh and completes.
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				rp := &projections.Replay{DB: b, Brokers: envB.Kafka.Addrs(), Projection: projections.NewEvents("bulk.events"),
					Log: testenv.Logger(t), Progress: cancelOn{"events built", cancel}, UntilEnd: true}
				if err := rp.Run(ctx); !errors.Is(err, context.Canceled) {
					t.Fatalf("killed replay returned %v", err)
				}
				var n int
				if err := b.NewRaw("SELECT count(*) FROM events").Scan(t.Context(), &n); err != nil || n != 0 {
					t.Fatalf("%d events after a killed replay (%v)", n, err)
				}
				rp.Progress = io.Discard
				if err := rp.Run(t.Context()); err != nil {
					t.Fatal(err)
				}
				da, db := dump(t, a), dump(t, b)
				for _, tbl := range readTables {
					if len(da[tbl]) == 0 {
						t.Fatalf("%s is empty: the comparison proves nothing", tbl)
					}
					if !reflect.DeepEqual(da[tbl], db[tbl]) {
						t.Errorf("%s differs:\napply: %v\nbulk:  %v", tbl, da[tbl], db[tbl])
					}
				}
			})
		}
	}
}

// cancelOn cancels when a progress line contains a string.
type cancelOn struct {
	s      string
	cancel context.CancelFunc
}

func (c cancelOn) Write(p []byte) (int, error) {
	if strings.Contains(string(p), c.s) {
		c.cancel()
	}
	return len(p), nil
}
