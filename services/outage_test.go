package services_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gamify/boost/internal/testenv"
	"github.com/gamify/boost/services"
	"github.com/gamify/boost/store"
)

// TestKafkaAndProjectorOutagesLoseNothing keeps ingesting while the
// projector is stopped and the Kafka broker is down, brings both back, and
// counts: every accepted event is in the read model exactly once.
func TestKafkaAndProjectorOutagesLoseNothing(t *testing.T) {
	eachMode(t, func(t *testing.T, env *testenv.Env) {
		front := startNode(t, env, services.RoleAPI, services.RoleWorker, services.RoleBridge)
		projector := startNode(t, env, services.RoleProjector)
		tn := newTenant(t, front)

		accepted := map[string]bool{}
		send := func(phase string, n int) {
			for i := range n {
				// Half with messageIds, sent twice: retries must not duplicate.
				body := fmt.Sprintf(`{"event":"e_%s","userId":"u%d","properties":{"i":%d}}`, phase, i%7, i)
				if i%2 == 0 {
					body = fmt.Sprintf(`{"event":"e_%s","userId":"u%d","messageId":"%s-%d","properties":{"i":%d}}`, phase, i%7, phase, i, i)
					front.track(tn.sk, body)
				}
				accepted[front.track(tn.sk, body)] = true
			}
		}
		send("before", 40)
		projector.stop()
		send("projector-down", 40)
		env.StopKafka()
		send("kafka-down", 40) // accepted by JetStream; the bridge waits
		time.Sleep(500 * time.Millisecond)
		env.RestartKafka()
		send("kafka-back", 40)
		startNode(t, env, services.RoleProjector)

		waitUntil(t, 60*time.Second, "every accepted event projected", func() bool {
			return front.countRows("SELECT count(*) FROM events WHERE project_id = "+store.ProjectKeySQL("?"), tn.project) >= len(accepted)
		})
		time.Sleep(300 * time.Millisecond) // let any duplicate show up
		if n := front.countRows("SELECT count(*) FROM events WHERE project_id = "+store.ProjectKeySQL("?"), tn.project); n != len(accepted) {
			t.Fatalf("%d events in the read model, %d accepted", n, len(accepted))
		}
		for id := range accepted {
			if r := front.do("GET", "/v1/projects/"+tn.project+"/events/"+id, "", env.AdminToken); r.Status != http.StatusOK {
				t.Fatalf("accepted event %s missing: %d", id, r.Status)
			}
		}
		var counted int
		if err := front.n.DB.NewRaw("SELECT COALESCE(SUM(count), 0) FROM event_counts_hourly WHERE project_id = "+store.ProjectKeySQL("?"), tn.project).Scan(t.Context(), &counted); err != nil {
			t.Fatal(err)
		}
		if counted != len(accepted) {
			t.Fatalf("roll-ups count %d events, %d accepted", counted, len(accepted))
		}
		var users int
		if err := front.n.DB.NewRaw("SELECT COALESCE(SUM(event_count), 0) FROM end_users WHERE project_id = "+store.ProjectKeySQL("?"), tn.project).Scan(t.Context(), &users); err != nil {
			t.Fatal(err)
		}
		if users != len(accepted) {
			t.Fatalf("end users count %d events, %d accepted", users, len(accepted))
		}
	})
}

// TestJetStreamOutageAnswers503 stops NATS: ingestion and management answer
// 503 with Retry-After, and nothing is half-stored.
func TestJetStreamOutageAnswers503(t *testing.T) {
	env := testenv.Start(t, testenv.Embedded)
	env.Migrate(t.Context())
	env.Config.ConsistencyTimeout = 2 * time.Second
	nd := startNode(t, env, services.AllRoles...)
	tn := newTenant(t, nd)
	env.StopNATS()
	for _, c := range []struct{ path, key, body string }{
		{"/v1/events/track", tn.pk, `{"event":"click","userId":"u"}`},
		{"/v1/events/batch", tn.pk, `{"batch":[{"event":"click","userId":"u"}]}`},
		{"/v1/identify", tn.pk, `{"userId":"u","traits":{"a":1}}`},
	} {
		r := nd.post(c.path, c.key, c.body)
		if r.Status != http.StatusServiceUnavailable || r.Header.Get("Retry-After") == "" {
			t.Fatalf("%s with NATS down: %d (Retry-After %q) %s", c.path, r.Status, r.Header.Get("Retry-After"), r.Body)
		}
	}
	if r := nd.do("POST", "/v1/organizations", `{"name":"x"}`, env.AdminToken); r.Status != http.StatusServiceUnavailable {
		t.Fatalf("create organization with NATS down: %d %s", r.Status, r.Body)
	}
	if r := nd.do("GET", "/readyz", "", ""); r.Status != http.StatusServiceUnavailable || !strings.Contains(string(r.Body), "jetstream") {
		t.Fatalf("readyz with NATS down: %d %s", r.Status, r.Body)
	}
	if n := nd.countRows("SELECT count(*) FROM events WHERE project_id = "+store.ProjectKeySQL("?"), tn.project); n != 0 {
		t.Fatalf("%d events stored during the outage", n)
	}
}
