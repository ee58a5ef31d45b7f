package services

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gamify/boost/bus"
	"github.com/gamify/boost/config"
	"github.com/gamify/boost/health"
	"github.com/gamify/boost/metrics"
	"github.com/gamify/boost/store"
)

// DevOptions configures `boost dev`.
type DevOptions struct {
	Config  config.Config
	Version string
	Log     *slog.Logger
	// Out receives the start-up banner, which shows secrets once; it is
	// the terminal, never the log.
	Out io.Writer
	// Started, when set, is called with the running node (tests use it).
	Started func(*Node)
}

// Dev runs every role in one process over embedded NATS JetStream, an
// embedded Kafka-protocol broker (kfake) and SQLite, all stored under the
// data directory, until ctx is cancelled.
func Dev(ctx context.Context, o DevOptions) error {
	cfg := o.Config
	dir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return fmt.Errorf("resolving data dir: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating data dir %s: %w", dir, err)
	}

	ns, err := bus.StartEmbeddedNATS(filepath.Join(dir, "nats"), freeAddr(cfg.DevNATSAddr))
	if err != nil {
		return err
	}
	defer ns.Shutdown()

	kafka, err := bus.StartEmbeddedKafka(filepath.Join(dir, "kafka"), freePort(cfg.DevKafkaPort))
	if err != nil {
		return err
	}
	defer kafka.Close()
	cfg.KafkaBrokers = kafka.Addrs()

	db, err := openDevDB(ctx, dir, o.Log)
	if err != nil {
		return err
	}
	defer db.Close()

	adminToken, err := devAdminToken(dir, &cfg)
	if err != nil {
		return err
	}

	nc, err := ns.Connect("boost-dev")
	if err != nil {
		return fmt.Errorf("connecting to embedded NATS: %w", err)
	}
	defer nc.Close()

	// Not ready until the default organization, project and keys exist,
	// so a script waiting on /readyz can use them right away.
	var setUp atomic.Bool
	node := &Node{Config: cfg, Roles: AllRoles, Version: o.Version, NATS: nc, DB: db, Log: o.Log,
		Metrics: metrics.New(), Dial: ns.Connect, ExtraChecks: []health.Check{{Name: "setup", Probe: func(context.Context) error {
			if !setUp.Load() {
				return errors.New("creating the default organization, project and keys")
			}
			return nil
		}}}}
	done := make(chan error, 1)
	go func() { done <- node.Run(ctx) }()
	select {
	case <-node.Ready():
	case err := <-done:
		return err
	}

	seedFile := filepath.Join(dir, "seeded")
	seeded, err := seedOnce(ctx, seedFile, node)
	if err != nil {
		return err
	}
	setUp.Store(true)
	if o.Out != nil {
		printBanner(o.Out, dir, node.Addr(), ns.URL(), cfg, adminToken, seeded, seedFile)
	}
	if o.Started != nil {
		o.Started(node)
	}
	err = <-done
	o.Log.Info("boost dev stopped; flushing stores")
	return err
}

// openDevDB opens and migrates the embedded database.
func openDevDB(ctx context.Context, dir string, log *slog.Logger) (*store.DB, error) {
	db, err := store.Open(ctx, filepath.Join(dir, "boost.db"))
	if err != nil {
		return nil, err
	}
	if applied, err := db.Migrate(ctx); err != nil {
		db.Close()
		return nil, err
	} else if len(applied) > 0 {
		log.Info("migrated embedded database", "applied", strings.Join(applied, ", "))
	}
	return db, nil
}

// seedOnce creates the default organization, project and keys on the
// first start of a data directory, and nothing (nil) after.
func seedOnce(ctx context.Context, seedFile string, node *Node) (*Seeded, error) {
	if _, err := os.Stat(seedFile); !errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	seedCtx, cancel := context.WithTimeout(ctx, time.Minute)
	seeded, err := Seed(seedCtx, node.App())
	cancel()
	if err != nil {
		return nil, fmt.Errorf("creating the default organization, project and keys: %w", err)
	}
	// Only ids go to disk; the keys are printed once below.
	marker := "organization " + seeded.OrganizationID + "\nproject " + seeded.ProjectID + "\n"
	if err := os.WriteFile(seedFile, []byte(marker), 0o600); err != nil {
		return nil, fmt.Errorf("writing %s: %w", seedFile, err)
	}
	return seeded, nil
}

