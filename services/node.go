// Package services wires Boost's packages into running processes: the
// api, worker, bridge and projector roles, any mix of them in one process,
// and `boost dev`, which runs every role over embedded infrastructure. Only
// the wiring differs between modes; the packages are the same.
package services

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/rueidis"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/gamify/boost/api"
	"github.com/gamify/boost/app"
	"github.com/gamify/boost/bus"
	"github.com/gamify/boost/commands"
	"github.com/gamify/boost/config"
	"github.com/gamify/boost/dashboard"
	"github.com/gamify/boost/health"
	"github.com/gamify/boost/metrics"
	"github.com/gamify/boost/projections"
	"github.com/gamify/boost/ratelimit"
	"github.com/gamify/boost/store"
)

// Role names.
const (
	RoleAPI       = "api"
	RoleWorker    = "worker"
	RoleBridge    = "bridge"
	RoleProjector = "projector"
)

// AllRoles is what `boost dev` runs.
var AllRoles = []string{RoleAPI, RoleWorker, RoleBridge, RoleProjector}

// ParseRoles reads a comma-separated role list.
func ParseRoles(s string) ([]string, error) {
	var roles []string
	for _, r := range strings.Split(s, ",") {
		r = strings.TrimSpace(r)
		if r == "" {
			continue
		}
		if !slices.Contains(AllRoles, r) {
			return nil, fmt.Errorf("unknown role %q (roles: %s)", r, strings.Join(AllRoles, ", "))
		}
		if !slices.Contains(roles, r) {
			roles = append(roles, r)
		}
	}
	if len(roles) == 0 {
		return nil, errors.New("no roles given")
	}
	return roles, nil
}

// Needs says which infrastructure a set of roles uses.
type Needs struct{ NATS, DB, Kafka bool }

// NeedsOf returns what roles need.
func NeedsOf(roles []string) Needs {
	has := func(r string) bool { return slices.Contains(roles, r) }
	return Needs{
		NATS:  has(RoleAPI) || has(RoleWorker) || has(RoleBridge),
		DB:    has(RoleAPI) || has(RoleProjector),
		Kafka: has(RoleAPI) || has(RoleBridge) || has(RoleProjector),
	}
}

// Node runs a set of roles over infrastructure it is handed; it owns none
// of the connections, so `boost dev` and the distributed roles share it.
type Node struct {
	Config  config.Config
	Roles   []string
	Version string
	NATS    *nats.Conn // required by api, worker, bridge
	// Dial, when set, opens a dedicated NATS connection per component, so
	// the API's publishes, the workers' deliveries and the bridge do not
	// queue behind each other on one connection.
	Dial    func(name string) (*nats.Conn, error)
	DB      *store.DB      // required by api, projector
	Redis   rueidis.Client // optional: the api role's shared key cache
	Log     *slog.Logger
	Metrics *metrics.Metrics
	// Health records the pipeline stages this node runs (nil: Run makes
	// one); readiness, /metrics and the dashboard read it.
	Health *health.Board

	// Listener, when set, is served instead of listening on Config.Port.
	Listener net.Listener
	// ExtraChecks join the readiness probes (boost dev reports its
	// first-start setup through one).
	ExtraChecks []health.Check

	mu    sync.Mutex
	conns []*nats.Conn
	api   *apiRole
	addr  string
	ready chan struct{}
}

// Role is one part of Boost a node runs: built by its own constructor
// from its dependencies, run until its context ends.
type Role interface {
	Name() string
	Run(ctx context.Context) error
}

func (n *Node) has(role string) bool { return slices.Contains(n.Roles, role) }

// Addr is the HTTP address once Ready is closed.
func (n *Node) Addr() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.addr
}

// Ready is closed when the node serves HTTP and its roles have started.
func (n *Node) Ready() <-chan struct{} { return n.readyChan() }

func (n *Node) readyChan() chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ready == nil {
		n.ready = make(chan struct{})
	}
	return n.ready
}

// Run starts the roles and blocks until ctx is cancelled and every role has
// stopped: HTTP first (in-flight requests finish), then the roles, each
// finishing the batch in hand; a role that fails stops the node.
func (n *Node) Run(ctx context.Context) error {
	if n.Health == nil {
		n.Health = health.NewBoard(n.Config.StallAfter)
		if err := n.Metrics.Registry.Register(n.Health.Collector()); err != nil {
			return fmt.Errorf("registering stage metrics: %w", err)
		}
	}
	inf, err := n.infrastructure(ctx)
	if err != nil {
		return err
	}
	defer inf.close()
	roles, err := n.roles(ctx, inf)
	if err != nil {
		return err
	}
	srv, ln, closeHTTP, err := n.httpServer(ctx, inf)
	if err != nil {
		return err
	}
	defer closeHTTP()
	return n.serve(ctx, roles, srv, ln)
}

