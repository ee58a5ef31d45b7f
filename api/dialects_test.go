package api_test

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gamify/boost/domain"
)

// doReq sends req to the server over database i.
func (e *edge) doReq(i int, req *http.Request) (int, []byte) {
	rec := httptest.NewRecorder()
	e.servers[i].ServeHTTP(rec, req)
	return rec.Code, rec.Body.Bytes()
}

// capture is one request a real client library sent (compat/wire).
type capture struct {
	File       string   `json:"file"`
	Method     string   `json:"method"`
	URL        string   `json:"url"`
	RawHeaders []string `json:"rawHeaders"`
	BodyBase64 string   `json:"bodyBase64"`
}

// captures returns what the real libraries sent to their event endpoints,
// by client.
func captures(t testing.TB) map[string][]capture {
	t.Helper()
	files, err := filepath.Glob("../compat/wire/*/index.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no captures under compat/wire: %v", err)
	}
	out := map[string][]capture{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var idx struct {
			Client   string    `json:"client"`
			Requests []capture `json:"requests"`
		}
		if err := json.Unmarshal(b, &idx); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		client := filepath.Base(filepath.Dir(f))
		for _, c := range idx.Requests {
			if c.Method == http.MethodPost && !strings.Contains(c.URL, "/flags") {
				out[client] = append(out[client], c)
			}
		}
	}
	return out
}

// request rebuilds a captured request with its headers and body as sent,
// the key replaced by key (a header key wins over the body's).
func (c capture) request(t testing.TB, key string) *http.Request {
	body, err := base64.StdEncoding.DecodeString(c.BodyBase64)
	if err != nil {
		t.Fatalf("%s: %v", c.File, err)
	}
	req := httptest.NewRequest(c.Method, c.URL, bytes.NewReader(body))
	for i := 0; i+1 < len(c.RawHeaders); i += 2 {
		switch strings.ToLower(c.RawHeaders[i]) {
		case "host", "authorization", "content-length", "connection":
		default:
			req.Header.Add(c.RawHeaders[i], c.RawHeaders[i+1])
		}
	}
	req.Header.Set("X-Api-Key", key)
	return req
}

// TestRealClientCapturesAreStored sends every request the Segment,
// RudderStack, PostHog and analytics.js libraries were recorded sending —
// their paths, headers, encodings and bodies, byte for byte — and
// requires each answered 2xx with every event accepted and applied by
// every projection on every database.
func TestRealClientCapturesAreStored(t *testing.T) {
	e := startEdge(t)
	for client, cs := range captures(t) {
		for _, c := range cs {
			status, b := e.doReq(0, c.request(t, e.sk))
			e.judge(t, client+"/"+c.File, status, b)
			if status < 200 || status >= 300 {
				t.Errorf("%s/%s: %s %s answered %d %s", client, c.File, c.Method, c.URL, status, b)
				continue
			}
			if strings.Contains(string(b), `"rejected":[{`) || strings.Contains(string(b), `"result":"drop"`) {
				t.Errorf("%s/%s: some events refused: %s", client, c.File, b)
			}
		}
	}
}

