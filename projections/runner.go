// Package projections builds the read models from the Kafka log. Each
// projection is a named Kafka consumer group that applies a batch of events
// to its Bun tables and stores its checkpoint (topic, partition, next
// offset) in the same database transaction, so a crash can neither apply an
// event twice nor skip one.
package projections

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/uptrace/bun"

	"github.com/gamify/boost/domain"
	"github.com/gamify/boost/health"
	"github.com/gamify/boost/internal/retry"
	"github.com/gamify/boost/readmodel"
	"github.com/gamify/boost/store"
)

// Projection turns domain events into rows. Apply runs inside the batch's
// transaction and must be idempotent per event id: the log is
// at-least-once, so the same event can arrive twice at different offsets.
type Projection interface {
	Name() string
	Topics() []string
	// Tables lists the read-model tables the projection owns, which a
	// replay rebuilds and swaps in.
	Tables() []string
	Apply(ctx context.Context, tx bun.Tx, db *store.DB, events []domain.Event) error
}

// AfterCommitter is implemented by projections that must tell the outside
// world about a batch once it is committed (never before: a reader could
// otherwise see the old state after being told of the new).
type AfterCommitter interface {
	AfterCommit(ctx context.Context, events []domain.Event)
}

// Metrics receives what a runner did.
type Metrics interface {
	Projected(projection string, n int)
	SetProjectionLag(projection string, lag int64)
}

// Runner consumes the log for one projection.
type Runner struct {
	db      *store.DB
	brokers []string
	group   string
	p       Projection
	log     *slog.Logger
	metrics Metrics

	// MaxBatch bounds how many records one transaction applies.
	MaxBatch int
	// Linger is how long, from its first record, a batch waits to fill to
	// a quarter of MaxBatch.
	Linger time.Duration
	// MaxAttempts is how many times a record that fails on its own, while
	// the database answers, is tried before it is quarantined.
	MaxAttempts int
	// Stage reports progress, backlog, failures and quarantines (nil: a
	// stage of its own that nobody reads).
	Stage *health.Stage

	// checkpoint names this runner's checkpoint rows (the projection's
	// name, unless a replay keeps its own).
	checkpoint string
	// prelude runs first in every transaction (a replay points it at its
	// shadow tables).
	prelude func(ctx context.Context, tx bun.Tx) error
	// partitionLock names the lock, one per partition, that runners
	// writing the same tables take in each transaction: a partial replay
	// applies to the live tables beside the live runner, and the projection
	// reads rows and writes back what it derived from them (end users,
	// daily event users), which two writers of a partition must not do at
	// once. Empty for a runner with tables of its own (a replay's shadow).
	partitionLock string
	instanceID    string
	// setAside stores a quarantined record; nil stores it in the batch's
	// transaction, beside the checkpoint that moves past it. A replay's
	// shadow points it at the live table instead.
	setAside func(ctx context.Context, tx bun.Tx, q *readmodel.QuarantinedRecord) error
}

// RunnerConfig is what a runner needs; zero tuning fields take defaults.
type RunnerConfig struct {
	DB         *store.DB
	Brokers    []string
	Group      string // the Kafka consumer group
	Projection Projection
	Log        *slog.Logger
	Metrics    Metrics
	// Stage reports progress, backlog, failures and quarantines (nil: a
	// stage of its own that nobody reads).
	Stage *health.Stage
	// MaxBatch bounds one transaction (20,000): a commit writes every page
	// the batch dirtied, and the hot index pages are shared by many events,
	// so SQLite applies 20,000 at a time 1.4-1.6x as fast as 5,000 (`boost
	// bench rows --batch`); under load a backlog drains that much sooner.
	// Linger is how long, from its first record, a batch waits to fill to
	// a quarter of MaxBatch (50 ms; Runner.linger says why);
	// MaxAttempts is how often a record that fails alone is tried before
	// it is quarantined (4).
	MaxBatch    int
	Linger      time.Duration
	MaxAttempts int
	// InstanceID is the member's static identity in its group (KIP-345):
	// a member restarted with the same one takes its partitions back at
	// once instead of waiting for its old session to expire. It must
	// differ between the group's live members. Empty: dynamic membership.
	InstanceID string
}

