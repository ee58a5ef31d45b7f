// Package health tracks the pipeline stages a process runs — the command
// handlers, the event processor, the bridge, each projection — so that
// readiness, /metrics and the dashboard can tell which stage is stuck and on
// what: when it last made progress while work was waiting, how often it
// failed, what it last failed on and how many records it set aside.
package health

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Names of the write-side stages; a projection's stage is "projection "
// and its name.
const (
	StageCommands  = "command handlers"
	StageProcessor = "event processor"
	StageBridge    = "bridge to Kafka"
)

// DefaultStallAfter is how long a stage may hold waiting work without
// progress before it reads stalled: long enough for a broker restart or a
// rebalance, short enough that an operator sees a stuck stage within a
// minute.
const DefaultStallAfter = 30 * time.Second

// Board holds the stages of one process.
type Board struct {
	stallAfter time.Duration
	now        func() time.Time

	mu     sync.Mutex
	stages []*Stage
}

// NewBoard returns a board on which a stage holding waiting work for
// stallAfter without progress reads stalled (DefaultStallAfter when zero).
func NewBoard(stallAfter time.Duration) *Board {
	if stallAfter <= 0 {
		stallAfter = DefaultStallAfter
	}
	return &Board{stallAfter: stallAfter, now: time.Now}
}

// Stage returns the stage called name, adding it the first time.
func (b *Board) Stage(name string) *Stage {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, s := range b.stages {
		if s.name == name {
			return s
		}
	}
	s := &Stage{name: name, now: b.now, since: b.now()}
	b.stages = append(b.stages, s)
	return s
}

// Snapshot returns every stage's state, in the order they were added.
func (b *Board) Snapshot() []State {
	b.mu.Lock()
	stages := slices.Clone(b.stages)
	b.mu.Unlock()
	out := make([]State, len(stages))
	for i, s := range stages {
		out[i] = s.state(b.stallAfter)
	}
	return out
}

// Stalled returns the stalled stages.
func (b *Board) Stalled() []State {
	var out []State
	for _, s := range b.Snapshot() {
		if s.Stalled {
			out = append(out, s)
		}
	}
	return out
}

// Stage is one stage's record. Its methods are safe for concurrent use
// and cheap enough to call per batch.
type Stage struct {
	name string
	now  func() time.Time

	mu           sync.Mutex
	since        time.Time // the later of the last progress and the start of the current wait
	lastProgress time.Time
	backlog      int64
	backlogKnown bool
	failures     int64
	quarantined  int64
	lastError    string
	lastErrorAt  time.Time
	waitingOn    string
}

// Progressed records that the stage finished n units of work.
func (s *Stage) Progressed(n int) {
	if n <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.lastProgress, s.since = now, now
	s.waitingOn = ""
}

// Backlog records how much work is waiting for the stage (in hand or
// not yet fetched). A wait starts when the backlog goes from none to some.
func (s *Stage) Backlog(n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n > 0 && (s.backlog <= 0 || !s.backlogKnown) {
		s.since = s.now()
		if s.lastProgress.After(s.since) {
			s.since = s.lastProgress
		}
	}
	s.backlog, s.backlogKnown = n, true
}

// Failed records a failure and the dependency (or cause) the stage is now
// waiting on, e.g. "the database" or "Kafka".
func (s *Stage) Failed(err error, waitingOn string) {
	if err == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures++
	s.lastError, s.lastErrorAt, s.waitingOn = err.Error(), s.now(), waitingOn
}

// Quarantined records n records set aside so the stage could move on.
func (s *Stage) Quarantined(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.quarantined += int64(n)
}

