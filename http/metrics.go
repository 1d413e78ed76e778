package http

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
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
// values are bounded by the registered handlers, and the job's queue.
type Metrics struct {
	created   *prometheus.CounterVec
	completed *prometheus.CounterVec
	failed    *prometheus.CounterVec
	retried   *prometheus.CounterVec
	canceled  *prometheus.CounterVec
	timedOut  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	// pruned is labelled by status alone: the pruner deletes by status
	// and age, without reading the jobs' types or queues.
	pruned *prometheus.CounterVec
}

// jobLabels are the labels of every job series.
var jobLabels = []string{"type", "queue"}

// labels are a job's values of jobLabels.
func labels(job *domain.Job) []string {
	return []string{string(job.Type), cmp.Or(job.Queue, domain.DefaultQueue)}
}

var _ actors.Metrics = (*Metrics)(nil)

// NewMetrics creates the job counters and the attempt-duration histogram
// and registers them with reg; a nil reg registers nothing (for tests). It
// panics if they are already registered there: that is a wiring mistake.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	counter := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "troupe", Name: name, Help: help}, jobLabels)
	}
	m := &Metrics{
		created:   counter("jobs_created_total", "Jobs submitted and stored."),
		completed: counter("jobs_completed_total", "Jobs whose handler succeeded."),
		failed:    counter("jobs_failed_total", "Jobs that used up their attempts or returned a permanent error."),
		retried:   counter("jobs_retried_total", "Failed attempts sent back to the queue for another try."),
		canceled:  counter("jobs_canceled_total", "Jobs canceled by a user."),
		timedOut:  counter("jobs_timed_out_total", "Attempts whose timeout passed before their handler returned."),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "troupe",
			Name:      "job_duration_seconds",
			Help:      "How long each attempt's handler ran, whatever its outcome.",
			// 5 ms to about 20 minutes: jobs range from no-ops to reports.
			Buckets: prometheus.ExponentialBuckets(0.005, 4, 10),
		}, jobLabels),
		pruned: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "troupe",
			Name:      "jobs_pruned_total",
			Help:      "Finished jobs deleted by the pruner once their retention passed, by status.",
		}, []string{"status"}),
	}
	if reg != nil {
		reg.MustRegister(m.created, m.completed, m.failed, m.retried, m.canceled, m.timedOut, m.duration, m.pruned)
	}
	return m
}

// JobCreated counts a stored new job.
func (m *Metrics) JobCreated(job *domain.Job) {
	m.created.WithLabelValues(labels(job)...).Inc()
}

// JobRetried counts a failed attempt that sent its job back to the queue.
func (m *Metrics) JobRetried(job *domain.Job) {
	m.retried.WithLabelValues(labels(job)...).Inc()
}

// JobFinished counts a job that became completed, failed or canceled; other
// statuses are not endings and are ignored.
func (m *Metrics) JobFinished(job *domain.Job) {
	var c *prometheus.CounterVec
	switch job.Status {
	case domain.StatusCompleted:
		c = m.completed
	case domain.StatusFailed:
		c = m.failed
	case domain.StatusCanceled:
		c = m.canceled
	default:
		return
	}
	c.WithLabelValues(labels(job)...).Inc()
}

// AttemptFinished records how long an attempt's handler ran.
func (m *Metrics) AttemptFinished(job *domain.Job, took time.Duration) {
	m.duration.WithLabelValues(labels(job)...).Observe(took.Seconds())
}

// AttemptTimedOut counts an attempt whose timeout passed.
func (m *Metrics) AttemptTimedOut(job *domain.Job) {
	m.timedOut.WithLabelValues(labels(job)...).Inc()
}

// registerStatsGauges registers the gauges read from the runtime at scrape
// time, so that they are never stale and cost nothing between scrapes.
func registerStatsGauges(reg prometheus.Registerer, svc JobService, logger *slog.Logger) error {
	gauges := []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "troupe",
			Name:      "active_workers",
			Help:      "Workers running a handler now.",
		}, func() float64 { return float64(svc.Stats().Workers.Busy) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "troupe",
			Name:      "ready_queue_depth",
			Help:      "Jobs waiting in this node's in-memory ready queue (0 on PostgreSQL, where the queue is the table).",
		}, func() float64 { return float64(svc.Stats().QueueDepth) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "troupe",
			Name:      "jobs_stuck",
			Help:      "Attempts running past their timeout: handlers that ignore their context keep their workers.",
		}, func() float64 { return float64(svc.Stats().Stuck) }),
		newQueueCollector(svc),
		newWaitingCollector(svc, logger),
	}
	for _, g := range gauges {
		if err := reg.Register(g); err != nil {
			return fmt.Errorf("http: register gauge: %w", err)
		}
	}
	return nil
}

// queueCollector reads every queue's state from the store at scrape time:
// troupe_queue_depth{queue} (its pending jobs, on every node alike) and
// troupe_queue_paused{queue}.
type queueCollector struct {
	svc    JobService
	depth  *prometheus.Desc
	paused *prometheus.Desc
}

