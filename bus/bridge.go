package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/gamify/boost/domain"
	"github.com/gamify/boost/health"
	"github.com/gamify/boost/internal/retry"
)

// BridgeMetrics receives what the bridge did.
type BridgeMetrics interface {
	Bridged(n int)
	BridgeLag(stream string, pending uint64)
}

// Bridge copies the event and tracked streams to Kafka: one record per
// message, in stream order, each exactly once.
//
// Nothing is acknowledged in JetStream (the streams keep messages by age,
// not by acks). Instead each stream's bridged position — the last sequence
// whose record Kafka acknowledged — is kept in a KV bucket and moved only
// after Kafka acknowledged the batch, with a compare-and-set, by the one
// process that holds the stream's lease (a KV key that expires unless
// renewed: a killed bridge is replaced within about LeaseTTL). A new holder
// starts at the position, in order, and first reads the tail of the topics
// to learn which records after the position already reached Kafka (the
// batch a dead holder produced but could not record), so it neither skips
// nor repeats one. A message that cannot become a record, or that Kafka
// refuses for good, is quarantined and passed.
type Bridge struct {
	js         jetstream.JetStream
	names      Names
	kafka      *kgo.Client
	topics     Topics
	log        *slog.Logger
	metrics    BridgeMetrics
	stage      *health.Stage
	quarantine *Quarantine
	holder     string
	cfg        BridgeConfig

	leases, positions jetstream.KeyValue
}

// BridgeConfig tunes a bridge; zero fields take the defaults.
type BridgeConfig struct {
	// Brokers are the Kafka bootstrap brokers (the bridge opens its own
	// producer on them).
	Brokers []string
	Topics  Topics
	// BatchSize bounds the records of one produce round (default 1000).
	BatchSize int
	// LeaseTTL is how long a stream's lease outlives its holder's last
	// renewal (default 6 s); it is renewed every third of it.
	LeaseTTL time.Duration
	// Replicas of the bridge's KV buckets (default 1).
	Replicas int
}

func (c *BridgeConfig) validate() error {
	if len(c.Brokers) == 0 {
		return errors.New("bridge: Kafka brokers are required")
	}
	if c.Topics.Tenancy == "" || c.Topics.Events == "" {
		return errors.New("bridge: both topics are required")
	}
	if c.BatchSize == 0 {
		c.BatchSize = 1000
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = 6 * time.Second
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	switch {
	case c.BatchSize < 1:
		return fmt.Errorf("bridge: batch size must be positive, not %d", c.BatchSize)
	case c.LeaseTTL < time.Second:
		return fmt.Errorf("bridge: lease TTL must be at least 1s, not %s", c.LeaseTTL)
	}
	return nil
}

// NewBridge wires a bridge over nc; Run starts it, Close releases it.
func NewBridge(nc *nats.Conn, n Names, cfg BridgeConfig, q *Quarantine, stage *health.Stage,
	log *slog.Logger, m BridgeMetrics,
) (*Bridge, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("creating jetstream context: %w", err)
	}
	kafka, err := NewKafkaClient(cfg.Brokers, kgo.ProducerLinger(time.Millisecond))
	if err != nil {
		return nil, err
	}
	b := &Bridge{js: js, names: n, kafka: kafka, topics: cfg.Topics, log: log, metrics: m, stage: stage,
		quarantine: q, holder: uuid.NewString(), cfg: cfg}
	return b, nil
}

// Close releases the bridge's Kafka producer.
func (b *Bridge) Close() { b.kafka.Close() }

// ensureBuckets creates the lease and position buckets.
func (b *Bridge) ensureBuckets(ctx context.Context) error {
	var err error
	if b.leases, err = b.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: b.names.BridgeLeases(),
		Description: "Which bridge process copies each stream to Kafka", TTL: b.cfg.LeaseTTL,
		Storage: jetstream.FileStorage, Replicas: b.cfg.Replicas}); err != nil {
		return fmt.Errorf("creating bucket %s: %w", b.names.BridgeLeases(), err)
	}
	if b.positions, err = b.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: b.names.BridgePositions(),
		Description: "The last sequence of each stream Kafka has", Storage: jetstream.FileStorage,
		Replicas: b.cfg.Replicas}); err != nil {
		return fmt.Errorf("creating bucket %s: %w", b.names.BridgePositions(), err)
	}
	return nil
}

