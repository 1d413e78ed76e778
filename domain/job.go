package domain

import (
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// JobType names the kind of work a job is; one Handler is registered per type.
type JobType string

// MaxJobTypeLength bounds a job type's length so that it can key indexes.
const MaxJobTypeLength = 128

// Job is one unit of work and everything known about its life so far.
// Times are UTC; a zero time means "not yet".
type Job struct {
	// ID is a UUIDv7, so IDs sort roughly by creation time.
	ID uuid.UUID
	// Type selects the handler.
	Type JobType
	// Payload is handed to the handler untouched (JSON when submitted over HTTP).
	Payload []byte
	// Status is where the job is in its life.
	Status Status
	// Attempts counts the attempts started so far, including a running one.
	Attempts int
	// MaxAttempts is how many attempts the job may use, at least 1.
	MaxAttempts int
	// LastError is the error of the latest failed attempt, or empty.
	LastError string
	// CreatedAt is when the job was submitted.
	CreatedAt time.Time
	// UpdatedAt is when the job last changed.
	UpdatedAt time.Time
	// RunAt is the earliest time the next attempt may start: when the job
	// was submitted for, or when its retry falls due. A job submitted to
	// run at once has its submission time. Within a queue and a priority,
	// jobs run in RunAt order.
	RunAt time.Time
	// StartedAt is when the latest attempt started.
	StartedAt time.Time
	// FinishedAt is when the job reached a terminal status.
	FinishedAt time.Time
	// Queue is the queue the job waits in; see ValidateQueueName.
	Queue string
	// Priority orders jobs within a queue: 1 runs first, 9 last.
	Priority int
	// UniqueKey, when set, admits at most one job with this key that is
	// unfinished or finished less than UniqueFor ago: see HoldsUniqueKey.
	UniqueKey string
	// UniqueFor keeps the key held for this long after the job finished.
	UniqueFor time.Duration
	// Timeout ends each attempt's context after this long; zero means none.
	Timeout time.Duration
	// Schedule names the schedule that submitted the job; empty for a job
	// submitted otherwise.
	Schedule string
	// Result is the JSON value the job's last attempt ended with
	// (SetResult, an external worker's complete, a webhook's answer), at
	// most the runtime's MaxResultBytes; nil when none.
	Result []byte
	// Progress is what the running (or last) attempt last reported; nil
	// when it reported nothing.
	Progress *Progress
	// Key groups jobs for their queue's per-key flow settings (one
	// customer, one tenant): see QueueSettings. Empty means none.
	Key string
	// WaitingFor says why a pending job does not start though it is due:
	// its queue's or its key's flow settings. It is never stored: the
	// runtime fills it in when it reads a job for a caller.
	WaitingFor WaitReason
}

// The defaults and bounds of a job's queue and priority.
const (
	DefaultQueue    = "default"
	DefaultPriority = 5
	MinPriority     = 1
	MaxPriority     = 9
	// MaxUniqueKeyLength bounds a unique key, in bytes.
	MaxUniqueKeyLength = 255
)

// NewJob returns a pending job with a fresh ID, created at now, due at
// once, in the default queue at the default priority. It rejects
// an empty or over-long type and maxAttempts below 1 with an error wrapping
// ErrInvalid.
func NewJob(typ JobType, payload []byte, maxAttempts int, now time.Time) (*Job, error) {
	if typ == "" {
		return nil, fmt.Errorf("%w: job type must not be empty", ErrInvalid)
	}
	if len(typ) > MaxJobTypeLength {
		return nil, fmt.Errorf("%w: job type is %d bytes, more than %d", ErrInvalid, len(typ), MaxJobTypeLength)
	}
	if maxAttempts < 1 {
		return nil, fmt.Errorf("%w: maxAttempts must be at least 1, got %d", ErrInvalid, maxAttempts)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return nil, fmt.Errorf("new job id: %w", err)
	}
	now = Timestamp(now)
	return &Job{
		ID:          id,
		Type:        typ,
		Payload:     payload,
		Status:      StatusPending,
		MaxAttempts: maxAttempts,
		CreatedAt:   now,
		UpdatedAt:   now,
		RunAt:       now,
		Queue:       DefaultQueue,
		Priority:    DefaultPriority,
	}, nil
}

// ScheduleAt makes a new job wait until runAt: scheduled when runAt is
// after now, pending (due now) otherwise. A RunAt in the past is now.
func (j *Job) ScheduleAt(runAt, now time.Time) {
	now = Timestamp(now)
	if runAt.After(now) {
		j.Status = StatusScheduled
		j.RunAt = Timestamp(runAt)
		return
	}
	j.Status = StatusPending
	j.RunAt = now
}

// ValidateQueueName checks a queue's name: ^[a-z0-9][a-z0-9_-]{0,63}$.
func ValidateQueueName(name string) error {
	if name == "" || len(name) > 64 {
		return fmt.Errorf("%w: queue %q must be 1 to 64 characters", ErrInvalid, name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || i > 0 && (c == '_' || c == '-')
		if !ok {
			return fmt.Errorf("%w: queue %q must match ^[a-z0-9][a-z0-9_-]{0,63}$", ErrInvalid, name)
		}
	}
	return nil
}

// Validate checks the fields a submitter chooses beyond NewJob's: the
// queue, the priority, the unique key and the durations.
func (j *Job) Validate() error {
	if err := ValidateQueueName(j.Queue); err != nil {
		return err
	}
	if j.Priority < MinPriority || j.Priority > MaxPriority {
		return fmt.Errorf("%w: priority must be between %d and %d, got %d", ErrInvalid, MinPriority, MaxPriority, j.Priority)
	}
	if len(j.UniqueKey) > MaxUniqueKeyLength {
		return fmt.Errorf("%w: uniqueKey is %d bytes, more than %d", ErrInvalid, len(j.UniqueKey), MaxUniqueKeyLength)
	}
	if j.Key != "" {
		if err := ValidateKey(j.Key); err != nil {
			return err
		}
	}
	if j.UniqueFor < 0 {
		return fmt.Errorf("%w: uniqueFor must not be negative", ErrInvalid)
	}
	if j.UniqueFor > 0 && j.UniqueKey == "" {
		return fmt.Errorf("%w: uniqueFor needs a uniqueKey", ErrInvalid)
	}
	if j.Timeout < 0 {
		return fmt.Errorf("%w: timeout must not be negative", ErrInvalid)
	}
	if j.Schedule != "" {
		if err := ValidateScheduleName(j.Schedule); err != nil {
			return err
		}
	}
	return nil
}

// HoldsUniqueKey reports whether j keeps another job with its UniqueKey
// from being stored at now: it has a key and is unfinished, or finished
// less than UniqueFor before now.
func (j *Job) HoldsUniqueKey(now time.Time) bool {
	if j.UniqueKey == "" {
		return false
	}
	if !j.Status.IsTerminal() {
		return true
	}
	return j.FinishedAt.Add(j.UniqueFor).After(now)
}

// Timestamp normalises a time for a job: UTC, to the microsecond, without a
// monotonic reading. Every store keeps microseconds (PostgreSQL's precision),
// so a job reads back equal to what was written. The zero time stays zero.
func Timestamp(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Microsecond)
}

// Clone returns a deep copy, so that a caller mutating it never changes the
// original (stores hand out clones).
func (j *Job) Clone() *Job {
	if j == nil {
		return nil
	}
	c := *j
	if j.Payload != nil {
		c.Payload = append(make([]byte, 0, len(j.Payload)), j.Payload...)
	}
	if j.Result != nil {
		c.Result = append(make([]byte, 0, len(j.Result)), j.Result...)
	}
	if j.Progress != nil {
		p := *j.Progress
		c.Progress = &p
	}
	return &c
}

// TransitionTo moves the job to status to, or returns an error wrapping
// ErrInvalidTransition (and naming the job) if the state machine forbids it.
// It changes only the status; the methods below also keep the timestamps.
func (j *Job) TransitionTo(to Status) error {
	if !CanTransition(j.Status, to) {
		return fmt.Errorf("job %s: %w: %s → %s", j.ID, ErrInvalidTransition, j.Status, to)
	}
	j.Status = to
	return nil
}

// IncrementAttempts counts one more attempt.
func (j *Job) IncrementAttempts() { j.Attempts++ }

// SetError records err as the last error; nil clears it.
func (j *Job) SetError(err error) {
	if err == nil {
		j.LastError = ""
		return
	}
	j.LastError = err.Error()
}

// ShouldRetry reports whether attempts remain.
func (j *Job) ShouldRetry() bool { return j.Attempts < j.MaxAttempts }

// IsRetryable reports whether a job whose attempt failed with err may run
// again: it is not terminal, attempts remain and err is not permanent.
func (j *Job) IsRetryable(err error) bool {
	return !j.Status.IsTerminal() && j.ShouldRetry() && !IsPermanent(err)
}

// Start moves a pending job to running and counts the attempt. RunAt
// stays: it says when the attempt fell due.
func (j *Job) Start(now time.Time) error {
	if err := j.TransitionTo(StatusRunning); err != nil {
		return err
	}
	j.IncrementAttempts()
	// The progress of an earlier attempt says nothing about this one.
	j.Progress = nil
	j.StartedAt = Timestamp(now)
	j.UpdatedAt = j.StartedAt
	return nil
}

// Promote moves a scheduled job whose RunAt has come to pending.
func (j *Job) Promote(now time.Time) error {
	if err := j.TransitionTo(StatusPending); err != nil {
		return err
	}
	j.UpdatedAt = Timestamp(now)
	return nil
}

// Complete moves a running job to completed.
func (j *Job) Complete(now time.Time) error {
	return j.finish(StatusCompleted, nil, now)
}

// Fail moves a running job to failed for good, recording err.
func (j *Job) Fail(err error, now time.Time) error {
	return j.finish(StatusFailed, err, now)
}

// Cancel moves a scheduled, pending or running job to canceled. Canceling a canceled
// job is a no-op; a completed or failed job returns ErrNotCancelable.
func (j *Job) Cancel(now time.Time) error {
	switch j.Status {
	case StatusCanceled:
		return nil
	case StatusCompleted, StatusFailed:
		return fmt.Errorf("job %s is %s: %w", j.ID, j.Status, ErrNotCancelable)
	}
	return j.finish(StatusCanceled, nil, now)
}

func (j *Job) finish(to Status, cause error, now time.Time) error {
	if err := j.TransitionTo(to); err != nil {
		return err
	}
	if cause != nil {
		j.SetError(cause)
	}
	j.FinishedAt = Timestamp(now)
	j.UpdatedAt = j.FinishedAt
	return nil
}

// Retry sends a running job back after a failed attempt: scheduled when
// runAt is after now (a backoff to wait out), pending otherwise. Attempts
// and the error are kept.
func (j *Job) Retry(cause error, runAt, now time.Time) error {
	to := StatusPending
	if runAt.After(now) {
		to = StatusScheduled
	}
	if err := j.TransitionTo(to); err != nil {
		return err
	}
	j.SetError(cause)
	now = Timestamp(now)
	j.RunAt = now
	if to == StatusScheduled {
		j.RunAt = Timestamp(runAt)
	}
	j.UpdatedAt = now
	return nil
}

// ErrInterrupted is the last error of an attempt that the process ended
// before its handler returned: a crash, or a stop that ran out of time.
var ErrInterrupted = errors.New("attempt interrupted: the process stopped while the job was running")

// Recover decides what a job found running after a restart becomes: its
// attempt was interrupted and counts, so it goes back to pending while
// attempts remain and fails otherwise. That is what stops a job that kills
// the process from looping for ever.
func (j *Job) Recover(now time.Time) error {
	if j.Status != StatusRunning {
		return nil
	}
	if j.ShouldRetry() {
		return j.Retry(ErrInterrupted, time.Time{}, now)
	}
	return j.Fail(ErrInterrupted, now)
}

// HandBack returns a running job to pending because the system is stopping,
// not because it failed: the attempt is not counted, so a deploy never uses
// up a job's attempts, and LastError keeps the error of the last attempt
// that did fail (none if none did).
func (j *Job) HandBack(now time.Time) error {
	if err := j.TransitionTo(StatusPending); err != nil {
		return err
	}
	// RunAt stays, so the job keeps its place in its queue.
	j.UpdatedAt = Timestamp(now)
	if j.Attempts > 0 {
		j.Attempts--
	}
	return nil
}
