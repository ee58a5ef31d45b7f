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
	"slices"
	"strings"
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

// readSideTopic is the events topic of the embedded broker the log is
// written to and replayed from.
const readSideTopic = "bench.events"

// flushEvery is how many records are produced between flushes, so the
// producer's buffer never fills.
const flushEvery = 50_000

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
	cl, err := bus.NewKafkaClient(k.Addrs(), kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedRecords(100_000))
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := bus.EnsureTopics(ctx, cl, bus.Topics{Tenancy: "bench.tenancy", Events: readSideTopic, Partitions: 6, Replication: 1}); err != nil {
		return err
	}

	synth := newSyntheticLog(c)
	began := time.Now()
	if err := synth.write(ctx, cl); err != nil {
		return err
	}
	fmt.Fprintf(c.Out, "log: %d events (%d records) over %d days, %d users, %d types, written in %s\n",
		c.Events, 2*c.Events, c.Days, c.Users, c.Types, time.Since(began).Round(time.Millisecond))

	db, err := openReadModel(ctx, c.DatabaseURL, dir)
	if err != nil {
		return err
	}
	defer db.Close()
	rate, err := replayLog(ctx, db, k.Addrs(), c)
	if err != nil {
		return err
	}
	ceiling, err := insertCeiling(ctx, db, dir)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.Out, "ceiling: the replayed events rows inserted into an empty events table, its indexes on (bench/readside.go insertCeiling): "+
		"%.0f rows/s; replay ÷ ceiling = %.2f×\n", ceiling, rate/ceiling)
	return timeQueries(ctx, queries.New(db), synth.project, synth.analyticsQueries(), c)
}

// syntheticLog is the project, key, time span and event types of the
// generated events.
type syntheticLog struct {
	c            ReadSideConfig
	project, key string
	start, end   time.Time
	types        []string
}

// newSyntheticLog spans the c.Days up to the current hour, with c.Types
// event types of which the first three are a page view, a cart add and a
// purchase, so the funnel and revenue queries have something to find.
func newSyntheticLog(c ReadSideConfig) syntheticLog {
	end := time.Now().UTC().Truncate(time.Hour)
	l := syntheticLog{c: c, project: domain.NewID(), key: domain.NewID(), start: end.AddDate(0, 0, -c.Days), end: end,
		types: make([]string, c.Types)}
	for i := range l.types {
		l.types[i] = fmt.Sprintf("event_%02d", i)
	}
	l.types[0], l.types[1], l.types[2] = "page_view", "cart_add", "purchase"
	return l
}

// write produces every event and its outcome to the events topic, from a
// fixed seed so runs compare.
func (l syntheticLog) write(ctx context.Context, cl *kgo.Client) error {
	rng := rand.New(rand.NewPCG(7, 11))
	p := &batchedProducer{cl: cl, failed: make(chan error, 1)}
	for i := range l.c.Events {
		for _, e := range l.event(rng, i) {
			b, _ := json.Marshal(&e)
			p.produce(ctx, &kgo.Record{Topic: readSideTopic, Key: []byte(l.project), Value: b})
		}
		if p.pending >= flushEvery {
			if err := p.flush(ctx); err != nil {
				return err
			}
		}
	}
	return p.flush(ctx)
}

// event is the i-th event, at a random time of the span, of a type drawn
// exponentially (a few types are most of the traffic), with its
// EventProcessed.
func (l syntheticLog) event(rng *rand.Rand, i int) []domain.Event {
	at := l.start.Add(time.Duration(rng.Int64N(int64(l.end.Sub(l.start)))))
	typ := l.types[min(int(rng.ExpFloat64()*float64(l.c.Types)/4), l.c.Types-1)]
	d := domain.TrackedData{Event: typ, UserID: fmt.Sprintf("user-%d", rng.IntN(l.c.Users)),
		Properties: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i)), ReceivedAt: at, KeyID: l.key, KeyType: domain.KeySecret}
	if typ == "purchase" {
		d.Properties = json.RawMessage(fmt.Sprintf(`{"orderId":"o%d","amount":%d,"currency":"EUR"}`, i, 100+rng.IntN(10_000)))
	}
	id := domain.NewID()
	meta := domain.Meta{AggregateType: domain.AggregateEvent, AggregateID: id, ProjectID: l.project, OccurredAt: at}
	tracked, _ := domain.NewEventWithID(id, domain.EventTracked, meta, d)
	done, _ := domain.NewEventWithID(domain.EventIDFor(id, domain.EventProcessed), domain.EventProcessed, meta,
		domain.OutcomeData{EventID: id})
	return []domain.Event{tracked, done}
}

// batchedProducer produces asynchronously and reports the first failed
// record at the next flush.
type batchedProducer struct {
	cl      *kgo.Client
	failed  chan error
	pending int // records produced since the last flush
}

func (p *batchedProducer) produce(ctx context.Context, r *kgo.Record) {
	p.cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
		if err != nil {
			select {
			case p.failed <- err:
			default:
			}
		}
	})
	p.pending++
}

func (p *batchedProducer) flush(ctx context.Context) error {
	if err := p.cl.Flush(ctx); err != nil {
		return err
	}
	select {
	case err := <-p.failed:
		return err
	default:
	}
	p.pending = 0
	return nil
}

