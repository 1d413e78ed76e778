package actors

import (
	"context"

	"github.com/google/uuid"
)

// attemptKey asks a handler's context for its *attemptReporter, which
// knows the job and the attempt (see attemptReporter.Value).
type attemptKey struct{}

// JobIDFromContext returns the ID of the job whose handler got ctx, for
// logging or idempotency keys; ok is false outside a handler.
func JobIDFromContext(ctx context.Context) (id uuid.UUID, ok bool) {
	r, ok := ctx.Value(attemptKey{}).(*attemptReporter)
	if !ok {
		return uuid.Nil, false
	}
	return r.jobID, true
}

// AttemptFromContext returns the number (1-based) of the attempt whose
// handler got ctx, or 0 outside a handler.
func AttemptFromContext(ctx context.Context) int {
	if r, ok := ctx.Value(attemptKey{}).(*attemptReporter); ok {
		return r.attempt
	}
	return 0
}
