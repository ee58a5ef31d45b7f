package services_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/uptrace/bun"

	"github.com/gamify/boost/domain"
	"github.com/gamify/boost/internal/testenv"
	"github.com/gamify/boost/projections"
	"github.com/gamify/boost/services"
	"github.com/gamify/boost/store"
)

// readModels dumps every table of every projection, ordered.
func readModels(t *testing.T, db *store.DB, cfgProjections []projections.Projection) map[string][]map[string]any {
	t.Helper()
	var tables []string
	for _, p := range cfgProjections {
		tables = append(tables, p.Tables()...)
	}
	return testenv.DumpTables(t, db, tables...)
}

// mayBeEmpty are tables an ingested history without quarantined records
// leaves empty; the projections' own tests fill them.
var mayBeEmpty = map[string]bool{"orphan_outcomes": true}

func sameModels(t *testing.T, want, got map[string][]map[string]any) {
	t.Helper()
	for tbl, rows := range want {
		if len(rows) == 0 && !mayBeEmpty[tbl] {
			t.Fatalf("%s is empty: the comparison proves nothing", tbl)
		}
		if len(got[tbl]) != len(rows) {
			t.Fatalf("%s: %d rows before, %d after", tbl, len(rows), len(got[tbl]))
		}
		for i := range rows {
			if !reflect.DeepEqual(rows[i], got[tbl][i]) {
				t.Fatalf("%s row %d differs:\nbefore %v\nafter  %v", tbl, i, rows[i], got[tbl][i])
			}
		}
	}
}

// ingestHistory sends a mixed history (tracks, identifies, purchases,
// a failing purchase, a revoked key) and waits until it is all projected.
func ingestHistory(t *testing.T, nd *node, tn tenant, n int) {
	t.Helper()
	var items []string
	for i := range n {
		switch i % 5 {
		case 0:
			items = append(items, fmt.Sprintf(`{"event":"$identify","userId":"u%d","anonymousId":"a%d","traits":{"plan":"p%d"},"messageId":"h-%d"}`, i%13, i%17, i, i))
		case 1:
			items = append(items, fmt.Sprintf(`{"event":"purchase","userId":"u%d","messageId":"h-%d","properties":{"orderId":"o%d","amount":%d,"currency":"%s"}}`,
				i%13, i, i, i*10, []string{"EUR", "USD", "XYZ"}[i%3]))
		default:
			items = append(items, fmt.Sprintf(`{"event":"page_view","anonymousId":"a%d","userId":"u%d","messageId":"h-%d","properties":{"i":%d}}`, i%17, i%13, i, i))
		}
	}
	for i := 0; i < len(items); i += 250 {
		if r := nd.post("/v1/events/batch", tn.sk, `{"batch":[`+strings.Join(items[i:min(i+250, len(items))], ",")+`]}`); r.Status != 202 {
			t.Fatalf("batch: %d %s", r.Status, r.Body)
		}
	}
	waitUntil(t, 60*time.Second, "history projected", func() bool {
		return nd.countRows("SELECT count(*) FROM events WHERE project_id = "+store.ProjectKeySQL("?")+" AND status <> 'pending'", tn.project) == n
	})
}

