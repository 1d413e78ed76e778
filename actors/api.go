package actors

import (
	"fmt"
	"time"

	"github.com/troupe-go/troupe/domain"
)

// SubmitParams describes a job to submit.
type SubmitParams struct {
	// Type selects the handler; it must be registered.
	Type domain.JobType
	// Payload is handed to the handler untouched.
	Payload []byte
	// MaxAttempts caps the attempts; 0 means the system's default.
	MaxAttempts int
	// RunAt: not before this time; zero or in the past means now.
	RunAt time.Time
	// Delay: not before now + Delay (at most MaxDelay). Not with RunAt.
	Delay time.Duration
	// Priority orders jobs within a queue, 1 first, 9 last; 0 means
	// domain.DefaultPriority.
	Priority int
	// Queue is the queue the job waits in; empty means domain.DefaultQueue.
	Queue string
	// UniqueKey, when set, makes the submission create nothing while a job
	// with the same key is scheduled, pending or running, or finished less
	// than UniqueFor ago: Submit then returns that job and ErrDuplicate.
	UniqueKey string
	// UniqueFor keeps the key held for this long after the job finished.
	UniqueFor time.Duration
	// Key groups the job for its queue's per-key flow settings (one
	// customer, one tenant; see domain.QueueSettings); empty means none.
	Key string
	// Timeout ends each attempt's context after this long. 0 means the
	// type's default (WithTimeout) or else Config.JobTimeout; NoTimeout
	// means none.
	Timeout time.Duration

	// schedule names the schedule submitting the job (Job.Schedule); only
	// the schedule service and TriggerSchedule set it.
	schedule string
}

// NoTimeout, as SubmitParams.Timeout, WithTimeout or Config.JobTimeout,
// lets attempts run as long as their handler does.
const NoTimeout time.Duration = -1

// MaxDelay bounds how far ahead a job may be scheduled.
const MaxDelay = 366 * 24 * time.Hour

// ErrDuplicate: a job with the submission's unique key exists; Submit
// returns it beside this error, and nothing new is stored.
var ErrDuplicate = domain.ErrDuplicate

// SubmitResult is one job of a SubmitBatch: the job stored, or, when
// Created is false, the job that holds its unique key.
type SubmitResult struct {
	Job     *domain.Job
	Created bool
}

// QueueInfo is the state of one queue as this node sees it.
type QueueInfo struct {
	domain.QueueInfo
	// Limit caps how many of the queue's jobs run at once on this node
	// (Config.QueueLimits); 0 means no cap but the pool's.
	Limit int
	// Waiting counts the queue's pending, due jobs that its flow settings
	// hold back, by reason; nil when none wait.
	Waiting map[domain.WaitReason]int
}

// RegisterOption configures a job type at Register.
type RegisterOption func(*typeOptions)

type typeOptions struct {
	timeout time.Duration
	runBy   RunBy
}

// WithTimeout sets the attempt timeout of the type's jobs submitted
// without one of their own; NoTimeout means none.
func WithTimeout(d time.Duration) RegisterOption {
	return func(o *typeOptions) { o.timeout = d }
}

// ScheduleParams describes a periodic schedule: see domain.Schedule for
// the fields.
type ScheduleParams struct {
	Name     string
	Cron     string
	Timezone string
	Job      domain.ScheduledJob
	Paused   bool
	CatchUp  domain.CatchUp
}

// FieldError is an input refused for one of its fields, named as in the
// HTTP API's JSON: a schedule's "name", "cron", "timezone", "catchUp",
// "job" or "job.<member>"; a claim's "types", "queues", "max", "wait",
// "worker" or "lease"; an outcome's "leaseToken", "result", "error" or
// "retryIn". It wraps the reason, so errors.Is still sees ErrInvalid or
// ErrUnknownJobType; its text is "<field>: <reason>".
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }

// Unwrap returns the reason.
func (e *FieldError) Unwrap() error { return e.Err }

// invalidField is a FieldError of a broken rule (ErrInvalid).
func invalidField(field, format string, args ...any) error {
	return &FieldError{Field: field, Err: fmt.Errorf("%w: "+format, append([]any{domain.ErrInvalid}, args...)...)}
}

// ScheduleInfo is a schedule as the runtime sees it.
type ScheduleInfo struct {
	domain.Schedule
	// NextRunAt is the next slot; zero while paused.
	NextRunAt time.Time
	// Description is the cron expression in words ("every 5 minutes").
	Description string
	// LastJobStatus is the status of the job LastJobID names; empty before
	// the first job, or once that job was pruned.
	LastJobStatus domain.Status
}

// WorkerStats describes the worker pool.
type WorkerStats struct {
	// Size is the number of workers.
	Size int
	// Busy is the number of workers running a handler now.
	Busy int
}

// Stats is a cheap snapshot of the runtime, for gauges.
type Stats struct {
	Workers WorkerStats
	// QueueDepth counts jobs waiting in the ready queue.
	QueueDepth int
	// Stuck counts attempts running past their timeout: handlers that
	// ignore their context keep their worker.
	Stuck int
	// JobActors counts the job actors that hold a job: jobs running,
	// waiting for a store that refused a write, or being canceled. A
	// queued or scheduled job has no actor, and the spare actors kept for
	// the next jobs are not counted.
	JobActors int
	// Running reports whether the system is started and not stopping.
	Running bool
}

// Health is the state of each part of the runtime; a nil error is "up".
type Health struct {
	Stats
	// Dispatcher is nil when the dispatcher answers.
	Dispatcher error
	// Store is nil when the store answers a ping.
	Store error
}

// OK reports whether every part is up.
func (h Health) OK() bool { return h.Running && h.Dispatcher == nil && h.Store == nil }

// Metrics receives the runtime's job events, so that a metrics backend
// counts what happened rather than guessing from the outside. Methods are
// called from the runtime's goroutines and must be fast and safe for
// concurrent use.
//
// Each method gets the job as it is at that moment; it must not keep or
// change it.
type Metrics interface {
	// JobCreated is called once per stored new job.
	JobCreated(job *domain.Job)
	// JobRetried is called when a failed attempt sends a job back to wait.
	JobRetried(job *domain.Job)
	// JobFinished is called when a job becomes completed, failed or canceled.
	JobFinished(job *domain.Job)
	// AttemptFinished is called when a handler returns, with how long it ran.
	AttemptFinished(job *domain.Job, took time.Duration)
	// AttemptTimedOut is called when an attempt's timeout passes.
	AttemptTimedOut(job *domain.Job)
	// JobsPruned is called when the pruner deleted n finished jobs of
	// status.
	JobsPruned(status domain.Status, n int)
}

// NopMetrics discards every event.
type NopMetrics struct{}

func (NopMetrics) JobCreated(*domain.Job)                     {}
func (NopMetrics) JobRetried(*domain.Job)                     {}
func (NopMetrics) JobFinished(*domain.Job)                    {}
func (NopMetrics) AttemptFinished(*domain.Job, time.Duration) {}
func (NopMetrics) AttemptTimedOut(*domain.Job)                {}
func (NopMetrics) JobsPruned(domain.Status, int)              {}
