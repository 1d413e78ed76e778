package actors

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"

	"github.com/troupe-go/troupe/domain"
)

// The worker protocol on a local store: the dispatcher keeps the ready
// jobs of external types apart from the Go workers' ready queues, and
// hands them out to claims; each claimed job gets a job actor that holds
// its lease (job_external.go).

// Messages of the worker protocol, received by the dispatcher.
type (
	// claimRequest is an external worker's claim. The dispatcher answers
	// it exactly once on reply: at once, or when a job comes, its wait
	// ends, or its caller leaves (claimGone).
	claimRequest struct {
		spec  *claimSpec
		reply chan claimAnswer
		// started receives one claimStarted from each job's actor once its
		// attempt is stored as started.
		started chan claimStarted
		// Dispatcher's mailbox only.
		answered bool
		stopWait func() bool
	}
	// claimAnswer says how many jobs the claim took (their actors report
	// on started).
	claimAnswer struct{ n int }
	// claimStarted is a claimed job's actor reporting its start: ok false
	// when the store refused it (the job goes back to the queue).
	claimStarted struct {
		job   ClaimedJob
		ok    bool
		index int // the job's place in the claim
	}
	// claimWaitEnded is a claim's wait running out; claimGone its caller
	// leaving. Either answers it empty if it still waits.
	claimWaitEnded struct{ req *claimRequest }
	claimGone      struct{ req *claimRequest }
	// countWaiters asks how many claims wait (an int), for tests.
	countWaiters struct{}
)

// externalReady holds the dispatcher's ready jobs of external types: per
// queue, per type, each a readyQueue in the Go workers' order. order lists
// the queues holding some, in turn, and turn is the next to serve.
// waiters are the claims waiting for a job, oldest first.
type externalReady struct {
	queues  map[string]*externalQueue
	order   []*externalQueue
	turn    int
	waiters []*claimRequest
}

type externalQueue struct {
	name   string
	byType map[domain.JobType]*readyQueue
	n      int
}

func (x *externalReady) push(job *domain.Job, seq uint64) {
	if x.queues == nil {
		x.queues = make(map[string]*externalQueue)
	}
	eq, ok := x.queues[job.Queue]
	if !ok {
		eq = &externalQueue{name: job.Queue, byType: make(map[domain.JobType]*readyQueue)}
		x.queues[job.Queue] = eq
		x.order = append(x.order, eq)
	}
	rq, ok := eq.byType[job.Type]
	if !ok {
		rq = &readyQueue{}
		eq.byType[job.Type] = rq
	}
	rq.push(job, seq)
	eq.n++
}

// pop takes the queue's first job among the claim's types.
func (eq *externalQueue) pop(spec *claimSpec) *domain.Job {
	var best *readyEntry
	var from domain.JobType
	for _, t := range spec.types {
		rq, ok := eq.byType[t]
		if !ok {
			continue
		}
		if e, ok := rq.peek(); ok && (best == nil || e.before(best)) {
			best, from = e, t
		}
	}
	if best == nil {
		return nil
	}
	rq := eq.byType[from]
	job, _ := rq.pop()
	if rq.len() == 0 {
		delete(eq.byType, from)
	}
	eq.n--
	return job
}

// prune forgets the queues left empty, keeping the turn on the same queue.
func (x *externalReady) prune() {
	kept := x.order[:0]
	turn := x.turn
	for i, eq := range x.order {
		if eq.n > 0 {
			kept = append(kept, eq)
			continue
		}
		delete(x.queues, eq.name)
		if i < x.turn {
			turn--
		}
	}
	clear(x.order[len(kept):])
	x.order, x.turn = kept, max(turn, 0)
}

// externalMayStart reports whether a job of the named queue may start
// now: the queue is not paused and under this node's cap, which Go and
// external jobs share.
func (d *dispatcher) externalMayStart(name string) bool {
	q, ok := d.queues[name]
	if !ok {
		return true
	}
	return !q.paused && (q.limit == 0 || q.running < q.limit)
}

