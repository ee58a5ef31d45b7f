package projections

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/uptrace/bun"

	"github.com/gamify/boost/readmodel"
	"github.com/gamify/boost/store"
)

// Replay rebuilds one projection from the start of the Kafka log into
// shadow tables while the live projection keeps running, catches up with
// it, and swaps the shadow tables in atomically. Queries read the old
// tables until the swap commits; a replay killed half way leaves them
// untouched, and the next run starts its shadow afresh.
type Replay struct {
	DB         *store.DB
	Brokers    []string
	Projection Projection
	Log        *slog.Logger
	// Progress receives a line a second: events/s, lag, ETA.
	Progress io.Writer
	// MaxBatch bounds one shadow transaction.
	MaxBatch int
	// UntilEnd makes the replay apply the whole log before swapping, for
	// a rebuild with no live projection running. By default it swaps once
	// it is within one batch of the end and at least as far as the live
	// projection, which then carries on from the replay's checkpoints.
	UntilEnd bool
}

func (rp *Replay) shadowSchema() string { return "boost_replay_" + rp.Projection.Name() }

func (rp *Replay) shadowPath() string { return rp.DB.Path + ".replay-" + rp.Projection.Name() }

// Run replays and swaps. It returns once the new tables serve.
func (rp *Replay) Run(ctx context.Context) error {
	if rp.MaxBatch == 0 {
		rp.MaxBatch = 20_000
	}
	bl, bulk := rp.Projection.(bulkLoader)
	indexes := withIndexes
	if bulk {
		indexes = indexesLater
	}
	shadow, prelude, cleanup, err := rp.prepare(ctx, indexes)
	if err != nil {
		return err
	}
	defer cleanup()

	cl, adm, starts, err := rp.consumeFromStart(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	progress := replayProgress{rp: rp, began: time.Now(), lastReport: time.Now()}
	if bulk {
		if progress.applied, err = rp.bulkLoad(ctx, cl, adm, shadow, bl, starts); err != nil {
			return err
		}
	}
	runner := &Runner{db: shadow, p: rp.Projection, log: rp.Log, metrics: nopMetrics{}, MaxBatch: rp.MaxBatch,
		MaxAttempts: defaultMaxAttempts, checkpoint: rp.Projection.Name(), prelude: prelude,
		// What the shadow cannot apply is quarantined beside what the
		// live projection could not: the shadow's own tables are dropped.
		setAside: func(ctx context.Context, _ bun.Tx, q *readmodel.QuarantinedRecord) error {
			return upsertQuarantined(ctx, rp.DB.DB, q)
		}}
	for {
		lag, err := rp.lag(ctx, adm, shadow, prelude)
		if err != nil {
			return err
		}
		progress.report(lag)
		if lag == 0 || (!rp.UntilEnd && lag < int64(rp.MaxBatch)) {
			swapped, err := rp.swap(ctx, shadow)
			if err != nil {
				return err
			}
			if swapped {
				progress.swapped()
				return nil
			}
		}
		pollCtx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		fetches := cl.PollRecords(pollCtx, rp.MaxBatch)
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		records := fetches.Records()
		if len(records) == 0 {
			continue
		}
		if err := runner.settle(ctx, records); err != nil {
			return fmt.Errorf("replay: applying: %w", err)
		}
		progress.applied += int64(len(records))
	}
}

// consumeFromStart is a client consuming the projection's topics from
// the start of the log, and the start offsets.
func (rp *Replay) consumeFromStart(ctx context.Context) (*kgo.Client, *kadm.Client, kadm.ListedOffsets, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(rp.Brokers...), kgo.FetchMaxWait(100*time.Millisecond),
		kgo.FetchMaxBytes(64<<20), kgo.FetchMaxPartitionBytes(16<<20))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("replay: kafka client: %w", err)
	}
	adm := kadm.NewClient(cl)
	starts, err := adm.ListStartOffsets(ctx, rp.Projection.Topics()...)
	if err != nil {
		cl.Close()
		return nil, nil, nil, fmt.Errorf("replay: listing start offsets: %w", err)
	}
	assign := map[string]map[int32]kgo.Offset{}
	starts.Each(func(o kadm.ListedOffset) {
		if assign[o.Topic] == nil {
			assign[o.Topic] = map[int32]kgo.Offset{}
		}
		assign[o.Topic][o.Partition] = kgo.NewOffset().At(o.Offset)
	})
	cl.AddConsumePartitions(assign)
	return cl, adm, starts, nil
}

