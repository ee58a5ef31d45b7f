package bus_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gamify/boost/bus"
)

// TestUpstreamConsumeStall is the minimal case of the nats.go (v1.55.0)
// jetstream Consume stall that made bus.Subscriber pull with Fetch: only
// nats-server and nats.go, no Boost code but the embedded server's
// constructor. It is skipped unless BOOST_UPSTREAM_REPRO=1, since it fails
// as long as the upstream bug is there (under -race within a few runs).
//
// What happens: Consume's callback goroutine calls checkPending after each
// message; a pull is only requested when fetchInProgress is 0. The
// goroutine that sends pulls sets fetchInProgress to 1 around
// PublishRequest. When the server answers that pull's whole batch before
// the sending goroutine has stored 0 again, every checkPending of that
// batch sees 1 and skips; pending then reads 0 messages, nothing is
// outstanding on the server (NumWaiting 0), and no message ever arrives to
// run checkPending again. Consumption stops until the missed-heartbeat
// timer fires (twice the heartbeat: 30 s with the defaults) although the
// stream holds messages for the consumer (NumPending > 0).
func TestUpstreamConsumeStall(t *testing.T) {
	if os.Getenv("BOOST_UPSTREAM_REPRO") != "1" {
		t.Skip("the upstream nats.go Consume stall; set BOOST_UPSTREAM_REPRO=1 to run it")
	}
	ns, err := bus.StartEmbeddedNATS(filepath.Join(t.TempDir(), "nats"), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	nc, err := nats.Connect(ns.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}}); err != nil {
		t.Fatal(err)
	}
	for round := range 20 {
		c, err := js.CreateOrUpdateConsumer(ctx, "S", jetstream.ConsumerConfig{Durable: fmt.Sprintf("c%d", round),
			AckPolicy: jetstream.AckExplicitPolicy, FilterSubject: fmt.Sprintf("s.%d", round)})
		if err != nil {
			t.Fatal(err)
		}
		var handled atomic.Int64
		cc, err := c.Consume(func(m jetstream.Msg) {
			time.Sleep(time.Duration(handled.Add(1)%3) * 100 * time.Microsecond)
			_ = m.Ack()
		}, jetstream.PullMaxMessages(4))
		if err != nil {
			t.Fatal(err)
		}
		const total = 2000
		for i := range total {
			if _, err := js.PublishAsync(fmt.Sprintf("s.%d", round), []byte("x")); err != nil {
				t.Fatal(err)
			}
			if i%100 == 0 {
				<-js.PublishAsyncComplete()
			}
		}
		<-js.PublishAsyncComplete()
		last, since := handled.Load(), time.Now()
		for handled.Load() < total {
			time.Sleep(50 * time.Millisecond)
			if n := handled.Load(); n != last {
				last, since = n, time.Now()
				continue
			}
			if time.Since(since) > 5*time.Second {
				info, _ := c.Info(ctx)
				cc.Stop()
				t.Fatalf("round %d: Consume stalled for 5 s with %d of %d handled; the consumer has %d pending, %d unacked, %d pull requests waiting",
					round, last, total, info.NumPending, info.NumAckPending, info.NumWaiting)
			}
		}
		cc.Stop()
	}
}
