package services_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/gamify/boost/internal/testenv"
	"github.com/gamify/boost/services"
)

func TestManagementFlow(t *testing.T) {
	eachMode(t, func(t *testing.T, env *testenv.Env) {
		nd := startNode(t, env, services.AllRoles...)

		org := nd.admin("POST", "/v1/organizations", `{"name":"Acme"}`, http.StatusCreated)
		orgID := str(org, "id")
		if orgID == "" || str(org, "name") != "Acme" || str(org, "createdAt") == "" {
			t.Fatalf("organization response: %v", org)
		}
		// Read-your-writes: the list right after the 201 shows it.
		if orgs := data(t, nd.admin("GET", "/v1/organizations", "", http.StatusOK)); len(orgs) != 1 || str(orgs[0], "id") != orgID {
			t.Fatalf("organizations: %v", orgs)
		}
		nd.admin("GET", "/v1/organizations/"+orgID, "", http.StatusOK)

		proj := nd.admin("POST", "/v1/organizations/"+orgID+"/projects", `{"name":"Shop"}`, http.StatusCreated)
		projID := str(proj, "id")
		if str(proj, "organizationId") != orgID {
			t.Fatalf("project response: %v", proj)
		}
		if ps := data(t, nd.admin("GET", "/v1/organizations/"+orgID+"/projects", "", http.StatusOK)); len(ps) != 1 || str(ps[0], "id") != projID {
			t.Fatalf("projects: %v", ps)
		}

		keys := map[string]string{}
		for _, typ := range []string{"publishable", "secret"} {
			k := nd.admin("POST", "/v1/projects/"+projID+"/api-keys", fmt.Sprintf(`{"name":"%s key","type":"%s"}`, typ, typ), http.StatusCreated)
			plain := str(k, "key")
			wantPrefix := map[string]string{"publishable": "pk_live_", "secret": "sk_live_"}[typ]
			if !strings.HasPrefix(plain, wantPrefix) || len(plain) != 72 {
				t.Fatalf("%s key plaintext %q", typ, plain)
			}
			if !strings.HasPrefix(plain, str(k, "prefix")) || str(k, "type") != typ || str(k, "status") != "active" {
				t.Fatalf("key response: %v", k)
			}
			for _, f := range []string{"id", "name", "type", "prefix", "createdAt"} {
				if _, ok := k[f]; !ok {
					t.Errorf("key response lacks %q: %v", f, k)
				}
			}
			keys[str(k, "id")] = plain
		}

		list := nd.do("GET", "/v1/projects/"+projID+"/api-keys", "", env.AdminToken)
		if list.Status != http.StatusOK {
			t.Fatalf("list keys: %d %s", list.Status, list.Body)
		}
		for id, plain := range keys {
			if strings.Contains(string(list.Body), plain) || strings.Contains(string(list.Body), plain[12:]) {
				t.Fatalf("key list contains plaintext of %s", id)
			}
		}
		if strings.Contains(string(list.Body), `"key"`) {
			t.Fatalf("key list has a key field: %s", list.Body)
		}
		if got := len(data(t, list.json(t))); got != 2 {
			t.Fatalf("listed %d keys, want 2", got)
		}

		var revokeID string
		for id := range keys {
			revokeID = id
			break
		}
		rev := nd.admin("DELETE", "/v1/projects/"+projID+"/api-keys/"+revokeID, "", http.StatusOK)
		if str(rev, "status") != "revoked" || str(rev, "revokedAt") == "" {
			t.Fatalf("revoke response: %v", rev)
		}
		// Revoking again is idempotent.
		nd.admin("DELETE", "/v1/projects/"+projID+"/api-keys/"+revokeID, "", http.StatusOK)
		statuses := map[string]string{}
		for _, k := range data(t, nd.admin("GET", "/v1/projects/"+projID+"/api-keys", "", http.StatusOK)) {
			statuses[str(k, "id")] = str(k, "status")
		}
		for id := range keys {
			want := "active"
			if id == revokeID {
				want = "revoked"
			}
			if statuses[id] != want {
				t.Errorf("key %s status %q, want %q", id, statuses[id], want)
			}
		}
	})
}

