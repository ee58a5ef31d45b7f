package boost

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Event names the SDK has helpers for. Purchase, checkout and referral
// events are trusted: the server accepts them only with a secret key, which
// is why they are sent from servers.
const (
	EventIdentify         = "$identify"
	EventPurchase         = "purchase"
	EventCheckoutComplete = "checkout_complete"
	EventCheckoutSuccess  = "checkout_success"
	EventReferralSuccess  = "referral_success"
)

// Limits the server enforces; checking them locally turns a later,
// asynchronous rejection into an immediate error at the call site.
const (
	MaxBatchSize       = 500             // items per request
	MaxRequestBytes    = 512 << 10       // bytes per request body
	MaxPropertiesBytes = 32 << 10        // bytes of a JSON-encoded properties object
	MaxNameLength      = 255             // characters in event, userId, anonymousId
	MaxAmount          = 100_000_000_000 // minor units of a commerce amount
)

// commerceEvents are the events that carry an order (the server's list:
// contract/ingestion.json, which a test compares this with).
var commerceEvents = []string{EventPurchase, EventCheckoutComplete, EventCheckoutSuccess}

// Event is one behavioural or business event. Event and at least one of
// UserID and AnonymousID are required.
type Event struct {
	Event       string         // event name, 1–255 characters
	UserID      string         // your stable id for the user
	AnonymousID string         // a pre-login id, when there is no UserID yet
	Properties  map[string]any // encoded as JSON when the event is tracked
	// Timestamp is when the event happened; zero means now. It is taken
	// at creation, not at send time, so queueing and retries do not shift
	// it.
	Timestamp time.Time
	// MessageID identifies the event for deduplication; empty means a new
	// UUIDv7. Set it (see NewMessageID) to make a re-run of your own code
	// idempotent too.
	MessageID string
}

// Identify attaches traits to a user and, with AnonymousID, links the
// anonymous history that preceded sign-in to UserID. It is sent as the
// event "$identify" with the traits as properties.
type Identify struct {
	UserID      string // required
	AnonymousID string // optional: the id to merge into UserID
	Traits      map[string]any
	Timestamp   time.Time
	MessageID   string
}

// Purchase is a completed order. Amounts are integer minor units (cents)
// because floating-point money does not add up; Currency is an ISO 4217
// code such as "EUR" (letters are upper-cased before sending).
type Purchase struct {
	UserID      string
	AnonymousID string
	OrderID     string // required
	Amount      int64  // required, in cents, ≥ 0
	Currency    string // required, three letters
	Items       []Item // optional, sent as properties.items
	// Properties are extra properties. orderId, amount, currency and
	// items are set from the fields above and override keys of the same
	// name here.
	Properties map[string]any
	Timestamp  time.Time
	MessageID  string
}

// Checkout has the same fields as Purchase; it is what CheckoutComplete
// takes.
type Checkout = Purchase

// Item is one line of a Purchase.
type Item struct {
	ProductID string `json:"productId"`
	Name      string `json:"name,omitempty"`
	Quantity  int    `json:"quantity"`
	Price     int64  `json:"price"` // unit price in cents
}

// Referral reports that a referral converted: UserID referred
// ReferredUserID, possibly with a code.
type Referral struct {
	UserID         string // the referrer; required
	ReferredUserID string // the new user; required
	ReferralCode   string // optional
	// Properties are extra properties; referredUserId and referralCode
	// override keys of the same name here.
	Properties map[string]any
	Timestamp  time.Time
	MessageID  string
}

// item is a queued event, encoded once when it is created: a snapshot, so
// a caller mutating its properties map afterwards cannot change (or race
// with) what is sent, and retries resend identical bytes.
type item struct {
	messageID string
	event     string
	raw       []byte // the batch item's JSON
}

// wireItem is the JSON of one batch item.
type wireItem struct {
	Event       string          `json:"event"`
	UserID      string          `json:"userId,omitempty"`
	AnonymousID string          `json:"anonymousId,omitempty"`
	Properties  json.RawMessage `json:"properties,omitempty"`
	Timestamp   string          `json:"timestamp"`
	MessageID   string          `json:"messageId"`
}

// timeFormat is RFC 3339 with milliseconds, always in UTC.
const timeFormat = "2006-01-02T15:04:05.000Z07:00"

func formatTime(t time.Time) string { return t.UTC().Format(timeFormat) }