// devAdminToken returns a newly generated plaintext token to print, or ""
// when the token was given or generated on an earlier start. Only the
// token's SHA-256 is kept in the data directory.
func devAdminToken(dir string, cfg *config.Config) (string, error) {
	if cfg.AdminTokenSHA256 != "" {
		return "", nil
	}
	hashFile := filepath.Join(dir, "admin-token.sha256")
	if b, err := os.ReadFile(hashFile); err == nil {
		cfg.AdminTokenSHA256 = strings.TrimSpace(string(b))
		return "", nil
	}
	var raw [24]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("generating admin token: %w", err)
	}
	token := "boost_admin_" + hex.EncodeToString(raw[:])
	cfg.AdminTokenSHA256 = config.HashToken(token)
	if err := os.WriteFile(hashFile, []byte(cfg.AdminTokenSHA256+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("writing %s: %w", hashFile, err)
	}
	return token, nil
}

// freeAddr returns addr if it can be bound, else a free port on its host:
// a second `boost dev` (or a busy default) should not fail to start.
func freeAddr(addr string) string {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		host, _, _ := net.SplitHostPort(addr)
		if host == "" {
			host = "127.0.0.1"
		}
		return net.JoinHostPort(host, "0")
	}
	ln.Close()
	return addr
}

func freePort(port int) int {
	_, p, _ := net.SplitHostPort(freeAddr(net.JoinHostPort("127.0.0.1", strconv.Itoa(port))))
	n, _ := strconv.Atoi(p)
	return n
}

func printBanner(w io.Writer, dir, httpAddr, natsURL string, cfg config.Config, adminToken string, s *Seeded, seedFile string) {
	host, port, _ := net.SplitHostPort(httpAddr)
	base := "http://localhost:" + port
	broker := strings.Join(cfg.KafkaBrokers, ",")
	fmt.Fprintf(w, "\n  Boost is running (embedded mode)\n\n")
	fmt.Fprintf(w, "  API           %s\n", base)
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		fmt.Fprintf(w, "                (listening on %s: reachable from other machines too)\n", httpAddr)
	} else {
		fmt.Fprintf(w, "                (listening on %s only; --bind 0.0.0.0 to open it to the network)\n", host)
	}
	fmt.Fprintf(w, "  Dashboard     %s/dashboard/  (sign in with the admin token)\n", base)
	fmt.Fprintf(w, "  Data dir      %s\n", dir)
	fmt.Fprintf(w, "  NATS          %s  (JetStream)\n", natsURL)
	fmt.Fprintf(w, "  Kafka         %s  (read the log: kcat -b %s -t %s -C)\n", broker, broker, cfg.Topics.Tenancy)
	token := "<your admin token>"
	switch {
	case adminToken != "":
		token = adminToken
		fmt.Fprintf(w, "  Admin token   %s\n                (shown once; only its hash is kept. Set BOOST_ADMIN_TOKEN to choose your own.)\n", adminToken)
	default:
		fmt.Fprintf(w, "  Admin token   from BOOST_ADMIN_TOKEN, or the one printed on first start\n")
	}
	if s != nil {
		fmt.Fprintf(w, "  Organization  %s\n", s.OrganizationID)
		fmt.Fprintf(w, "  Project       %s\n", s.ProjectID)
		fmt.Fprintf(w, "  Publishable   %s\n", s.PublishableKey)
		fmt.Fprintf(w, "  Secret        %s\n", s.SecretKey)
		fmt.Fprintf(w, "                (keys are shown once; only their hashes are stored)\n\n")
		fmt.Fprintf(w, "  Try it:\n    curl -s %s/v1/projects/%s/api-keys -H 'Authorization: Bearer %s'\n",
			base, s.ProjectID, token)
		fmt.Fprintf(w, "    curl -s -X POST %s/v1/events/track -H 'x-api-key: %s' -d '{\"event\":\"page_view\",\"userId\":\"user-1\"}'\n\n",
			base, s.PublishableKey)
	} else {
		fmt.Fprintf(w, "  Default organization and project: see %s\n\n", seedFile)
		fmt.Fprintf(w, "  Try it:\n    curl -s %s/v1/organizations -H 'Authorization: Bearer %s'\n\n", base, token)
	}
}
