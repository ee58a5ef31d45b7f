package api_test

import (
	"bytes"
	"encoding/json"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/gamify/boost/domain"
)

// These fuzz targets hold every decoder at the edge — track, batch,
// identify, the management bodies and the query parameters — to the API's
// promise: an answer is a 4xx JSON error, or what was accepted is applied
// by every projection on SQLite and PostgreSQL; never a 5xx, never a 2xx
// with no body, never a trusted event (or a look-alike of one) accepted
// from a publishable key. The seeds are the cases a hostile probe of boost
// dev found; `go test` runs them, `go test -fuzz` explores from them (CI
// runs each target for a bounded time, see .ci/run).

// judge checks one answer against the promise.
func (e *edge) judge(t *testing.T, what string, status int, body []byte) {
	t.Helper()
	applyErr, trusted := e.take()
	var v any
	validJSON := json.Unmarshal(body, &v) == nil
	switch {
	case status >= 500:
		t.Fatalf("%s: %d for input: %s", what, status, body)
	case status >= 400:
		var env struct {
			Error *struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if json.Unmarshal(body, &env) != nil || env.Error == nil || env.Error.Code == "" || env.Error.Message == "" {
			t.Fatalf("%s: %d without a JSON error: %s", what, status, body)
		}
	case !validJSON:
		t.Fatalf("%s: %d with a body that is not JSON: %q", what, status, body)
	}
	if applyErr != nil {
		t.Fatalf("%s: answered %d but not applicable: %v", what, status, applyErr)
	}
	if trusted != "" {
		t.Fatalf("%s: a publishable key's event %q was accepted, which is (a look-alike of) a trusted event", what, trusted)
	}
}

// sameAsSent checks that each accepted event reads back, on every
// database, as it was sent — name, ids, properties — so nothing was
// silently rewritten on the way (a blank id reads as absent: that is the
// documented rule, not a rewrite).
func (e *edge) sameAsSent(t *testing.T, items []json.RawMessage, ids []string, identify bool) {
	t.Helper()
	for i, raw := range items {
		if ids[i] == "" {
			continue
		}
		var sent map[string]any
		if decodeNumbers(raw, &sent) != nil {
			t.Fatalf("accepted item %d is not an object: %s", i, raw)
		}
		for d := range e.servers {
			status, b := e.do(d, http.MethodGet, "/v1/projects/"+e.project+"/events/"+ids[i], e.adminToken, "", "")
			if status != http.StatusOK {
				t.Fatalf("accepted event %s reads %d on %s: %s", ids[i], status, e.dbs[d].Dialect, b)
			}
			var got map[string]any
			_ = decodeNumbers(b, &got)
			want := func(keys ...string) any {
				for _, k := range keys {
					if v, ok := sent[k]; ok && v != nil {
						return v
					}
				}
				return nil
			}
			name := want("event", "type")
			if identify {
				name = domain.IdentifyEvent
			}
			id := func(k string) any {
				if v, _ := sent[k].(string); v != "" && !domain.Blank(v) {
					return v
				}
				return nil
			}
			props := want("properties", "traits")
			if props == nil {
				props = map[string]any{}
			}
			for _, c := range []struct {
				field     string
				want, got any
			}{{"event", name, got["event"]}, {"userId", id("userId"), got["userId"]},
				{"anonymousId", id("anonymousId"), got["anonymousId"]}, {"messageId", id("messageId"), got["messageId"]},
				{"properties", props, got["properties"]}, {"context", want("context"), got["context"]}} {
				if !sameJSON(c.want, c.got) {
					t.Fatalf("event %s on %s: %s reads %#v, sent %#v", ids[i], e.dbs[d].Dialect, c.field, c.got, c.want)
				}
			}
		}
	}
}

// decodeNumbers decodes JSON keeping numbers as written (some overflow a
// float64 in fields Boost ignores).
func decodeNumbers(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return dec.Decode(v)
}

// sameJSON compares decoded JSON values, numbers by value (jsonb writes
// 1e2 as 100).
func sameJSON(a, b any) bool {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			if !sameJSON(v, y[k]) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !sameJSON(x[i], y[i]) {
				return false
			}
		}
		return true
	case json.Number:
		y, ok := b.(json.Number)
		if !ok {
			return false
		}
		fx, errx := strconv.ParseFloat(string(x), 64)
		fy, erry := strconv.ParseFloat(string(y), 64)
		return errx == nil && erry == nil && (fx == fy || math.Abs(fx-fy) <= 1e-12*math.Max(math.Abs(fx), math.Abs(fy)))
	default:
		return a == b
	}
}

func (e *edge) key(secret bool) string {
	if secret {
		return e.sk
	}
	return e.pk
}

