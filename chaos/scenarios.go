package chaos

import (
	"fmt"
	"strings"
	"time"
)

// scenario is one fault, injected into one topology under load.
type scenario struct {
	Name     string
	About    string
	Topology topology
	APIs     int
	// Target is the process SIGKILLed; "nats-*" picks one of the cluster's
	// nodes at random each time. Empty: no kills.
	Target           string
	MinDown, MaxDown time.Duration
	// Revocation measures how long a revoked key keeps being accepted.
	Revocation bool
}

// catalogue is every scenario, in the order the suite runs them.
var catalogue = []scenario{
	{Name: "api", About: "SIGKILL the api role (the only one) and start it again",
		Topology: topoRoles, APIs: 1, Target: "api-1", MinDown: 300 * time.Millisecond, MaxDown: 2 * time.Second},
	{Name: "worker", About: "SIGKILL the worker (command handlers and event processor)",
		Topology: topoRoles, APIs: 1, Target: "worker", MinDown: 300 * time.Millisecond, MaxDown: 2 * time.Second},
	{Name: "bridge", About: "SIGKILL the bridge (JetStream → Kafka)",
		Topology: topoRoles, APIs: 1, Target: "bridge", MinDown: 300 * time.Millisecond, MaxDown: 2 * time.Second},
	{Name: "projector", About: "SIGKILL the projector (Kafka → read models)",
		Topology: topoRoles, APIs: 1, Target: "projector", MinDown: 300 * time.Millisecond, MaxDown: 2 * time.Second},
	{Name: "nats", About: "SIGKILL the NATS server and start it again on the same store",
		Topology: topoRoles, APIs: 1, Target: "nats-1", MinDown: 300 * time.Millisecond, MaxDown: 2 * time.Second},
	{Name: "kafka", About: "SIGKILL the Kafka broker (kfake) and start it again on the same data dir",
		Topology: topoRoles, APIs: 1, Target: "kafka", MinDown: 300 * time.Millisecond, MaxDown: 2 * time.Second},
	{Name: "dev", About: "SIGKILL boost dev (everything embedded) and start it again on the same data dir",
		Topology: topoDev, Target: "dev", MinDown: 300 * time.Millisecond, MaxDown: 2 * time.Second},
	{Name: "nats-cluster", About: "three-node NATS cluster, R3 streams: SIGKILL one node, start it again later",
		Topology: topoCluster, APIs: 1, Target: "nats-*", MinDown: 2 * time.Second, MaxDown: 5 * time.Second},
	{Name: "revocation", About: "two api processes sharing Redis: revoke a key under load, time until both refuse it",
		Topology: topoRoles, APIs: 2, Revocation: true},
}

// ScenarioNames lists the scenarios in the order they run.
func ScenarioNames() []string {
	names := make([]string, len(catalogue))
	for i, s := range catalogue {
		names[i] = s.Name
	}
	return names
}

// selectScenarios returns the named scenarios in catalogue order (all when
// names is empty).
func selectScenarios(names []string) ([]scenario, error) {
	if len(names) == 0 {
		return catalogue, nil
	}
	want := map[string]bool{}
	for _, n := range names {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		found := false
		for _, s := range catalogue {
			found = found || s.Name == n
		}
		if !found {
			return nil, fmt.Errorf("unknown scenario %q (scenarios: %s)", n, strings.Join(ScenarioNames(), ", "))
		}
		want[n] = true
	}
	var out []scenario
	for _, s := range catalogue {
		if want[s.Name] {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no scenario named (scenarios: %s)", strings.Join(ScenarioNames(), ", "))
	}
	return out, nil
}
