package storetest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
)

// JobOption sets a field of a job made by NewJob.
type JobOption func(*jobSpec)

// jobSpec is what NewJob passes to domain.NewJob, and the changes it makes
// after.
type jobSpec struct {
	payload     []byte
	maxAttempts int
	createdAt   time.Time
	edits       []func(*domain.Job)
}

// NewJob returns a job of type typ made by domain.NewJob: pending with no
// attempt, three attempts allowed, an empty JSON payload and created at the
// suite's base time, unless opts say otherwise. Every store's tests and the
// runtime's make their jobs here, so a new field of domain.Job gets its test
// default in one place.
func NewJob(tb testing.TB, typ domain.JobType, opts ...JobOption) *domain.Job {
	tb.Helper()
	spec := jobSpec{payload: []byte(`{}`), maxAttempts: 3, createdAt: baseTime}
	for _, opt := range opts {
		opt(&spec)
	}
	j, err := domain.NewJob(typ, spec.payload, spec.maxAttempts, spec.createdAt)
	require.NoError(tb, err)
	for _, edit := range spec.edits {
		edit(j)
	}
	return j
}

// JobCreatedAt sets when the job was created.
func JobCreatedAt(t time.Time) JobOption {
	return func(s *jobSpec) { s.createdAt = t }
}

// JobPayload sets the payload; nil is allowed.
func JobPayload(payload []byte) JobOption {
	return func(s *jobSpec) { s.payload = payload }
}

// JobMaxAttempts sets how many attempts the job may use.
func JobMaxAttempts(n int) JobOption {
	return func(s *jobSpec) { s.maxAttempts = n }
}

// JobStatus sets the status and the attempts already used, as a job read
// back from a store after that many attempts would hold them.
func JobStatus(status domain.Status, attempts int) JobOption {
	return JobEdit(func(j *domain.Job) { j.Status, j.Attempts = status, attempts })
}

// JobEdit changes the made job with edit, for fields without an option.
func JobEdit(edit func(*domain.Job)) JobOption {
	return func(s *jobSpec) { s.edits = append(s.edits, edit) }
}

// JobQueue puts the job in queue q.
func JobQueue(q string) JobOption {
	return JobEdit(func(j *domain.Job) { j.Queue = q })
}

// JobPriority sets the job's priority.
func JobPriority(p int) JobOption {
	return JobEdit(func(j *domain.Job) { j.Priority = p })
}

// JobUniqueKey sets the job's unique key and how long it keeps it once
// finished.
func JobUniqueKey(key string, uniqueFor time.Duration) JobOption {
	return JobEdit(func(j *domain.Job) { j.UniqueKey, j.UniqueFor = key, uniqueFor })
}

// JobTimeout sets the timeout of each attempt.
func JobTimeout(d time.Duration) JobOption {
	return JobEdit(func(j *domain.Job) { j.Timeout = d })
}

// JobRunAt makes the job due at runAt, as domain.Job.ScheduleAt does at
// its creation: scheduled when runAt is after the creation time, pending
// otherwise. Put it after JobCreatedAt's effect: it reads the job's
// CreatedAt.
func JobRunAt(runAt time.Time) JobOption {
	return JobEdit(func(j *domain.Job) { j.ScheduleAt(runAt, j.CreatedAt) })
}

// JobFinished makes the job one that finished with status s at
// finishedAt, after one attempt.
func JobFinished(s domain.Status, finishedAt time.Time) JobOption {
	return JobEdit(func(j *domain.Job) {
		j.Status, j.Attempts = s, 1
		j.StartedAt = j.CreatedAt
		j.FinishedAt = domain.Timestamp(finishedAt)
		j.UpdatedAt = j.FinishedAt
	})
}