// Run bridges the event stream and the tracked stream until ctx ends.
// The batch in flight when ctx ends is still produced and recorded, so
// shutdown leaves nothing half-sent; the leases are then released for a
// standby to take over at once.
func (b *Bridge) Run(ctx context.Context) error {
	if err := retry.Forever(ctx, b.log, "creating the bridge's buckets", func() error { return b.ensureBuckets(ctx) }); err != nil {
		return err
	}
	streams := []string{b.names.EventStream(), b.names.TrackedStream()}
	var wg sync.WaitGroup
	for _, s := range streams {
		wg.Go(func() { b.runStream(ctx, s) })
	}
	wg.Wait()
	return nil
}

// errLeaseLost stops serving a stream another bridge now holds.
var errLeaseLost = errors.New("the stream's lease was lost")

func (b *Bridge) runStream(ctx context.Context, stream string) {
	b.metrics.BridgeLag(stream, 0)
	for ctx.Err() == nil {
		rev, ok := b.acquire(ctx, stream)
		if !ok {
			return
		}
		held, lost := context.WithCancelCause(ctx)
		renewed := make(chan struct{})
		go func() { defer close(renewed); b.renew(held, lost, stream, rev) }()
		for held.Err() == nil {
			err := b.serve(held, stream)
			if held.Err() != nil {
				break
			}
			// Kafka or NATS failing under it: start over from the
			// recorded position, still holding the lease.
			b.stage.Failed(err, "")
			b.log.Warn("bridge: serving the stream failed; resuming from its recorded position", "stream", stream, "err", err)
			retry.Sleep(held, time.Second)
		}
		lost(nil)
		<-renewed
		if ctx.Err() != nil {
			b.release(stream)
			return
		}
		b.log.Warn("bridge: the stream's lease was lost; standing by", "stream", stream, "err", context.Cause(held))
	}
}

// acquire waits until this process holds stream's lease.
func (b *Bridge) acquire(ctx context.Context, stream string) (uint64, bool) {
	key := leaseKey(stream)
	waiting := false
	for {
		rev, err := b.leases.Create(ctx, key, []byte(b.holder))
		if err == nil {
			b.log.Info("bridge: serving stream", "stream", stream, "holder", b.holder)
			return rev, true
		}
		if e, gerr := b.leases.Get(ctx, key); gerr == nil && !waiting {
			waiting = true
			b.log.Info("bridge: standing by; another bridge serves the stream", "stream", stream, "holder", string(e.Value()))
		} else if gerr != nil && !errors.Is(gerr, jetstream.ErrKeyNotFound) {
			b.stage.Failed(gerr, "NATS JetStream")
		}
		if !retry.Sleep(ctx, b.cfg.LeaseTTL/3) {
			return 0, false
		}
	}
}

// renew keeps the lease until ctx ends, or stops the stream's service
// with errLeaseLost when another process took it.
func (b *Bridge) renew(ctx context.Context, stop context.CancelCauseFunc, stream string, rev uint64) {
	t := time.NewTicker(b.cfg.LeaseTTL / 3)
	defer t.Stop()
	lastRenewed := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		next, err := b.leases.Update(ctx, leaseKey(stream), []byte(b.holder), rev)
		if err == nil {
			rev, lastRenewed = next, time.Now()
			continue
		}
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) || time.Since(lastRenewed) >= b.cfg.LeaseTTL {
			// Taken over, or expired while NATS was unreachable: another
			// bridge may be serving the stream now.
			stop(fmt.Errorf("%w: %v", errLeaseLost, err))
			return
		}
	}
}

// release hands the lease back at shutdown.
func (b *Bridge) release(stream string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if e, err := b.leases.Get(ctx, leaseKey(stream)); err == nil && string(e.Value()) == b.holder {
		_ = b.leases.Delete(ctx, leaseKey(stream), jetstream.LastRevision(e.Revision()))
	}
}

func leaseKey(stream string) string    { return "lease." + stream }
func positionKey(stream string) string { return "position." + stream }