// replayProgress reports a replay's rate and ETA once a second.
type replayProgress struct {
	rp                *Replay
	began, lastReport time.Time
	applied           int64
}

func (p *replayProgress) report(lag int64) {
	if time.Since(p.lastReport) < time.Second {
		return
	}
	rate := float64(p.applied) / time.Since(p.began).Seconds()
	eta := "—"
	if rate > 0 {
		eta = (time.Duration(float64(lag)/rate) * time.Second).Round(time.Second).String()
	}
	if p.rp.Progress != nil {
		fmt.Fprintf(p.rp.Progress, "replay %s: %d records applied, %.0f records/s, lag %d, ETA %s\n",
			p.rp.Projection.Name(), p.applied, rate, lag, eta)
	}
	p.lastReport = time.Now()
}

func (p *replayProgress) swapped() {
	if p.rp.Progress != nil {
		fmt.Fprintf(p.rp.Progress, "replay %s: %d records in %s (%.0f records/s); new tables swapped in\n",
			p.rp.Projection.Name(), p.applied, time.Since(p.began).Round(time.Millisecond),
			float64(p.applied)/time.Since(p.began).Seconds())
	}
}

// lag is how many records of the log the shadow has not applied yet.
func (rp *Replay) lag(ctx context.Context, adm *kadm.Client, shadow *store.DB, prelude func(context.Context, bun.Tx) error) (int64, error) {
	ends, err := adm.ListEndOffsets(ctx, rp.Projection.Topics()...)
	if err != nil {
		return 0, fmt.Errorf("replay: listing end offsets: %w", err)
	}
	cps, err := rp.checkpoints(ctx, shadow, prelude)
	if err != nil {
		return 0, err
	}
	var lag int64
	ends.Each(func(o kadm.ListedOffset) {
		lag += o.Offset - cps[partitionKey{o.Topic, o.Partition}]
	})
	return lag, nil
}

func (rp *Replay) checkpoints(ctx context.Context, db *store.DB, prelude func(context.Context, bun.Tx) error) (map[partitionKey]int64, error) {
	out := map[partitionKey]int64{}
	err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if prelude != nil {
			if err := prelude(ctx, tx); err != nil {
				return err
			}
		}
		var cps []readmodel.Checkpoint
		if err := tx.NewSelect().Model(&cps).Where("projection = ?", rp.Projection.Name()).Scan(ctx); err != nil {
			return err
		}
		for _, c := range cps {
			out[partitionKey{c.Topic, c.Partition}] = c.NextOffset
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("replay: reading checkpoints: %w", err)
	}
	return out, nil
}