// stored reads an accepted event back.
func (e *edge) stored(t *testing.T, id string) map[string]any {
	t.Helper()
	status, b := e.do(0, http.MethodGet, "/v1/projects/"+e.project+"/events/"+id, e.adminToken, "", "")
	if status != http.StatusOK {
		t.Fatalf("event %s: %d %s", id, status, b)
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m
}

func (e *edge) user(t *testing.T, id string) map[string]any {
	t.Helper()
	status, b := e.do(0, http.MethodGet, "/v1/projects/"+e.project+"/users/"+url.PathEscape(id), e.adminToken, "", "")
	if status != http.StatusOK {
		t.Fatalf("user %s: %d %s", id, status, b)
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m
}

// acceptedIDs returns the ids a 2xx answer gives, in order.
func acceptedIDs(t *testing.T, status int, b []byte) []string {
	t.Helper()
	if status < 200 || status >= 300 {
		t.Fatalf("answered %d %s", status, b)
	}
	var r struct {
		ID       string
		Accepted []struct{ ID string }
		Rejected []json.RawMessage
	}
	_ = json.Unmarshal(b, &r)
	if len(r.Rejected) > 0 {
		t.Fatalf("some refused: %s", b)
	}
	if r.ID != "" {
		return []string{r.ID}
	}
	ids := make([]string, len(r.Accepted))
	for i, a := range r.Accepted {
		ids[i] = a.ID
	}
	return ids
}

func mustJSONEqual(t *testing.T, what string, got any, want string) {
	t.Helper()
	var w any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("%s: bad want %s", what, want)
	}
	g, _ := json.Marshal(got)
	var gv any
	_ = json.Unmarshal(g, &gv)
	if !sameJSONValue(gv, w) {
		t.Errorf("%s = %s, want %s", what, g, want)
	}
}

func sameJSONValue(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

// TestDialectMappings: each call of each dialect stored as documented in
// docs/migrating.md — its name, ids, properties and what it does to the
// user.
func TestDialectMappings(t *testing.T) {
	e := startEdge(t)
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(e.sk+":"))
	for _, c := range []struct {
		name, path, body string
		header           map[string]string
		want             map[string]string // stored fields, as JSON
		user             string            // the user whose traits and anonymous ids must be…
		traits, anon     string
	}{
		{name: "segment track", path: "/v1/track", header: map[string]string{"Authorization": basic},
			body: `{"type":"track","event":"Product Viewed","userId":"seg-1","anonymousId":"seg-a1","properties":{"sku":"s1"},
				"context":{"ip":"203.0.113.9"},"integrations":{"All":true,"Mixpanel":false},"messageId":"seg-m1"}`,
			want: map[string]string{"event": `"Product Viewed"`, "userId": `"seg-1"`, "anonymousId": `"seg-a1"`,
				"properties": `{"sku":"s1"}`, "context": `{"ip":"203.0.113.9"}`, "integrations": `{"All":true,"Mixpanel":false}`,
				"messageId": `"seg-m1"`}},
		{name: "segment identify by its one-letter path", path: "/v1/i",
			body: `{"type":"identify","userId":"seg-1","anonymousId":"seg-a1","traits":{"plan":"pro"},"writeKey":"` + e.sk + `"}`,
			want: map[string]string{"event": `"$identify"`, "properties": `{"plan":"pro"}`},
			user: "seg-1", traits: `{"plan":"pro"}`, anon: `["seg-a1"]`},
		{name: "segment page: name and category added to the properties", path: "/v1/page", header: map[string]string{"Authorization": basic},
			body: `{"userId":"seg-1","name":"Pricing","category":"Docs","properties":{"path":"/pricing"}}`,
			want: map[string]string{"event": `"page_view"`, "properties": `{"path":"/pricing","name":"Pricing","category":"Docs"}`}},
		{name: "segment page: the properties' own name wins", path: "/v1/p", header: map[string]string{"Authorization": basic},
			body: `{"userId":"seg-1","name":"Pricing","properties":{"name":"Pricing page"}}`,
			want: map[string]string{"event": `"page_view"`, "properties": `{"name":"Pricing page"}`}},
		{name: "segment screen", path: "/v1/screen", header: map[string]string{"Authorization": basic},
			body: `{"userId":"seg-1","name":"Settings","properties":{"tab":"privacy"}}`,
			want: map[string]string{"event": `"screen_view"`, "properties": `{"tab":"privacy","name":"Settings"}`}},
		{name: "segment alias links previousId", path: "/v1/alias", header: map[string]string{"Authorization": basic},
			body: `{"userId":"seg-1","previousId":"seg-old"}`,
			want: map[string]string{"event": `"$create_alias"`, "properties": `{"previousId":"seg-old"}`},
			user: "seg-1", anon: `["seg-a1","seg-old"]`},
		{name: "segment group", path: "/v1/group", header: map[string]string{"Authorization": basic},
			body: `{"userId":"seg-1","groupId":"org-9","traits":{"name":"Acme"}}`,
			want: map[string]string{"event": `"$group"`, "properties": `{"groupId":"org-9","traits":{"name":"Acme"}}`}},
		{name: "rudderstack: originalTimestamp is the call time", path: "/v1/batch", header: map[string]string{"Authorization": basic},
			body: `{"batch":[{"type":"track","event":"Late","userId":"seg-1","originalTimestamp":"2026-11-28T10:00:00.000Z",
				"sentAt":"2026-11-28T10:00:00.000Z"}]}`,
			want: map[string]string{"event": `"Late"`, "timestamp": `"2026-11-28T10:00:00Z"`}},
		{name: "posthog capture with $set and $set_once", path: "/batch/",
			body: `{"api_key":"` + e.sk + `","batch":[{"event":"Plan Changed","distinct_id":"ph-1","uuid":"0190a0a0-0000-7000-8000-000000000001",
				"properties":{"to":"pro","$set":{"plan":"pro"},"$set_once":{"first_plan":"free"}}}]}`,
			want: map[string]string{"event": `"Plan Changed"`, "userId": `"ph-1"`, "messageId": `"0190a0a0-0000-7000-8000-000000000001"`},
			user: "ph-1", traits: `{"plan":"pro","first_plan":"free"}`},
		{name: "posthog $set_once does not overwrite", path: "/e/",
			body: `{"api_key":"` + e.sk + `","batch":[{"event":"$set","properties":{"distinct_id":"ph-1"},"$set_once":{"plan":"free","first_seen":"x"}}]}`,
			want: map[string]string{"event": `"$set"`, "userId": `"ph-1"`},
			user: "ph-1", traits: `{"plan":"pro","first_plan":"free","first_seen":"x"}`},
		{name: "posthog $identify links $anon_distinct_id; top-level $set (posthog-js)", path: "/i/v0/e/",
			body: `{"api_key":"` + e.sk + `","batch":[{"event":"$identify","properties":{"distinct_id":"ph-1","$anon_distinct_id":"ph-anon"},
				"$set":{"email":"a@example.com"}}]}`,
			want: map[string]string{"event": `"$identify"`, "userId": `"ph-1"`},
			user: "ph-1", traits: `{"plan":"pro","first_plan":"free","first_seen":"x","email":"a@example.com"}`, anon: `["ph-anon"]`},
		{name: "posthog $create_alias links alias", path: "/capture/",
			body: `{"api_key":"` + e.sk + `","event":"$create_alias","properties":{"distinct_id":"ph-1","alias":"ph-alias"}}`,
			want: map[string]string{"event": `"$create_alias"`, "userId": `"ph-1"`}, user: "ph-1", anon: `["ph-anon","ph-alias"]`},
		{name: "seed browser SDK: no /v1, $identify with properties.traits, zone-less time", path: "/events/batch",
			header: map[string]string{"X-Api-Key": e.pk},
			body: `{"events":[{"type":"$identify","userId":"seed-1","anonymousId":"seed-a","properties":{"traits":{"plan":"gold"}},
				"timestamp":"2026-11-28T10:00:00"}]}`,
			want: map[string]string{"event": `"$identify"`, "properties": `{"traits":{"plan":"gold"}}`, "timestamp": `"2026-11-28T10:00:00Z"`},
			user: "seed-1", traits: `{"plan":"gold"}`, anon: `["seed-a"]`},
		{name: "seed server SDK: cents computed in floating point", path: "/v1/events/track",
			body: `{"event":"purchase","userId":"seed-1","properties":{"orderId":"o-1","amount":1999.0000000000002,"currency":"EUR"}}`,
			want: map[string]string{"properties": `{"orderId":"o-1","amount":1999,"currency":"EUR"}`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, c.path, strings.NewReader(c.body))
			req.Header.Set("Content-Type", "application/json")
			if c.header == nil && !strings.Contains(c.body, `"api_key"`) && !strings.Contains(c.body, `"writeKey"`) {
				req.Header.Set("X-Api-Key", e.sk)
			}
			for k, v := range c.header {
				req.Header.Set(k, v)
			}
			status, b := e.doReq(0, req)
			e.judge(t, c.name, status, b)
			ids := acceptedIDs(t, status, b)
			ev := e.stored(t, ids[0])
			for field, want := range c.want {
				mustJSONEqual(t, field, ev[field], want)
			}
			if c.user != "" {
				u := e.user(t, c.user)
				if c.traits != "" {
					mustJSONEqual(t, "traits", u["traits"], c.traits)
				}
				if c.anon != "" {
					mustJSONEqual(t, "anonymousIds", u["anonymousIds"], c.anon)
				}
			}
		})
	}
}

