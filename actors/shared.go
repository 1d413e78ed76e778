package actors

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"

	"github.com/troupe-go/troupe/domain"
)

// Messages of the shared-queue mode, received by the dispatcher.
type (
	// claimNow asks the dispatcher to claim jobs for its idle workers.
	claimNow struct{}
	// queueNotice carries a notice of the shared store.
	queueNotice struct{ notice domain.QueueNotice }
	// claimed is the result of a claim.
	claimed struct {
		jobs  []*domain.Job
		err   error
		limit int
	}
	// renewLeases asks the dispatcher to renew the leases of its running jobs.
	renewLeases struct{}
	// leasesRenewed is the result of a renewal: the jobs whose lease was
	// not renewed, and those whose cancel was requested. leases holds the
	// activation of each job the renewal was for.
	leasesRenewed struct {
		lost, canceled []uuid.UUID
		leases         map[uuid.UUID]uint64
		err            error
	}
	// leaseLost tells a job actor that a renewal found its job no longer
	// running on this node: another node took it back, unless this attempt's
	// outcome was what ended it.
	leaseLost struct{}
	// flowWake is the answer of FlowWakeAfter: how long until a rate lets
	// a waiting job start.
	flowWake struct {
		after time.Duration
		err   error
	}
	// flowWakeup is the timer set from a flowWake going off: claim again.
	flowWakeup struct{}
)

// sharedSource is the job source of one node among several sharing a
// domain.SharedQueue: idle workers claim ready jobs from the store, each
// under a lease this node renews, and a job's snapshots are written only
// while this node still owns it. Jobs due later wait in the store, which
// tells every node when they fall due.
type sharedSource struct {
	rt    *core
	queue domain.SharedQueue
	// services keep the node in step with the store: the watch on its
	// notices, the fallback poll, lease renewal and the rescuer.
	services serviceGroup

	// The fields below belong to the dispatcher's mailbox.

	// claiming says a claim is on its way, and claimAgain that more work
	// may be waiting once it returns. Every live job of the dispatcher is
	// one this node claimed and runs, so live is also the set of leases
	// to renew.
	claiming    bool
	claimAgain  bool
	renewing    bool
	drainWaiter *actor.PID
	// flowWaking says a FlowWakeAfter call or the timer it set is pending
	// (at most one at a time); stopFlowTimer stops that timer.
	flowWaking    bool
	stopFlowTimer func() bool

	// ext is the worker protocol's state (external_shared.go).
	ext externalShared
}

// recover has nothing to do: a job a dead node left running is rescued by
// whichever node's rescuer finds its lease expired.
func (s *sharedSource) recover(context.Context) (int, error) { return 0, nil }

// start starts the services, which only call the store and send messages
// to the dispatcher.
func (s *sharedSource) start(ctx context.Context) error {
	c := s.rt
	root, dispatcher := c.actors.Root, c.dispatcher
	send := func(msg any) func() { return func() { root.Send(dispatcher, msg) } }
	s.services = serviceGroup{
		&noticeWatcher{queue: s.queue, clock: c.clock, logger: c.logger,
			deliver: func(n domain.QueueNotice) { root.Send(dispatcher, &queueNotice{notice: n}) }},
		&claimPoller{interval: c.cfg.PollInterval, clock: c.clock, poll: send(&claimNow{})},
		&leaseRenewer{interval: c.cfg.LeaseDuration / 3, clock: c.clock, renew: send(&renewLeases{})},
		&leaseRescuer{queue: s.queue, interval: c.cfg.RescueInterval, clock: c.clock, logger: c.logger},
	}
	return s.services.start(ctx)
}

func (s *sharedSource) stop() { s.services.stop() }

func (s *sharedSource) startedAttrs(int) []any {
	return []any{slog.String("node", s.rt.cfg.Node), slog.Bool("shared", true)}
}

// submit stores the jobs in the shared queue: no local bound, and any node
// may run them. A job stored there is queued whatever happens to ctx:
// every node claims it from the store. Waking this node's dispatcher saves
// a notice's trip.
func (s *sharedSource) submit(ctx context.Context, now time.Time, jobs []*domain.Job) ([]SubmitResult, error) {
	c := s.rt
	existing, err := c.store.Insert(ctx, now, jobs)
	if err != nil {
		return nil, fmt.Errorf("submit: store job %s: %w", jobs[0].ID, err)
	}
	out, stored := c.created(jobs, existing)
	pending, earliest := splitScheduled(stored)
	if len(pending) > 0 {
		c.actors.Root.Send(c.dispatcher, &claimNow{})
	}
	if !earliest.IsZero() {
		c.scheduler.notify(earliest)
	}
	return out, nil
}

