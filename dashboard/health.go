package dashboard

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/gamify/boost/bus"
	"github.com/gamify/boost/health"
	"github.com/gamify/boost/projections"
	"github.com/gamify/boost/queries"
	"github.com/gamify/boost/readmodel"
)

// ProjectionTopics names a projection and the log topics it reads.
type ProjectionTopics struct {
	Name   string
	Topics []string
}

// Health gathers the numbers an operator looks at first, from the
// pipeline itself: JetStream consumers for the command handlers, the event
// processor and the bridge; Kafka end offsets against the projections'
// database checkpoints; the ingest counter; the failed events.
type Health struct {
	Checks      []health.Check
	Registry    prometheus.Gatherer
	JetStream   jetstream.JetStream // nil: not shown
	Names       bus.Names
	Kafka       *kadm.Client // nil: projection lag not shown
	Projections []ProjectionTopics
	Queries     *queries.Queries
	// Board is this process's own stages (their failures and last
	// errors); nil: none run here.
	Board *health.Board
	// Quarantine counts what each stage set aside; nil: not shown.
	Quarantine QuarantineCounter
	// StallAfter is how long a stage may hold waiting work without
	// progress before it reads stalled.
	StallAfter time.Duration

	mu      sync.Mutex
	samples []counterSample
	// waiting is when each stage was first seen with work waiting, for
	// stages whose last progress the pipeline does not tell.
	waiting map[string]time.Time
}

// QuarantineCounter counts the records each stage holds in quarantine.
type QuarantineCounter interface {
	Counts(ctx context.Context) (map[string]int, error)
}

type counterSample struct {
	at       time.Time
	accepted float64
	rejected float64
}

