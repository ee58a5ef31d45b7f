package services_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gamify/boost/domain"
	"github.com/gamify/boost/internal/testenv"
	"github.com/gamify/boost/services"
	"github.com/gamify/boost/store"
)

// browser is a cookie-keeping client that does not follow redirects, so
// tests see each answer as a browser would receive it.
type browser struct {
	t    *testing.T
	nd   *node
	c    *http.Client
	csrf string
}

func newBrowser(t *testing.T, nd *node) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, nd: nd, c: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

var csrfInput = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (b *browser) do(method, path string, form url.Values, headers ...string) response {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.nd.base+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if m := csrfInput.FindSubmatch(data); m != nil {
		b.csrf = string(m[1])
	}
	return response{Status: resp.StatusCode, Header: resp.Header, Body: data}
}

func (b *browser) get(path string, want int) string {
	b.t.Helper()
	r := b.do("GET", path, nil)
	if r.Status != want {
		b.t.Fatalf("GET %s: %d, want %d\n%s", path, r.Status, want, r.Body)
	}
	return string(r.Body)
}

// post sends a form with the session's CSRF token.
func (b *browser) post(path string, form url.Values, want int) response {
	b.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	form.Set("csrf", b.csrf)
	r := b.do("POST", path, form)
	if r.Status != want {
		b.t.Fatalf("POST %s: %d, want %d\n%s", path, r.Status, want, r.Body)
	}
	return r
}

func (b *browser) signIn() {
	b.t.Helper()
	r := b.do("POST", "/dashboard/login", url.Values{"token": {b.nd.env.AdminToken}, "next": {"/dashboard/health"}})
	if r.Status != http.StatusSeeOther || r.Header.Get("Location") != "/dashboard/health" {
		b.t.Fatalf("sign-in: %d %s", r.Status, r.Header.Get("Location"))
	}
	b.get("/dashboard/", http.StatusOK)
	if b.csrf == "" {
		b.t.Fatal("no CSRF token on the overview page")
	}
}

