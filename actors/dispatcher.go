package actors

import (
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
	// live holds the jobs that have an actor now.
	live map[uuid.UUID]struct{}
	// canceled holds jobs canceled while pending that may still be in the
	// ready queue or in a submission on its way; they are skipped.
	canceled map[uuid.UUID]struct{}
	draining bool
}

func newDispatcher(rt *core) *dispatcher {
	return &dispatcher{
		rt:       rt,
		live:     make(map[uuid.UUID]struct{}),
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
		ctx.Respond(&drained{})
	case *pingDispatcher:
		ctx.Respond(&pong{})
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
		last := len(d.idle) - 1
		worker := d.idle[last]
		d.idle = d.idle[:last]
		d.activate(ctx, &activateJob{job: job, mode: activateRun, worker: worker})
	}
}

func (d *dispatcher) activate(ctx actor.Context, a *activateJob) {
	d.live[a.jobID()] = struct{}{}
	ctx.Send(d.rt.supervisor, a)
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
