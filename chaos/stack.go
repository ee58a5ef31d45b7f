package chaos

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// topology is how a scenario runs Boost.
type topology int

const (
	// topoRoles: api, worker, bridge and projector processes over one NATS
	// server and one kfake broker, PostgreSQL and Redis.
	topoRoles topology = iota
	// topoCluster: the same over a three-node NATS cluster, streams R3.
	topoCluster
	// topoDev: one `boost dev` process, everything embedded.
	topoDev
)

// stackConfig is what a stack is started from.
type stackConfig struct {
	Topology    topology
	APIs        int    // api processes (roles and cluster topologies)
	Name        string // the scenario's, for names
	RunID       string
	Dir         string // the scenario's directory: logs and data
	Boost       string // the boost binary
	PostgresURL string // the server's maintenance database
	RedisURL    string
	Log         *slog.Logger
	Ports       *ports
}

// stack is a running Boost and the infrastructure the suite started for it.
type stack struct {
	cfg        stackConfig
	procs      []*proc
	byName     map[string]*proc
	natsNodes  []*proc
	apiURLs    []string
	adminToken string

	dbName, dbURL string // PostgreSQL (roles, cluster)
	sqlitePath    string // boost dev
	brokers       []string
	eventsTopic   string
}

// startStack starts everything a scenario needs and waits until it is
// ready; on error it stops what it started.
func startStack(ctx context.Context, cfg stackConfig) (*stack, error) {
	token, err := randomHex(24)
	if err != nil {
		return nil, err
	}
	s := &stack{cfg: cfg, byName: map[string]*proc{}, adminToken: "chaos_admin_" + token}
	if cfg.Topology == topoDev {
		err = s.startDev(ctx)
	} else {
		err = s.startRoles(ctx)
	}
	if err != nil {
		s.close(context.WithoutCancel(ctx), false)
		return nil, err
	}
	return s, nil
}

func (s *stack) newProc(name string, args, env []string, ready func(context.Context) error) *proc {
	p := &proc{name: name, path: s.cfg.Boost, args: args, env: env, ready: ready,
		logPath: filepath.Join(s.cfg.Dir, name+".log"), log: s.cfg.Log}
	s.procs = append(s.procs, p)
	s.byName[name] = p
	return p
}

// baseEnv is the environment every child starts from: nothing of the
// suite's own (no DATABASE_URL or NATS_URL leaking in), only the basics.
func baseEnv() []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "TZ"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return append(env, "BOOST_LOG_FORMAT=json", "BOOST_LOG_LEVEL=info")
}

func (s *stack) names() (prefix, tenancyTopic, eventsTopic string) {
	base := sanitizeName(s.cfg.RunID + "_" + s.cfg.Name)
	return "chaos_" + base, "chaos." + base + ".tenancy", "chaos." + base + ".events"
}

