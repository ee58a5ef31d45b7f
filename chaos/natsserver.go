package chaos

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// NATSServerConfig is what `boost nats-server` runs: one nats-server with
// JetStream on a file store, optionally a node of a cluster.
type NATSServerConfig struct {
	Port       int
	StoreDir   string
	ServerName string
	// ClusterName, ClusterPort and Routes make the server a cluster node;
	// Routes are nats-route://host:port URLs of the other nodes (listing
	// this node too is harmless).
	ClusterName string
	ClusterPort int
	Routes      []string
	// HTTPPort, when set, serves the monitoring endpoints on 127.0.0.1;
	// the suite asks its /healthz whether a restarted node has caught up.
	HTTPPort int
}

// ServeNATS runs a nats-server until ctx ends. It exists so the suite can
// SIGKILL a real NATS server and start it again on the same store and port.
func ServeNATS(ctx context.Context, c NATSServerConfig) error {
	if c.Port <= 0 || c.StoreDir == "" {
		return errors.New("nats-server: --port and --store-dir are required")
	}
	name := c.ServerName
	if name == "" {
		name = fmt.Sprintf("boost-chaos-%d", c.Port)
	}
	opts := &server.Options{
		ServerName:         name,
		Host:               "127.0.0.1",
		Port:               c.Port,
		JetStream:          true,
		StoreDir:           c.StoreDir,
		NoSigs:             true,
		Logtime:            true,
		JetStreamMaxMemory: 256 << 20,
		JetStreamMaxStore:  8 << 30,
	}
	if c.HTTPPort > 0 {
		opts.HTTPHost, opts.HTTPPort = "127.0.0.1", c.HTTPPort
	}
	if c.ClusterName != "" {
		if c.ClusterPort <= 0 {
			return errors.New("nats-server: --cluster-port is required with --cluster-name")
		}
		opts.Cluster = server.ClusterOpts{Name: c.ClusterName, Host: "127.0.0.1", Port: c.ClusterPort}
		opts.Routes = server.RoutesFromStr(strings.Join(c.Routes, ","))
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return fmt.Errorf("creating nats-server: %w", err)
	}
	srv.ConfigureLogger()
	go srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return errors.New("nats-server did not become ready within 30s")
	}
	<-ctx.Done()
	srv.Shutdown()
	srv.WaitForShutdown()
	return nil
}