// promoted claims: the store told every node of the jobs, and whichever
// has a free worker first runs them.
func (s *sharedSource) promoted([]*domain.Job) {
	s.rt.actors.Root.Send(s.rt.dispatcher, &claimNow{})
}

func (s *sharedSource) promotionsSent() {}

// cancel lets the store decide, whatever node runs the job; a running
// job's node hears of it through its watch, and its job actor counts the
// job finished when the handler returns. A scheduled or pending job is
// canceled by the store at once, so it is counted here: the job as read
// before says whether this cancel ended it (a job canceled already is
// not counted again).
func (s *sharedSource) cancel(ctx context.Context, id uuid.UUID) (*domain.Job, error) {
	before, err := s.rt.store.Get(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("cancel job %s: %w", id, err)
	}
	job, err := s.queue.CancelJob(ctx, id)
	if err != nil {
		return nil, err
	}
	if (before.Status == domain.StatusScheduled || before.Status == domain.StatusPending) && job.Status == domain.StatusCanceled {
		s.rt.metrics.JobFinished(job)
		s.rt.events.publish(job)
	}
	return job, nil
}

func (s *sharedSource) take(d *dispatcher, ctx actor.Context) { s.claim(d, ctx) }

func (s *sharedSource) receive(d *dispatcher, ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *claimNow:
		s.ext.wake.notify()
		s.claim(d, ctx)
	case *claimed:
		s.claimed(d, ctx, msg)
	case *queueNotice:
		s.notice(d, ctx, msg.notice)
	case *renewLeases:
		s.renewLeases(d, ctx)
	case *leasesRenewed:
		s.leasesRenewed(d, ctx, msg)
	case *flowWake:
		s.flowWake(d, msg)
	case *flowWakeup:
		s.flowWaking, s.stopFlowTimer = false, nil
		s.claim(d, ctx)
	default:
		s.receiveExternal(d, ctx)
	}
}

// drain waits for a claim on its way: claimed jobs are already running in
// the store, so they must be activated, and so counted, before Stop waits
// for attempts.
func (s *sharedSource) drain(_ *dispatcher, ctx actor.Context) {
	// Claims waiting for jobs return empty; external leases live on in the
	// store, so there is nothing to hand back.
	s.ext.stopOnce.Do(func() { close(s.ext.stopped) })
	if s.stopFlowTimer != nil {
		s.stopFlowTimer()
		s.stopFlowTimer = nil
	}
	if s.claiming {
		s.drainWaiter = ctx.Sender()
		return
	}
	ctx.Respond(&drained{})
}

// write stores a snapshot only while this node still owns the job, so
// that a node that lost its lease cannot overwrite a job another node
// took back.
func (s *sharedSource) write(next *domain.Job) error {
	return s.queue.UpdateOwned(s.rt.storeCtx, s.rt.cfg.Node, next)
}

// requeuesHere is false: a retry waits in the shared store, which tells
// every node; whichever node is free runs it.
func (s *sharedSource) requeuesHere() bool { return false }

// claim asks the shared store for as many ready jobs as there are idle
// workers, one claim at a time; the store call runs off the mailbox.
func (s *sharedSource) claim(d *dispatcher, ctx actor.Context) {
	if d.draining || len(d.idle) == 0 {
		return
	}
	types := s.rt.registry.handlerTypes()
	if len(types) == 0 {
		// No Go handler: an empty filter would claim every job, to fail
		// it here for want of a handler when another node could run it.
		return
	}
	if s.claiming {
		s.claimAgain = true
		return
	}
	s.claiming, s.claimAgain = true, false
	rt, queue, self, limit, room := s.rt, s.queue, ctx.Self(), len(d.idle), d.roomByQueue()
	if room != nil {
		// External leases issued here count against the caps too.
		s.ext.tally.subtract(room, rt.clock.Now())
	}
	go func() {
		jobs, err := queue.ClaimJobs(rt.storeCtx, rt.cfg.Node, domain.ClaimRequest{
			Limit: limit, Lease: rt.cfg.LeaseDuration, Types: types, Room: room,
		})
		rt.actors.Root.Send(self, &claimed{jobs: jobs, err: err, limit: limit})
	}()
}

