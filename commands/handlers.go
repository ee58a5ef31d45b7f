package commands

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/components/cqrs"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/gamify/boost/bus"
	"github.com/gamify/boost/domain"
)

// EventStore is the append-only log the handlers decide against.
type EventStore interface {
	// Load returns an aggregate's events and its version (0: none yet).
	Load(ctx context.Context, aggregateType, id string) ([]domain.Event, uint64, error)
	// Append stores events if the aggregate is still at expectedVersion,
	// and fails with bus.ErrConcurrency otherwise.
	Append(ctx context.Context, aggregateType, id string, expectedVersion uint64, events ...domain.Event) error
}

// Metrics counts handled commands by outcome.
type Metrics interface {
	CommandHandled(command, outcome string)
}

// Rejection is a command that is well-formed but cannot be applied (its
// project does not exist, its key is unknown). It is acknowledged, logged
// and counted, never retried.
type Rejection struct{ Reason string }

func (r *Rejection) Error() string { return "rejected: " + r.Reason }

// Handlers decides on commands. Each handler is idempotent: a redelivered
// command finds its effect already in the history and appends nothing. It
// records how its command ended (applied, noop, rejected) in its context;
// the processor's one decorator counts and logs it.
type Handlers struct {
	store      EventStore
	trackedLog TrackedLog
	subjects   Subjects
	settler    Settler
	log        *slog.Logger
}

// Store is the event store the handlers need: aggregates with optimistic
// concurrency, and plain appends for tracked events.
type Store interface {
	EventStore
	TrackedLog
}

// NewHandlers returns the command handlers over store. settler, when
// not nil, decides the outcome of the tracked events whose rules allow it
// as they are appended (processing.Processor); without it the processor
// decides every outcome.
func NewHandlers(store Store, subjects Subjects, settler Settler, log *slog.Logger) *Handlers {
	return &Handlers{store: store, trackedLog: store, subjects: subjects, settler: settler, log: log}
}

const maxConcurrencyRetries = 8

// decide loads one aggregate, asks fn what to append, and appends it with
// optimistic concurrency, deciding again on a conflict.
func (h *Handlers) decide(ctx context.Context, aggregateType, id string,
	fn func(history []domain.Event) ([]domain.Event, error),
) error {
	for attempt := 0; attempt < maxConcurrencyRetries; attempt++ {
		history, version, err := h.store.Load(ctx, aggregateType, id)
		if err != nil {
			return err
		}
		events, err := fn(history)
		var rej *Rejection
		var verr *ValidationError
		if errors.As(err, &rej) || errors.As(err, &verr) {
			record(ctx, outcomeRejected, err.Error())
			return nil
		}
		if err != nil {
			return err
		}
		if len(events) == 0 {
			record(ctx, outcomeNoop, "")
			return nil
		}
		err = h.store.Append(ctx, aggregateType, id, version, events...)
		if errors.Is(err, bus.ErrConcurrency) {
			continue
		}
		if err != nil {
			return err
		}
		for _, e := range events {
			h.log.InfoContext(ctx, "event appended", "event", e.Type, "eventId", e.ID,
				"aggregate", id, "correlationId", e.CorrelationID)
		}
		return nil
	}
	return fmt.Errorf("%w: %s %s: still conflicting after %d attempts", bus.ErrConcurrency, aggregateType, id,
		maxConcurrencyRetries)
}

func meta(h Header, aggregateType, aggregateID, orgID, projectID string) domain.Meta {
	return domain.Meta{
		AggregateType: aggregateType, AggregateID: aggregateID,
		OrganizationID: orgID, ProjectID: projectID,
		CorrelationID: h.CorrelationID, CausationID: h.CommandID, OccurredAt: h.IssuedAt,
	}
}

func one(e domain.Event, err error) ([]domain.Event, error) {
	if err != nil {
		return nil, err
	}
	return []domain.Event{e}, nil
}

// CreateOrganization appends OrganizationCreated unless it exists.
func (h *Handlers) CreateOrganization(ctx context.Context, c *CreateOrganization) error {
	if err := c.Validate(); err != nil {
		return h.reject(ctx, err)
	}
	return h.decide(ctx, domain.AggregateOrganization, c.OrganizationID,
		func(history []domain.Event) ([]domain.Event, error) {
			if foldOrganization(history).exists {
				return nil, nil
			}
			return one(domain.NewEvent(domain.OrganizationCreated,
				meta(c.Header, domain.AggregateOrganization, c.OrganizationID, c.OrganizationID, ""),
				domain.OrganizationCreatedData{Name: c.Name}))
		})
}

// CreateProject appends ProjectCreated if its organization exists.
func (h *Handlers) CreateProject(ctx context.Context, c *CreateProject) error {
	if err := c.Validate(); err != nil {
		return h.reject(ctx, err)
	}
	orgHistory, _, err := h.store.Load(ctx, domain.AggregateOrganization, c.OrganizationID)
	if err != nil {
		return err
	}
	orgExists := foldOrganization(orgHistory).exists
	return h.decide(ctx, domain.AggregateProject, c.ProjectID,
		func(history []domain.Event) ([]domain.Event, error) {
			p, err := foldProject(history)
			if err != nil {
				return nil, err
			}
			if p.exists {
				return nil, nil
			}
			if !orgExists {
				return nil, &Rejection{"organization " + c.OrganizationID + " does not exist"}
			}
			return one(domain.NewEvent(domain.ProjectCreated,
				meta(c.Header, domain.AggregateProject, c.ProjectID, c.OrganizationID, c.ProjectID),
				domain.ProjectCreatedData{Name: c.Name}))
		})
}

