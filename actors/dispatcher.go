package actors

import (
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"

	"github.com/troupe-go/troupe/domain"
)

// Messages the dispatcher receives.
type (
	// enqueueJobs hands the dispatcher pending jobs: new submissions and
	// jobs recovered at start. Their queue slots are already counted.
	enqueueJobs struct{ jobs []*domain.Job }
	// requestWork is a free worker asking for its next job.
	requestWork struct{ worker *actor.PID }
	// jobPassivated is a job actor stopping. requeue, when set, is the
	// job's pending snapshot to queue again; canceledQueued says the actor
	// canceled a job that may still sit in the ready queue.
	jobPassivated struct {
		id             uuid.UUID
		requeue        *domain.Job
		canceledQueued bool
	}
	// cancelJob asks for a job to be canceled; the reply is *cancelReply,
	// sent by whichever actor owns the job at that moment.
	cancelJob struct{ id uuid.UUID }
	// drainDispatcher tells the dispatcher to hand out no more work; the
	// reply is *drained.
	drainDispatcher struct{}
	drained         struct{}
	// pingDispatcher checks the dispatcher answers; the reply is *pong.
	pingDispatcher struct{}
	pong           struct{}
)

// cancelReply answers cancelJob. errJobGone means the job's actor stopped
// while the request was on its way: the caller asks again.
type cancelReply struct {
	job *domain.Job
	err error
}

// dispatcher owns the ready queue. It hands a job to a worker only when
// that worker asks, so a slow worker never holds jobs others could run and
// the queue is the only buffer. It is also the one place that knows where
// every job of this node is (queued, live or neither), which is why cancels
// pass through it: it serializes them against dispatching.
type dispatcher struct {
	rt    *core
	ready readyQueue
	idle  []*actor.PID
	// live holds the jobs that have an actor now, each with the number of
	// its activation: a job may leave and come back (a retry this node
	// claims again), and news about one activation must not reach the next.
	live        map[uuid.UUID]uint64
	activations uint64
	// canceled holds jobs canceled while pending that may still be in the
	// ready queue or in a submission on its way; they are skipped.
	canceled map[uuid.UUID]struct{}
	draining bool

	// Shared-queue mode: claiming says a claim is on its way, and
	// claimAgain that more work may be waiting once it returns. There, every
	// live job is one this node claimed and runs, so live is also the set
	// of leases to renew.
	claiming    bool
	claimAgain  bool
	renewing    bool
	drainWaiter *actor.PID
	wake        func() bool
	wakeAt      time.Time
}

func newDispatcher(rt *core) *dispatcher {
	return &dispatcher{
		rt:       rt,
		live:     make(map[uuid.UUID]uint64),
		canceled: make(map[uuid.UUID]struct{}),
	}
}

// Receive implements actor.Actor.
func (d *dispatcher) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *enqueueJobs:
		d.enqueue(ctx, msg.jobs)
	case *requestWork:
		d.idle = append(d.idle, msg.worker)
		d.assign(ctx)
	case *jobPassivated:
		d.passivated(ctx, msg)
	case *cancelJob:
		d.cancel(ctx, msg)
	case *drainDispatcher:
		d.draining = true
		if d.claiming {
			// Claimed jobs are already running in the store: they must be
			// activated, and so counted, before Stop waits for attempts.
			d.drainWaiter = ctx.Sender()
			return
		}
		ctx.Respond(&drained{})
	case *pingDispatcher:
		ctx.Respond(&pong{})
	case *claimNow:
		d.claim(ctx)
	case *claimed:
		d.claimed(ctx, msg)
	case *queueNotice:
		d.notice(ctx, msg.notice)
	case *renewLeases:
		d.renewLeases(ctx)
	case *leasesRenewed:
		d.leasesRenewed(ctx, msg)
	case *actor.Stopping:
		if d.wake != nil {
			d.wake()
		}
	}
}

func (d *dispatcher) enqueue(ctx actor.Context, jobs []*domain.Job) {
	now := d.rt.clock.Now()
	for _, job := range jobs {
		if _, ok := d.canceled[job.ID]; ok {
			delete(d.canceled, job.ID)
			d.rt.queued.Add(-1)
			continue
		}
		if job.RunAt.After(now) {
			// A job not due yet waits in its own actor, which owns the timer.
			d.rt.queued.Add(-1)
			d.activate(ctx, &activateJob{job: job, mode: activateWait})
			continue
		}
		d.ready.push(job)
	}
	d.assign(ctx)
}

// assign pairs idle workers with ready jobs for as long as both last.
func (d *dispatcher) assign(ctx actor.Context) {
	if d.rt.shared != nil {
		d.claim(ctx)
		return
	}
	for !d.draining && len(d.idle) > 0 {
		job, ok := d.ready.pop()
		if !ok {
			return
		}
		d.rt.queued.Add(-1)
		if _, ok := d.canceled[job.ID]; ok {
			delete(d.canceled, job.ID)
			continue
		}
		d.run(ctx, job, false)
	}
}

// run hands job to the idle worker on top of the stack. The attempt is
// counted here, not in the job's actor, so that Stop, which asks the
// dispatcher to drain before it waits, never misses one on its way.
func (d *dispatcher) run(ctx actor.Context, job *domain.Job, claimed bool) {
	last := len(d.idle) - 1
	worker := d.idle[last]
	d.idle = d.idle[:last]
	d.rt.attempts.Add(1)
	d.activate(ctx, &activateJob{job: job, mode: activateRun, worker: worker, claimed: claimed})
}

func (d *dispatcher) activate(ctx actor.Context, a *activateJob) {
	d.activations++
	d.live[a.jobID()] = d.activations
	ctx.Send(d.rt.supervisor, a)
}

