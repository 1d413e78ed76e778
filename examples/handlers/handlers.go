package handlers

import (
	"context"
	"fmt"
	"log/slog"
	"maps"

	"github.com/troupe-go/troupe/domain"
)

// The job types served by this package, for registering and submitting.
const (
	// TypeSendEmail simulates sending one email.
	TypeSendEmail domain.JobType = "send_email"
	// TypeGenerateReport simulates rendering a report over a date range.
	TypeGenerateReport domain.JobType = "generate_report"
	// TypeProcessFile simulates an operation on a stored file.
	TypeProcessFile domain.JobType = "process_file"
	// TypeNoop completes at once; it measures the runtime's own overhead.
	TypeNoop domain.JobType = "noop"
	// TypeSleep waits a given time; it shows cancellation and shutdown.
	TypeSleep domain.JobType = "sleep"
	// TypeFlaky fails a given number of attempts, then succeeds; it shows retries.
	TypeFlaky domain.JobType = "flaky"
	// TypePanic panics; it shows that the runtime recovers a panicking handler.
	TypePanic domain.JobType = "panic"
)

// Samples returns the sample handlers (send_email, generate_report,
// process_file) keyed by type, ready to register. A nil logger discards.
func Samples(logger *slog.Logger, opts ...SampleOption) map[domain.JobType]domain.Handler {
	return map[domain.JobType]domain.Handler{
		TypeSendEmail:      NewSendEmail(logger, opts...),
		TypeGenerateReport: NewGenerateReport(logger, opts...),
		TypeProcessFile:    NewProcessFile(logger, opts...),
	}
}

// Demo returns the demo handlers (noop, sleep, flaky, panic) keyed by type,
// ready to register. attempt tells flaky which attempt of its job is running
// (the runtime's AttemptFromContext); it must not be nil. A nil logger
// discards.
func Demo(logger *slog.Logger, attempt func(context.Context) int) map[domain.JobType]domain.Handler {
	return map[domain.JobType]domain.Handler{
		TypeNoop:  NewNoop(),
		TypeSleep: NewSleep(logger),
		TypeFlaky: NewFlaky(logger, attempt),
		TypePanic: NewPanic(logger),
	}
}

// All returns the sample and the demo handlers together, which is what
// `troupe serve` registers by default.
func All(logger *slog.Logger, attempt func(context.Context) int, opts ...SampleOption) map[domain.JobType]domain.Handler {
	all := Samples(logger, opts...)
	maps.Copy(all, Demo(logger, attempt))
	return all
}

// orDiscard lets callers pass a nil logger instead of building a discarding one.
func orDiscard(logger *slog.Logger) *slog.Logger {
	if logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return logger
}

// canceled reports why ctx is done, as an error that wraps ctx.Err() (so
// errors.Is finds context.Canceled or DeadlineExceeded) and, when the canceler
// gave one, the cause as well. It returns nil while ctx is live.
func canceled(ctx context.Context, typ domain.JobType) error {
	err := ctx.Err()
	if err == nil {
		return nil
	}
	if cause := context.Cause(ctx); cause != nil && cause != err { //nolint:errorlint // identity: without a cause of its own, Cause is ctx.Err() itself
		return fmt.Errorf("%s: %w: %w", typ, err, cause)
	}
	return fmt.Errorf("%s: %w", typ, err)
}

// Every handler here is a domain.Handler.
var (
	_ domain.Handler = (*SendEmail)(nil)
	_ domain.Handler = (*GenerateReport)(nil)
	_ domain.Handler = (*ProcessFile)(nil)
	_ domain.Handler = (*Noop)(nil)
	_ domain.Handler = (*Sleep)(nil)
	_ domain.Handler = (*Flaky)(nil)
	_ domain.Handler = (*Panic)(nil)
)
