package bus_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gamify/boost/bus"
	"github.com/gamify/boost/internal/testenv"
)

func (e *busEnv) subscriber(t *testing.T, parallel int) *bus.Subscriber {
	t.Helper()
	sub, err := bus.NewSubscriber(e.env.ConnectNATS(), e.names.TrackedStream(), e.names.ProcessorQueue(), parallel, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	return sub
}

func (e *busEnv) publish(t *testing.T, uuid string) {
	t.Helper()
	if err := e.pub.Publish(e.names.TrackedSubject("p1"), message.NewMessage(uuid, []byte(uuid))); err != nil {
		t.Fatal(err)
	}
}

// waitConsumer polls the consumer's state until done accepts it.
func (e *busEnv) waitConsumer(t *testing.T, done func(*jetstream.ConsumerInfo) bool, failf func(*jetstream.ConsumerInfo) string) {
	t.Helper()
	durable := bus.DurableName(e.names.ProcessorQueue(), e.topic)
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := e.js.Consumer(e.ctx, e.names.TrackedStream(), durable)
		if err != nil {
			t.Fatal(err)
		}
		info, err := c.Info(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if done(info) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(failf(info))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// settled waits until the consumer has nothing pending or unacked.
func (e *busEnv) settled(t *testing.T) {
	t.Helper()
	e.waitConsumer(t, func(info *jetstream.ConsumerInfo) bool {
		return info.NumPending == 0 && info.NumAckPending == 0
	}, func(info *jetstream.ConsumerInfo) string {
		return fmt.Sprintf("consumer never settled: %d pending, %d unacked", info.NumPending, info.NumAckPending)
	})
}

func receive(t *testing.T, out <-chan *message.Message) *message.Message {
	t.Helper()
	select {
	case m, ok := <-out:
		if !ok {
			t.Fatal("output closed while a message was expected")
		}
		return m
	case <-time.After(20 * time.Second):
		t.Fatal("no message delivered")
		return nil
	}
}

// TestSubscriberAcksNacksAndRunsInParallel: every message is delivered to
// the handler, a nacked one comes back, parallel messages are in flight at
// once, and acks leave the durable consumer with nothing pending.
func TestSubscriberAcksNacksAndRunsInParallel(t *testing.T) {
	for _, mode := range testenv.Modes() {
		t.Run(string(mode), func(t *testing.T) {
			e := newBusEnv(t, mode)
			const parallel = 4
			out, err := e.subscriber(t, parallel).Subscribe(e.ctx, e.topic)
			if err != nil {
				t.Fatal(err)
			}
			for i := range 10 {
				e.publish(t, fmt.Sprintf("m%d", i))
			}
			// parallel messages arrive before any of them is acked.
			var held []*message.Message
			for range parallel {
				held = append(held, receive(t, out))
			}
			nacked := held[0].UUID
			held[0].Nack()
			seen := map[string]int{}
			for _, m := range held[1:] {
				seen[m.UUID]++
				m.Ack()
			}
			for len(seen) < 10 {
				m := receive(t, out)
				seen[m.UUID]++
				m.Ack()
			}
			if seen[nacked] != 1 {
				t.Errorf("nacked message %s handled %d times after its nack, want 1", nacked, seen[nacked])
			}
			e.settled(t)
		})
	}
}

// TestSubscriberStopsUnderTraffic starts and stops subscriptions while
// messages keep arriving. Each output must be closed only after no callback
// can send on it (the race detector checks), and every message must still
// be acked by some subscription: a stop hands messages back, never loses
// them.
func TestSubscriberStopsUnderTraffic(t *testing.T) {
	for _, mode := range testenv.Modes() {
		t.Run(string(mode), func(t *testing.T) {
			e := newBusEnv(t, mode)
			sub := e.subscriber(t, 4)

			const total = 600
			published := make(chan struct{})
			go func() {
				defer close(published)
				for i := range total {
					uuid := fmt.Sprintf("m%03d", i)
					if err := e.pub.Publish(e.names.TrackedSubject("p1"), message.NewMessage(uuid, []byte(uuid))); err != nil {
						t.Error(err)
						return
					}
					if i%50 == 0 {
						time.Sleep(5 * time.Millisecond)
					}
				}
			}()

			var mu sync.Mutex
			acked := map[string]bool{}
			// handle acks stopAfter messages (all, if negative); it also
			// returns after idle with nothing to take, so a round does not
			// wait out AckWait for messages JetStream holds back.
			handle := func(out <-chan *message.Message, stopAfter int, idle time.Duration) {
				n := 0
				for {
					var m *message.Message
					select {
					case msg, ok := <-out:
						if !ok {
							return
						}
						m = msg
					case <-time.After(idle):
						return
					}
					mu.Lock()
					acked[m.UUID] = true
					mu.Unlock()
					m.Ack()
					if n++; n == stopAfter {
						return
					}
				}
			}
			for round := 0; ; round++ {
				ctx, cancel := context.WithCancel(e.ctx)
				out, err := sub.Subscribe(ctx, e.topic)
				if err != nil {
					t.Fatal(err)
				}
				handle(out, 1+round%7, 200*time.Millisecond)
				cancel()
				closed := time.After(20 * time.Second)
				for open := true; open; {
					select {
					case m, ok := <-out: // handed back: redelivered
						if open = ok; ok {
							m.Nack()
						}
					case <-closed:
						t.Fatal("output not closed after its context ended")
					}
				}
				select {
				case <-published:
				default:
					continue
				}
				break
			}
			// A last subscription takes whatever the stopped ones handed back.
			// A message pushed while a deliver group changed members can miss
			// every member; JetStream then redelivers it after AckWait. So
			// nothing is lost when every message was handled or is still
			// waiting for its ack in the consumer, and the two add up.
			ctx, cancel := context.WithCancel(e.ctx)
			defer cancel()
			out, err := sub.Subscribe(ctx, e.topic)
			if err != nil {
				t.Fatal(err)
			}
			go handle(out, -1, time.Hour)
			handled := func() int {
				mu.Lock()
				defer mu.Unlock()
				return len(acked)
			}
			e.waitConsumer(t, func(info *jetstream.ConsumerInfo) bool {
				return info.NumPending == 0 && handled()+info.NumAckPending == total
			}, func(info *jetstream.ConsumerInfo) string {
				return fmt.Sprintf("%d handled + %d unacked in the consumer (%d never delivered, %d pull requests waiting), want %d",
					handled(), info.NumAckPending, info.NumPending, info.NumWaiting, total)
			})
		})
	}
}

// TestSubscriberClose closes every output and refuses new subscriptions.
func TestSubscriberClose(t *testing.T) {
	e := newBusEnv(t, testenv.Embedded)
	sub := e.subscriber(t, 2)
	outs := []<-chan *message.Message{}
	for _, topic := range []string{e.topic, e.names.TrackedSubject("p2")} {
		out, err := sub.Subscribe(e.ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, out)
	}
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	for i, out := range outs {
		if _, open := <-out; open {
			t.Errorf("output %d still open after Close", i)
		}
	}
	if _, err := sub.Subscribe(e.ctx, e.topic); err == nil {
		t.Error("Subscribe after Close succeeded")
	}
}
