package chaos

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestKillSchedule(t *testing.T) {
	tests := []struct {
		name             string
		load             time.Duration
		n                int
		minDown, maxDown time.Duration
	}{
		{"short pass", 12 * time.Second, 2, 300 * time.Millisecond, 2 * time.Second},
		{"soak", 2 * time.Minute, 8, 300 * time.Millisecond, 2 * time.Second},
		{"downtime longer than a slot is cut to it", 10 * time.Second, 5, 2 * time.Second, 5 * time.Second},
		{"one kill", 5 * time.Second, 1, time.Second, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ks := killSchedule(rand.New(rand.NewPCG(42, 0)), tt.load, tt.n, tt.minDown, tt.maxDown)
			if len(ks) != tt.n {
				t.Fatalf("%d kills, want %d", len(ks), tt.n)
			}
			var prevEnd time.Duration
			for i, k := range ks {
				if k.At < tt.load/10 || k.At+k.Down > tt.load*85/100 {
					t.Errorf("kill %d at %s down %s leaves the middle of the load", i, k.At, k.Down)
				}
				if k.At < prevEnd {
					t.Errorf("kill %d at %s while the previous one is still down until %s", i, k.At, prevEnd)
				}
				if k.Down <= 0 || k.Down > tt.maxDown {
					t.Errorf("kill %d down %s, outside (0, %s]", i, k.Down, tt.maxDown)
				}
				prevEnd = k.At + k.Down
			}
			again := killSchedule(rand.New(rand.NewPCG(42, 0)), tt.load, tt.n, tt.minDown, tt.maxDown)
			if !slices.Equal(ks, again) {
				t.Errorf("the same seed gave %v, then %v", ks, again)
			}
		})
	}
	if ks := killSchedule(rand.New(rand.NewPCG(1, 0)), time.Minute, 0, 0, 0); ks != nil {
		t.Errorf("no kills asked, got %v", ks)
	}
}

func TestScenarioSeedIsPerScenario(t *testing.T) {
	if scenarioSeed(7, "api") == scenarioSeed(7, "worker") {
		t.Error("two scenarios got the same seed")
	}
	if scenarioSeed(7, "api") != scenarioSeed(7, "api") {
		t.Error("a scenario's seed is not stable")
	}
}

func TestSelectScenarios(t *testing.T) {
	tests := []struct {
		names   []string
		want    []string
		wantErr bool
	}{
		{nil, ScenarioNames(), false},
		{[]string{"bridge", " api"}, []string{"api", "bridge"}, false},
		{[]string{"api", "nope"}, nil, true},
		{[]string{""}, nil, true},
	}
	for _, tt := range tests {
		got, err := selectScenarios(tt.names)
		if (err != nil) != tt.wantErr {
			t.Errorf("selectScenarios(%q) error %v, want error %v", tt.names, err, tt.wantErr)
			continue
		}
		var names []string
		for _, s := range got {
			names = append(names, s.Name)
		}
		if !slices.Equal(names, tt.want) {
			t.Errorf("selectScenarios(%q) = %q, want %q", tt.names, names, tt.want)
		}
	}
}
