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

// dispatcher hands out the jobs of its jobSource: the ready queue it owns
// (localSource) or the claims of a shared store (sharedSource). It hands a
// job to a worker only when that worker asks, so a slow worker never holds
// jobs others could run and the queue is the only buffer. It is also the one place that knows where
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
		d.rt.source.drain(d, ctx)
	case *pingDispatcher:
		ctx.Respond(&pong{})
	default:
		// The source's own messages, and the lifecycle's.
		d.rt.source.receive(d, ctx)
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
func (d *dispatcher) assign(ctx actor.Context) { d.rt.source.take(d, ctx) }

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

// cancelRunning passes a user's cancel to the actor of a job running here.
func (d *dispatcher) cancelRunning(ctx actor.Context, id uuid.UUID) {
	if _, ok := d.live[id]; ok {
		ctx.Send(d.rt.supervisor, &cancelJob{id: id})
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
