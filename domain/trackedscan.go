package domain

import "github.com/gamify/boost/internal/jsonscan"

// TrackedKeys are TrackedData's JSON field names: a hand-written decoder
// leaves a key that matches one of them but for case to encoding/json.
var TrackedKeys = jsonscan.FieldNames[TrackedData]()

// ScanTrackedField reads the value of key into t when key is one of
// TrackedData's fields (known), in one pass where encoding/json would
// validate, then reflect; ok is false when the value is not one the
// scanner takes, and the caller then decodes with encoding/json. The
// projector's records and the handlers' commands read a payload with it.
func ScanTrackedField(d *jsonscan.Scanner, key []byte, t *TrackedData) (known, ok bool) {
	switch string(key) {
	case "event":
		return true, d.Str(&t.Event)
	case "userId":
		return true, d.Str(&t.UserID)
	case "anonymousId":
		return true, d.Str(&t.AnonymousID)
	case "properties":
		return true, d.Raw(&t.Properties)
	case "context":
		return true, d.Raw(&t.Context)
	case "messageId":
		return true, d.Str(&t.MessageID)
	case "traits":
		return true, d.Raw(&t.Traits)
	case "traitsOnce":
		return true, d.Raw(&t.TraitsOnce)
	case "previousId":
		return true, d.Str(&t.PreviousID)
	case "integrations":
		return true, d.Raw(&t.Integrations)
	case "timestamp":
		return true, d.OptTime(&t.Timestamp)
	case "sentAt":
		return true, d.OptTime(&t.SentAt)
	case "receivedAt":
		return true, d.Time(&t.ReceivedAt)
	case "keyId":
		return true, d.Str(&t.KeyID)
	case "keyType":
		s := string(t.KeyType)
		if !d.Str(&s) {
			return true, false
		}
		t.KeyType = KeyType(s)
		return true, true
	case "reason":
		return true, d.Str(&t.Reason)
	case "code":
		return true, d.Str(&t.Code)
	case "outcome":
		return true, d.Str(&t.Outcome)
	}
	return false, true
}
