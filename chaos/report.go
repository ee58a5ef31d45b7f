package chaos

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// fmtDuration prints durations the way the tables show them.
func fmtDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "never"
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	default:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
}

func verdictWord(r *result) string {
	switch {
	case r.SetupErr != nil:
		return "ERROR"
	case r.Passed():
		return "PASS"
	default:
		return "FAIL"
	}
}

// writeScenario prints one scenario's table and what failed.
func writeScenario(w io.Writer, r *result) {
	fmt.Fprintf(w, "\n=== %s — %s: %s (%s; rerun: --seed %d --scenarios %s)\n", r.Scenario.Name, r.Scenario.About,
		verdictWord(r), fmtDuration(r.Elapsed), r.RunSeed, r.Scenario.Name)
	if r.SetupErr != nil {
		fmt.Fprintf(w, "  setup failed: %v\n", r.SetupErr)
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(name string, v any) { fmt.Fprintf(tw, "  %s\t%v\n", name, v) }
	v := r.Verdict
	row("kills", describeKills(r.Kills))
	row("offered", v.Offered)
	row("accepted", v.Accepted)
	row("stored", v.Stored)
	row("lost", v.Lost)
	row("duplicated (read model)", v.Duplicated)
	row("duplicated (Kafka log)", kafkaText(v, v.KafkaDuplicated))
	row("missing from Kafka log", kafkaText(v, v.KafkaMissing))
	row("stuck (pending)", v.Stuck)
	row("roll-up mismatches", len(v.Rollups))
	row("stored, never acknowledged", v.Unacknowledged)
	row("refused (4xx)", v.Refused)
	row("5xx answers", r.Load.Status5xx)
	row("429 answers", r.Load.Status429)
	row("network errors", r.Load.NetErrors)
	row("requests / attempts", fmt.Sprintf("%d / %d", r.Load.Requests, r.Load.Attempts))
	row("given up (never accepted)", r.Load.GaveUp)
	row("time to drain", drainText(r))
	row("longest stall", fmtDuration(r.Stall))
	if rv := r.Revocation; rv != nil {
		row("revocation", describeRevocation(rv))
	}
	tw.Flush()
	for _, c := range r.Crashes {
		fmt.Fprintf(w, "  note: %s\n", c)
	}
	if f := r.Failures(); len(f) > 0 {
		fmt.Fprintf(w, "  failures:\n")
		for _, line := range f {
			fmt.Fprintf(w, "    - %s\n", line)
		}
	}
}

func kafkaText(v verdict, n int) string {
	if !v.KafkaChecked {
		return "not read"
	}
	return fmt.Sprint(n)
}

func drainText(r *result) string {
	if !r.Drained {
		return "> " + fmtDuration(r.Drain) + " (not drained)"
	}
	return fmtDuration(r.Drain)
}

func describeKills(ks []faultRecord) string {
	if len(ks) == 0 {
		return "none"
	}
	parts := make([]string, len(ks))
	for i, k := range ks {
		ready := "ready " + fmtDuration(k.Ready) + " after restart"
		if k.Err != "" {
			ready = "error: " + k.Err
		}
		parts[i] = fmt.Sprintf("%s at %s, down %s, %s", k.Target, fmtDuration(k.At), fmtDuration(k.Down), ready)
	}
	return fmt.Sprintf("%d: %s", len(ks), strings.Join(parts, "; "))
}

func describeRevocation(rv *revocationResult) string {
	if rv.Err != "" {
		return "error: " + rv.Err
	}
	parts := []string{fmt.Sprintf("DELETE %d in %s", rv.DeleteStatus, fmtDuration(rv.DeleteTook))}
	for _, p := range rv.Probes {
		when := "refused after " + fmtDuration(p.RefusedAfter)
		if p.RefusedAfter < 0 {
			when = "still accepting after " + fmtDuration(rv.Timeout)
		}
		parts = append(parts, fmt.Sprintf("%s %s (probe events: %d accepted, %d refused)", p.API, when, p.Accepted, p.Refused))
	}
	return strings.Join(parts, "; ") + fmt.Sprintf("; limit %s", fmtDuration(revocationLimit))
}

// revocationMax is the slowest API's refusal time, -1 if one never refused.
func revocationMax(rv *revocationResult) time.Duration {
	var worst time.Duration
	for _, p := range rv.Probes {
		if p.RefusedAfter < 0 {
			return -1
		}
		worst = max(worst, p.RefusedAfter)
	}
	return worst
}

// writeSummary prints one line per scenario.
func writeSummary(w io.Writer, results []*result) {
	fmt.Fprintf(w, "\n=== summary\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  scenario\tkills\toffered\taccepted\tstored\tlost\tdup rm\tdup kafka\tstuck\t5xx\tdrain\tstall\trevocation\tresult")
	for _, r := range results {
		if r.SetupErr != nil {
			fmt.Fprintf(tw, "  %s\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t%s\n", r.Scenario.Name, verdictWord(r))
			continue
		}
		v := r.Verdict
		rev := "-"
		if r.Revocation != nil && r.Revocation.Err == "" {
			rev = fmtDuration(revocationMax(r.Revocation))
		}
		fmt.Fprintf(tw, "  %s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%d\t%d\t%s\t%s\t%s\t%s\n", r.Scenario.Name, len(r.Kills),
			v.Offered, v.Accepted, v.Stored, v.Lost, v.Duplicated, kafkaText(v, v.KafkaDuplicated), v.Stuck,
			r.Load.Status5xx, drainText(r), fmtDuration(r.Stall), rev, verdictWord(r))
	}
	tw.Flush()
}