func invalid(field, format string, args ...any) error {
	return &ValidationError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// buildItem validates e as the server would and encodes it.
func buildItem(e Event, now time.Time) (*item, error) {
	if err := checkName("event", e.Event, true); err != nil {
		return nil, err
	}
	if strings.TrimSpace(e.UserID) == "" && strings.TrimSpace(e.AnonymousID) == "" {
		return nil, invalid("userId", "or anonymousId is required")
	}
	if err := checkName("userId", e.UserID, false); err != nil {
		return nil, err
	}
	if err := checkName("anonymousId", e.AnonymousID, false); err != nil {
		return nil, err
	}
	if isCommerce(e.Event) {
		if err := checkCommerce(e.Properties); err != nil {
			return nil, err
		}
	}
	w := wireItem{Event: e.Event, UserID: e.UserID, AnonymousID: e.AnonymousID, MessageID: e.MessageID}
	if w.MessageID == "" {
		w.MessageID = newUUIDv7(now)
	} else if !isUUID(w.MessageID) {
		return nil, invalid("messageId", "must be a UUID (see NewMessageID), not %q", truncate(w.MessageID, 64))
	}
	ts := e.Timestamp
	if ts.IsZero() {
		ts = now
	}
	w.Timestamp = formatTime(ts)
	if e.Properties != nil {
		props, err := json.Marshal(e.Properties)
		if err != nil {
			return nil, invalid("properties", "cannot be encoded as JSON: %v", err)
		}
		if len(props) > MaxPropertiesBytes {
			return nil, invalid("properties", "are %d bytes as JSON; the limit is %d", len(props), MaxPropertiesBytes)
		}
		w.Properties = props
	}
	raw, err := json.Marshal(w)
	if err != nil { // cannot happen: every field is a string or valid JSON
		return nil, invalid("event", "cannot be encoded: %v", err)
	}
	return &item{messageID: w.MessageID, event: w.Event, raw: raw}, nil
}

func checkName(field, s string, required bool) error {
	switch {
	case s == "" && !required:
		return nil
	case strings.TrimSpace(s) == "":
		return invalid(field, "is required")
	case !utf8.ValidString(s):
		return invalid(field, "must be valid UTF-8")
	case utf8.RuneCountInString(s) > MaxNameLength:
		return invalid(field, "must be at most %d characters", MaxNameLength)
	}
	return nil
}

// isCommerce matches names as the server does: trimmed and case-folded,
// so "Purchase" is held to the same rules as "purchase".
func isCommerce(event string) bool {
	name := strings.ToLower(strings.TrimSpace(event))
	for _, c := range commerceEvents {
		if name == c {
			return true
		}
	}
	return false
}

// checkCommerce applies the server's rules for purchase-like events to a
// properties map built by the caller (through Track) or by Purchase.
func checkCommerce(props map[string]any) error {
	if id, ok := props["orderId"].(string); !ok || strings.TrimSpace(id) == "" {
		return invalid("properties.orderId", "is required and must be a non-empty string")
	}
	amount, ok := integerValue(props["amount"])
	if !ok {
		return invalid("properties.amount", "is required and must be an integer number of cents")
	}
	if amount < 0 || amount > MaxAmount {
		return invalid("properties.amount", "must be from 0 to %d, not %d", int64(MaxAmount), amount)
	}
	if cur, ok := props["currency"].(string); !ok || !isCurrency(cur) {
		return invalid("properties.currency", "is required and must be a three-letter upper-case code such as \"EUR\"")
	}
	return nil
}

// integerValue reports the value of v if it is an integer as JSON would
// carry it: any Go integer, an integral float, or a json.Number.
func integerValue(v any) (int64, bool) {
	switch n := v.(type) {
	case int:
		return int64(n), true
	case int8:
		return int64(n), true
	case int16:
		return int64(n), true
	case int32:
		return int64(n), true
	case int64:
		return n, true
	case uint:
		return clampUint(uint64(n))
	case uint8:
		return int64(n), true
	case uint16:
		return int64(n), true
	case uint32:
		return int64(n), true
	case uint64:
		return clampUint(n)
	case float32:
		return integralFloat(float64(n))
	case float64:
		return integralFloat(n)
	case json.Number:
		i, err := strconv.ParseInt(string(n), 10, 64)
		return i, err == nil
	}
	return 0, false
}

func clampUint(n uint64) (int64, bool) {
	if n > math.MaxInt64 {
		return 0, false
	}
	return int64(n), true
}

func integralFloat(f float64) (int64, bool) {
	// Beyond 2^53 a float no longer holds every integer, so the amount
	// the server reads might not be the one meant.
	if f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, false
	}
	return int64(f), true
}

func isCurrency(s string) bool {
	if len(s) != 3 {
		return false
	}
	for i := 0; i < 3; i++ {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// event builds the Event that Purchase and CheckoutComplete send.
func (p Purchase) event(name string) Event {
	props := make(map[string]any, len(p.Properties)+4)
	for k, v := range p.Properties {
		props[k] = v
	}
	props["orderId"] = p.OrderID
	props["amount"] = p.Amount
	props["currency"] = strings.ToUpper(p.Currency)
	if len(p.Items) > 0 {
		props["items"] = p.Items
	}
	return Event{Event: name, UserID: p.UserID, AnonymousID: p.AnonymousID, Properties: props,
		Timestamp: p.Timestamp, MessageID: p.MessageID}
}

func (r Referral) event() (Event, error) {
	if strings.TrimSpace(r.UserID) == "" {
		return Event{}, invalid("userId", "(the referrer) is required")
	}
	if strings.TrimSpace(r.ReferredUserID) == "" {
		return Event{}, invalid("properties.referredUserId", "is required")
	}
	props := make(map[string]any, len(r.Properties)+2)
	for k, v := range r.Properties {
		props[k] = v
	}
	props["referredUserId"] = r.ReferredUserID
	if r.ReferralCode != "" {
		props["referralCode"] = r.ReferralCode
	}
	return Event{Event: EventReferralSuccess, UserID: r.UserID, Properties: props,
		Timestamp: r.Timestamp, MessageID: r.MessageID}, nil
}

func (i Identify) event() (Event, error) {
	if strings.TrimSpace(i.UserID) == "" {
		return Event{}, invalid("userId", "is required to identify a user")
	}
	return Event{Event: EventIdentify, UserID: i.UserID, AnonymousID: i.AnonymousID,
		Properties: i.Traits, Timestamp: i.Timestamp, MessageID: i.MessageID}, nil
}
