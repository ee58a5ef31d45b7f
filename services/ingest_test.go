package services_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gamify/boost/internal/testenv"
	"github.com/gamify/boost/services"
	"github.com/gamify/boost/store"
)

// tenant is a project with one key of each type.
type tenant struct {
	project, pk, sk, pkID, skID string
}

func newTenant(t *testing.T, nd *node) tenant {
	t.Helper()
	org := str(nd.admin("POST", "/v1/organizations", `{"name":"Acme"}`, http.StatusCreated), "id")
	var tn tenant
	tn.project = str(nd.admin("POST", "/v1/organizations/"+org+"/projects", `{"name":"Shop"}`, http.StatusCreated), "id")
	pk := nd.admin("POST", "/v1/projects/"+tn.project+"/api-keys", `{"name":"web","type":"publishable"}`, http.StatusCreated)
	sk := nd.admin("POST", "/v1/projects/"+tn.project+"/api-keys", `{"name":"server","type":"secret"}`, http.StatusCreated)
	tn.pk, tn.pkID, tn.sk, tn.skID = str(pk, "key"), str(pk, "id"), str(sk, "key"), str(sk, "id")
	return tn
}

func (nd *node) post(path, key, body string, headers ...string) response {
	nd.t.Helper()
	req, err := http.NewRequest("POST", nd.base+path, strings.NewReader(body))
	if err != nil {
		nd.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("X-Api-Key", key)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		nd.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// track sends one event and returns its id, requiring 202.
func (nd *node) track(key, body string) string {
	nd.t.Helper()
	r := nd.post("/v1/events/track", key, body)
	if r.Status != http.StatusAccepted {
		nd.t.Fatalf("track %s: %d %s", body, r.Status, r.Body)
	}
	m := r.json(nd.t)
	if str(m, "status") != "accepted" || str(m, "id") == "" {
		nd.t.Fatalf("track answer %s", r.Body)
	}
	return str(m, "id")
}

// waitEvent polls the event until it has left pending.
func (nd *node) waitEvent(project, id string) map[string]any {
	nd.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := nd.do("GET", "/v1/projects/"+project+"/events/"+id, "", nd.env.AdminToken)
		if r.Status == http.StatusOK {
			m := r.json(nd.t)
			if s := str(m, "status"); s != "pending" {
				return m
			}
		} else if r.Status != http.StatusNotFound {
			nd.t.Fatalf("reading event %s: %d %s", id, r.Status, r.Body)
		}
		if time.Now().After(deadline) {
			nd.t.Fatalf("event %s not processed within 20s (last %d %s)", id, r.Status, r.Body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (nd *node) countRows(query string, args ...any) int {
	nd.t.Helper()
	var n int
	if err := nd.n.DB.NewRaw(query, args...).Scan(context.Background(), &n); err != nil {
		nd.t.Fatal(err)
	}
	return n
}

func TestIngestAcceptance(t *testing.T) {
	eachMode(t, func(t *testing.T, env *testenv.Env) {
		nd := startNode(t, env, services.AllRoles...)
		tn := newTenant(t, nd)

		// A page view with the publishable key is processed and creates the user.
		id := nd.track(tn.pk, `{"event":"page_view","userId":"u1","anonymousId":"a1","properties":{"path":"/home"}}`)
		ev := nd.waitEvent(tn.project, id)
		if str(ev, "status") != "processed" || str(ev, "event") != "page_view" || ev["properties"].(map[string]any)["path"] != "/home" {
			t.Fatalf("page view: %v", ev)
		}
		if n := nd.countRows("SELECT count(*) FROM end_users WHERE project_id = "+store.ProjectKeySQL("?")+" AND external_id = 'u1'", tn.project); n != 1 {
			t.Fatalf("end user u1 rows: %d", n)
		}

		// Trusted events: refused for the publishable key however spelled,
		// accepted for the secret key.
		purchase := `{"event":"%s","userId":"u1","properties":{"orderId":"o1","amount":1999,"currency":"EUR"}}`
		for _, name := range []string{"purchase", "Purchase", " purchase", "quest.completed", "USER.LEVELED_UP"} {
			r := nd.post("/v1/events/track", tn.pk, fmt.Sprintf(purchase, name))
			if r.Status != http.StatusForbidden || !strings.Contains(string(r.Body), `"field":"event"`) || !strings.Contains(string(r.Body), "forbidden_event") {
				t.Fatalf("%q with publishable key: %d %s", name, r.Status, r.Body)
			}
		}
		pid := nd.track(tn.sk, fmt.Sprintf(purchase, "purchase"))
		if ev := nd.waitEvent(tn.project, pid); str(ev, "status") != "processed" {
			t.Fatalf("purchase: %v", ev)
		}
		r := nd.post("/v1/events/track", tn.sk, `{"event":"purchase","userId":"u1","properties":{"orderId":"o1","currency":"EUR"}}`)
		if r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), `"field":"properties.amount"`) {
			t.Fatalf("purchase without amount: %d %s", r.Status, r.Body)
		}

		// A rule failure reads failed with the reason, and is no revenue.
		fid := nd.track(tn.sk, `{"event":"purchase","userId":"u2","properties":{"orderId":"o2","amount":500,"currency":"XYZ"}}`)
		if ev := nd.waitEvent(tn.project, fid); str(ev, "status") != "failed" || !strings.Contains(str(ev, "errorDetails"), "XYZ") {
			t.Fatalf("failed purchase: %v", ev)
		}
		if n := nd.countRows("SELECT COALESCE(SUM(amount), 0) FROM revenue_hourly WHERE project_id = "+store.ProjectKeySQL("?"), tn.project); n != 1999 {
			t.Fatalf("revenue %d, want 1999 (the failed purchase must not count)", n)
		}

		// The same messageId twice is one event.
		dup := `{"event":"click","anonymousId":"a9","messageId":"msg-1","properties":{"n":1}}`
		id1, id2 := nd.track(tn.pk, dup), nd.track(tn.pk, dup)
		if id1 != id2 {
			t.Fatalf("same messageId, ids %s and %s", id1, id2)
		}
		nd.waitEvent(tn.project, id1)

		// Identify merges traits and links the anonymous id; $identify
		// through track does the same.
		r = nd.post("/v1/identify", tn.pk, `{"userId":"u1","traits":{"plan":"pro","name":"Ada"},"anonymousId":"a1"}`)
		if r.Status != http.StatusAccepted {
			t.Fatalf("identify: %d %s", r.Status, r.Body)
		}
		iid := nd.track(tn.pk, `{"event":"$identify","userId":"u1","traits":{"plan":"team"}}`)
		nd.waitEvent(tn.project, iid)
		var traits string
		if err := nd.n.DB.NewRaw("SELECT traits FROM end_users WHERE project_id = "+store.ProjectKeySQL("?")+" AND external_id = 'u1'", tn.project).Scan(context.Background(), &traits); err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		if err := json.Unmarshal([]byte(traits), &got); err != nil || got["plan"] != "team" || got["name"] != "Ada" {
			t.Fatalf("traits %s", traits)
		}
		if n := nd.countRows("SELECT count(*) FROM end_user_aliases WHERE project_id = "+store.ProjectKeySQL("?")+" AND anonymous_id = 'a1' AND external_id = 'u1'", tn.project); n != 1 {
			t.Fatalf("alias rows %d", n)
		}
		if n := nd.countRows("SELECT count(*) FROM events WHERE project_id = "+store.ProjectKeySQL("?")+" AND message_id = 'msg-1'", tn.project); n != 1 {
			t.Fatalf("%d events with messageId msg-1, want 1", n)
		}

		// Clock skew: the client clock is 10 minutes ahead; occurredAt is
		// corrected by sentAt.
		now := time.Now().UTC()
		ts, sent := now.Add(10*time.Minute-time.Minute), now.Add(10*time.Minute)
		sid := nd.track(tn.pk, fmt.Sprintf(`{"event":"page_view","userId":"u3","timestamp":"%s","sentAt":%d}`,
			ts.Format(time.RFC3339Nano), sent.UnixMilli()))
		ev = nd.waitEvent(tn.project, sid)
		occurred, _ := time.Parse(time.RFC3339Nano, str(ev, "occurredAt"))
		received, _ := time.Parse(time.RFC3339Nano, str(ev, "receivedAt"))
		if got := received.Sub(occurred); got < 59*time.Second || got > 61*time.Second {
			t.Fatalf("occurredAt %s is %s before receivedAt %s, want one minute", occurred, got, received)
		}
		if str(ev, "timestamp") == "" || str(ev, "sentAt") == "" {
			t.Fatalf("client times not stored: %v", ev)
		}

		// Reads: secret key of the project yes, publishable no, other
		// project's secret key sees nothing.
		other := newTenant(t, nd)
		for _, c := range []struct {
			key  string
			want int
		}{{tn.sk, 200}, {tn.pk, 403}, {other.sk, 404}, {"", 401}, {"sk_live_" + strings.Repeat("0", 64), 401}} {
			req, _ := http.NewRequest("GET", nd.base+"/v1/projects/"+tn.project+"/events/"+id, nil)
			if c.key != "" {
				req.Header.Set("X-Api-Key", c.key)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != c.want {
				t.Errorf("read with key %.12s: %d, want %d", c.key, resp.StatusCode, c.want)
			}
		}
		if r := nd.do("GET", "/v1/projects/"+other.project+"/events/"+id, "", env.AdminToken); r.Status != http.StatusNotFound {
			t.Fatalf("event under another project: %d", r.Status)
		}
	})
}

func gz(t *testing.T, s string) string {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	_, _ = w.Write([]byte(s))
	_ = w.Close()
	return b.String()
}

func TestIngestRejectsBadInput(t *testing.T) {
	eachMode(t, func(t *testing.T, env *testenv.Env) {
		nd := startNode(t, env, services.AllRoles...)
		tn := newTenant(t, nd)
		future := time.Now().Add(25 * time.Hour).UTC().Format(time.RFC3339)
		deep := strings.Repeat(`{"a":`, 40) + "1" + strings.Repeat("}", 40)
		bigProps := `{"x":"` + strings.Repeat("y", 33<<10) + `"}`
		var batch600 strings.Builder
		batch600.WriteString(`{"batch":[`)
		for i := range 600 {
			if i > 0 {
				batch600.WriteString(",")
			}
			batch600.WriteString(`{"event":"e","userId":"u"}`)
		}
		batch600.WriteString(`]}`)

		cases := []struct {
			name, path, key, body string
			headers               []string
			status                int
			code, field           string
		}{
			{"no key", "/v1/events/track", "", `{"event":"e","userId":"u"}`, nil, 401, "unauthorized", ""},
			{"malformed key", "/v1/events/track", "pk_live_nope", `{"event":"e","userId":"u"}`, nil, 401, "unauthorized", ""},
			{"unknown key", "/v1/events/track", "pk_live_" + strings.Repeat("a", 64), `{"event":"e","userId":"u"}`, nil, 401, "unauthorized", ""},
			{"malformed json", "/v1/events/track", tn.pk, `{"event":`, nil, 400, "invalid_request", ""},
			{"not an object", "/v1/events/track", tn.pk, `["event"]`, nil, 400, "invalid_request", ""},
			{"empty body", "/v1/events/track", tn.pk, ``, nil, 400, "invalid_request", ""},
			{"event missing", "/v1/events/track", tn.pk, `{"userId":"u"}`, nil, 400, "invalid_request", "event"},
			{"event blank", "/v1/events/track", tn.pk, `{"event":"  ","userId":"u"}`, nil, 400, "invalid_request", "event"},
			{"event number", "/v1/events/track", tn.pk, `{"event":5,"userId":"u"}`, nil, 400, "invalid_request", "event"},
			{"event 300 chars", "/v1/events/track", tn.pk, `{"event":"` + strings.Repeat("e", 300) + `","userId":"u"}`, nil, 400, "invalid_request", "event"},
			{"type alias wrong type", "/v1/events/track", tn.pk, `{"type":true,"userId":"u"}`, nil, 400, "invalid_request", "type"},
			{"no user", "/v1/events/track", tn.pk, `{"event":"e"}`, nil, 400, "invalid_request", "userId"},
			{"userId number", "/v1/events/track", tn.pk, `{"event":"e","userId":42}`, nil, 400, "invalid_request", "userId"},
			{"userId too long", "/v1/events/track", tn.pk, `{"event":"e","userId":"` + strings.Repeat("u", 256) + `"}`, nil, 400, "invalid_request", "userId"},
			{"properties array", "/v1/events/track", tn.pk, `{"event":"e","userId":"u","properties":[1]}`, nil, 400, "invalid_request", "properties"},
			{"properties string", "/v1/events/track", tn.pk, `{"event":"e","userId":"u","properties":"x"}`, nil, 400, "invalid_request", "properties"},
			{"traits alias number", "/v1/events/track", tn.pk, `{"event":"e","userId":"u","traits":3}`, nil, 400, "invalid_request", "traits"},
			{"properties too big", "/v1/events/track", tn.pk, `{"event":"e","userId":"u","properties":` + bigProps + `}`, nil, 400, "invalid_request", "properties"},
			{"properties too deep", "/v1/events/track", tn.pk, `{"event":"e","userId":"u","properties":` + deep + `}`, nil, 400, "invalid_request", "properties"},
			{"context not object", "/v1/events/track", tn.pk, `{"event":"e","userId":"u","context":1}`, nil, 400, "invalid_request", "context"},
			{"far-future timestamp", "/v1/events/track", tn.pk, `{"event":"e","userId":"u","timestamp":"` + future + `"}`, nil, 400, "invalid_request", "timestamp"},
			{"bad timestamp", "/v1/events/track", tn.pk, `{"event":"e","userId":"u","timestamp":"yesterday"}`, nil, 400, "invalid_request", "timestamp"},
			{"fractional epoch", "/v1/events/track", tn.pk, `{"event":"e","userId":"u","timestamp":1.5}`, nil, 400, "invalid_request", "timestamp"},
			{"bad sentAt", "/v1/events/track", tn.pk, `{"event":"e","userId":"u","sentAt":{}}`, nil, 400, "invalid_request", "sentAt"},
			{"messageId number", "/v1/events/track", tn.pk, `{"event":"e","userId":"u","messageId":7}`, nil, 400, "invalid_request", "messageId"},
			{"purchase no orderId", "/v1/events/track", tn.sk, `{"event":"purchase","userId":"u","properties":{"amount":1,"currency":"EUR"}}`, nil, 400, "invalid_request", "properties.orderId"},
			{"purchase float amount", "/v1/events/track", tn.sk, `{"event":"purchase","userId":"u","properties":{"orderId":"o","amount":19.99,"currency":"EUR"}}`, nil, 400, "invalid_request", "properties.amount"},
			{"purchase negative amount", "/v1/events/track", tn.sk, `{"event":"checkout_complete","userId":"u","properties":{"orderId":"o","amount":-1,"currency":"EUR"}}`, nil, 400, "invalid_request", "properties.amount"},
			{"purchase bad currency", "/v1/events/track", tn.sk, `{"event":"checkout_success","userId":"u","properties":{"orderId":"o","amount":1,"currency":"EURO"}}`, nil, 400, "invalid_request", "properties.currency"},
			{"purchase with publishable", "/v1/events/track", tn.pk, `{"event":"purchase","userId":"u","properties":{"orderId":"o","amount":1,"currency":"EUR"}}`, nil, 403, "forbidden_event", "event"},
			{"identify without user", "/v1/identify", tn.pk, `{"traits":{"a":1},"anonymousId":"x"}`, nil, 400, "invalid_request", "userId"},
			{"body too large", "/v1/events/track", tn.pk, `{"event":"e","userId":"u","properties":{"x":"` + strings.Repeat("y", 520<<10) + `"}}`, nil, 413, "body_too_large", ""},
			{"gzip bomb", "/v1/events/track", tn.pk, gz(t, `{"event":"e","userId":"u","properties":{"x":"`+strings.Repeat("y", 600<<10)+`"}}`), []string{"Content-Encoding", "gzip"}, 413, "body_too_large", ""},
			{"bad gzip", "/v1/events/track", tn.pk, "not gzip", []string{"Content-Encoding", "gzip"}, 400, "invalid_request", ""},
			{"unknown encoding", "/v1/events/track", tn.pk, `{}`, []string{"Content-Encoding", "br"}, 415, "unsupported_encoding", ""},
			{"600-event batch", "/v1/events/batch", tn.pk, batch600.String(), nil, 400, "invalid_request", "batch"},
			{"empty batch", "/v1/events/batch", tn.pk, `{"batch":[]}`, nil, 400, "invalid_request", "batch"},
			{"batch not an array", "/v1/events/batch", tn.pk, `{"batch":{"event":"e"}}`, nil, 400, "invalid_request", "batch"},
			{"batch without key", "/v1/events/batch", "", `{"batch":[{"event":"e","userId":"u"}]}`, nil, 401, "unauthorized", ""},
			{"batch bad sentAt", "/v1/events/batch", tn.pk, `{"batch":[{"event":"e","userId":"u"}],"sentAt":"soon"}`, nil, 400, "invalid_request", "sentAt"},
			{"batch all invalid", "/v1/events/batch", tn.pk, `{"batch":[{"userId":"u"},{"event":"e"}]}`, nil, 400, "invalid_batch", ""},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				r := nd.post(tc.path, tc.key, tc.body, tc.headers...)
				if r.Status != tc.status {
					t.Fatalf("status %d, want %d: %.300s", r.Status, tc.status, r.Body)
				}
				e, ok := r.json(t)["error"].(map[string]any)
				if !ok {
					t.Fatalf("no error object: %s", r.Body)
				}
				if str(e, "code") != tc.code || str(e, "message") == "" || str(e, "field") != tc.field {
					t.Errorf("error %v, want code %q field %q", e, tc.code, tc.field)
				}
			})
		}

		// Nothing of the above was stored: the next valid event is the
		// project's first (a project's events are applied in order).
		ok := nd.track(tn.pk, `{"event":"after","userId":"u"}`)
		nd.waitEvent(tn.project, ok)
		if n := nd.countRows("SELECT count(*) FROM events WHERE project_id = "+store.ProjectKeySQL("?"), tn.project); n != 1 {
			t.Fatalf("%d events stored, want only the valid one", n)
		}

		// Accepted forms: gzip, epoch-ms timestamps, unknown fields, aliases.
		for _, c := range []struct {
			body    string
			headers []string
		}{
			{gz(t, `{"event":"gz","userId":"u"}`), []string{"Content-Encoding", "gzip"}},
			{`{"type":"alias","anonymousId":"a","traits":{"k":1},"timestamp":1700000000000,"unknownField":{"x":1}}`, nil},
		} {
			if r := nd.post("/v1/events/track", tn.pk, c.body, c.headers...); r.Status != http.StatusAccepted {
				t.Fatalf("%q: %d %s", c.body, r.Status, r.Body)
			}
		}
	})
}

func TestBatchAnswersPerItem(t *testing.T) {
	env := testenv.Start(t, testenv.Embedded)
	env.Migrate(t.Context())
	nd := startNode(t, env, services.AllRoles...)
	tn := newTenant(t, nd)

	r := nd.post("/v1/events/batch", tn.pk, `{"events":[
		{"event":"page_view","userId":"u1","properties":{"i":0}},
		{"event":"purchase","userId":"u1"},
		{"userId":"u1"},
		"nope",
		{"event":"cart_add","anonymousId":"a1","messageId":"b-1"}
	],"sentAt":"`+time.Now().UTC().Format(time.RFC3339)+`"}`)
	if r.Status != http.StatusAccepted {
		t.Fatalf("batch: %d %s", r.Status, r.Body)
	}
	m := r.json(t)
	accepted, rejected := m["accepted"].([]any), m["rejected"].([]any)
	if str(m, "status") != "partial" || len(accepted) != 2 || len(rejected) != 3 {
		t.Fatalf("batch answer %s", r.Body)
	}
	wantRejected := map[float64]string{1: "forbidden_event", 2: "invalid_request", 3: "invalid_request"}
	for _, x := range rejected {
		item := x.(map[string]any)
		if wantRejected[item["index"].(float64)] != str(item, "code") || str(item, "message") == "" {
			t.Errorf("rejected item %v", item)
		}
	}
	for _, x := range accepted {
		item := x.(map[string]any)
		if ev := nd.waitEvent(tn.project, str(item, "id")); str(ev, "status") != "processed" {
			t.Errorf("accepted item %v: %v", item, ev)
		}
	}

	// A beacon: text/plain body, key in the body, no custom headers.
	req, _ := http.NewRequest("POST", nd.base+"/v1/events/batch",
		strings.NewReader(`{"writeKey":"`+tn.pk+`","batch":[{"event":"page_view","anonymousId":"a2"}]}`))
	req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	req.Header.Set("Origin", "https://shop.example")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("beacon: %d, CORS %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
	}
	// CORS preflight for fetch with x-api-key.
	req, _ = http.NewRequest("OPTIONS", nd.base+"/v1/events/track", nil)
	req.Header.Set("Origin", "https://shop.example")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "content-type,x-api-key")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || !strings.Contains(strings.ToLower(resp.Header.Get("Access-Control-Allow-Headers")), "x-api-key") {
		t.Fatalf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
}
