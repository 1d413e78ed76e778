package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/troupe-go/troupe/domain"
)

// Messages a job actor receives. Those sent straight to its PID by a
// worker or a timer carry the generation of the activation they belong
// to (see jobActor.gen); runDue, persistDue, progressDue and leaseExpired
// carry sequence numbers that never repeat across activations.
type (
	// attemptDone is a worker reporting that the handler returned.
	attemptDone struct {
		gen  uint64
		err  error
		took time.Duration
		// result is what the attempt set with SetResult (JSON), if anything.
		result []byte
	}
	// progressReport is a running attempt's latest progress, coalesced by
	// the actor into at most a few writes a second.
	progressReport struct {
		gen      uint64
		progress domain.Progress
	}
	// runDue is the job's timer firing after a refused start: the job
	// goes back to the queue. seq ties it to the timer that sent it, so a
	// stale one is ignored.
	runDue struct{ seq int }
	// persistDue asks the actor to try again a snapshot write that failed.
	persistDue struct{ seq int }
	// attemptTimedOut is the attempt's timeout passing.
	attemptTimedOut struct{ gen uint64 }
	// stuckCheck asks whether an attempt past its timeout still runs.
	stuckCheck struct{ gen uint64 }
)

// stuckReportInterval is how often an attempt that runs past its timeout
// is logged: its handler ignores its context and keeps a worker.
const stuckReportInterval = time.Minute

// timeoutError is the cause of an attempt's context ending at its timeout,
// and the start of the attempt's error: "timeout after 30s".
type timeoutError struct{ after time.Duration }

func (e *timeoutError) Error() string { return "timeout after " + e.after.String() }

// Is makes a timeout a deadline exceeded, for handlers that check the
// cause of their context's end.
func (e *timeoutError) Is(target error) bool { return target == context.DeadlineExceeded }

var (
	// errJobGone: the job's actor stopped before the request reached it.
	errJobGone = errors.New("job actor is gone")
	// errCanceledByUser is the cause of a user's cancel of a running job.
	errCanceledByUser = errors.New("job canceled")
	// errShutdown is the cause given to running attempts when Stop runs
	// out of time.
	errShutdown = errors.New("job system is stopping")
)

// jobActor owns one job while the job has something to do: it holds the
// state machine's current snapshot, the cancel function and the timeout of
// a running attempt, and the timer of a write the store refused. A job
// waiting for a later RunAt (a retry's backoff) has no actor: it is
// scheduled in the store. Each change is persisted before it is acted on
// or acknowledged.
//
// Store writes block Receive on purpose: they serialize this one job's
// transitions (a cancel that arrives during a write waits for it), and
// each job actor has its own mailbox, so no other job waits. Handlers never
// run here.
type jobActor struct {
	rt         *core
	activation *activateJob
	log        *slog.Logger
	// gen counts the activations of this actor: the supervisor hands a
	// passivated job actor the next job rather than spawn one (spawning
	// and stopping an actor per job cost more than its work), and a
	// worker's or timer's message that raced the passivation must not
	// reach the next job.
	gen uint64

	// job is the last snapshot written to the store; changes are made on
	// a copy and adopted only once written.
	job *domain.Job

	initialized     bool
	attemptRunning  bool
	cancelAttempt   context.CancelCauseFunc
	cancelRequested bool
	leaseLost       bool
	attemptCounted  bool // rt.attempts holds one for this attempt
	handingBack     bool // the outcome is a hand-back at a stop
	// ext is the claim of an attempt an external worker runs (local
	// source; job_external.go), nil for a Go worker's.
	ext *externalClaim

	// The attempt's timeout: its context's cause when it passes, its
	// timer, when the attempt started, and whether it was reported and
	// counted in rt.stuck.
	attemptCtx      context.Context
	attemptStart    time.Time
	timeout         *timeoutError
	stopTimeout     func() bool
	timeoutReported bool
	stuck           bool

	timerSeq  int
	stopTimer func() bool

	// The running attempt's reporter (a Go handler's) and progress, the
	// latter allocated at the first report (progress.go).
	reporter *attemptReporter
	progress *progressState

	// unsaved is an outcome whose write failed and is being retried.
	unsaved        *domain.Job
	unsavedFailure int

	passivating       bool
	canceledQueued    bool
	canceledScheduled bool
}