func (s *sharedSource) claimed(d *dispatcher, ctx actor.Context, msg *claimed) {
	s.claiming = false
	if msg.err != nil {
		s.rt.logger.Error("claiming jobs failed", slog.Any("error", msg.err))
	}
	for _, job := range msg.jobs {
		// A claim never asks for more jobs than there were idle workers, and
		// only the dispatcher takes workers off the idle stack.
		d.run(ctx, job, true)
	}
	if s.drainWaiter != nil {
		ctx.Send(s.drainWaiter, &drained{})
		s.drainWaiter = nil
		return
	}
	// A full claim suggests more jobs are ready.
	if msg.err == nil && (s.claimAgain || len(msg.jobs) == msg.limit) {
		s.claim(d, ctx)
		return
	}
	if msg.err == nil && len(msg.jobs) < msg.limit && !s.flowWaking && !d.draining {
		// Jobs may wait for a rate's next token, which no notice
		// announces: ask when it is due.
		s.flowWaking = true
		rt, queue, self := s.rt, s.queue, ctx.Self()
		go func() {
			after, err := queue.FlowWakeAfter(rt.storeCtx)
			rt.actors.Root.Send(self, &flowWake{after: after, err: err})
		}()
	}
}

// flowWake sets the timer of a claim when a rate's next token is due,
// or at the poll's interval if that comes first: never a busy loop, and
// one timer at most.
func (s *sharedSource) flowWake(d *dispatcher, msg *flowWake) {
	if msg.err != nil {
		s.rt.logger.Error("asking when flow control lets jobs start failed", slog.Any("error", msg.err))
	}
	if msg.err != nil || msg.after <= 0 || s.stopFlowTimer != nil || d.draining {
		s.flowWaking = s.stopFlowTimer != nil
		return
	}
	wait := msg.after
	if p := s.rt.cfg.PollInterval; p > 0 {
		wait = min(wait, p)
	}
	root, dispatcher := s.rt.actors.Root, s.rt.dispatcher
	s.stopFlowTimer = s.rt.clock.AfterFunc(wait, func() { root.Send(dispatcher, &flowWakeup{}) })
}

func (s *sharedSource) notice(d *dispatcher, ctx actor.Context, n domain.QueueNotice) {
	switch n.Kind {
	case domain.NoticeJobsAvailable:
		if n.RunAt.After(s.rt.clock.Now()) {
			// Scheduled on another node: this node's scheduler promotes
			// them when due, if no other node's did first.
			s.rt.scheduler.notify(n.RunAt)
			return
		}
		s.ext.wake.notify()
		s.claim(d, ctx)
	case domain.NoticeCancelRequested:
		if n.Node == s.rt.cfg.Node {
			d.cancelRunning(ctx, n.JobID)
		}
	case domain.NoticeWatching:
		s.ext.wake.notify()
		s.claim(d, ctx)
		s.renewLeases(d, ctx) // also picks up cancels missed while away
	}
}

func (s *sharedSource) renewLeases(d *dispatcher, ctx actor.Context) {
	if s.renewing {
		return
	}
	s.renewing = true
	ids := make([]uuid.UUID, 0, len(d.live))
	leases := make(map[uuid.UUID]uint64, len(d.live))
	for id, l := range d.live {
		ids = append(ids, id)
		leases[id] = l.activation
	}
	rt, queue, self := s.rt, s.queue, ctx.Self()
	go func() {
		msg := leasesRenewed{leases: leases}
		if len(ids) > 0 {
			msg.lost, msg.err = queue.RenewLeases(rt.storeCtx, rt.cfg.Node, ids, rt.cfg.LeaseDuration)
		}
		if msg.err == nil {
			msg.canceled, msg.err = queue.CancelRequests(rt.storeCtx, rt.cfg.Node)
		}
		rt.actors.Root.Send(self, &msg)
	}()
}

func (s *sharedSource) leasesRenewed(d *dispatcher, ctx actor.Context, msg *leasesRenewed) {
	s.renewing = false
	if msg.err != nil {
		s.rt.logger.Error("renewing leases failed", slog.Any("error", msg.err))
	}
	for _, id := range msg.lost {
		// A job not renewed was taken back by another node, or it finished
		// here while the renewal ran: its outcome committed, and its actor
		// has not yet told the dispatcher. Only the actor of the activation
		// that was renewed knows which; a later activation of the job holds
		// a lease of its own.
		if l, ok := d.live[id]; ok && l.activation == msg.leases[id] {
			ctx.Send(s.rt.supervisor, &toJob{id: id, msg: &leaseLost{}})
		}
	}
	for _, id := range msg.canceled {
		d.cancelRunning(ctx, id)
	}
}
