package domain

import "fmt"

// Status is where a job is in its life. See the package doc for the diagram.
type Status string

// The statuses a job can have.
const (
	// StatusScheduled is a job waiting for a RunAt in the future: submitted
	// to run later, or waiting out a retry's backoff. It becomes pending
	// when due.
	StatusScheduled Status = "scheduled"
	// StatusPending is a job due to run, waiting for a worker.
	StatusPending Status = "pending"
	// StatusRunning is a job whose handler is executing.
	StatusRunning Status = "running"
	// StatusCompleted is a job whose handler returned nil. Terminal.
	StatusCompleted Status = "completed"
	// StatusFailed is a job that used up its attempts or returned a
	// permanent error. Terminal.
	StatusFailed Status = "failed"
	// StatusCanceled is a job a user canceled. Terminal.
	StatusCanceled Status = "canceled"
)

// Statuses lists every valid status in the order of the job's life.
func Statuses() []Status {
	return []Status{StatusScheduled, StatusPending, StatusRunning, StatusCompleted, StatusFailed, StatusCanceled}
}

// String returns the status as text.
func (s Status) String() string { return string(s) }

// IsValid reports whether s is one of the defined statuses.
func (s Status) IsValid() bool {
	switch s {
	case StatusScheduled, StatusPending, StatusRunning, StatusCompleted, StatusFailed, StatusCanceled:
		return true
	}
	return false
}

// IsTerminal reports whether nothing can leave s.
func (s Status) IsTerminal() bool {
	return s == StatusCompleted || s == StatusFailed || s == StatusCanceled
}

// ParseStatus turns text into a Status, or returns an error wrapping
// ErrInvalid that names the valid ones.
func ParseStatus(text string) (Status, error) {
	s := Status(text)
	if !s.IsValid() {
		return "", fmt.Errorf("%w: unknown status %q (want one of %v)", ErrInvalid, text, Statuses())
	}
	return s, nil
}

// transitions holds every allowed edge; anything absent is forbidden.
var transitions = map[Status][]Status{
	StatusScheduled: {StatusPending, StatusCanceled},
	StatusPending:   {StatusRunning, StatusCanceled},
	StatusRunning:   {StatusCompleted, StatusFailed, StatusCanceled, StatusPending, StatusScheduled},
}

// Unfinished lists the statuses a job can still leave.
func Unfinished() []Status {
	return []Status{StatusScheduled, StatusPending, StatusRunning}
}

// CanTransition reports whether a job may move from one status to another.
func CanTransition(from, to Status) bool {
	for _, allowed := range transitions[from] {
		if allowed == to {
			return true
		}
	}
	return false
}