func newJobActor(rt *core, a *activateJob) *jobActor {
	return &jobActor{rt: rt, activation: a, job: a.job}
}

// Receive implements actor.Actor.
func (a *jobActor) Receive(ctx actor.Context) {
	if a.stale(ctx.Message()) {
		return
	}
	if a.passivating {
		a.receivePassivating(ctx)
		return
	}
	if a.receiveExternal(ctx) {
		return
	}
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		a.started(ctx)
	case *attemptDone:
		a.attemptDone(ctx, msg)
	case *cancelJob:
		a.cancel(ctx)
	case *runDue:
		if msg.seq == a.timerSeq {
			a.passivate(ctx, a.job)
		}
	case *leaseLost:
		a.loseLease()
	case *attemptTimedOut:
		a.timedOut(ctx)
	case *progressReport:
		a.reportProgress(ctx, msg.progress)
	case *progressDue:
		a.progressDue(ctx, msg)
	case *stuckCheck:
		a.reportStuck(ctx)
	case *persistDue:
		if msg.seq == a.timerSeq && a.unsaved != nil {
			a.saveOutcome(ctx, a.unsaved)
		}
	case *actor.Stopping:
		a.stopping(ctx)
	}
}

// stale reports whether msg belongs to an earlier activation.
func (a *jobActor) stale(msg any) bool {
	switch m := msg.(type) {
	case *attemptDone:
		return m.gen != a.gen
	case *progressReport:
		return m.gen != a.gen
	case *attemptTimedOut:
		return m.gen != a.gen
	case *stuckCheck:
		return m.gen != a.gen
	}
	return false
}

func (a *jobActor) started(ctx actor.Context) {
	if a.initialized {
		// A restart after a panic: the state is the last snapshot written,
		// and any attempt or timer in flight still reports to this PID.
		a.logger().Warn("job actor restarted from its last snapshot")
		if a.job == nil || a.job.Status.IsTerminal() {
			a.passivate(ctx, nil)
		}
		return
	}
	a.initialized = true
	a.activate(ctx)
}

// reactivate makes a passivated actor the actor of the job act names, as
// a new one would be; only the sequence numbers of its timers go on, so
// that a timer of the job before never matches.
func (a *jobActor) reactivate(ctx actor.Context, act *activateJob) {
	timerSeq, progressSeq := a.timerSeq, 0
	if a.progress != nil {
		progressSeq = a.progress.seq
	}
	*a = jobActor{rt: a.rt, activation: act, job: act.job, gen: a.gen + 1, initialized: true, timerSeq: timerSeq}
	if progressSeq != 0 {
		a.progress = &progressState{seq: progressSeq}
	}
	a.activate(ctx)
}

func (a *jobActor) activate(ctx actor.Context) {
	switch a.activation.mode {
	case activateRun:
		a.startAttempt(ctx)
	case activateCancel:
		a.cancelQueued(ctx)
	}
}

func (a *jobActor) logger() *slog.Logger {
	if a.log == nil {
		id := a.activation.jobID()
		a.log = a.rt.logger.With(slog.String("jobID", id.String()))
		if a.job != nil {
			a.log = a.log.With(slog.String("type", string(a.job.Type)))
		}
	}
	return a.log
}

func (a *jobActor) debug(msg string, attrs ...slog.Attr) {
	if a.rt.logger.Enabled(context.Background(), slog.LevelDebug) {
		a.logger().LogAttrs(context.Background(), slog.LevelDebug, msg, attrs...)
	}
}

// write stores a snapshot where the job source keeps it; on a shared
// store only while this node still owns the job.
func (a *jobActor) write(next *domain.Job) error { return a.rt.source.write(next) }

