package actors

import (
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
	// JobActors counts live job actors: jobs running, waiting for a retry
	// or being canceled. A queued job has no actor.
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
type Metrics interface {
	// JobCreated is called once per stored new job.
	JobCreated(typ domain.JobType)
	// JobRetried is called when a failed attempt sends a job back to pending.
	JobRetried(typ domain.JobType)
	// JobFinished is called when a job becomes completed, failed or canceled.
	JobFinished(typ domain.JobType, status domain.Status)
	// AttemptFinished is called when a handler returns, with how long it ran.
	AttemptFinished(typ domain.JobType, took time.Duration)
}

// NopMetrics discards every event.
type NopMetrics struct{}

func (NopMetrics) JobCreated(domain.JobType)                     {}
func (NopMetrics) JobRetried(domain.JobType)                     {}
func (NopMetrics) JobFinished(domain.JobType, domain.Status)     {}
func (NopMetrics) AttemptFinished(domain.JobType, time.Duration) {}