// takeExternal takes up to the claim's Max ready jobs for it, a queue at a
// time in turn, and activates each job's actor in its external mode.
func (d *dispatcher) takeExternal(ctx actor.Context, req *claimRequest) int {
	x := &d.ext
	spec := req.spec
	n := 0
	for n < spec.max && len(x.order) > 0 {
		took := false
		for range len(x.order) {
			if n >= spec.max {
				break
			}
			if x.turn >= len(x.order) {
				x.turn = 0
			}
			eq := x.order[x.turn]
			x.turn++
			if eq.n == 0 || !spec.allowsQueue(eq.name) || !d.externalMayStart(eq.name) {
				continue
			}
			job := eq.pop(spec)
			if job == nil {
				continue
			}
			took = true
			d.rt.queued.Add(-1)
			if _, ok := d.canceled[job.ID]; ok {
				delete(d.canceled, job.ID)
				continue
			}
			d.runExternal(ctx, job, req, n)
			n++
		}
		x.prune()
		if !took {
			break
		}
	}
	if n < spec.max && d.flow.extJobs > 0 {
		n = d.takeFlowExternal(ctx, req, n)
	}
	return n
}

// runExternal starts job's attempt for a claim: counted here, as run
// counts a Go worker's, and holding its queue's running count.
func (d *dispatcher) runExternal(ctx actor.Context, job *domain.Job, req *claimRequest, index int) {
	d.rt.attempts.Add(1)
	q := d.queue(job.Queue)
	q.running++
	if (q.limit > 0 || q.flow != nil) && q.listed {
		d.refresh(q)
	}
	claim := &externalClaim{token: req.spec.token, lease: req.spec.lease, worker: req.spec.worker, started: req.started, index: index}
	d.activate(ctx, &activateJob{job: job, mode: activateRun, external: claim}, q)
	l := d.live[job.ID]
	l.external = true
	d.live[job.ID] = l
}

func (d *dispatcher) answerClaim(req *claimRequest, n int) {
	if req.answered {
		return
	}
	req.answered = true
	if req.stopWait != nil {
		req.stopWait()
	}
	req.reply <- claimAnswer{n: n}
}

// claim serves a new claim: at once when jobs are ready (or it does not
// wait), else it waits for one until its Wait ends.
func (d *dispatcher) claim(ctx actor.Context, req *claimRequest) {
	if d.draining {
		d.answerClaim(req, 0)
		return
	}
	if n := d.takeExternal(ctx, req); n > 0 || req.spec.wait <= 0 {
		d.answerClaim(req, n)
		return
	}
	d.ext.waiters = append(d.ext.waiters, req)
	self, root := ctx.Self(), d.rt.actors.Root
	req.stopWait = d.rt.clock.AfterFunc(req.spec.wait, func() { root.Send(self, &claimWaitEnded{req: req}) })
}

// serveClaims hands ready jobs to the waiting claims, oldest first: after
// jobs came, a queue was resumed or a capped queue freed a slot.
func (d *dispatcher) serveClaims(ctx actor.Context) {
	x := &d.ext
	if len(x.waiters) == 0 || len(x.order) == 0 && d.flow.extJobs == 0 || d.draining {
		return
	}
	x.waiters = slices.DeleteFunc(x.waiters, func(req *claimRequest) bool {
		if len(x.order) == 0 && d.flow.extJobs == 0 {
			return false
		}
		if n := d.takeExternal(ctx, req); n > 0 {
			d.answerClaim(req, n)
			return true
		}
		return false
	})
}

// endClaimWait answers a waiting claim empty.
func (d *dispatcher) endClaimWait(req *claimRequest) {
	if req.answered {
		return
	}
	d.ext.waiters = slices.DeleteFunc(d.ext.waiters, func(r *claimRequest) bool { return r == req })
	d.answerClaim(req, 0)
}

// drainExternal answers the waiting claims empty and hands back the jobs
// external workers run: a stop does not wait for them.
func (d *dispatcher) drainExternal(ctx actor.Context) {
	for _, req := range d.ext.waiters {
		d.answerClaim(req, 0)
	}
	d.ext.waiters = nil
	for id, l := range d.live {
		if l.external {
			ctx.Send(d.rt.supervisor, &toJob{id: id, msg: &externalHandBack{}})
		}
	}
}

// receiveExternal handles the worker protocol's messages to the
// dispatcher of a local source.
func (l *localSource) receiveExternal(d *dispatcher, ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *claimRequest:
		d.claim(ctx, msg)
	case *claimWaitEnded:
		d.endClaimWait(msg.req)
	case *claimGone:
		d.endClaimWait(msg.req)
	case *countWaiters:
		ctx.Respond(len(d.ext.waiters))
	}
}

