package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// EmbeddedNATS is an in-process nats-server with JetStream on a file store.
type EmbeddedNATS struct {
	srv *server.Server
}

// StartEmbeddedNATS starts nats-server with JetStream storing under dir and
// listening on addr (host:port; port 0 picks a free one).
func StartEmbeddedNATS(dir, addr string) (*EmbeddedNATS, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("parsing embedded NATS address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("parsing embedded NATS port %q: %w", portStr, err)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	opts := &server.Options{
		ServerName: "boost-embedded",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   dir,
		NoSigs:     true,
		NoLog:      true,
		// Headroom for a dev machine; JetStream refuses writes past these.
		JetStreamMaxMemory: 256 << 20,
		JetStreamMaxStore:  64 << 30,
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("creating embedded NATS: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(15 * time.Second) {
		srv.Shutdown()
		return nil, errors.New("embedded NATS did not become ready within 15s")
	}
	return &EmbeddedNATS{srv: srv}, nil
}

// URL is the loopback address clients (and the nats CLI) connect to.
func (e *EmbeddedNATS) URL() string { return e.srv.ClientURL() }

// Connect opens a client connection that stays in-process.
func (e *EmbeddedNATS) Connect(name string) (*nats.Conn, error) {
	return nats.Connect(e.srv.ClientURL(), append(clientOptions(name), nats.InProcessServer(e.srv))...)
}

// Shutdown stops the server after clients have drained.
func (e *EmbeddedNATS) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}

// ConnectNATS connects to a NATS server and keeps reconnecting forever, so a
// NATS restart shows up as 503s and readiness failures, not as a dead
// process.
func ConnectNATS(url, name string) (*nats.Conn, error) {
	nc, err := nats.Connect(url, clientOptions(name)...)
	if err != nil {
		return nil, fmt.Errorf("connecting to NATS at %s: %w", url, err)
	}
	return nc, nil
}

func clientOptions(name string) []nats.Option {
	return []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.RetryOnFailedConnect(false),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				slog.Warn("nats disconnected", "client", name, "err", err)
			}
		}),
		nats.ReconnectHandler(func(_ *nats.Conn) { slog.Info("nats reconnected", "client", name) }),
	}
}

// StreamOptions tunes the streams EnsureStreams creates.
type StreamOptions struct {
	Replicas int
	// TrackedMaxAge bounds how long tracked events stay in JetStream; the
	// bridge must copy them to Kafka within it.
	TrackedMaxAge time.Duration
}

// EnsureStreams creates or updates the command, event, tracked and
// dead-letter streams.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, n Names, o StreamOptions) error {
	replicas := o.Replicas
	if o.TrackedMaxAge <= 0 {
		o.TrackedMaxAge = 72 * time.Hour
	}
	if replicas < 1 {
		replicas = 1
	}
	streams := []jetstream.StreamConfig{
		{
			Name:        n.TrackedStream(),
			Description: "Tracked events and their outcomes, until bridged to Kafka",
			Subjects:    []string{n.Prefix + ".tracked.>", n.Prefix + ".outcomes.>", n.Prefix + ".usage.>"},
			Storage:     jetstream.FileStorage,
			Retention:   jetstream.LimitsPolicy,
			MaxAge:      o.TrackedMaxAge,
			Duplicates:  time.Minute,
			Replicas:    replicas,
		},
		{
			Name:        n.QuarantineStream(),
			Description: "Messages the command handlers, the processor or the bridge could not handle and moved past",
			Subjects:    []string{n.Prefix + ".quarantine.>"},
			Storage:     jetstream.FileStorage,
			Retention:   jetstream.LimitsPolicy,
			MaxAge:      30 * 24 * time.Hour,
			Duplicates:  2 * time.Minute,
			Replicas:    replicas,
		},
		{
			Name:        n.EventStream(),
			Description: "Boost domain events, append-only, one subject per aggregate",
			Subjects:    []string{n.Prefix + ".events.>"},
			Storage:     jetstream.FileStorage,
			Retention:   jetstream.LimitsPolicy,
			Duplicates:  2 * time.Minute,
			DenyDelete:  true,
			DenyPurge:   true,
			Replicas:    replicas,
		},
	}
	if err := ensureCommandStream(ctx, js, n, commandStreamConfig(n, replicas)); err != nil {
		return err
	}
	for _, cfg := range streams {
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("creating stream %s: %w", cfg.Name, err)
		}
	}
	return nil
}

// PingJetStream asks the server for account info: it fails when NATS is
// unreachable or JetStream is not enabled, which is what readiness needs.
func PingJetStream(ctx context.Context, js jetstream.JetStream) error {
	if _, err := js.AccountInfo(ctx); err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	return nil
}
