package domain

import "context"

// Handler runs one attempt of a job of one type.
//
// Execute must honour ctx: it is canceled when a user cancels the job or
// when the system stops, and a handler that ignores it delays both. Delivery
// is at least once, so a handler must be safe to run again for the same
// payload. Returning nil completes the job; an error uses one attempt and is
// retried after a backoff while attempts remain; an error wrapped with
// Permanent fails the job at once. A panic is recovered and counts as an
// error.
type Handler interface {
	Execute(ctx context.Context, payload []byte) error
}

// HandlerFunc lets an ordinary function serve as a Handler.
type HandlerFunc func(ctx context.Context, payload []byte) error

// Execute calls f(ctx, payload).
func (f HandlerFunc) Execute(ctx context.Context, payload []byte) error { return f(ctx, payload) }