// TestDialectRefusals: what each dialect refuses, with the field and why;
// a refused item never refuses the batch's other items.
func TestDialectRefusals(t *testing.T) {
	e := startEdge(t)
	for _, c := range []struct {
		name, path, key, body string
		status                int
		field                 string
	}{
		{"a publishable key's purchase through Segment", "/v1/track", e.pk,
			`{"event":"purchase","userId":"u","properties":{"orderId":"o","amount":1,"currency":"EUR"}}`, 403, "event"},
		{"a publishable key's purchase through PostHog", "/batch/", e.pk,
			`{"batch":[{"event":"purchase","distinct_id":"u","properties":{"orderId":"o","amount":1,"currency":"EUR"}}]}`, 400, ""},
		{"an unknown Segment call", "/v1/batch", e.sk, `{"batch":[{"type":"screem","userId":"u"}]}`, 400, ""},
		{"an alias without previousId", "/v1/alias", e.sk, `{"userId":"u"}`, 400, "previousId"},
		{"a group without groupId", "/v1/group", e.sk, `{"userId":"u","traits":{}}`, 400, "groupId"},
		{"an amount that is no whole number", "/v1/track", e.sk,
			`{"event":"purchase","userId":"u","properties":{"orderId":"o","amount":19.99,"currency":"EUR"}}`, 400, "properties.amount"},
		{"$set that is not an object", "/e/", e.sk, `{"batch":[{"event":"x","distinct_id":"u","$set":[1]}]}`, 400, ""},
		{"a PostHog event without distinct_id", "/batch/", e.sk, `{"batch":[{"event":"x"}]}`, 400, ""},
		{"a Basic password is no key", "/v1/track", "", `{"event":"x","userId":"u"}`, 401, ""},
		// Bodies that are not JSON, for every decoder of a whole body.
		{"a PostHog capture that is no JSON", "/i/v0/e/", e.sk, `{"event":"x","distinct_id":"u",}`, 400, ""},
		{"a PostHog batch that is no JSON", "/batch/", e.sk, `{"batch":[{"event":"x","distinct_id":"u"}] x`, 400, ""},
		{"a Segment track that is no JSON", "/v1/track", e.sk, `{"event":"x","userId":"u"`, 400, ""},
		{"a Segment batch that is no JSON", "/v1/batch", e.sk, `{"batch":[{"type":"track","event":"x","userId":"u"},]}`, 400, ""},
		{"a native batch that is no JSON", "/v1/events/batch", e.sk, `{"events":[{"event":"x","userId":"u"}]]`, 400, ""},
		{"a native track that is no JSON", "/v1/events/track", e.sk, `{"event":"x","userId":"u"}}`, 400, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, c.path, strings.NewReader(c.body))
			if c.key != "" {
				req.Header.Set("X-Api-Key", c.key)
			} else {
				req.SetBasicAuth("", e.sk)
			}
			status, b := e.doReq(0, req)
			e.judge(t, c.name, status, b)
			if status != c.status {
				t.Fatalf("answered %d, want %d: %s", status, c.status, b)
			}
			if c.field != "" && !strings.Contains(string(b), `"field":"`+c.field+`"`) {
				t.Errorf("the answer does not name %s: %s", c.field, b)
			}
		})
	}
	// One bad item among good ones: 200, the good ones stored.
	req := httptest.NewRequest(http.MethodPost, "/batch/", strings.NewReader(`{"api_key":"`+e.pk+`","batch":[
		{"event":"ok","distinct_id":"u"},{"event":"purchase","distinct_id":"u","properties":{"orderId":"o","amount":1,"currency":"EUR"}},
		{"event":"ok2","distinct_id":"u"}]}`))
	status, b := e.doReq(0, req)
	e.judge(t, "mixed", status, b)
	var r struct {
		Accepted []struct{ Index int }
		Rejected []struct {
			Index int
			Code  string
		}
	}
	_ = json.Unmarshal(b, &r)
	if status != http.StatusOK || len(r.Accepted) != 2 || len(r.Rejected) != 1 || r.Rejected[0].Index != 1 || r.Rejected[0].Code != "forbidden_event" {
		t.Fatalf("mixed batch: %d %s", status, b)
	}
}