func newQueueCollector(svc JobService) queueCollector {
	return queueCollector{
		svc: svc,
		depth: prometheus.NewDesc("troupe_queue_depth",
			"Jobs of the queue due to run and waiting for a worker (pending), as the store counts them.", []string{"queue"}, nil),
		paused: prometheus.NewDesc("troupe_queue_paused",
			"1 when the queue is paused (it starts none of its jobs, on any node), else 0.", []string{"queue"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (q queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- q.depth
	ch <- q.paused
}

// Collect implements prometheus.Collector. A store that cannot list the
// queues fails these series alone; the rest of the scrape is served.
func (q queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), statsTimeout)
	defer cancel()
	queues, err := q.svc.Queues(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(q.depth, fmt.Errorf("list queues: %w", err))
		return
	}
	for _, info := range queues {
		paused := 0.0
		if info.Paused {
			paused = 1
		}
		ch <- prometheus.MustNewConstMetric(q.depth, prometheus.GaugeValue, float64(info.Pending), info.Name)
		ch <- prometheus.MustNewConstMetric(q.paused, prometheus.GaugeValue, paused, info.Name)
	}
}

// waitingCollector reads troupe_jobs_waiting{queue,reason} at scrape
// time: the pending, due jobs that each queue's flow settings hold back,
// by reason, counted by the runtime in one call (System.WaitingCounts).
// The reason label is the reason's text ("queue limit"), as in a job's
// waitingFor. Only the reasons some job waits for have a series.
type waitingCollector struct {
	svc     JobService
	logger  *slog.Logger
	waiting *prometheus.Desc
}

func newWaitingCollector(svc JobService, logger *slog.Logger) waitingCollector {
	return waitingCollector{
		svc:    svc,
		logger: logger,
		waiting: prometheus.NewDesc("troupe_jobs_waiting",
			"Jobs of the queue due to run but held back by its flow settings (limits, rates, order), by reason.",
			[]string{"queue", "reason"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (w waitingCollector) Describe(ch chan<- *prometheus.Desc) { ch <- w.waiting }

// Collect implements prometheus.Collector. Counts that cannot be had give
// no samples, logged at debug level: a scrape must not fail for a hint,
// and a runtime without flow control has none to give.
func (w waitingCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), statsTimeout)
	defer cancel()
	counts, err := w.svc.WaitingCounts(ctx)
	if err != nil {
		w.logger.Debug("metrics: count waiting jobs", slog.Any("error", err))
		return
	}
	// The runtime gives one count per queue and reason; sum any repeats,
	// since a collector must not send one series twice.
	type series struct {
		queue  string
		reason domain.WaitReason
	}
	sums := make(map[series]int, len(counts))
	var order []series
	for _, c := range counts {
		k := series{c.Queue, c.Reason}
		if _, ok := sums[k]; !ok {
			order = append(order, k)
		}
		sums[k] += c.Count
	}
	for _, k := range order {
		ch <- prometheus.MustNewConstMetric(w.waiting, prometheus.GaugeValue, float64(sums[k]), k.queue, string(k.reason))
	}
}

// routeUnmatched is the route label of a request that matched no route,
// so that scanners probing random paths add one series, not one per path.
const routeUnmatched = "unmatched"

// requestMetrics counts the API's requests and times them, by route
// pattern (/jobs/:id, never the raw path, so that the series stay few).
type requestMetrics struct {
	total    *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// newRequestMetrics creates the request counter and histogram and
// registers them with reg.
func newRequestMetrics(reg prometheus.Registerer) (*requestMetrics, error) {
	m := &requestMetrics{
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "troupe",
			Name:      "http_requests_total",
			Help:      "HTTP requests answered, by route pattern and status code (499: the client went away first).",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "troupe",
			Name:      "http_request_duration_seconds",
			Help:      "How long HTTP requests took to answer, by route pattern; event streams count their whole life, and claims their wait.",
			Buckets:   prometheus.DefBuckets,
		}, []string{"route"}),
	}
	for _, c := range []prometheus.Collector{m.total, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("http: register request metrics: %w", err)
		}
	}
	return m, nil
}

// observe is the middleware that counts and times each request once it is
// answered.
func (m *requestMetrics) observe(c *gin.Context) {
	start := time.Now()
	c.Next()
	route := c.FullPath()
	if route == "" {
		route = routeUnmatched
	}
	m.total.WithLabelValues(route, strconv.Itoa(c.Writer.Status())).Inc()
	m.duration.WithLabelValues(route).Observe(time.Since(start).Seconds())
}

// JobsPruned counts finished jobs the pruner deleted, by their status.
// The pruner reports a batch at a time; an empty batch adds nothing.
func (m *Metrics) JobsPruned(status domain.Status, n int) {
	if n <= 0 {
		return
	}
	m.pruned.WithLabelValues(string(status)).Add(float64(n))
}
