package domain

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits of what Boost accepts. They are part of the ingestion contract:
// the API refuses anything beyond them with a 400 naming the field, and the
// command handlers check them again, so whatever is accepted can be stored
// by every projection on both databases.
const (
	// MaxNameLen bounds event names and the names of organizations,
	// projects and keys, in characters.
	MaxNameLen = 255
	// MaxIDLen bounds user, anonymous and message ids, in characters.
	MaxIDLen = 255
	// MaxObjectBytes bounds properties (traits) and context, compacted.
	MaxObjectBytes = 32 << 10
	// MaxNesting bounds how deep objects and arrays nest in them.
	MaxNesting = 32
	// MaxFutureSkew is how far past its arrival an event may say it
	// happened: a client clock a little fast is normal, a day is not.
	MaxFutureSkew = 24 * time.Hour
	// MaxAmount bounds a commerce amount, in minor units (10^11: a billion
	// in a two-decimal currency). An hour of one key at the default rate
	// limit at this amount is 3.6×10^18, inside int64; the roll-ups and
	// queries saturate rather than wrap beyond that.
	MaxAmount = 100_000_000_000
)

// MinTime is the earliest time an event may carry (timestamp, sentAt,
// the corrected occurrence): the Unix epoch. Earlier times are clock
// faults, and times outside years 0–9999 cannot even be written as RFC 3339.
var MinTime = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)

// FieldError says which field of an input is wrong and why. Field is the
// JSON path of the field as the caller sent it ("properties.amount",
// "traits.tags[2]").
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return e.Field + " " + e.Reason }

