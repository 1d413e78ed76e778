package actors

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"time"

	"github.com/troupe-go/troupe/domain"
)

// Defaults of Config. A zero field in Config means "use the default".
const (
	QueueSizeDefault       = 100_000
	MaxAttemptsDefault     = 3
	RetryBaseDelayDefault  = time.Second
	RetryMaxDelayDefault   = 5 * time.Minute
	HandBackTimeoutDefault = 5 * time.Second
	ShutdownTimeoutDefault = 30 * time.Second
	LeaseDurationDefault   = 30 * time.Second
	RescueIntervalDefault  = 10 * time.Second
	PollIntervalDefault    = time.Second
	MaxAttemptsLimit       = 1000
	JobTimeoutDefault      = 30 * time.Minute
	// MaxResultBytesDefault bounds a job's result to 64 KiB: results are
	// kept on the job and sent with every read of it.
	MaxResultBytesDefault = 64 << 10
	// MaxPayloadBytesDefault bounds a job's payload to 1 MiB, the HTTP
	// API's default body limit, so that every path admits the same jobs.
	MaxPayloadBytesDefault = 1 << 20
	requestTimeoutDefault  = 30 * time.Second
	// The retention defaults: a day for completed jobs, a week for failed
	// and canceled ones, which people come back to inspect.
	RetainCompletedDefault = 24 * time.Hour
	RetainFailedDefault    = 7 * 24 * time.Hour
	RetainCanceledDefault  = 7 * 24 * time.Hour
)

// KeepForever, as a Retention field, keeps finished jobs of that status
// for ever.
const KeepForever time.Duration = -1

// Retention says how long finished jobs are kept, per terminal status,
// counted from FinishedAt; the pruner deletes them after. A zero field
// means its default; KeepForever means never.
type Retention struct {
	Completed time.Duration
	Failed    time.Duration
	Canceled  time.Duration
}

// For returns the retention of a terminal status, and false for a status
// kept for ever or not terminal.
func (r Retention) For(status domain.Status) (time.Duration, bool) {
	var d time.Duration
	switch status {
	case domain.StatusCompleted:
		d = r.Completed
	case domain.StatusFailed:
		d = r.Failed
	case domain.StatusCanceled:
		d = r.Canceled
	}
	return d, d > 0
}

// WorkersDefault is the pool size when none is configured: four workers a
// CPU, because most handlers wait on I/O rather than burn CPU.
func WorkersDefault() int { return runtime.NumCPU() * 4 }

