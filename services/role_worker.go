package services

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"

	"github.com/gamify/boost/bus"
	"github.com/gamify/boost/commands"
	"github.com/gamify/boost/health"
	"github.com/gamify/boost/processing"
)

// routerRole is a Watermill router over one stream's consumers: the
// command handlers' or the event processor's.
type routerRole struct {
	name    string
	router  *message.Router
	sub     *bus.Subscriber
	backlog func(ctx context.Context)
}

func (r *routerRole) Name() string { return r.name }

// Run handles messages until ctx ends; the handlers in flight finish.
func (r *routerRole) Run(ctx context.Context) error {
	defer r.sub.Close()
	go r.backlog(ctx)
	return r.router.Run(ctx)
}

// running is closed once the router handles messages.
func (r *routerRole) running() chan struct{} { return r.router.Running() }

// stageIsolation is a write-side stage's quarantine, isolator and
// subscriber, built alike for the command handlers and the processor.
func (n *Node) stageIsolation(nc *nats.Conn, inf *infra, stage, stream, queue string, parallel int,
	transient func(error) bool,
) (*bus.Subscriber, *bus.Isolator, *health.Stage, error) {
	log := n.Log.With("stage", stage)
	q, err := bus.NewQuarantine(nc, inf.names)
	if err != nil {
		return nil, nil, nil, err
	}
	h := n.Health.Stage(stage)
	iso, err := bus.NewIsolator(stage, h, q, log, bus.WithTransient(transient))
	if err != nil {
		return nil, nil, nil, err
	}
	sub, err := bus.NewSubscriber(nc, stream, queue, parallel, inf.wlog,
		bus.WithUndecodable(bus.QuarantineUndecodable(stage, h, q, log)))
	if err != nil {
		return nil, nil, nil, err
	}
	return sub, iso, h, nil
}

// newCommandsRole runs the command handlers: one durable consumer per
// command type, shared by every worker process.
func newCommandsRole(ctx context.Context, n *Node, inf *infra, nc *nats.Conn) (*routerRole, error) {
	sub, iso, stage, err := n.stageIsolation(nc, inf, health.StageCommands, inf.names.CommandStream(), inf.names.WorkerQueue(),
		n.Config.WorkerParallelism, commands.Transient)
	if err != nil {
		return nil, err
	}
	store, err := bus.NewEventStore(ctx, nc, inf.names)
	if err != nil {
		return nil, err
	}
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 15 * time.Second}, inf.wlog)
	if err != nil {
		return nil, fmt.Errorf("creating router: %w", err)
	}
	// The processor's inline rules run as events are appended (the rest in
	// the processor role): most events get their outcome in the same round
	// of acks as themselves.
	settler, err := processing.New(processing.Config{Log: store, Subjects: inf.names, Metrics: n.Metrics,
		Logger: n.Log.With("role", RoleWorker)})
	if err != nil {
		return nil, err
	}
	h := commands.NewHandlers(store, inf.names, settler, n.Log.With("role", RoleWorker))
	if err := commands.NewProcessor(router, sub, inf.names, h, inf.wlog, iso, n.Metrics); err != nil {
		return nil, err
	}
	return &routerRole{name: RoleWorker + "/commands", router: router, sub: sub, backlog: func(ctx context.Context) {
		go bus.TrimHandled(ctx, inf.js, inf.names.CommandStream(), bus.TrimInterval, n.Log.With("role", RoleWorker))
		bus.WatchBacklog(ctx, inf.js, inf.names.CommandStream(), func(string) bool { return true }, stage, 2*time.Second)
	}}, nil
}

// newProcessorRole runs the event processor's rules on every tracked event.
func newProcessorRole(ctx context.Context, n *Node, inf *infra, nc *nats.Conn) (*routerRole, error) {
	sub, iso, stage, err := n.stageIsolation(nc, inf, health.StageProcessor, inf.names.TrackedStream(),
		inf.names.ProcessorQueue(), n.Config.ProcessorParallelism, processing.Transient)
	if err != nil {
		return nil, err
	}
	store, err := bus.NewEventStore(ctx, nc, inf.names)
	if err != nil {
		return nil, err
	}
	proc, err := processing.New(processing.Config{Log: store, Subjects: inf.names, Metrics: n.Metrics,
		Logger: n.Log.With("role", RoleWorker)})
	if err != nil {
		return nil, err
	}
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 15 * time.Second}, inf.wlog)
	if err != nil {
		return nil, fmt.Errorf("creating router: %w", err)
	}
	if err := proc.Attach(router, sub, inf.names.TrackedSubjects(), inf.wlog, iso); err != nil {
		return nil, err
	}
	return &routerRole{name: RoleWorker + "/processor", router: router, sub: sub, backlog: func(ctx context.Context) {
		bus.WatchBacklog(ctx, inf.js, inf.names.TrackedStream(), func(c string) bool {
			return strings.HasPrefix(c, inf.names.ProcessorQueue())
		}, stage, 2*time.Second)
	}}, nil
}