func (a *jobActor) startAttempt(ctx actor.Context) {
	if a.activation.external != nil {
		a.startExternal(ctx)
		return
	}
	worker := a.activation.worker
	// The dispatcher counted the attempt in rt.attempts.
	a.attemptCounted = true
	next := a.job
	if !a.activation.claimed {
		next = a.job.Clone()
		if err := next.Start(a.rt.clock.Now()); err != nil {
			a.logger().Error("job cannot start", slog.Any("error", err))
			a.attemptsDone()
			ctx.Send(worker, &releaseWorker{})
			a.passivate(ctx, nil)
			return
		}
		if err := a.write(next); err != nil {
			// The job is still pending in the store; try it again after a
			// pause rather than spin against a failing store. This pause,
			// and the retried write of an outcome (saveOutcome), are the
			// only waits a job actor's own timer serves: they last while
			// the store refuses writes, so nothing could be stored to wait
			// in. A job that waits for a RunAt waits scheduled in the store.
			a.logger().Error("store refused the start of an attempt; retrying later", slog.Any("error", err))
			a.attemptsDone()
			ctx.Send(worker, &releaseWorker{})
			a.waitUntil(ctx, a.rt.clock.Now().Add(a.rt.cfg.RetryBaseDelay))
			return
		}
	}
	a.job = next
	a.rt.events.publish(next)
	attemptCtx, cancel := context.WithCancelCause(a.rt.runCtx)
	a.cancelAttempt = cancel
	a.attemptStart = a.rt.clock.Now()
	if t := next.Timeout; t > 0 {
		attemptCtx = a.armTimeout(ctx, attemptCtx, t)
	}
	a.attemptCtx = attemptCtx
	a.attemptRunning = true
	a.debug("attempt started", slog.Int("attempt", next.Attempts))
	reporter, handlerCtx := newAttemptReporter(a.rt, attemptCtx, next, ctx.Self(), a.gen)
	a.startProgress(reporter)
	ctx.Send(worker, &executeJob{
		gen:      a.gen,
		job:      next,
		ctx:      handlerCtx,
		owner:    ctx.Self(),
		reporter: reporter,
	})
}

// armTimeout bounds the attempt to t: one timer on the System's Clock ends
// the attempt's context with the timeout as its cause, as
// context.WithTimeoutCause would, and tells the actor. The context reports
// the deadline. (A context.WithTimeoutCause beside the Clock's timer cost a
// no-op burn-down 6 % of its CPU, and tests could not move it.)
func (a *jobActor) armTimeout(ctx actor.Context, parent context.Context, t time.Duration) context.Context {
	cause := &timeoutError{after: t}
	a.timeout = cause
	cancel, self, root, msg := a.cancelAttempt, ctx.Self(), a.rt.actors.Root, &attemptTimedOut{gen: a.gen}
	a.stopTimeout = a.rt.clock.AfterFunc(t, func() {
		cancel(cause)
		root.Send(self, msg)
	})
	return deadlineContext{Context: parent, deadline: a.attemptStart.Add(t), cause: cause}
}

// deadlineContext reports the deadline of an attempt whose timer, on the
// System's Clock, cancels it, and then says DeadlineExceeded as a context
// past its deadline does.
type deadlineContext struct {
	context.Context
	deadline time.Time
	cause    *timeoutError
}

func (c deadlineContext) Deadline() (time.Time, bool) { return c.deadline, true }

func (c deadlineContext) Err() error {
	err := c.Context.Err()
	if err != nil && errors.Is(context.Cause(c.Context), c.cause) {
		return context.DeadlineExceeded
	}
	return err
}

// timedOut handles the attempt's timeout passing: its context ends with the
// timeout as cause (the handler should return now), and if it still runs
// it counts as stuck until it returns.
func (a *jobActor) timedOut(ctx actor.Context) {
	a.stopTimeout = nil
	if !a.attemptRunning || a.timeout == nil {
		return
	}
	a.cancelAttempt(a.timeout)
	a.reportTimeout()
	if !a.stuck {
		a.stuck = true
		a.rt.stuck.Add(1)
		a.scheduleStuckCheck(ctx)
	}
}

func (a *jobActor) reportTimeout() {
	if !a.timeoutReported {
		a.timeoutReported = true
		a.rt.metrics.AttemptTimedOut(a.job)
		a.debug("attempt timed out", slog.Duration("timeout", a.timeout.after))
	}
}

func (a *jobActor) scheduleStuckCheck(ctx actor.Context) {
	self, root, msg := ctx.Self(), a.rt.actors.Root, &stuckCheck{gen: a.gen}
	a.stopTimeout = a.rt.clock.AfterFunc(stuckReportInterval, func() { root.Send(self, msg) })
}

// reportStuck logs, once a minute, an attempt that runs past its timeout.
func (a *jobActor) reportStuck(ctx actor.Context) {
	a.stopTimeout = nil
	if !a.attemptRunning || !a.stuck {
		return
	}
	a.logger().Warn("attempt still running past its timeout: its handler ignores its context and keeps a worker",
		slog.Int("attempt", a.job.Attempts), slog.Duration("timeout", a.timeout.after),
		slog.Duration("elapsed", a.rt.clock.Now().Sub(a.attemptStart)))
	a.scheduleStuckCheck(ctx)
}