// CreateKey appends ApiKeyCreated if the project exists and the key id is new.
func (h *Handlers) CreateKey(ctx context.Context, c *CreateKey) error {
	if err := c.Validate(); err != nil {
		return h.reject(ctx, err)
	}
	return h.decide(ctx, domain.AggregateProject, c.ProjectID,
		func(history []domain.Event) ([]domain.Event, error) {
			p, err := foldProject(history)
			if err != nil {
				return nil, err
			}
			if !p.exists {
				return nil, &Rejection{"project " + c.ProjectID + " does not exist"}
			}
			if _, ok := p.keys[c.KeyID]; ok {
				return nil, nil
			}
			return one(domain.NewEvent(domain.APIKeyCreated,
				meta(c.Header, domain.AggregateProject, c.ProjectID, p.organizationID, c.ProjectID),
				domain.APIKeyCreatedData{KeyID: c.KeyID, Name: c.Name, Type: c.Type, Hash: c.Hash, Prefix: c.Prefix}))
		})
}

// RevokeKey appends ApiKeyRevoked once; revoking again is a no-op.
func (h *Handlers) RevokeKey(ctx context.Context, c *RevokeKey) error {
	if err := c.Validate(); err != nil {
		return h.reject(ctx, err)
	}
	return h.decide(ctx, domain.AggregateProject, c.ProjectID,
		func(history []domain.Event) ([]domain.Event, error) {
			p, err := foldProject(history)
			if err != nil {
				return nil, err
			}
			k, ok := p.keys[c.KeyID]
			if !p.exists || !ok {
				return nil, &Rejection{"key " + c.KeyID + " does not exist in project " + c.ProjectID}
			}
			if k.revoked {
				return nil, nil
			}
			return one(domain.NewEvent(domain.APIKeyRevoked,
				meta(c.Header, domain.AggregateProject, c.ProjectID, p.organizationID, c.ProjectID),
				domain.APIKeyRevokedData{KeyID: c.KeyID, Hash: k.hash}))
		})
}

// reject acknowledges a command that can never be applied.
func (h *Handlers) reject(ctx context.Context, err error) error {
	record(ctx, outcomeRejected, err.Error())
	return nil
}

// handlers is every command handler, named for its command's type (the
// last token of its subject), so a name is spelled nowhere else.
func handlers(h *Handlers) []cqrs.CommandHandler {
	return []cqrs.CommandHandler{
		handler(h.CreateOrganization), handler(h.CreateProject), handler(h.CreateKey), handler(h.RevokeKey),
		handler(h.TrackEvent), handler(h.TrackEvents), handler(h.IdentifyUser), handler(h.RecordKeyUsage),
	}
}

func handler[C any](fn func(context.Context, *C) error) cqrs.CommandHandler {
	return cqrs.NewCommandHandler(commandName(new(C)), fn)
}

// Names lists the commands NewProcessor handles: one durable consumer each.
func Names() []string {
	var names []string
	for _, h := range handlers(nil) {
		names = append(names, h.HandlerName())
	}
	return names
}

// NewProcessor registers the handlers on a Watermill router: every command
// type gets its own durable JetStream consumer. isolator retries a failing
// command in process, hands it back for redelivery while a dependency is
// down, and quarantines one that keeps failing. Each handled command is
// counted by outcome and logged once, here.
func NewProcessor(router *message.Router, sub message.Subscriber, names bus.Names, h *Handlers,
	logger watermill.LoggerAdapter, isolator *bus.Isolator, m Metrics,
) error {
	router.AddMiddleware(isolator.Middleware)
	proc, err := cqrs.NewCommandProcessorWithConfig(router, cqrs.CommandProcessorConfig{
		GenerateSubscribeTopic: func(p cqrs.CommandProcessorGenerateSubscribeTopicParams) (string, error) {
			return names.CommandSubject(p.CommandName), nil
		},
		SubscriberConstructor: func(cqrs.CommandProcessorSubscriberConstructorParams) (message.Subscriber, error) {
			return sub, nil
		},
		OnHandle: func(p cqrs.CommandProcessorOnHandleParams) error {
			ctx, out := WithOutcome(p.Message.Context())
			err := p.Handler.Handle(ctx, p.Command)
			outcome := out.String()
			if err != nil {
				outcome = "error"
			}
			m.CommandHandled(p.CommandName, outcome)
			if outcome == outcomeRejected {
				h.log.WarnContext(ctx, "command rejected", "command", p.CommandName, "reason", out.reason)
			}
			return err
		},
		Marshaler: marshaler(),
		Logger:    logger,
	})
	if err != nil {
		return fmt.Errorf("creating command processor: %w", err)
	}
	return proc.AddHandlers(handlers(h)...)
}

// How a handled command ended.
const (
	outcomeApplied  = "applied"
	outcomeNoop     = "noop"
	outcomeRejected = "rejected"
)

// Outcome is how a handled command ended, as its handler recorded it.
type Outcome struct{ outcome, reason string }

func (o *Outcome) String() string {
	if o.outcome == "" {
		return outcomeApplied
	}
	return o.outcome
}

type outcomeKey struct{}

// WithOutcome returns ctx in which a handler records how its command
// ended into the returned Outcome.
func WithOutcome(ctx context.Context) (context.Context, *Outcome) {
	o := &Outcome{}
	return context.WithValue(ctx, outcomeKey{}, o), o
}

func record(ctx context.Context, outcome, reason string) {
	if o, ok := ctx.Value(outcomeKey{}).(*Outcome); ok {
		o.outcome, o.reason = outcome, reason
	}
}

// Transient reports the handler errors that mean "retry for as long as it
// takes" rather than "this command cannot be handled": the event store
// unavailable, or an aggregate too contended to append to right now.
func Transient(err error) bool {
	return errors.Is(err, bus.ErrUnavailable) || errors.Is(err, bus.ErrConcurrency)
}
