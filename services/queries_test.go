package services_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gamify/boost/internal/testenv"
	"github.com/gamify/boost/services"
	"github.com/gamify/boost/store"
)

func TestEventAndUserQueries(t *testing.T) {
	eachMode(t, func(t *testing.T, env *testenv.Env) {
		nd := startNode(t, env, services.AllRoles...)
		tn := newTenant(t, nd)
		base := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
		var batch []string
		for i := range 30 {
			batch = append(batch, fmt.Sprintf(`{"event":"%s","userId":"user-%d","timestamp":"%s","messageId":"q-%d","properties":{"i":%d}}`,
				[]string{"page_view", "click", "search"}[i%3], i%4, base.Add(time.Duration(i)*time.Minute).Format(time.RFC3339), i, i))
		}
		r := nd.post("/v1/events/batch", tn.sk, `{"batch":[`+strings.Join(batch, ",")+`]}`)
		if r.Status != http.StatusAccepted {
			t.Fatalf("batch: %d %s", r.Status, r.Body)
		}
		waitUntil(t, 20*time.Second, "events projected", func() bool {
			return nd.countRows("SELECT count(*) FROM events WHERE project_id = "+store.ProjectKeySQL("?")+" AND status = 'processed'", tn.project) == 30
		})
		list := func(query string) map[string]any {
			return nd.admin("GET", "/v1/projects/"+tn.project+"/events?"+query, "", http.StatusOK)
		}

		// Pages of 7, newest first, with new events arriving between pages:
		// every original event once, in order.
		seen := map[string]bool{}
		var last string
		cursor, late := "", 0
		for page := 0; ; page++ {
			m := list("limit=7&cursor=" + url.QueryEscape(cursor))
			for _, e := range data(t, m) {
				if seen[str(e, "id")] {
					t.Fatalf("event %s listed twice", str(e, "id"))
				}
				seen[str(e, "id")] = true
				if last != "" && str(e, "occurredAt") > last {
					t.Fatalf("not newest first: %s after %s", str(e, "occurredAt"), last)
				}
				last = str(e, "occurredAt")
			}
			nd.track(tn.sk, fmt.Sprintf(`{"event":"late","userId":"x","timestamp":"%s"}`, base.Add(-time.Hour).Format(time.RFC3339)))
			late++
			next, ok := m["nextCursor"].(string)
			if !ok {
				break
			}
			cursor = next
		}
		if len(seen) < 30 {
			t.Fatalf("paged through %d events, want at least the 30 sent", len(seen))
		}

		for _, c := range []struct {
			query string
			want  int
		}{
			{"event=click", 10}, {"event=click,search", 20}, {"event=click&event=page_view", 20},
			{"userId=user-1", 8}, {"from=" + base.Add(10*time.Minute).Format(time.RFC3339) + "&to=" + base.Add(20*time.Minute).Format(time.RFC3339), 10},
			{"status=failed", 0}, {"event=nothing", 0},
		} {
			if got := len(data(t, list(c.query+"&limit=1000"))); got != c.want {
				t.Errorf("%s: %d events, want %d", c.query, got, c.want)
			}
		}

		// The late events made user x; the list below counts it only once
		// they are projected.
		waitUntil(t, 20*time.Second, "late events projected", func() bool {
			return nd.countRows("SELECT count(*) FROM events WHERE project_id = "+store.ProjectKeySQL("?")+
				" AND type = 'late' AND status = 'processed'", tn.project) == late
		})
		users := data(t, nd.admin("GET", "/v1/projects/"+tn.project+"/users?limit=1000", "", http.StatusOK))
		if len(users) != 5 { // user-0..3 and x
			t.Fatalf("%d users: %v", len(users), users)
		}
		if pre := data(t, nd.admin("GET", "/v1/projects/"+tn.project+"/users?prefix=user-", "", http.StatusOK)); len(pre) != 4 {
			t.Fatalf("prefix user-: %d users", len(pre))
		}
		u := nd.admin("GET", "/v1/projects/"+tn.project+"/users/user-1", "", http.StatusOK)
		if u["eventCount"].(float64) != 8 || len(u["recentEvents"].([]any)) != 8 || str(u, "firstSeenAt") == "" {
			t.Fatalf("user-1: %v", u)
		}
		nd.admin("GET", "/v1/projects/"+tn.project+"/users/nobody", "", http.StatusNotFound)

		// Another project's secret key sees nothing of this one.
		other := newTenant(t, nd)
		for _, path := range []string{"/events", "/users", "/users/user-1", "/events/" + str(data(t, list("limit=1"))[0], "id")} {
			req, _ := http.NewRequest("GET", nd.base+"/v1/projects/"+tn.project+path, nil)
			req.Header.Set("X-Api-Key", other.sk)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("%s with another project's key: %d", path, resp.StatusCode)
			}
		}

		for _, c := range []struct{ query, field string }{
			{"limit=0", "limit"}, {"limit=1001", "limit"}, {"cursor=garbage", "cursor"}, {"from=yesterday", "from"},
			{"to=2026-13-01", "to"}, {"status=done", "status"},
			{"from=2026-11-21T00:00:00Z&to=2026-11-20T00:00:00Z", "from"},
		} {
			r := nd.do("GET", "/v1/projects/"+tn.project+"/events?"+c.query, "", env.AdminToken)
			if r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), `"field":"`+c.field+`"`) {
				t.Errorf("%s: %d %s", c.query, r.Status, r.Body)
			}
		}
	})
}