// startRoles starts NATS (one node or three), kfake, migrates a fresh
// database and starts the roles.
func (s *stack) startRoles(ctx context.Context) error {
	s.dbName = sanitizeName("boost_chaos_" + s.cfg.RunID + "_" + s.cfg.Name)
	var err error
	if s.dbURL, err = createDatabase(ctx, s.cfg.PostgresURL, s.dbName); err != nil {
		s.dbName = ""
		return err
	}
	natsURLs, err := s.startNATS()
	if err != nil {
		return err
	}
	kafkaPort, err := s.cfg.Ports.free()
	if err != nil {
		return err
	}
	kafkaAddr := "127.0.0.1:" + strconv.Itoa(kafkaPort)
	s.brokers = []string{kafkaAddr}
	kafka := s.newProc("kafka", []string{"kafka", "--port", strconv.Itoa(kafkaPort), "--data-dir", filepath.Join(s.cfg.Dir, "kafka")},
		baseEnv(), tcpReady(kafkaAddr))
	if err := kafka.start(); err != nil {
		return err
	}
	if err := s.migrate(ctx); err != nil {
		return err
	}
	for _, p := range s.procs {
		if err := p.waitReady(ctx, 30*time.Second); err != nil {
			return err
		}
	}

	prefix, tenancy, events := s.names()
	s.eventsTopic = events
	replicas := "1"
	if s.cfg.Topology == topoCluster {
		replicas = "3"
	}
	common := append(baseEnv(),
		"DATABASE_URL="+s.dbURL, "NATS_URL="+strings.Join(natsURLs, ","), "KAFKA_BROKERS="+kafkaAddr,
		"BOOST_ADMIN_TOKEN="+s.adminToken, "BOOST_NATS_PREFIX="+prefix, "BOOST_NATS_REPLICAS="+replicas,
		"BOOST_KAFKA_TOPIC_TENANCY="+tenancy, "BOOST_KAFKA_TOPIC_EVENTS="+events)
	var roles []*proc
	for i := range max(s.cfg.APIs, 1) {
		port, err := s.cfg.Ports.free()
		if err != nil {
			return err
		}
		base := "http://127.0.0.1:" + strconv.Itoa(port)
		s.apiURLs = append(s.apiURLs, base)
		// Redis on the api role only: the key cache it shares.
		env := append(slices.Clone(common), "PORT="+strconv.Itoa(port), "REDIS_URL="+s.cfg.RedisURL)
		roles = append(roles, s.newProc(fmt.Sprintf("api-%d", i+1), []string{"api"}, env, httpReady(base+"/readyz")))
	}
	for _, role := range []string{"worker", "bridge", "projector"} {
		port, err := s.cfg.Ports.free()
		if err != nil {
			return err
		}
		env := append(slices.Clone(common), "PORT="+strconv.Itoa(port))
		roles = append(roles, s.newProc(role, []string{role}, env, httpReady("http://127.0.0.1:"+strconv.Itoa(port)+"/readyz")))
	}
	for _, p := range roles {
		if err := p.start(); err != nil {
			return err
		}
	}
	return waitAllReady(ctx, roles, 90*time.Second)
}

// startNATS starts one NATS server, or three clustered through routes,
// and returns their client URLs.
func (s *stack) startNATS() ([]string, error) {
	nodes := 1
	if s.cfg.Topology == topoCluster {
		nodes = 3
	}
	clientPorts, err := s.cfg.Ports.many(nodes)
	if err != nil {
		return nil, err
	}
	routePorts, err := s.cfg.Ports.many(nodes)
	if err != nil {
		return nil, err
	}
	httpPorts, err := s.cfg.Ports.many(nodes)
	if err != nil {
		return nil, err
	}
	var routes, urls []string
	for i := range nodes {
		routes = append(routes, "nats-route://127.0.0.1:"+strconv.Itoa(routePorts[i]))
		urls = append(urls, "nats://127.0.0.1:"+strconv.Itoa(clientPorts[i]))
	}
	for i := range nodes {
		name := fmt.Sprintf("nats-%d", i+1)
		args := []string{"nats-server", "--port", strconv.Itoa(clientPorts[i]),
			"--store-dir", filepath.Join(s.cfg.Dir, name), "--server-name", "chaos-" + name}
		ready := tcpReady("127.0.0.1:" + strconv.Itoa(clientPorts[i]))
		if nodes > 1 {
			args = append(args, "--cluster-name", "chaos", "--cluster-port", strconv.Itoa(routePorts[i]),
				"--routes", strings.Join(routes, ","), "--http-port", strconv.Itoa(httpPorts[i]))
			// A node is back once it has caught up: the scenario loses one
			// node at a time, and killing the next one while the last is
			// still catching up would take the streams below quorum.
			ready = both(ready, httpReady("http://127.0.0.1:"+strconv.Itoa(httpPorts[i])+"/healthz"))
		}
		p := s.newProc(name, args, baseEnv(), ready)
		s.natsNodes = append(s.natsNodes, p)
		if err := p.start(); err != nil {
			return nil, err
		}
	}
	return urls, nil
}

