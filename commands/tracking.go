package commands

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gamify/boost/domain"
)

// TrackEvent records one event sent with an API key. The API has already
// validated it; the handler checks the key class again (defence in depth)
// and appends EventTracked, or EventRejected with the reason.
type TrackEvent struct {
	Header
	EventID        string             `json:"eventId"`
	ProjectID      string             `json:"projectId"`
	OrganizationID string             `json:"organizationId"`
	OccurredAt     time.Time          `json:"occurredAt"`
	Event          domain.TrackedData `json:"event"`
}

// IdentifyUser merges traits into an end user and links an anonymous id.
type IdentifyUser struct {
	Header
	EventID        string             `json:"eventId"`
	ProjectID      string             `json:"projectId"`
	OrganizationID string             `json:"organizationId"`
	OccurredAt     time.Time          `json:"occurredAt"`
	Event          domain.TrackedData `json:"event"`
}

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
func (c *IdentifyUser) Validate() error {
	err := validateTracked(c.EventID, c.ProjectID, c.OccurredAt, &c.Event)
	if !domain.IsIdentify(c.Event.Event) {
		err = errors.Join(err, &ValidationError{Field: "event", Reason: "must be an identify event"})
	}
	return err
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
}

// Subjects names where tracked events go.
type Subjects interface {
	TrackedSubject(projectID string) string
	UsageSubject(projectID string) string
}

func trackedMeta(h Header, eventID, orgID, projectID string, occurred time.Time) domain.Meta {
	return domain.Meta{AggregateType: domain.AggregateEvent, AggregateID: eventID, OrganizationID: orgID,
		ProjectID: projectID, CorrelationID: h.CorrelationID, CausationID: h.CommandID, OccurredAt: occurred}
}

// TrackEvent appends EventTracked, or EventRejected when the key may not
// send this event or the command is malformed.
func (h *Handlers) TrackEvent(ctx context.Context, c *TrackEvent) error {
	return h.appendTracked(ctx, "TrackEvent", domain.EventTracked, c.Header, c.EventID, c.OrganizationID, c.ProjectID,
		c.OccurredAt, c.Event, c.Validate())
}

// IdentifyUser appends UserIdentified, or EventRejected.
func (h *Handlers) IdentifyUser(ctx context.Context, c *IdentifyUser) error {
	return h.appendTracked(ctx, "IdentifyUser", domain.UserIdentified, c.Header, c.EventID, c.OrganizationID, c.ProjectID,
		c.OccurredAt, c.Event, c.Validate())
}

func (h *Handlers) appendTracked(ctx context.Context, name, eventType string, hdr Header, eventID, orgID, projectID string,
	occurred time.Time, data domain.TrackedData, invalid error,
) error {
	if _, err := domain.ParseID(projectID); err != nil {
		// Without a project there is no subject to record a rejection on.
		return h.reject(ctx, name, fmt.Errorf("projectId: %w", err))
	}
	if _, err := domain.ParseID(eventID); err != nil {
		return h.reject(ctx, name, fmt.Errorf("eventId: %w", err))
	}
	outcome := "applied"
	switch {
	case invalid != nil:
		eventType, data.Code, data.Reason = domain.EventRejected, "invalid_request", invalid.Error()
	case !domain.KeyAllows(data.KeyType, data.Event):
		eventType, data.Code = domain.EventRejected, "forbidden_event"
		data.Reason = fmt.Sprintf("event %q requires a secret key", data.Event)
	}
	if eventType == domain.EventRejected {
		outcome = "rejected"
		h.log.WarnContext(ctx, "tracked event rejected", "eventId", eventID, "project", projectID, "reason", data.Reason)
	}
	e, err := domain.NewEventWithID(eventID, eventType, trackedMeta(hdr, eventID, orgID, projectID, occurred), data)
	if err != nil {
		return err
	}
	if err := h.tracked.Publish(ctx, h.subjects.TrackedSubject(projectID), e); err != nil {
		h.metrics.CommandHandled(name, "error")
		return err
	}
	h.metrics.CommandHandled(name, outcome)
	return nil
}

// RecordKeyUsage appends one ApiKeyUsed per key.
func (h *Handlers) RecordKeyUsage(ctx context.Context, c *RecordKeyUsage) error {
	if err := c.Validate(); err != nil {
		return h.reject(ctx, "RecordKeyUsage", err)
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
			h.metrics.CommandHandled("RecordKeyUsage", "error")
			return err
		}
	}
	h.metrics.CommandHandled("RecordKeyUsage", "applied")
	return nil
}
