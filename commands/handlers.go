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
// command finds its effect already in the history and appends nothing.
type Handlers struct {
	store    EventStore
	tracked  TrackedLog
	subjects Subjects
	log      *slog.Logger
	metrics  Metrics
}

// Store is the event store the handlers need: aggregates with optimistic
// concurrency, and plain appends for tracked events.
type Store interface {
	EventStore
	TrackedLog
}

// NewHandlers returns the command handlers over store.
func NewHandlers(store Store, subjects Subjects, log *slog.Logger, m Metrics) *Handlers {
	return &Handlers{store: store, tracked: store, subjects: subjects, log: log, metrics: m}
}

const maxConcurrencyRetries = 8

// decide loads one aggregate, asks fn what to append, and appends it with
// optimistic concurrency, deciding again on a conflict.
func (h *Handlers) decide(ctx context.Context, name, aggregateType, id string,
	fn func(history []domain.Event) ([]domain.Event, error),
) error {
	outcome := "error"
	defer func() { h.metrics.CommandHandled(name, outcome) }()
	for attempt := 0; attempt < maxConcurrencyRetries; attempt++ {
		history, version, err := h.store.Load(ctx, aggregateType, id)
		if err != nil {
			return err
		}
		events, err := fn(history)
		var rej *Rejection
		var verr *ValidationError
		if errors.As(err, &rej) || errors.As(err, &verr) {
			outcome = "rejected"
			h.log.WarnContext(ctx, "command rejected", "command", name, "aggregate", id, "reason", err.Error())
			return nil
		}
		if err != nil {
			return err
		}
		if len(events) == 0 {
			outcome = "noop"
			return nil
		}
		err = h.store.Append(ctx, aggregateType, id, version, events...)
		if errors.Is(err, bus.ErrConcurrency) {
			continue
		}
		if err != nil {
			return err
		}
		outcome = "applied"
		for _, e := range events {
			h.log.InfoContext(ctx, "event appended", "command", name, "event", e.Type, "eventId", e.ID,
				"aggregate", id, "correlationId", e.CorrelationID)
		}
		return nil
	}
	return fmt.Errorf("%w: %s on %s %s: still conflicting after %d attempts", bus.ErrConcurrency, name, aggregateType, id,
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
		return h.reject(ctx, "CreateOrganization", err)
	}
	return h.decide(ctx, "CreateOrganization", domain.AggregateOrganization, c.OrganizationID,
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
		return h.reject(ctx, "CreateProject", err)
	}
	orgHistory, _, err := h.store.Load(ctx, domain.AggregateOrganization, c.OrganizationID)
	if err != nil {
		return err
	}
	orgExists := foldOrganization(orgHistory).exists
	return h.decide(ctx, "CreateProject", domain.AggregateProject, c.ProjectID,
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
		return h.reject(ctx, "CreateKey", err)
	}
	return h.decide(ctx, "CreateKey", domain.AggregateProject, c.ProjectID,
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
		return h.reject(ctx, "RevokeKey", err)
	}
	return h.decide(ctx, "RevokeKey", domain.AggregateProject, c.ProjectID,
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

func (h *Handlers) reject(ctx context.Context, name string, err error) error {
	h.metrics.CommandHandled(name, "rejected")
	h.log.WarnContext(ctx, "invalid command rejected", "command", name, "reason", err.Error())
	return nil
}

// Names lists the commands NewProcessor handles: one durable consumer each.
func Names() []string {
	return []string{"CreateOrganization", "CreateProject", "CreateKey", "RevokeKey", "TrackEvent", "IdentifyUser",
		"RecordKeyUsage"}
}

// Transient reports the handler errors that mean "retry for as long as it
// takes" rather than "this command cannot be handled": the event store
// unavailable, or an aggregate too contended to append to right now.
func Transient(err error) bool {
	return errors.Is(err, bus.ErrUnavailable) || errors.Is(err, bus.ErrConcurrency)
}

// NewProcessor registers the handlers on a Watermill router: every command
// type gets its own durable JetStream consumer. isolator retries a failing
// command in process, hands it back for redelivery while a dependency is
// down, and quarantines one that keeps failing.
func NewProcessor(router *message.Router, sub message.Subscriber, names bus.Names, h *Handlers,
	logger watermill.LoggerAdapter, isolator *bus.Isolator,
) error {
	router.AddMiddleware(isolator.Middleware)
	proc, err := cqrs.NewCommandProcessorWithConfig(router, cqrs.CommandProcessorConfig{
		GenerateSubscribeTopic: func(p cqrs.CommandProcessorGenerateSubscribeTopicParams) (string, error) {
			return names.CommandSubject(p.CommandName), nil
		},
		SubscriberConstructor: func(cqrs.CommandProcessorSubscriberConstructorParams) (message.Subscriber, error) {
			return sub, nil
		},
		Marshaler: marshaler(),
		Logger:    logger,
	})
	if err != nil {
		return fmt.Errorf("creating command processor: %w", err)
	}
	return proc.AddHandlers(
		cqrs.NewCommandHandler("CreateOrganization", h.CreateOrganization),
		cqrs.NewCommandHandler("CreateProject", h.CreateProject),
		cqrs.NewCommandHandler("CreateKey", h.CreateKey),
		cqrs.NewCommandHandler("RevokeKey", h.RevokeKey),
		cqrs.NewCommandHandler("TrackEvent", h.TrackEvent),
		cqrs.NewCommandHandler("IdentifyUser", h.IdentifyUser),
		cqrs.NewCommandHandler("RecordKeyUsage", h.RecordKeyUsage),
	)
}