// State is a stage as readiness, metrics and the dashboard show it.
type State struct {
	Name    string `json:"name"`
	Stalled bool   `json:"stalled"`
	// Backlog is the work waiting for the stage (-1: not known yet).
	Backlog int64 `json:"backlog"`
	// SinceProgress is how long work has been waiting without progress
	// (zero when nothing waits).
	SinceProgress time.Duration `json:"-"`
	SinceSeconds  float64       `json:"secondsWithoutProgress"`
	LastProgress  *time.Time    `json:"lastProgressAt,omitempty"`
	Failures      int64         `json:"failures"`
	Quarantined   int64         `json:"quarantined"`
	LastError     string        `json:"lastError,omitempty"`
	LastErrorAt   *time.Time    `json:"lastErrorAt,omitempty"`
	WaitingOn     string        `json:"waitingOn,omitempty"`
}

// Snapshot returns the stage's state by the default stall threshold.
func (s *Stage) Snapshot() State { return s.state(DefaultStallAfter) }

func (s *Stage) state(stallAfter time.Duration) State {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := State{Name: s.name, Backlog: -1, Failures: s.failures, Quarantined: s.quarantined, WaitingOn: s.waitingOn}
	if s.backlogKnown {
		st.Backlog = s.backlog
	}
	if !s.lastProgress.IsZero() {
		t := s.lastProgress.UTC()
		st.LastProgress = &t
	}
	if s.lastError != "" {
		t := s.lastErrorAt.UTC()
		st.LastError, st.LastErrorAt = s.lastError, &t
	}
	if s.backlogKnown && s.backlog > 0 {
		st.SinceProgress = s.now().Sub(s.since)
		st.SinceSeconds = st.SinceProgress.Round(time.Millisecond).Seconds()
		st.Stalled = st.SinceProgress > stallAfter
	}
	return st
}

// Collector exports the board on /metrics.
func (b *Board) Collector() prometheus.Collector { return collector{b} }

var (
	descBacklog = prometheus.NewDesc("boost_stage_backlog",
		"Work waiting for a pipeline stage of this process (records or messages; -1 not known yet).", []string{"stage"}, nil)
	descSince = prometheus.NewDesc("boost_stage_seconds_without_progress",
		"How long work has waited at a stage of this process without progress (0 when nothing waits).", []string{"stage"}, nil)
	descStalled = prometheus.NewDesc("boost_stage_stalled",
		"1 when a stage of this process has held waiting work without progress past the stall threshold.", []string{"stage"}, nil)
	descFailures = prometheus.NewDesc("boost_stage_failures_total",
		"Failed attempts of a stage of this process (a batch, a message, a produce).", []string{"stage"}, nil)
	descQuarantined = prometheus.NewDesc("boost_stage_quarantined_total",
		"Records a stage of this process set aside (quarantined) to move past them.", []string{"stage"}, nil)
)

type collector struct{ b *Board }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descBacklog, descSince, descStalled, descFailures, descQuarantined} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.b.Snapshot() {
		stalled := 0.0
		if s.Stalled {
			stalled = 1
		}
		ch <- prometheus.MustNewConstMetric(descBacklog, prometheus.GaugeValue, float64(s.Backlog), s.Name)
		ch <- prometheus.MustNewConstMetric(descSince, prometheus.GaugeValue, s.SinceProgress.Seconds(), s.Name)
		ch <- prometheus.MustNewConstMetric(descStalled, prometheus.GaugeValue, stalled, s.Name)
		ch <- prometheus.MustNewConstMetric(descFailures, prometheus.CounterValue, float64(s.Failures), s.Name)
		ch <- prometheus.MustNewConstMetric(descQuarantined, prometheus.CounterValue, float64(s.Quarantined), s.Name)
	}
}

// Check is one readiness probe of a dependency; Probe returns nil when it
// answers.
type Check struct {
	Name  string
	Probe func(ctx context.Context) error
}

// ProbeAll runs every check's probe concurrently and returns their errors
// in the checks' order; ctx bounds them all.
func ProbeAll(ctx context.Context, checks []Check) []error {
	errs := make([]error, len(checks))
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Go(func() { errs[i] = c.Probe(ctx) })
	}
	wg.Wait()
	return errs
}
