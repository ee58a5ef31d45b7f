// Package metrics holds Boost's Prometheus collectors on a registry of its
// own, so several Boost instances in one test process never collide.
package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics is every collector Boost exports on /metrics.
type Metrics struct {
	Registry *prometheus.Registry

	HTTPRequests    *prometheus.CounterVec
	HTTPDuration    *prometheus.HistogramVec
	CommandsHandled *prometheus.CounterVec
	EventOutcomes   *prometheus.CounterVec
	EventsAccepted  *prometheus.CounterVec
	BridgedEvents   prometheus.Counter
	BridgeLagEvents *prometheus.GaugeVec
	ProjectedEvents *prometheus.CounterVec
	ProjectedBatch  *prometheus.HistogramVec
	ProjectionLag   *prometheus.GaugeVec
	UseCases        *prometheus.CounterVec
	UseCaseDuration *prometheus.HistogramVec
}

// New registers and returns a fresh set of collectors.
func New() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		HTTPRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "boost_http_requests_total",
			Help: "HTTP requests by route, method and status code.",
		}, []string{"route", "method", "code"}),
		HTTPDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "boost_http_request_duration_seconds",
			Help:    "HTTP request latency by route and method.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "method"}),
		CommandsHandled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "boost_commands_handled_total",
			Help: "Commands handled by the worker, by command and outcome (applied, noop, rejected, error).",
		}, []string{"command", "outcome"}),
		EventOutcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "boost_events_outcomes_total",
			Help: "Tracked events the processor finished, by outcome (processed, failed).",
		}, []string{"outcome"}),
		EventsAccepted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "boost_events_ingested_total",
			Help: "Events answered by the ingestion API, by result (accepted, rejected).",
		}, []string{"result"}),
		BridgedEvents: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "boost_bridge_events_total",
			Help: "Domain events copied from JetStream to Kafka.",
		}),
		BridgeLagEvents: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "boost_bridge_lag_events",
			Help: "Events in a JetStream stream not yet acknowledged by Kafka.",
		}, []string{"stream"}),
		ProjectedEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "boost_projection_events_total",
			Help: "Kafka records applied by each projection.",
		}, []string{"projection"}),
		ProjectedBatch: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "boost_projection_batch_records",
			Help:    "Kafka records applied in one transaction, per projection: a commit costs about as much for a few records as for many.",
			Buckets: []float64{1, 10, 100, 1000, 10000, 20000},
		}, []string{"projection"}),
		ProjectionLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "boost_projection_lag_records",
			Help: "Kafka records behind the end of the log, per projection.",
		}, []string{"projection"}),
		UseCases: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "boost_use_cases_total",
			Help: "Use cases handled by the application layer, by name and outcome (ok, or the error kind).",
		}, []string{"use_case", "outcome"}),
		UseCaseDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "boost_use_case_duration_seconds",
			Help:    "Time the application layer took for a use case.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"use_case"}),
	}
	m.Registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.HTTPRequests, m.HTTPDuration, m.CommandsHandled, m.EventOutcomes, m.EventsAccepted,
		m.BridgedEvents, m.BridgeLagEvents, m.ProjectedEvents, m.ProjectedBatch, m.ProjectionLag, m.UseCases, m.UseCaseDuration,
	)
	return m
}

// Bridged counts events the bridge forwarded.
func (m *Metrics) Bridged(n int) { m.BridgedEvents.Add(float64(n)) }

// BridgeLag records how far the bridge is behind JetStream.
func (m *Metrics) BridgeLag(stream string, pending uint64) {
	m.BridgeLagEvents.WithLabelValues(stream).Set(float64(pending))
}

// Projected counts records a projection applied.
func (m *Metrics) Projected(projection string, n int) {
	m.ProjectedEvents.WithLabelValues(projection).Add(float64(n))
	m.ProjectedBatch.WithLabelValues(projection).Observe(float64(n))
}

// SetProjectionLag records how far a projection is behind the log.
func (m *Metrics) SetProjectionLag(projection string, lag int64) {
	m.ProjectionLag.WithLabelValues(projection).Set(float64(lag))
}

// CommandHandled counts one handled command.
func (m *Metrics) CommandHandled(command, outcome string) {
	m.CommandsHandled.WithLabelValues(command, outcome).Inc()
}

// EventOutcome counts one processed or failed event.
func (m *Metrics) EventOutcome(outcome string) { m.EventOutcomes.WithLabelValues(outcome).Inc() }

// Ingested counts events the API accepted or rejected.
func (m *Metrics) Ingested(result string, n int) {
	m.EventsAccepted.WithLabelValues(result).Add(float64(n))
}

// UseCase counts and times one use case of the application layer.
func (m *Metrics) UseCase(name, outcome string, took time.Duration) {
	m.UseCases.WithLabelValues(name, outcome).Inc()
	m.UseCaseDuration.WithLabelValues(name).Observe(took.Seconds())
}
