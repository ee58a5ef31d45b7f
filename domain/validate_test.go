package domain_test

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/gamify/boost/domain"
)

func TestTextProblemAndBlank(t *testing.T) {
	cases := []struct {
		s       string
		problem bool
		blank   bool
	}{
		{"page_view", false, false},
		{"", false, true},
		{"  \t\n", false, true},
		{"\u200b", false, true},             // zero-width space
		{"\ufeff", false, true},             // BOM
		{"\u00ad\u200d\u2060", false, true}, // soft hyphen, ZWJ, word joiner
		{"\u3000", false, true},             // ideographic space
		{"\ufe0f", false, true},             // variation selector
		{"\u2800", false, false},            // braille blank is a visible cell
		{"a\u200b", false, false},
		{"a\x00b", true, false},
		{"\x00", true, false},
		{"caf\xc3", true, false}, // truncated UTF-8
		{"\xff\xfe", true, false},
		{"日本", false, false},
	}
	for _, c := range cases {
		if got := domain.TextProblem(c.s) != ""; got != c.problem {
			t.Errorf("TextProblem(%q) = %q, want a problem: %v", c.s, domain.TextProblem(c.s), c.problem)
		}
		if !c.problem {
			if got := domain.Blank(c.s); got != c.blank {
				t.Errorf("Blank(%q) = %v, want %v", c.s, got, c.blank)
			}
		}
	}
}

// TestLookAlikesOfTrustedNamesAreTrusted: the publishable-key rule sees
// through case, white space, invisible characters, compatibility forms and
// confusable letters.
func TestLookAlikesOfTrustedNamesAreTrusted(t *testing.T) {
	trusted := []string{
		"purchase", "Purchase", " PURCHASE ", "pur\u200bchase", "pur\u00adchase", "\ufeffpurchase",
		"ｐｕｒｃｈａｓｅ",                                                   // fullwidth
		"\u0440urchase",                                              // Cyrillic р
		"purch\u0430se",                                              // Cyrillic а
		"quest.completed", "Quest.Completed", "quest\u2024completed", // one dot leader
		"user.leve1ed_up", // digit one for l
		"commission.created", "checkout_success",
	}
	for _, n := range trusted {
		if !domain.IsTrusted(n) {
			t.Errorf("%q (canonical %q) should be trusted", n, domain.CanonicalName(n))
		}
		if domain.KeyAllows(domain.KeyPublishable, n) {
			t.Errorf("a publishable key may send %q", n)
		}
		if !domain.KeyAllows(domain.KeySecret, n) {
			t.Errorf("a secret key may not send %q", n)
		}
	}
	for _, n := range []string{"page_view", "purchases", "pre_purchase", "cart_add", "click", "purchase_intent", "commission"} {
		if domain.IsTrusted(n) {
			t.Errorf("%q should not be trusted", n)
		}
	}
	for _, n := range []string{"Purchase", "pur\u200bchase", "ｃｈｅｃｋｏｕｔ_complete"} {
		if !domain.IsCommerce(n) {
			t.Errorf("%q should be a commerce event", n)
		}
	}
	for _, n := range []string{"$identify", " $Identify", "$profile_update", "$pro\u200bfile_update"} {
		if !domain.IsIdentify(n) {
			t.Errorf("%q should be an identify", n)
		}
	}
}