func fieldErr(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// CheckText refuses a string no database can store as sent.
func CheckText(field, s string) error {
	if p := TextProblem(s); p != "" {
		return &FieldError{field, p}
	}
	return nil
}

// CheckName checks a required name: storable, not blank, at most
// MaxNameLen characters.
func CheckName(field, s string) error {
	if err := CheckText(field, s); err != nil {
		return err
	}
	if Blank(s) {
		return &FieldError{field, "is required (it is empty or only white space and invisible characters)"}
	}
	if n := utf8.RuneCountInString(s); n > MaxNameLen {
		return fieldErr(field, "must be at most %d characters (got %d)", MaxNameLen, n)
	}
	return nil
}

// CheckID checks an optional id: storable, at most MaxIDLen characters,
// and, when present, not blank (the API drops blank ids as missing).
func CheckID(field, s string) error {
	if s == "" {
		return nil
	}
	if err := CheckText(field, s); err != nil {
		return err
	}
	if Blank(s) {
		return &FieldError{field, "must not be blank (only white space and invisible characters)"}
	}
	if n := utf8.RuneCountInString(s); n > MaxIDLen {
		return fieldErr(field, "must be at most %d characters (got %d)", MaxIDLen, n)
	}
	return nil
}

// DecodeString decodes a JSON string token, refusing what encoding/json
// would silently rewrite (invalid UTF-8 and unpaired surrogate escapes
// become U+FFFD) and what no database can store (NUL).
func DecodeString(field string, raw []byte) (string, error) {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 || t[0] != '"' || !json.Valid(t) {
		return "", &FieldError{field, "must be a string"}
	}
	sc := jsonScanner{b: t}
	if _, err := sc.str(field); err != nil {
		return "", err
	}
	var s string
	if err := json.Unmarshal(t, &s); err != nil {
		return "", &FieldError{field, "must be a string"}
	}
	return s, nil
}

// CheckTime checks a time an event carries against when it was received.
func CheckTime(field string, t, receivedAt time.Time) error {
	if t.Before(MinTime) {
		return fieldErr(field, "is before %s; send the time the event happened", MinTime.Format(time.RFC3339))
	}
	if t.After(receivedAt.Add(MaxFutureSkew)) {
		return fieldErr(field, "is more than %d hours in the future", int(MaxFutureSkew.Hours()))
	}
	return nil
}

// CheckTimes checks an event's client times and the occurrence time
// corrected from them (CorrectedTime), naming sentAt when only the
// correction is out of range.
func CheckTimes(timestamp, sentAt *time.Time, receivedAt time.Time) error {
	if timestamp != nil {
		if err := CheckTime("timestamp", *timestamp, receivedAt); err != nil {
			return err
		}
	}
	if sentAt != nil {
		if err := CheckTime("sentAt", *sentAt, receivedAt); err != nil {
			return err
		}
	}
	if timestamp != nil && sentAt != nil {
		if err := CheckTime("sentAt", CorrectedTime(timestamp, sentAt, receivedAt), receivedAt); err != nil {
			return &FieldError{"sentAt", "moves the corrected timestamp out of range: it " + err.(*FieldError).Reason}
		}
	}
	return nil
}

// ValidateTracked is the one validation of a tracked event, run by the
// API at the edge and again by the command handler. It does not check the
// key class (a 403, not a 400): see KeyAllows.
func ValidateTracked(d *TrackedData, occurredAt time.Time) error {
	if err := CheckName("event", d.Event); err != nil {
		return err
	}
	for _, f := range []struct{ name, v string }{{"userId", d.UserID}, {"anonymousId", d.AnonymousID}, {"messageId", d.MessageID}} {
		if err := CheckID(f.name, f.v); err != nil {
			return err
		}
	}
	if IsIdentify(d.Event) && d.UserID == "" {
		return &FieldError{"userId", "is required to identify a user"}
	}
	if d.UserID == "" && d.AnonymousID == "" {
		return &FieldError{"userId", "or anonymousId is required"}
	}
	if err := CheckObject("properties", d.Properties); err != nil {
		return err
	}
	if err := CheckObject("context", d.Context); err != nil {
		return err
	}
	if err := checkIdentity(d); err != nil {
		return err
	}
	if d.ReceivedAt.Before(MinTime) {
		return &FieldError{"receivedAt", "is not a time this server could have received the event at"}
	}
	if err := CheckTimes(d.Timestamp, d.SentAt, d.ReceivedAt); err != nil {
		return err
	}
	if err := CheckTime("timestamp", occurredAt, d.ReceivedAt); err != nil {
		return err
	}
	if IsCommerce(d.Event) {
		if err := CheckCommerce(d.Properties); err != nil {
			return err
		}
	}
	return nil
}

// AddAmounts adds two sums of amounts, saturating at the int64 limits
// instead of wrapping: revenue roll-ups and queries use it, so no volume of
// purchases can turn a total negative or fail a projection.
func AddAmounts(a, b int64) int64 {
	s := a + b
	switch {
	case a > 0 && b > 0 && s < 0:
		return math.MaxInt64
	case a < 0 && b < 0 && s >= 0:
		return math.MinInt64
	}
	return s
}

// Commerce is what a commerce event's properties must carry.
type Commerce struct {
	OrderID  string
	Amount   int64
	Currency string
}

// CheckCommerce requires orderId, an integer amount in minor units from 0
// to MaxAmount and a three-letter currency on commerce events.
func CheckCommerce(props json.RawMessage) error {
	_, err := ParseCommerce(props)
	return err
}

// ParseCommerce reads and checks a commerce event's order, amount and
// currency from its properties (already a checked object).
func ParseCommerce(props json.RawMessage) (Commerce, error) {
	var c Commerce
	var raw struct {
		OrderID  json.RawMessage `json:"orderId"`
		Amount   json.RawMessage `json:"amount"`
		Currency json.RawMessage `json:"currency"`
	}
	if len(props) > 0 {
		if err := json.Unmarshal(props, &raw); err != nil {
			return c, &FieldError{"properties", "must be a JSON object"}
		}
	}
	if isJSONNull(raw.OrderID) {
		return c, &FieldError{"properties.orderId", "is required for this event"}
	}
	if json.Unmarshal(raw.OrderID, &c.OrderID) != nil || Blank(c.OrderID) {
		return c, &FieldError{"properties.orderId", "must be a non-empty string"}
	}
	if isJSONNull(raw.Amount) {
		return c, &FieldError{"properties.amount", "is required: an integer number of minor units (cents)"}
	}
	a := strings.TrimSpace(string(raw.Amount))
	n, err := strconv.ParseInt(a, 10, 64)
	if err != nil || n < 0 || n > MaxAmount {
		return c, fieldErr("properties.amount", "must be an integer number of minor units (cents) from 0 to %d, not %s",
			int64(MaxAmount), truncate(a, 32))
	}
	c.Amount = n
	if json.Unmarshal(raw.Currency, &c.Currency) != nil || len(c.Currency) != 3 || !isASCIILetters(c.Currency) {
		return c, &FieldError{"properties.currency", `must be a 3-letter ISO 4217 code such as "EUR"`}
	}
	return c, nil
}

func isJSONNull(raw json.RawMessage) bool {
	t := strings.TrimSpace(string(raw))
	return t == "" || t == "null"
}

func isASCIILetters(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i] | 0x20
		if c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

// CheckObject checks an optional JSON object field (properties, traits,
// context): an object, at most MaxObjectBytes and MaxNesting deep, and
// storable (CheckStorableJSON). Problems name the path inside the object.
func CheckObject(field string, raw json.RawMessage) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	if len(raw) > MaxObjectBytes {
		return fieldErr(field, "must be at most %d bytes (got %d)", MaxObjectBytes, len(raw))
	}
	t := bytes.TrimSpace(raw)
	if len(t) == 0 || t[0] != '{' {
		return &FieldError{field, "must be a JSON object"}
	}
	return checkJSON(field, raw, MaxNesting)
}

