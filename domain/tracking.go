package domain

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"
)

// Tracking event types.
const (
	EventTracked   = "EventTracked"
	EventRejected  = "EventRejected"
	UserIdentified = "UserIdentified"
	EventProcessed = "EventProcessed"
	EventFailed    = "EventFailed"
	APIKeyUsed     = "ApiKeyUsed"
)

// Aggregate types of the tracking side. Tracked events are not decided
// against history, so they carry no concurrency check.
const (
	AggregateEvent = "event"
	AggregateUsage = "usage"
)

// IdentifyEvent is the event name identify calls are stored under;
// ProfileUpdateEvent sent through track behaves like identify.
const (
	IdentifyEvent      = "$identify"
	ProfileUpdateEvent = "$profile_update"
)

// IsIdentify reports whether a tracked event name is an identify call.
func IsIdentify(name string) bool {
	n := CanonicalName(name)
	return n == canonicalIdentify || n == canonicalProfileUpdate
}

// TrustedEvents may only be sent with a secret key: they move money or
// progress, so a browser must not be able to forge them.
var TrustedEvents = []string{"purchase", "checkout_complete", "checkout_success", "commission.created",
	"referral_success", "user.leveled_up", "step.completed", "quest.completed"}

// CommerceEvents carry an order, an amount in minor units and a currency.
var CommerceEvents = []string{"purchase", "checkout_complete", "checkout_success"}

// The rule sets hold canonical names, so a look-alike of a trusted name is
// as trusted as the name itself.
var (
	trustedCanonical       = canonicalSet(TrustedEvents)
	commerceCanonical      = canonicalSet(CommerceEvents)
	canonicalIdentify      = CanonicalName(IdentifyEvent)
	canonicalProfileUpdate = CanonicalName(ProfileUpdateEvent)
)

func canonicalSet(names []string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[CanonicalName(n)] = true
	}
	return m
}

// IsTrusted reports whether only a secret key may send the event.
func IsTrusted(name string) bool { return trustedCanonical[CanonicalName(name)] }

// IsCommerce reports whether the event must carry orderId, amount and currency.
func IsCommerce(name string) bool { return commerceCanonical[CanonicalName(name)] }

// KeyAllows reports whether a key of type t may send event name.
func KeyAllows(t KeyType, name string) bool { return t == KeySecret || !IsTrusted(name) }

// EventIDFor returns the id of an incoming event: derived from the
// project and messageId when there is one (a retry gets the same id, so it
// is stored once however late it comes), else a fresh UUIDv7.
func EventIDFor(projectID, messageID string) string {
	if messageID == "" {
		return NewID()
	}
	ns, err := uuid.Parse(projectID)
	if err != nil {
		ns = uuid.Nil
	}
	return uuid.NewSHA1(ns, []byte(messageID)).String()
}

// TrackedData is the payload of EventTracked, EventRejected and
// UserIdentified: the event as received, with the times needed to correct
// client clock skew.
type TrackedData struct {
	Event       string          `json:"event"`
	UserID      string          `json:"userId,omitempty"`
	AnonymousID string          `json:"anonymousId,omitempty"`
	Properties  json.RawMessage `json:"properties,omitempty"`
	Context     json.RawMessage `json:"context,omitempty"`
	MessageID   string          `json:"messageId,omitempty"`
	// Traits and TraitsOnce update the user's traits (see Identity):
	// PostHog's $set and $set_once, Segment's identify traits.
	Traits     json.RawMessage `json:"traits,omitempty"`
	TraitsOnce json.RawMessage `json:"traitsOnce,omitempty"`
	// PreviousID is another id of the user, linked to UserID: an alias
	// call's previousId (Segment) or alias (PostHog).
	PreviousID string `json:"previousId,omitempty"`
	// Integrations are the sender's routing hints (Segment's
	// integrations), kept as sent.
	Integrations json.RawMessage `json:"integrations,omitempty"`
	// Timestamp and SentAt are the client's clock, as sent; ReceivedAt is
	// the server's; OccurredAt (in the envelope) is the corrected time.
	Timestamp  *time.Time `json:"timestamp,omitempty"`
	SentAt     *time.Time `json:"sentAt,omitempty"`
	ReceivedAt time.Time  `json:"receivedAt"`
	KeyID      string     `json:"keyId"`
	KeyType    KeyType    `json:"keyType"`
	// Reason and Code say why an EventRejected was rejected, and Reason
	// why a settled EventTracked failed.
	Reason string `json:"reason,omitempty"`
	Code   string `json:"code,omitempty"`
	// Outcome is set on an EventTracked whose rules all ran as it was
	// appended (see processing.Processor.Settle): OutcomeProcessed, or
	// OutcomeFailed with Reason. Such an event has no EventProcessed or
	// EventFailed of its own; without Outcome it is pending until the
	// processor appends one.
	Outcome string `json:"outcome,omitempty"`
}

// Outcomes an EventTracked may be settled with as it is appended.
const (
	OutcomeProcessed = "processed"
	OutcomeFailed    = "failed"
)

// OutcomeData is the payload of EventProcessed and EventFailed.
type OutcomeData struct {
	EventID  string `json:"eventId"`
	Reason   string `json:"reason,omitempty"`
	Attempts int    `json:"attempts,omitempty"`
}

// KeyUsedData is the payload of ApiKeyUsed: the last time a key was seen,
// coalesced by the API so a busy key costs one event per interval.
type KeyUsedData struct {
	KeyID      string    `json:"keyId"`
	LastUsedAt time.Time `json:"lastUsedAt"`
}

// CorrectedTime returns when an event happened by the server's clock:
// receivedAt − (sentAt − timestamp) when the client sent both, the client
// timestamp when it sent only that, else receivedAt.
func CorrectedTime(timestamp, sentAt *time.Time, receivedAt time.Time) time.Time {
	switch {
	case timestamp != nil && sentAt != nil:
		return receivedAt.Add(-sentAt.Sub(*timestamp)).UTC()
	case timestamp != nil:
		return timestamp.UTC()
	default:
		return receivedAt.UTC()
	}
}