// roles builds the roles this node runs, each from its dependencies.
func (n *Node) roles(ctx context.Context, inf *infra) ([]Role, error) {
	var roles []Role
	if n.has(RoleAPI) {
		nc, err := n.conn(ctx, "api")
		if err != nil {
			return nil, err
		}
		r, err := newAPIRole(ctx, n, inf, nc)
		if err != nil {
			return nil, err
		}
		n.mu.Lock()
		n.api = r
		n.mu.Unlock()
		roles = append(roles, r)
	}
	if n.has(RoleWorker) {
		for _, build := range []func(context.Context, *Node, *infra, *nats.Conn) (*routerRole, error){newCommandsRole, newProcessorRole} {
			nc, err := n.conn(ctx, "worker")
			if err != nil {
				return nil, err
			}
			r, err := build(ctx, n, inf, nc)
			if err != nil {
				return nil, err
			}
			roles = append(roles, r)
		}
	}
	if n.has(RoleBridge) {
		nc, err := n.conn(ctx, "bridge")
		if err != nil {
			return nil, err
		}
		r, err := newBridgeRole(n, inf, nc)
		if err != nil {
			return nil, err
		}
		roles = append(roles, r)
	}
	if n.has(RoleProjector) {
		r, err := newProjectorRole(n)
		if err != nil {
			return nil, err
		}
		roles = append(roles, r)
	}
	return roles, nil
}

// serve runs the roles and the HTTP server until ctx ends or one fails,
// then stops HTTP first (in-flight requests finish) and the roles after.
func (n *Node) serve(ctx context.Context, roles []Role, srv *http.Server, ln net.Listener) error {
	// Roles run under their own context, so HTTP can be drained first.
	rolesCtx, stopRoles := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRoles()
	var wg sync.WaitGroup
	errc := make(chan error, len(roles)+1)
	for _, r := range roles {
		wg.Go(func() {
			if err := r.Run(rolesCtx); err != nil && !errors.Is(err, context.Canceled) {
				errc <- fmt.Errorf("%s: %w", r.Name(), err)
			}
		})
	}
	for _, r := range roles {
		if rr, ok := r.(*routerRole); ok {
			select {
			case <-rr.running():
			case <-ctx.Done():
			}
		}
	}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("http: %w", err)
		}
	}()
	ready := n.readyChan() // made here when nobody asked for it before
	n.mu.Lock()
	n.addr = ln.Addr().String()
	n.mu.Unlock()
	close(ready)
	n.Log.Info("boost node started", "roles", strings.Join(n.Roles, ","), "addr", ln.Addr().String())

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
		n.Log.Error("role failed; shutting down", "err", runErr)
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		n.Log.Warn("http shutdown", "err", err)
	}
	stopRoles()
	wg.Wait()
	n.mu.Lock()
	for _, nc := range n.conns {
		_ = nc.Drain()
	}
	n.mu.Unlock()
	return runErr
}

// httpServer builds what the node serves on its port: the API and the
// dashboard with the api role, health and metrics with every role.
func (n *Node) httpServer(ctx context.Context, inf *infra) (*http.Server, net.Listener, func(), error) {
	cfg := api.Config{Version: n.Version, Roles: n.Roles, Checks: inf.checks, Metrics: n.Metrics, Log: n.Log,
		AdminTokenSHA256: n.Config.AdminTokenSHA256, Health: n.Health,
		AuthFailures: ratelimit.NewFailures(n.Config.AuthFailures,
			n.Config.AuthFailureWindow/time.Duration(max(n.Config.AuthFailures, 1)))}
	if n.api != nil {
		cfg.App = n.api.app
	}
	handler := api.New(cfg)
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		IdleTimeout: 120 * time.Second}
	closeFn := func() {}
	if n.api != nil {
		dash, closeDash, err := n.dashboard(ctx, cfg, inf)
		if err != nil {
			return nil, nil, nil, err
		}
		closeFn = closeDash
		handler.Mount("/dashboard", dash)
		handler.AcceptSessions(dash.SignedIn)
		srv.RegisterOnShutdown(dash.Shutdown)
	}
	ln := n.Listener
	if ln == nil {
		addr := net.JoinHostPort(n.Config.Bind, strconv.Itoa(n.Config.Port))
		var err error
		if ln, err = net.Listen("tcp", addr); err != nil {
			closeFn()
			return nil, nil, nil, fmt.Errorf("listening on %s: %w", addr, err)
		}
	}
	return srv, ln, closeFn, nil
}