// serve copies stream from its recorded position while the lease holds.
func (b *Bridge) serve(ctx context.Context, stream string) error {
	pos, posRev, err := b.position(ctx, stream)
	if err != nil {
		return err
	}
	landed, err := b.landed(ctx, stream, pos)
	if err != nil {
		return err
	}
	if len(landed) > 0 {
		b.log.Info("bridge: records after the recorded position are in Kafka already; not producing them again",
			"stream", stream, "position", pos, "records", len(landed))
	}
	rd := &streamReader{js: b.js, stream: stream, next: pos + 1}
	defer rd.close()
	var at atomic.Uint64
	at.Store(pos)
	go b.reportLag(ctx, stream, &at)
	for ctx.Err() == nil {
		msgs, err := rd.fetch(ctx, b.cfg.BatchSize)
		if err != nil {
			// NATS failing: start over from the recorded position.
			return err
		}
		if len(msgs) == 0 {
			continue
		}
		last, err := msgSeq(msgs[len(msgs)-1])
		if err != nil {
			return err
		}
		if err := b.forward(ctx, stream, msgs, landed); err != nil {
			return err
		}
		if posRev, err = b.record(ctx, stream, last, posRev); err != nil {
			return err
		}
		at.Store(last)
		b.metrics.Bridged(len(msgs))
		b.stage.Progressed(len(msgs))
	}
	return context.Cause(ctx)
}

// streamReader reads a stream in order from a sequence on, with one plain
// pull consumer (no acks, in memory) that lives as long as the reader.
// nats.go's ordered consumer does the same, but deletes its consumer and
// creates a new one on every Fetch: at a few hundred fetches a second
// under a trickle of events that churn was 4 % of boost dev's CPU
// (docs/benchmarks.md). A delivery missed on the way (the consumer's
// sequences skip one) is a gap: the reader starts a new consumer where
// its order broke, as the ordered consumer does.
type streamReader struct {
	js     jetstream.JetStream
	stream string
	next   uint64 // the stream sequence the next message must have, or later
	cons   jetstream.Consumer
	// delivered is the consumer sequence of the last message read.
	delivered uint64
}

// fetch returns the next messages in order, at most max: what is there at
// once, else what arrives within a second.
func (r *streamReader) fetch(ctx context.Context, max int) ([]jetstream.Msg, error) {
	if r.cons == nil {
		if err := r.open(ctx); err != nil {
			return nil, err
		}
	}
	batch, err := r.cons.FetchNoWait(max)
	if err != nil {
		return nil, r.broken(err)
	}
	if msgs, err := r.inOrder(batch); err != nil || len(msgs) > 0 || r.cons == nil || ctx.Err() != nil {
		return msgs, err
	}
	if batch, err = r.cons.Fetch(1, jetstream.FetchMaxWait(time.Second)); err != nil {
		return nil, r.broken(err)
	}
	msgs, err := r.inOrder(batch)
	if err != nil || len(msgs) > 0 || r.cons == nil {
		return msgs, err
	}
	// Nothing came for a second. A delivery lost on the way is only
	// seen as a gap when a later one arrives, and on a quiet stream none
	// may: ask the consumer what it handed out.
	info, err := r.cons.Info(ctx)
	if err != nil {
		return nil, r.broken(err)
	}
	if info.Delivered.Consumer > r.delivered {
		r.close()
	}
	return nil, nil
}

// inOrder drains batch, keeping the messages up to the first gap in the
// consumer's deliveries; on a gap it drops the consumer, so the next fetch
// starts again after the last message kept. A pull the server answered
// with an error (the consumer gone: expired while Kafka was down, or lost
// with a NATS restart) drops it too, and is an error if nothing came.
func (r *streamReader) inOrder(batch jetstream.MessageBatch) ([]jetstream.Msg, error) {
	var msgs []jetstream.Msg
	ok := true
	for m := range batch.Messages() {
		if !ok {
			continue
		}
		meta, err := m.Metadata()
		if err != nil || meta.Sequence.Consumer != r.delivered+1 || meta.Sequence.Stream < r.next {
			ok = false
			continue
		}
		r.delivered, r.next = meta.Sequence.Consumer, meta.Sequence.Stream+1
		msgs = append(msgs, m)
	}
	if err := batch.Error(); err != nil {
		if len(msgs) == 0 {
			return nil, r.broken(err)
		}
		ok = false
	}
	if !ok {
		r.close()
	}
	return msgs, nil
}

func (r *streamReader) open(ctx context.Context) error {
	cons, err := r.js.CreateConsumer(ctx, r.stream, jetstream.ConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: r.next,
		AckPolicy: jetstream.AckNonePolicy, MaxDeliver: 1, Replicas: 1, MemoryStorage: true,
		// Gone by itself if this process dies; a reader that stopped
		// pulling (Kafka down) gets a new one.
		InactiveThreshold: time.Minute})
	if err != nil {
		return fmt.Errorf("%w: consuming %s from %d: %v", ErrUnavailable, r.stream, r.next, err)
	}
	r.cons, r.delivered = cons, 0
	return nil
}

