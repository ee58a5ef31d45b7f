package services_test

import (
	"context"
	"testing"
	"time"

	"github.com/gamify/boost/bench"
	"github.com/gamify/boost/internal/testenv"
	"github.com/gamify/boost/services"
)

// TestBenchFollowsItsSamplesToTheReadModel runs boost bench's load for two
// seconds against a node and requires every sampled event to be seen
// processed: the lag figures come from the probe user's events, read back
// through the events list (bench.followLag).
func TestBenchFollowsItsSamplesToTheReadModel(t *testing.T) {
	env := testenv.Start(t, testenv.Modes()[0])
	env.Migrate(context.Background())
	nd := startNode(t, env, services.RoleAPI, services.RoleWorker, services.RoleBridge, services.RoleProjector)
	tn := newTenant(t, nd)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, mode := range []string{"single", "batch"} {
		res, err := bench.Run(ctx, bench.Config{URL: nd.base, AdminToken: env.AdminToken, ProjectID: tn.project,
			Mode: mode, BatchSize: 10, Connections: 2, Duration: 2 * time.Second, Rate: 200, LagSamples: 10})
		if err != nil {
			t.Fatal(err)
		}
		if res.LagSamples < 10 || res.LagUnfinished != 0 || ctx.Err() != nil {
			t.Fatalf("%s: %d samples followed, %d unfinished; want at least 10 and none", mode, res.LagSamples, res.LagUnfinished)
		}
		if res.EventsPerSecond == 0 || len(res.Errors) != 0 {
			t.Fatalf("%s: accepted %.0f events/s, errors %v", mode, res.EventsPerSecond, res.Errors)
		}
	}
}
