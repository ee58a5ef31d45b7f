package commands

import (
	"context"
	"errors"
	"fmt"
	"time"

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
}

// Subjects names where tracked events go.
type Subjects interface {
	TrackedSubject(projectID string) string
	UsageSubject(projectID string) string
}

// TrackEvent appends EventTracked (UserIdentified for an identify), or
// EventRejected when the key may not send the event or the command is
// malformed.
func (h *Handlers) TrackEvent(ctx context.Context, c *TrackEvent) error {
	if _, err := domain.ParseID(c.ProjectID); err != nil {
		// Without a project there is no subject to record a rejection on.
		return h.reject(ctx, fmt.Errorf("projectId: %w", err))
	}
	if _, err := domain.ParseID(c.EventID); err != nil {
		return h.reject(ctx, fmt.Errorf("eventId: %w", err))
	}
	data, eventType := c.Event, domain.EventTracked
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
	e, err := domain.NewEventWithID(c.EventID, eventType, meta, data)
	if err != nil {
		return err
	}
	return h.tracked.Publish(ctx, h.subjects.TrackedSubject(c.ProjectID), e)
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
		if err := h.tracked.Publish(ctx, h.subjects.UsageSubject(u.ProjectID), e); err != nil {
			return err
		}
	}
	return nil
}