func TestDashboardSignIn(t *testing.T) {
	env := testenv.Start(t, testenv.Embedded)
	env.Migrate(context.Background())
	nd := startNode(t, env, services.AllRoles...)
	b := newBrowser(t, nd)

	// The sign-in page and the assets are public; assets are the embedded files.
	if page := b.get("/dashboard/login", http.StatusOK); !strings.Contains(page, `name="token"`) {
		t.Errorf("sign-in page has no token field")
	}
	for path, ctype := range map[string]string{"/dashboard/static/app.js": "javascript", "/dashboard/static/app.css": "text/css",
		"/dashboard/static/favicon.svg": "image/svg+xml"} {
		if r := b.do("GET", path, nil); r.Status != http.StatusOK || !strings.Contains(r.Header.Get("Content-Type"), ctype) || len(r.Body) == 0 {
			t.Errorf("GET %s: %d %s", path, r.Status, r.Header.Get("Content-Type"))
		}
	}
	b.get("/dashboard/static/missing.js", http.StatusNotFound)

	// Every page asks for a session; JSON and streams answer 401.
	p := "/dashboard/projects/" + domain.NewID()
	for _, path := range []string{"/dashboard/", "/dashboard/health", p, p + "/events", p + "/events/" + domain.NewID(),
		p + "/analytics", p + "/users", p + "/users/profile?id=u1", p + "/keys", p + "/keys/" + domain.NewID() + "/revoke",
		p + "/start"} {
		r := b.do("GET", path, nil)
		if r.Status != http.StatusFound || r.Header.Get("Location") != "/dashboard/login?next="+url.QueryEscape(path) {
			t.Errorf("GET %s signed out: %d %s", path, r.Status, r.Header.Get("Location"))
		}
	}
	for _, path := range []string{"/dashboard/health.json", p + "/events/stream"} {
		if r := b.do("GET", path, nil); r.Status != http.StatusUnauthorized {
			t.Errorf("GET %s signed out: %d", path, r.Status)
		}
	}

	cases := []struct {
		name, token, next string
		status            int
		location          string
	}{
		{"empty token", "", "", http.StatusUnauthorized, ""},
		{"wrong token", "not-the-token", "", http.StatusUnauthorized, ""},
		{"open redirect refused", nd.env.AdminToken, "https://evil.example/", http.StatusSeeOther, "/dashboard/"},
		{"protocol-relative refused", nd.env.AdminToken, "//evil.example/dashboard/", http.StatusSeeOther, "/dashboard/"},
		{"next kept inside the dashboard", nd.env.AdminToken, "/dashboard/health", http.StatusSeeOther, "/dashboard/health"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fresh := newBrowser(t, nd)
			r := fresh.do("POST", "/dashboard/login", url.Values{"token": {tc.token}, "next": {tc.next}})
			if r.Status != tc.status || r.Header.Get("Location") != tc.location {
				t.Fatalf("%d %q, want %d %q", r.Status, r.Header.Get("Location"), tc.status, tc.location)
			}
			if tc.status == http.StatusUnauthorized {
				if !strings.Contains(string(r.Body), "admin token") || len(r.Header.Values("Set-Cookie")) != 0 {
					t.Fatalf("a refused sign-in must explain and set no cookie: %s", r.Body)
				}
				return
			}
			c := r.Header.Get("Set-Cookie")
			for _, attr := range []string{"boost_session=", "Path=/;", "HttpOnly", "SameSite=Strict", "Max-Age="} {
				if !strings.Contains(c, attr) {
					t.Errorf("session cookie %q lacks %s", c, attr)
				}
			}
			if strings.Contains(c, "Secure") {
				t.Errorf("cookie over plain HTTP marked Secure: %q", c)
			}
		})
	}
	// Behind a TLS proxy the cookie is Secure.
	r := newBrowser(t, nd).do("POST", "/dashboard/login", url.Values{"token": {nd.env.AdminToken}}, "X-Forwarded-Proto", "https")
	if !strings.Contains(r.Header.Get("Set-Cookie"), "Secure") {
		t.Errorf("cookie behind TLS not Secure: %q", r.Header.Get("Set-Cookie"))
	}
	// A sign-in form posted from another site is refused.
	if r := newBrowser(t, nd).do("POST", "/dashboard/login", url.Values{"token": {nd.env.AdminToken}}, "Origin", "https://evil.example"); r.Status != http.StatusForbidden {
		t.Errorf("cross-site sign-in: %d", r.Status)
	}

	b.signIn()
	r = b.do("GET", "/dashboard/", nil)
	if csp := r.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") ||
		r.Header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("security headers: CSP %q, X-Frame-Options %q", csp, r.Header.Get("X-Frame-Options"))
	}
	cookies := b.c.Jar.Cookies(mustURL(t, nd.base+"/dashboard/"))
	// Signing out needs the CSRF token too, then the old cookie is dead
	// even if replayed.
	if r := b.do("POST", "/dashboard/logout", url.Values{}); r.Status != http.StatusForbidden {
		t.Fatalf("logout without CSRF: %d", r.Status)
	}
	if r := b.post("/dashboard/logout", nil, http.StatusSeeOther); r.Header.Get("Location") != "/dashboard/login?signedout=1" {
		t.Fatalf("logout redirect: %s", r.Header.Get("Location"))
	}
	replay := newBrowser(t, nd)
	replay.c.Jar.SetCookies(mustURL(t, nd.base+"/dashboard/"), cookies)
	if r := replay.do("GET", "/dashboard/", nil); r.Status != http.StatusFound {
		t.Fatalf("signed-out cookie still works: %d", r.Status)
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestDashboardActions drives every action of the dashboard as a browser
// would, checks each refuses a request without the session's CSRF token,
// and that user-supplied strings render as text.
func TestDashboardActions(t *testing.T) {
	eachMode(t, func(t *testing.T, env *testenv.Env) {
		nd := startNode(t, env, services.AllRoles...)
		b := newBrowser(t, nd)
		b.signIn()

		// CSRF: every state change without the token, or from another
		// origin, is refused before it does anything.
		tn := newTenant(t, nd)
		p := "/dashboard/projects/" + tn.project
		posts := []struct {
			path string
			form url.Values
		}{
			{"/dashboard/organizations", url.Values{"name": {"Evil org"}}},
			{"/dashboard/organizations/" + tn.project + "/projects", url.Values{"name": {"Evil"}}},
			{p + "/keys", url.Values{"name": {"evil"}, "type": {"secret"}}},
			{p + "/keys/" + tn.skID + "/revoke", url.Values{}},
			{p + "/test-event", url.Values{}},
			{p + "/start", url.Values{}},
			{"/dashboard/logout", url.Values{}},
		}
		for _, tc := range posts {
			if r := b.do("POST", tc.path, tc.form); r.Status != http.StatusForbidden || !strings.Contains(string(r.Body), "CSRF") {
				t.Errorf("POST %s without CSRF: %d", tc.path, r.Status)
			}
			bad := url.Values{}
			for k, v := range tc.form {
				bad[k] = v
			}
			bad.Set("csrf", "forged")
			if r := b.do("POST", tc.path, bad); r.Status != http.StatusForbidden {
				t.Errorf("POST %s with a forged token: %d", tc.path, r.Status)
			}
			good := url.Values{"csrf": {b.csrf}}
			if r := b.do("POST", tc.path, good, "Origin", "https://evil.example"); r.Status != http.StatusForbidden {
				t.Errorf("POST %s from another origin: %d", tc.path, r.Status)
			}
			if r := newBrowser(t, nd).do("POST", tc.path, good); r.Status != http.StatusUnauthorized {
				t.Errorf("POST %s signed out: %d", tc.path, r.Status)
			}
		}
		if k := nd.admin("GET", "/v1/projects/"+tn.project+"/api-keys/"+tn.skID, "", http.StatusOK); str(k, "status") != "active" {
			t.Fatalf("a refused revoke revoked the key: %v", k)
		}
		orgs := data(t, nd.admin("GET", "/v1/organizations", "", http.StatusOK))
		if len(orgs) != 1 {
			t.Fatalf("a refused create made an organization: %v", orgs)
		}

		// Organizations and projects.
		if r := b.post("/dashboard/organizations", url.Values{"name": {""}}, http.StatusBadRequest); !strings.Contains(string(r.Body), "name") {
			t.Errorf("empty organization name: %s", r.Body)
		}
		r := b.post("/dashboard/organizations", url.Values{"name": {"Dash <Org>"}}, http.StatusSeeOther)
		overview := b.get(r.Header.Get("Location"), http.StatusOK)
		if !strings.Contains(overview, "Dash &lt;Org&gt;") || strings.Contains(overview, "Dash <Org>") {
			t.Fatalf("organization name not escaped on the overview")
		}
		orgID := ""
		for _, o := range data(t, nd.admin("GET", "/v1/organizations", "", http.StatusOK)) {
			if str(o, "name") == "Dash <Org>" {
				orgID = str(o, "id")
			}
		}
		r = b.post("/dashboard/organizations/"+orgID+"/projects", url.Values{"name": {"Dash shop"}}, http.StatusSeeOther)
		loc := r.Header.Get("Location")
		projectID := strings.TrimSuffix(strings.TrimPrefix(loc, "/dashboard/projects/"), "/start?created=1")
		if ps := data(t, nd.admin("GET", "/v1/organizations/"+orgID+"/projects", "", http.StatusOK)); len(ps) != 1 || str(ps[0], "id") != projectID {
			t.Fatalf("project not created: %v (redirect %s)", ps, loc)
		}
		if page := b.get(loc, http.StatusOK); !strings.Contains(page, "Project Dash shop created") {
			t.Errorf("get-started page after creating a project lacks the notice")
		}
		pp := "/dashboard/projects/" + projectID

		// Keys: the plaintext is shown once, never again.
		r = b.post(pp+"/keys", url.Values{"name": {"Web"}, "type": {"publishable"}}, http.StatusCreated)
		plain := regexp.MustCompile(`pk_live_[0-9a-f]{64}`).FindString(string(r.Body))
		if plain == "" || !strings.Contains(string(r.Body), "will not be shown again") || r.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("created key page: %s", r.Body)
		}
		if page := b.get(pp+"/keys", http.StatusOK); strings.Contains(page, plain) || !strings.Contains(page, plain[:12]+"…") {
			t.Fatalf("the keys list must show the prefix, never the plaintext")
		}
		if r := b.post(pp+"/keys", url.Values{"name": {"x"}, "type": {"admin"}}, http.StatusBadRequest); !strings.Contains(string(r.Body), "type") {
			t.Errorf("bad key type: %s", r.Body)
		}
		if got := nd.post("/v1/events/track", plain, `{"event":"page_view","userId":"u1"}`); got.Status != http.StatusAccepted {
			t.Fatalf("track with the new key: %d %s", got.Status, got.Body)
		}

		// Get started fills the snippets with a fresh publishable key.
		r = b.post(pp+"/start", nil, http.StatusCreated)
		snip := regexp.MustCompile(`apiKey: '(pk_live_[0-9a-f]{64})', endpoint: '(http://[^']+)'`).FindStringSubmatch(string(r.Body))
		if snip == nil || snip[2] != nd.base {
			t.Fatalf("snippets not filled in with the key and server: %v", snip)
		}

		// Escaping: an event name, a user id and traits with markup.
		evil := `<script>alert("x")</script>`
		sk := nd.admin("POST", "/v1/projects/"+projectID+"/api-keys", `{"name":"server","type":"secret"}`, http.StatusCreated)
		secret := str(sk, "key")
		id := nd.track(secret, `{"event":"<script>alert(\"x\")</script>","userId":"<img src=x onerror=alert(1)>","properties":{"html":"<b>bold</b>"}}`)
		nd.post("/v1/identify", secret, `{"userId":"<img src=x onerror=alert(1)>","traits":{"bio":"<script>bad()</script>"}}`)
		waitUntil(t, 20*time.Second, "events projected", func() bool {
			return nd.countRows("SELECT count(*) FROM events WHERE project_id = "+store.ProjectKeySQL("?")+" AND status = 'processed'", projectID) >= 3
		})
		for _, path := range []string{pp + "/events", pp + "/events/" + id, pp + "/analytics", pp + "/users",
			pp + "/users/profile?id=" + url.QueryEscape("<img src=x onerror=alert(1)>")} {
			page := b.get(path, http.StatusOK)
			for _, raw := range []string{evil, "<img src=x", "<script>bad()", "<b>bold"} {
				if strings.Contains(page, raw) {
					t.Errorf("%s renders %q unescaped", path, raw)
				}
			}
			if !strings.Contains(page, "&lt;") {
				t.Errorf("%s does not show the escaped strings", path)
			}
		}

		// Test event: sent through the pipeline, visible as dashboard_test.
		if r := b.post(pp+"/test-event", nil, http.StatusSeeOther); r.Header.Get("Location") != pp+"/events?sent=1" {
			t.Fatalf("test event redirect: %s", r.Header.Get("Location"))
		}
		waitUntil(t, 20*time.Second, "test event projected", func() bool {
			return nd.countRows("SELECT count(*) FROM events WHERE project_id = "+store.ProjectKeySQL("?")+" AND type = 'dashboard_test'", projectID) == 1
		})

		// Revoke with confirmation; the key stops working.
		keyID := ""
		for _, k := range data(t, nd.admin("GET", "/v1/projects/"+projectID+"/api-keys", "", http.StatusOK)) {
			if str(k, "name") == "Web" {
				keyID = str(k, "id")
			}
		}
		if page := b.get(pp+"/keys/"+keyID+"/revoke", http.StatusOK); !strings.Contains(page, "cannot be undone") {
			t.Fatalf("no confirmation page")
		}
		if r := b.post(pp+"/keys/"+keyID+"/revoke", nil, http.StatusSeeOther); !strings.Contains(r.Header.Get("Location"), "revoked=Web") {
			t.Fatalf("revoke redirect: %s", r.Header.Get("Location"))
		}
		if got := nd.post("/v1/events/track", plain, `{"event":"page_view","userId":"u1"}`); got.Status != http.StatusUnauthorized {
			t.Fatalf("track with the revoked key: %d", got.Status)
		}

		// The charts read the query API with the session: GET reads only.
		if r := b.do("GET", "/v1/projects/"+projectID+"/analytics/events?bucket=hour", nil); r.Status != http.StatusOK ||
			!strings.Contains(string(r.Body), `"series"`) {
			t.Fatalf("analytics API with the session: %d %s", r.Status, r.Body)
		}
		if r := newBrowser(t, nd).do("GET", "/v1/projects/"+projectID+"/analytics/events", nil); r.Status != http.StatusUnauthorized {
			t.Fatalf("analytics API without a session: %d", r.Status)
		}
		for _, path := range []string{"/v1/organizations", "/v1/projects/" + projectID + "/api-keys"} {
			if r := b.do("POST", path, nil, "Content-Type", "application/json", "X-CSRF-Token", b.csrf); r.Status != http.StatusUnauthorized {
				t.Errorf("POST %s with only a dashboard session: %d", path, r.Status)
			}
		}

		// Another project's key ids and unknown projects are 404 pages.
		b.get(pp+"/keys/"+tn.skID+"/revoke", http.StatusNotFound)
		b.get("/dashboard/projects/not-a-uuid/events", http.StatusNotFound)
		b.get("/dashboard/projects/"+orgID+"/analytics", http.StatusNotFound)
		b.get(pp+"/events/"+tn.skID, http.StatusNotFound)
		b.get(pp+"/users/profile?id=nobody", http.StatusNotFound)

		// Bad analytics parameters are explained, never a 500.
		if page := b.get(pp+"/analytics?range=5y&bucket=century&tz=Mars/Olympus", http.StatusOK); !strings.Contains(page, "range must be") ||
			!strings.Contains(page, "bucket must be") || !strings.Contains(page, "not an IANA time zone") {
			t.Errorf("bad analytics parameters not explained")
		}
		if page := b.get(pp+"/analytics?range=custom&from=2026-11-20&to=2026-11-10", http.StatusOK); !strings.Contains(page, "from must not be after to") {
			t.Errorf("reversed custom range not explained")
		}
		// A custom range is whole days in the page's time zone, the last one included.
		page := b.get(pp+"/analytics?range=custom&from=2026-11-01&to=2026-11-03&tz=Europe/Paris", http.StatusOK)
		if want := "from=2026-10-31T23%3a00%3a00Z&amp;to=2026-11-03T23%3a00%3a00Z"; !strings.Contains(strings.ToLower(page), strings.ToLower(want)) {
			t.Errorf("custom range not sent to the query API as %s", want)
		}

		// Health answers with every dependency up and the stages' lag.
		var h struct {
			Healthy      bool
			Dependencies []struct {
				Name string
				OK   bool
			}
			Lags []struct {
				Stage string
				Known bool
			}
			FailedKnown bool
		}
		if err := json.Unmarshal([]byte(b.get("/dashboard/health.json", http.StatusOK)), &h); err != nil {
			t.Fatal(err)
		}
		if !h.Healthy || len(h.Dependencies) < 3 || !h.FailedKnown {
			t.Errorf("health: %+v", h)
		}
		for _, l := range h.Lags {
			if !l.Known {
				t.Errorf("lag of %s unknown", l.Stage)
			}
		}
		b.get("/dashboard/health", http.StatusOK)
		b.get(pp+"/start", http.StatusOK)
	})
}