// trackSeeds are single events: the probe's findings and their kin.
var trackSeeds = []string{
	`{"event":"page_view","userId":"u1","properties":{"path":"/"}}`,
	`{"event":"a\u0000b","userId":"u1"}`,
	"{\"event\":\"a\xffb\",\"userId\":\"u1\"}",
	"{\"event\":\"click\",\"userId\":\"caf\xc3\"}",
	`{"event":"\u200b","userId":"u1"}`,
	`{"event":"\ufeff","anonymousId":"a1"}`,
	`{"event":"click","userId":"\u200b\u200d"}`,
	`{"event":"click","userId":"\ud800"}`,
	`{"event":"click","userId":"u1","sentAt":"0000-01-01T00:00:00Z","timestamp":"2026-01-01T00:00:00Z"}`,
	`{"event":"click","userId":"u1","timestamp":"9999-12-31T23:59:59Z"}`,
	`{"event":"click","userId":"u1","timestamp":253402300799999}`,
	`{"event":"click","userId":"u1","timestamp":1e15}`,
	`{"event":"click","userId":"u1","sentAt":"1970-01-01T00:00:00Z","timestamp":"2026-11-01T00:00:00Z"}`,
	`{"event":"purchase","userId":"u1","properties":{"orderId":"o1","amount":9223372036854775807,"currency":"EUR"}}`,
	`{"event":"purchase","userId":"u1","properties":{"orderId":"o1","amount":100000000000,"currency":"EUR"}}`,
	`{"event":"purchase","userId":"u1","properties":{"orderId":"o1","amount":1999,"currency":"XXX"}}`,
	`{"event":"pur\u200bchase","userId":"u1","properties":{"orderId":"o1","amount":1,"currency":"EUR"}}`,
	`{"event":"\u0440urchase","userId":"u1","properties":{"orderId":"o1","amount":1,"currency":"EUR"}}`,
	`{"event":"ｐｕｒｃｈａｓｅ","userId":"u1","properties":{"orderId":"o1","amount":1,"currency":"EUR"}}`,
	`{"event":"pur\u00adchase","userId":"u1"}`,
	`{"event":"Quest.Completed","userId":"u1"}`,
	`{"event":"click","userId":"u1","properties":{"a":"\u0000"}}`,
	`{"event":"click","userId":"u1","properties":{"k\u0000":1}}`,
	`{"event":"click","userId":"u1","properties":{"a":"\udc00"}}`,
	`{"event":"click","userId":"u1","properties":{"n":1e400}}`,
	`{"event":"click","userId":"u1","context":{"ip":"\u0000"}}`,
	`{"type":"$identify","userId":"u1","traits":{"plan":"pro"}}`,
	`{"event":"$profile_update","userId":"u1","traits":{"plan":"pro"},"timestamp":"` + "2026-12-05T10:00:00Z" + `"}`,
	`{"event":"click","anonymousId":"a1","messageId":"\u0000"}`,
}

func FuzzTrack(f *testing.F) {
	for _, s := range trackSeeds {
		f.Add(s, false)
		f.Add(s, true)
	}
	e := startEdge(f)
	f.Fuzz(func(t *testing.T, body string, secret bool) {
		status, b := e.do(0, http.MethodPost, "/v1/events/track", e.key(secret), body, "")
		e.judge(t, "track "+body, status, b)
		if status == http.StatusAccepted {
			e.sameAsSent(t, []json.RawMessage{json.RawMessage(body)}, []string{idOf(b)}, false)
		}
	})
}

func FuzzBatch(f *testing.F) {
	for _, s := range trackSeeds {
		f.Add(`{"batch":[`+s+`,{"event":"click","anonymousId":"ok"}]}`, false)
	}
	f.Add(`{"batch":[{"event":"click","userId":"u"},{"event":"click","userId":"u","timestamp":"2026-01-01T00:00:00Z"}],"sentAt":"0000-01-01T00:00:00Z"}`, false)
	f.Add(`{"events":[{"type":"page_view","properties":{"path":"/"},"anonymousId":"a"}],"writeKey":"x"}`, true)
	f.Add(`{"batch":[]}`, false)
	f.Add(`{"batch":[1,"x",null,[]]}`, true)
	e := startEdge(f)
	f.Fuzz(func(t *testing.T, body string, secret bool) {
		status, b := e.do(0, http.MethodPost, "/v1/events/batch", e.key(secret), body, "")
		e.judge(t, "batch "+body, status, b)
		if status == http.StatusAccepted {
			var req struct {
				Batch, Events []json.RawMessage
			}
			var resp struct {
				Accepted []struct {
					Index int
					ID    string
				}
			}
			_ = json.Unmarshal([]byte(body), &req)
			_ = json.Unmarshal(b, &resp)
			items := req.Batch
			if items == nil {
				items = req.Events
			}
			ids := make([]string, len(items))
			for _, a := range resp.Accepted {
				ids[a.Index] = a.ID
			}
			e.sameAsSent(t, items, ids, false)
		}
	})
}