// CheckStorableJSON checks that raw JSON can be stored by both databases
// as it is: valid, and every key and string storable text (valid UTF-8, no
// NUL, no unpaired surrogate escape — PostgreSQL's jsonb refuses both),
// every number a finite 64-bit float (jsonb's numeric has limits too).
// Unlike CheckObject it sets no size or depth limit: projections use it on
// what the log holds, whatever limits the API had when it was written.
func CheckStorableJSON(field string, raw json.RawMessage) error {
	if len(raw) == 0 {
		return nil
	}
	return checkJSON(field, raw, math.MaxInt)
}

func checkJSON(field string, raw json.RawMessage, maxDepth int) error {
	if !json.Valid(raw) {
		return &FieldError{field, "is not valid JSON"}
	}
	s := jsonScanner{b: raw, maxDepth: maxDepth, root: field}
	return s.value(field, 1)
}

// jsonScanner walks JSON already known to be valid, checking what
// encoding/json would silently accept or rewrite: invalid UTF-8 and bad
// surrogates (it substitutes U+FFFD), NUL, numbers beyond float64.
type jsonScanner struct {
	b        []byte
	i        int
	maxDepth int
	root     string // the field a depth problem is named by
}

var errInvalid = errors.New("invalid JSON")

func (s *jsonScanner) space() {
	for s.i < len(s.b) && (s.b[s.i] == ' ' || s.b[s.i] == '\t' || s.b[s.i] == '\n' || s.b[s.i] == '\r') {
		s.i++
	}
}

func (s *jsonScanner) value(path string, depth int) error {
	s.space()
	if s.i >= len(s.b) {
		return errInvalid
	}
	switch c := s.b[s.i]; {
	case c == '{' || c == '[':
		if depth > s.maxDepth {
			return fieldErr(s.root, "must nest at most %d levels (%s is deeper)", s.maxDepth, truncate(path, 64))
		}
		return s.container(path, depth, c)
	case c == '"':
		_, err := s.str(path)
		return err
	case c == '-' || (c >= '0' && c <= '9'):
		start := s.i
		for s.i < len(s.b) && strings.IndexByte("+-.eE0123456789", s.b[s.i]) >= 0 {
			s.i++
		}
		if _, err := strconv.ParseFloat(string(s.b[start:s.i]), 64); err != nil {
			return fieldErr(path, "is a number out of range (%s)", truncate(string(s.b[start:s.i]), 24))
		}
		return nil
	default: // true, false, null
		for s.i < len(s.b) && s.b[s.i] >= 'a' && s.b[s.i] <= 'z' {
			s.i++
		}
		return nil
	}
}

func (s *jsonScanner) container(path string, depth int, open byte) error {
	s.i++
	for n := 0; ; n++ {
		s.space()
		if s.b[s.i] == '}' || s.b[s.i] == ']' {
			s.i++
			return nil
		}
		if n > 0 { // the comma
			s.i++
			s.space()
		}
		child := path + "[" + strconv.Itoa(n) + "]"
		if open == '{' {
			key, err := s.str(path + " key")
			if err != nil {
				return err
			}
			child = path + "." + truncate(key, 64)
			s.space()
			s.i++ // the colon
		}
		if err := s.value(child, depth+1); err != nil {
			return err
		}
	}
}

// str scans a string token, returning its raw contents (escapes left as
// they are, which is enough to name a key).
func (s *jsonScanner) str(path string) (string, error) {
	s.i++ // the opening quote
	start := s.i
	for {
		c := s.b[s.i]
		switch {
		case c == '"':
			raw := s.b[start:s.i]
			s.i++
			if !utf8.Valid(raw) {
				return "", &FieldError{path, "must be valid UTF-8"}
			}
			return string(raw), nil
		case c == '\\':
			if s.b[s.i+1] != 'u' {
				s.i += 2
				continue
			}
			r, err := strconv.ParseUint(string(s.b[s.i+2:s.i+6]), 16, 32)
			if err != nil {
				return "", errInvalid
			}
			s.i += 6
			switch {
			case r == 0:
				return "", &FieldError{path, "must not contain the NUL character (\\u0000)"}
			case r >= 0xDC00 && r <= 0xDFFF:
				return "", &FieldError{path, "has an unpaired surrogate escape; it must be valid UTF-16"}
			case r >= 0xD800 && r <= 0xDBFF:
				low, ok := s.lowSurrogate()
				if !ok || low < 0xDC00 || low > 0xDFFF {
					return "", &FieldError{path, "has an unpaired surrogate escape; it must be valid UTF-16"}
				}
				s.i += 6
			}
		default:
			s.i++
		}
	}
}

func (s *jsonScanner) lowSurrogate() (uint64, bool) {
	if s.i+6 > len(s.b) || s.b[s.i] != '\\' || s.b[s.i+1] != 'u' {
		return 0, false
	}
	r, err := strconv.ParseUint(string(s.b[s.i+2:s.i+6]), 16, 32)
	return r, err == nil
}
