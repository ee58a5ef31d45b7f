package services_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/gamify/boost/internal/testenv"
	"github.com/gamify/boost/queries"
	"github.com/gamify/boost/services"
	"github.com/gamify/boost/store"
)

// TestTenantIsolation shows that a raw query inside one project's scope
// sees only that project's rows (row-level security on PostgreSQL), and
// that every read endpoint given another project's ids answers 404 or
// nothing — never the other tenant's data.
func TestTenantIsolation(t *testing.T) {
	eachMode(t, func(t *testing.T, env *testenv.Env) {
		nd := startNode(t, env, services.AllRoles...)
		a, b := newTenant(t, nd), newTenant(t, nd)
		var aEvent string
		for i := range 5 {
			aEvent = nd.track(a.sk, fmt.Sprintf(`{"event":"a_only","userId":"alice","properties":{"i":%d}}`, i))
			nd.track(b.sk, fmt.Sprintf(`{"event":"b_only","userId":"bob","properties":{"i":%d}}`, i))
		}
		nd.waitEvent(a.project, aEvent)
		waitUntil(t, 20*time.Second, "both projects projected", func() bool {
			return nd.countRows("SELECT count(*) FROM events") >= 10
		})

		if env.Mode == testenv.Distributed {
			q := queries.New(nd.n.DB)
			for _, tbl := range []string{"events", "end_users", "event_counts_hourly", "daily_users", "api_keys", "projects",
				"event_counts_daily", "daily_event_users", "weekly_users", "monthly_users", "active_user_counts", "project_keys"} {
				var projects []string
				err := q.InProject(context.Background(), a.project, func(ctx context.Context, q *queries.Queries) error {
					// The hot tables key a project (store.ProjectKeySQL);
					// project_keys, itself behind row-level security, names
					// it, and another project's key would name nothing.
					col := "COALESCE((SELECT k.project_id::text FROM project_keys AS k WHERE k.key = t.project_id), '')"
					switch tbl {
					case "projects":
						col = "t.id::text"
					case "api_keys", "project_keys":
						col = "t.project_id::text"
					}
					return q.DB().NewRaw("SELECT DISTINCT "+col+" FROM "+tbl+" AS t").Scan(ctx, &projects)
				})
				if err != nil {
					t.Fatalf("%s: %v", tbl, err)
				}
				if len(projects) != 1 || projects[0] != a.project {
					t.Fatalf("raw SELECT on %s inside project A's scope saw projects %v", tbl, projects)
				}
			}
			// Without a project set, the reader role sees nothing at all.
			var n int
			err := nd.n.DB.RunInTx(context.Background(), nil, func(ctx context.Context, tx bun.Tx) error {
				if _, err := tx.ExecContext(ctx, "SET LOCAL ROLE "+queries.ReaderRole); err != nil {
					return err
				}
				return tx.NewRaw("SELECT count(*) FROM events").Scan(ctx, &n)
			})
			if err != nil || n != 0 {
				t.Fatalf("reader role without a project saw %d events (%v)", n, err)
			}
			if nd.n.DB.Dialect != store.Postgres {
				t.Fatal("distributed mode is not on PostgreSQL")
			}
		}

		// Every read endpoint under project B with project A's ids.
		for _, path := range []string{"/events/" + aEvent, "/users/alice"} {
			if r := nd.do("GET", "/v1/projects/"+b.project+path, "", env.AdminToken); r.Status != http.StatusNotFound {
				t.Errorf("%s under B: %d %s", path, r.Status, r.Body)
			}
		}
		for _, path := range []string{"/events?limit=1000", "/users?limit=1000", "/analytics/top-events",
			"/analytics/events?event=a_only", "/analytics/users", "/analytics/funnel?steps=a_only,a_only"} {
			r := nd.do("GET", "/v1/projects/"+b.project+path, "", env.AdminToken)
			if r.Status != http.StatusOK {
				t.Fatalf("%s under B: %d %s", path, r.Status, r.Body)
			}
			for _, leak := range []string{"a_only", "alice", a.project} {
				if strings.Contains(string(r.Body), leak) && !(leak == "a_only" && strings.Contains(path, "a_only")) {
					t.Errorf("%s under B leaks %q: %s", path, leak, r.Body)
				}
			}
		}
	})
}
