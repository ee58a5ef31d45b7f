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
	// Linger is how long a small batch waits for more records.
	Linger time.Duration

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
}

// NewRunner wires a runner; group is the Kafka consumer group name.
func NewRunner(db *store.DB, brokers []string, group string, p Projection, log *slog.Logger, m Metrics) *Runner {
	return &Runner{db: db, brokers: brokers, group: group, p: p, log: log.With("projection", p.Name()),
		metrics: m, MaxBatch: 5000, Linger: 50 * time.Millisecond, checkpoint: p.Name(), partitionLock: p.Name()}
}

// Run consumes until ctx is cancelled, finishing the batch in hand first.
func (r *Runner) Run(ctx context.Context) error {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(r.brokers...),
		kgo.ConsumerGroup(r.group),
		kgo.ConsumeTopics(r.p.Topics()...),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.SessionTimeout(10*time.Second),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(250*time.Millisecond),
		kgo.AdjustFetchOffsetsFn(r.checkpointOffsets),
		kgo.WithLogger(kgoLogger{r.log}),
	)
	if err != nil {
		return fmt.Errorf("projection %s: creating kafka consumer: %w", r.p.Name(), err)
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
		// Under load, wait briefly for a fuller batch: one transaction of
		// many events costs far less than many small ones.
		if n := fetches.NumRecords(); n > 0 && n < r.MaxBatch/4 && r.Linger > 0 {
			lctx, cancel := context.WithTimeout(ctx, r.Linger)
			more := cl.PollRecords(lctx, r.MaxBatch-n)
			cancel()
			if !more.IsClientClosed() {
				fetches = append(fetches, more...)
			}
		}
		fetches.EachError(func(topic string, partition int32, err error) {
			if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
				r.log.Warn("projection fetch error", "topic", topic, "partition", partition, "err", err)
			}
		})
		records := fetches.Records()
		if len(records) > 0 {
			if err := r.applyWithRetry(ctx, records); err != nil {
				cl.AllowRebalance()
				return err
			}
			// Kafka's own offsets are only for outside tools (lag
			// dashboards); the database checkpoint is the truth.
			cl.CommitRecords(context.WithoutCancel(ctx), records...) //nolint:errcheck // advisory
		}
		fetches.EachPartition(func(p kgo.FetchTopicPartition) {
			if len(p.Records) == 0 {
				return
			}
			if lags[p.Topic] == nil {
				lags[p.Topic] = map[int32]int64{}
			}
			lags[p.Topic][p.Partition] = p.HighWatermark - (p.Records[len(p.Records)-1].Offset + 1)
		})
		var total int64
		for _, ps := range lags {
			for _, l := range ps {
				total += l
			}
		}
		r.metrics.SetProjectionLag(r.p.Name(), total)
		cl.AllowRebalance()
	}
}

// applyWithRetry never skips a batch: a database outage stalls the
// projection (its lag grows and readiness says so) until it comes back.
func (r *Runner) applyWithRetry(ctx context.Context, records []*kgo.Record) error {
	for attempt := 0; ; attempt++ {
		applied, err := r.apply(context.WithoutCancel(ctx), records)
		if err == nil {
			r.metrics.Projected(r.p.Name(), applied)
			return nil
		}
		r.log.Error("projection batch failed; retrying", "records", len(records), "attempt", attempt, "err", err)
		d := min(100*time.Millisecond<<min(attempt, 6), 5*time.Second)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(d):
		}
	}
}

type partitionKey struct {
	topic     string
	partition int32
}

func (r *Runner) apply(ctx context.Context, records []*kgo.Record) (int, error) {
	var applied []domain.Event
	err := r.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if r.prelude != nil {
			if err := r.prelude(ctx, tx); err != nil {
				return err
			}
		}
		next := map[partitionKey]int64{}
		var keys []partitionKey
		for _, rec := range records {
			k := partitionKey{rec.Topic, rec.Partition}
			if _, ok := next[k]; !ok {
				keys = append(keys, k)
				next[k] = -1
			}
		}
		// Lock checkpoints in a fixed order: another member applying an
		// overlapping batch during a rebalance waits here, then skips what
		// this one applied.
		sort.Slice(keys, func(i, j int) bool {
			if keys[i].topic != keys[j].topic {
				return keys[i].topic < keys[j].topic
			}
			return keys[i].partition < keys[j].partition
		})
		for _, k := range keys {
			if err := r.lockPartition(ctx, tx, k); err != nil {
				return err
			}
			off, err := r.loadCheckpoint(ctx, tx, k)
			if err != nil {
				return err
			}
			next[k] = off
		}
		events := make([]domain.Event, 0, len(records))
		for _, rec := range records {
			k := partitionKey{rec.Topic, rec.Partition}
			if rec.Offset < next[k] {
				continue // applied before, by us or another member
			}
			next[k] = rec.Offset + 1
			var e domain.Event
			if err := json.Unmarshal(rec.Value, &e); err != nil || e.ID == "" || e.Type == "" {
				r.log.Error("skipping undecodable record", "topic", rec.Topic, "partition", rec.Partition,
					"offset", rec.Offset, "err", err)
				continue
			}
			events = append(events, e)
		}
		if len(events) > 0 {
			if err := r.p.Apply(ctx, tx, r.db, events); err != nil {
				return fmt.Errorf("applying %d events: %w", len(events), err)
			}
		}
		now := time.Now().UTC()
		for _, k := range keys {
			if next[k] < 0 {
				continue
			}
			cp := &readmodel.Checkpoint{Projection: r.checkpoint, Topic: k.topic, Partition: k.partition,
				NextOffset: next[k], UpdatedAt: now}
			if _, err := tx.NewInsert().Model(cp).
				On("CONFLICT (projection, topic, partition) DO UPDATE").
				Set("next_offset = EXCLUDED.next_offset").
				Set("updated_at = EXCLUDED.updated_at").
				Exec(ctx); err != nil {
				return fmt.Errorf("storing checkpoint: %w", err)
			}
		}
		applied = events
		return nil
	})
	if err != nil {
		return 0, err
	}
	if ac, ok := r.p.(AfterCommitter); ok && len(applied) > 0 {
		ac.AfterCommit(ctx, applied)
	}
	return len(applied), nil
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