func TestReplayRebuildsTheSameReadModels(t *testing.T) {
	eachMode(t, func(t *testing.T, env *testenv.Env) {
		nd := startNode(t, env, services.AllRoles...)
		tn := newTenant(t, nd)
		nd.admin("DELETE", "/v1/projects/"+tn.project+"/api-keys/"+tn.pkID, "", 200)
		ingestHistory(t, nd, tn, 600)
		all := services.Projections(env.Config, nil)
		before := readModels(t, nd.n.DB, all)

		for _, p := range all {
			rp := &projections.Replay{DB: nd.n.DB, Brokers: env.Config.KafkaBrokers, Projection: p, Log: testenv.Logger(t), Progress: io.Discard}
			if err := rp.Run(t.Context()); err != nil {
				t.Fatalf("replay %s: %v", p.Name(), err)
			}
		}
		sameModels(t, before, readModels(t, nd.n.DB, all))

		// A partial rebuild re-applies onto the live tables: idempotent.
		for _, p := range all {
			rp := &projections.Replay{DB: nd.n.DB, Brokers: env.Config.KafkaBrokers, Projection: p, Log: testenv.Logger(t)}
			if err := rp.RunFrom(t.Context(), func(string, int32) kgo.Offset { return kgo.NewOffset().At(0) }); err != nil {
				t.Fatalf("partial replay %s: %v", p.Name(), err)
			}
		}
		sameModels(t, before, readModels(t, nd.n.DB, all))

		// Ingestion keeps running during a replay, and nothing is lost.
		done := make(chan struct{})
		var sent atomic.Int64
		go func() {
			defer close(done)
			for i := range 40 {
				r := nd.post("/v1/events/track", tn.sk, fmt.Sprintf(`{"event":"during","userId":"d%d"}`, i))
				if r.Status == 202 {
					sent.Add(1)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}()
		rp := &projections.Replay{DB: nd.n.DB, Brokers: env.Config.KafkaBrokers, Projection: projections.NewEvents(env.Config.Topics.Events),
			Log: testenv.Logger(t), Progress: io.Discard, MaxBatch: 100}
		if err := rp.Run(t.Context()); err != nil {
			t.Fatalf("replay during ingestion: %v", err)
		}
		<-done
		want := 600 + int(sent.Load())
		waitUntil(t, 30*time.Second, "events sent during the replay projected", func() bool {
			return nd.countRows("SELECT count(*) FROM events WHERE project_id = "+store.ProjectKeySQL("?")+" AND status <> 'pending'", tn.project) == want
		})
		if n := nd.countRows("SELECT COALESCE(SUM(count), 0) FROM event_counts_hourly WHERE project_id = "+store.ProjectKeySQL("?"), tn.project); n != want {
			t.Fatalf("hourly counts add up to %d, %d events", n, want)
		}
		if r := nd.do("GET", "/v1/projects/"+tn.project+"/events?limit=1", "", env.AdminToken); r.Status != 200 {
			t.Fatalf("queries after the swap: %d %s", r.Status, r.Body)
		}
	})
}

// cancelAfter cancels the replay's context after n batches, as a kill
// would.
type cancelAfter struct {
	projections.Projection
	n      int32
	calls  atomic.Int32
	cancel context.CancelFunc
}

func (c *cancelAfter) Apply(ctx context.Context, tx bun.Tx, db *store.DB, events []domain.Event) error {
	if c.calls.Add(1) == c.n {
		c.cancel()
	}
	return c.Projection.Apply(ctx, tx, db, events)
}

func TestKilledReplayLeavesTheOldModelServing(t *testing.T) {
	eachMode(t, func(t *testing.T, env *testenv.Env) {
		nd := startNode(t, env, services.AllRoles...)
		tn := newTenant(t, nd)
		ingestHistory(t, nd, tn, 1000)
		all := services.Projections(env.Config, nil)
		before := readModels(t, nd.n.DB, all)

		ctx, cancel := context.WithCancel(t.Context())
		killed := &cancelAfter{Projection: projections.NewEvents(env.Config.Topics.Events), n: 3, cancel: cancel}
		rp := &projections.Replay{DB: nd.n.DB, Brokers: env.Config.KafkaBrokers, Projection: killed, Log: testenv.Logger(t),
			Progress: io.Discard, MaxBatch: 50}
		if err := rp.Run(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("killed replay returned %v", err)
		}
		if killed.calls.Load() < 3 {
			t.Fatal("the replay was killed before it started")
		}
		sameModels(t, before, readModels(t, nd.n.DB, all))
		if r := nd.do("GET", "/v1/projects/"+tn.project+"/analytics/top-events", "", env.AdminToken); r.Status != 200 {
			t.Fatalf("old model not serving: %d %s", r.Status, r.Body)
		}

		rp = &projections.Replay{DB: nd.n.DB, Brokers: env.Config.KafkaBrokers, Projection: projections.NewEvents(env.Config.Topics.Events),
			Log: testenv.Logger(t), Progress: io.Discard, MaxBatch: 50}
		if err := rp.Run(t.Context()); err != nil {
			t.Fatalf("re-run: %v", err)
		}
		sameModels(t, before, readModels(t, nd.n.DB, all))
	})
}
