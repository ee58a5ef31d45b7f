package bus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gamify/boost/internal/retry"
)

// Subscriber is a Watermill subscriber over one JetStream stream: one
// durable push consumer per topic (subject), shared by every process through
// its deliver group, a message acked only after the handler succeeded.
//
// It exists instead of watermill-nats' subscriber because that one closes
// its output channel while NATS callbacks may still be sending to it, which
// is a data race (and can panic) whenever a router stops under traffic.
// Here a topic's output is closed only once nothing can send on it any more.
type Subscriber struct {
	nc          *nats.Conn
	js          jetstream.JetStream
	stream      string
	queue       string
	parallel    int
	unmarshaler wmnats.Unmarshaler
	log         watermill.LoggerAdapter
	undecodable func(m *nats.Msg, err error) error

	mu      sync.Mutex
	closed  bool
	closing chan struct{}
	outputs sync.WaitGroup // one per topic whose output is still open
}

// subscriberCloseTimeout bounds Close: callbacks return as soon as their
// context ends, so only a stuck NATS connection can take this long.
const subscriberCloseTimeout = 15 * time.Second

// SubscriberOption tunes a Subscriber.
type SubscriberOption func(*Subscriber)

// WithUndecodable sets what happens to a message that is not a Watermill
// message (it can never be handled): fn quarantines it, and the message is
// terminated once fn returned nil. Without it the message is terminated
// and logged.
func WithUndecodable(fn func(m *nats.Msg, err error) error) SubscriberOption {
	return func(s *Subscriber) { s.undecodable = fn }
}

// NewSubscriber returns a Subscriber on stream for the deliver group queue.
// parallel is how many messages one process handles at once per topic.
// The connection stays the caller's: Close does not drain it.
func NewSubscriber(nc *nats.Conn, stream, queue string, parallel int, logger watermill.LoggerAdapter,
	opts ...SubscriberOption,
) (*Subscriber, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("creating jetstream context: %w", err)
	}
	if parallel < 1 {
		parallel = 1
	}
	if logger == nil {
		logger = watermill.NopLogger{}
	}
	s := &Subscriber{
		nc: nc, js: js, stream: stream, queue: queue, parallel: parallel,
		unmarshaler: &wmnats.NATSMarshaler{}, log: logger, closing: make(chan struct{}),
	}
	for _, o := range opts {
		o(s)
	}
	return s, nil
}

// Subscribe implements message.Subscriber. It ensures topic's durable
// consumer, joins its deliver group and handles up to parallel of its
// messages at once. The returned channel is closed once ctx ends or the
// Subscriber is closed, and no message is sent on it after that.
func (s *Subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, errors.New("subscribing to a closed subscriber")
	}
	s.outputs.Add(1)
	s.mu.Unlock()

	d, err := s.subscribe(ctx, topic)
	if err != nil {
		s.outputs.Done()
		return nil, err
	}
	go func() {
		defer s.outputs.Done()
		select {
		case <-d.ctx.Done():
		case <-s.closing:
		}
		d.stop()
	}()
	return d.output, nil
}

func (s *Subscriber) subscribe(ctx context.Context, topic string) (*delivery, error) {
	c, err := ensureConsumer(ctx, s.js, s.stream, s.queue, topic)
	if err != nil {
		return nil, err
	}
	durable := DurableName(s.queue, topic)
	cfg := c.CachedInfo().Config
	dctx, cancel := context.WithCancel(ctx)
	d := &delivery{
		ctx: dctx, cancel: cancel, output: make(chan *message.Message), work: make(chan *nats.Msg),
		unmarshaler: s.unmarshaler, undecodable: s.undecodable,
		log: s.log.With(watermill.LogFields{"topic": topic, "consumer": durable}),
	}
	d.sub, err = s.nc.QueueSubscribe(cfg.DeliverSubject, cfg.DeliverGroup, d.receive)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("%w: joining %s's deliver group: %v", ErrUnavailable, durable, err)
	}
	d.workers.Add(s.parallel)
	for range s.parallel {
		go d.runWorker()
	}
	return d, nil
}

