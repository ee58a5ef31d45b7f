package commands

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gamify/boost/bus"
	"github.com/gamify/boost/domain"
)

// TrackEvent records one event sent with an API key; an identify (its
// name is an identify event's) is a kind of tracked event, not another
// command. The edge has validated it; the handler validates it again with
// the same function (defence in depth) and appends EventTracked (or
// UserIdentified), or EventRejected with the reason.
type TrackEvent struct {
	Header
	EventID        string             `json:"eventId"`
	ProjectID      string             `json:"projectId"`
	OrganizationID string             `json:"organizationId"`
	OccurredAt     time.Time          `json:"occurredAt"`
	Event          domain.TrackedData `json:"event"`
}

// IdentifyUser is how earlier builds sent identifies; the workers still
// handle ones waiting in the command stream, as TrackEvent.
type IdentifyUser TrackEvent

// TrackEvents is the events of one request as one command: one message
// in the command log and one handler run for them all, instead of one
// each. Every event keeps its own id (so its idempotency), its own
// validation and its own fate; the handler appends them together.
type TrackEvents struct {
	Header
	Events []TrackEvent `json:"events"`
}

// MaxTrackEvents bounds the events of one TrackEvents, so that a command
// stays well under NATS's default 1 MB message size whatever the events
// hold (the API's request limit is 512 KB).
const MaxTrackEvents = 100

// KeyUsage is the last time the API saw a key.
type KeyUsage struct {
	ProjectID      string    `json:"projectId"`
	OrganizationID string    `json:"organizationId"`
	KeyID          string    `json:"keyId"`
	LastUsedAt     time.Time `json:"lastUsedAt"`
}

// RecordKeyUsage carries the coalesced key usage of one API process over an
// interval, so last_used_at costs one event per key and interval, not a
// database write per request.
type RecordKeyUsage struct {
	Header
	Usages []KeyUsage `json:"usages"`
}

// validateTracked is the handler's defence-in-depth check of a tracked
// event: the same domain.ValidateTracked the API ran at the edge, plus the
// ids the API filled in.
func validateTracked(eventID, projectID string, occurredAt time.Time, d *domain.TrackedData) error {
	var errs []error
	errs = append(errs, validateID("eventId", eventID), validateID("projectId", projectID), validateID("keyId", d.KeyID))
	if !d.KeyType.Valid() {
		errs = append(errs, &ValidationError{Field: "keyType", Reason: "must be publishable or secret"})
	}
	errs = append(errs, domain.ValidateTracked(d, occurredAt))
	return errors.Join(errs...)
}

// Validate checks the command on its own.
func (c *TrackEvent) Validate() error {
	return validateTracked(c.EventID, c.ProjectID, c.OccurredAt, &c.Event)
}

// Validate checks the command on its own.
func (c *IdentifyUser) Validate() error { return (*TrackEvent)(c).Validate() }

// Validate checks the command on its own: each event as TrackEvent does.
func (c *TrackEvents) Validate() error {
	if len(c.Events) == 0 || len(c.Events) > MaxTrackEvents {
		return &ValidationError{Field: "events", Reason: fmt.Sprintf("must hold 1 to %d events", MaxTrackEvents)}
	}
	for i := range c.Events {
		if err := c.Events[i].Validate(); err != nil {
			return fmt.Errorf("events[%d]: %w", i, err)
		}
	}
	return nil
}

// Validate checks the command on its own.
func (c *RecordKeyUsage) Validate() error {
	if len(c.Usages) == 0 {
		return &ValidationError{Field: "usages", Reason: "must not be empty"}
	}
	for _, u := range c.Usages {
		if err := errors.Join(validateID("projectId", u.ProjectID), validateID("keyId", u.KeyID)); err != nil {
			return err
		}
	}
	return nil
}

// TrackedLog is where tracked events are appended: no history is read,
// each event is de-duplicated by its id.
type TrackedLog interface {
	Publish(ctx context.Context, subject string, events ...domain.Event) error
	PublishAll(ctx context.Context, appends []bus.Append) error
}

// Subjects names where tracked events go.
type Subjects interface {
	TrackedSubject(projectID string) string
	SettledSubject(projectID string) string
	UsageSubject(projectID string) string
}

// Settler decides a tracked event's outcome as it is appended, when the
// event's rules allow (processing.Processor.Settle), and counts it once
// it is stored.
type Settler interface {
	Settle(ctx context.Context, e *domain.Event, d *domain.TrackedData) bool
	Settled(d *domain.TrackedData)
}

// TrackEvent appends EventTracked (UserIdentified for an identify), or
// EventRejected when the key may not send the event or the command is
// malformed.
func (h *Handlers) TrackEvent(ctx context.Context, c *TrackEvent) error {
	return h.TrackEvents(ctx, &TrackEvents{Header: c.Header, Events: []TrackEvent{*c}})
}