// TestBodyEncodings: every encoding a dialect's clients use decodes to
// the same event.
func TestBodyEncodings(t *testing.T) {
	e := startEdge(t)
	event := func(id string) string {
		return `{"api_key":"` + e.sk + `","batch":[{"event":"enc","distinct_id":"enc-u","uuid":"` + id + `"}]}`
	}
	gz := func(s string) []byte {
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		_, _ = w.Write([]byte(s))
		_ = w.Close()
		return buf.Bytes()
	}
	for _, c := range []struct {
		name, contentType, encoding string
		body                        func(id string) []byte
	}{
		{"JSON", "application/json", "", func(id string) []byte { return []byte(event(id)) }},
		{"gzip with Content-Encoding", "application/json", "gzip", func(id string) []byte { return gz(event(id)) }},
		{"gzip as text/plain, said nowhere (posthog-js)", "text/plain", "", func(id string) []byte { return gz(event(id)) }},
		{"gzip'd JSON labelled a form (RudderStack)", "application/x-www-form-urlencoded", "gzip", func(id string) []byte { return gz(event(id)) }},
		{"data=<base64> form (posthog-js beacons)", "application/x-www-form-urlencoded", "", func(id string) []byte {
			return []byte("data=" + url.QueryEscape(base64.StdEncoding.EncodeToString([]byte(event(id)))))
		}},
		{"data=<base64 of gzip> form", "application/x-www-form-urlencoded", "", func(id string) []byte {
			return []byte("data=" + url.QueryEscape(base64.RawURLEncoding.EncodeToString(gz(event(id)))))
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			id := domain.NewID()
			req := httptest.NewRequest(http.MethodPost, "/e/?compression=base64", bytes.NewReader(c.body(id)))
			req.Header.Set("Content-Type", c.contentType)
			if c.encoding != "" {
				req.Header.Set("Content-Encoding", c.encoding)
			}
			status, b := e.doReq(0, req)
			e.judge(t, c.name, status, b)
			ev := e.stored(t, acceptedIDs(t, status, b)[0])
			if ev["messageId"] != id || ev["event"] != "enc" {
				t.Errorf("stored %v", ev)
			}
		})
	}
}