// bulkLoad builds the shadow tables from the start of the log up to its
// end as it is now (or as far as the build can hold in memory), and
// stores the checkpoints it reached; Apply carries on from them.
func (rp *Replay) bulkLoad(ctx context.Context, cl *kgo.Client, adm *kadm.Client, shadow *store.DB, bl bulkLoader,
	starts kadm.ListedOffsets) (int64, error) {
	ends, err := adm.ListEndOffsets(ctx, rp.Projection.Topics()...)
	if err != nil {
		return 0, fmt.Errorf("replay: listing end offsets: %w", err)
	}
	span := logSpan{next: map[partitionKey]int64{}, target: map[partitionKey]int64{}}
	starts.Each(func(o kadm.ListedOffset) { span.next[partitionKey{o.Topic, o.Partition}] = o.Offset })
	ends.Each(func(o kadm.ListedOffset) { span.target[partitionKey{o.Topic, o.Partition}] = o.Offset })
	b, err := rp.newBulk(ctx, shadow, bl)
	if err != nil {
		return 0, err
	}
	defer b.close()
	began, lastReport := time.Now(), time.Now()
	var applied int64
	total := span.remaining()
	values := make([]*kgo.Record, 0, rp.MaxBatch)
	for !span.reached() && !b.full() {
		pollCtx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		fetches := cl.PollRecords(pollCtx, rp.MaxBatch)
		cancel()
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		values = values[:0]
		fetches.EachRecord(func(r *kgo.Record) {
			if span.pass(r) {
				values = append(values, r)
			}
		})
		if err := b.add(ctx, values); err != nil {
			return 0, fmt.Errorf("replay: bulk loading: %w", err)
		}
		applied += int64(len(values))
		if rp.Progress != nil && time.Since(lastReport) >= time.Second {
			rate := float64(applied) / time.Since(began).Seconds()
			fmt.Fprintf(rp.Progress, "replay %s: %d of %d records loaded, %.0f records/s\n", rp.Projection.Name(), applied, total, rate)
			lastReport = time.Now()
		}
	}
	loaded := time.Since(began)
	if err := b.finish(ctx, span.checkpoints(rp.Projection.Name())); err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err() // killed: whatever failed on the way says less
		}
		return 0, err
	}
	if rp.Progress != nil {
		fmt.Fprintf(rp.Progress, "replay %s: %d records loaded in %s, roll-ups and indexes built in %s\n", rp.Projection.Name(),
			applied, loaded.Round(time.Millisecond), (time.Since(began) - loaded).Round(time.Millisecond))
	}
	return applied, nil
}

// newBulk starts a bulk build into shadow; what the build cannot apply is
// quarantined beside what the live projection could not.
func (rp *Replay) newBulk(ctx context.Context, shadow *store.DB, bl bulkLoader) (bulkBuild, error) {
	schema := ""
	if shadow.Dialect == store.Postgres {
		schema = rp.shadowSchema()
	}
	return bl.newBulk(ctx, shadow, schema, rp.Log, rp.Progress, func(ctx context.Context, rec *kgo.Record, err error) error {
		q := quarantineEntry(rp.Projection.Name(), rec, err, 1, time.Now().UTC())
		rp.Log.Error("replay: record quarantined: the projection cannot apply it", "quarantineId", q.ID,
			"topic", rec.Topic, "partition", rec.Partition, "offset", rec.Offset, "err", err)
		return upsertQuarantined(ctx, rp.DB.DB, q)
	})
}

// logSpan is the part of the log a bulk build reads: from the next offset
// of each partition to its end when the build began.
type logSpan struct {
	next, target map[partitionKey]int64
}

func (s logSpan) reached() bool {
	for k, end := range s.target {
		if s.next[k] < end {
			return false
		}
	}
	return true
}

func (s logSpan) remaining() int64 {
	var n int64
	for k, end := range s.target {
		n += end - s.next[k]
	}
	return n
}

// pass reports whether r is new to the build, and moves past it.
func (s logSpan) pass(r *kgo.Record) bool {
	k := partitionKey{r.Topic, r.Partition}
	if r.Offset < s.next[k] {
		return false
	}
	s.next[k] = r.Offset + 1
	return true
}

func (s logSpan) checkpoints(projection string) []readmodel.Checkpoint {
	now := time.Now().UTC()
	cps := make([]readmodel.Checkpoint, 0, len(s.next))
	for k, off := range s.next {
		cps = append(cps, readmodel.Checkpoint{Projection: projection, Topic: k.topic, Partition: k.partition,
			NextOffset: off, UpdatedAt: now})
	}
	return cps
}

// prepare creates fresh shadow tables: a schema of their own on
// PostgreSQL (reached by search_path), a database file beside the live one
// on SQLite. For a bulk build they have no secondary indexes (nor, on
// PostgreSQL, primary keys) until the build adds them.
// shadowIndexes says when a shadow's secondary indexes are built: with its
// tables (rows then go in through Apply), or after a bulk load has filled
// them (one build beats millions of inserts into an index).
type shadowIndexes int

const (
	withIndexes shadowIndexes = iota
	indexesLater
)

