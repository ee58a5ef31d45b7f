package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/gamify/boost/chaos"
)

// runChaos is `boost chaos`: the crash-safety suite (docs/chaos.md).
func runChaos(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o chaos.Options
	scenarios := fs.String("scenarios", "", "comma-separated scenarios to run (default all): "+strings.Join(chaos.ScenarioNames(), ","))
	fs.Uint64Var(&o.Seed, "seed", 0, "seed of the kill schedule and the load (0: pick one and print it)")
	fs.BoolVar(&o.Soak, "soak", false, "longer load and more kills per scenario")
	fs.BoolVar(&o.Keep, "keep", false, "keep data dirs, logs and the scenarios' databases")
	fs.StringVar(&o.Boost, "boost", "", "boost binary to run (default: this executable)")
	fs.StringVar(&o.PostgresURL, "postgres", envOr("BOOST_CHAOS_POSTGRES", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"),
		"PostgreSQL server (a maintenance database) to create the scenarios' databases on (BOOST_CHAOS_POSTGRES)")
	fs.StringVar(&o.RedisURL, "redis", envOr("BOOST_CHAOS_REDIS", "redis://127.0.0.1:6379/0"), "Redis for the api role (BOOST_CHAOS_REDIS)")
	fs.DurationVar(&o.Load, "load", 0, "override: how long each scenario's load runs")
	fs.IntVar(&o.Kills, "kills", 0, "override: SIGKILLs per scenario")
	fs.Float64Var(&o.Rate, "rate", 0, "override: events per second")
	fs.DurationVar(&o.DrainTimeout, "drain-timeout", 0, "override: how long to wait for the pipeline to drain")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *scenarios != "" {
		o.Scenarios = strings.Split(*scenarios, ",")
	}
	o.Out = stdout
	o.Log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	err := chaos.Run(ctx, o)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, chaos.ErrFailed):
		return 1
	default:
		fmt.Fprintln(stderr, "boost chaos:", err)
		return 2
	}
}

// runNATSServer is the hidden `boost nats-server` the chaos suite starts,
// kills and restarts: a nats-server with JetStream on a file store.
func runNATSServer(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("nats-server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c chaos.NATSServerConfig
	fs.IntVar(&c.Port, "port", 4222, "client port on 127.0.0.1")
	fs.StringVar(&c.StoreDir, "store-dir", "", "JetStream file store directory (required)")
	fs.StringVar(&c.ServerName, "server-name", "", "server name, unique in a cluster")
	fs.StringVar(&c.ClusterName, "cluster-name", "", "cluster name (makes this server a cluster node)")
	fs.IntVar(&c.ClusterPort, "cluster-port", 0, "route port on 127.0.0.1 (with --cluster-name)")
	routes := fs.String("routes", "", "comma-separated nats-route://host:port of the cluster's nodes")
	fs.IntVar(&c.HTTPPort, "http-port", 0, "monitoring port on 127.0.0.1 (/healthz); 0: none")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *routes != "" {
		c.Routes = strings.Split(*routes, ",")
	}
	return exit(stderr, chaos.ServeNATS(ctx, c))
}
