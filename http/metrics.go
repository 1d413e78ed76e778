package http

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/troupe-go/troupe/actors"
	"github.com/troupe-go/troupe/domain"
)

// Registry is where the server registers its collectors and what GET
// /metrics gathers from. *prometheus.Registry is one.
type Registry interface {
	prometheus.Registerer
	prometheus.Gatherer
}

// NewRegistry returns a registry of the server's own, not the global one,
// holding the Go runtime and process collectors. Hand it to NewMetrics and
// to NewServer (WithRegistry) so that /metrics shows everything.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

// Metrics counts the runtime's job events for Prometheus. It implements
// actors.Metrics: hand the same value to the runtime and register it where
// the server gathers. Every series is labelled with the job type, whose
// values are bounded by the registered handlers.
type Metrics struct {
	created   *prometheus.CounterVec
	completed *prometheus.CounterVec
	failed    *prometheus.CounterVec
	retried   *prometheus.CounterVec
	canceled  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
}

var _ actors.Metrics = (*Metrics)(nil)

// NewMetrics creates the job counters and the attempt-duration histogram
// and registers them with reg; a nil reg registers nothing (for tests). It
// panics if they are already registered there: that is a wiring mistake.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	counter := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "troupe", Name: name, Help: help}, []string{"type"})
	}
	m := &Metrics{
		created:   counter("jobs_created_total", "Jobs submitted and stored."),
		completed: counter("jobs_completed_total", "Jobs whose handler succeeded."),
		failed:    counter("jobs_failed_total", "Jobs that used up their attempts or returned a permanent error."),
		retried:   counter("jobs_retried_total", "Failed attempts sent back to the queue for another try."),
		canceled:  counter("jobs_canceled_total", "Jobs canceled by a user."),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "troupe",
			Name:      "job_duration_seconds",
			Help:      "How long each attempt's handler ran, whatever its outcome.",
			// 5 ms to about 20 minutes: jobs range from no-ops to reports.
			Buckets: prometheus.ExponentialBuckets(0.005, 4, 10),
		}, []string{"type"}),
	}
	if reg != nil {
		reg.MustRegister(m.created, m.completed, m.failed, m.retried, m.canceled, m.duration)
	}
	return m
}

// JobCreated counts a stored new job.
func (m *Metrics) JobCreated(typ domain.JobType) {
	m.created.WithLabelValues(string(typ)).Inc()
}

// JobRetried counts a failed attempt that sent its job back to the queue.
func (m *Metrics) JobRetried(typ domain.JobType) {
	m.retried.WithLabelValues(string(typ)).Inc()
}

// JobFinished counts a job that became completed, failed or canceled; other
// statuses are not endings and are ignored.
func (m *Metrics) JobFinished(typ domain.JobType, status domain.Status) {
	var c *prometheus.CounterVec
	switch status {
	case domain.StatusCompleted:
		c = m.completed
	case domain.StatusFailed:
		c = m.failed
	case domain.StatusCanceled:
		c = m.canceled
	default:
		return
	}
	c.WithLabelValues(string(typ)).Inc()
}

// AttemptFinished records how long an attempt's handler ran.
func (m *Metrics) AttemptFinished(typ domain.JobType, took time.Duration) {
	m.duration.WithLabelValues(string(typ)).Observe(took.Seconds())
}

// registerStatsGauges registers the gauges read from the runtime at scrape
// time, so that they are never stale and cost nothing between scrapes.
func registerStatsGauges(reg prometheus.Registerer, svc JobService) error {
	gauges := []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "troupe",
			Name:      "active_workers",
			Help:      "Workers running a handler now.",
		}, func() float64 { return float64(svc.Stats().Workers.Busy) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "troupe",
			Name:      "queue_depth",
			Help:      "Jobs waiting in the ready queue.",
		}, func() float64 { return float64(svc.Stats().QueueDepth) }),
	}
	for _, g := range gauges {
		if err := reg.Register(g); err != nil {
			return fmt.Errorf("http: register gauge: %w", err)
		}
	}
	return nil
}
