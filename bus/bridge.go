package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/gamify/boost/domain"
)

// BridgeMetrics receives what the bridge did; nil-safe implementations are
// not needed, the bridge always gets one.
type BridgeMetrics interface {
	Bridged(n int)
	BridgeLag(stream string, pending uint64)
}

// Bridge copies domain events from the JetStream event stream to Kafka in
// stream order. A JetStream message is acknowledged only after Kafka has
// acknowledged every record of its batch, so a crash re-sends rather than
// loses; projections de-duplicate by event id.
type Bridge struct {
	js      jetstream.JetStream
	names   Names
	kafka   *kgo.Client
	topics  Topics
	log     *slog.Logger
	metrics BridgeMetrics

	// BatchSize bounds how many events one Kafka produce round carries.
	BatchSize int
}

// NewBridge wires a bridge; Run starts it.
func NewBridge(nc *nats.Conn, n Names, kafka *kgo.Client, topics Topics, log *slog.Logger, m BridgeMetrics) (*Bridge, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("creating jetstream context: %w", err)
	}
	return &Bridge{js: js, names: n, kafka: kafka, topics: topics, log: log, metrics: m, BatchSize: 1000}, nil
}

// Run bridges the event stream and the tracked stream until ctx is
// cancelled. The batch in flight when ctx ends is still produced and
// acknowledged, so shutdown leaves nothing half-sent.
func (b *Bridge) Run(ctx context.Context) error {
	streams := []string{b.names.EventStream(), b.names.TrackedStream()}
	errc := make(chan error, len(streams))
	for _, s := range streams {
		go func() { errc <- b.runStream(ctx, s) }()
	}
	var errs []error
	for range streams {
		errs = append(errs, <-errc)
	}
	return errors.Join(errs...)
}

func (b *Bridge) runStream(ctx context.Context, stream string) error {
	var cons jetstream.Consumer
	err := retry(ctx, b.log, "creating bridge consumer", func() error {
		var err error
		cons, err = b.js.CreateOrUpdateConsumer(ctx, stream, jetstream.ConsumerConfig{
			Durable:       b.names.BridgeConsumer(stream),
			Description:   "JetStream to Kafka bridge",
			AckPolicy:     jetstream.AckAllPolicy,
			AckWait:       2 * time.Minute,
			MaxAckPending: 20_000,
			DeliverPolicy: jetstream.DeliverAllPolicy,
		})
		return err
	})
	if err != nil {
		return err
	}
	b.metrics.BridgeLag(stream, 0)
	go b.reportLag(ctx, stream, cons)

	for ctx.Err() == nil {
		batch, err := cons.FetchNoWait(b.BatchSize)
		if err != nil {
			if !sleepCtx(ctx, 500*time.Millisecond) {
				break
			}
			continue
		}
		var msgs []jetstream.Msg
		for m := range batch.Messages() {
			msgs = append(msgs, m)
		}
		if len(msgs) == 0 {
			// Nothing pending: wait for the next message instead of spinning.
			batch, err := cons.Fetch(1, jetstream.FetchMaxWait(time.Second))
			if err == nil {
				for m := range batch.Messages() {
					msgs = append(msgs, m)
				}
			}
			if len(msgs) == 0 {
				continue
			}
		}
		if err := b.forward(ctx, msgs); err != nil {
			return err
		}
	}
	return nil
}

func (b *Bridge) forward(ctx context.Context, msgs []jetstream.Msg) error {
	records := make([]*kgo.Record, 0, len(msgs))
	for _, m := range msgs {
		rec, err := b.record(m)
		if err != nil {
			// A message that is not an event envelope cannot be projected;
			// it still goes to the log (Kafka is the record of everything)
			// keyed by subject, and projections skip it.
			b.log.Error("bridge: undecodable event; forwarding raw", "subject", m.Subject(), "err", err)
			rec = &kgo.Record{Topic: b.topics.Events, Key: []byte(m.Subject()), Value: m.Data()}
		}
		records = append(records, rec)
	}
	// Finish the batch even when shutting down: the records may already be
	// in Kafka, and acking them now avoids a re-send on restart.
	for attempt := 0; ; attempt++ {
		err := b.produce(ctx, records)
		if err == nil {
			break
		}
		b.log.Warn("bridge: kafka produce failed; retrying", "events", len(records), "attempt", attempt, "err", err)
		for _, m := range msgs {
			_ = m.InProgress()
		}
		if ctx.Err() != nil || !sleepCtx(ctx, backoff(attempt)) {
			// Not acked: JetStream redelivers them to the next bridge.
			return nil
		}
	}
	// AckAll: acknowledging the last message acknowledges the batch.
	ackCtx, ackCancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer ackCancel()
	if err := msgs[len(msgs)-1].DoubleAck(ackCtx); err != nil {
		b.log.Warn("bridge: ack failed; batch will be re-sent", "err", err)
	}
	b.metrics.Bridged(len(msgs))
	return nil
}

func (b *Bridge) produce(ctx context.Context, records []*kgo.Record) error {
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	// On shutdown the batch in hand gets a few seconds to land, not the
	// full timeout: unacked, it is re-sent by the next bridge anyway.
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(5*time.Second, cancel) })
	defer stop()
	// An idempotent producer cannot fail records once their request is on
	// the wire, whatever the context says, so ProduceSync alone can outlive
	// both deadlines against a broker that came back without its producer
	// state. The wait is bounded here; the records are failed for good when
	// the node closes the client. franz-go owns a record until its promise
	// runs, so every attempt produces copies.
	attempt := make([]*kgo.Record, len(records))
	for i, r := range records {
		c := *r
		attempt[i] = &c
	}
	done := make(chan error, 1)
	go func() { done <- b.kafka.ProduceSync(pctx, attempt...).FirstErr() }()
	select {
	case err := <-done:
		return err
	case <-pctx.Done():
		return fmt.Errorf("producing %d records: %w", len(records), pctx.Err())
	}
}

func (b *Bridge) record(m jetstream.Msg) (*kgo.Record, error) {
	var e domain.Event
	if err := json.Unmarshal(m.Data(), &e); err != nil {
		return nil, err
	}
	meta, err := m.Metadata()
	if err != nil {
		return nil, err
	}
	return &kgo.Record{
		Topic: b.topics.For(&e),
		Key:   []byte(e.PartitionKey()),
		Value: m.Data(),
		Headers: []kgo.RecordHeader{
			{Key: "event-id", Value: []byte(e.ID)},
			{Key: "event-type", Value: []byte(e.Type)},
			{Key: "jetstream-seq", Value: []byte(strconv.FormatUint(meta.Sequence.Stream, 10))},
		},
	}, nil
}

func (b *Bridge) reportLag(ctx context.Context, stream string, cons jetstream.Consumer) {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			info, err := cons.Info(ctx)
			if err == nil {
				b.metrics.BridgeLag(stream, info.NumPending+uint64(info.NumAckPending))
			}
		}
	}
}

func retry(ctx context.Context, log *slog.Logger, what string, fn func() error) error {
	for attempt := 0; ; attempt++ {
		err := fn()
		if err == nil {
			return nil
		}
		if attempt%10 == 0 {
			log.Warn(what+" failed; retrying", "attempt", attempt, "err", err)
		}
		if !sleepCtx(ctx, backoff(attempt)) {
			return errors.Join(ctx.Err(), err)
		}
	}
}

func backoff(attempt int) time.Duration {
	d := 100 * time.Millisecond << min(attempt, 5)
	return min(d, 3*time.Second)
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
