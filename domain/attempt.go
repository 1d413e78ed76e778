package domain

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// Progress is how far a running attempt says it got.
type Progress struct {
	// Percent is 0 to 100.
	Percent float64
	// Message says what the attempt is doing, at most
	// MaxProgressMessageBytes.
	Message string
	// UpdatedAt is when the attempt reported it.
	UpdatedAt time.Time
}

// MaxProgressMessageBytes bounds a progress message; a longer one is cut.
const MaxProgressMessageBytes = 1024

// NewProgress returns the progress reported at now: percent clamped to 0
// to 100 (NaN is 0), the message cut to MaxProgressMessageBytes on a rune
// boundary.
func NewProgress(percent float64, message string, now time.Time) Progress {
	switch {
	case percent != percent || percent < 0: // NaN or negative
		percent = 0
	case percent > 100:
		percent = 100
	}
	if len(message) > MaxProgressMessageBytes {
		cut := MaxProgressMessageBytes
		for cut > 0 && !utf8.RuneStart(message[cut]) {
			cut--
		}
		message = message[:cut]
	}
	return Progress{Percent: percent, Message: message, UpdatedAt: Timestamp(now)}
}

// ErrResultTooLarge: a job's result is over the runtime's MaxResultBytes;
// the attempt that produced it fails.
var ErrResultTooLarge = errors.New("job result too large")

// ErrNoAttempt: SetResult or ReportProgress was called with a context that
// no running attempt gave.
var ErrNoAttempt = errors.New("not called from a running attempt")

// ErrLeaseExpired is the last error of an attempt whose external worker
// stopped heartbeating before its lease ran out: like a crash, the attempt
// counts and the job follows its retry policy.
var ErrLeaseExpired = errors.New("attempt interrupted: the worker's lease expired without a heartbeat")

// AttemptReporter receives what a running handler reports about its
// attempt. The runtime puts one in each handler's context; a remote
// worker (http/client.Worker) puts its own, so that one handler runs
// embedded or remote unchanged.
type AttemptReporter interface {
	// SetResult records v, marshaled to JSON, as the attempt's result,
	// replacing any earlier one. It returns an error wrapping
	// ErrResultTooLarge when the JSON is over the limit (the attempt then
	// fails whatever the handler returns), or the marshaling error.
	SetResult(v any) error
	// ReportProgress records how far the attempt got; see NewProgress.
	// Cheap enough to call in a tight loop: the reports are coalesced.
	ReportProgress(percent float64, message string)
}

type reporterKey struct{}

// WithAttemptReporter returns ctx carrying r, for the runtimes that run
// handlers.
func WithAttemptReporter(ctx context.Context, r AttemptReporter) context.Context {
	return context.WithValue(ctx, reporterKey{}, r)
}

// SetResult records v as the result of the attempt running with ctx: see
// AttemptReporter.SetResult. Outside an attempt it returns ErrNoAttempt.
func SetResult(ctx context.Context, v any) error {
	r, ok := ctx.Value(reporterKey{}).(AttemptReporter)
	if !ok {
		return ErrNoAttempt
	}
	return r.SetResult(v)
}

// ReportProgress records the progress of the attempt running with ctx;
// outside an attempt it does nothing.
func ReportProgress(ctx context.Context, percent float64, message string) {
	if r, ok := ctx.Value(reporterKey{}).(AttemptReporter); ok {
		r.ReportProgress(percent, message)
	}
}

// retryAfterError asks for the next attempt no sooner than after.
type retryAfterError struct {
	err   error
	after time.Duration
}

func (e *retryAfterError) Error() string { return e.err.Error() }
func (e *retryAfterError) Unwrap() error { return e.err }

// RetryAfter wraps err so that, when attempts remain, the next attempt
// waits d instead of the backoff (a webhook's Retry-After, an external
// worker's retryIn). RetryAfter(nil, d) is nil; d below 0 counts as 0.
func RetryAfter(err error, d time.Duration) error {
	if err == nil {
		return nil
	}
	return &retryAfterError{err: err, after: max(d, 0)}
}

// RetryDelay returns the delay RetryAfter put in err's chain, if any.
func RetryDelay(err error) (time.Duration, bool) {
	var r *retryAfterError
	if errors.As(err, &r) {
		return r.after, true
	}
	return 0, false
}

// ResultTooLarge is the error of a result of size bytes over limit.
func ResultTooLarge(size, limit int) error {
	return fmt.Errorf("%w: %d bytes, more than the %d allowed", ErrResultTooLarge, size, limit)
}
