package services_test

import (
	"context"
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

// refusePoison makes the read-model database refuse events named
// "poison": a record the projection cannot apply while the database
// answers, as a bug would make it. The returned func is the fix.
func refusePoison(t *testing.T, db *store.DB) (fix func()) {
	t.Helper()
	add, drop := "ALTER TABLE events ADD CONSTRAINT no_poison CHECK (type <> 'poison')",
		"ALTER TABLE events DROP CONSTRAINT no_poison"
	if db.Dialect == store.SQLite {
		add = "CREATE TRIGGER no_poison BEFORE INSERT ON events WHEN NEW.type = 'poison' BEGIN SELECT RAISE(ABORT, 'no_poison: refused'); END"
		drop = "DROP TRIGGER no_poison"
	}
	if _, err := db.ExecContext(context.Background(), add); err != nil {
		t.Fatal(err)
	}
	return func() {
		if _, err := db.ExecContext(context.Background(), drop); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPoisonIsQuarantinedAndReprocessedOnce: an event the events
// projection cannot apply is quarantined while every other event of its
// tenant and of another keeps flowing; it shows in the admin API, the
// dashboard, /metrics and /readyz; reprocessing it before the fix fails
// and keeps it; after the fix it is applied once, with its outcome.
func TestPoisonIsQuarantinedAndReprocessedOnce(t *testing.T) {
	eachMode(t, func(t *testing.T, env *testenv.Env) {
		nd := startNode(t, env, services.AllRoles...)
		fix := refusePoison(t, nd.n.DB)
		a, b := newTenant(t, nd), newTenant(t, nd)

		var items []string
		for i := range 10 {
			items = append(items, fmt.Sprintf(`{"event":"page_view","userId":"u%d","messageId":"a-%d"}`, i%3, i))
			if i == 4 {
				items = append(items, `{"event":"poison","userId":"u-poison","messageId":"a-poison"}`)
			}
		}
		r := nd.post("/v1/events/batch", a.sk, `{"batch":[`+strings.Join(items, ",")+`]}`)
		if r.Status != http.StatusAccepted {
			t.Fatalf("batch: %d %s", r.Status, r.Body)
		}
		var poisonID string
		for _, it := range r.json(t)["accepted"].([]any) {
			m := it.(map[string]any)
			if m["index"].(float64) == 5 {
				poisonID = str(m, "id")
			}
		}
		others := make([]string, 5)
		for i := range others {
			others[i] = nd.track(b.pk, fmt.Sprintf(`{"event":"click","anonymousId":"b%d"}`, i))
		}
		for _, id := range others {
			nd.waitEvent(b.project, id)
		}
		waitUntil(t, 30*time.Second, "tenant a's 10 good events", func() bool {
			return nd.countRows("SELECT count(*) FROM events WHERE project_id = "+store.ProjectKeySQL("?")+" AND status = 'processed'", a.project) == 10
		})

		list := nd.admin("GET", "/v1/quarantine", "", http.StatusOK)
		held := data(t, list)
		if len(held) != 1 {
			t.Fatalf("%d quarantined, want 1: %v", len(held), list)
		}
		q := held[0]
		if str(q, "stage") != "projection events" || str(q, "eventId") != poisonID || str(q, "projectId") != a.project ||
			str(q, "status") != "quarantined" || !strings.Contains(str(q, "error"), "no_poison") ||
			q["attempts"].(float64) < 4 || q["offset"] == nil || q["partition"] == nil || str(q, "topic") != env.Config.Topics.Events {
			t.Fatalf("quarantined record %v", q)
		}
		qid := str(q, "id")
		detail := nd.admin("GET", "/v1/quarantine/"+qid, "", http.StatusOK)
		if !strings.Contains(str(detail, "rawText"), poisonID) || str(detail, "raw") == "" {
			t.Errorf("detail lacks the record's bytes: %v", detail)
		}
		if r := nd.do("GET", "/v1/quarantine", "", ""); r.Status != http.StatusUnauthorized {
			t.Errorf("quarantine without the admin token: %d", r.Status)
		}

		metrics := nd.do("GET", "/metrics", "", "")
		if !strings.Contains(string(metrics.Body), `boost_stage_quarantined_total{stage="projection events"} 1`) {
			t.Errorf("/metrics does not count the quarantined record")
		}
		ready := nd.do("GET", "/readyz", "", "")
		if ready.Status != http.StatusOK || !strings.Contains(string(ready.Body), `"quarantined":1`) {
			t.Errorf("/readyz: %d %s", ready.Status, ready.Body)
		}

		br := newBrowser(t, nd)
		br.signIn()
		if page := br.get("/dashboard/quarantine", http.StatusOK); !strings.Contains(page, "no_poison") ||
			!strings.Contains(page, "/dashboard/quarantine/"+qid) {
			t.Errorf("the dashboard's quarantine page does not list the record")
		}
		if page := br.get("/dashboard/health", http.StatusOK); !strings.Contains(page, "/dashboard/quarantine?stage=projection%20events") {
			t.Errorf("the health page does not link the quarantined record")
		}

		// Before the fix: still failing, still quarantined.
		if r := nd.do("POST", "/v1/quarantine/"+qid+"/reprocess", "", env.AdminToken); r.Status != http.StatusConflict ||
			!strings.Contains(string(r.Body), "still_failing") {
			t.Fatalf("reprocess before the fix: %d %s", r.Status, r.Body)
		}
		fix()
		br.post("/dashboard/quarantine/"+qid+"/reprocess", url.Values{}, http.StatusSeeOther)
		ev := nd.waitEvent(a.project, poisonID)
		if str(ev, "status") != "processed" {
			t.Errorf("reprocessed event %v, want processed (its outcome waited for it)", ev)
		}
		if r := nd.do("POST", "/v1/quarantine/"+qid+"/reprocess", "", env.AdminToken); r.Status != http.StatusConflict ||
			!strings.Contains(string(r.Body), "already_reprocessed") {
			t.Fatalf("second reprocess: %d %s", r.Status, r.Body)
		}
		if n := nd.countRows("SELECT count(*) FROM events WHERE id = ?", poisonID); n != 1 {
			t.Errorf("%d rows for the reprocessed event", n)
		}
		if n := nd.countRows("SELECT event_count FROM end_users WHERE project_id = "+store.ProjectKeySQL("?")+" AND external_id = 'u-poison'", a.project); n != 1 {
			t.Errorf("the reprocessed event counted %d times for its user", n)
		}
		got := nd.admin("GET", "/v1/quarantine/"+qid, "", http.StatusOK)
		if str(got, "status") != "reprocessed" || got["resolvedAt"] == nil {
			t.Errorf("after reprocessing: %v", got)
		}
	})
}

// TestStalledStageIsNamed holds the events table locked so the events
// projection cannot make progress while an event waits: readiness turns
// 503 and names the stage, the dashboard reads Degraded with the stage
// stalled; once the lock goes, the stage moves and readiness recovers.
func TestStalledStageIsNamed(t *testing.T) {
	eachMode(t, func(t *testing.T, env *testenv.Env) {
		env.Config.StallAfter = time.Second
		nd := startNode(t, env, services.AllRoles...)
		tn := newTenant(t, nd)
		nd.waitEvent(tn.project, nd.track(tn.pk, `{"event":"warm_up","userId":"u"}`))

		conn, err := nd.n.DB.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		lock := []string{"BEGIN IMMEDIATE"}
		if nd.n.DB.Dialect == store.Postgres {
			lock = []string{"BEGIN", "LOCK TABLE events IN ACCESS EXCLUSIVE MODE"}
		}
		for _, s := range lock {
			if _, err := conn.ExecContext(context.Background(), s); err != nil {
				t.Fatal(err)
			}
		}
		id := nd.track(tn.pk, `{"event":"stuck","userId":"u"}`)
		var body string
		waitUntil(t, 30*time.Second, "readiness to name the stalled projection", func() bool {
			r := nd.do("GET", "/readyz", "", "")
			body = string(r.Body)
			return r.Status == http.StatusServiceUnavailable && strings.Contains(body, `"stalled":["`) &&
				strings.Contains(body, "projection events")
		})
		br := newBrowser(t, nd)
		br.signIn()
		if page := br.get("/dashboard/health", http.StatusOK); !strings.Contains(page, "Degraded") || !strings.Contains(page, "stalled") {
			t.Errorf("the health page does not show the stall")
		}
		if _, err := conn.ExecContext(context.Background(), "ROLLBACK"); err != nil {
			t.Fatal(err)
		}
		nd.waitEvent(tn.project, id)
		waitUntil(t, 30*time.Second, "readiness to recover", func() bool {
			return nd.do("GET", "/readyz", "", "").Status == http.StatusOK
		})
	})
}
