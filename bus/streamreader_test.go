package bus

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// readerNATS is the embedded server and, when BOOST_TEST_NATS_URL names
// one, the environment's (CI's is Debian's 2.9): the reader's pulls must
// work on both.
func readerNATS(t *testing.T) map[string]jetstream.JetStream {
	t.Helper()
	srv, err := StartEmbeddedNATS(t.TempDir(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	conns := map[string]*nats.Conn{}
	if conns["embedded"], err = srv.Connect("reader-test"); err != nil {
		t.Fatal(err)
	}
	if url := os.Getenv("BOOST_TEST_NATS_URL"); url != "" {
		if conns["environment"], err = ConnectNATS(url, "reader-test"); err != nil {
			t.Fatal(err)
		}
	}
	out := map[string]jetstream.JetStream{}
	for name, nc := range conns {
		t.Cleanup(nc.Close)
		if out[name], err = jetstream.New(nc); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestStreamReaderReadsInOrderWithOneConsumer: the reader hands out every
// message once, in order, from its start on, through one consumer however
// many fetches it takes; after a missed delivery it starts a new consumer
// where the order broke, losing and repeating nothing.
func TestStreamReaderReadsInOrderWithOneConsumer(t *testing.T) {
	for mode, js := range readerNATS(t) {
		t.Run(mode, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			name := "READER_" + uuid.NewString()[:8]
			s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{name + ".>"},
				Storage: jetstream.MemoryStorage})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = js.DeleteStream(context.Background(), name) })
			publish := func(from, to int) {
				for i := from; i <= to; i++ {
					if _, err := js.Publish(ctx, name+".x", []byte(strconv.Itoa(i))); err != nil {
						t.Fatal(err)
					}
				}
			}
			publish(1, 50)

			rd := &streamReader{js: js, stream: name, next: 11}
			defer rd.close()
			var got []string
			consumers := map[string]bool{}
			read := func(upTo int) {
				t.Helper()
				for len(got) < upTo && ctx.Err() == nil {
					msgs, err := rd.fetch(ctx, 7)
					if err != nil {
						t.Fatal(err)
					}
					if rd.cons != nil {
						consumers[rd.cons.CachedInfo().Name] = true
					}
					for _, m := range msgs {
						got = append(got, string(m.Data()))
					}
				}
			}
			// inOrder checks that every message read so far is the next
			// of the stream from 11 on: none lost, none repeated.
			inOrder := func() {
				t.Helper()
				for i, v := range got {
					if want := strconv.Itoa(11 + i); v != want {
						t.Fatalf("message %d is %s, want %s (read: %v)", i, v, want, got)
					}
				}
			}
			read(40)
			if len(consumers) != 1 {
				t.Fatalf("the reader used %d consumers for %d fetches of one stream; want 1", len(consumers), len(got)/7)
			}
			if info, err := s.Info(ctx); err != nil || info.State.Consumers != 1 {
				t.Fatalf("consumers on the stream: %v, %v; want 1", info.State.Consumers, err)
			}

			// A delivery missed on the way: the next fetch sees the
			// consumer's sequences skip.
			publish(51, 80)
			rd.delivered += 3
			read(70)
			if len(consumers) != 2 {
				t.Fatalf("after a gap the reader used %d consumers in all; want a second one", len(consumers))
			}
			inOrder()

			// The consumer gone under the reader (expired while Kafka was
			// down, lost with a NATS restart): a fetch fails, and the next
			// one starts a consumer where the reader was.
			publish(81, 85)
			if err := js.DeleteConsumer(ctx, name, rd.cons.CachedInfo().Name); err != nil {
				t.Fatal(err)
			}
			if msgs, err := rd.fetch(ctx, 7); err == nil {
				t.Fatalf("a fetch from a deleted consumer gave %d messages and no error", len(msgs))
			}
			read(75)

			// The last delivery lost on a quiet stream: no later one shows
			// the gap, so an empty fetch asks the consumer and starts over.
			rd.delivered--
			rd.next--
			got = got[:len(got)-1]
			if msgs, err := rd.fetch(ctx, 7); err != nil || len(msgs) != 0 {
				t.Fatalf("the fetch that finds the lost delivery: %d messages, %v", len(msgs), err)
			}
			read(75)
			if len(got) != 75 {
				t.Fatalf("read %d messages after the lost delivery, want 75", len(got))
			}
			inOrder()

			// With nothing to read, a fetch waits about a second and
			// returns nothing; the reader's close removes its consumer.
			began := time.Now()
			if msgs, err := rd.fetch(ctx, 7); err != nil || len(msgs) != 0 {
				t.Fatalf("fetch at the end: %d messages, %v", len(msgs), err)
			}
			if took := time.Since(began); took > 5*time.Second {
				t.Fatalf("an empty fetch took %s", took)
			}
			rd.close()
			if info, err := s.Info(ctx); err != nil || info.State.Consumers != 0 {
				t.Fatalf("consumers after close: %v, %v; want 0", info.State.Consumers, err)
			}
		})
	}
}