// TestDashboardLiveTail reads the Server-Sent Events stream: events and
// their outcomes arrive from the pipeline, filtered by type and user.
func TestDashboardLiveTail(t *testing.T) {
	env := testenv.Start(t, testenv.Embedded)
	env.Migrate(context.Background())
	nd := startNode(t, env, services.AllRoles...)
	tn := newTenant(t, nd)
	b := newBrowser(t, nd)
	b.signIn()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", nd.base+"/dashboard/projects/"+tn.project+"/events/stream?type=page_view&user=u1", nil)
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	events := make(chan map[string]any, 16)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if line, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var m map[string]any
				if json.Unmarshal([]byte(line), &m) == nil {
					events <- m
				}
			}
		}
		close(events)
	}()

	// Filtered out: another type, another user. Then the one that matches.
	nd.track(tn.pk, `{"event":"click","userId":"u1"}`)
	nd.track(tn.pk, `{"event":"page_view","userId":"u2"}`)
	id := nd.track(tn.pk, `{"event":"page_view","userId":"u1","properties":{"path":"/"}}`)
	next := func(what string) map[string]any {
		select {
		case m, ok := <-events:
			if !ok {
				t.Fatal("stream ended")
			}
			return m
		case <-ctx.Done():
			t.Fatalf("no %s within 30 s", what)
		}
		return nil
	}
	// Its rules ran as it was appended: it comes processed, in one step.
	first := next("live event")
	if str(first, "id") != id || str(first, "event") != "page_view" || str(first, "status") != "processed" || str(first, "userId") != "u1" {
		t.Fatalf("first live event: %v (want %s processed)", first, id)
	}
	// A rejected event shows as failed with its reason.
	b2 := newBrowser(t, nd)
	b2.signIn()
	req2, _ := http.NewRequestWithContext(ctx, "GET", nd.base+"/dashboard/projects/"+tn.project+"/events/stream?status=failed", nil)
	resp2, err := b2.c.Do(req2)
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	sc := bufio.NewScanner(resp2.Body)
	for sc.Scan() && !strings.HasPrefix(sc.Text(), ": live") {
	}
	nd.track(tn.sk, `{"event":"purchase","userId":"u1","properties":{"orderId":"o-1","amount":100,"currency":"XYZ"}}`)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var m map[string]any
		_ = json.Unmarshal([]byte(line), &m)
		if str(m, "event") != "purchase" || str(m, "status") != "failed" || !strings.Contains(str(m, "reason"), "XYZ") {
			t.Fatalf("failed-only tail: %v", m)
		}
		return
	}
	t.Fatalf("failed-only tail ended: %v", sc.Err())
}

