// Command boost runs Boost: `boost dev` for everything embedded in one
// process, or the api, worker, bridge and projector roles against NATS,
// Kafka and PostgreSQL.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"
	_ "time/tzdata" // analytics time zones work on images without zoneinfo

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/gamify/boost/bench"
	"github.com/gamify/boost/bus"
	"github.com/gamify/boost/config"
	"github.com/gamify/boost/projections"
	"github.com/gamify/boost/services"
	"github.com/gamify/boost/store"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const usage = `boost — event ingestion, event-sourced.

Usage:
  boost dev [--data-dir DIR] [--bind HOST]
                                    run everything embedded (NATS JetStream, kfake, SQLite),
                                    listening on 127.0.0.1 unless --bind / BOOST_BIND say otherwise
  boost api | worker | bridge | projector
                                    run one role against NATS_URL, KAFKA_BROKERS, DATABASE_URL
  boost run --roles api,worker,...  run several roles in one process
  boost migrate                     apply database migrations to DATABASE_URL
  boost replay PROJECTION|--all [--from TIME|OFFSET]
                                    rebuild read models from the Kafka log while ingestion runs
  boost kafka [--port 9092] [--data-dir DIR]
                                    run the embedded Kafka-protocol broker (kfake) on its own,
                                    for the distributed roles on a machine without Kafka
  boost bench --project ID [...]    load a running Boost over HTTP and report events/s, latency, lag
  boost bench read [--events N ...] replay rate and analytics query latency on a synthetic log
  boost chaos [--scenarios a,b] [--seed N] [--soak] [--keep]
                                    SIGKILL each component under load and verify nothing is lost (docs/chaos.md)
  boost healthcheck                 exit 0 if http://127.0.0.1:$PORT/readyz answers 200
  boost version

Configuration comes from environment variables; see the README.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cfg, err := config.FromEnv(os.Getenv)
	if err != nil {
		fmt.Fprintln(stderr, "boost:", err)
		return 2
	}
	cmd, rest := args[0], args[1:]
	if addr := os.Getenv("BOOST_PPROF_ADDR"); addr != "" {
		// Profiling for benchmarks: off unless asked for, loopback only.
		go func() { _ = http.ListenAndServe(addr, pprofMux()) }()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	switch cmd {
	case "dev":
		return runDev(ctx, cfg, rest, stdout, stderr)
	case services.RoleAPI, services.RoleWorker, services.RoleBridge, services.RoleProjector:
		return exit(stderr, services.RunRoles(ctx, cfg, []string{cmd}, version, newLogger(cfg, stderr), nil))
	case "run":
		return runRoles(ctx, cfg, rest, stderr)
	case "migrate":
		return runMigrate(ctx, cfg, stdout, stderr)
	case "kafka":
		return runKafka(ctx, rest, stdout, stderr)
	case "bench":
		return runBench(ctx, cfg, rest, stdout, stderr)
	case "replay":
		return runReplay(ctx, cfg, rest, stdout, stderr)
	case "chaos":
		return runChaos(ctx, rest, stdout, stderr)
	case "nats-server": // hidden: the NATS server the chaos suite kills
		return runNATSServer(ctx, rest, stderr)
	case "healthcheck":
		return healthcheck(cfg.Port, stderr)
	case "version":
		fmt.Fprintln(stdout, "boost", version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "boost: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
}

// runDev runs `boost dev`: every role over embedded infrastructure.
func runDev(ctx context.Context, cfg config.Config, rest []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "where embedded NATS, Kafka and SQLite keep their data (BOOST_DATA_DIR)")
	// A development server listens on loopback unless told otherwise.
	if os.Getenv("BOOST_BIND") == "" {
		cfg.Bind = "127.0.0.1"
	}
	fs.StringVar(&cfg.Bind, "bind", cfg.Bind, "host to listen on (BOOST_BIND); 0.0.0.0 for every interface")
	if err := fs.Parse(rest); err != nil {
		return 2
	}
	if cfg.LogFormat == "" {
		cfg.LogFormat = "text"
	}
	setDevMemoryLimit(os.Getenv)
	log := newLogger(cfg, stderr)
	return exit(stderr, services.Dev(ctx, services.DevOptions{Config: cfg, Version: version, Log: log, Out: stdout}))
}

// devMemoryLimit is the Go runtime's soft memory limit in `boost dev`
// unless GOMEMLIMIT sets one. Under a backlog the embedded NATS server's
// block caches and the stages' buffers hold about 500 MB of live heap; with
// GOGC alone the heap grows to twice its live size before a collection, and
// the process passed 1 GiB (docs/benchmarks.md). With the limit the
// collector runs sooner instead; SQLite's page caches are outside it.
const devMemoryLimit = 768 << 20

// setDevMemoryLimit applies devMemoryLimit when GOMEMLIMIT is unset (the
// runtime has applied it otherwise) and returns the limit in force.
func setDevMemoryLimit(getenv func(string) string) int64 {
	if getenv("GOMEMLIMIT") != "" {
		return debug.SetMemoryLimit(-1)
	}
	debug.SetMemoryLimit(devMemoryLimit)
	return devMemoryLimit
}

// runRoles runs `boost run --roles …`.
func runRoles(ctx context.Context, cfg config.Config, rest []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	rolesFlag := fs.String("roles", envOr("BOOST_ROLES", strings.Join(services.AllRoles, ",")), "comma-separated roles (BOOST_ROLES)")
	if err := fs.Parse(rest); err != nil {
		return 2
	}
	roles, err := services.ParseRoles(*rolesFlag)
	if err != nil {
		fmt.Fprintln(stderr, "boost:", err)
		return 2
	}
	return exit(stderr, services.RunRoles(ctx, cfg, roles, version, newLogger(cfg, stderr), nil))
}

// runMigrate runs `boost migrate`.
func runMigrate(ctx context.Context, cfg config.Config, stdout, stderr io.Writer) int {
	if cfg.DatabaseURL == "" {
		fmt.Fprintln(stderr, "boost migrate: DATABASE_URL is required (postgres://… or a SQLite file path)")
		return 2
	}
	applied, err := services.Migrate(ctx, cfg.DatabaseURL)
	if err != nil {
		return exit(stderr, err)
	}
	if len(applied) == 0 {
		fmt.Fprintln(stdout, "database is up to date")
	}
	for _, m := range applied {
		fmt.Fprintln(stdout, "applied", m)
	}
	return 0
}

// runKafka runs `boost kafka`: a standalone kfake broker.
func runKafka(ctx context.Context, rest []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("kafka", flag.ContinueOnError)
	fs.SetOutput(stderr)
	port := fs.Int("port", 9092, "port on 127.0.0.1")
	dir := fs.String("data-dir", ".boost-kafka", "where the log is persisted")
	if err := fs.Parse(rest); err != nil {
		return 2
	}
	k, err := bus.StartEmbeddedKafka(*dir, *port)
	if err != nil {
		return exit(stderr, err)
	}
	fmt.Fprintf(stdout, "kfake listening on %s (data in %s); ctrl-C to stop\n", strings.Join(k.Addrs(), ","), *dir)
	<-ctx.Done()
	k.Close()
	return 0
}

func exit(stderr io.Writer, err error) int {
	if err == nil || errors.Is(err, context.Canceled) {
		return 0
	}
	fmt.Fprintln(stderr, "boost:", err)
	return 1
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	if cfg.LogFormat == "text" {
		h = slog.NewTextHandler(w, opts)
	} else {
		h = slog.NewJSONHandler(w, opts)
	}
	log := slog.New(h)
	slog.SetDefault(log)
	return log
}

func healthcheck(port int, stderr io.Writer) int {
	c := &http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/readyz")
	if err != nil {
		fmt.Fprintln(stderr, "healthcheck:", err)
		return 1
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		fmt.Fprintf(stderr, "healthcheck: %s %s\n", resp.Status, body)
		return 1
	}
	return 0
}

func runBench(ctx context.Context, cfg config.Config, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "ceiling":
			return serveCeiling(ctx, stdout, stderr)
		case "rows":
			return runBenchRows(ctx, args[1:], stdout, stderr)
		case "read":
			return runBenchRead(ctx, args[1:], stdout, stderr)
		}
	}
	return runBenchLoad(ctx, cfg, args, stdout, stderr)
}

// runBenchRows is `boost bench rows`: the live projection beside raw
// inserts of its rows.
func runBenchRows(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench rows", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c bench.RowsConfig
	fs.IntVar(&c.Events, "events", 200_000, "tracked events")
	fs.IntVar(&c.Users, "users", 10_000, "distinct users")
	fs.IntVar(&c.Types, "types", 7, "distinct event types")
	fs.IntVar(&c.Batch, "batch", 2000, "events per transaction")
	fs.BoolVar(&c.Narrowings, "narrowings", false, "instead, write the raw rows with each narrowing of the keys alone (bench/narrowings.go)")
	fs.IntVar(&c.Rounds, "rounds", 2, "with --narrowings: rounds over all of them, interleaved")
	fs.StringVar(&c.Database, "database", "", "with --narrowings: a PostgreSQL URL to measure them on instead of SQLite (each run in a schema of its own)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	c.Out = stdout
	return exit(stderr, bench.RunRows(ctx, c))
}

// runBenchRead is `boost bench read`: replay and analytics over a
// synthetic log.
func runBenchRead(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench read", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c bench.ReadSideConfig
	fs.IntVar(&c.Events, "events", 1_000_000, "tracked events in the synthetic log")
	fs.IntVar(&c.Users, "users", 100_000, "distinct users")
	fs.IntVar(&c.Types, "types", 50, "distinct event types")
	fs.IntVar(&c.Days, "days", 90, "days the events spread over")
	fs.IntVar(&c.Repeat, "repeat", 30, "runs of each query")
	fs.StringVar(&c.DatabaseURL, "database", "", "postgres://… (an empty database) or a SQLite path; default a temp SQLite file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	c.Out = stdout
	return exit(stderr, bench.RunReadSide(ctx, c))
}

// runBenchLoad is `boost bench`: a load against a running Boost, beside
// the ceiling.
func runBenchLoad(ctx context.Context, cfg config.Config, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c bench.Config
	var asJSON bool
	fs.StringVar(&c.URL, "url", "http://127.0.0.1:"+strconv.Itoa(cfg.Port), "Boost base URL")
	fs.StringVar(&c.AdminToken, "admin-token", os.Getenv("BOOST_ADMIN_TOKEN"), "admin token (BOOST_ADMIN_TOKEN); used to create bench keys and read events back")
	fs.StringVar(&c.ProjectID, "project", "", "project to send events to (required)")
	fs.StringVar(&c.Mode, "mode", "single", "single (POST /v1/events/track) or batch (POST /v1/events/batch)")
	fs.IntVar(&c.BatchSize, "batch-size", 100, "events per batch request")
	fs.IntVar(&c.Connections, "connections", 32, "concurrent connections")
	fs.DurationVar(&c.Duration, "duration", 30*time.Second, "how long to load")
	fs.Float64Var(&c.Rate, "rate", 0, "target events/s across connections (0: as fast as possible)")
	fs.IntVar(&c.LagSamples, "lag-samples", 20, "events per second followed to the read model for end-to-end lag")
	fs.BoolVar(&asJSON, "json", false, "print the result as JSON")
	withCeiling := fs.Bool("ceiling", true, "first run the same load against the ceiling (bench/ceiling.go) and print Boost's figures beside it")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if c.ProjectID == "" || c.AdminToken == "" {
		fmt.Fprintln(stderr, "boost bench: --project and --admin-token (or BOOST_ADMIN_TOKEN) are required")
		return 2
	}
	if !asJSON {
		c.Out = stdout
	}
	var ceiling *bench.Result
	if *withCeiling {
		var err error
		if ceiling, err = runCeiling(ctx, c, stdout); err != nil {
			return exit(stderr, err)
		}
	}
	if c.Out != nil {
		fmt.Fprintf(c.Out, "\nboost at %s:\n", c.URL)
	}
	res, err := bench.Run(ctx, c)
	if err != nil {
		return exit(stderr, err)
	}
	out := any(res)
	if ceiling != nil {
		out = bench.Compare(res, ceiling)
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(out)
		return 0
	}
	if ceiling != nil {
		bench.Compare(res, ceiling).Print(stdout)
	} else {
		res.Print(stdout)
	}
	return 0
}

// runCeiling runs c's load against the ceiling, in a process of its own
// as Boost is: `boost bench ceiling`, this executable.
func runCeiling(ctx context.Context, c bench.Config, stdout io.Writer) (*bench.Result, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, exe, "bench", "ceiling")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the ceiling: %w", err)
	}
	defer func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	}()
	line, err := bufio.NewReader(out).ReadString('\n')
	url, ok := strings.CutPrefix(strings.TrimSpace(line), ceilingBanner)
	if err != nil || !ok {
		return nil, fmt.Errorf("the ceiling did not start: %q %v", line, err)
	}
	cc := c
	cc.URL, cc.LagSamples = url, 0
	if cc.Out != nil {
		fmt.Fprintf(cc.Out, "ceiling (HTTP decode → JetStream async publish → ack → 202, its own process) at %s:\n", url)
	}
	return bench.Run(ctx, cc)
}

const ceilingBanner = "ceiling listening on "

// serveCeiling serves the ceiling until interrupted.
func serveCeiling(ctx context.Context, stdout, stderr io.Writer) int {
	ceil, err := bench.StartCeiling(ctx)
	if err != nil {
		return exit(stderr, err)
	}
	defer ceil.Stop()
	fmt.Fprintln(stdout, ceilingBanner+ceil.URL)
	<-ctx.Done()
	return 0
}

func pprofMux() *http.ServeMux {
	m := http.NewServeMux()
	m.HandleFunc("/debug/pprof/", pprof.Index)
	m.HandleFunc("/debug/pprof/profile", pprof.Profile)
	m.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return m
}

func runReplay(ctx context.Context, cfg config.Config, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	all := fs.Bool("all", false, "replay every projection")
	from := fs.String("from", "", "partial rebuild: re-apply from this RFC 3339 time or Kafka offset onto the live tables")
	// Flags may follow the projection name.
	var names []string
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			return 2
		}
		args = fs.Args()
		if len(args) > 0 {
			names, args = append(names, args[0]), args[1:]
		}
	}
	if cfg.DatabaseURL == "" {
		// boost dev's database and broker, for replaying a dev data dir.
		cfg.DatabaseURL = filepath.Join(cfg.DataDir, "boost.db")
	}
	if len(cfg.KafkaBrokers) == 0 {
		cfg.KafkaBrokers = []string{"127.0.0.1:" + strconv.Itoa(cfg.DevKafkaPort)}
	}
	log := newLogger(cfg, stderr)
	db, err := store.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return exit(stderr, err)
	}
	defer db.Close()
	if err := db.CheckMigrated(ctx); err != nil {
		return exit(stderr, err)
	}
	var chosen []projections.Projection
	for _, p := range services.Projections(cfg, nil) {
		for _, n := range names {
			if n == p.Name() {
				chosen = append(chosen, p)
			}
		}
		if *all {
			chosen = append(chosen, p)
		}
	}
	if len(chosen) == 0 || (len(chosen) != len(names) && !*all) {
		var known []string
		for _, p := range services.Projections(cfg, nil) {
			known = append(known, p.Name())
		}
		fmt.Fprintf(stderr, "boost replay: name a projection (%s) or pass --all\n", strings.Join(known, ", "))
		return 2
	}
	for _, p := range chosen {
		rp := &projections.Replay{DB: db, Brokers: cfg.KafkaBrokers, Projection: p, Log: log, Progress: stdout}
		if *from == "" {
			err = rp.Run(ctx)
		} else {
			var offsets func(string, int32) kgo.Offset
			if n, perr := strconv.ParseInt(*from, 10, 64); perr == nil && n >= 0 {
				offsets = func(string, int32) kgo.Offset { return kgo.NewOffset().At(n) }
			} else if t, terr := time.Parse(time.RFC3339Nano, *from); terr == nil {
				offsets, err = projections.OffsetsAt(ctx, cfg.KafkaBrokers, p.Topics(), t)
			} else {
				fmt.Fprintln(stderr, "boost replay: --from must be an RFC 3339 time or a non-negative offset")
				return 2
			}
			if err == nil {
				err = rp.RunFrom(ctx, offsets)
			}
		}
		if err != nil {
			return exit(stderr, fmt.Errorf("replaying %s: %w", p.Name(), err))
		}
	}
	return 0
}
