package readmodel

import (
	"encoding/json"
	"time"

	"github.com/uptrace/bun"
)

// Event statuses.
const (
	StatusPending   = "pending"
	StatusProcessed = "processed"
	StatusFailed    = "failed"
)

// Event is one tracked event as the read side sees it.
type Event struct {
	bun.BaseModel `bun:"table:events"`

	ID              string          `bun:"id,pk"`
	ProjectID       string          `bun:"project_id,notnull"`
	Type            string          `bun:"type,notnull"`
	UserID          *string         `bun:"user_id"`
	AnonymousID     *string         `bun:"anonymous_id"`
	Properties      json.RawMessage `bun:"properties,type:jsonb,notnull"`
	Context         json.RawMessage `bun:"context,type:jsonb,nullzero"`
	Integrations    json.RawMessage `bun:"integrations,type:jsonb,nullzero"`
	MessageID       *string         `bun:"message_id"`
	KeyID           string          `bun:"key_id,notnull"`
	Status          string          `bun:"status,notnull"`
	ErrorDetails    *string         `bun:"error_details"`
	ClientTimestamp *time.Time      `bun:"client_timestamp"`
	SentAt          *time.Time      `bun:"sent_at"`
	ReceivedAt      time.Time       `bun:"received_at,notnull"`
	OccurredAt      time.Time       `bun:"occurred_at,notnull"`
	ProcessedAt     *time.Time      `bun:"processed_at"`
	Amount          *int64          `bun:"amount"`
	Currency        *string         `bun:"currency"`
	// Rejected marks events refused by the command handler; analytics
	// skip them.
	Rejected bool `bun:"rejected,notnull"`
}

// EndUser is a project's user, identified by the external id the customer
// gives it.
type EndUser struct {
	bun.BaseModel `bun:"table:end_users"`

	ProjectID  string          `bun:"project_id,pk"`
	ExternalID string          `bun:"external_id,pk"`
	Traits     json.RawMessage `bun:"traits,type:jsonb,notnull"`
	// TraitVersions maps each trait to the event time and id that set it.
	TraitVersions json.RawMessage `bun:"trait_versions,type:jsonb,notnull"`
	FirstSeenAt   time.Time       `bun:"first_seen_at,notnull"`
	LastSeenAt    time.Time       `bun:"last_seen_at,notnull"`
	EventCount    int64           `bun:"event_count,notnull"`
}

// EndUserAlias links an anonymous id to the user it turned out to be.
type EndUserAlias struct {
	bun.BaseModel `bun:"table:end_user_aliases,alias:end_user_aliases"`

	ProjectID   string    `bun:"project_id,pk"`
	AnonymousID string    `bun:"anonymous_id,pk"`
	ExternalID  string    `bun:"external_id,notnull"`
	LinkedAt    time.Time `bun:"linked_at,notnull"`
}

// EventCountHourly is the per-hour count of one event type.
type EventCountHourly struct {
	bun.BaseModel `bun:"table:event_counts_hourly,alias:event_counts_hourly"`

	ProjectID   string    `bun:"project_id,pk"`
	EventType   string    `bun:"event_type,pk"`
	BucketStart time.Time `bun:"bucket_start,pk"`
	Count       int64     `bun:"count,notnull"`
}

// DailyUser records that a user (or anonymous visitor) was active on a day.
type DailyUser struct {
	bun.BaseModel `bun:"table:daily_users"`

	ProjectID  string    `bun:"project_id,pk"`
	Day        time.Time `bun:"day,pk"`
	DistinctID string    `bun:"distinct_id,pk"`
}

// RevenueHourly sums commerce amounts (cents) per currency and hour.
type RevenueHourly struct {
	bun.BaseModel `bun:"table:revenue_hourly,alias:revenue_hourly"`

	ProjectID   string    `bun:"project_id,pk"`
	Currency    string    `bun:"currency,pk"`
	BucketStart time.Time `bun:"bucket_start,pk"`
	Amount      int64     `bun:"amount,notnull"`
	Count       int64     `bun:"count,notnull"`
}

// EventCountDaily is the per-UTC-day count of one event type.
type EventCountDaily struct {
	bun.BaseModel `bun:"table:event_counts_daily,alias:event_counts_daily"`

	ProjectID string    `bun:"project_id,pk"`
	EventType string    `bun:"event_type,pk"`
	Day       time.Time `bun:"day,pk"`
	Count     int64     `bun:"count,notnull"`
}

// DailyEventUser records that a user did an event type on a UTC day, and
// when: the first and last times that day, and the last time of the
// user's previous day with the type, all in µs since the epoch. The
// previous day's time lets a range count each user once, on the first row
// in it, without a DISTINCT over ids (see queries.TopEvents).
type DailyEventUser struct {
	bun.BaseModel `bun:"table:daily_event_users,alias:daily_event_users"`

	ProjectID  string    `bun:"project_id,pk"`
	EventType  string    `bun:"event_type,pk"`
	DistinctID string    `bun:"distinct_id,pk"`
	Day        time.Time `bun:"day,pk"`
	FirstAt    int64     `bun:"first_at,notnull"`
	LastAt     int64     `bun:"last_at,notnull"`
	PrevLastAt *int64    `bun:"prev_last_at"`
}

// WeeklyUser records that a user was active in a UTC week (from Monday).
type WeeklyUser struct {
	bun.BaseModel `bun:"table:weekly_users"`

	ProjectID  string    `bun:"project_id,pk"`
	DistinctID string    `bun:"distinct_id,pk"`
	Week       time.Time `bun:"week,pk"`
}

// MonthlyUser records that a user was active in a UTC month.
type MonthlyUser struct {
	bun.BaseModel `bun:"table:monthly_users"`

	ProjectID  string    `bun:"project_id,pk"`
	DistinctID string    `bun:"distinct_id,pk"`
	Month      time.Time `bun:"month,pk"`
}

// ActiveUserCount is how many distinct users were active in one UTC day,
// week or month: the row counts of daily_users, weekly_users and
// monthly_users, kept as they are inserted.
type ActiveUserCount struct {
	bun.BaseModel `bun:"table:active_user_counts,alias:active_user_counts"`

	ProjectID   string    `bun:"project_id,pk"`
	Period      string    `bun:"period,pk"` // day, week or month
	PeriodStart time.Time `bun:"period_start,pk"`
	Users       int64     `bun:"users,notnull"`
}

// OrphanOutcome is the outcome of an event the events projection has not
// stored (it was quarantined), kept until the event is.
type OrphanOutcome struct {
	bun.BaseModel `bun:"table:orphan_outcomes,alias:orphan_outcomes"`

	EventID   string    `bun:"event_id,pk"`
	ProjectID string    `bun:"project_id,notnull"`
	Status    string    `bun:"status,notnull"`
	Reason    *string   `bun:"reason"`
	At        time.Time `bun:"at,notnull"`
}

// ProjectKey is the integer SQLite's event tables key a project by
// (store.ProjectKeys); PostgreSQL's key it by its UUID.
type ProjectKey struct {
	bun.BaseModel `bun:"table:project_keys,alias:project_keys"`

	Key       int64  `bun:"key,pk"`
	ProjectID string `bun:"project_id,notnull"`
}
