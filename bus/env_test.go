package bus_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gamify/boost/bus"
	"github.com/gamify/boost/internal/testenv"
)

// busEnv is a test's NATS (embedded or the environment's) with Boost's
// streams and a publisher; topic is the tracked stream's subjects.
type busEnv struct {
	ctx   context.Context
	env   *testenv.Env
	nc    *nats.Conn
	names bus.Names
	js    jetstream.JetStream
	pub   *bus.Publisher
	topic string
}

func newBusEnv(t *testing.T, mode testenv.Mode) *busEnv {
	t.Helper()
	ctx := context.Background()
	env := testenv.Start(t, mode)
	names := bus.Names{Prefix: env.Config.NATSPrefix}
	nc := env.ConnectNATS()
	js, _ := jetstream.New(nc)
	if err := bus.EnsureStreams(ctx, js, names, bus.StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	pub, err := bus.NewPublisher(nc, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return &busEnv{ctx: ctx, env: env, nc: nc, names: names, js: js, pub: pub, topic: names.TrackedSubjects()}
}