func (rp *Replay) prepare(ctx context.Context, indexes shadowIndexes) (*store.DB, func(context.Context, bun.Tx) error, func(), error) {
	if rp.DB.Dialect == store.SQLite {
		path := rp.shadowPath()
		for _, suffix := range []string{"", "-wal", "-shm"} {
			_ = os.Remove(path + suffix)
		}
		shadow, err := store.Open(ctx, path)
		if err != nil {
			return nil, nil, nil, err
		}
		if _, err := shadow.Migrate(ctx); err != nil {
			shadow.Close()
			return nil, nil, nil, err
		}
		if err := copyProjectKeys(ctx, rp.DB, shadow); err != nil {
			shadow.Close()
			return nil, nil, nil, err
		}
		if indexes == indexesLater {
			if err := dropSecondaryIndexes(ctx, shadow, rp.Projection.Tables()); err != nil {
				shadow.Close()
				return nil, nil, nil, err
			}
		}
		return shadow, nil, func() {
			shadow.Close()
			for _, suffix := range []string{"", "-wal", "-shm"} {
				_ = os.Remove(path + suffix)
			}
		}, nil
	}
	schema := rp.shadowSchema()
	stmts := []string{"DROP SCHEMA IF EXISTS " + schema + " CASCADE", "CREATE SCHEMA " + schema}
	for _, t := range rp.Projection.Tables() {
		like := "INCLUDING ALL"
		if indexes == indexesLater {
			like = "INCLUDING ALL EXCLUDING INDEXES"
		}
		stmts = append(stmts, fmt.Sprintf("CREATE TABLE %s.%s (LIKE %s %s)", schema, t, t, like))
	}
	stmts = append(stmts, fmt.Sprintf("CREATE TABLE %s.projection_checkpoints (LIKE projection_checkpoints INCLUDING ALL)", schema))
	for _, s := range stmts {
		if _, err := rp.DB.ExecContext(ctx, s); err != nil {
			return nil, nil, nil, fmt.Errorf("replay: preparing shadow tables: %w", err)
		}
	}
	// The shadow's tables come first; project_keys, which no replay
	// rebuilds, is found in the live schema after them.
	var live string
	if err := rp.DB.NewRaw("SELECT current_schema()").Scan(ctx, &live); err != nil {
		return nil, nil, nil, fmt.Errorf("replay: reading the live schema: %w", err)
	}
	searchPath := fmt.Sprintf("SET LOCAL search_path TO %s, %q", schema, live)
	prelude := func(ctx context.Context, tx bun.Tx) error {
		_, err := tx.ExecContext(ctx, searchPath)
		return err
	}
	return rp.DB, prelude, func() {
		_, _ = rp.DB.ExecContext(context.WithoutCancel(ctx), "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
	}, nil
}

// copyProjectKeys gives a SQLite shadow the live projects' keys, first
// handing one to every project the tenancy read model knows: the shadow
// then keys the projects as the live tables do, and the swap copies its
// rows as they are. A project the shadow meets that the live tables did
// not know gets a key in the shadow, which the swap reconciles
// (reconcileProjectKeys).
func copyProjectKeys(ctx context.Context, live, shadow *store.DB) error {
	if _, err := live.ExecContext(ctx, "INSERT INTO project_keys (project_id) SELECT id FROM projects WHERE true ORDER BY id "+
		"ON CONFLICT (project_id) DO NOTHING"); err != nil {
		return fmt.Errorf("replay: keying the projects: %w", err)
	}
	var keys []readmodel.ProjectKey
	if err := live.NewSelect().Model(&keys).Scan(ctx); err != nil {
		return fmt.Errorf("replay: reading project keys: %w", err)
	}
	for chunk := range slices.Chunk(keys, insertChunk) {
		if _, err := shadow.NewInsert().Model(&chunk).Exec(ctx); err != nil {
			return fmt.Errorf("replay: copying project keys: %w", err)
		}
	}
	return nil
}

// reconcileProjectKeys, in the swap's transaction, gives the live
// project_keys the projects only the shadow (attached as replay) keyed,
// and returns the SQL that maps a shadow key to the live one when the two
// disagree on any project ("" when they agree, as they nearly always do:
// only a project keyed on both sides since the replay began differs).
func reconcileProjectKeys(ctx context.Context, tx bun.Tx) (string, error) {
	if _, err := tx.ExecContext(ctx, "INSERT INTO main.project_keys (project_id) SELECT project_id FROM replay.project_keys "+
		"WHERE true ORDER BY key ON CONFLICT (project_id) DO NOTHING"); err != nil {
		return "", fmt.Errorf("replay: reconciling project keys: %w", err)
	}
	var differ int
	if err := tx.NewRaw("SELECT count(*) FROM replay.project_keys AS r JOIN main.project_keys AS m "+
		"ON m.project_id = r.project_id WHERE m.key <> r.key").Scan(ctx, &differ); err != nil {
		return "", fmt.Errorf("replay: comparing project keys: %w", err)
	}
	if differ == 0 {
		return "", nil
	}
	return "(SELECT m.key FROM replay.project_keys AS r JOIN main.project_keys AS m ON m.project_id = r.project_id " +
		"WHERE r.key = s.project_id)", nil
}

// dropSecondaryIndexes leaves tables of a SQLite shadow with their
// primary keys only.
func dropSecondaryIndexes(ctx context.Context, db *store.DB, tables []string) error {
	var names []string
	if err := db.NewRaw("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN (?)",
		bun.In(tables)).Scan(ctx, &names); err != nil {
		return fmt.Errorf("replay: listing shadow indexes: %w", err)
	}
	for _, n := range names {
		if _, err := db.ExecContext(ctx, fmt.Sprintf("DROP INDEX %q", n)); err != nil {
			return fmt.Errorf("replay: dropping shadow index %s: %w", n, err)
		}
	}
	return nil
}

// errBehind means the live projection is ahead of the shadow somewhere.
var errBehind = errors.New("shadow behind live")

// swap replaces the live tables with the shadow ones in one transaction,
// provided the shadow has applied at least everything the live projection
// has (the live projection waits on its checkpoint rows meanwhile, then
// skips what the shadow already applied). It reports false when the shadow
// must catch up first.
func (rp *Replay) swap(ctx context.Context, shadow *store.DB) (bool, error) {
	var err error
	if rp.DB.Dialect == store.SQLite {
		err = rp.swapSQLite(ctx)
	} else {
		err = rp.swapPostgres(ctx)
	}
	if errors.Is(err, errBehind) {
		return false, nil
	}
	return err == nil, err
}

func behind(live, shadow map[partitionKey]int64) bool {
	for k, off := range live {
		if shadow[k] < off {
			return true
		}
	}
	return false
}

func (rp *Replay) swapPostgres(ctx context.Context) error {
	schema, name := rp.shadowSchema(), rp.Projection.Name()
	return rp.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var live []readmodel.Checkpoint
		if err := tx.NewSelect().Model(&live).Where("projection = ?", name).For("UPDATE").Scan(ctx); err != nil {
			return fmt.Errorf("replay: locking live checkpoints: %w", err)
		}
		var sh []readmodel.Checkpoint
		if err := tx.NewSelect().Model(&sh).ModelTableExpr(schema+".projection_checkpoints AS checkpoint").
			Where("projection = ?", name).Scan(ctx); err != nil {
			return fmt.Errorf("replay: reading shadow checkpoints: %w", err)
		}
		if behind(toMap(live), toMap(sh)) {
			return errBehind
		}
		for _, t := range rp.Projection.Tables() {
			if err := swapPostgresTable(ctx, tx, schema, t); err != nil {
				return err
			}
		}
		if _, err := tx.NewDelete().Model((*readmodel.Checkpoint)(nil)).Where("projection = ?", name).Exec(ctx); err != nil {
			return err
		}
		if len(sh) > 0 {
			if _, err := tx.NewInsert().Model(&sh).Exec(ctx); err != nil {
				return err
			}
		}
		return nil
	})
}