// Config holds the runtime's tunables. Operators set them (flags, env, a
// file); the zero value of each field means its default.
type Config struct {
	// Workers is the size of the worker pool. Defaults to WorkersDefault().
	Workers int
	// QueueSize bounds the ready queue, jobs due now of every queue
	// together; Submit returns ErrQueueFull beyond it. Jobs submitted for
	// later wait in the store and take no place until due. Jobs recovered
	// at start, retries and jobs falling due are queued even past the
	// bound, since refusing them would lose them. Defaults to 100,000.
	QueueSize int
	// MaxAttempts is the attempts a job gets when its submitter names none.
	// Defaults to 3.
	MaxAttempts int
	// RetryBaseDelay is the backoff before the second attempt; each further
	// attempt doubles it. Defaults to 1s.
	RetryBaseDelay time.Duration
	// RetryMaxDelay caps the backoff. Defaults to 5m.
	RetryMaxDelay time.Duration
	// RetryJitter randomizes the backoffs. Defaults to FullJitter, so that
	// jobs failing together do not retry in lockstep; NoJitter makes them
	// exactly base·2^(attempt-1).
	RetryJitter Jitter
	// MaxPayloadBytes bounds the payload of a submitted job; Submit and
	// SubmitBatch refuse a larger one with domain.ErrPayloadTooLarge. A
	// payload is held in memory and stored whole, and a batch is one write,
	// so one huge payload would cost every job stored with it. Defaults to
	// 1 MiB.
	MaxPayloadBytes int64
	// JobTimeout ends each attempt's context after this long, for jobs
	// whose submission and type name none; NoTimeout means none. Defaults
	// to 30m.
	JobTimeout time.Duration
	// QueueLimits caps, per queue, how many of its jobs run at once on
	// this node; queues without a cap share the pool. Jobs claimed through
	// this node by external workers count.
	QueueLimits map[string]int
	// ExternalTypes are the job types run by external workers (the worker
	// protocol): they are submitted like any other and no handler of this
	// process runs them.
	ExternalTypes []domain.JobType
	// MaxResultBytes bounds a job's result (JSON); a larger one fails the
	// attempt with domain.ErrResultTooLarge. Defaults to 64 KiB.
	MaxResultBytes int
	// Retention says how long finished jobs are kept before the pruner
	// deletes them. Defaults to 24h completed, 168h failed and canceled.
	Retention Retention
	// HandBackTimeout is how long Stop waits, after its context ends and
	// running attempts are canceled, for their handlers to return so they
	// can be handed back as pending. A handler still running after it is
	// left as running and counted as interrupted at the next start.
	// Defaults to 5s.
	HandBackTimeout time.Duration
	// ShutdownTimeout is how long running jobs get to finish when the
	// System is stopped by its fx module (Stop itself takes a context).
	// Defaults to 30s.
	ShutdownTimeout time.Duration

	// The fields below apply when the store is shared by several nodes
	// (WithSharedQueue).

	// Node names this process among the nodes sharing the store. It must be
	// unique among the live ones. Defaults to hostname-pid.
	Node string
	// LeaseDuration is how long a node owns a running job without renewing
	// its lease; a node renews at a third of it. A job of a node that died
	// runs again after at most this plus RescueInterval. Defaults to 30s.
	LeaseDuration time.Duration
	// RescueInterval is how often each node looks for expired leases.
	// Defaults to 10s.
	RescueInterval time.Duration
	// PollInterval is how often an idle node claims without being notified,
	// in case a notification was lost. Defaults to 1s.
	PollInterval time.Duration
}

// WithDefaults returns a copy with every zero field set to its default.
func (c Config) WithDefaults() Config {
	c.Workers = cmp.Or(c.Workers, WorkersDefault())
	c.QueueSize = cmp.Or(c.QueueSize, QueueSizeDefault)
	c.MaxAttempts = cmp.Or(c.MaxAttempts, MaxAttemptsDefault)
	c.RetryBaseDelay = cmp.Or(c.RetryBaseDelay, RetryBaseDelayDefault)
	c.RetryMaxDelay = cmp.Or(c.RetryMaxDelay, RetryMaxDelayDefault)
	c.MaxPayloadBytes = cmp.Or(c.MaxPayloadBytes, MaxPayloadBytesDefault)
	c.JobTimeout = cmp.Or(c.JobTimeout, JobTimeoutDefault)
	c.MaxResultBytes = cmp.Or(c.MaxResultBytes, MaxResultBytesDefault)
	c.Retention.Completed = cmp.Or(c.Retention.Completed, RetainCompletedDefault)
	c.Retention.Failed = cmp.Or(c.Retention.Failed, RetainFailedDefault)
	c.Retention.Canceled = cmp.Or(c.Retention.Canceled, RetainCanceledDefault)
	c.HandBackTimeout = cmp.Or(c.HandBackTimeout, HandBackTimeoutDefault)
	c.ShutdownTimeout = cmp.Or(c.ShutdownTimeout, ShutdownTimeoutDefault)
	c.Node = cmp.Or(c.Node, defaultNode())
	c.LeaseDuration = cmp.Or(c.LeaseDuration, LeaseDurationDefault)
	c.RescueInterval = cmp.Or(c.RescueInterval, RescueIntervalDefault)
	c.PollInterval = cmp.Or(c.PollInterval, PollIntervalDefault)
	return c
}

