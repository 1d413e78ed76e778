package handlers

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/troupe-go/troupe/domain"
)

// ---- noop ------------------------------------------------------------------

// Noop is the noop handler: it completes at once whatever its payload, so
// a benchmark of noop jobs measures the runtime and nothing else.
type Noop struct{}

// NewNoop returns the noop handler.
func NewNoop() *Noop { return &Noop{} }

// Execute returns nil, or ctx's error when ctx is already done.
func (*Noop) Execute(ctx context.Context, _ []byte) error {
	return canceled(ctx, TypeNoop)
}

// ---- sleep -----------------------------------------------------------------

// MaxSleepMs bounds a sleep job to one hour, so that a typo cannot park a
// worker for days.
const MaxSleepMs = 3_600_000

// SleepPayload is the payload of a sleep job: {"ms": N}.
type SleepPayload struct {
	// Ms is how long to wait, in milliseconds, from 0 to MaxSleepMs. Required.
	Ms int64 `json:"ms"`
}

// Validate reports an out-of-range Ms as an error wrapping domain.ErrInvalid
// and naming the field, or nil.
func (p SleepPayload) Validate() error {
	if p.Ms < 0 || p.Ms > MaxSleepMs {
		return invalidField("ms", "must be between 0 and %d, got %d", MaxSleepMs, p.Ms)
	}
	return nil
}

// Sleep is the sleep handler: it waits the given time or until its context
// is done, which makes it the handler to cancel, or to be running when the
// system stops.
type Sleep struct {
	logger *slog.Logger
}

// NewSleep returns the sleep handler; a nil logger discards.
func NewSleep(logger *slog.Logger) *Sleep {
	return &Sleep{logger: orDiscard(logger).With("jobType", string(TypeSleep))}
}

// Execute runs one attempt of a sleep job.
func (h *Sleep) Execute(ctx context.Context, payload []byte) error {
	if err := canceled(ctx, TypeSleep); err != nil {
		return err
	}
	// Decoded through a pointer so that a missing "ms" is told apart from 0.
	var wire struct {
		Ms *int64 `json:"ms"`
	}
	if err := decode(payload, &wire); err != nil {
		return rejected(TypeSleep, err)
	}
	if wire.Ms == nil {
		return rejected(TypeSleep, invalidField("ms", "is required"))
	}
	p := SleepPayload{Ms: *wire.Ms}
	if err := p.Validate(); err != nil {
		return rejected(TypeSleep, err)
	}
	d := time.Duration(p.Ms) * time.Millisecond
	h.logger.DebugContext(ctx, "sleeping", "duration", d)
	if err := work(ctx, TypeSleep, d); err != nil {
		return err
	}
	h.logger.DebugContext(ctx, "slept", "duration", d)
	return nil
}

// ---- flaky -----------------------------------------------------------------

// FlakyPayload is the payload of a flaky job: {"failTimes": N}.
type FlakyPayload struct {
	// FailTimes is how many attempts fail before one succeeds, at least 0.
	// Required.
	FailTimes int `json:"failTimes"`
}

// Validate reports a negative FailTimes as an error wrapping
// domain.ErrInvalid and naming the field, or nil.
func (p FlakyPayload) Validate() error {
	if p.FailTimes < 0 {
		return invalidField("failTimes", "must be at least 0, got %d", p.FailTimes)
	}
	return nil
}

// Flaky is the flaky handler: attempts 1 to failTimes of a job fail with an
// ordinary, retryable error and later attempts succeed, which shows retries
// and backoff. It keeps no state: the attempt number comes from the context,
// where the runtime puts it, so flaky behaves the same after a restart and
// on any node.
type Flaky struct {
	logger  *slog.Logger
	attempt func(context.Context) int
}

// NewFlaky returns the flaky handler. attempt returns the 1-based number of
// the attempt running under ctx (the runtime's AttemptFromContext); it is a
// parameter so that this package does not depend on the runtime and tests
// can count attempts themselves. NewFlaky panics if attempt is nil, since
// flaky cannot work without it. A nil logger discards.
func NewFlaky(logger *slog.Logger, attempt func(context.Context) int) *Flaky {
	if attempt == nil {
		panic("handlers: NewFlaky needs a non-nil attempt func")
	}
	return &Flaky{
		logger:  orDiscard(logger).With("jobType", string(TypeFlaky)),
		attempt: attempt,
	}
}

// Execute runs one attempt of a flaky job.
func (h *Flaky) Execute(ctx context.Context, payload []byte) error {
	if err := canceled(ctx, TypeFlaky); err != nil {
		return err
	}
	var wire struct {
		FailTimes *int `json:"failTimes"`
	}
	if err := decode(payload, &wire); err != nil {
		return rejected(TypeFlaky, err)
	}
	if wire.FailTimes == nil {
		return rejected(TypeFlaky, invalidField("failTimes", "is required"))
	}
	p := FlakyPayload{FailTimes: *wire.FailTimes}
	if err := p.Validate(); err != nil {
		return rejected(TypeFlaky, err)
	}
	if p.FailTimes == 0 {
		return nil
	}
	n := h.attempt(ctx)
	if n < 1 {
		// No retry can bring the number that the runtime failed to supply.
		return domain.Permanent(fmt.Errorf("flaky: the context carries no attempt number (got %d)", n))
	}
	if n <= p.FailTimes {
		h.logger.DebugContext(ctx, "failing on purpose", "attempt", n, "failTimes", p.FailTimes)
		return fmt.Errorf("flaky: failing attempt %d of %d", n, p.FailTimes)
	}
	h.logger.DebugContext(ctx, "succeeding", "attempt", n, "failTimes", p.FailTimes)
	return nil
}

// ---- panic -----------------------------------------------------------------

// PanicMessage is the value the panic handler panics with.
const PanicMessage = "panic handler: deliberate panic to exercise the runtime's recovery"

// Panic is the panic handler: it panics whatever its payload, which shows
// that the runtime recovers a panicking handler, records the attempt as
// failed and keeps its worker.
type Panic struct {
	logger *slog.Logger
}

// NewPanic returns the panic handler; a nil logger discards.
func NewPanic(logger *slog.Logger) *Panic {
	return &Panic{logger: orDiscard(logger).With("jobType", string(TypePanic))}
}

// Execute panics with PanicMessage, unless ctx is already done, in which
// case it returns ctx's error like every other handler.
func (h *Panic) Execute(ctx context.Context, _ []byte) error {
	if err := canceled(ctx, TypePanic); err != nil {
		return err
	}
	h.logger.DebugContext(ctx, "panicking on purpose")
	panic(PanicMessage)
}
