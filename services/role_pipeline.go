package services

import (
	"context"
	"os"
	"strconv"
	"sync"

	"github.com/nats-io/nats.go"

	"github.com/gamify/boost/bus"
	"github.com/gamify/boost/health"
	"github.com/gamify/boost/projections"
	"github.com/gamify/boost/store"
)

// bridgeRole copies the event and tracked streams to Kafka.
type bridgeRole struct{ b *bus.Bridge }

func newBridgeRole(n *Node, inf *infra, nc *nats.Conn) (*bridgeRole, error) {
	q, err := bus.NewQuarantine(nc, inf.names)
	if err != nil {
		return nil, err
	}
	b, err := bus.NewBridge(nc, inf.names, bus.BridgeConfig{Brokers: n.Config.KafkaBrokers, Topics: n.Config.Topics,
		Replicas: n.Config.NATSReplicas}, q, n.Health.Stage(health.StageBridge), n.Log.With("role", RoleBridge), n.Metrics)
	if err != nil {
		return nil, err
	}
	return &bridgeRole{b}, nil
}

func (r *bridgeRole) Name() string { return RoleBridge }

func (r *bridgeRole) Run(ctx context.Context) error {
	defer r.b.Close()
	return r.b.Run(ctx)
}

// projectorRole runs every projection's runner (and, on SQLite, keeps the
// planner's statistics fresh: the projector is the only writer).
type projectorRole struct {
	runners []*projections.Runner
	db      *store.DB
	node    *Node
}

func newProjectorRole(n *Node) (*projectorRole, error) {
	r := &projectorRole{db: n.DB, node: n}
	for _, p := range Projections(n.Config, n.revocations()) {
		runner, err := projections.NewRunner(projections.RunnerConfig{DB: n.DB, Brokers: n.Config.KafkaBrokers,
			Group: n.Config.NATSPrefix + ".projection." + p.Name(), Projection: p, Log: n.Log.With("role", RoleProjector),
			Metrics: n.Metrics, Stage: n.Health.Stage(projections.StageName(p.Name())), InstanceID: n.instanceID()})
		if err != nil {
			return nil, err
		}
		r.runners = append(r.runners, runner)
	}
	return r, nil
}

func (r *projectorRole) Name() string { return RoleProjector }

// instanceID is the projector's static member id: BOOST_INSTANCE_ID, else
// the host name and the port, which tell apart the projectors of a host
// and stay the same across a restart. None (dynamic membership) when the
// port is picked at random, as tests do: it would not survive a restart.
func (n *Node) instanceID() string {
	if n.Config.InstanceID != "" {
		return n.Config.InstanceID
	}
	if n.Config.Port == 0 {
		return ""
	}
	host, err := os.Hostname()
	if err != nil {
		return ""
	}
	return host + ":" + strconv.Itoa(n.Config.Port)
}

// Run runs the projections until ctx ends, each finishing its batch; the
// first to fail stops them all.
func (r *projectorRole) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for _, runner := range r.runners {
		wg.Go(func() {
			if err := runner.Run(ctx); err != nil {
				cancel(err)
			}
		})
	}
	if r.db.Dialect == store.SQLite {
		wg.Go(func() { keepStatistics(ctx, r.db, r.node.Log.With("role", RoleProjector)) })
		wg.Go(func() { keepWALShort(ctx, r.db, r.node.Log.With("role", RoleProjector)) })
	}
	wg.Wait()
	if err := context.Cause(ctx); err != context.Canceled {
		return err
	}
	return nil
}
