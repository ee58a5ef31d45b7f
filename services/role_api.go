package services

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/gamify/boost/apikeys"
	"github.com/gamify/boost/app"
	"github.com/gamify/boost/bus"
	"github.com/gamify/boost/commands"
	"github.com/gamify/boost/health"
	"github.com/gamify/boost/processing"
	"github.com/gamify/boost/quarantine"
	"github.com/gamify/boost/queries"
)

// apiRole is the use cases the HTTP API and the dashboard serve, and what
// keeps them current: the key-usage flush and the revocation watcher.
type apiRole struct {
	app     *app.Application
	bus     *commands.Bus
	auth    *apikeys.Authenticator
	usage   *apikeys.UsageRecorder
	inf     *infra
	node    *Node
	cleanup func()
}

// newAPIRole builds the application over a command bus on nc and the read
// models.
func newAPIRole(ctx context.Context, n *Node, inf *infra, nc *nats.Conn) (*apiRole, error) {
	pub, err := bus.NewPublisher(nc, 5*time.Second)
	if err != nil {
		return nil, err
	}
	cb, err := commands.NewBus(pub, inf.names, inf.wlog)
	if err != nil {
		return nil, err
	}
	q := queries.New(n.DB)
	r := &apiRole{bus: cb, auth: apikeys.New(keySource{q}, n.keyCache(), n.Log), usage: apikeys.NewUsageRecorder(n.Log),
		inf: inf, node: n}
	qs, closeQuarantine, err := n.quarantineService(ctx, nc, inf.names, r.auth)
	if err != nil {
		return nil, err
	}
	r.cleanup = closeQuarantine
	r.app, err = app.New(app.Config{Commands: cb, Read: q, Auth: r.auth, Usage: r.usage, Limiter: n.limiter(),
		Quarantine: qs, ConsistencyTimeout: n.Config.ConsistencyTimeout, TrackLinger: n.Config.TrackLinger, Log: n.Log.With("role", RoleAPI), Metrics: n.Metrics})
	if err != nil {
		closeQuarantine()
		return nil, err
	}
	return r, nil
}

func (r *apiRole) Name() string { return RoleAPI }

// Run flushes key usage every interval and watches revocations until ctx
// ends, then flushes what is left.
func (r *apiRole) Run(ctx context.Context) error {
	defer r.cleanup()
	go watchRevocations(ctx, r.inf.js, r.inf.names, r.auth, r.node.Log.With("role", RoleAPI))
	r.usage.Run(ctx, r.node.Config.KeyUsageInterval, func(ctx context.Context, us []apikeys.Usage) error {
		return sendUsage(ctx, r.bus, us)
	})
	return nil
}

// quarantineService lists the records every stage set aside and
// reprocesses one by handing it to its stage's own code in this process:
// a projection's applied to the read model, a command republished to the
// workers, a tracked event run through the processor's rules, a message
// the bridge could not forward produced to Kafka as the bridge would.
func (n *Node) quarantineService(ctx context.Context, nc *nats.Conn, names bus.Names, auth *apikeys.Authenticator) (*quarantine.Service, func(), error) {
	msgs, err := bus.NewQuarantine(nc, names)
	if err != nil {
		return nil, nil, err
	}
	outcomes, err := bus.NewEventStore(ctx, nc, names)
	if err != nil {
		return nil, nil, err
	}
	log := n.Log.With("component", "quarantine")
	proc, err := processing.New(processing.Config{Log: outcomes, Subjects: names, Metrics: n.Metrics, Logger: log})
	if err != nil {
		return nil, nil, err
	}
	bridge, err := bus.NewBridge(nc, names, bus.BridgeConfig{Brokers: n.Config.KafkaBrokers, Topics: n.Config.Topics},
		msgs, health.NewBoard(0).Stage(health.StageBridge), log, n.Metrics)
	if err != nil {
		return nil, nil, err
	}
	svc, err := quarantine.New(n.DB, Projections(n.Config, auth), msgs, map[string]quarantine.Reprocessor{
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

// Seed creates a default organization and project with one publishable
// and one secret key, through the same use cases the API serves, and waits
// until the read models show them.
func Seed(ctx context.Context, a *app.Application) (*Seeded, error) {
	if a == nil {
		return nil, errors.New("seeding needs the api role")
	}
	org, err := a.Commands.CreateOrganization.Handle(ctx, app.CreateOrganization{Name: "Default organization"})
	if err != nil {
		return nil, err
	}
	if err := await(ctx, func() error { _, err := a.Queries.Read.Organization(ctx, org.Value.ID); return err }); err != nil {
		return nil, err
	}
	p, err := a.Commands.CreateProject.Handle(ctx, app.CreateProject{OrganizationID: org.Value.ID, Name: "Default project"})
	if err != nil {
		return nil, err
	}
	if err := await(ctx, func() error { _, err := a.Queries.Read.Project(ctx, p.Value.ID); return err }); err != nil {
		return nil, err
	}
	s := &Seeded{OrganizationID: org.Value.ID, ProjectID: p.Value.ID}
	for _, k := range []struct {
		t   app.CreateKey
		dst *string
	}{
		{app.CreateKey{ProjectID: s.ProjectID, Name: "Default publishable key", Type: "publishable"}, &s.PublishableKey},
		{app.CreateKey{ProjectID: s.ProjectID, Name: "Default secret key", Type: "secret"}, &s.SecretKey},
	} {
		key, err := a.Commands.CreateKey.Handle(ctx, k.t)
		if err != nil {
			return nil, err
		}
		if err := await(ctx, func() error { _, err := a.Queries.Read.APIKey(ctx, s.ProjectID, key.Value.ID); return err }); err != nil {
			return nil, err
		}
		*k.dst = key.Plaintext
	}
	return s, nil
}