func TestManagementRejectsBadInput(t *testing.T) {
	eachMode(t, func(t *testing.T, env *testenv.Env) {
		nd := startNode(t, env, services.AllRoles...)
		org := str(nd.admin("POST", "/v1/organizations", `{"name":"Acme"}`, http.StatusCreated), "id")
		proj := str(nd.admin("POST", "/v1/organizations/"+org+"/projects", `{"name":"Shop"}`, http.StatusCreated), "id")
		key := str(nd.admin("POST", "/v1/projects/"+proj+"/api-keys", `{"name":"k","type":"secret"}`, http.StatusCreated), "id")
		unknown := "01a21f92-fc2d-7683-9d1e-a953ff65f6f7"
		tok := env.AdminToken

		cases := []struct {
			name, method, path, body, token string
			status                          int
			code, field                     string
		}{
			{"no token", "GET", "/v1/organizations", "", "", 401, "unauthorized", ""},
			{"wrong token", "GET", "/v1/organizations", "", "nope", 401, "unauthorized", ""},
			{"api key is not an admin token", "GET", "/v1/organizations", "", "sk_live_" + strings.Repeat("a", 64), 401, "unauthorized", ""},
			{"bad json", "POST", "/v1/organizations", `{"name":`, tok, 400, "invalid_request", ""},
			{"empty body", "POST", "/v1/organizations", ``, tok, 400, "invalid_request", ""},
			{"array body", "POST", "/v1/organizations", `[1]`, tok, 400, "invalid_request", ""},
			{"missing name", "POST", "/v1/organizations", `{}`, tok, 400, "invalid_request", "name"},
			{"blank name", "POST", "/v1/organizations", `{"name":"   "}`, tok, 400, "invalid_request", "name"},
			{"name too long", "POST", "/v1/organizations", `{"name":"` + strings.Repeat("x", 256) + `"}`, tok, 400, "invalid_request", "name"},
			{"name wrong type", "POST", "/v1/organizations", `{"name":42}`, tok, 400, "invalid_request", "name"},
			{"unknown fields ignored but name missing", "POST", "/v1/organizations", `{"nom":"x"}`, tok, 400, "invalid_request", "name"},
			{"body too large", "POST", "/v1/organizations", `{"name":"` + strings.Repeat("x", 70_000) + `"}`, tok, 413, "body_too_large", ""},
			{"malformed org id", "GET", "/v1/organizations/not-a-uuid/projects", "", tok, 400, "invalid_request", "orgId"},
			{"unknown org", "GET", "/v1/organizations/" + unknown + "/projects", "", tok, 404, "not_found", ""},
			{"project in unknown org", "POST", "/v1/organizations/" + unknown + "/projects", `{"name":"x"}`, tok, 404, "not_found", ""},
			{"project name too long", "POST", "/v1/organizations/" + org + "/projects", `{"name":"` + strings.Repeat("é", 256) + `"}`, tok, 400, "invalid_request", "name"},
			{"malformed project id", "POST", "/v1/projects/123/api-keys", `{"name":"k","type":"secret"}`, tok, 400, "invalid_request", "projectId"},
			{"unknown project", "POST", "/v1/projects/" + unknown + "/api-keys", `{"name":"k","type":"secret"}`, tok, 404, "not_found", ""},
			{"bad key type", "POST", "/v1/projects/" + proj + "/api-keys", `{"name":"k","type":"admin"}`, tok, 400, "invalid_request", "type"},
			{"missing key type", "POST", "/v1/projects/" + proj + "/api-keys", `{"name":"k"}`, tok, 400, "invalid_request", "type"},
			{"key name missing", "POST", "/v1/projects/" + proj + "/api-keys", `{"type":"secret"}`, tok, 400, "invalid_request", "name"},
			{"malformed key id", "DELETE", "/v1/projects/" + proj + "/api-keys/zzz", "", tok, 400, "invalid_request", "keyId"},
			{"unknown key", "DELETE", "/v1/projects/" + proj + "/api-keys/" + unknown, "", tok, 404, "not_found", ""},
			{"key of another project", "DELETE", "/v1/projects/" + unknown + "/api-keys/" + key, "", tok, 404, "not_found", ""},
			{"limit zero", "GET", "/v1/organizations?limit=0", "", tok, 400, "invalid_request", "limit"},
			{"limit too big", "GET", "/v1/organizations?limit=1001", "", tok, 400, "invalid_request", "limit"},
			{"limit not a number", "GET", "/v1/organizations?limit=ten", "", tok, 400, "invalid_request", "limit"},
			{"bad cursor", "GET", "/v1/organizations?cursor=!!!", "", tok, 400, "invalid_request", "cursor"},
			{"forged cursor", "GET", "/v1/organizations?cursor=eyJhIjoieCJ9", "", tok, 400, "invalid_request", "cursor"},
			{"unknown route", "GET", "/v1/nothing", "", tok, 404, "not_found", ""},
			{"method not allowed", "PUT", "/v1/organizations", `{}`, tok, 405, "method_not_allowed", ""},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				r := nd.do(tc.method, tc.path, tc.body, tc.token)
				if r.Status != tc.status {
					t.Fatalf("status %d, want %d: %s", r.Status, tc.status, r.Body)
				}
				e, ok := r.json(t)["error"].(map[string]any)
				if !ok {
					t.Fatalf("no error object: %s", r.Body)
				}
				if str(e, "code") != tc.code || str(e, "message") == "" {
					t.Errorf("error %v, want code %q and a message", e, tc.code)
				}
				if str(e, "field") != tc.field {
					t.Errorf("error field %q, want %q", str(e, "field"), tc.field)
				}
			})
		}
	})
}

func TestListsPaginateWithCursors(t *testing.T) {
	env := testenv.Start(t, testenv.Embedded)
	env.Migrate(t.Context())
	nd := startNode(t, env, services.AllRoles...)
	want := map[string]bool{}
	for i := range 5 {
		want[str(nd.admin("POST", "/v1/organizations", fmt.Sprintf(`{"name":"org %d"}`, i), http.StatusCreated), "id")] = true
	}
	seen := map[string]bool{}
	cursor, pages := "", 0
	for {
		page := nd.admin("GET", "/v1/organizations?limit=2&cursor="+cursor, "", http.StatusOK)
		pages++
		for _, o := range data(t, page) {
			if seen[str(o, "id")] {
				t.Fatalf("organization %s listed twice", str(o, "id"))
			}
			seen[str(o, "id")] = true
		}
		next, ok := page["nextCursor"].(string)
		if !ok {
			break
		}
		cursor = next
	}
	if pages != 3 || len(seen) != len(want) {
		t.Fatalf("%d pages, %d organizations; want 3 pages, %d", pages, len(seen), len(want))
	}
}