// TestBrowserBootEndpoints: what analytics.js and posthog-js fetch before
// they send, served for a publishable key and refused for a secret one
// (a key in a URL lands in proxies' logs).
func TestBrowserBootEndpoints(t *testing.T) {
	e := startEdge(t)
	get := func(path string) (int, string) {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.Host = "boost.example:3000"
		status, b := e.doReq(0, req)
		return status, string(b)
	}
	for _, c := range []struct {
		path   string
		status int
		has    string
	}{
		{"/v1/projects/" + e.pk + "/settings", 200, `"apiHost":"boost.example:3000/v1"`},
		{"/v1/projects/" + e.sk + "/settings", 403, `secret_key_in_url`},
		{"/v1/projects/pk_live_" + strings.Repeat("0", 64) + "/settings", 401, `unknown API key`},
		{"/array/" + e.pk + "/config", 200, `"supportedCompression":["gzip","gzip-js"]`},
		{"/array/" + e.pk + "/config.js", 200, `window._POSTHOG_REMOTE_CONFIG["` + e.pk + `"]`},
		{"/array/" + e.sk + "/config.js", 403, `secret_key_in_url`},
		{"/flags/?v=2", 200, `"flags":{}`},
		{"/decide/?v=3", 200, `"featureFlags":{}`},
	} {
		status, body := get(c.path)
		if status != c.status || !strings.Contains(body, c.has) {
			t.Errorf("GET %s: %d %s; want %d with %s", c.path, status, body, c.status, c.has)
		}
		if strings.Contains(body, e.sk) {
			t.Errorf("GET %s echoes the secret key: %s", c.path, body)
		}
	}
}