// claim asks the shared store for as many ready jobs as there are idle
// workers, one claim at a time; the store call runs off the mailbox.
func (d *dispatcher) claim(ctx actor.Context) {
	if d.draining || len(d.idle) == 0 {
		return
	}
	if d.claiming {
		d.claimAgain = true
		return
	}
	d.claiming, d.claimAgain = true, false
	rt, self, limit := d.rt, ctx.Self(), len(d.idle)
	go func() {
		jobs, err := rt.shared.ClaimJobs(rt.storeCtx, rt.cfg.Node, limit, rt.cfg.LeaseDuration, rt.registry.types()...)
		rt.actors.Root.Send(self, &claimed{jobs: jobs, err: err, limit: limit})
	}()
}

func (d *dispatcher) claimed(ctx actor.Context, msg *claimed) {
	d.claiming = false
	if msg.err != nil {
		d.rt.logger.Error("claiming jobs failed", slog.Any("error", msg.err))
	}
	for _, job := range msg.jobs {
		// A claim never asks for more jobs than there were idle workers, and
		// only the dispatcher takes workers off the idle stack.
		d.run(ctx, job, true)
	}
	if d.drainWaiter != nil {
		ctx.Send(d.drainWaiter, &drained{})
		d.drainWaiter = nil
		return
	}
	// A full claim suggests more jobs are ready.
	if msg.err == nil && (d.claimAgain || len(msg.jobs) == msg.limit) {
		d.claim(ctx)
	}
}

func (d *dispatcher) notice(ctx actor.Context, n domain.QueueNotice) {
	switch n.Kind {
	case domain.NoticeJobsAvailable:
		if delay := time.Until(n.RunAt); delay > 0 {
			d.wakeUpAt(ctx, n.RunAt)
			return
		}
		d.claim(ctx)
	case domain.NoticeCancelRequested:
		if n.Node == d.rt.cfg.Node {
			d.cancelRunning(ctx, n.JobID)
		}
	case domain.NoticeWatching:
		d.claim(ctx)
		d.renewLeases(ctx) // also picks up cancels missed while away
	}
}

// wakeUpAt claims when the earliest known retry falls due, so that a retry
// waits for its backoff and not for the poll.
func (d *dispatcher) wakeUpAt(ctx actor.Context, at time.Time) {
	if d.wake != nil && d.wakeAt.After(time.Now()) && !d.wakeAt.After(at) {
		return // an earlier wake-up is already set
	}
	if d.wake != nil {
		d.wake()
	}
	self, root := ctx.Self(), d.rt.actors.Root
	d.wakeAt = at
	d.wake = time.AfterFunc(time.Until(at), func() { root.Send(self, &claimNow{}) }).Stop
}

// cancelRunning passes a user's cancel to the actor of a job running here.
func (d *dispatcher) cancelRunning(ctx actor.Context, id uuid.UUID) {
	if _, ok := d.live[id]; ok {
		ctx.Send(d.rt.supervisor, &cancelJob{id: id})
	}
}

func (d *dispatcher) renewLeases(ctx actor.Context) {
	if d.renewing {
		return
	}
	d.renewing = true
	ids := make([]uuid.UUID, 0, len(d.live))
	leases := make(map[uuid.UUID]uint64, len(d.live))
	for id, activation := range d.live {
		ids = append(ids, id)
		leases[id] = activation
	}
	rt, self := d.rt, ctx.Self()
	go func() {
		msg := leasesRenewed{leases: leases}
		if len(ids) > 0 {
			msg.lost, msg.err = rt.shared.RenewLeases(rt.storeCtx, rt.cfg.Node, ids, rt.cfg.LeaseDuration)
		}
		if msg.err == nil {
			msg.canceled, msg.err = rt.shared.CancelRequests(rt.storeCtx, rt.cfg.Node)
		}
		rt.actors.Root.Send(self, &msg)
	}()
}

func (d *dispatcher) leasesRenewed(ctx actor.Context, msg *leasesRenewed) {
	d.renewing = false
	if msg.err != nil {
		d.rt.logger.Error("renewing leases failed", slog.Any("error", msg.err))
	}
	for _, id := range msg.lost {
		// A job not renewed was taken back by another node, or it finished
		// here while the renewal ran: its outcome committed, and its actor
		// has not yet told the dispatcher. Only the actor of the activation
		// that was renewed knows which; a later activation of the job holds
		// a lease of its own.
		if activation, ok := d.live[id]; ok && activation == msg.leases[id] {
			ctx.Send(d.rt.supervisor, &toJob{id: id, msg: &leaseLost{}})
		}
	}
	for _, id := range msg.canceled {
		d.cancelRunning(ctx, id)
	}
}

func (d *dispatcher) passivated(ctx actor.Context, msg *jobPassivated) {
	delete(d.live, msg.id)
	if !msg.canceledQueued {
		delete(d.canceled, msg.id)
	}
	if msg.requeue == nil || d.draining {
		// When draining, the job stays pending in the store and the next
		// start queues it again.
		return
	}
	d.rt.queued.Add(1)
	d.enqueue(ctx, []*domain.Job{msg.requeue})
}

func (d *dispatcher) cancel(ctx actor.Context, msg *cancelJob) {
	if _, ok := d.live[msg.id]; ok {
		// The supervisor passes it on to the job's actor, keeping the
		// requester as sender so that the answer goes straight back.
		ctx.Forward(d.rt.supervisor)
		return
	}
	// Not live: queued, on its way to the queue, or finished. An actor
	// activated just for this loads it and decides; meanwhile the job is
	// marked so that dispatching skips it.
	d.canceled[msg.id] = struct{}{}
	d.activate(ctx, &activateJob{id: msg.id, mode: activateCancel, replyTo: ctx.Sender()})
}
