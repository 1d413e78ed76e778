package actors

import (
	"slices"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"

	"github.com/troupe-go/troupe/domain"
)

// Messages the dispatcher receives.
type (
	// enqueueJobs hands the dispatcher pending jobs: new submissions, jobs
	// recovered at start and jobs the scheduler promoted. Their queue
	// slots are already counted.
	enqueueJobs struct{ jobs []*domain.Job }
	// promotionRound is the scheduler saying it has sent every job it
	// promoted so far; see dispatcher.canceledScheduled.
	promotionRound struct{}
	// requestWork is a free worker asking for its next job.
	requestWork struct{ worker *actor.PID }
	// jobPassivated is a job actor stopping. requeue, when set, is the
	// job's pending snapshot to queue again; canceledQueued says the actor
	// canceled a job that may still sit in the ready queue, and
	// canceledScheduled one that was scheduled, which a promotion racing
	// the cancel may still bring.
	jobPassivated struct {
		id                uuid.UUID
		requeue           *domain.Job
		canceledQueued    bool
		canceledScheduled bool
		// retry is the job's scheduled snapshot when its attempt ended
		// with a retry later and it has a key: it holds its key in an
		// ordered queue until it is due (flow_local.go).
		retry *domain.Job
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
	rt   *core
	idle []*actor.PID
	// queues holds the state of each queue with jobs ready or running
	// here, paused or capped. runnable lists, in round-robin order, those
	// whose next job may start now (queueState.canStart), and turn is the
	// index of the one to serve next: free workers go from queue to queue,
	// so that a flood in one does not stall the others. Only the local
	// source keeps jobs in them; both count running jobs per queue.
	queues   map[string]*queueState
	runnable []*queueState
	turn     int
	arrivals uint64
	// live holds the jobs that have an actor now, each with the number of
	// its activation: a job may leave and come back (a retry this node
	// claims again), and news about one activation must not reach the next.
	live        map[uuid.UUID]liveJob
	activations uint64
	// canceled holds jobs canceled while pending that may still be in the
	// ready queue or in a submission on its way; they are skipped.
	canceled map[uuid.UUID]struct{}
	// canceledScheduled holds jobs of canceled that were scheduled when
	// canceled: a promotion that read the job before the cancel's write
	// may still bring it, but only in the scheduler's current round, so
	// they leave canceled at the next promotionRound.
	canceledScheduled []uuid.UUID
	draining          bool
	// ext holds the ready jobs of external types and the claims waiting
	// for them (local source; external_local.go).
	ext externalReady
	// flow is what the queues' flow settings need beyond each queue's
	// state: keys holding a retry, the rate timer (flow_local.go).
	flow flowState
}

// liveJob is a job with an actor: the number of its activation, and the
// queue whose running count it holds, if it runs.
type liveJob struct {
	activation uint64
	queue      *queueState
	// external says an external worker runs the attempt.
	external bool
	// key is the job's Job.Key, for its queue's per-key flow settings.
	key string
}

func newDispatcher(rt *core) *dispatcher {
	return &dispatcher{
		rt:       rt,
		queues:   make(map[string]*queueState),
		live:     make(map[uuid.UUID]liveJob),
		canceled: make(map[uuid.UUID]struct{}),
	}
}

// Receive implements actor.Actor.
func (d *dispatcher) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *enqueueJobs:
		d.enqueue(ctx, msg.jobs)
	case *promotionRound:
		for _, id := range d.canceledScheduled {
			delete(d.canceled, id)
		}
		d.canceledScheduled = d.canceledScheduled[:0]
	case *queuePauseChanged:
		q := d.queue(msg.name)
		q.paused = msg.paused
		d.refresh(q)
		d.assign(ctx)
		d.serveClaims(ctx)
	case *requestWork:
		d.idle = append(d.idle, msg.worker)
		d.assign(ctx)
	case *jobPassivated:
		d.passivated(ctx, msg)
	case *cancelJob:
		d.cancel(ctx, msg)
	case *drainDispatcher:
		d.draining = true
		d.stopFlowTimer()
		d.rt.source.drain(d, ctx)
	case *pingDispatcher:
		ctx.Respond(&pong{})
	case *flowSettingsChanged:
		d.setFlow(ctx, msg)
	case *flowHeld:
		for _, j := range msg.jobs {
			d.addHold(j)
		}
	case *flowTokenDue:
		d.flowWoken(ctx)
	case *flowWaitingRequest:
		ctx.Respond(d.flowWaiting(msg.jobs))
	case *waitingCountsRequest:
		ctx.Respond(d.waitingCounts())
	case *countFlowKeys:
		ctx.Respond(d.flowKeys(msg.queue))
	default:
		// The source's own messages, and the lifecycle's.
		d.rt.source.receive(d, ctx)
	}
}

