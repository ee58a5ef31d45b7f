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

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/rueidis"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/gamify/boost/api"
	"github.com/gamify/boost/apikeys"
	"github.com/gamify/boost/bus"
	"github.com/gamify/boost/commands"
	"github.com/gamify/boost/config"
	"github.com/gamify/boost/dashboard"
	"github.com/gamify/boost/health"
	"github.com/gamify/boost/metrics"
	"github.com/gamify/boost/processing"
	"github.com/gamify/boost/projections"
	"github.com/gamify/boost/quarantine"
	"github.com/gamify/boost/queries"
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
	ExtraChecks []api.Check

	mu      sync.Mutex
	conns   []*nats.Conn
	auth    *apikeys.Authenticator
	addr    string
	ready   chan struct{}
	cmdBus  *commands.Bus
	queries *queries.Queries
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
// stopped: HTTP first (in-flight requests finish), then command handlers,
// the bridge and the projections, each finishing the batch in hand.
func (n *Node) Run(ctx context.Context) error {
	ready := n.readyChan()
	if n.Health == nil {
		n.Health = health.NewBoard(n.Config.StallAfter)
		if err := n.Metrics.Registry.Register(n.Health.Collector()); err != nil {
			return fmt.Errorf("registering stage metrics: %w", err)
		}
	}
	names := bus.Names{Prefix: n.Config.NATSPrefix}
	wlog := watermill.NewSlogLoggerWithLevelMapping(n.Log.With("component", "watermill"), map[slog.Level]slog.Level{
		slog.LevelInfo: slog.LevelDebug,
	})
	checks := append([]api.Check{}, n.ExtraChecks...)

	need := NeedsOf(n.Roles)
	var js jetstream.JetStream
	if need.NATS {
		if n.NATS == nil {
			return errors.New("roles need NATS but no connection was given")
		}
		var err error
		js, err = jetstream.New(n.NATS)
		if err != nil {
			return fmt.Errorf("jetstream: %w", err)
		}
		if err := waitFor(ctx, n.Log, "creating JetStream streams", func() error {
			return bus.EnsureStreams(ctx, js, names, bus.StreamOptions{Replicas: n.Config.NATSReplicas,
				TrackedMaxAge: n.Config.TrackedMaxAge})
		}); err != nil {
			return err
		}
		checks = append(checks, api.Check{Name: "jetstream", Probe: func(ctx context.Context) error {
			return bus.PingJetStream(ctx, js)
		}})
	}
	if need.DB {
		if n.DB == nil {
			return errors.New("roles need a database but none was given")
		}
		checks = append(checks, api.Check{Name: "database", Probe: n.DB.Ping})
	}
	if n.Redis != nil {
		checks = append(checks, api.Check{Name: "redis", Probe: func(ctx context.Context) error {
			if err := n.Redis.Do(ctx, n.Redis.B().Ping().Build()).Error(); err != nil {
				return fmt.Errorf("redis: %w", err)
			}
			return nil
		}})
	}
	var kafka *kgo.Client
	if need.Kafka {
		var err error
		kafka, err = bus.NewKafkaClient(n.Config.KafkaBrokers, kgo.ProducerLinger(time.Millisecond))
		if err != nil {
			return err
		}
		defer kafka.Close()
		if err := waitFor(ctx, n.Log, "creating Kafka topics", func() error {
			return bus.EnsureTopics(ctx, kafka, n.Config.Topics)
		}); err != nil {
			return err
		}
		checks = append(checks, api.Check{Name: "kafka", Probe: func(ctx context.Context) error {
			return bus.PingKafka(ctx, kafka)
		}})
	}

	usageDone := make(chan struct{})
	authFailures := ratelimit.NewFailures(n.Config.AuthFailures,
		n.Config.AuthFailureWindow/time.Duration(max(n.Config.AuthFailures, 1)))
	apiCfg := api.Config{
		Version: n.Version, Roles: n.Roles, Checks: checks, Metrics: n.Metrics, Log: n.Log,
		AdminTokenSHA256: n.Config.AdminTokenSHA256, ConsistencyTimeout: n.Config.ConsistencyTimeout,
		Health: n.Health, AuthFailures: authFailures,
	}
	if n.has(RoleAPI) {
		pubConn, err := n.conn(ctx, "api")
		if err != nil {
			return err
		}
		pub, err := bus.NewPublisher(pubConn, 5*time.Second)
		if err != nil {
			return err
		}
		cb, err := commands.NewBus(pub, names, wlog)
		if err != nil {
			return err
		}
		q := queries.New(n.DB)
		n.mu.Lock()
		n.cmdBus, n.queries = cb, q
		n.mu.Unlock()
		apiCfg.Commands, apiCfg.Queries = cb, q
		n.auth = apikeys.New(keySource{q}, n.keyCache(), n.Log)
		watchCtx, stopWatch := context.WithCancel(ctx)
		defer stopWatch()
		go watchRevocations(watchCtx, js, names, n.auth, n.Log.With("role", RoleAPI))
		usage := apikeys.NewUsageRecorder(n.Log)
		apiCfg.Ingest = &api.IngestConfig{Auth: n.auth, Usage: usage, Limiter: n.limiter()}
		qs, closeQuarantine, err := n.quarantineService(ctx, pubConn, names)
		if err != nil {
			return err
		}
		defer closeQuarantine()
		apiCfg.Quarantine = qs
		// Stopped (with a last flush) whenever Run returns, also when a
		// role failed and ctx is still live.
		usageCtx, stopUsage := context.WithCancel(ctx)
		defer func() { stopUsage(); <-usageDone }()
		go func() {
			defer close(usageDone)
			usage.Run(usageCtx, n.Config.KeyUsageInterval, func(ctx context.Context, us []apikeys.Usage) error {
				return sendUsage(ctx, cb, us)
			})
		}()
	}

	// Background roles run under their own context so HTTP can be drained
	// before they stop.
	rolesCtx, stopRoles := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRoles()
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	start := func(name string, fn func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(rolesCtx); err != nil && !errors.Is(err, context.Canceled) {
				errc <- fmt.Errorf("%s: %w", name, err)
			}
		}()
	}

	if n.has(RoleWorker) {
		router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 15 * time.Second}, wlog)
		if err != nil {
			return fmt.Errorf("creating router: %w", err)
		}
		workerConn, err := n.conn(ctx, "worker")
		if err != nil {
			return err
		}
		wlogger := n.Log.With("role", RoleWorker)
		quarantine, err := bus.NewQuarantine(workerConn, names)
		if err != nil {
			return err
		}
		cmdStage := n.Health.Stage(health.StageCommands)
		isolator, err := bus.NewIsolator(health.StageCommands, cmdStage, quarantine, wlogger,
			bus.WithTransient(commands.Transient))
		if err != nil {
			return err
		}
		sub, err := bus.NewSubscriber(workerConn, names.CommandStream(), names.WorkerQueue(), n.Config.WorkerParallelism, wlog,
			bus.WithUndecodable(bus.QuarantineUndecodable(health.StageCommands, cmdStage, quarantine, wlogger)))
		if err != nil {
			return err
		}
		store, err := bus.NewEventStore(ctx, workerConn, names)
		if err != nil {
			return err
		}
		h := commands.NewHandlers(store, names, wlogger, n.Metrics)
		if err := commands.NewProcessor(router, sub, names, h, wlog, isolator); err != nil {
			return err
		}
		start(RoleWorker, func(ctx context.Context) error {
			defer sub.Close()
			return router.Run(ctx)
		})

		procRouter, err := message.NewRouter(message.RouterConfig{CloseTimeout: 15 * time.Second}, wlog)
		if err != nil {
			return fmt.Errorf("creating router: %w", err)
		}
		procConn, err := n.conn(ctx, "processor")
		if err != nil {
			return err
		}
		procStage := n.Health.Stage(health.StageProcessor)
		procIsolator, err := bus.NewIsolator(health.StageProcessor, procStage, quarantine, wlogger,
			bus.WithTransient(processing.Transient))
		if err != nil {
			return err
		}
		procSub, err := bus.NewSubscriber(procConn, names.TrackedStream(), names.ProcessorQueue(), n.Config.ProcessorParallelism, wlog,
			bus.WithUndecodable(bus.QuarantineUndecodable(health.StageProcessor, procStage, quarantine, wlogger)))
		if err != nil {
			return err
		}
		procStore, err := bus.NewEventStore(ctx, procConn, names)
		if err != nil {
			return err
		}
		proc := processing.New(procStore, names, n.Metrics, wlogger)
		if err := proc.Attach(procRouter, procSub, names.TrackedSubjects(), wlog, procIsolator); err != nil {
			return err
		}
		start(RoleWorker+"/backlog", func(ctx context.Context) error {
			go bus.WatchBacklog(ctx, js, names.TrackedStream(), func(c string) bool {
				return strings.HasPrefix(c, names.ProcessorQueue())
			}, procStage, 2*time.Second)
			bus.WatchBacklog(ctx, js, names.CommandStream(), func(string) bool { return true }, cmdStage, 2*time.Second)
			return nil
		})
		start(RoleWorker+"/processor", func(ctx context.Context) error {
			defer procSub.Close()
			return procRouter.Run(ctx)
		})
		for _, r := range []*message.Router{router, procRouter} {
			select {
			case <-r.Running():
			case <-ctx.Done():
				return nil
			}
		}
	}
	if n.has(RoleBridge) {
		bridgeConn, err := n.conn(ctx, "bridge")
		if err != nil {
			return err
		}
		quarantine, err := bus.NewQuarantine(bridgeConn, names)
		if err != nil {
			return err
		}
		b, err := bus.NewBridge(bridgeConn, names, bus.BridgeConfig{Brokers: n.Config.KafkaBrokers, Topics: n.Config.Topics,
			Replicas: n.Config.NATSReplicas},
			quarantine, n.Health.Stage(health.StageBridge), n.Log.With("role", RoleBridge), n.Metrics)
		if err != nil {
			return err
		}
		start(RoleBridge, func(ctx context.Context) error {
			defer b.Close()
			return b.Run(ctx)
		})
	}
	if n.has(RoleProjector) {
		for _, p := range Projections(n.Config, n.revocations()) {
			group := n.Config.NATSPrefix + ".projection." + p.Name()
			r := projections.NewRunner(n.DB, n.Config.KafkaBrokers, group, p, n.Log.With("role", RoleProjector), n.Metrics)
			r.Stage = n.Health.Stage(projections.StageName(p.Name()))
			start(RoleProjector+"/"+p.Name(), r.Run)
		}
		if n.DB.Dialect == store.SQLite {
			start(RoleProjector+"/statistics", func(ctx context.Context) error {
				keepStatistics(ctx, n.DB, n.Log.With("role", RoleProjector))
				return nil
			})
		}
	}

	ln := n.Listener
	if ln == nil {
		var err error
		addr := net.JoinHostPort(n.Config.Bind, strconv.Itoa(n.Config.Port))
		ln, err = net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("listening on %s: %w", addr, err)
		}
	}
	handler := api.New(apiCfg)
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	if n.has(RoleAPI) {
		dash, closeDash, err := n.dashboard(ctx, handler, apiCfg, js, kafka, names)
		if err != nil {
			return err
		}
		defer closeDash()
		handler.Mount("/dashboard", dash)
		handler.AcceptSessions(dash.SignedIn)
		srv.RegisterOnShutdown(dash.Shutdown)
	}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("http: %w", err)
		}
	}()
	n.mu.Lock()
	n.addr = ln.Addr().String()
	close(ready)
	n.mu.Unlock()
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

