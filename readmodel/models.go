// Package readmodel declares the Bun-mapped tables of the read side. The
// projections write them and the queries read them; the write side
// (commands) never imports this package.
package readmodel

import (
	"time"

	"github.com/uptrace/bun"
)

// Organization is a tenant at the top of the hierarchy.
type Organization struct {
	bun.BaseModel `bun:"table:organizations"`

	ID        string    `bun:"id,pk" json:"id"`
	Name      string    `bun:"name,notnull" json:"name"`
	CreatedAt time.Time `bun:"created_at,notnull" json:"createdAt"`
}

// Project belongs to an organization and owns keys, end users and events.
type Project struct {
	bun.BaseModel `bun:"table:projects"`

	ID             string    `bun:"id,pk" json:"id"`
	OrganizationID string    `bun:"organization_id,notnull" json:"organizationId"`
	Name           string    `bun:"name,notnull" json:"name"`
	CreatedAt      time.Time `bun:"created_at,notnull" json:"createdAt"`
}

// APIKey is what key lookups read: the hash is the lookup key, the
// plaintext is never stored.
type APIKey struct {
	bun.BaseModel `bun:"table:api_keys"`

	ID             string     `bun:"id,pk" json:"id"`
	ProjectID      string     `bun:"project_id,notnull" json:"projectId"`
	OrganizationID string     `bun:"organization_id,notnull" json:"organizationId"`
	Name           string     `bun:"name,notnull" json:"name"`
	Type           string     `bun:"type,notnull" json:"type"`
	KeyHash        string     `bun:"key_hash,notnull" json:"-"`
	Prefix         string     `bun:"prefix,notnull" json:"prefix"`
	CreatedAt      time.Time  `bun:"created_at,notnull" json:"createdAt"`
	RevokedAt      *time.Time `bun:"revoked_at" json:"revokedAt,omitempty"`
	LastUsedAt     *time.Time `bun:"last_used_at" json:"lastUsedAt,omitempty"`
}

// Checkpoint is where a projection resumes in one Kafka partition: the
// offset of the next record it has not applied yet.
type Checkpoint struct {
	bun.BaseModel `bun:"table:projection_checkpoints"`

	Projection string    `bun:"projection,pk"`
	Topic      string    `bun:"topic,pk"`
	Partition  int32     `bun:"partition,pk"`
	NextOffset int64     `bun:"next_offset,notnull"`
	UpdatedAt  time.Time `bun:"updated_at,notnull"`
}

// Quarantine statuses.
const (
	QuarantineHeld        = "quarantined"
	QuarantineReprocessed = "reprocessed"
)

// QuarantinedRecord is a log record a projection could not apply: kept
// whole, with where it was and why it failed, until it is reprocessed.
type QuarantinedRecord struct {
	bun.BaseModel `bun:"table:quarantined_records,alias:quarantined_records"`

	ID          string     `bun:"id,pk"`
	Projection  string     `bun:"projection,notnull"`
	Topic       string     `bun:"topic,notnull"`
	Partition   int32      `bun:"partition,notnull"`
	Offset      int64      `bun:"record_offset,notnull"`
	Key         []byte     `bun:"record_key"`
	Value       []byte     `bun:"record_value,notnull"`
	ProjectID   *string    `bun:"project_id"`
	EventID     *string    `bun:"event_id"`
	EventType   *string    `bun:"event_type"`
	Error       string     `bun:"error,notnull"`
	Attempts    int        `bun:"attempts,notnull"`
	FirstSeenAt time.Time  `bun:"first_seen_at,notnull"`
	LastSeenAt  time.Time  `bun:"last_seen_at,notnull"`
	Status      string     `bun:"status,notnull"`
	ResolvedAt  *time.Time `bun:"resolved_at"`
}
