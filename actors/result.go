package actors

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"

	"github.com/troupe-go/troupe/domain"
)

// attemptReporter is the domain.AttemptReporter of one attempt run by a
// Go handler, and the context the handler gets: it wraps the attempt's
// context and answers JobIDFromContext and AttemptFromContext itself, so
// that an attempt costs one allocation for all three (plus the
// domain.WithAttemptReporter value) and no goroutine or timer. Progress is
// pulled by the job actor (progress.go): the reporter only keeps the
// latest report and nudges the actor once until the actor takes it.
type attemptReporter struct {
	context.Context

	rt      *core
	owner   *actor.PID
	gen     uint64 // the owner's activation
	jobID   uuid.UUID
	attempt int

	mu sync.Mutex
	// ended: the handler returned; reports are ignored from then on.
	ended bool
	// result is the JSON of the last SetResult within the limit.
	result []byte
	// tooLarge is the error of a SetResult over the limit: the attempt
	// fails with it whatever the handler returns, even if a later result
	// fits (the handler was told its result would not be kept).
	tooLarge error
	// slot holds the latest progress report, allocated at the first: most
	// attempts report none.
	slot *progressSlot
}

// newAttemptReporter returns the reporter of the attempt job (running)
// runs with ctx, which reports to owner, and the context for its handler.
func newAttemptReporter(rt *core, ctx context.Context, job *domain.Job, owner *actor.PID, gen uint64) (*attemptReporter, context.Context) {
	r := &attemptReporter{Context: ctx, rt: rt, owner: owner, gen: gen, jobID: job.ID, attempt: job.Attempts}
	return r, domain.WithAttemptReporter(r, r)
}

// Value answers JobIDFromContext and AttemptFromContext from the reporter.
func (r *attemptReporter) Value(key any) any {
	if _, ok := key.(attemptKey); ok {
		return r
	}
	return r.Context.Value(key)
}

// SetResult implements domain.AttemptReporter.
func (r *attemptReporter) SetResult(v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("set result of job %s: %w", r.jobID, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ended {
		return fmt.Errorf("set result of job %s: attempt %d has ended: %w", r.jobID, r.attempt, domain.ErrNoAttempt)
	}
	if limit := r.rt.cfg.MaxResultBytes; len(data) > limit {
		r.tooLarge = domain.ResultTooLarge(len(data), limit)
		r.result = nil
		return fmt.Errorf("set result of job %s: %w", r.jobID, r.tooLarge)
	}
	r.result = data
	return nil
}

// finish ends the attempt for the reporter once its handler returned, and
// returns the result it set, or the error it fails with because a result
// was too large.
func (r *attemptReporter) finish() ([]byte, error) {
	if r == nil {
		return nil, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ended = true
	return r.result, r.tooLarge
}
