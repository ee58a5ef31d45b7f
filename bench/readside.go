package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/pprof"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/gamify/boost/bus"
	"github.com/gamify/boost/domain"
	"github.com/gamify/boost/projections"
	"github.com/gamify/boost/queries"
	"github.com/gamify/boost/store"
)

// ReadSideConfig is one read-side benchmark: a synthetic log of Events
// tracked events (each with its EventProcessed) over Days days, Users
// users and Types event types, replayed into DatabaseURL, then every
// analytics query timed Repeat times.
type ReadSideConfig struct {
	Events, Users, Types, Days, Repeat int
	DatabaseURL                        string // postgres://… or a SQLite path; empty: a temp SQLite file
	Out                                io.Writer
}

// RunReadSide builds the log in an embedded kfake, replays it and times
// the queries. It prints as it goes.
func RunReadSide(ctx context.Context, c ReadSideConfig) error {
	dir, err := os.MkdirTemp("", "boost-bench-read")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	k, err := bus.StartEmbeddedKafka("", 0)
	if err != nil {
		return err
	}
	defer k.Close()
	topic := "bench.events"
	cl, err := bus.NewKafkaClient(k.Addrs(), kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedRecords(100_000))
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := bus.EnsureTopics(ctx, cl, bus.Topics{Tenancy: "bench.tenancy", Events: topic, Partitions: 6, Replication: 1}); err != nil {
		return err
	}

	project, key := domain.NewID(), domain.NewID()
	end := time.Now().UTC().Truncate(time.Hour)
	start := end.AddDate(0, 0, -c.Days)
	rng := rand.New(rand.NewPCG(7, 11))
	types := make([]string, c.Types)
	for i := range types {
		types[i] = fmt.Sprintf("event_%02d", i)
	}
	types[0], types[1], types[2] = "page_view", "cart_add", "purchase"
	began := time.Now()
	produceErr := make(chan error, 1)
	var pending int
	flush := func() error {
		if err := cl.Flush(ctx); err != nil {
			return err
		}
		select {
		case err := <-produceErr:
			return err
		default:
		}
		pending = 0
		return nil
	}
	for i := range c.Events {
		at := start.Add(time.Duration(rng.Int64N(int64(end.Sub(start)))))
		typ := types[min(int(rng.ExpFloat64()*float64(c.Types)/4), c.Types-1)]
		d := domain.TrackedData{Event: typ, UserID: fmt.Sprintf("user-%d", rng.IntN(c.Users)),
			Properties: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i)), ReceivedAt: at, KeyID: key, KeyType: domain.KeySecret}
		if typ == "purchase" {
			d.Properties = json.RawMessage(fmt.Sprintf(`{"orderId":"o%d","amount":%d,"currency":"EUR"}`, i, 100+rng.IntN(10_000)))
		}
		id := domain.NewID()
		meta := domain.Meta{AggregateType: domain.AggregateEvent, AggregateID: id, ProjectID: project, OccurredAt: at}
		tracked, _ := domain.NewEventWithID(id, domain.EventTracked, meta, d)
		done, _ := domain.NewEventWithID(domain.EventIDFor(id, domain.EventProcessed), domain.EventProcessed, meta,
			domain.OutcomeData{EventID: id})
		for _, e := range []domain.Event{tracked, done} {
			b, _ := json.Marshal(&e)
			cl.Produce(ctx, &kgo.Record{Topic: topic, Key: []byte(project), Value: b}, func(_ *kgo.Record, err error) {
				if err != nil {
					select {
					case produceErr <- err:
					default:
					}
				}
			})
			pending++
		}
		if pending >= 50_000 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	fmt.Fprintf(c.Out, "log: %d events (%d records) over %d days, %d users, %d types, written in %s\n",
		c.Events, 2*c.Events, c.Days, c.Users, c.Types, time.Since(began).Round(time.Millisecond))

	url := c.DatabaseURL
	if url == "" {
		url = filepath.Join(dir, "read.db")
	}
	db, err := store.Open(ctx, url)
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		return err
	}
	if path := os.Getenv("BOOST_BENCH_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer f.Close()
		defer pprof.StopCPUProfile()
	}
	rp := &projections.Replay{DB: db, Brokers: k.Addrs(), Projection: projections.NewEvents(topic),
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Progress: c.Out, UntilEnd: true}
	began = time.Now()
	if err := rp.Run(ctx); err != nil {
		return err
	}
	took := time.Since(began)
	pprof.StopCPUProfile()
	fmt.Fprintf(c.Out, "replay into %s: %d events in %s = %.0f events/s\n", db.Dialect, c.Events, took.Round(time.Millisecond),
		float64(c.Events)/took.Seconds())

	q := queries.New(db)
	day := func() (time.Time, time.Time) { return end.AddDate(0, 0, -30), end }
	runs := []struct {
		name string
		fn   func(ctx context.Context, q *queries.Queries) error
	}{
		{"events by day, 30 days", func(ctx context.Context, q *queries.Queries) error {
			f, t := day()
			_, _, err := q.EventCounts(ctx, project, nil, queries.Range{From: f, To: t, Bucket: queries.Day, Loc: time.UTC})
			return err
		}},
		{"events by hour, 7 days, 3 types", func(ctx context.Context, q *queries.Queries) error {
			_, _, err := q.EventCounts(ctx, project, types[:3], queries.Range{From: end.AddDate(0, 0, -7), To: end, Bucket: queries.Hour, Loc: time.UTC})
			return err
		}},
		{"unique users by day, 30 days", func(ctx context.Context, q *queries.Queries) error {
			f, t := day()
			_, _, err := q.UniqueUsers(ctx, project, queries.Range{From: f, To: t, Bucket: queries.Day, Loc: time.UTC})
			return err
		}},
		{"unique users by week, 90 days", func(ctx context.Context, q *queries.Queries) error {
			_, _, err := q.UniqueUsers(ctx, project, queries.Range{From: start, To: end, Bucket: queries.Week, Loc: time.UTC})
			return err
		}},
		{"top events, 7 days", func(ctx context.Context, q *queries.Queries) error {
			_, err := q.TopEvents(ctx, project, end.AddDate(0, 0, -7), end, 10)
			return err
		}},
		{"revenue by day, 90 days", func(ctx context.Context, q *queries.Queries) error {
			_, _, err := q.Revenue(ctx, project, queries.Range{From: start, To: end, Bucket: queries.Day, Loc: time.UTC})
			return err
		}},
		{"funnel of 3 steps, 7 days", func(ctx context.Context, q *queries.Queries) error {
			_, err := q.Funnel(ctx, project, types[:3], 24*time.Hour, end.AddDate(0, 0, -7), end)
			return err
		}},
		{"retention, weekly, 8 weeks", func(ctx context.Context, q *queries.Queries) error {
			_, err := q.Retention(ctx, project, queries.Week, end.AddDate(0, 0, -56), end, 8)
			return err
		}},
	}
	for _, r := range runs {
		var lat []time.Duration
		for range c.Repeat {
			t0 := time.Now()
			if err := q.InProject(ctx, project, r.fn); err != nil {
				return fmt.Errorf("%s: %w", r.name, err)
			}
			lat = append(lat, time.Since(t0))
		}
		p := percentiles(lat)
		fmt.Fprintf(c.Out, "%-34s p50 %7.1f ms  p99 %7.1f ms\n", r.name, p["p50"], p["p99"])
	}
	return nil
}