func (c *RunnerConfig) validate() error {
	switch {
	case c.DB == nil || len(c.Brokers) == 0 || c.Group == "" || c.Projection == nil:
		return errors.New("projections: a runner needs a database, brokers, a group and a projection")
	case c.Log == nil || c.Metrics == nil:
		return errors.New("projections: a runner needs a logger and metrics")
	case c.MaxBatch < 0 || c.Linger < 0 || c.MaxAttempts < 0:
		return errors.New("projections: a runner's tuning must not be negative")
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = 20_000
	}
	if c.Linger == 0 {
		c.Linger = 50 * time.Millisecond
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = defaultMaxAttempts
	}
	return nil
}

// NewRunner wires a runner.
func NewRunner(cfg RunnerConfig) (*Runner, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	p := cfg.Projection
	return &Runner{db: cfg.DB, brokers: cfg.Brokers, group: cfg.Group, p: p, log: cfg.Log.With("projection", p.Name()),
		metrics: cfg.Metrics, MaxBatch: cfg.MaxBatch, Linger: cfg.Linger, MaxAttempts: cfg.MaxAttempts, Stage: cfg.Stage,
		checkpoint: p.Name(), partitionLock: p.Name(), instanceID: cfg.InstanceID}, nil
}

// defaultMaxAttempts tries a failing record over about a second and a half
// before it is set aside: enough for a conflict with a concurrent writer
// to clear, short enough that the partition behind it hardly waits.
const defaultMaxAttempts = 4

// StageName is how a projection's stage is named in health and metrics.
func StageName(projection string) string { return "projection " + projection }

func (r *Runner) stage() *health.Stage {
	if r.Stage == nil {
		r.Stage = health.NewBoard(0).Stage(StageName(r.p.Name()))
	}
	return r.Stage
}

// newClient is the runner's consumer: its group, offsets from the
// checkpoints, nothing committed to Kafka.
func (r *Runner) newClient() (*kgo.Client, error) {
	opts := []kgo.Opt{
		kgo.SeedBrokers(r.brokers...),
		kgo.ConsumerGroup(r.group),
		kgo.ConsumeTopics(r.p.Topics()...),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		// A killed member is noticed within the session timeout, and a
		// rebalance waits at most the rebalance timeout for members to
		// rejoin: both sized so a replacement takes over within seconds
		// (franz-go's defaults, 45 s and 60 s, stalled the read model for
		// minutes after a kill).
		kgo.SessionTimeout(6 * time.Second),
		kgo.HeartbeatInterval(time.Second),
		kgo.RebalanceTimeout(10 * time.Second),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(250 * time.Millisecond),
		// Enough per partition that one poll can fill MaxBatch.
		kgo.FetchMaxPartitionBytes(4 << 20),
		kgo.AdjustFetchOffsetsFn(r.checkpointOffsets),
		kgo.WithLogger(kgoLogger{r.log}),
	}
	if r.instanceID != "" {
		opts = append(opts, kgo.InstanceID(r.instanceID))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("projection %s: creating kafka consumer: %w", r.p.Name(), err)
	}
	return cl, nil
}

// linger waits up to r.Linger, from the first record, for the batch to
// fill to a quarter of MaxBatch: one transaction of many events costs far
// less than many small ones (a commit writes every page it dirtied, and
// the hot index pages are shared). A fetch returns as soon as any record
// is there, so under a trickle one more poll added a handful: 25 records a
// transaction at 3,000 events/s, which cost the runner twice the CPU an
// event that batches of 200 do.
func (r *Runner) linger(ctx context.Context, cl *kgo.Client, fetches kgo.Fetches) kgo.Fetches {
	n := fetches.NumRecords()
	if n == 0 || r.Linger <= 0 {
		return fetches
	}
	lctx, cancel := context.WithTimeout(ctx, r.Linger)
	defer cancel()
	for n < r.MaxBatch/4 && lctx.Err() == nil {
		more := cl.PollRecords(lctx, r.MaxBatch-n)
		if more.IsClientClosed() {
			break
		}
		fetches = append(fetches, more...)
		n = fetches.NumRecords()
	}
	return fetches
}