// swapPostgresTable moves schema.t in place of t, carrying over what LIKE
// does not copy: grants, row-level security and its policies.
func swapPostgresTable(ctx context.Context, tx bun.Tx, schema, t string) error {
	var grants []struct {
		Grantee   string `bun:"grantee"`
		Privilege string `bun:"privilege_type"`
	}
	if err := tx.NewRaw("SELECT grantee, privilege_type FROM information_schema.role_table_grants "+
		"WHERE table_schema = current_schema() AND table_name = ? AND grantee <> current_user", t).Scan(ctx, &grants); err != nil {
		return fmt.Errorf("replay: reading grants of %s: %w", t, err)
	}
	var rls struct {
		Enabled bool `bun:"relrowsecurity"`
		Forced  bool `bun:"relforcerowsecurity"`
	}
	if err := tx.NewRaw("SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = to_regclass(?)", t).
		Scan(ctx, &rls); err != nil {
		return fmt.Errorf("replay: reading row security of %s: %w", t, err)
	}
	var policies []struct {
		Name      string  `bun:"polname"`
		Command   string  `bun:"cmd"`
		Roles     string  `bun:"roles"`
		Using     *string `bun:"qual"`
		WithCheck *string `bun:"with_check"`
	}
	if err := tx.NewRaw("SELECT policyname AS polname, cmd, array_to_string(roles, ',') AS roles, qual, with_check "+
		"FROM pg_policies WHERE schemaname = current_schema() AND tablename = ?", t).Scan(ctx, &policies); err != nil {
		return fmt.Errorf("replay: reading policies of %s: %w", t, err)
	}
	var live string
	if err := tx.NewRaw("SELECT current_schema()").Scan(ctx, &live); err != nil {
		return err
	}
	stmts := []string{
		fmt.Sprintf("DROP TABLE %s", t),
		fmt.Sprintf("ALTER TABLE %s.%s SET SCHEMA %q", schema, t, live),
	}
	for _, g := range grants {
		stmts = append(stmts, fmt.Sprintf("GRANT %s ON %s TO %q", g.Privilege, t, g.Grantee))
	}
	if rls.Enabled {
		stmts = append(stmts, fmt.Sprintf("ALTER TABLE %s ENABLE ROW LEVEL SECURITY", t))
	}
	if rls.Forced {
		stmts = append(stmts, fmt.Sprintf("ALTER TABLE %s FORCE ROW LEVEL SECURITY", t))
	}
	for _, p := range policies {
		var roles []string
		for _, r := range strings.Split(p.Roles, ",") {
			roles = append(roles, fmt.Sprintf("%q", r))
		}
		s := fmt.Sprintf("CREATE POLICY %q ON %s FOR %s TO %s", p.Name, t, p.Command, strings.Join(roles, ", "))
		if p.Using != nil {
			s += " USING (" + *p.Using + ")"
		}
		if p.WithCheck != nil {
			s += " WITH CHECK (" + *p.WithCheck + ")"
		}
		stmts = append(stmts, s)
	}
	for _, s := range stmts {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("replay: swapping %s: %s: %w", t, s, err)
		}
	}
	return nil
}

