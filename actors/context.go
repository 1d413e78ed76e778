package actors

import (
	"context"

	"github.com/google/uuid"
)

type attemptKey struct{}

// attemptInfo travels in a handler's context.
type attemptInfo struct {
	jobID   uuid.UUID
	attempt int
}

func withAttempt(ctx context.Context, id uuid.UUID, attempt int) context.Context {
	return context.WithValue(ctx, attemptKey{}, attemptInfo{jobID: id, attempt: attempt})
}

// JobIDFromContext returns the ID of the job whose handler got ctx, for
// logging or idempotency keys; ok is false outside a handler.
func JobIDFromContext(ctx context.Context) (id uuid.UUID, ok bool) {
	info, ok := ctx.Value(attemptKey{}).(attemptInfo)
	return info.jobID, ok
}

// AttemptFromContext returns the number (1-based) of the attempt whose
// handler got ctx, or 0 outside a handler.
func AttemptFromContext(ctx context.Context) int {
	info, _ := ctx.Value(attemptKey{}).(attemptInfo)
	return info.attempt
}