// broken drops the consumer after a failed fetch and says why.
func (r *streamReader) broken(err error) error {
	r.close()
	return fmt.Errorf("%w: fetching from %s: %v", ErrUnavailable, r.stream, err)
}

// close deletes the reader's consumer, if it has one.
func (r *streamReader) close() {
	if r.cons == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = r.js.DeleteConsumer(ctx, r.stream, r.cons.CachedInfo().Name)
	r.cons = nil
}

// position reads stream's bridged position, taking it over from the
// durable consumer older bridges acknowledged with, if there is one.
func (b *Bridge) position(ctx context.Context, stream string) (pos, rev uint64, err error) {
	e, err := b.positions.Get(ctx, positionKey(stream))
	if err == nil {
		pos, perr := strconv.ParseUint(string(e.Value()), 10, 64)
		if perr != nil {
			return 0, 0, fmt.Errorf("bridge position of %s is not a sequence: %q", stream, e.Value())
		}
		return pos, e.Revision(), nil
	}
	if !errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, 0, fmt.Errorf("%w: reading the bridge position of %s: %v", ErrUnavailable, stream, err)
	}
	if c, cerr := b.js.Consumer(ctx, stream, b.names.BridgeConsumer(stream)); cerr == nil {
		if info, ierr := c.Info(ctx); ierr == nil {
			pos = info.AckFloor.Stream
			b.log.Info("bridge: taking the position over from the old acking consumer", "stream", stream, "position", pos)
		}
	}
	rev, err = b.positions.Create(ctx, positionKey(stream), []byte(strconv.FormatUint(pos, 10)))
	if err != nil {
		return 0, 0, fmt.Errorf("%w: recording the bridge position of %s: %v", ErrUnavailable, stream, err)
	}
	if derr := b.js.DeleteConsumer(ctx, stream, b.names.BridgeConsumer(stream)); derr == nil {
		b.log.Info("bridge: removed the old acking consumer", "stream", stream)
	}
	return pos, rev, nil
}

// record moves the position to seq once Kafka has every record up to it.
// A revision conflict means another holder moved it: this one stops.
func (b *Bridge) record(ctx context.Context, stream string, seq, rev uint64) (uint64, error) {
	val := []byte(strconv.FormatUint(seq, 10))
	for attempt := 0; ; attempt++ {
		next, err := b.positions.Update(context.WithoutCancel(ctx), positionKey(stream), val, rev)
		if err == nil {
			return next, nil
		}
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) {
			return 0, fmt.Errorf("%w: the position of %s moved under this bridge: %v", errLeaseLost, stream, err)
		}
		b.stage.Failed(err, "NATS JetStream")
		if attempt%10 == 0 {
			b.log.Warn("bridge: recording the position failed; retrying", "stream", stream, "seq", seq, "err", err)
		}
		// Kafka has the records: giving up here only means the next
		// holder finds them in its tail scan.
		if !retry.Sleep(ctx, retry.Delay(attempt, 3*time.Second)) {
			return 0, context.Cause(ctx)
		}
	}
}

// forward produces msgs' records, skipping those already in Kafka and
// quarantining those that can never be records, and returns once Kafka has
// acknowledged every other one.
func (b *Bridge) forward(ctx context.Context, stream string, msgs []jetstream.Msg, landed map[uint64]bool) error {
	var records []*kgo.Record
	for _, m := range msgs {
		seq, err := msgSeq(m)
		if err != nil {
			return err
		}
		if landed[seq] {
			delete(landed, seq)
			continue
		}
		rec, err := b.newRecord(stream, seq, m)
		if err != nil {
			if qerr := b.setAside(ctx, m, fmt.Errorf("not an event envelope: %w", err)); qerr != nil {
				return qerr
			}
			continue
		}
		records = append(records, rec)
	}
	for attempt := 0; len(records) > 0; attempt++ {
		failed, permanent, err := b.produce(ctx, records)
		for _, p := range permanent {
			if qerr := b.setAside(ctx, p.msg(msgs), fmt.Errorf("kafka refuses the record for good: %w", p.err)); qerr != nil {
				return qerr
			}
		}
		if err == nil {
			return nil
		}
		b.stage.Failed(err, "Kafka")
		b.log.Warn("bridge: kafka produce failed; retrying", "stream", stream, "records", len(failed), "attempt", attempt, "err", err)
		if !retry.Sleep(ctx, retry.Delay(attempt, 3*time.Second)) {
			// Shutting down: what Kafka has is found by the next holder.
			return context.Cause(ctx)
		}
		// Some may have landed before the failure: find out, so a retry
		// repeats none.
		after := seqOf(failed[0]) - 1
		got, lerr := b.landed(ctx, stream, after)
		if lerr != nil {
			return lerr
		}
		records = records[:0]
		for _, r := range failed {
			if !got[seqOf(r)] {
				records = append(records, r)
			}
		}
	}
	return nil
}