// Run consumes until ctx is cancelled, finishing the batch in hand first.
func (r *Runner) Run(ctx context.Context) error {
	cl, err := r.newClient()
	if err != nil {
		return err
	}
	defer cl.Close()

	r.metrics.SetProjectionLag(r.p.Name(), 0)
	lags := map[string]map[int32]int64{}
	for {
		fetches := cl.PollRecords(ctx, r.MaxBatch)
		if fetches.IsClientClosed() || ctx.Err() != nil {
			cl.AllowRebalance()
			return nil
		}
		fetches = r.linger(ctx, cl, fetches)
		fetches.EachError(func(topic string, partition int32, err error) {
			if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
				r.log.Warn("projection fetch error", "topic", topic, "partition", partition, "err", err)
				r.stage().Failed(err, "Kafka")
			}
		})
		records := fetches.Records()
		// The lag counts the records in hand: a batch that cannot be
		// applied shows as a backlog that does not move, not as zero.
		fetches.EachPartition(func(p kgo.FetchTopicPartition) {
			if len(p.Records) == 0 {
				return
			}
			if lags[p.Topic] == nil {
				lags[p.Topic] = map[int32]int64{}
			}
			lags[p.Topic][p.Partition] = p.HighWatermark - p.Records[0].Offset
		})
		r.reportLag(lags)
		if len(records) > 0 {
			if err := r.applyWithRetry(ctx, records); err != nil {
				cl.AllowRebalance()
				return err
			}
			// Kafka's own offsets are only for outside tools (lag
			// dashboards); the database checkpoint is the truth.
			cl.CommitRecords(context.WithoutCancel(ctx), records...) //nolint:errcheck // advisory
			fetches.EachPartition(func(p kgo.FetchTopicPartition) {
				if len(p.Records) > 0 {
					lags[p.Topic][p.Partition] = p.HighWatermark - (p.Records[len(p.Records)-1].Offset + 1)
				}
			})
			r.reportLag(lags)
		}
		cl.AllowRebalance()
	}
}

func (r *Runner) reportLag(lags map[string]map[int32]int64) {
	var total int64
	for _, ps := range lags {
		for _, l := range ps {
			total += l
		}
	}
	r.metrics.SetProjectionLag(r.p.Name(), total)
	r.stage().Backlog(total)
}