// swapSQLiteTable replaces the live table t with the shadow's. Rows go
// in without the secondary indexes, which are then built from them: far
// cheaper than a B-tree insert per row.
//
// remap, if not empty, is the SQL mapping the shadow's project keys to the
// live ones (reconcileProjectKeys); it then replaces the keyed project_id
// column of the rows copied.
func (rp *Replay) swapSQLiteTable(ctx context.Context, tx bun.Tx, t, remap string) error {
	var indexes []struct {
		Name string `bun:"name"`
		SQL  string `bun:"sql"`
	}
	if err := tx.NewRaw("SELECT name, sql FROM main.sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL",
		t).Scan(ctx, &indexes); err != nil {
		return fmt.Errorf("replay: reading indexes of %s: %w", t, err)
	}
	var stmts []string
	for _, ix := range indexes {
		stmts = append(stmts, fmt.Sprintf("DROP INDEX main.%q", ix.Name))
	}
	copyRows := "INSERT INTO main." + t + " SELECT * FROM replay." + t
	if remap != "" {
		var cols []struct {
			Name string `bun:"name"`
			Type string `bun:"type"`
		}
		if err := tx.NewRaw("SELECT name, type FROM pragma_table_info(?, 'replay')", t).Scan(ctx, &cols); err != nil {
			return fmt.Errorf("replay: reading columns of %s: %w", t, err)
		}
		names := make([]string, len(cols))
		values := make([]string, len(cols))
		for i, c := range cols {
			names[i], values[i] = c.Name, "s."+c.Name
			if c.Name == "project_id" && strings.EqualFold(c.Type, "integer") {
				values[i] = remap
			}
		}
		copyRows = "INSERT INTO main." + t + " (" + strings.Join(names, ", ") + ") SELECT " + strings.Join(values, ", ") +
			" FROM replay." + t + " AS s"
	}
	stmts = append(stmts, "DELETE FROM main."+t, copyRows)
	for _, ix := range indexes {
		create, ok := qualifyIndex(ix.SQL, ix.Name)
		if !ok {
			return fmt.Errorf("replay: cannot re-create index %s: %s", ix.Name, ix.SQL)
		}
		stmts = append(stmts, create)
	}
	for _, s := range stmts {
		t0 := time.Now()
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("replay: swapping %s: %s: %w", t, s, err)
		}
		if took := time.Since(t0); rp.Progress != nil && took >= swapStepShown {
			fmt.Fprintf(rp.Progress, "replay %s: swap: %s took %s\n", rp.Projection.Name(), s, took.Round(time.Millisecond))
		}
	}
	return nil
}