// endTimeout stops the attempt's timeout and stuck report.
func (a *jobActor) endTimeout() {
	if a.stopTimeout != nil {
		a.stopTimeout()
		a.stopTimeout = nil
	}
	if a.stuck {
		a.stuck = false
		a.rt.stuck.Add(-1)
	}
}

// timeoutFailure is the error of an attempt whose timeout passed: the
// timeout, followed by what the handler returned unless that is only its
// context's end.
func (a *jobActor) timeoutFailure(err error) error {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return a.timeout
	}
	return fmt.Errorf("%w: %w", a.timeout, err)
}

func (a *jobActor) attemptDone(ctx actor.Context, msg *attemptDone) {
	if !a.attemptRunning {
		return
	}
	a.attemptRunning = false
	timedOut := a.timeout != nil && errors.Is(context.Cause(a.attemptCtx), a.timeout)
	a.attemptCtx = nil
	a.endTimeout()
	job := a.endProgress()
	if a.leaseLost {
		a.cancelAttempt(nil)
		a.attemptsDone()
		a.passivate(ctx, nil)
		return
	}
	shutdown := errors.Is(context.Cause(a.rt.runCtx), errShutdown)
	a.cancelAttempt(nil)
	if timedOut {
		a.reportTimeout()
		if msg.err != nil {
			msg.err = a.timeoutFailure(msg.err)
		}
	}
	a.rt.metrics.AttemptFinished(a.job, msg.took)

	a.handingBack = shutdown && msg.err != nil && !a.cancelRequested
	next, err := a.rt.attemptOutcome(job, attemptEnd{err: msg.err, result: msg.result,
		canceled: a.cancelRequested, shutdown: shutdown}, a.rt.clock.Now())
	if err != nil {
		// Only a bug gets here: every branch above is a legal edge from running.
		a.logger().Error("job outcome breaks the state machine", slog.Any("error", err))
		return
	}
	a.saveOutcome(ctx, next)
}

// saveOutcome writes the result of an attempt, retrying with a capped
// backoff while the store refuses, and then acts on it.
func (a *jobActor) saveOutcome(ctx actor.Context, next *domain.Job) {
	err := a.write(next)
	if errors.Is(err, domain.ErrLeaseLost) {
		// Another node took the job back after this node's lease expired;
		// its state wins and this outcome is dropped (at-least-once).
		a.logger().Warn("outcome dropped: the job's lease was lost", slog.String("status", next.Status.String()))
		a.unsaved = nil
		a.attemptsDone()
		a.passivate(ctx, nil)
		return
	}
	if err != nil {
		a.unsaved = next
		a.unsavedFailure++
		delay := Backoff{Base: a.rt.cfg.RetryBaseDelay, Max: a.rt.cfg.RetryMaxDelay, Jitter: NoJitter}.Delay(a.unsavedFailure)
		a.logger().Error("store refused the outcome of an attempt; retrying", slog.Any("error", err), slog.Duration("in", delay))
		a.schedule(ctx, delay, func(seq int) any { return &persistDue{seq: seq} })
		return
	}
	a.unsaved, a.unsavedFailure = nil, 0
	a.outcomeStored(ctx, next)
}

// outcomeStored acts on the stored outcome of an attempt.
func (a *jobActor) outcomeStored(ctx actor.Context, next *domain.Job) {
	a.job = next
	a.rt.events.publish(next)
	a.attemptsDone()
	attrs := []slog.Attr{slog.Int("attempt", next.Attempts), slog.String("status", next.Status.String())}
	switch next.Status {
	case domain.StatusPending:
		if a.handingBack {
			a.debug("attempt handed back for the next start", attrs...)
			a.passivate(ctx, nil)
			return
		}
		a.rt.metrics.JobRetried(next)
		a.debug("attempt failed; retrying now", append(attrs, slog.String("error", next.LastError))...)
		if !a.rt.source.requeuesHere() {
			// In the store, due now: the store told every node.
			a.passivate(ctx, nil)
			return
		}
		a.passivate(ctx, next)
	case domain.StatusScheduled:
		// The backoff is waited out in the store, not here: the scheduler
		// makes the job pending when it falls due.
		a.rt.metrics.JobRetried(next)
		a.debug("attempt failed; retrying later", append(attrs, slog.String("error", next.LastError), slog.Time("runAt", next.RunAt))...)
		a.rt.scheduler.notify(next.RunAt)
		a.passivate(ctx, nil)
	default:
		a.rt.metrics.JobFinished(next)
		if next.Status == domain.StatusFailed {
			attrs = append(attrs, slog.String("error", next.LastError))
		}
		a.debug("job finished", attrs...)
		a.passivate(ctx, nil)
	}
}

