package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrUnavailable marks failures of the transport itself (NATS down, no ack
// in time): the API turns it into a 503 with Retry-After.
var ErrUnavailable = errors.New("message bus unavailable")

// Publisher is a Watermill publisher that stores messages in JetStream
// asynchronously and returns once JetStream has acknowledged all of them.
// Concurrent callers share the connection's pipeline of in-flight publishes,
// so acks are batched on the wire instead of costing a round trip each.
type Publisher struct {
	js         jetstream.JetStream
	marshaler  wmnats.Marshaler
	ackTimeout time.Duration
}

// NewPublisher returns a Publisher over nc.
func NewPublisher(nc *nats.Conn, ackTimeout time.Duration) (*Publisher, error) {
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		return nil, fmt.Errorf("creating jetstream context: %w", err)
	}
	if ackTimeout <= 0 {
		ackTimeout = 5 * time.Second
	}
	return &Publisher{js: js, marshaler: &wmnats.NATSMarshaler{}, ackTimeout: ackTimeout}, nil
}

// Publish implements message.Publisher. The Watermill message UUID doubles
// as the JetStream message id, so a retried publish is stored once.
func (p *Publisher) Publish(topic string, msgs ...*message.Message) error {
	if !p.js.Conn().IsConnected() {
		// While reconnecting, nats.go would buffer the publish and the ack
		// would only time out: answer now, the caller retries.
		return fmt.Errorf("%w: not connected to NATS", ErrUnavailable)
	}
	futures := make([]jetstream.PubAckFuture, 0, len(msgs))
	for _, m := range msgs {
		nm, err := p.marshaler.Marshal(topic, m)
		if err != nil {
			return fmt.Errorf("marshalling message %s: %w", m.UUID, err)
		}
		f, err := p.js.PublishMsgAsync(nm, jetstream.WithMsgID(m.UUID))
		if err != nil {
			return fmt.Errorf("%w: publishing to %s: %v", ErrUnavailable, topic, err)
		}
		futures = append(futures, f)
	}
	ctx := context.Background()
	if len(msgs) > 0 {
		ctx = msgs[0].Context()
	}
	ctx, cancel := context.WithTimeout(ctx, p.ackTimeout)
	defer cancel()
	return waitAcks(ctx, futures, topic)
}

// Close implements message.Publisher; the connection belongs to the caller.
func (p *Publisher) Close() error { return nil }

// Consumer settings of every durable consumer: how long a handler may hold
// a message before JetStream redelivers it, and how many may be in flight.
// A handler takes milliseconds (a few seconds with its retries, and it
// hands a message back at once while a dependency is down), so the wait is
// sized to that: a killed worker's messages reach another within it.
const (
	consumerMaxAckPending = 4096
	consumerAckWait       = 10 * time.Second
)

// DurableName is the durable consumer the processes of queue share for a
// topic.
func DurableName(queue, topic string) string { return queue + "_" + sanitizeName(topic) }

// ensureConsumer creates (or updates) the durable pull consumer that a
// Subscriber's processes share for topic. It is never deleted when a
// subscription ends: deleting it would make the next start re-read the
// stream from the beginning.
//
// Earlier builds used a push consumer with a deliver group under the same
// name; JetStream cannot turn one into a pull consumer, so it is replaced
// by one that starts after its acknowledged floor. What it had delivered
// but not yet seen acknowledged is delivered again, which the idempotent
// handlers absorb.
func ensureConsumer(ctx context.Context, js jetstream.JetStream, stream, queue, topic string) (jetstream.Consumer, error) {
	durable := DurableName(queue, topic)
	cfg := jetstream.ConsumerConfig{
		Durable:       durable,
		FilterSubject: topic,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       consumerAckWait,
		MaxAckPending: consumerMaxAckPending,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
	if old, err := js.Consumer(ctx, stream, durable); err == nil {
		if info := old.CachedInfo(); info.Config.DeliverSubject != "" {
			cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, info.AckFloor.Stream+1
			if err := js.DeleteConsumer(ctx, stream, durable); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
				return nil, fmt.Errorf("replacing push consumer %s on %s: %w", durable, stream, err)
			}
		} else {
			// Keep where it starts: JetStream refuses to change it.
			cfg.DeliverPolicy, cfg.OptStartSeq = info.Config.DeliverPolicy, info.Config.OptStartSeq
		}
	}
	c, err := js.CreateOrUpdateConsumer(ctx, stream, cfg)
	if err != nil {
		return nil, fmt.Errorf("creating consumer %s on %s: %w", durable, stream, err)
	}
	return c, nil
}

func sanitizeName(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c == '.' || c == '*' || c == '>' || c == ' ' {
			b[i] = '_'
		}
	}
	return string(b)
}
