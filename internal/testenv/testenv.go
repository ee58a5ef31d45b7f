// Package testenv starts real infrastructure for tests: embedded
// nats-server and kfake in-process with SQLite, or — when
// BOOST_TEST_DATABASE_URL, BOOST_TEST_NATS_URL (and BOOST_TEST_REDIS_URL)
// point at them — PostgreSQL, NATS and Redis on loopback, with kfake
// started by the test. Every call gets its own database, stream prefix and
// topics, so tests never collide.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/rueidis"

	"github.com/gamify/boost/bus"
	"github.com/gamify/boost/config"
	"github.com/gamify/boost/store"
)

// Mode names the infrastructure a test runs on.
type Mode string

const (
	Embedded    Mode = "embedded"
	Distributed Mode = "distributed"
)

// Modes lists the modes this environment can run: embedded always,
// distributed when the BOOST_TEST_* variables are set.
func Modes() []Mode {
	if os.Getenv("BOOST_TEST_DATABASE_URL") != "" && os.Getenv("BOOST_TEST_NATS_URL") != "" {
		return []Mode{Embedded, Distributed}
	}
	return []Mode{Embedded}
}

// Env is one test's infrastructure.
type Env struct {
	Mode       Mode
	Config     config.Config
	AdminToken string
	DataDir    string // embedded mode: where NATS, kfake and SQLite store
	NATSURL    string
	Kafka      *bus.EmbeddedKafka
	DBURL      string
	RedisURL   string

	nats *bus.EmbeddedNATS
	t    testing.TB
}

// RandomSuffix returns 8 random hex characters.
func RandomSuffix() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Start brings up the infrastructure for mode, torn down at test end.
func Start(t testing.TB, mode Mode) *Env {
	t.Helper()
	suffix := RandomSuffix()
	e := &Env{Mode: mode, t: t, AdminToken: "test-admin-" + suffix, DataDir: t.TempDir()}
	cfg, err := config.FromEnv(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	cfg.Port = 0
	cfg.AdminTokenSHA256 = config.HashToken(e.AdminToken)
	cfg.NATSPrefix = "bt" + suffix
	cfg.Topics.Tenancy = "bt" + suffix + ".tenancy"
	cfg.Topics.Events = "bt" + suffix + ".events"
	cfg.Topics.Partitions = 3
	cfg.ConsistencyTimeout = 15 * time.Second
	// Fewer handlers in flight than in production: every node a test
	// starts subscribes them all, and tests start many nodes.
	cfg.WorkerParallelism, cfg.ProcessorParallelism = 32, 32

	e.Kafka, err = bus.StartEmbeddedKafka(filepath.Join(e.DataDir, "kafka"), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Kafka.Close)
	cfg.KafkaBrokers = e.Kafka.Addrs()

	switch mode {
	case Embedded:
		e.nats, err = bus.StartEmbeddedNATS(filepath.Join(e.DataDir, "nats"), "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(e.nats.Shutdown)
		e.NATSURL = e.nats.URL()
		e.DBURL = filepath.Join(e.DataDir, "boost.db")
	case Distributed:
		e.NATSURL = os.Getenv("BOOST_TEST_NATS_URL")
		e.DBURL = createPostgresDB(t, os.Getenv("BOOST_TEST_DATABASE_URL"), "boost_t_"+suffix)
		e.RedisURL = os.Getenv("BOOST_TEST_REDIS_URL")
		t.Cleanup(func() { deleteStreams(t, e.NATSURL, cfg.NATSPrefix) })
	default:
		t.Fatalf("unknown mode %q", mode)
	}
	cfg.NATSURL = e.NATSURL
	cfg.DatabaseURL = e.DBURL
	cfg.RedisURL = e.RedisURL
	e.Config = cfg
	return e
}

// Migrate applies the migrations to this env's database.
func (e *Env) Migrate(ctx context.Context) {
	e.t.Helper()
	db, err := store.Open(ctx, e.DBURL)
	if err != nil {
		e.t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		e.t.Fatal(err)
	}
}

// OpenDB opens this env's database, closed at test end.
func (e *Env) OpenDB(ctx context.Context) *store.DB {
	e.t.Helper()
	db, err := store.Open(ctx, e.DBURL)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { db.Close() })
	return db
}

// ConnectNATS opens a client connection, closed at test end.
func (e *Env) ConnectNATS() *nats.Conn {
	e.t.Helper()
	nc, err := bus.ConnectNATS(e.NATSURL, "boost-test")
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(nc.Close)
	return nc
}

// Redis opens a Redis client when the env has one, else nil.
func (e *Env) Redis() rueidis.Client {
	if e.RedisURL == "" {
		return nil
	}
	opt, err := rueidis.ParseURL(e.RedisURL)
	if err != nil {
		e.t.Fatal(err)
	}
	rc, err := rueidis.NewClient(opt)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(rc.Close)
	return rc
}

// Logger returns a logger that writes to the test log only when -v.
func Logger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func createPostgresDB(t testing.TB, adminURL, name string) string {
	t.Helper()
	ctx := context.Background()
	admin, err := store.Open(ctx, adminURL)
	if err != nil {
		t.Fatalf("connecting to BOOST_TEST_DATABASE_URL: %v", err)
	}
	// Test databases sort text as most servers do, in an English locale
	// (ICU), not in C.UTF-8 as this machine's server does: an answer that
	// follows the database's collation instead of byte order then differs
	// from SQLite's, and the tests comparing the two see it. Servers built
	// without ICU get their default.
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name+" TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US'"); err != nil {
		if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
			admin.Close()
			t.Fatalf("creating database %s: %v", name, err)
		}
	}
	t.Cleanup(func() {
		defer admin.Close()
		_, _ = admin.ExecContext(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	u, err := url.Parse(adminURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

func deleteStreams(t testing.TB, natsURL, prefix string) {
	nc, err := nats.Connect(natsURL)
	if err != nil {
		return
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n := bus.Names{Prefix: prefix}
	for _, s := range []string{n.CommandStream(), n.EventStream()} {
		if err := js.DeleteStream(ctx, s); err != nil && !strings.Contains(err.Error(), "not found") {
			t.Logf("deleting stream %s: %v", s, fmt.Sprint(err))
		}
	}
}

// StopKafka closes the embedded broker; RestartKafka brings it back on the
// same port and data directory, as a broker restart would.
func (e *Env) StopKafka() { e.Kafka.Close() }

// RestartKafka starts the broker again after StopKafka.
func (e *Env) RestartKafka() {
	e.t.Helper()
	_, portStr, _ := strings.Cut(e.Config.KafkaBrokers[0], ":")
	var port int
	fmt.Sscan(portStr, &port)
	k, err := bus.StartEmbeddedKafka(filepath.Join(e.DataDir, "kafka"), port)
	if err != nil {
		e.t.Fatal(err)
	}
	e.Kafka = k
	e.t.Cleanup(k.Close)
}

// StopNATS shuts the embedded NATS server down (embedded mode only), as a
// JetStream outage would.
func (e *Env) StopNATS() {
	if e.nats == nil {
		e.t.Skip("NATS outage is only simulated in embedded mode")
	}
	e.nats.Shutdown()
}