// claimExternal sends the claim to the dispatcher; the wait returns its
// jobs once their actors stored their start. Jobs taken for a caller whose
// ctx ended meanwhile are handed back at once.
func (l *localSource) claimExternal(spec *claimSpec) func(ctx context.Context) ([]ClaimedJob, error) {
	c := l.rt
	req := &claimRequest{spec: spec, reply: make(chan claimAnswer, 1), started: make(chan claimStarted, spec.max)}
	root := c.actors.Root
	root.Send(c.dispatcher, req)
	return func(ctx context.Context) ([]ClaimedJob, error) {
		var ans claimAnswer
		select {
		case ans = <-req.reply:
		case <-ctx.Done():
			// The dispatcher answers either way, at once: with the jobs it
			// took before it heard, or empty.
			root.Send(c.dispatcher, &claimGone{req: req})
			ans = <-req.reply
		}
		if ans.n == 0 {
			// Nothing taken: a wait that ctx cut short ends empty too.
			return nil, nil
		}
		// In the claim's order, whichever actor reports first.
		slots := make([]claimStarted, ans.n)
		timeout := time.NewTimer(requestTimeoutDefault)
		defer timeout.Stop()
	collect:
		for range ans.n {
			select {
			case s := <-req.started:
				slots[s.index] = s
			case <-timeout.C:
				// Not seen: a job actor that never reported. Its lease ends it.
				c.logger.Error("claimed jobs did not start in time")
				break collect
			}
		}
		jobs := make([]ClaimedJob, 0, ans.n)
		for _, s := range slots {
			if s.ok {
				jobs = append(jobs, s.job)
			}
		}
		if err := ctx.Err(); err != nil {
			for _, j := range jobs {
				root.Send(c.supervisor, &toJob{id: j.Job.ID, msg: &externalHandBack{token: spec.token, requeue: true}})
			}
			return nil, fmt.Errorf("claim jobs: %w (%d jobs taken meanwhile handed back)", err, len(jobs))
		}
		return jobs, nil
	}
}

// externalCall is the worker protocol reaching a job's actor: a
// heartbeat, or an outcome (end). The actor answers on reply, once.
type externalCall struct {
	id        uuid.UUID
	token     string
	heartbeat bool
	progress  *domain.Progress
	end       attemptEnd
	reply     chan externalReply
}

type externalReply struct {
	job   *domain.Job
	state LeaseState
	err   error
}

// call passes msg to the job's actor and waits for its answer.
func (l *localSource) call(ctx context.Context, msg *externalCall) externalReply {
	l.rt.actors.Root.Send(l.rt.supervisor, msg)
	return l.wait(ctx, msg)
}

// wait waits for the answer to msg; a job without an actor is not running
// for anyone (ErrLeaseLost), or does not exist (ErrNotFound).
func (l *localSource) wait(ctx context.Context, msg *externalCall) externalReply {
	c := l.rt
	timeout := time.NewTimer(requestTimeout(ctx))
	defer timeout.Stop()
	var r externalReply
	select {
	case r = <-msg.reply:
	case <-ctx.Done():
		return externalReply{err: fmt.Errorf("job %s: %w", msg.id, ctx.Err())}
	case <-timeout.C:
		return externalReply{err: fmt.Errorf("job %s: %w: its actor did not answer", msg.id, domain.ErrUnavailable)}
	}
	if errors.Is(r.err, errJobGone) {
		if _, err := c.store.Get(ctx, msg.id); err != nil {
			return externalReply{err: fmt.Errorf("job %s: %w", msg.id, err)}
		}
		r.err = leaseLostError(msg.id)
	}
	return r
}

func leaseLostError(id uuid.UUID) error {
	return fmt.Errorf("job %s: %w: the token does not hold its running attempt", id, domain.ErrLeaseLost)
}

func (l *localSource) heartbeat(ctx context.Context, id uuid.UUID, token string, progress *domain.Progress) (LeaseState, error) {
	r := l.call(ctx, &externalCall{id: id, token: token, heartbeat: true, progress: progress, reply: make(chan externalReply, 1)})
	return r.state, r.err
}

// reportOutcomes sends every outcome to its job's actor at once, so that
// their writes share the store's commits, then collects the answers.
func (l *localSource) reportOutcomes(ctx context.Context, ends []*externalEnd, results []OutcomeResult) {
	calls := make([]*externalCall, len(ends))
	for i, e := range ends {
		if e == nil {
			continue
		}
		calls[i] = &externalCall{id: e.id, token: e.token, end: e.end, reply: make(chan externalReply, 1)}
		l.rt.actors.Root.Send(l.rt.supervisor, calls[i])
	}
	for i, msg := range calls {
		if msg == nil {
			continue
		}
		r := l.wait(ctx, msg)
		results[i] = OutcomeResult{Job: r.job, Err: r.err}
	}
}