// TestDashboardAcrossNodes runs the roles apart: a session signed in on one
// api node works on another, whose live tail shows events sent through the
// first and processed by the worker and projector nodes, and whose health
// page measures every stage from outside them.
func TestDashboardAcrossNodes(t *testing.T) {
	eachMode(t, func(t *testing.T, env *testenv.Env) {
		apis := startApart(t, env, 2)
		a, b := apis[0], apis[1]
		tn := newTenant(t, a)
		ba := newBrowser(t, a)
		ba.signIn()
		// The same cookie on the other replica.
		bb := newBrowser(t, b)
		bb.c.Jar.SetCookies(mustURL(t, b.base+"/"), ba.c.Jar.Cookies(mustURL(t, a.base+"/dashboard/")))
		bb.get("/dashboard/projects/"+tn.project+"/events", http.StatusOK)

		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", b.base+"/dashboard/projects/"+tn.project+"/events/stream", nil)
		resp, err := bb.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() && !strings.HasPrefix(sc.Text(), ": live") {
		}
		id := a.track(tn.pk, `{"event":"level_up","userId":"u1"}`)
		var statuses []string
		for sc.Scan() {
			line, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok {
				continue
			}
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil || str(m, "id") != id {
				t.Fatalf("live event %s (want %s)", line, id)
			}
			if statuses = append(statuses, str(m, "status")); len(statuses) == 1 {
				break
			}
		}
		if strings.Join(statuses, ",") != "processed" {
			t.Fatalf("statuses on the other api node: %v (%v)", statuses, sc.Err())
		}

		var h struct {
			Healthy bool
			Lags    []struct {
				Stage string
				Known bool
				Note  string
			}
		}
		if err := json.Unmarshal([]byte(bb.get("/dashboard/health.json", http.StatusOK)), &h); err != nil {
			t.Fatal(err)
		}
		if !h.Healthy || len(h.Lags) != 5 {
			t.Fatalf("health from an api-only node: %+v", h)
		}
		for _, l := range h.Lags {
			if !l.Known {
				t.Errorf("lag of %s unknown on an api-only node: %s", l.Stage, l.Note)
			}
		}
	})
}
