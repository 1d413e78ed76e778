package domain

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// CatchUp says what a schedule does about the slots it missed while no
// node ran it (every node down, or the schedule paused).
type CatchUp string

const (
	// CatchUpSkip forgets missed slots: the schedule resumes at its next
	// slot. The default.
	CatchUpSkip CatchUp = "skip"
	// CatchUpOne submits one job for all the missed slots together (keyed
	// by the latest of them), then resumes.
	CatchUpOne CatchUp = "one"
)

// ScheduleSource says who owns a schedule's definition.
type ScheduleSource string

const (
	// SourceAPI: created through the API (HTTP or Go); the API may change it.
	SourceAPI ScheduleSource = "api"
	// SourceConfig: declared in the configuration file and applied at
	// start; the API refuses to change it (ErrConflict), so the file stays
	// the truth.
	SourceConfig ScheduleSource = "config"
)

// ScheduledJob is the job a schedule submits at each slot.
type ScheduledJob struct {
	Type    JobType
	Payload []byte
	// Queue empty means DefaultQueue; Priority 0 means DefaultPriority;
	// MaxAttempts 0 means the runtime's default; Timeout 0 means the
	// type's or the runtime's default, as for any submission.
	Queue       string
	Priority    int
	MaxAttempts int
	Timeout     time.Duration
}

// Schedule is a periodic job: a cron expression in a time zone, and the
// job to submit at each of its slots. The definition is the caller's; the
// run fields (LastSlot, LastRunAt, LastJobID) are kept by the runtime.
type Schedule struct {
	// Name identifies the schedule: see ValidateScheduleName.
	Name string
	// Cron is a standard 5-field expression, optionally with a leading
	// seconds field, or a descriptor (@hourly, @daily, @every 30s).
	Cron string
	// Timezone is an IANA zone name the expression is read in; empty
	// means UTC.
	Timezone string
	Job      ScheduledJob
	// Paused schedules submit nothing until resumed.
	Paused bool
	// CatchUp empty means CatchUpSkip.
	CatchUp CatchUp
	Source  ScheduleSource

	CreatedAt time.Time
	UpdatedAt time.Time

	// LastSlot is the latest slot whose job was submitted (or found
	// submitted by another node); zero before the first.
	LastSlot time.Time
	// LastRunAt and LastJobID are the latest job submitted for this
	// schedule, by a slot or a trigger; zero before the first.
	LastRunAt time.Time
	LastJobID uuid.UUID
}

// MaxScheduleNameLength bounds a schedule's name.
const MaxScheduleNameLength = 128

// ValidateScheduleName checks a schedule's name:
// ^[a-z0-9][a-z0-9_.-]{0,127}$.
func ValidateScheduleName(name string) error {
	if name == "" || len(name) > MaxScheduleNameLength {
		return fmt.Errorf("%w: schedule name %q must be 1 to %d characters", ErrInvalid, name, MaxScheduleNameLength)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || i > 0 && (c == '_' || c == '.' || c == '-')
		if !ok {
			return fmt.Errorf("%w: schedule name %q must match ^[a-z0-9][a-z0-9_.-]{0,127}$", ErrInvalid, name)
		}
	}
	return nil
}

// Clone returns a deep copy.
func (s *Schedule) Clone() *Schedule {
	if s == nil {
		return nil
	}
	c := *s
	if s.Job.Payload != nil {
		c.Job.Payload = append(make([]byte, 0, len(s.Job.Payload)), s.Job.Payload...)
	}
	return &c
}

// ScheduleSlotKey is the unique key of the job a schedule submits for
// slot: one job per slot, however many nodes or restarts submit it.
func ScheduleSlotKey(name string, slot time.Time) string {
	return "schedule:" + name + ":" + slot.UTC().Format(time.RFC3339)
}

// ScheduleRun is one job a schedule submitted, to record.
type ScheduleRun struct {
	// Slot is the slot the job is for; zero for a trigger.
	Slot time.Time
	// At is when the job was submitted; JobID the job (the one found
	// holding the slot's key when another node submitted it first).
	At    time.Time
	JobID uuid.UUID
}

// ScheduleStore is the part of a Store that keeps schedules. Schedules are
// few (a listing returns them all) and change rarely.
type ScheduleStore interface {
	// PutSchedule creates s, or replaces the definition of the schedule of
	// that name (every field but CreatedAt and the run fields, which it
	// keeps), and reports whether it created it.
	PutSchedule(ctx context.Context, s *Schedule) (created bool, err error)
	// GetSchedule returns the named schedule, or an error wrapping
	// ErrNotFound.
	GetSchedule(ctx context.Context, name string) (*Schedule, error)
	// ListSchedules returns every schedule, by name; empty, never nil.
	ListSchedules(ctx context.Context) ([]*Schedule, error)
	// DeleteSchedule removes the named schedule (ErrNotFound if none); the
	// jobs it submitted stay.
	DeleteSchedule(ctx context.Context, name string) error
	// RecordScheduleRun records a submitted job: LastSlot becomes
	// run.Slot if that is later, and LastRunAt and LastJobID become run's
	// if run.At is not earlier than LastRunAt, so that nodes recording
	// out of order never move them back. ErrNotFound if the schedule was
	// deleted meanwhile.
	RecordScheduleRun(ctx context.Context, name string, run ScheduleRun) error
}

// Replacing returns the schedule to store when s is put over old (nil
// when none is stored): a copy of s with its times normalised (Timestamp),
// keeping old's CreatedAt and run fields, as PutSchedule promises.
func (s *Schedule) Replacing(old *Schedule) *Schedule {
	c := s.Clone()
	c.CreatedAt, c.UpdatedAt = Timestamp(c.CreatedAt), Timestamp(c.UpdatedAt)
	c.LastSlot, c.LastRunAt = Timestamp(c.LastSlot), Timestamp(c.LastRunAt)
	if old != nil {
		c.CreatedAt = old.CreatedAt
		c.LastSlot, c.LastRunAt, c.LastJobID = old.LastSlot, old.LastRunAt, old.LastJobID
	}
	return c
}

// Record applies run to s as RecordScheduleRun promises: nodes may record
// out of order, so neither the last slot nor the latest job moves back.
func (s *Schedule) Record(run ScheduleRun) {
	if slot := Timestamp(run.Slot); slot.After(s.LastSlot) {
		s.LastSlot = slot
	}
	if at := Timestamp(run.At); !at.Before(s.LastRunAt) {
		s.LastRunAt, s.LastJobID = at, run.JobID
	}
}