// waitUntil keeps the actor alive, holding the timer, until runAt; then
// the job goes back to the dispatcher's queue. Only a refused start waits
// here (see startAttempt).
func (a *jobActor) waitUntil(ctx actor.Context, runAt time.Time) {
	d := runAt.Sub(a.rt.clock.Now())
	if d <= 0 {
		a.passivate(ctx, a.job)
		return
	}
	a.schedule(ctx, d, func(seq int) any { return &runDue{seq: seq} })
}

func (a *jobActor) schedule(ctx actor.Context, d time.Duration, message func(seq int) any) {
	a.cancelTimer()
	a.timerSeq++
	msg, self, root := message(a.timerSeq), ctx.Self(), a.rt.actors.Root
	a.stopTimer = a.rt.clock.AfterFunc(d, func() { root.Send(self, msg) })
}

func (a *jobActor) cancelTimer() {
	if a.stopTimer != nil {
		a.stopTimer()
		a.stopTimer = nil
	}
	a.timerSeq++
}

// cancel handles a user's cancel of a live job.
func (a *jobActor) cancel(ctx actor.Context) {
	switch {
	case a.attemptRunning:
		// The handler's context is canceled; the job becomes canceled when
		// the handler returns, and the caller sees it running until then.
		if !a.cancelRequested {
			a.cancelRequested = true
			a.cancelAttempt(errCanceledByUser)
			a.debug("cancel requested while running")
		}
		respond(ctx, &cancelReply{job: a.job.Clone()})
	case a.job.Status == domain.StatusPending && a.unsaved == nil:
		respond(ctx, a.cancelPending(ctx))
	default:
		respond(ctx, a.cancelReplyFor(a.job))
	}
}

// cancelPending cancels the job this actor holds, pending (queued, or
// waiting for a store that refused its start) or scheduled, and
// passivates.
func (a *jobActor) cancelPending(ctx actor.Context) *cancelReply {
	next := a.job.Clone()
	if err := next.Cancel(a.rt.clock.Now()); err != nil {
		return &cancelReply{err: err}
	}
	if err := a.write(next); err != nil {
		return &cancelReply{err: fmt.Errorf("cancel job %s: %w", next.ID, err)}
	}
	a.cancelTimer()
	a.job = next
	a.rt.events.publish(next)
	a.rt.metrics.JobFinished(next)
	a.debug("job canceled while pending")
	a.passivate(ctx, nil)
	return &cancelReply{job: next.Clone()}
}

// cancelQueued serves a cancel for a job that had no actor: it is in the
// ready queue (the dispatcher now skips it), scheduled in the store, or it
// has finished.
func (a *jobActor) cancelQueued(ctx actor.Context) {
	// Passivating lets go of the activation: what follows it uses these.
	id, replyTo := a.activation.id, a.activation.replyTo
	defer a.passivate(ctx, nil)
	job, err := a.rt.store.Get(a.rt.storeCtx, id)
	if err != nil {
		ctx.Send(replyTo, &cancelReply{err: fmt.Errorf("cancel job %s: %w", id, err)})
		return
	}
	a.job = job
	switch job.Status {
	case domain.StatusPending:
		a.canceledQueued = true
	case domain.StatusScheduled:
		a.canceledScheduled = true
	default:
		ctx.Send(replyTo, a.cancelReplyFor(job))
		return
	}
	reply := a.cancelPending(ctx)
	if reply.err != nil {
		// Not canceled: the dispatcher must not skip the job.
		a.canceledQueued, a.canceledScheduled = false, false
	}
	ctx.Send(replyTo, reply)
}

