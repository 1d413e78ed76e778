package domain

import (
	"errors"
	"fmt"
)

// The error kinds of Troupe. Callers test for them with errors.Is; the
// errors returned carry context (usually the job ID) around these.
var (
	// ErrNotFound: no job has the given ID.
	ErrNotFound = errors.New("job not found")
	// ErrAlreadyExists: a job with the same ID is already stored.
	ErrAlreadyExists = errors.New("job already exists")
	// ErrInvalid: the input breaks a rule (empty type, maxAttempts < 1, ...).
	ErrInvalid = errors.New("invalid input")
	// ErrPayloadTooLarge: a job's payload is over the configured limit. It
	// wraps ErrInvalid, so a check for invalid input also finds it.
	ErrPayloadTooLarge = fmt.Errorf("%w: payload too large", ErrInvalid)
	// ErrDuplicate: a job with the same unique key is unfinished, or
	// finished less than its UniqueFor ago; nothing new was stored.
	ErrDuplicate = errors.New("a job with the same unique key exists")
	// ErrConflict: the change is refused because of what is stored (a
	// schedule declared in the configuration file, changed through the
	// API); the same call will not succeed until that changes.
	ErrConflict = errors.New("conflict with the stored state")
	// ErrInvalidTransition: the state machine forbids the change of status.
	ErrInvalidTransition = errors.New("invalid status transition")
	// ErrNotCancelable: the job already completed or failed.
	ErrNotCancelable = errors.New("job is not cancelable")
	// ErrUnknownJobType: no handler is registered for the job's type.
	ErrUnknownJobType = errors.New("unknown job type")
	// ErrDuplicateHandler: a handler is already registered for the type.
	ErrDuplicateHandler = errors.New("handler already registered for job type")
	// ErrQueueFull: the ready queue is at its bound; try again later.
	ErrQueueFull = errors.New("queue is full")
	// ErrNotRunning: the system is not started, or is stopping.
	ErrNotRunning = errors.New("job system is not running")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("store is closed")
	// ErrUnavailable: the store or the runtime cannot serve the call for
	// now (a database restarting or out of reach, a runtime too busy to
	// answer in time); the same call may succeed later.
	ErrUnavailable = errors.New("store is unavailable")
	// ErrStorageFull: the store refuses new writes because its disk is
	// (nearly) full; the same call may succeed once space is freed.
	ErrStorageFull = errors.New("store is out of disk space")
	// ErrCorrupt: the store found damaged data (a checksum mismatch, a
	// table or log it cannot read). The data must be restored from a
	// backup; retrying does not help.
	ErrCorrupt = errors.New("store is corrupt")
)

// permanentError marks an error that must not be retried.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent wraps err so that the job fails at once instead of using its
// remaining attempts. A handler returns it for input that can never succeed,
// such as a payload that does not decode. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err, or any error it wraps, was marked with
// Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}