// DependencyState is one dependency's answer to its probe.
type DependencyState struct {
	Name  string `json:"name"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

// Lag is how far one stage of the pipeline is behind, and whether it is
// stuck: work waiting without progress past the stall threshold.
type Lag struct {
	Stage   string `json:"stage"`
	Pending int64  `json:"pending"`
	Known   bool   `json:"known"`
	Note    string `json:"note,omitempty"`
	// SecondsWithoutProgress is how long work has waited at the stage
	// without progress (0 when nothing waits).
	SecondsWithoutProgress float64 `json:"secondsWithoutProgress"`
	Stalled                bool    `json:"stalled"`
	// Quarantined is how many records the stage set aside (-1: unknown).
	Quarantined int64 `json:"quarantined"`
	// Failures, LastError and WaitingOn come from this process's own run
	// of the stage (Failures -1: it does not run here).
	Failures  int64  `json:"failures"`
	LastError string `json:"lastError,omitempty"`
	WaitingOn string `json:"waitingOn,omitempty"`

	lastProgress time.Time
}

// HealthSnapshot is what the health page shows.
type HealthSnapshot struct {
	At           time.Time         `json:"at"`
	IngestRate   float64           `json:"ingestRate"` // accepted events/s over the last minute
	RejectRate   float64           `json:"rejectRate"`
	RateKnown    bool              `json:"rateKnown"`
	Accepted     int64             `json:"accepted"` // since this process started
	Lags         []Lag             `json:"lags"`
	FailedHour   int64             `json:"failedHour"`
	FailedKnown  bool              `json:"failedKnown"`
	Dependencies []DependencyState `json:"dependencies"`
	Healthy      bool              `json:"healthy"`
}

// Snapshot measures everything, each part bounded by a short timeout so
// a dead dependency shows as down instead of hanging the page.
func (h *Health) Snapshot(ctx context.Context, projectIDs []string) HealthSnapshot {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	snap := HealthSnapshot{At: time.Now().UTC(), Healthy: true}

	var wg sync.WaitGroup
	deps := make([]DependencyState, len(h.Checks))
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i, err := range health.ProbeAll(ctx, h.Checks) {
			deps[i] = DependencyState{Name: h.Checks[i].Name, OK: true}
			if err != nil {
				deps[i] = DependencyState{Name: h.Checks[i].Name, Error: err.Error()}
			}
		}
	}()
	var lags []Lag
	wg.Add(1)
	go func() {
		defer wg.Done()
		lags = append(h.streamLags(ctx), h.projectionLags(ctx)...)
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		snap.FailedHour, snap.FailedKnown = h.failedLastHour(ctx, projectIDs)
	}()
	var quarantined map[string]int
	var quarantineErr error
	if h.Quarantine != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			quarantined, quarantineErr = h.Quarantine.Counts(ctx)
		}()
	}
	wg.Wait()
	h.judge(lags, snap.At, quarantined, h.Quarantine != nil && quarantineErr == nil)
	snap.Dependencies, snap.Lags = deps, lags
	for _, d := range deps {
		snap.Healthy = snap.Healthy && d.OK
	}
	for _, l := range lags {
		snap.Healthy = snap.Healthy && !l.Stalled
	}
	snap.Accepted, snap.IngestRate, snap.RejectRate, snap.RateKnown = h.rates(snap.At)
	return snap
}

// judge fills in each stage's time without progress, stall, quarantine
// count and, for the stages this process runs, its failures: the local
// board knows those stages best; for the others the pipeline's own records
// (the consumers' last acks, the checkpoints' times) tell when they last
// moved, and a wait this process saw begin tells how long they have not.
func (h *Health) judge(lags []Lag, now time.Time, quarantined map[string]int, quarantineKnown bool) {
	local := map[string]health.State{}
	if h.Board != nil {
		for _, st := range h.Board.Snapshot() {
			local[st.Name] = st
		}
	}
	stallAfter := h.StallAfter
	if stallAfter <= 0 {
		stallAfter = health.DefaultStallAfter
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.waiting == nil {
		h.waiting = map[string]time.Time{}
	}
	for i := range lags {
		l := &lags[i]
		l.Failures, l.Quarantined = -1, -1
		if quarantineKnown {
			l.Quarantined = int64(quarantined[l.Stage])
		}
		if st, ok := local[l.Stage]; ok {
			l.Failures, l.LastError, l.WaitingOn = st.Failures, st.LastError, st.WaitingOn
			if st.Backlog > 0 {
				l.SecondsWithoutProgress, l.Stalled = st.SinceSeconds, st.Stalled
				continue
			}
		}
		if !l.Known || l.Pending == 0 {
			delete(h.waiting, l.Stage)
			continue
		}
		since, ok := h.waiting[l.Stage]
		if !ok {
			since = now
			h.waiting[l.Stage] = now
		}
		if l.lastProgress.After(since) {
			since = l.lastProgress
		}
		wait := now.Sub(since)
		l.SecondsWithoutProgress = wait.Round(time.Second).Seconds()
		l.Stalled = wait > stallAfter
	}
}

// rates samples the ingest counters and returns the rate over the oldest
// sample of the last minute.
func (h *Health) rates(now time.Time) (total int64, accepted, rejected float64, known bool) {
	acc, rej := h.counters()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.samples = append(h.samples, counterSample{at: now, accepted: acc, rejected: rej})
	for len(h.samples) > 1 && now.Sub(h.samples[0].at) > time.Minute {
		h.samples = h.samples[1:]
	}
	first := h.samples[0]
	if dt := now.Sub(first.at).Seconds(); dt >= 1 {
		return int64(acc), (acc - first.accepted) / dt, (rej - first.rejected) / dt, true
	}
	return int64(acc), 0, 0, false
}

func (h *Health) counters() (accepted, rejected float64) {
	if h.Registry == nil {
		return 0, 0
	}
	mfs, err := h.Registry.Gather()
	if err != nil {
		return 0, 0
	}
	for _, mf := range mfs {
		if mf.GetName() != "boost_events_ingested_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				switch {
				case l.GetName() == "result" && l.GetValue() == "accepted":
					accepted += m.GetCounter().GetValue()
				case l.GetName() == "result" && l.GetValue() == "rejected":
					rejected += m.GetCounter().GetValue()
				}
			}
		}
	}
	return accepted, rejected
}

// Stages of the pipeline that JetStream consumers feed.
const (
	stageCommands  = health.StageCommands
	stageProcessor = health.StageProcessor
	stageBridge    = health.StageBridge
)

// streamLags sums the pending and unacknowledged messages of the durable
// consumers of each JetStream stage, listing each stream's consumers once.
func (h *Health) streamLags(ctx context.Context) []Lag {
	out := []Lag{{Stage: stageCommands}, {Stage: stageProcessor}, {Stage: stageBridge}}
	at := func(stage string) *Lag {
		return &out[slices.IndexFunc(out, func(l Lag) bool { return l.Stage == stage })]
	}
	// stageOf says which stage a consumer of a stream serves ("" for none).
	streams := []struct {
		name    string
		stages  []string // what it feeds, unknown if it cannot be read
		stageOf func(consumer string) string
	}{
		{h.Names.CommandStream(), []string{stageCommands}, func(string) string { return stageCommands }},
		{h.Names.TrackedStream(), []string{stageProcessor}, func(c string) string {
			if strings.HasPrefix(c, h.Names.ProcessorQueue()) {
				return stageProcessor
			}
			return ""
		}},
	}
	if h.JetStream == nil {
		for i := range out {
			out[i].Note = "JetStream is not reachable from this process"
		}
		return out
	}
	failed := map[string]string{}
	for _, st := range streams {
		err := h.consumers(ctx, st.name, func(name string, pending int64, lastAck *time.Time) {
			if stage := st.stageOf(name); stage != "" {
				l := at(stage)
				l.Pending += pending
				if lastAck != nil && pending > 0 && (l.lastProgress.IsZero() || lastAck.Before(l.lastProgress)) {
					// The stage is as stuck as its most stuck consumer.
					l.lastProgress = *lastAck
				}
			}
		})
		if err != nil {
			for _, stage := range st.stages {
				failed[stage] = err.Error()
			}
		}
	}
	// The bridge acknowledges nothing: its lag is the streams past the
	// positions it recorded.
	if pending, last, err := bus.BridgeBacklog(ctx, h.JetStream, h.Names); err != nil {
		failed[stageBridge] = err.Error()
	} else {
		l := at(stageBridge)
		l.Pending, l.lastProgress = pending, last
	}
	for i := range out {
		out[i].Note, out[i].Known = failed[out[i].Stage], failed[out[i].Stage] == ""
	}
	return out
}

// consumers calls fn with each durable consumer of stream, how many
// messages it has yet to deliver or see acknowledged, and when it last
// saw an acknowledgement (nil when the server does not say).
func (h *Health) consumers(ctx context.Context, stream string, fn func(name string, pending int64, lastAck *time.Time)) error {
	s, err := h.JetStream.Stream(ctx, stream)
	if err != nil {
		return fmt.Errorf("stream %s: %w", stream, err)
	}
	infos := s.ListConsumers(ctx)
	for ci := range infos.Info() {
		fn(ci.Name, int64(ci.NumPending)+int64(ci.NumAckPending), ci.AckFloor.Last)
	}
	if err := infos.Err(); err != nil {
		return fmt.Errorf("consumers of %s: %w", stream, err)
	}
	return nil
}

// projectionLags compares the log's end offsets with the checkpoints the
// projections commit with their rows.
func (h *Health) projectionLags(ctx context.Context) []Lag {
	out := make([]Lag, 0, len(h.Projections))
	var cps []readmodel.Checkpoint
	var cpErr error
	if h.Kafka != nil && h.Queries != nil {
		cps, cpErr = h.Queries.Checkpoints(ctx)
	}
	for _, p := range h.Projections {
		lag := Lag{Stage: projections.StageName(p.Name)}
		switch {
		case h.Kafka == nil:
			lag.Note = "Kafka is not configured for this process"
		case cpErr != nil:
			lag.Note = cpErr.Error()
		default:
			ends, err := h.Kafka.ListEndOffsets(ctx, p.Topics...)
			if err == nil {
				err = ends.Error()
			}
			if err != nil {
				lag.Note = fmt.Sprintf("Kafka end offsets: %v", err)
				break
			}
			type partition struct {
				topic string
				n     int32
			}
			next := map[partition]int64{}
			updated := map[partition]time.Time{}
			for _, c := range cps {
				if c.Projection == p.Name {
					next[partition{c.Topic, c.Partition}] = c.NextOffset
					updated[partition{c.Topic, c.Partition}] = c.UpdatedAt
				}
			}
			ends.Each(func(o kadm.ListedOffset) {
				k := partition{o.Topic, o.Partition}
				behind := max(0, o.Offset-next[k])
				lag.Pending += behind
				if at := updated[k]; behind > 0 && !at.IsZero() && (lag.lastProgress.IsZero() || at.Before(lag.lastProgress)) {
					lag.lastProgress = at // as stuck as its most stuck partition
				}
			})
			lag.Known = true
		}
		out = append(out, lag)
	}
	return out
}

// maxHealthProjects bounds the failed-events count: it walks each
// project's time index, which is cheap per project but not for thousands.
const maxHealthProjects = 200

func (h *Health) failedLastHour(ctx context.Context, projectIDs []string) (int64, bool) {
	if h.Queries == nil {
		return 0, false
	}
	n, err := h.Queries.FailedSince(ctx, projectIDs[:min(len(projectIDs), maxHealthProjects)], time.Now().Add(-time.Hour))
	if err != nil {
		return 0, false
	}
	return n, true
}

// healthSnapshot measures the pipeline for the projects in sidebar (the
// page's own project list, so it is read once per request).
func (d *Dashboard) healthSnapshot(r *http.Request, sidebar []orgProjects) HealthSnapshot {
	var ids []string
	for _, o := range sidebar {
		for _, p := range o.Projects {
			ids = append(ids, p.ID)
		}
	}
	return d.cfg.Health.Snapshot(r.Context(), ids)
}

func (d *Dashboard) healthPage(w http.ResponseWriter, r *http.Request) {
	v := &view{Title: "Pipeline health", Nav: "health", Sidebar: d.sidebar(r)}
	if d.cfg.Health != nil {
		v.Data = d.healthSnapshot(r, v.Sidebar)
	}
	d.render(w, r, http.StatusOK, "health", v)
}

func (d *Dashboard) healthJSON(w http.ResponseWriter, r *http.Request) {
	if d.cfg.Health == nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"error": map[string]string{"message": "health is not collected by this process"}})
		return
	}
	writeJSON(w, http.StatusOK, d.healthSnapshot(r, d.sidebar(r)))
}