// dashboard builds the admin web app over the API's own operations, a
// live feed from the pipeline's subjects and the health numbers.
func (n *Node) dashboard(ctx context.Context, srv *api.Server, apiCfg api.Config, js jetstream.JetStream,
	kafka *kgo.Client, names bus.Names,
) (*dashboard.Dashboard, func(), error) {
	closeFn := func() {}
	feedConn, err := n.conn(ctx, "dashboard")
	if err != nil {
		return nil, nil, err
	}
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
	health := &dashboard.Health{Checks: apiCfg.Checks, Registry: n.Metrics.Registry, JetStream: js, Names: names,
		Queries: apiCfg.Queries, Board: n.Health, StallAfter: n.Config.StallAfter}
	var q dashboard.Quarantine
	if qs, ok := apiCfg.Quarantine.(*quarantine.Service); ok && qs != nil {
		health.Quarantine, q = qs, qs
	}
	if kafka != nil {
		health.Kafka = kadm.NewClient(kafka)
	}
	for _, p := range Projections(n.Config, nil) {
		health.Projections = append(health.Projections, dashboard.ProjectionTopics{Name: p.Name(), Topics: p.Topics()})
	}
	d, err := dashboard.New(dashboard.Config{AdminTokenSHA256: n.Config.AdminTokenSHA256,
		SessionTTL: n.Config.DashboardSessionTTL, Manage: srv, Queries: apiCfg.Queries,
		Feed: dashboard.NewNATSFeed(feedConn, names), Health: health, Quarantine: q, AuthFailures: apiCfg.AuthFailures,
		Log: n.Log.With("component", "dashboard"), Version: n.Version})
	if err != nil {
		closeFn()
		return nil, nil, err
	}
	return d, closeFn, nil
}

