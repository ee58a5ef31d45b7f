package bench

import "testing"

func TestMetricValue(t *testing.T) {
	const exposition = `# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 12.34
process_cpu_seconds_total_other 99
process_resident_memory_bytes 1.2345e+08
boost_stage_backlog{stage="bridge"} 7
`
	for _, tc := range []struct {
		name string
		want float64
	}{
		{"process_cpu_seconds_total", 12.34},
		{"process_resident_memory_bytes", 1.2345e+08},
		{"boost_stage_backlog", 0}, // labelled: not an unlabelled sample
		{"process_cpu", 0},         // a prefix of a name is not the name
		{"missing", 0},
	} {
		if got := metricValue(exposition, tc.name); got != tc.want {
			t.Errorf("metricValue(%q) = %v, want %v", tc.name, got, tc.want)
		}
	}
}