// enqueue puts pending jobs in their queues' ready queues. A pending job
// is due: one that waits for a later RunAt is scheduled, in the store.
func (d *dispatcher) enqueue(ctx actor.Context, jobs []*domain.Job) {
	var last *queueState
	external := false
	for _, job := range jobs {
		if _, ok := d.canceled[job.ID]; ok {
			delete(d.canceled, job.ID)
			d.rt.queued.Add(-1)
			continue
		}
		if job.Attempts > 0 && job.Key != "" {
			// A retry of a keyed job falls due: it no longer waits.
			d.holdDue(job)
		}
		if d.flow.queues > 0 {
			if ok, ext := d.flowEnqueue(job); ok {
				external = external || ext
				continue
			}
		}
		if d.rt.registry.isExternal(job.Type) {
			// Go workers never take these: claims do.
			d.arrivals++
			d.ext.push(job, d.arrivals)
			external = true
			continue
		}
		q := last
		if q == nil || q.name != job.Queue {
			q = d.queue(job.Queue)
			last = q
		}
		d.arrivals++
		q.ready.push(job, d.arrivals)
		if !q.listed {
			d.refresh(q)
		}
	}
	d.assign(ctx)
	if external {
		d.serveClaims(ctx)
	}
}

// queue returns the state of the named queue, made on first use.
func (d *dispatcher) queue(name string) *queueState {
	q, ok := d.queues[name]
	if !ok {
		q = &queueState{name: name, limit: d.rt.cfg.QueueLimits[name]}
		d.queues[name] = q
	}
	return q
}

// refresh puts q in the round-robin if its next job may start, takes it
// out otherwise, and forgets it when it holds nothing.
func (d *dispatcher) refresh(q *queueState) {
	switch ok := q.canStart(); {
	case ok && !q.listed:
		q.listed = true
		d.runnable = append(d.runnable, q)
	case !ok && q.listed:
		q.listed = false
		i := 0
		for d.runnable[i] != q {
			i++
		}
		d.runnable = slices.Delete(d.runnable, i, i+1)
		if i < d.turn {
			d.turn--
		}
	}
	if !q.listed && q.idle() {
		delete(d.queues, q.name)
	}
	if q.flow != nil && !q.listed {
		d.armQueueRate(q)
	}
}

// nextReady pops the next job to start: from the queue whose turn it is
// among those that may start one. It reports false when none may.
func (d *dispatcher) nextReady() (*domain.Job, bool) {
	if len(d.runnable) == 0 {
		return nil, false
	}
	if d.turn >= len(d.runnable) {
		d.turn = 0
	}
	q := d.runnable[d.turn]
	d.turn++
	if q.flow != nil {
		return d.nextFlowReady(q)
	}
	job, _ := q.ready.pop()
	d.rt.queued.Add(-1)
	if !q.canStart() {
		d.refresh(q)
	}
	return job, true
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
	q := d.queue(job.Queue)
	q.running++
	if (q.limit > 0 || q.flow != nil) && q.listed {
		d.refresh(q)
	}
	d.activate(ctx, &activateJob{job: job, mode: activateRun, worker: worker, claimed: claimed}, q)
}

// activate spawns the job's actor; q, when set, is the queue whose running
// count the job holds until the actor passivates.
func (d *dispatcher) activate(ctx actor.Context, a *activateJob, q *queueState) {
	d.activations++
	l := liveJob{activation: d.activations, queue: q}
	if q != nil {
		l.key = a.job.Key
	}
	d.live[a.jobID()] = l
	ctx.Send(d.rt.supervisor, a)
}

// roomByQueue is, for each capped queue, how many more of its jobs may
// start here now; nil when no queue is capped.
func (d *dispatcher) roomByQueue() map[string]int {
	limits := d.rt.cfg.QueueLimits
	if len(limits) == 0 {
		return nil
	}
	room := make(map[string]int, len(limits))
	for name, limit := range limits {
		running := 0
		if q, ok := d.queues[name]; ok {
			running = q.running
		}
		room[name] = max(limit-running, 0)
	}
	return room
}

// cancelRunning passes a user's cancel to the actor of a job running here.
func (d *dispatcher) cancelRunning(ctx actor.Context, id uuid.UUID) {
	if _, ok := d.live[id]; ok {
		ctx.Send(d.rt.supervisor, &cancelJob{id: id})
	}
}

func (d *dispatcher) passivated(ctx actor.Context, msg *jobPassivated) {
	if msg.retry != nil {
		d.addHold(msg.retry)
	} else if len(d.flow.early) > 0 {
		delete(d.flow.early, msg.id)
	}
	if msg.canceledScheduled && len(d.flow.holdOf) > 0 && d.dropHold(msg.id) {
		// The key it held in an ordered queue may start its next job.
		d.assign(ctx)
		d.serveClaims(ctx)
	}
	l, live := d.live[msg.id]
	if live && l.queue != nil && l.queue.flow != nil {
		d.flowPassivated(ctx, l, msg)
		return
	}
	if live && l.queue != nil {
		// The attempt ended: a capped queue may start another job.
		q := l.queue
		q.running--
		d.refresh(q)
		if q.limit > 0 && msg.requeue == nil {
			d.assign(ctx)
			d.serveClaims(ctx)
		}
	}
	delete(d.live, msg.id)
	switch {
	case msg.canceledScheduled:
		d.canceledScheduled = append(d.canceledScheduled, msg.id)
	case !msg.canceledQueued:
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
	d.activate(ctx, &activateJob{id: msg.id, mode: activateCancel, replyTo: ctx.Sender()}, nil)
}