// refused is a record Kafka refuses for good.
type refused struct {
	seq uint64
	err error
}

func (r refused) msg(msgs []jetstream.Msg) jetstream.Msg {
	for _, m := range msgs {
		if s, _ := msgSeq(m); s == r.seq {
			return m
		}
	}
	return msgs[0]
}

// produce sends records and waits for every acknowledgement (bounded, so
// a broker that lost its producer state cannot hold the bridge). It
// returns the records to retry, those refused for good, and the first
// retriable error.
func (b *Bridge) produce(ctx context.Context, records []*kgo.Record) (failed []*kgo.Record, permanent []refused, err error) {
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	// On shutdown the batch in hand gets a few seconds to land.
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(5*time.Second, cancel) })
	defer stop()
	// franz-go owns a record until its promise runs: every attempt sends
	// copies.
	attempt := make([]*kgo.Record, len(records))
	for i, r := range records {
		c := *r
		attempt[i] = &c
	}
	done := make(chan kgo.ProduceResults, 1)
	go func() { done <- b.kafka.ProduceSync(pctx, attempt...) }()
	var results kgo.ProduceResults
	select {
	case results = <-done:
	case <-pctx.Done():
		return records, nil, fmt.Errorf("producing %d records: %w", len(records), pctx.Err())
	}
	for i, res := range results {
		switch {
		case res.Err == nil:
		case permanentProduceError(res.Err):
			permanent = append(permanent, refused{seqOf(records[i]), res.Err})
		default:
			failed = append(failed, records[i])
			if err == nil {
				err = res.Err
			}
		}
	}
	return failed, permanent, err
}

// permanentProduceError reports errors no retry can cure: the record
// itself is wrong for Kafka.
func permanentProduceError(err error) bool {
	return errors.Is(err, kerr.MessageTooLarge) || errors.Is(err, kerr.RecordListTooLarge) ||
		errors.Is(err, kerr.InvalidRecord) || errors.Is(err, kerr.CorruptMessage)
}

// setAside quarantines a message the bridge cannot forward.
func (b *Bridge) setAside(ctx context.Context, m jetstream.Msg, err error) error {
	raw := &nats.Msg{Subject: m.Subject(), Data: m.Data(), Header: m.Headers()}
	seq, _ := msgSeq(m)
	q := QuarantinedMessage{ID: QuarantineID(health.StageBridge, streamOf(m), seq), Stage: health.StageBridge,
		Stream: streamOf(m), Subject: raw.Subject, Sequence: seq, Error: diagnostic(err.Error()), Attempts: 1,
		FirstSeenAt: time.Now().UTC(), LastSeenAt: time.Now().UTC(), Headers: raw.Header, Data: raw.Data}
	for attempt := 0; ; attempt++ {
		perr := b.quarantine.Put(context.WithoutCancel(ctx), q)
		if perr == nil {
			b.stage.Quarantined(1)
			b.log.Error("bridge: message quarantined; moving past it", "quarantineId", q.ID, "stream", q.Stream,
				"sequence", seq, "subject", q.Subject, "err", err)
			return nil
		}
		b.stage.Failed(perr, "NATS JetStream")
		if !retry.Sleep(ctx, retry.Delay(attempt, 3*time.Second)) {
			return context.Cause(ctx)
		}
	}
}

// Reprocess produces a quarantined message's record again (after the
// cause is fixed), as the bridge would have.
func (b *Bridge) Reprocess(ctx context.Context, q QuarantinedMessage) error {
	var e domain.Event
	if err := json.Unmarshal(q.Data, &e); err != nil {
		return fmt.Errorf("not an event envelope: %w", err)
	}
	rec := b.recordOf(q.Stream, q.Sequence, routeOf(&e), q.Data)
	if err := b.kafka.ProduceSync(ctx, rec).FirstErr(); err != nil {
		if permanentProduceError(err) {
			return err
		}
		return fmt.Errorf("%w: producing to Kafka: %v", ErrUnavailable, err)
	}
	return nil
}