// Validate returns an error naming every field out of bounds: the
// *ConfigError of each, joined.
func (c Config) Validate() error {
	var errs []error
	bad := func(field string, value any, reason string, args ...any) {
		errs = append(errs, &ConfigError{Field: field, Value: value, Reason: fmt.Sprintf(reason, args...)})
	}
	if c.Workers < 1 {
		bad("Workers", c.Workers, "must be at least 1")
	}
	if c.QueueSize < 1 {
		bad("QueueSize", c.QueueSize, "must be at least 1")
	}
	if c.MaxAttempts < 1 || c.MaxAttempts > MaxAttemptsLimit {
		bad("MaxAttempts", c.MaxAttempts, "must be from 1 to %d", MaxAttemptsLimit)
	}
	if c.RetryBaseDelay <= 0 {
		bad("RetryBaseDelay", c.RetryBaseDelay, "must be positive")
	}
	if c.RetryMaxDelay <= 0 {
		bad("RetryMaxDelay", c.RetryMaxDelay, "must be positive")
	} else if c.RetryMaxDelay < c.RetryBaseDelay {
		errs = append(errs, &ConfigError{Field: "RetryMaxDelay", Value: c.RetryMaxDelay, Reason: "must not be below",
			Than: "RetryBaseDelay", ThanValue: c.RetryBaseDelay})
	}
	if c.RetryJitter != FullJitter && c.RetryJitter != NoJitter {
		errs = append(errs, fmt.Errorf("retry jitter must be FullJitter or NoJitter, got %d", c.RetryJitter))
	}
	if c.MaxPayloadBytes < 1 {
		bad("MaxPayloadBytes", c.MaxPayloadBytes, "must be at least 1")
	}
	if c.MaxResultBytes < 1 {
		bad("MaxResultBytes", c.MaxResultBytes, "must be at least 1")
	}
	for _, t := range c.ExternalTypes {
		if t == "" || len(t) > domain.MaxJobTypeLength {
			bad("ExternalTypes", t, "must be 1 to %d bytes", domain.MaxJobTypeLength)
		}
	}
	if c.JobTimeout < NoTimeout {
		bad("JobTimeout", c.JobTimeout, "must not be negative")
	}
	for field, d := range map[string]time.Duration{
		"Retention.Completed": c.Retention.Completed,
		"Retention.Failed":    c.Retention.Failed,
		"Retention.Canceled":  c.Retention.Canceled,
	} {
		if d < KeepForever {
			bad(field, d, "must not be negative (KeepForever keeps for ever)")
		}
	}
	for name, limit := range c.QueueLimits {
		if err := domain.ValidateQueueName(name); err != nil {
			bad("QueueLimits", name, "names no valid queue: %v", err)
		} else if limit < 1 {
			bad("QueueLimits", fmt.Sprintf("%s=%d", name, limit), "must be at least 1")
		}
	}
	if c.HandBackTimeout <= 0 {
		bad("HandBackTimeout", c.HandBackTimeout, "must be positive")
	}
	if c.ShutdownTimeout <= 0 {
		bad("ShutdownTimeout", c.ShutdownTimeout, "must be positive")
	}
	if c.LeaseDuration < 100*time.Millisecond {
		bad("LeaseDuration", c.LeaseDuration, "must be at least 100ms")
	}
	if c.RescueInterval <= 0 {
		bad("RescueInterval", c.RescueInterval, "must be positive")
	}
	if c.PollInterval <= 0 {
		bad("PollInterval", c.PollInterval, "must be positive")
	}
	if c.Node == "" {
		bad("Node", c.Node, "must not be empty")
	} else if len(c.Node) > 200 {
		bad("Node", c.Node, "must be at most 200 bytes")
	}
	return errors.Join(errs...)
}

// defaultNode is hostname-pid: unique among processes on one machine and
// telling in logs which machine ran what.
func defaultNode() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "troupe"
	}
	return fmt.Sprintf("%s-%d", host, os.Getpid())
}