func TestCheckObject(t *testing.T) {
	deep := strings.Repeat(`{"a":`, 33) + "1" + strings.Repeat("}", 33)
	cases := []struct {
		name, raw, field string // field "" means valid
	}{
		{"plain", `{"a":1,"b":"x","c":[true,null,{"d":-1.5e10}]}`, ""},
		{"empty", `{}`, ""},
		{"escaped text", `{"a":"tab\t\u00e9\ud83d\ude00"}`, ""},
		{"NUL escape", `{"a":"x\u0000y"}`, "properties.a"},
		{"NUL in a key", `{"k\u0000":1}`, "properties key"},
		{"NUL deep", `{"a":[1,{"b":"\u0000"}]}`, "properties.a[1].b"},
		{"lone high surrogate", `{"a":"\ud83d"}`, "properties.a"},
		{"lone low surrogate", `{"a":"\ude00x"}`, "properties.a"},
		{"high then not low", `{"a":"\ud83d\u0041"}`, "properties.a"},
		{"invalid UTF-8", "{\"a\":\"\xff\"}", "properties.a"},
		{"number too big", `{"a":1e400}`, "properties.a"},
		{"number too small", `{"a":-1e999}`, "properties.a"},
		{"number fine", `{"a":1e300}`, ""},
		{"too deep", deep, "properties"},
		{"array", `[1]`, "properties"},
		{"not JSON", `{"a":`, "properties"},
		{"too big", `{"a":"` + strings.Repeat("x", domain.MaxObjectBytes) + `"}`, "properties"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := domain.CheckObject("properties", json.RawMessage(c.raw))
			var fe *domain.FieldError
			switch {
			case c.field == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.field != "" && !errors.As(err, &fe):
				t.Fatalf("accepted, want a problem with %s (err %v)", c.field, err)
			case c.field != "" && fe.Field != c.field:
				t.Fatalf("field %q (%v), want %q", fe.Field, err, c.field)
			}
		})
	}
	if err := domain.CheckStorableJSON("context", json.RawMessage(deep)); err != nil {
		t.Errorf("CheckStorableJSON sets no depth limit: %v", err)
	}
}

func TestDecodeStringRefusesWhatJSONWouldRewrite(t *testing.T) {
	for _, raw := range []string{"\"a\xffb\"", `"\ud800"`, `"a\u0000"`, `5`, `null`, `"unterminated`} {
		if _, err := domain.DecodeString("userId", []byte(raw)); err == nil {
			t.Errorf("DecodeString(%q) accepted", raw)
		}
	}
	if s, err := domain.DecodeString("userId", []byte(`"caf\u00e9 \ud83d\ude00"`)); err != nil || s != "café 😀" {
		t.Errorf("DecodeString: %q, %v", s, err)
	}
}

func TestCheckTimes(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	at := func(s string) *time.Time {
		v, _ := time.Parse(time.RFC3339, s)
		return &v
	}
	cases := []struct {
		name              string
		timestamp, sentAt *time.Time
		field             string
	}{
		{"none", nil, nil, ""},
		{"past", at("2020-01-01T00:00:00Z"), nil, ""},
		{"epoch", at("1970-01-01T00:00:00Z"), nil, ""},
		{"before the epoch", at("1969-12-31T23:59:59Z"), nil, "timestamp"},
		{"year 0", at("0000-01-01T00:00:00Z"), nil, "timestamp"},
		{"23h ahead", at("2026-12-05T11:00:00Z"), nil, ""},
		{"25h ahead", at("2026-12-05T13:00:00Z"), nil, "timestamp"},
		{"sentAt year 0", nil, at("0000-01-01T00:00:00Z"), "sentAt"},
		{"sentAt in the future", nil, at("2027-01-01T00:00:00Z"), "sentAt"},
		{"skew moves it before the epoch", at("1970-01-01T00:30:00Z"), at("2026-12-04T13:00:00Z"), "sentAt"},
		{"skew corrected", at("2026-12-04T10:00:00Z"), at("2026-12-04T10:00:05Z"), ""},
	}
	for _, c := range cases {
		err := domain.CheckTimes(c.timestamp, c.sentAt, now)
		var fe *domain.FieldError
		switch {
		case c.field == "" && err != nil:
			t.Errorf("%s: refused: %v", c.name, err)
		case c.field != "" && (!errors.As(err, &fe) || fe.Field != c.field):
			t.Errorf("%s: %v, want a problem with %s", c.name, err, c.field)
		}
	}
}

