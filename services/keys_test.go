package services_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gamify/boost/internal/testenv"
	"github.com/gamify/boost/services"
)

// TestRevocationReachesEveryAPIWithinASecond runs two API processes (with
// Redis and PostgreSQL in distributed mode) that both have the key cached,
// revokes it through one, and requires the other to refuse it within 1 s.
func TestRevocationReachesEveryAPIWithinASecond(t *testing.T) {
	eachMode(t, func(t *testing.T, env *testenv.Env) {
		apis := startApart(t, env, 2)
		a, b := apis[0], apis[1]
		tn := newTenant(t, a)
		body := `{"event":"page_view","userId":"u"}`
		// Warm both caches.
		for range 3 {
			a.track(tn.pk, body)
			b.track(tn.pk, body)
		}
		a.admin("DELETE", "/v1/projects/"+tn.project+"/api-keys/"+tn.pkID, "", http.StatusOK)
		revoked := time.Now()
		for _, nd := range []*node{a, b} {
			for {
				r := nd.post("/v1/events/track", tn.pk, body)
				if r.Status == http.StatusUnauthorized && strings.Contains(string(r.Body), "revoked") {
					t.Logf("refused %s after revoke", time.Since(revoked))
					break
				}
				if r.Status != http.StatusAccepted {
					t.Fatalf("unexpected %d %s", r.Status, r.Body)
				}
				if time.Since(revoked) > time.Second {
					t.Fatalf("revoked key still accepted %s after the revoke answered", time.Since(revoked))
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
		// The secret key of the same project is unaffected.
		b.track(tn.sk, body)
	})
}

// TestRevocationNeedsNoRedisOnTheProjector: with Redis on the API
// processes only (or nowhere, embedded), each API process learns of a
// revocation from the event stream and refuses the key within a second,
// although the projector can tell no shared cache.
func TestRevocationNeedsNoRedisOnTheProjector(t *testing.T) {
	eachMode(t, func(t *testing.T, env *testenv.Env) {
		noRedis := func(n *services.Node) { n.Redis = nil }
		for _, r := range []string{services.RoleWorker, services.RoleBridge, services.RoleProjector} {
			startNodeWith(t, env, noRedis, r)
		}
		a, b := startNode(t, env, services.RoleAPI), startNode(t, env, services.RoleAPI)
		tn := newTenant(t, a)
		body := `{"event":"page_view","userId":"u"}`
		for range 3 {
			a.track(tn.pk, body)
			b.track(tn.pk, body)
		}
		a.admin("DELETE", "/v1/projects/"+tn.project+"/api-keys/"+tn.pkID, "", http.StatusOK)
		revoked := time.Now()
		for _, nd := range []*node{a, b} {
			for {
				r := nd.post("/v1/events/track", tn.pk, body)
				if r.Status == http.StatusUnauthorized && strings.Contains(string(r.Body), "revoked") {
					t.Logf("refused %s after the revoke answered", time.Since(revoked))
					break
				}
				if r.Status != http.StatusAccepted {
					t.Fatalf("unexpected %d %s", r.Status, r.Body)
				}
				if time.Since(revoked) > time.Second {
					t.Fatalf("revoked key still accepted %s after the revoke answered", time.Since(revoked))
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
	})
}

func TestKeyLastUsedIsCoalesced(t *testing.T) {
	env := testenv.Start(t, testenv.Embedded)
	env.Migrate(t.Context())
	env.Config.KeyUsageInterval = 200 * time.Millisecond
	nd := startNode(t, env, services.AllRoles...)
	tn := newTenant(t, nd)
	for range 20 {
		nd.track(tn.pk, `{"event":"click","userId":"u"}`)
	}
	waitUntil(t, 10*time.Second, "lastUsedAt set", func() bool {
		k := nd.admin("GET", "/v1/projects/"+tn.project+"/api-keys/"+tn.pkID, "", http.StatusOK)
		return str(k, "lastUsedAt") != ""
	})
	// 20 requests in well under a few intervals: a handful of usage events,
	// not one per request.
	var n int
	waitUntil(t, 5*time.Second, "usage events bridged", func() bool {
		n = int(endOffsets(t, env, env.Config.Topics.Tenancy))
		return n > 0
	})
	if usage := n - 5; usage > 5 { // 5 = org, project, 2 keys... plus slack
		t.Fatalf("%d tenancy records for 20 requests: usage is not coalesced", n)
	}
	if k := nd.admin("GET", "/v1/projects/"+tn.project+"/api-keys/"+tn.skID, "", http.StatusOK); str(k, "lastUsedAt") != "" {
		t.Fatalf("unused key has lastUsedAt: %v", k)
	}
}

func TestRateLimitAnswers429(t *testing.T) {
	eachMode(t, func(t *testing.T, env *testenv.Env) {
		env.Config.RateLimit, env.Config.RateBurst = 1, 5
		nd := startNode(t, env, services.AllRoles...)
		tn := newTenant(t, nd)
		body := `{"event":"click","userId":"u"}`
		for i := range 5 {
			r := nd.post("/v1/events/track", tn.pk, body)
			if r.Status != http.StatusAccepted || r.Header.Get("RateLimit-Limit") != "5" {
				t.Fatalf("request %d: %d %v", i, r.Status, r.Header)
			}
		}
		r := nd.post("/v1/events/track", tn.pk, body)
		if r.Status != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" || r.Header.Get("RateLimit-Remaining") != "0" {
			t.Fatalf("over the limit: %d %v %s", r.Status, r.Header, r.Body)
		}
		// Another key has its own bucket; a batch takes one token per event
		// (capped at the burst).
		if r := nd.post("/v1/events/batch", tn.sk, `{"batch":[`+strings.Repeat(body+",", 5)+body+`]}`); r.Status != http.StatusAccepted {
			t.Fatalf("other key's batch within its burst: %d %s", r.Status, r.Body)
		}
		if r := nd.post("/v1/events/batch", tn.sk, `{"batch":[`+body+`]}`); r.Status != http.StatusTooManyRequests {
			t.Fatalf("other key over its limit: %d %s", r.Status, r.Body)
		}
	})
}