// applyWithRetry applies records without ever skipping one. A database
// outage stalls the projection (its backlog stays and health names the
// stage) until the database is back. A record that fails on its own while
// the database answers is found by splitting the batch, tried a few times
// and quarantined, so the rest of the batch and every other tenant go on.
// It returns early, applying nothing more, only when ctx ends.
func (r *Runner) applyWithRetry(ctx context.Context, records []*kgo.Record) error {
	if err := r.settle(ctx, records); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

// settle applies records, splitting a batch that fails for a reason other
// than the database being unavailable until the records at fault are
// alone, then isolating each.
func (r *Runner) settle(ctx context.Context, records []*kgo.Record) error {
	err := r.applyBatch(ctx, records)
	if err == nil || ctx.Err() != nil {
		return ctx.Err()
	}
	if len(records) > 1 {
		mid := len(records) / 2
		r.log.Warn("projection batch failed; splitting it to find the records at fault",
			"records", len(records), "err", err)
		if err := r.settle(ctx, records[:mid]); err != nil {
			return err
		}
		return r.settle(ctx, records[mid:])
	}
	return r.isolate(ctx, records[0], err)
}

// applyBatch applies records in one transaction, waiting out transient
// failures: it returns nil, an error the database gave while answering
// (the batch cannot be applied as it is), or ctx's error.
func (r *Runner) applyBatch(ctx context.Context, records []*kgo.Record) error {
	for attempt := 0; ; attempt++ {
		applied, err := r.apply(context.WithoutCancel(ctx), records, nil)
		if err == nil {
			r.metrics.Projected(r.p.Name(), applied)
			r.stage().Progressed(len(records))
			return nil
		}
		if !r.transient(ctx, err) {
			r.stage().Failed(err, "")
			return err
		}
		r.stage().Failed(err, "the database")
		r.log.Error("projection batch failed: the database is unavailable; retrying",
			"records", len(records), "attempt", attempt, "err", err)
		if !retry.Sleep(ctx, retry.Delay(attempt, 5*time.Second)) {
			return ctx.Err()
		}
	}
}

// transient reports whether err is the database being unavailable (it
// says so, or does not answer a ping) rather than the batch being wrong.
func (r *Runner) transient(ctx context.Context, err error) bool {
	if store.IsTransient(err) {
		return true
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	return r.db.Ping(pctx) != nil
}

// isolate retries one record that failed alone, then quarantines it: kept
// whole with where it was and why, and passed by the checkpoint in the
// same transaction.
func (r *Runner) isolate(ctx context.Context, rec *kgo.Record, err error) error {
	first := time.Now().UTC()
	attempts := 1
	for ; attempts < r.MaxAttempts; attempts++ {
		if !retry.Sleep(ctx, retry.Delay(attempts, 5*time.Second)) {
			return ctx.Err()
		}
		if err = r.applyBatch(ctx, []*kgo.Record{rec}); err == nil || ctx.Err() != nil {
			return ctx.Err()
		}
	}
	q := quarantineEntry(r.p.Name(), rec, err, attempts, first)
	for attempt := 0; ; attempt++ {
		_, qerr := r.apply(context.WithoutCancel(ctx), []*kgo.Record{rec}, q)
		if qerr == nil {
			r.stage().Quarantined(1)
			r.log.Error("record quarantined: the projection could not apply it and moved past it",
				"quarantineId", q.ID, "topic", rec.Topic, "partition", rec.Partition, "offset", rec.Offset,
				"attempts", attempts, "err", err)
			return nil
		}
		// Nothing moves past a record that could not be set aside.
		r.stage().Failed(qerr, "the database")
		r.log.Error("quarantining a record failed; retrying", "offset", rec.Offset, "err", qerr)
		if !retry.Sleep(ctx, retry.Delay(attempt, 5*time.Second)) {
			return ctx.Err()
		}
	}
}

type partitionKey struct {
	topic     string
	partition int32
}

// apply applies records and moves their partitions' checkpoints past them
// in one transaction. With q, the one record is set aside as q instead of
// applied. A record that does not decode is set aside in the same way.
func (r *Runner) apply(ctx context.Context, records []*kgo.Record, q *readmodel.QuarantinedRecord) (int, error) {
	var applied []domain.Event
	var undecodable []*readmodel.QuarantinedRecord
	var decoded []recordEvent
	if q == nil {
		decoded = r.decodeAll(records)
	}
	// One writer for all runners of the database: on SQLite, one kept
	// connection whose page cache survives their commits (store.Writer).
	err := r.db.Writer.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if r.prelude != nil {
			if err := r.prelude(ctx, tx); err != nil {
				return err
			}
		}
		cps, err := r.lockCheckpoints(ctx, tx, records)
		if err != nil {
			return err
		}
		events := make([]domain.Event, 0, len(records))
		undecodable = undecodable[:0]
		for i, rec := range records {
			if !cps.pass(rec) {
				continue // applied before, by us or another member
			}
			if q != nil {
				if err := r.storeQuarantined(ctx, tx, q); err != nil {
					return err
				}
				continue
			}
			e, uq := decoded[i].event, decoded[i].quarantined
			if uq != nil {
				if err := r.storeQuarantined(ctx, tx, uq); err != nil {
					return err
				}
				undecodable = append(undecodable, uq)
				continue
			}
			events = append(events, e)
		}
		if len(events) > 0 {
			if err := r.p.Apply(ctx, tx, r.db, events); err != nil {
				return fmt.Errorf("applying %d events: %w", len(events), err)
			}
		}
		if err := r.storeCheckpoints(ctx, tx, cps); err != nil {
			return err
		}
		applied = events
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, uq := range undecodable {
		r.stage().Quarantined(1)
		r.log.Error("undecodable record quarantined", "quarantineId", uq.ID, "topic", uq.Topic,
			"partition", uq.Partition, "offset", uq.Offset, "err", uq.Error)
	}
	if ac, ok := r.p.(AfterCommitter); ok && len(applied) > 0 {
		ac.AfterCommit(ctx, applied)
	}
	return len(applied), nil
}

// recordEvent is a record's event, or its quarantine entry if it is none.
type recordEvent struct {
	event       domain.Event
	quarantined *readmodel.QuarantinedRecord
}

// parallelDecodeFrom is the batch size from which records decode in two
// halves at once.
const parallelDecodeFrom = 512

// decodeAll decodes records before their transaction, not in it: the
// runner is the one serial stage of the pipeline and the writer is shared
// (store.Writer), so neither waits on JSON. A big batch decodes in two
// halves at once, on the core the database is not using; a record applied
// before is decoded for nothing, which only happens after a restart.
func (r *Runner) decodeAll(records []*kgo.Record) []recordEvent {
	out := make([]recordEvent, len(records))
	decode := func(lo, hi int) {
		for i := lo; i < hi; i++ {
			out[i].event, out[i].quarantined = r.decode(records[i])
		}
	}
	if len(records) < parallelDecodeFrom {
		decode(0, len(records))
		return out
	}
	mid := len(records) / 2
	done := make(chan struct{})
	go func() {
		defer close(done)
		decode(mid, len(records))
	}()
	decode(0, mid)
	<-done
	return out
}

// decode reads a record's event envelope, or returns the quarantine entry
// for a record that is not one.
func (r *Runner) decode(rec *kgo.Record) (domain.Event, *readmodel.QuarantinedRecord) {
	var e domain.Event
	var err error
	if !decodeEvent(rec.Value, &e) {
		e = domain.Event{}
		err = json.Unmarshal(rec.Value, &e)
	}
	if err == nil && (e.ID == "" || e.Type == "") {
		err = errors.New("not an event envelope: no id or type")
	}
	if err != nil {
		return e, quarantineEntry(r.p.Name(), rec, fmt.Errorf("undecodable record: %w", err), 1, time.Now().UTC())
	}
	return e, nil
}

// checkpoints are the next offsets of a batch's partitions, read under
// their locks, in lock order.
type checkpoints struct {
	next map[partitionKey]int64
	keys []partitionKey
}

// pass reports whether rec is past its partition's checkpoint, and moves
// the checkpoint past it.
func (c checkpoints) pass(rec *kgo.Record) bool {
	k := partitionKey{rec.Topic, rec.Partition}
	if rec.Offset < c.next[k] {
		return false
	}
	c.next[k] = rec.Offset + 1
	return true
}

// lockCheckpoints locks and reads the checkpoints of records' partitions.
func (r *Runner) lockCheckpoints(ctx context.Context, tx bun.Tx, records []*kgo.Record) (checkpoints, error) {
	c := checkpoints{next: map[partitionKey]int64{}}
	for _, rec := range records {
		k := partitionKey{rec.Topic, rec.Partition}
		if _, ok := c.next[k]; !ok {
			c.keys = append(c.keys, k)
			c.next[k] = -1
		}
	}
	// Lock checkpoints in a fixed order: another member applying an
	// overlapping batch during a rebalance waits here, then skips what
	// this one applied.
	sort.Slice(c.keys, func(i, j int) bool {
		if c.keys[i].topic != c.keys[j].topic {
			return c.keys[i].topic < c.keys[j].topic
		}
		return c.keys[i].partition < c.keys[j].partition
	})
	for _, k := range c.keys {
		if err := r.lockPartition(ctx, tx, k); err != nil {
			return c, err
		}
		off, err := r.loadCheckpoint(ctx, tx, k)
		if err != nil {
			return c, err
		}
		c.next[k] = off
	}
	return c, nil
}

func (r *Runner) storeCheckpoints(ctx context.Context, tx bun.Tx, c checkpoints) error {
	now := time.Now().UTC()
	for _, k := range c.keys {
		if c.next[k] < 0 {
			continue
		}
		cp := &readmodel.Checkpoint{Projection: r.checkpoint, Topic: k.topic, Partition: k.partition,
			NextOffset: c.next[k], UpdatedAt: now}
		if _, err := tx.NewInsert().Model(cp).
			On("CONFLICT (projection, topic, partition) DO UPDATE").
			Set("next_offset = EXCLUDED.next_offset").
			Set("updated_at = EXCLUDED.updated_at").
			Exec(ctx); err != nil {
			return fmt.Errorf("storing checkpoint: %w", err)
		}
	}
	return nil
}

// lockPartition takes the partition's lock until the transaction ends:
// a PostgreSQL advisory lock, which needs no row to exist. SQLite has one
// writer at a time anyway.
func (r *Runner) lockPartition(ctx context.Context, tx bun.Tx, k partitionKey) error {
	if r.partitionLock == "" || r.db.Dialect != store.Postgres {
		return nil
	}
	if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(hashtext(?), ?)", r.partitionLock+"|"+k.topic, k.partition); err != nil {
		return fmt.Errorf("locking partition %s/%d: %w", k.topic, k.partition, err)
	}
	return nil
}

// loadCheckpoint returns the next offset to apply for k, or 0.
func (r *Runner) loadCheckpoint(ctx context.Context, tx bun.Tx, k partitionKey) (int64, error) {
	var cp readmodel.Checkpoint
	q := tx.NewSelect().Model(&cp).
		Where("projection = ?", r.checkpoint).Where("topic = ?", k.topic).Where("partition = ?", k.partition)
	if r.db.Dialect == store.Postgres {
		q = q.For("UPDATE")
	}
	err := q.Scan(ctx)
	if errors.Is(err, sqlErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("loading checkpoint %s/%d: %w", k.topic, k.partition, err)
	}
	return cp.NextOffset, nil
}

// checkpointOffsets replaces Kafka's committed offsets with the database
// checkpoints when partitions are assigned.
func (r *Runner) checkpointOffsets(ctx context.Context, assigned map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	var cps []readmodel.Checkpoint
	if err := r.db.NewSelect().Model(&cps).Where("projection = ?", r.checkpoint).Scan(ctx); err != nil {
		return nil, fmt.Errorf("loading checkpoints: %w", err)
	}
	stored := map[partitionKey]int64{}
	for _, cp := range cps {
		stored[partitionKey{cp.Topic, cp.Partition}] = cp.NextOffset
	}
	out := make(map[string]map[int32]kgo.Offset, len(assigned))
	for topic, parts := range assigned {
		out[topic] = make(map[int32]kgo.Offset, len(parts))
		for p := range parts {
			if off, ok := stored[partitionKey{topic, p}]; ok {
				out[topic][p] = kgo.NewOffset().At(off)
			} else {
				out[topic][p] = kgo.NewOffset().AtStart()
			}
		}
	}
	return out, nil
}

type kgoLogger struct{ log *slog.Logger }

func (kgoLogger) Level() kgo.LogLevel { return kgo.LogLevelWarn }

func (l kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	lv := slog.LevelWarn
	if level == kgo.LogLevelError {
		lv = slog.LevelError
	}
	l.log.Log(context.Background(), lv, "kafka consumer: "+msg, keyvals...)
}
