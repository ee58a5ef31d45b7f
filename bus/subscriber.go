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
// durable pull consumer per topic (subject), shared by every process that
// subscribes (each pulls what its workers can take), a message acked only
// after the handler succeeded.
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
	undecodable func(m jetstream.Msg, err error) error

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
func WithUndecodable(fn func(m jetstream.Msg, err error) error) SubscriberOption {
	return func(s *Subscriber) { s.undecodable = fn }
}

// NewSubscriber returns a Subscriber on stream whose durable consumers are
// named for queue (every process of one stage shares them).
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
// consumer, pulls from it and handles up to parallel of its
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
	dctx, cancel := context.WithCancel(ctx)
	d := &delivery{
		ctx: dctx, cancel: cancel, output: make(chan *message.Message), free: make(chan struct{}, s.parallel),
		unmarshaler: s.unmarshaler, undecodable: s.undecodable, consumer: c, done: make(chan struct{}),
		log: s.log.With(watermill.LogFields{"topic": topic, "consumer": durable}),
	}
	for range s.parallel {
		d.free <- struct{}{}
	}
	go d.fetch()
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

// delivery is one topic's pull consumption and the channel it feeds. It
// pulls as many messages as it has idle workers (free holds a token per
// idle one) and runs each on a worker of its own, so one slow handler
// never holds up the others; the workers are the only senders on output.
//
// It pulls with Fetch rather than jetstream's Consume: Consume can stop
// for twice its heartbeat (30 s by default) when a pull's whole batch is
// handled while that pull is still being sent (each checkPending then
// skips, and nothing prompts another pull until the heartbeat check) —
// see docs/benchmarks.md, "Pull consumers, and Consume". Here a pull is
// asked for as soon as a worker is idle and no pull is outstanding.
type delivery struct {
	ctx         context.Context
	cancel      context.CancelFunc
	output      chan *message.Message
	free        chan struct{}
	unmarshaler wmnats.Unmarshaler
	undecodable func(m jetstream.Msg, err error) error
	log         watermill.LoggerAdapter
	consumer    jetstream.Consumer
	workers     sync.WaitGroup
	done        chan struct{} // closed when fetch returns
}

// Pulls wait at most this long for messages; an idle consumer asks again.
const fetchWait = 5 * time.Second

// stop ends the delivery: no more pulls, and what a pull brings from then
// on is handed back to JetStream at once, so no message waits out AckWait
// because its subscriber stopped. The output is closed once the workers,
// its only senders, are done with the messages they hold.
func (d *delivery) stop() {
	d.cancel()
	<-d.done
	d.workers.Wait()
	close(d.output)
}

// fetch pulls for the idle workers until the delivery stops.
func (d *delivery) fetch() {
	defer close(d.done)
	for attempt := 0; ; {
		n := d.idle()
		if n == 0 {
			return
		}
		// The pull ends with the delivery: a stop does not wait it out.
		pullCtx, cancel := context.WithTimeout(d.ctx, fetchWait)
		batch, err := d.consumer.Fetch(n, jetstream.FetchContext(pullCtx))
		if err != nil {
			cancel()
			d.release(n)
			if d.ctx.Err() != nil {
				return
			}
			d.log.Debug("Pulling: "+err.Error(), nil)
			attempt++
			if !retry.Sleep(d.ctx, retry.Delay(attempt, 2*time.Second)) {
				return
			}
			continue
		}
		attempt = 0
		got := 0
		for m := range batch.Messages() {
			got++
			if d.ctx.Err() != nil {
				_ = m.Nak() // another process takes it now
				d.release(1)
				continue
			}
			d.workers.Add(1)
			go func() {
				defer d.workers.Done()
				defer d.release(1)
				d.handle(m)
			}()
		}
		cancel()
		d.release(n - got)
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) && d.ctx.Err() == nil {
			d.log.Debug("Pulling: "+err.Error(), nil)
		}
	}
}

// idle waits for at least one idle worker and takes every idle one; 0
// once the delivery stops.
func (d *delivery) idle() int {
	select {
	case <-d.free:
	case <-d.ctx.Done():
		return 0
	}
	n := 1
	for {
		select {
		case <-d.free:
			n++
		default:
			return n
		}
	}
}

func (d *delivery) release(n int) {
	for range n {
		d.free <- struct{}{}
	}
}

// handle hands one message to the router and turns its ack or nack into
// JetStream's. A message the router never took is nacked for immediate
// redelivery. One it took is waited for even after shutdown began (its
// context is cancelled, so the handler returns soon, and the router acks or
// nacks everything it took); only a handler that outlives AckWait is left to
// JetStream's own redelivery, which the idempotent handlers absorb.
func (d *delivery) handle(m jetstream.Msg) {
	msg, err := d.unmarshaler.Unmarshal(&nats.Msg{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()})
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
func redeliveryDelay(m jetstream.Msg) time.Duration {
	n := uint64(1)
	if meta, err := m.Metadata(); err == nil && meta.NumDelivered > 0 {
		n = meta.NumDelivered
	}
	return retry.Delay(int(n-1), 5*time.Second)
}