// swapStepShown is how long a step of the SQLite swap must take to be
// shown in the progress: the copies and index builds of big tables.
const swapStepShown = 100 * time.Millisecond

func (rp *Replay) swapSQLite(ctx context.Context) error {
	conn, err := rp.DB.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "ATTACH DATABASE ? AS replay", rp.shadowPath()); err != nil {
		return fmt.Errorf("replay: attaching shadow: %w", err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "DETACH DATABASE replay") //nolint:errcheck // best effort
	// The swap rewrites whole tables in one transaction: a cache that
	// holds them saves spilling pages to the WAL before the commit.
	if err := rp.DB.SetCache(ctx, &conn, 1<<20); err != nil {
		return err
	}
	defer rp.DB.SetCache(context.WithoutCancel(ctx), &conn, store.ReaderCacheKiB) //nolint:errcheck // back to the pool's
	name := rp.Projection.Name()
	began := time.Now()
	err = conn.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var live, sh []readmodel.Checkpoint
		if err := tx.NewSelect().Model(&live).Where("projection = ?", name).Scan(ctx); err != nil {
			return err
		}
		if err := tx.NewSelect().Model(&sh).ModelTableExpr("replay.projection_checkpoints AS checkpoint").
			Where("projection = ?", name).Scan(ctx); err != nil {
			return err
		}
		if behind(toMap(live), toMap(sh)) {
			return errBehind
		}
		remap, err := reconcileProjectKeys(ctx, tx)
		if err != nil {
			return err
		}
		for _, t := range rp.Projection.Tables() {
			if err := rp.swapSQLiteTable(ctx, tx, t, remap); err != nil {
				return err
			}
		}
		if _, err := tx.NewDelete().Model((*readmodel.Checkpoint)(nil)).Where("projection = ?", name).Exec(ctx); err != nil {
			return err
		}
		if len(sh) > 0 {
			if _, err := tx.NewInsert().Model(&sh).Exec(ctx); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if rp.Progress != nil {
		fmt.Fprintf(rp.Progress, "replay %s: swap committed in %s\n", name, time.Since(began).Round(time.Millisecond))
	}
	// The tables are new to the planner: give it their statistics now.
	began = time.Now()
	if err := rp.DB.Optimize(ctx, rp.Projection.Tables()...); err != nil {
		rp.Log.Warn("replay: refreshing planner statistics", "err", err)
	}
	if rp.Progress != nil {
		fmt.Fprintf(rp.Progress, "replay %s: planner statistics in %s\n", name, time.Since(began).Round(time.Millisecond))
	}
	return nil
}

// qualifyIndex makes a SQLite CREATE INDEX statement create the index in
// main, whatever is attached.
func qualifyIndex(create, name string) (string, bool) {
	for _, n := range []string{name, `"` + name + `"`, "`" + name + "`", "[" + name + "]"} {
		for _, head := range []string{"CREATE INDEX ", "CREATE UNIQUE INDEX "} {
			if strings.HasPrefix(create, head+n+" ") {
				return head + "main." + n + create[len(head+n):], true
			}
		}
	}
	return "", false
}

func toMap(cps []readmodel.Checkpoint) map[partitionKey]int64 {
	m := map[partitionKey]int64{}
	for _, c := range cps {
		m[partitionKey{c.Topic, c.Partition}] = c.NextOffset
	}
	return m
}

type nopMetrics struct{}

func (nopMetrics) Projected(string, int)          {}
func (nopMetrics) SetProjectionLag(string, int64) {}

// RunFrom re-applies the log from the given offsets (per partition) to the
// live tables, up to the end of the log as it was when it started. It
// needs no shadow: both projections apply an event idempotently, so what
// is already there stays as it is and what is missing or damaged since
// then is rebuilt. Its checkpoint rows are its own and removed at the end.
func (rp *Replay) RunFrom(ctx context.Context, from func(topic string, partition int32) kgo.Offset) error {
	if rp.MaxBatch == 0 {
		rp.MaxBatch = 20_000
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(rp.Brokers...), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		return fmt.Errorf("replay: kafka client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, rp.Projection.Topics()...)
	if err != nil {
		return fmt.Errorf("replay: listing end offsets: %w", err)
	}
	assign := map[string]map[int32]kgo.Offset{}
	target := map[partitionKey]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if assign[o.Topic] == nil {
			assign[o.Topic] = map[int32]kgo.Offset{}
		}
		assign[o.Topic][o.Partition] = from(o.Topic, o.Partition)
		target[partitionKey{o.Topic, o.Partition}] = o.Offset
	})
	cl.AddConsumePartitions(assign)
	name := rp.Projection.Name() + "@partial"
	runner := &Runner{db: rp.DB, p: rp.Projection, log: rp.Log, metrics: nopMetrics{}, MaxBatch: rp.MaxBatch,
		MaxAttempts: defaultMaxAttempts, checkpoint: name, partitionLock: rp.Projection.Name()}
	defer rp.DB.NewDelete().Model((*readmodel.Checkpoint)(nil)).Where("projection = ?", name).Exec(context.WithoutCancel(ctx)) //nolint:errcheck
	done := map[partitionKey]bool{}
	for k, end := range target {
		if end == 0 {
			done[k] = true
		}
	}
	var applied int64
	began := time.Now()
	for len(done) < len(target) {
		pollCtx, cancel := context.WithTimeout(ctx, time.Second)
		fetches := cl.PollRecords(pollCtx, rp.MaxBatch)
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		fetches.EachPartition(func(p kgo.FetchTopicPartition) {
			k := partitionKey{p.Topic, p.Partition}
			if p.HighWatermark == 0 || (len(p.Records) == 0 && p.Err == nil && p.LogStartOffset >= target[k]) {
				done[k] = true
			}
		})
		var records []*kgo.Record
		for _, r := range fetches.Records() {
			k := partitionKey{r.Topic, r.Partition}
			if r.Offset < target[k] {
				records = append(records, r)
			}
			if r.Offset+1 >= target[k] {
				done[k] = true
			}
		}
		if len(records) > 0 {
			if err := runner.settle(ctx, records); err != nil {
				return fmt.Errorf("replay: applying: %w", err)
			}
			applied += int64(len(records))
		}
		if rp.Progress != nil {
			fmt.Fprintf(rp.Progress, "replay %s (partial): %d records re-applied, %.0f records/s\n",
				rp.Projection.Name(), applied, float64(applied)/time.Since(began).Seconds())
		}
	}
	return nil
}

// OffsetsAt returns, for a timestamp, the first offset of each partition at
// or after it (for RunFrom).
func OffsetsAt(ctx context.Context, brokers []string, topics []string, at time.Time) (func(string, int32) kgo.Offset, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	listed, err := kadm.NewClient(cl).ListOffsetsAfterMilli(ctx, at.UnixMilli(), topics...)
	if err != nil {
		return nil, fmt.Errorf("replay: offsets at %s: %w", at, err)
	}
	return func(topic string, p int32) kgo.Offset {
		if o, ok := listed.Lookup(topic, p); ok {
			return kgo.NewOffset().At(o.Offset)
		}
		return kgo.NewOffset().AtEnd()
	}, nil
}