// TrackEvents appends each event as TrackEvent would, all in one round of
// acks. An event whose rules the settler can run is appended settled (its
// outcome in its own payload, under the settled subject): one message,
// and nothing left for the processor to do.
func (h *Handlers) TrackEvents(ctx context.Context, c *TrackEvents) error {
	appends := make([]bus.Append, 0, len(c.Events))
	var settled []*domain.TrackedData
	for i := range c.Events {
		t := &c.Events[i]
		if t.CorrelationID == "" {
			t.CorrelationID = c.CorrelationID
		}
		if t.CommandID == "" {
			t.CommandID = c.CommandID
		}
		a, d, ok, err := h.tracked(ctx, t)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		appends = append(appends, a)
		if d.Outcome != "" {
			settled = append(settled, d)
		}
	}
	if len(appends) == 0 {
		return nil
	}
	if err := h.trackedLog.PublishAll(ctx, appends); err != nil {
		return err
	}
	for _, d := range settled {
		h.settler.Settled(d)
	}
	return nil
}

// tracked decides what one tracked event appends, and where: EventTracked
// (settled when it can be, see TrackEvents), UserIdentified for an
// identify, or EventRejected with the reason; nothing (false) when it has
// no project or id to record a rejection under.
func (h *Handlers) tracked(ctx context.Context, c *TrackEvent) (bus.Append, *domain.TrackedData, bool, error) {
	if _, err := domain.ParseID(c.ProjectID); err != nil {
		// Without a project there is no subject to record a rejection on.
		return bus.Append{}, nil, false, h.reject(ctx, fmt.Errorf("projectId: %w", err))
	}
	if _, err := domain.ParseID(c.EventID); err != nil {
		return bus.Append{}, nil, false, h.reject(ctx, fmt.Errorf("eventId: %w", err))
	}
	data, eventType := c.Event, domain.EventTracked
	data.Outcome = "" // decided here, never by the sender
	if domain.IsIdentify(data.Event) {
		eventType = domain.UserIdentified
	}
	switch err := c.Validate(); {
	case err != nil:
		eventType, data.Code, data.Reason = domain.EventRejected, "invalid_request", err.Error()
	case !domain.KeyAllows(data.KeyType, data.Event):
		eventType, data.Code = domain.EventRejected, "forbidden_event"
		data.Reason = fmt.Sprintf("event %q requires a secret key", data.Event)
	}
	if eventType == domain.EventRejected {
		record(ctx, outcomeRejected, data.Reason)
	}
	meta := domain.Meta{AggregateType: domain.AggregateEvent, AggregateID: c.EventID, OrganizationID: c.OrganizationID,
		ProjectID: c.ProjectID, CorrelationID: c.CorrelationID, CausationID: c.CommandID, OccurredAt: c.OccurredAt}
	// Only an EventTracked not settled here goes where the processor
	// reads; identifies and rejections have no rules to run.
	subject := h.subjects.SettledSubject(c.ProjectID)
	if eventType == domain.EventTracked {
		// The rules see the event as it will be stored, but for its payload.
		e := domain.Event{ID: c.EventID, Type: eventType, AggregateType: meta.AggregateType, AggregateID: meta.AggregateID,
			OrganizationID: meta.OrganizationID, ProjectID: meta.ProjectID, OccurredAt: meta.OccurredAt,
			CorrelationID: meta.CorrelationID, CausationID: meta.CausationID}
		if h.settler == nil || !h.settler.Settle(ctx, &e, &data) {
			subject = h.subjects.TrackedSubject(c.ProjectID)
		}
	}
	e, err := domain.NewEventWithID(c.EventID, eventType, meta, data)
	if err != nil {
		return bus.Append{}, nil, false, err
	}
	return bus.Append{Subject: subject, Event: e}, &data, true, nil
}

// IdentifyUser handles an identify sent by an earlier build.
func (h *Handlers) IdentifyUser(ctx context.Context, c *IdentifyUser) error {
	return h.TrackEvent(ctx, (*TrackEvent)(c))
}

// RecordKeyUsage appends one ApiKeyUsed per key.
func (h *Handlers) RecordKeyUsage(ctx context.Context, c *RecordKeyUsage) error {
	if err := c.Validate(); err != nil {
		return h.reject(ctx, err)
	}
	for _, u := range c.Usages {
		// The id is derived from the command, so a redelivery is a duplicate.
		id := domain.EventIDFor(u.KeyID, c.CommandID)
		e, err := domain.NewEventWithID(id, domain.APIKeyUsed, domain.Meta{AggregateType: domain.AggregateUsage,
			AggregateID: u.KeyID, OrganizationID: u.OrganizationID, ProjectID: u.ProjectID,
			CorrelationID: c.CorrelationID, CausationID: c.CommandID, OccurredAt: u.LastUsedAt},
			domain.KeyUsedData{KeyID: u.KeyID, LastUsedAt: u.LastUsedAt.UTC()})
		if err != nil {
			return err
		}
		if err := h.trackedLog.Publish(ctx, h.subjects.UsageSubject(u.ProjectID), e); err != nil {
			return err
		}
	}
	return nil
}