func TestParseCommerce(t *testing.T) {
	cases := []struct {
		props, field string
		amount       int64
	}{
		{`{"orderId":"o1","amount":1999,"currency":"EUR"}`, "", 1999},
		{`{"orderId":"o1","amount":0,"currency":"eur"}`, "", 0},
		{`{"orderId":"o1","amount":100000000000,"currency":"JPY"}`, "", domain.MaxAmount},
		{`{"orderId":"o1","amount":100000000001,"currency":"JPY"}`, "properties.amount", 0},
		{`{"orderId":"o1","amount":9223372036854775807,"currency":"EUR"}`, "properties.amount", 0},
		{`{"orderId":"o1","amount":-1,"currency":"EUR"}`, "properties.amount", 0},
		{`{"orderId":"o1","amount":19.99,"currency":"EUR"}`, "properties.amount", 0},
		{`{"orderId":"o1","amount":"1999","currency":"EUR"}`, "properties.amount", 0},
		{`{"amount":1,"currency":"EUR"}`, "properties.orderId", 0},
		{`{"orderId":"\u200b","amount":1,"currency":"EUR"}`, "properties.orderId", 0},
		{`{"orderId":7,"amount":1,"currency":"EUR"}`, "properties.orderId", 0},
		{`{"orderId":"o","amount":1,"currency":"EURO"}`, "properties.currency", 0},
		{`{"orderId":"o","amount":1,"currency":"€UR"}`, "properties.currency", 0},
		{`{"orderId":"o","amount":1}`, "properties.currency", 0},
	}
	for _, c := range cases {
		got, err := domain.ParseCommerce(json.RawMessage(c.props))
		var fe *domain.FieldError
		switch {
		case c.field == "" && (err != nil || got.Amount != c.amount):
			t.Errorf("%s: %+v, %v", c.props, got, err)
		case c.field != "" && (!errors.As(err, &fe) || fe.Field != c.field):
			t.Errorf("%s: %v, want a problem with %s", c.props, err, c.field)
		}
	}
}

func TestAddAmountsSaturates(t *testing.T) {
	cases := []struct{ a, b, want int64 }{
		{1, 2, 3},
		{math.MaxInt64, 1, math.MaxInt64},
		{math.MaxInt64 - 5, domain.MaxAmount, math.MaxInt64},
		{math.MaxInt64, -domain.MaxAmount, math.MaxInt64 - domain.MaxAmount},
		{math.MinInt64, -1, math.MinInt64},
		{-5, 3, -2},
	}
	for _, c := range cases {
		if got := domain.AddAmounts(c.a, c.b); got != c.want {
			t.Errorf("AddAmounts(%d, %d) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

func TestValidateTracked(t *testing.T) {
	now := time.Now().UTC()
	ok := func() domain.TrackedData {
		return domain.TrackedData{Event: "click", UserID: "u1", ReceivedAt: now, KeyID: domain.NewID(), KeyType: domain.KeyPublishable}
	}
	cases := []struct {
		name  string
		edit  func(d *domain.TrackedData)
		field string
	}{
		{"valid", func(*domain.TrackedData) {}, ""},
		{"NUL in the name", func(d *domain.TrackedData) { d.Event = "a\x00b" }, "event"},
		{"invisible name", func(d *domain.TrackedData) { d.Event = "\u200b\ufeff" }, "event"},
		{"long name", func(d *domain.TrackedData) { d.Event = strings.Repeat("é", 256) }, "event"},
		{"no user", func(d *domain.TrackedData) { d.UserID = "" }, "userId"},
		{"blank user", func(d *domain.TrackedData) { d.UserID = "\u200b" }, "userId"},
		{"anonymous only", func(d *domain.TrackedData) { d.UserID, d.AnonymousID = "", "a1" }, ""},
		{"invalid UTF-8 id", func(d *domain.TrackedData) { d.AnonymousID = "a\xff" }, "anonymousId"},
		{"identify without user", func(d *domain.TrackedData) { d.Event, d.UserID, d.AnonymousID = "$identify", "", "a" }, "userId"},
		{"NUL in properties", func(d *domain.TrackedData) { d.Properties = json.RawMessage(`{"a":"\u0000"}`) }, "properties.a"},
		{"purchase without order", func(d *domain.TrackedData) {
			d.Event, d.Properties = "purchase", json.RawMessage(`{"amount":1,"currency":"EUR"}`)
		}, "properties.orderId"},
	}
	for _, c := range cases {
		d := ok()
		c.edit(&d)
		err := domain.ValidateTracked(&d, now)
		var fe *domain.FieldError
		switch {
		case c.field == "" && err != nil:
			t.Errorf("%s: refused: %v", c.name, err)
		case c.field != "" && (!errors.As(err, &fe) || fe.Field != c.field):
			t.Errorf("%s: %v, want a problem with %s", c.name, err, c.field)
		}
	}
}