// Close implements message.Subscriber: it ends every subscription and
// waits until their outputs are closed.
func (s *Subscriber) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.closing)
	s.mu.Unlock()

	done := make(chan struct{})
	go func() { s.outputs.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-time.After(subscriberCloseTimeout):
		return errors.New("closing subscriber: deliveries did not stop in time")
	}
}

// delivery is one topic's subscription and the channel it feeds. The
// subscription's callback hands each message to the first idle worker, so
// one slow handler never holds up messages queued behind it; the workers are
// the only senders on output.
type delivery struct {
	ctx         context.Context
	cancel      context.CancelFunc
	output      chan *message.Message
	work        chan *nats.Msg
	unmarshaler wmnats.Unmarshaler
	undecodable func(m *nats.Msg, err error) error
	log         watermill.LoggerAdapter
	sub         *nats.Subscription
	workers     sync.WaitGroup
}

// stop ends the delivery: callbacks from then on (draining runs the
// messages already received through them) hand their message back to
// JetStream at once, so no message waits out AckWait because its subscriber
// stopped. The output is closed once the workers, its only senders, are
// done with the messages they hold.
func (d *delivery) stop() {
	d.cancel()
	if err := d.sub.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) && !errors.Is(err, nats.ErrBadSubscription) {
		d.log.Error("Cannot drain subscription", err, nil)
	}
	d.workers.Wait()
	close(d.output)
}

// receive is the subscription's callback.
func (d *delivery) receive(m *nats.Msg) {
	if m.Header.Get("Status") != "" {
		// Flow control or a heartbeat, not a stored message.
		if m.Reply != "" {
			_ = m.Respond(nil)
		}
		return
	}
	select {
	case d.work <- m:
	case <-d.ctx.Done():
		_ = m.Nak() // another process of the group takes it now
	}
}

func (d *delivery) runWorker() {
	defer d.workers.Done()
	for {
		select {
		case m := <-d.work:
			d.handle(m)
		case <-d.ctx.Done():
			return
		}
	}
}

// handle hands one message to the router and turns its ack or nack into
// JetStream's. A message the router never took is nacked for immediate
// redelivery. One it took is waited for even after shutdown began (its
// context is cancelled, so the handler returns soon, and the router acks or
// nacks everything it took); only a handler that outlives AckWait is left to
// JetStream's own redelivery, which the idempotent handlers absorb.
func (d *delivery) handle(m *nats.Msg) {
	msg, err := d.unmarshaler.Unmarshal(m)
	if err != nil {
		// It will never decode: set it aside and stop redelivering it.
		if d.undecodable != nil {
			if qerr := d.undecodable(m, err); qerr != nil {
				d.log.Error("Cannot quarantine an undecodable message; it will be redelivered", qerr, nil)
				_ = m.NakWithDelay(redeliveryDelay(m))
				return
			}
		} else {
			d.log.Error("Cannot unmarshal message, terminating it", err, nil)
		}
		_ = m.Term()
		return
	}
	ctx, cancel := context.WithCancel(d.ctx)
	defer cancel()
	msg.SetContext(withNATSMsg(ctx, m))

	select {
	case d.output <- msg:
	case <-ctx.Done():
		_ = m.Nak()
		return
	}

	timeout := time.NewTimer(consumerAckWait)
	defer timeout.Stop()
	select {
	case <-msg.Acked():
		// Asynchronous: a lost ack only means a redelivery.
		if err := m.Ack(); err != nil {
			d.log.Error("Cannot send ack", err, watermill.LogFields{"message_uuid": msg.UUID})
		}
	case <-msg.Nacked():
		// A handler hands a message back when a dependency is down: wait
		// a little longer each time instead of spinning on it.
		if err := m.NakWithDelay(redeliveryDelay(m)); err != nil {
			d.log.Error("Cannot send nak", err, watermill.LogFields{"message_uuid": msg.UUID})
		}
	case <-timeout.C:
	}
}

// redeliveryDelay grows with how often m was delivered: 100 ms, doubling,
// at most 5 s.
func redeliveryDelay(m *nats.Msg) time.Duration {
	n := uint64(1)
	if meta, err := m.Metadata(); err == nil && meta.NumDelivered > 0 {
		n = meta.NumDelivered
	}
	return retry.Delay(int(n-1), 5*time.Second)
}