// cancelReplyFor answers a cancel of a job that no longer runs or waits:
// canceling a canceled job again is a no-op, a completed or failed one is
// not cancelable.
func (a *jobActor) cancelReplyFor(job *domain.Job) *cancelReply {
	if err := job.Clone().Cancel(a.rt.clock.Now()); err != nil && job.Status.IsTerminal() {
		return &cancelReply{err: err}
	}
	return &cancelReply{job: job.Clone()}
}

// respond answers the sender of the current message, if it has one: a
// cancel forwarded from another node's request has none.
func respond(ctx actor.Context, reply *cancelReply) {
	if ctx.Sender() != nil {
		ctx.Respond(reply)
	}
}

// attemptsDone releases the attempt counted for this actor, once.
func (a *jobActor) attemptsDone() {
	if a.attemptCounted {
		a.attemptCounted = false
		a.rt.attempts.Done()
	}
}

// loseLease stops a running attempt whose job another node took back. An
// attempt no longer running wrote its outcome (writes block this actor's
// mailbox) before the renewal found the job gone, or is writing it and
// learns from UpdateOwned whether the lease was lost: either way there is
// nothing to drop here.
func (a *jobActor) loseLease() {
	if a.attemptRunning && !a.leaseLost {
		a.logger().Warn("lost the lease of a running job; dropping its attempt", slog.Int("attempt", a.job.Attempts))
		a.leaseLost = true
		a.cancelAttempt(domain.ErrLeaseLost)
	}
}

// passivate ends the actor's work; requeue, when set, goes back to the
// queue. The order matters: the dispatcher learns first, so that requests
// from then on take the path of a job without an actor; then the supervisor
// stops routing to this actor and sends it a poison pill, which it reaches
// only after the requests already routed to it, all answered from the
// final state. A plain Stop would overtake them, and they would go
// unanswered.
func (a *jobActor) passivate(ctx actor.Context, requeue *domain.Job) {
	if a.passivating {
		return
	}
	a.passivating = true
	a.cancelTimer()
	ctx.Send(a.rt.dispatcher, &jobPassivated{
		id:                a.activation.jobID(),
		requeue:           requeue,
		canceledQueued:    a.canceledQueued,
		canceledScheduled: a.canceledScheduled,
		retry:             a.heldRetry(),
	})
	ctx.Send(a.rt.supervisor, &passivateJob{id: a.activation.jobID(), pid: ctx.Self()})
	// The supervisor may keep this actor idle for long: it lets go of the
	// job (its payload and result may be large) and keeps only its ID.
	a.job, a.unsaved, a.reporter, a.cancelAttempt, a.attemptCtx, a.ext = nil, nil, nil, nil, nil, nil
	a.activation = &activateJob{id: a.activation.jobID(), mode: a.activation.mode}
}

// receivePassivating answers what reaches the actor after passivate.
func (a *jobActor) receivePassivating(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *externalCall:
		msg.reply <- externalReply{err: leaseLostError(msg.id)}
	case *cancelJob:
		// Finished, or back in the queue: the caller asks the dispatcher
		// again, which knows where the job is now.
		respond(ctx, &cancelReply{err: errJobGone})
	case *activateJob:
		a.reactivate(ctx, msg)
	case *actor.Stopping:
		a.stopping(ctx)
	}
}

func (a *jobActor) stopping(ctx actor.Context) {
	a.cancelTimer()
	a.endTimeout()
	a.stopProgressTimer()
	if a.attemptRunning {
		// Stopped with a handler still running (a supervision stop): the
		// job stays running in the store and is recovered at the next start.
		a.cancelAttempt(errShutdown)
		a.logger().Warn("job actor stopped while its attempt was running")
	}
	a.attemptsDone()
	if !a.passivating {
		a.passivating = true
		ctx.Send(a.rt.dispatcher, &jobPassivated{id: a.activation.jobID(),
			canceledQueued: a.canceledQueued, canceledScheduled: a.canceledScheduled, retry: a.heldRetry()})
	}
}

// heldRetry returns the job if its attempt ended scheduled for a retry and
// it has a key: a local source's dispatcher must know, since such a job
// holds its key in an ordered queue (a shared store knows it itself).
func (a *jobActor) heldRetry() *domain.Job {
	if a.activation.mode == activateRun && a.job != nil && a.job.Status == domain.StatusScheduled &&
		a.job.Key != "" && a.job.Attempts > 0 && a.rt.source.requeuesHere() {
		return a.job
	}
	return nil
}
