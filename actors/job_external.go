package actors

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/troupe-go/troupe/domain"
)

// A job actor's external-attempt mode (local source): the attempt runs in
// an external worker, and the actor holds its lease. It starts the attempt
// as for a Go worker, answers heartbeats (each extends the lease) and
// applies the worker's outcome; the lease lapsing, the job's timeout and a
// stop end the attempt without the worker.

// Messages of a job actor's external mode.
type (
	// leaseExpired is the lease timer firing; seq ties it to the timer.
	leaseExpired struct{ seq int }
	// externalHandBack hands the running external attempt back, its
	// attempt not counted: at a stop (token empty: whatever the token;
	// the job stays pending in the store), or for a claim whose caller
	// left (requeue: the job goes back to the ready queue).
	externalHandBack struct {
		token   string
		requeue bool
	}
)

// errClaimAbandoned is the cause of handing back a claimed job whose
// claimer left before it got the job.
var errClaimAbandoned = errors.New("the claim's caller left before it got the job")

// externalClaim is what the actor of an external attempt knows of its
// claim.
type externalClaim struct {
	token  string
	lease  time.Duration
	worker string
	// started receives the attempt's start, once; index is the job's
	// place in the claim.
	started chan<- claimStarted
	index   int
	// expiresAt is when the lease ends unless a heartbeat extends it.
	expiresAt time.Time
}

// startExternal starts the attempt of a job claimed by an external worker:
// stored running, then its lease and timeout armed, then reported to the
// claim.
func (a *jobActor) startExternal(ctx actor.Context) {
	ext := a.activation.external
	// The dispatcher counted the attempt in rt.attempts.
	a.attemptCounted = true
	now := a.rt.clock.Now()
	next := a.job.Clone()
	if err := next.Start(now); err != nil {
		a.logger().Error("job cannot start", slog.Any("error", err))
		a.attemptsDone()
		ext.started <- claimStarted{index: ext.index}
		a.passivate(ctx, nil)
		return
	}
	if err := a.write(next); err != nil {
		// Pending still: back to the queue after a pause, as for a Go
		// worker's refused start.
		a.logger().Error("store refused the start of an attempt; retrying later", slog.Any("error", err))
		a.attemptsDone()
		ext.started <- claimStarted{index: ext.index}
		a.waitUntil(ctx, now.Add(a.rt.cfg.RetryBaseDelay))
		return
	}
	a.ext = ext
	a.job = next
	a.rt.events.publish(next)
	attemptCtx, cancel := context.WithCancelCause(a.rt.runCtx)
	a.cancelAttempt = cancel
	a.attemptStart = now
	a.attemptRunning = true
	if t := next.Timeout; t > 0 {
		a.attemptCtx = a.armTimeout(ctx, attemptCtx, t)
	}
	a.extendLease(ctx, now)
	a.debug("external attempt started", slog.Int("attempt", next.Attempts), slog.String("worker", ext.worker))
	ext.started <- claimStarted{ok: true, index: ext.index, job: ClaimedJob{Job: next.Clone(), LeaseToken: ext.token, LeaseExpiresAt: ext.expiresAt}}
}

// extendLease moves the lease's end to now plus the claim's lease.
func (a *jobActor) extendLease(ctx actor.Context, now time.Time) {
	a.ext.expiresAt = now.Add(a.ext.lease)
	a.schedule(ctx, a.ext.lease, func(seq int) any { return &leaseExpired{seq: seq} })
}

// holds reports whether token holds the running external attempt.
func (a *jobActor) holds(token string) bool {
	return a.ext != nil && a.attemptRunning && subtle.ConstantTimeCompare([]byte(a.ext.token), []byte(token)) == 1
}

// receiveExternal handles the messages of the external mode; it reports
// whether the message was one.
func (a *jobActor) receiveExternal(ctx actor.Context) bool {
	switch msg := ctx.Message().(type) {
	case *externalCall:
		a.externalCall(ctx, msg)
	case *leaseExpired:
		if msg.seq == a.timerSeq && a.ext != nil && a.attemptRunning {
			a.logger().Warn("external worker's lease expired without a heartbeat",
				slog.Int("attempt", a.job.Attempts), slog.String("worker", a.ext.worker))
			err := domain.RetryAfter(domain.ErrLeaseExpired, 0) // like a dead node's job: again at once
			a.endExternalHere(ctx, attemptEnd{err: err, canceled: a.cancelRequested})
		}
	case *externalHandBack:
		a.handBackExternal(ctx, msg)
	case *attemptTimedOut:
		if a.ext == nil {
			return false
		}
		a.stopTimeout = nil
		if a.attemptRunning {
			a.reportTimeout()
			a.endExternalHere(ctx, attemptEnd{err: a.timeout, canceled: a.cancelRequested})
		}
	default:
		return false
	}
	return true
}

