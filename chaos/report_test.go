package chaos

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestFmtDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{-1, "never"},
		{0, "0ms"},
		{250 * time.Millisecond, "250ms"},
		{1500 * time.Millisecond, "1.5s"},
		{59 * time.Second, "59.0s"},
		{65 * time.Second, "1m05s"},
		{10 * time.Minute, "10m00s"},
	}
	for _, tt := range tests {
		if got := fmtDuration(tt.d); got != tt.want {
			t.Errorf("fmtDuration(%s) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func sampleResults() []*result {
	pass := &result{Scenario: scenario{Name: "api", About: "kill the api"}, RunSeed: 1, Elapsed: 20 * time.Second,
		Kills:   []faultRecord{{Target: "api-1", At: 3 * time.Second, Down: time.Second, Ready: 100 * time.Millisecond}},
		Load:    loadCounts{Requests: 10, Attempts: 12, Status5xx: 2},
		Verdict: verdict{Offered: 100, Accepted: 100, Stored: 100, KafkaChecked: true},
		Drained: true, Drain: 300 * time.Millisecond, Stall: 1200 * time.Millisecond}
	fail := &result{Scenario: scenario{Name: "bridge", About: "kill the bridge"}, RunSeed: 2, Elapsed: time.Minute,
		Verdict: verdict{Offered: 100, Accepted: 100, Stored: 99, Lost: 1, KafkaChecked: true, KafkaDuplicated: 3,
			Failures: []string{"LOST: 1 accepted events are not in the read model"}},
		Drained: false, Drain: 45 * time.Second, Stall: 45 * time.Second}
	rev := &result{Scenario: scenario{Name: "revocation", About: "revoke"}, RunSeed: 3, Elapsed: time.Minute,
		Verdict: verdict{Offered: 10, Accepted: 8, Stored: 8, KafkaChecked: true}, Drained: true,
		Revocation: &revocationResult{DeleteStatus: 200, DeleteTook: 50 * time.Millisecond, Timeout: time.Minute,
			Probes: []probeResult{{API: "api-1", RefusedAfter: 30 * time.Millisecond}, {API: "api-2", RefusedAfter: 2 * time.Second}}}}
	broken := &result{Scenario: scenario{Name: "dev", About: "kill dev"}, SetupErr: errors.New("port in use")}
	return []*result{pass, fail, rev, broken}
}

func TestWriteSummary(t *testing.T) {
	var b bytes.Buffer
	writeSummary(&b, sampleResults())
	want := `
=== summary
  scenario    kills  offered  accepted  stored  lost  dup rm  dup kafka  stuck  5xx  drain                  stall  revocation  result
  api         1      100      100       100     0     0       0          0      2    300ms                  1.2s   -           PASS
  bridge      0      100      100       99      1     0       3          0      0    > 45.0s (not drained)  45.0s  -           FAIL
  revocation  0      10       8         8       0     0       0          0      0    0ms                    0ms    2.0s        FAIL
  dev         -      -        -         -       -     -       -          -      -    -                      -      -           ERROR
`
	if b.String() != want {
		t.Errorf("summary:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestWriteScenario(t *testing.T) {
	rs := sampleResults()
	tests := []struct {
		r    *result
		want []string
	}{
		{rs[0], []string{"=== api — kill the api: PASS (20.0s; rerun: --seed 1 --scenarios api)", "  kills  ", "1: api-1 at 3.0s, down 1.0s, ready 100ms after restart",
			"  5xx answers ", "  longest stall ", "1.2s"}},
		{rs[1], []string{"FAIL", "  failures:", "    - NOT DRAINED: accepted events still missing or pending after 45.0s",
			"    - LOST: 1 accepted events"}},
		{rs[2], []string{"api-1 refused after 30ms", "api-2 refused after 2.0s",
			"    - REVOCATION: api-2 took 2.0s to refuse the revoked key (limit 1.0s)"}},
		{rs[3], []string{"ERROR", "  setup failed: port in use"}},
	}
	for _, tt := range tests {
		var b bytes.Buffer
		writeScenario(&b, tt.r)
		for _, w := range tt.want {
			if !strings.Contains(b.String(), w) {
				t.Errorf("%s: table lacks %q:\n%s", tt.r.Scenario.Name, w, b.String())
			}
		}
	}
	var b bytes.Buffer
	writeScenario(&b, rs[2])
	if strings.Contains(b.String(), "api-1 took") {
		t.Errorf("a revocation within the limit is reported as a failure:\n%s", b.String())
	}
}

func TestSanitizeName(t *testing.T) {
	if got := sanitizeName("Boost_chaos_8tq286_nats-cluster"); got != "boost_chaos_8tq286_nats_cluster" {
		t.Errorf("sanitizeName = %q", got)
	}
}
