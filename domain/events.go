package domain

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// Event types. They are past-tense facts; once written to the log they are
// never changed, only superseded by a new schema version.
const (
	OrganizationCreated = "OrganizationCreated"
	ProjectCreated      = "ProjectCreated"
	APIKeyCreated       = "ApiKeyCreated"
	APIKeyRevoked       = "ApiKeyRevoked"
)

// Aggregate types name the consistency boundaries: every event of one
// aggregate is appended to one subject with optimistic concurrency.
const (
	AggregateOrganization = "organization"
	AggregateProject      = "project"
)

// SchemaVersion is the version written on every event this build emits.
const SchemaVersion = 1

// Event is the envelope every domain event travels in, in JetStream and in
// Kafka alike. Data holds the type-specific payload.
type Event struct {
	ID             string          `json:"id"`
	Type           string          `json:"type"`
	Version        int             `json:"version"`
	AggregateType  string          `json:"aggregateType"`
	AggregateID    string          `json:"aggregateId"`
	OrganizationID string          `json:"organizationId,omitempty"`
	ProjectID      string          `json:"projectId,omitempty"`
	OccurredAt     time.Time       `json:"occurredAt"`
	ReceivedAt     time.Time       `json:"receivedAt"`
	CorrelationID  string          `json:"correlationId,omitempty"`
	CausationID    string          `json:"causationId,omitempty"`
	Data           json.RawMessage `json:"data"`
}

// PartitionKey keeps one tenant's events in one Kafka partition, in order.
func (e *Event) PartitionKey() string {
	if e.ProjectID != "" {
		return e.ProjectID
	}
	return e.OrganizationID
}

// OrganizationCreatedData is the payload of OrganizationCreated.
type OrganizationCreatedData struct {
	Name string `json:"name"`
}

// ProjectCreatedData is the payload of ProjectCreated.
type ProjectCreatedData struct {
	Name string `json:"name"`
}

// APIKeyCreatedData is the payload of ApiKeyCreated. It carries the key's
// hash and display prefix, never its plaintext.
type APIKeyCreatedData struct {
	KeyID  string  `json:"keyId"`
	Name   string  `json:"name"`
	Type   KeyType `json:"type"`
	Hash   string  `json:"hash"`
	Prefix string  `json:"prefix"`
}

// APIKeyRevokedData is the payload of ApiKeyRevoked.
type APIKeyRevokedData struct {
	KeyID string `json:"keyId"`
	Hash  string `json:"hash"`
}

// Meta is what a command handler knows about the event it is about to emit
// besides its payload.
type Meta struct {
	AggregateType  string
	AggregateID    string
	OrganizationID string
	ProjectID      string
	CorrelationID  string
	CausationID    string
	OccurredAt     time.Time
}

// NewEvent builds an envelope with a fresh id around payload.
func NewEvent(eventType string, m Meta, payload any) (Event, error) {
	return NewEventWithID(NewID(), eventType, m, payload)
}

// NewEventWithID builds an envelope with a given id, for events whose id
// must be stable across retries (tracked events).
func NewEventWithID(id, eventType string, m Meta, payload any) (Event, error) {
	data, err := Marshal(payload)
	if err != nil {
		return Event{}, fmt.Errorf("marshalling %s payload: %w", eventType, err)
	}
	now := time.Now().UTC()
	occurred := m.OccurredAt
	if occurred.IsZero() {
		occurred = now
	}
	return Event{
		ID:             id,
		Type:           eventType,
		Version:        SchemaVersion,
		AggregateType:  m.AggregateType,
		AggregateID:    m.AggregateID,
		OrganizationID: m.OrganizationID,
		ProjectID:      m.ProjectID,
		OccurredAt:     occurred.UTC(),
		ReceivedAt:     now,
		CorrelationID:  m.CorrelationID,
		CausationID:    m.CausationID,
		Data:           data,
	}, nil
}

// DecodeData unmarshals the payload of e into T.
func DecodeData[T any](e *Event) (T, error) {
	var v T
	if err := json.Unmarshal(e.Data, &v); err != nil {
		return v, fmt.Errorf("decoding %s %s payload: %w", e.Type, e.ID, err)
	}
	return v, nil
}

// Marshal is json.Marshal without HTML escaping: events and commands carry
// raw JSON (properties, context), which json.Marshal would re-escape, six
// bytes for every '<'. Without it what is written is no bigger than what
// was accepted, and bytes pass through every hop unchanged.
func Marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