// openReadModel opens and migrates the database at url, or a SQLite file
// in dir when url is empty.
func openReadModel(ctx context.Context, url, dir string) (*store.DB, error) {
	if url == "" {
		url = filepath.Join(dir, "read.db")
	}
	db, err := store.Open(ctx, url)
	if err != nil {
		return nil, err
	}
	if _, err := db.Migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// replayLog replays the events topic into db to its end and prints the
// rate. With BOOST_BENCH_CPUPROFILE set, the replay is CPU-profiled into
// that file.
func replayLog(ctx context.Context, db *store.DB, brokers []string, c ReadSideConfig) (float64, error) {
	if path := os.Getenv("BOOST_BENCH_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return 0, err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return 0, err
		}
		defer f.Close()
		defer pprof.StopCPUProfile()
	}
	rp := &projections.Replay{DB: db, Brokers: brokers, Projection: projections.NewEvents(readSideTopic),
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Progress: c.Out, UntilEnd: true}
	began := time.Now()
	if err := rp.Run(ctx); err != nil {
		return 0, err
	}
	took := time.Since(began)
	pprof.StopCPUProfile()
	rate := float64(c.Events) / took.Seconds()
	fmt.Fprintf(c.Out, "replay into %s: %d events in %s = %.0f events/s\n", db.Dialect, c.Events, took.Round(time.Millisecond), rate)
	return rate, nil
}

// insertCeiling is the read model's ceiling on this machine: the rows the
// replay wrote to the events table inserted again into an empty copy of
// it, its indexes on, with nothing else done — rows/s. On SQLite, as an
// application inserts: one prepared INSERT per row, 1,000 rows per
// transaction. On PostgreSQL, by the server itself (INSERT … SELECT,
// which is at least as fast as a COPY of the same rows).
func insertCeiling(ctx context.Context, db *store.DB, dir string) (float64, error) {
	if db.Dialect == store.SQLite {
		return sqliteInsertCeiling(ctx, db, dir)
	}
	defer db.ExecContext(context.WithoutCancel(ctx), "DROP SCHEMA IF EXISTS boost_bench_ceiling CASCADE") //nolint:errcheck // best effort
	for _, q := range []string{"DROP SCHEMA IF EXISTS boost_bench_ceiling CASCADE", "CREATE SCHEMA boost_bench_ceiling",
		"CREATE TABLE boost_bench_ceiling.events (LIKE events INCLUDING ALL)"} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return 0, fmt.Errorf("ceiling: %s: %w", q, err)
		}
	}
	began := time.Now()
	res, err := db.ExecContext(ctx, "INSERT INTO boost_bench_ceiling.events SELECT * FROM events")
	if err != nil {
		return 0, fmt.Errorf("ceiling: copying the events rows: %w", err)
	}
	n, _ := res.RowsAffected()
	return float64(n) / time.Since(began).Seconds(), nil
}

func sqliteInsertCeiling(ctx context.Context, db *store.DB, dir string) (float64, error) {
	rows, err := db.QueryContext(ctx, "SELECT * FROM events")
	if err != nil {
		return 0, err
	}
	cols, _ := rows.Columns()
	var all [][]any
	for rows.Next() {
		v := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range v {
			ptrs[i] = &v[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			rows.Close()
			return 0, err
		}
		all = append(all, v)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	cdb, err := openReadModel(ctx, filepath.Join(dir, "ceiling.db"), dir)
	if err != nil {
		return 0, err
	}
	defer cdb.Close()
	if err := oneWriter(ctx, cdb); err != nil {
		return 0, err
	}
	insert := "INSERT INTO events VALUES (?" + strings.Repeat(", ?", len(cols)-1) + ")"
	began := time.Now()
	for chunk := range slices.Chunk(all, 1000) {
		tx, err := cdb.BeginTx(ctx, nil)
		if err != nil {
			return 0, err
		}
		stmt, err := tx.PrepareContext(ctx, insert)
		if err != nil {
			_ = tx.Rollback()
			return 0, err
		}
		for _, v := range chunk {
			if _, err := stmt.ExecContext(ctx, v...); err != nil {
				_ = tx.Rollback()
				return 0, fmt.Errorf("ceiling: inserting an events row: %w", err)
			}
		}
		if err := tx.Commit(); err != nil {
			return 0, err
		}
	}
	return float64(len(all)) / time.Since(began).Seconds(), nil
}

// readQuery is one timed analytics query.
type readQuery struct {
	name string
	fn   func(ctx context.Context, q *queries.Queries) error
}

// analyticsQueries are the dashboard's analytics queries over the log's
// project, with the ranges the dashboard asks for.
func (l syntheticLog) analyticsQueries() []readQuery {
	project, start, end, types := l.project, l.start, l.end, l.types
	day := func() (time.Time, time.Time) { return end.AddDate(0, 0, -30), end }
	return []readQuery{
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
}

// timeQueries runs each query c.Repeat times in the project and prints
// its latency percentiles.
func timeQueries(ctx context.Context, q *queries.Queries, project string, runs []readQuery, c ReadSideConfig) error {
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