// Record headers: the event's id and type, and where it came from, which
// a new holder reads back to know what Kafka has.
const (
	headerEventID   = "event-id"
	headerEventType = "event-type"
	headerStream    = "jetstream-stream"
	headerSeq       = "jetstream-seq"
)

func (b *Bridge) newRecord(stream string, seq uint64, m jetstream.Msg) (*kgo.Record, error) {
	h := m.Headers()
	r := route{id: h.Get(wmnats.WatermillUUIDHdr), typ: h.Get(headerName), aggregate: h.Get(headerAggregate),
		key: h.Get(headerKey)}
	if r.id == "" || r.typ == "" || r.aggregate == "" || r.key == "" {
		// Written before events carried their routing headers.
		var e domain.Event
		if err := json.Unmarshal(m.Data(), &e); err != nil {
			return nil, err
		}
		if e.ID == "" || e.Type == "" {
			return nil, errors.New("no id or type")
		}
		r = routeOf(&e)
	}
	// The bytes go to Kafka as they were written: the projections decode
	// them, the bridge need not.
	return b.recordOf(stream, seq, r, m.Data()), nil
}

// route is what the bridge needs of an event to write its record.
type route struct{ id, typ, aggregate, key string }

func routeOf(e *domain.Event) route {
	return route{id: e.ID, typ: e.Type, aggregate: e.AggregateType, key: e.PartitionKey()}
}

func (b *Bridge) recordOf(stream string, seq uint64, r route, data []byte) *kgo.Record {
	return &kgo.Record{
		Topic: b.topics.ForAggregate(r.aggregate),
		Key:   []byte(r.key),
		Value: data,
		Headers: []kgo.RecordHeader{
			{Key: headerEventID, Value: []byte(r.id)},
			{Key: headerEventType, Value: []byte(r.typ)},
			{Key: headerStream, Value: []byte(stream)},
			{Key: headerSeq, Value: []byte(strconv.FormatUint(seq, 10))},
		},
	}
}

func msgSeq(m jetstream.Msg) (uint64, error) {
	meta, err := m.Metadata()
	if err != nil {
		return 0, fmt.Errorf("reading a message's metadata: %w", err)
	}
	return meta.Sequence.Stream, nil
}

func streamOf(m jetstream.Msg) string {
	if meta, err := m.Metadata(); err == nil {
		return meta.Stream
	}
	return ""
}

// seqOf reads the stream sequence a record carries.
func seqOf(r *kgo.Record) uint64 {
	for _, h := range r.Headers {
		if h.Key == headerSeq {
			n, _ := strconv.ParseUint(string(h.Value), 10, 64)
			return n
		}
	}
	return 0
}

// reportLag reports how far the position is behind the stream.
func (b *Bridge) reportLag(ctx context.Context, stream string, pos *atomic.Uint64) {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		if s, err := b.js.Stream(ctx, stream); err == nil {
			if info, err := s.Info(ctx); err == nil {
				lag := info.State.LastSeq - min(pos.Load(), info.State.LastSeq)
				b.metrics.BridgeLag(stream, lag)
				b.stage.Backlog(int64(lag))
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// BridgeBacklog reads, from any process, how many messages of the event
// and tracked streams Kafka does not have yet, and when the bridge last
// moved a stream's position while it was behind (the zero time when it is
// not).
func BridgeBacklog(ctx context.Context, js jetstream.JetStream, n Names) (pending int64, lastProgress time.Time, err error) {
	kv, err := js.KeyValue(ctx, n.BridgePositions())
	if err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) {
		return 0, time.Time{}, fmt.Errorf("bridge positions: %w", err)
	}
	for _, stream := range []string{n.EventStream(), n.TrackedStream()} {
		s, err := js.Stream(ctx, stream)
		if err != nil {
			return 0, time.Time{}, fmt.Errorf("stream %s: %w", stream, err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			return 0, time.Time{}, fmt.Errorf("stream %s: %w", stream, err)
		}
		var pos uint64
		var at time.Time
		if kv != nil {
			if e, err := kv.Get(ctx, positionKey(stream)); err == nil {
				pos, _ = strconv.ParseUint(string(e.Value()), 10, 64)
				at = e.Created()
			} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
				return 0, time.Time{}, fmt.Errorf("bridge position of %s: %w", stream, err)
			}
		}
		if behind := int64(info.State.LastSeq) - int64(pos); behind > 0 {
			pending += behind
			if lastProgress.IsZero() || at.Before(lastProgress) {
				lastProgress = at
			}
		}
	}
	return pending, lastProgress, nil
}