// Option configures a System: its tunables or its collaborators.
type Option func(*options)

type options struct {
	cfg     Config
	logger  *slog.Logger
	clock   Clock
	metrics Metrics
	random  func() float64
	shared  domain.SharedQueue
	// schedules are the configuration file's, applied at Start.
	schedules []ScheduleParams
}

// WithConfig sets every tunable at once, zero fields meaning defaults. It
// replaces what options before it set, so pass it first; options after it
// override single fields.
func WithConfig(cfg Config) Option { return func(o *options) { o.cfg = cfg } }

// WithRetention sets how long finished jobs are kept.
func WithRetention(r Retention) Option { return func(o *options) { o.cfg.Retention = r } }

// WithConfigSchedules declares the schedules of a configuration file:
// Start creates or replaces each (source "config", which the API may not
// change) and deletes the config schedules no longer declared.
func WithConfigSchedules(ps ...ScheduleParams) Option {
	return func(o *options) { o.schedules = append(o.schedules, ps...) }
}

// WithExternalTypes declares job types run by external workers; see
// Config.ExternalTypes.
func WithExternalTypes(types ...domain.JobType) Option {
	return func(o *options) { o.cfg.ExternalTypes = append(o.cfg.ExternalTypes, types...) }
}

// WithMaxResultBytes bounds a job's result; see Config.MaxResultBytes.
func WithMaxResultBytes(n int) Option { return func(o *options) { o.cfg.MaxResultBytes = n } }

// WithWorkers sets the worker pool size.
func WithWorkers(n int) Option { return func(o *options) { o.cfg.Workers = n } }

// WithQueueSize bounds the ready queue.
func WithQueueSize(n int) Option { return func(o *options) { o.cfg.QueueSize = n } }

// WithMaxAttempts sets the attempts of jobs submitted without a number.
func WithMaxAttempts(n int) Option { return func(o *options) { o.cfg.MaxAttempts = n } }

// WithMaxPayloadBytes bounds the payload of a submitted job
// (Config.MaxPayloadBytes).
func WithMaxPayloadBytes(n int64) Option { return func(o *options) { o.cfg.MaxPayloadBytes = n } }

// WithRetryBackoff sets the exponential backoff: base, cap and jitter.
func WithRetryBackoff(base, maxDelay time.Duration, jitter Jitter) Option {
	return func(o *options) {
		o.cfg.RetryBaseDelay, o.cfg.RetryMaxDelay, o.cfg.RetryJitter = base, maxDelay, jitter
	}
}

// WithHandBackTimeout sets Config.HandBackTimeout.
func WithHandBackTimeout(d time.Duration) Option {
	return func(o *options) { o.cfg.HandBackTimeout = d }
}

// WithJobTimeout sets Config.JobTimeout.
func WithJobTimeout(d time.Duration) Option { return func(o *options) { o.cfg.JobTimeout = d } }

// WithQueueLimits sets Config.QueueLimits.
func WithQueueLimits(limits map[string]int) Option {
	return func(o *options) { o.cfg.QueueLimits = limits }
}

// WithLogger sets the logger. Defaults to slog.Default().
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithClock replaces the wall clock and timers, for tests.
func WithClock(c Clock) Option { return func(o *options) { o.clock = c } }

// WithMetrics sets where job events are counted. Defaults to none.
func WithMetrics(m Metrics) Option { return func(o *options) { o.metrics = m } }

// WithSharedQueue makes the System one node of several sharing the store:
// the queue lives in the store, jobs are claimed when workers are free,
// leases guard running jobs, and cancels reach whichever node runs the job.
// The store passed to New must be the same store.
func WithSharedQueue(q domain.SharedQueue) Option { return func(o *options) { o.shared = q } }

// withRandom replaces the jitter source, for tests.
func withRandom(f func() float64) Option { return func(o *options) { o.random = f } }