// dashboard builds the admin web app over the same use cases as the API,
// a live feed from the pipeline's subjects and the health numbers.
func (n *Node) dashboard(ctx context.Context, cfg api.Config, inf *infra) (*dashboard.Dashboard, func(), error) {
	closeFn := func() {}
	feedConn, err := n.conn(ctx, "dashboard")
	if err != nil {
		return nil, nil, err
	}
	js, kafka := inf.js, inf.kafka
	if js == nil {
		if js, err = jetstream.New(feedConn); err != nil {
			return nil, nil, fmt.Errorf("jetstream: %w", err)
		}
	}
	if kafka == nil && len(n.Config.KafkaBrokers) > 0 {
		// Only for the projections' lag; a Kafka outage shows on the page.
		if kafka, err = bus.NewKafkaClient(n.Config.KafkaBrokers); err != nil {
			return nil, nil, err
		}
		closeFn = kafka.Close
	}
	h := &dashboard.Health{Checks: cfg.Checks, Registry: n.Metrics.Registry, JetStream: js, Names: inf.names,
		Queries: cfg.App.Queries.Read, Board: n.Health, StallAfter: n.Config.StallAfter}
	if cfg.App.Queries.Quarantine != nil {
		h.Quarantine = cfg.App.Queries.Quarantine
	}
	if kafka != nil {
		h.Kafka = kadm.NewClient(kafka)
	}
	for _, p := range Projections(n.Config, nil) {
		h.Projections = append(h.Projections, dashboard.ProjectionTopics{Name: p.Name(), Topics: p.Topics()})
	}
	d, err := dashboard.New(dashboard.Config{AdminTokenSHA256: n.Config.AdminTokenSHA256,
		SessionTTL: n.Config.DashboardSessionTTL, App: cfg.App, Feed: dashboard.NewNATSFeed(feedConn, inf.names),
		Health: h, AuthFailures: cfg.AuthFailures, Log: n.Log.With("component", "dashboard"), Version: n.Version})
	if err != nil {
		closeFn()
		return nil, nil, err
	}
	return d, closeFn, nil
}

// conn returns a dedicated connection when the node can dial one (drained
// once the roles have stopped), else the shared one.
func (n *Node) conn(ctx context.Context, component string) (*nats.Conn, error) {
	if n.Dial == nil {
		return n.NATS, nil
	}
	nc, err := n.Dial("boost-" + component)
	if err != nil {
		return nil, fmt.Errorf("connecting %s to NATS: %w", component, err)
	}
	n.mu.Lock()
	n.conns = append(n.conns, nc)
	n.mu.Unlock()
	return nc, nil
}

// App is the node's use cases (api role) once Ready is closed, for seeding.
func (n *Node) App() *app.Application {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.api == nil {
		return nil
	}
	return n.api.app
}

// CommandBus is the node's command bus (api role), for tests that send
// commands directly.
func (n *Node) CommandBus() *commands.Bus {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.api == nil {
		return nil
	}
	return n.api.bus
}

// Projections lists every projection this build runs; revoked is told of
// key revocations (nil: nobody to tell).
func Projections(cfg config.Config, revoked projections.KeyRevocations) []projections.Projection {
	return []projections.Projection{
		projections.NewTenancy(cfg.Topics.Tenancy, revoked),
		projections.NewEvents(cfg.Topics.Events),
	}
}

// keepWALShort checkpoints SQLite's write-ahead log every second, so the
// projections' commits never have to (store.DB.Checkpoint says why); the
// wal_autocheckpoint threshold stays as the fallback.
func keepWALShort(ctx context.Context, db *store.DB, log *slog.Logger) {
	every(ctx, time.Second, func() {
		if _, _, err := db.Checkpoint(ctx); err != nil && ctx.Err() == nil {
			log.Warn("checkpointing sqlite", "err", err)
		}
	})
}

// keepStatistics refreshes SQLite's planner statistics as the read models
// grow (the projector is their only writer): at start, then every few
// minutes. Each run analyzes only the tables whose statistics went stale.
func keepStatistics(ctx context.Context, db *store.DB, log *slog.Logger) {
	every(ctx, 5*time.Minute, func() {
		if err := db.Optimize(ctx); err != nil && ctx.Err() == nil {
			log.Warn("refreshing sqlite planner statistics", "err", err)
		}
	})
}

// every runs fn at once, then every interval until ctx ends.
func every(ctx context.Context, interval time.Duration, fn func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		fn()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