// externalCall answers a heartbeat or applies an outcome. An outcome is
// written before it is answered; if the store refuses it, the attempt
// goes on and the worker may report again.
func (a *jobActor) externalCall(ctx actor.Context, msg *externalCall) {
	if !a.holds(msg.token) {
		msg.reply <- externalReply{err: leaseLostError(msg.id)}
		return
	}
	now := a.rt.clock.Now()
	if msg.heartbeat {
		a.extendLease(ctx, now)
		if msg.progress != nil {
			a.reportProgress(ctx, *msg.progress)
		}
		msg.reply <- externalReply{state: LeaseState{ExpiresAt: a.ext.expiresAt, CancelRequested: a.cancelRequested}}
		return
	}
	end := msg.end
	end.canceled = a.cancelRequested
	next, err := a.rt.attemptOutcome(a.job, end, now)
	if err != nil {
		msg.reply <- externalReply{err: fmt.Errorf("job %s: %w", msg.id, err)}
		return
	}
	if err := a.write(next); err != nil {
		a.logger().Error("store refused an external worker's outcome; the attempt goes on", slog.Any("error", err))
		msg.reply <- externalReply{err: fmt.Errorf("job %s: store the outcome: %w", msg.id, err)}
		return
	}
	a.endExternal(now)
	a.outcomeStored(ctx, next)
	msg.reply <- externalReply{job: next.Clone()}
}

// endExternal ends the running external attempt: its lease, timeout and
// context.
func (a *jobActor) endExternal(now time.Time) {
	a.attemptRunning = false
	a.cancelAttempt(nil)
	a.attemptCtx = nil
	a.endTimeout()
	a.cancelTimer()
	a.rt.metrics.AttemptFinished(a.job, now.Sub(a.attemptStart))
}

// endExternalHere ends the attempt without the worker (its lease lapsed,
// its timeout passed, a stop): the outcome is written as a Go attempt's
// is, retried while the store refuses it.
func (a *jobActor) endExternalHere(ctx actor.Context, end attemptEnd) {
	now := a.rt.clock.Now()
	next, err := a.rt.attemptOutcome(a.job, end, now)
	if err != nil {
		a.logger().Error("job outcome breaks the state machine", slog.Any("error", err))
		return
	}
	a.endExternal(now)
	a.saveOutcome(ctx, next)
}

// handBackExternal hands the running external attempt back, its attempt
// not counted (a canceled job is canceled instead).
func (a *jobActor) handBackExternal(ctx actor.Context, msg *externalHandBack) {
	if a.ext == nil || !a.attemptRunning || (msg.token != "" && !a.holds(msg.token)) {
		return
	}
	if !msg.requeue {
		// A stop: the job stays pending in the store for the next start.
		a.handingBack = !a.cancelRequested
		a.endExternalHere(ctx, attemptEnd{err: errShutdown, shutdown: true, canceled: a.cancelRequested})
		return
	}
	if a.cancelRequested {
		a.endExternalHere(ctx, attemptEnd{err: errClaimAbandoned, canceled: true})
		return
	}
	now := a.rt.clock.Now()
	next := a.job.Clone()
	if err := next.HandBack(now); err != nil {
		a.logger().Error("job cannot be handed back", slog.Any("error", err))
		return
	}
	if err := a.write(next); err != nil {
		// The attempt goes on unclaimed; its lease ends it.
		a.logger().Error("store refused handing back a job whose claimer left", slog.Any("error", err))
		return
	}
	a.attemptRunning = false
	a.cancelAttempt(nil)
	a.attemptCtx = nil
	a.endTimeout()
	a.cancelTimer()
	a.job = next
	a.rt.events.publish(next)
	a.attemptsDone()
	a.debug("claimed job handed back: its claimer left")
	a.passivate(ctx, next)
}