// migrate runs `boost migrate` on the fresh database.
func (s *stack) migrate(ctx context.Context) error {
	f, err := os.OpenFile(filepath.Join(s.cfg.Dir, "migrate.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.cfg.Boost, "migrate")
	cmd.Env = append(baseEnv(), "DATABASE_URL="+s.dbURL)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("boost migrate: %w (see %s)", err, f.Name())
	}
	return nil
}

// startDev starts `boost dev` on ports of its own and a fresh data dir.
func (s *stack) startDev(ctx context.Context) error {
	p, err := s.cfg.Ports.many(3)
	if err != nil {
		return err
	}
	httpPort, natsPort, kafkaPort := p[0], p[1], p[2]
	dataDir := filepath.Join(s.cfg.Dir, "dev")
	base := "http://127.0.0.1:" + strconv.Itoa(httpPort)
	env := append(baseEnv(), "PORT="+strconv.Itoa(httpPort), "BOOST_DATA_DIR="+dataDir,
		"BOOST_ADMIN_TOKEN="+s.adminToken, "BOOST_DEV_NATS_ADDR=127.0.0.1:"+strconv.Itoa(natsPort),
		"BOOST_DEV_KAFKA_PORT="+strconv.Itoa(kafkaPort))
	dev := s.newProc("dev", []string{"dev"}, env, httpReady(base+"/readyz"))
	// The banner on stdout shows the default project's keys: not logged.
	dev.quietStdout = true
	s.apiURLs = []string{base}
	s.sqlitePath = filepath.Join(dataDir, "boost.db")
	s.brokers = []string{"127.0.0.1:" + strconv.Itoa(kafkaPort)}
	s.eventsTopic = "boost.events"
	if err := dev.start(); err != nil {
		return err
	}
	return dev.waitReady(ctx, 90*time.Second)
}

// openReader opens the read model of project.
func (s *stack) openReader(ctx context.Context, project string) (*reader, error) {
	if s.cfg.Topology == topoDev {
		return openSQLiteReader(ctx, s.sqlitePath, project)
	}
	return openPostgresReader(ctx, s.dbURL, project)
}

// crashes lists the processes that exited on their own.
func (s *stack) crashes() []string {
	var out []string
	for _, p := range s.procs {
		if n, last := p.crashCount(); n > 0 {
			out = append(out, fmt.Sprintf("%s exited on its own %d× (last: %s)", p.name, n, last))
		}
	}
	return out
}

// close stops every process (SIGTERM, then SIGKILL) and drops the
// database unless keep.
func (s *stack) close(ctx context.Context, keep bool) {
	// Boost first, then what it runs on, so the roles stop cleanly.
	isInfra := func(p *proc) bool { return p.name == "kafka" || slices.Contains(s.natsNodes, p) }
	for _, infra := range []bool{false, true} {
		var wg sync.WaitGroup
		for _, p := range s.procs {
			if isInfra(p) == infra {
				wg.Go(func() { p.stop(5 * time.Second) })
			}
		}
		wg.Wait()
	}
	if s.dbName != "" && !keep {
		if err := dropDatabase(ctx, s.cfg.PostgresURL, s.dbName); err != nil {
			s.cfg.Log.Warn("dropping the scenario's database", "database", s.dbName, "err", err)
		}
	}
}

func waitAllReady(ctx context.Context, procs []*proc, timeout time.Duration) error {
	errs := make(chan error, len(procs))
	for _, p := range procs {
		go func() { errs <- p.waitReady(ctx, timeout) }()
	}
	var first error
	for range procs {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// sanitizeName keeps lower-case letters, digits and underscores.
func sanitizeName(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generating a random token: %w", err)
	}
	return hex.EncodeToString(b), nil
}