func FuzzIdentify(f *testing.F) {
	for _, s := range []string{
		`{"userId":"u1","traits":{"plan":"pro"},"anonymousId":"a1"}`,
		`{"userId":"\u200b","traits":{"plan":"pro"}}`,
		`{"userId":"u\u0000","traits":{}}`,
		"{\"userId\":\"u\xff\",\"traits\":{}}",
		`{"userId":"u1","traits":{"plan":"\ud83d"}}`,
		`{"userId":"u1","traits":{"plan":"pro"},"timestamp":"2026-12-05T23:00:00Z"}`,
		`{"userId":"u1","traits":[1]}`,
		`{"anonymousId":"a1","traits":{"plan":"pro"}}`,
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	e := startEdge(f)
	f.Fuzz(func(t *testing.T, body string, secret bool) {
		status, b := e.do(0, http.MethodPost, "/v1/identify", e.key(secret), body, "")
		e.judge(t, "identify "+body, status, b)
		if status == http.StatusAccepted {
			e.sameAsSent(t, []json.RawMessage{json.RawMessage(body)}, []string{idOf(b)}, true)
		}
	})
}

func FuzzManagement(f *testing.F) {
	for _, s := range []string{
		`{"name":"Acme"}`,
		`{"name":"a\u0000b"}`,
		"{\"name\":\"caf\xe9\"}",
		`{"name":"\u200b\ufeff"}`,
		`{"name":"  "}`,
		`{"name":"` + strings.Repeat("é", 256) + `"}`,
		`{"name":"Web","type":"publishable"}`,
		`{"name":"Web","type":"secret\u0000"}`,
		`{"name":5}`,
		`[]`,
		`{"name":"\ud800"}`,
	} {
		for kind := range uint8(3) {
			f.Add(kind, s)
		}
	}
	e := startEdge(f)
	f.Fuzz(func(t *testing.T, kind uint8, body string) {
		path := []string{"/v1/organizations", "/v1/organizations/" + e.org + "/projects",
			"/v1/projects/" + e.project + "/api-keys"}[kind%3]
		status, b := e.do(0, http.MethodPost, path, e.adminToken, body, "")
		e.judge(t, "POST "+path+" "+body, status, b)
	})
}

func FuzzQueryParams(f *testing.F) {
	for _, q := range []string{
		"", "from=0000-01-01T00:00:00Z&to=0000-01-08T00:00:00Z", "from=9999-12-24T00:00:00Z&to=9999-12-31T23:59:59Z",
		"from=0001-01-01T00:00:00Z&to=0001-01-02T00:00:00Z&tz=America/Los_Angeles",
		"from=1970-01-01T00:00:00Z&to=1970-01-02T00:00:00Z&tz=Pacific/Kiritimati&bucket=month",
		"event=a%00b", "userId=%FF", "prefix=%00", "cursor=%00", "cursor=eyJhIjoiXHUwMDAwIn0",
		"steps=a,%E2%80%8B&window=24h", "steps=signup,purchase&window=-1h", "period=week&periods=52",
		"bucket=minute&from=2026-11-01T00:00:00Z&to=2026-11-02T00:00:00Z", "limit=1000000", "status=%FF",
		"tz=%00", "tz=Local", "anonymousId=" + url.QueryEscape("\u200b"), "from=2026-11-01T00:00:00.999999999Z",
	} {
		for route := range uint8(len(queryRoutes)) {
			f.Add(route, q)
		}
	}
	e := startEdge(f)
	f.Fuzz(func(t *testing.T, route uint8, query string) {
		path := "/v1/projects/" + e.project + queryRoutes[int(route)%len(queryRoutes)]
		if strings.HasSuffix(path, "/users/") {
			path += url.PathEscape(query)
		} else {
			path += "?" + query
		}
		if _, err := url.ParseRequestURI(path); err != nil || strings.IndexFunc(path, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 {
			return // not a request line any client could send
		}
		for i := range e.servers {
			status, b := e.do(i, http.MethodGet, path, e.adminToken, "", "")
			e.judge(t, "GET "+path+" on "+string(e.dbs[i].Dialect), status, b)
		}
	})
}

func idOf(body []byte) string {
	var r struct{ ID string }
	_ = json.Unmarshal(body, &r)
	return r.ID
}

var queryRoutes = []string{"/events", "/users", "/users/", "/analytics/events", "/analytics/users",
	"/analytics/top-events", "/analytics/revenue", "/analytics/funnel", "/analytics/retention"}