// quarantineService lists the records every stage set aside and
// reprocesses one by handing it to its stage's own code in this process:
// a projection's applied to the read model, a command republished to the
// workers, a tracked event run through the processor's rules, a message
// the bridge could not forward produced to Kafka as the bridge would.
func (n *Node) quarantineService(ctx context.Context, nc *nats.Conn, names bus.Names) (*quarantine.Service, func(), error) {
	msgs, err := bus.NewQuarantine(nc, names)
	if err != nil {
		return nil, nil, err
	}
	outcomes, err := bus.NewEventStore(ctx, nc, names)
	if err != nil {
		return nil, nil, err
	}
	log := n.Log.With("component", "quarantine")
	proc := processing.New(outcomes, names, n.Metrics, log)
	bridge, err := bus.NewBridge(nc, names, bus.BridgeConfig{Brokers: n.Config.KafkaBrokers, Topics: n.Config.Topics},
		msgs, health.NewBoard(0).Stage(health.StageBridge), log, n.Metrics)
	if err != nil {
		return nil, nil, err
	}
	svc, err := quarantine.New(n.DB, Projections(n.Config, n.revocations()), msgs, map[string]quarantine.Reprocessor{
		health.StageCommands: msgs.Republish,
		health.StageProcessor: func(ctx context.Context, m bus.QuarantinedMessage) error {
			return proc.Reprocess(ctx, m.Data)
		},
		health.StageBridge: bridge.Reprocess,
	})
	if err != nil {
		bridge.Close()
		return nil, nil, err
	}
	return svc, bridge.Close, nil
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

// CommandBus is the node's command bus (api role), for seeding.
func (n *Node) CommandBus() *commands.Bus {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cmdBus
}

// Queries is the node's read-model queries (api role), for seeding.
func (n *Node) Queries() *queries.Queries {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.queries
}

// Projections lists every projection this build runs; revoked is told of
// key revocations (nil: nobody to tell).
func Projections(cfg config.Config, revoked projections.KeyRevocations) []projections.Projection {
	return []projections.Projection{
		projections.NewTenancy(cfg.Topics.Tenancy, revoked),
		projections.NewEvents(cfg.Topics.Events),
	}
}

// waitFor retries fn until it succeeds or ctx ends, so roles started before
// their infrastructure wait for it instead of crashing.
func waitFor(ctx context.Context, log *slog.Logger, what string, fn func() error) error {
	for attempt := 0; ; attempt++ {
		err := fn()
		if err == nil {
			return nil
		}
		if attempt%10 == 0 {
			log.Warn(what+" failed; retrying", "attempt", attempt, "err", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", what, errors.Join(ctx.Err(), err))
		case <-time.After(min(200*time.Millisecond<<min(attempt, 4), 3*time.Second)):
		}
	}
}

// keepStatistics refreshes SQLite's planner statistics as the read models
// grow (the projector is their only writer): at start, then every few
// minutes. Each run analyzes only the tables whose statistics went stale.
func keepStatistics(ctx context.Context, db *store.DB, log *slog.Logger) {
	t := time.NewTicker(5 * time.Minute)
	defer t.Stop()
	for {
		if err := db.Optimize(ctx); err != nil && ctx.Err() == nil {
			log.Warn("refreshing sqlite planner statistics", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
