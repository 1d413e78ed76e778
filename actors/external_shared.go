package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"

	"github.com/troupe-go/troupe/domain"
)

// The worker protocol on a shared store: the lease of an external claim
// lives in the store, owned by domain.ExternalOwner(token), so a worker
// may claim through one node and heartbeat or report through any other.
// A lease that lapses is rescued like a dead node's (leaseRescuer).

// roomRequest asks the dispatcher of a shared source how many more jobs
// of each capped queue may start here; the reply is *roomReply.
type (
	roomRequest struct{}
	roomReply   struct{ room map[string]int }
)

// externalShared is the shared source's side of the worker protocol.
type externalShared struct {
	// wake is signalled when jobs may have become ready (a notice, a
	// submission here, the poll), for the claims waiting for one.
	wake signal
	// stopped ends the waits of claims at a stop.
	stopped  chan struct{}
	stopOnce sync.Once
	// tally counts the external leases this node issued, for its queue
	// caps: until their outcome is applied here, or their lease (as last
	// extended here) ends.
	tally externalTally
}

// signal wakes every goroutine waiting on it at the time.
type signal struct {
	mu sync.Mutex
	ch chan struct{}
}

func (s *signal) wait() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch == nil {
		s.ch = make(chan struct{})
	}
	return s.ch
}

func (s *signal) notify() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch != nil {
		close(s.ch)
		s.ch = nil
	}
}

type externalTally struct {
	mu     sync.Mutex
	leases map[uuid.UUID]talliedLease
}

type talliedLease struct {
	queue     string
	expiresAt time.Time
}

func (t *externalTally) add(id uuid.UUID, queue string, expiresAt time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.leases == nil {
		t.leases = make(map[uuid.UUID]talliedLease)
	}
	t.leases[id] = talliedLease{queue: queue, expiresAt: expiresAt}
}

func (t *externalTally) extend(id uuid.UUID, expiresAt time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if l, ok := t.leases[id]; ok {
		l.expiresAt = expiresAt
		t.leases[id] = l
	}
}

func (t *externalTally) remove(id uuid.UUID) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.leases, id)
}

// subtract takes the live leases from room, forgetting the expired ones.
func (t *externalTally) subtract(room map[string]int, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for id, l := range t.leases {
		if !l.expiresAt.After(now) {
			delete(t.leases, id)
			continue
		}
		if r, ok := room[l.queue]; ok {
			room[l.queue] = max(r-1, 0)
		}
	}
}

// room is how many more jobs of each capped queue may start through this
// node: its cap less the Go jobs running here and the external leases it
// issued; nil when no queue is capped.
func (s *sharedSource) room(ctx context.Context) (map[string]int, error) {
	c := s.rt
	if len(c.cfg.QueueLimits) == 0 {
		return nil, nil
	}
	res, err := c.actors.Root.RequestFuture(c.dispatcher, &roomRequest{}, requestTimeout(ctx)).Result()
	if err != nil {
		return nil, fmt.Errorf("claim jobs: %w: %w", domain.ErrUnavailable, err)
	}
	r, ok := res.(*roomReply)
	if !ok {
		return nil, fmt.Errorf("claim jobs: %w: the dispatcher is stopping", domain.ErrUnavailable)
	}
	return r.room, nil
}

// claimExternal claims from the store; with nothing ready it claims again
// at each wake-up until the claim's wait ends.
func (s *sharedSource) claimExternal(spec *claimSpec) func(ctx context.Context) ([]ClaimedJob, error) {
	c := s.rt
	return func(ctx context.Context) ([]ClaimedJob, error) {
		deadline := c.clock.Now().Add(spec.wait)
		for {
			wake := s.ext.wake.wait()
			jobs, err := s.claimOnce(ctx, spec)
			if err != nil || len(jobs) > 0 {
				return jobs, err
			}
			left := deadline.Sub(c.clock.Now())
			if left <= 0 {
				return nil, nil
			}
			ended := make(chan struct{})
			stop := c.clock.AfterFunc(left, func() { close(ended) })
			select {
			case <-wake:
				stop()
			case <-ended:
				return nil, nil
			case <-s.ext.stopped:
				stop()
				return nil, nil
			case <-ctx.Done():
				// Nothing taken: a wait that ctx cut short ends empty too.
				stop()
				return nil, nil
			}
		}
	}
}

// claimOnce claims what is ready now. The store call does not end with
// ctx, so that its answer is known: jobs it took for a caller that left
// meanwhile are handed back at once.
func (s *sharedSource) claimOnce(ctx context.Context, spec *claimSpec) ([]ClaimedJob, error) {
	c := s.rt
	room, err := s.room(ctx)
	if err != nil {
		return nil, err
	}
	if room != nil {
		s.ext.tally.subtract(room, c.clock.Now())
	}
	owner := domain.ExternalOwner(spec.token)
	expiresAt := c.clock.Now().Add(spec.lease)
	jobs, err := s.queue.ClaimJobs(context.WithoutCancel(ctx), owner, domain.ClaimRequest{
		Limit: spec.max, Lease: spec.lease, Types: spec.types, Queues: spec.queues, Room: room,
	})
	if err != nil {
		return nil, fmt.Errorf("claim jobs: %w", err)
	}
	if err := ctx.Err(); err != nil {
		handed := 0
		for _, j := range jobs {
			next := j.Clone()
			if next.HandBack(c.clock.Now()) == nil && s.queue.UpdateOwned(c.storeCtx, owner, next) == nil {
				handed++
			}
		}
		return nil, fmt.Errorf("claim jobs: %w (%d of %d jobs taken meanwhile handed back)", err, handed, len(jobs))
	}
	out := make([]ClaimedJob, len(jobs))
	for i, j := range jobs {
		if room != nil {
			s.ext.tally.add(j.ID, j.Queue, expiresAt)
		}
		c.events.publish(j)
		out[i] = ClaimedJob{Job: j.Clone(), LeaseToken: spec.token, LeaseExpiresAt: expiresAt}
	}
	if len(jobs) > 0 {
		c.logger.Debug("external worker claimed jobs", slog.Int("jobs", len(jobs)), slog.String("worker", spec.worker))
	}
	return out, nil
}

func (s *sharedSource) heartbeat(ctx context.Context, id uuid.UUID, token string, progress *domain.Progress) (LeaseState, error) {
	c := s.rt
	lease, ok := tokenLease(token)
	if !ok {
		// Not a token this runtime issued: it owns nothing.
		if _, err := c.store.Get(ctx, id); err != nil {
			return LeaseState{}, fmt.Errorf("job %s: %w", id, err)
		}
		return LeaseState{}, leaseLostError(id)
	}
	st, err := s.queue.Heartbeat(ctx, domain.ExternalOwner(token), id, lease, progress)
	if err != nil {
		if errors.Is(err, domain.ErrLeaseLost) {
			return LeaseState{}, leaseLostError(id)
		}
		return LeaseState{}, fmt.Errorf("job %s: heartbeat: %w", id, err)
	}
	s.ext.tally.extend(id, c.clock.Now().Add(lease))
	if progress != nil {
		// Every progress write is published; the event renders the job.
		if job, err := c.store.Get(ctx, id); err == nil {
			c.events.publish(job)
		}
	}
	return st, nil
}

// reportOutcomes applies the outcomes one by one.
func (s *sharedSource) reportOutcomes(ctx context.Context, ends []*externalEnd, results []OutcomeResult) {
	for i, e := range ends {
		if e == nil {
			continue
		}
		job, err := s.applyOutcome(ctx, e)
		results[i] = OutcomeResult{Job: job, Err: err}
	}
}

// applyOutcome stores an outcome only while the token's owner still runs
// the job, and then counts and announces it here, on the node that
// applied it.
func (s *sharedSource) applyOutcome(ctx context.Context, e *externalEnd) (*domain.Job, error) {
	c := s.rt
	owner := domain.ExternalOwner(e.token)
	job, err := c.store.Get(ctx, e.id)
	if err != nil {
		return nil, fmt.Errorf("job %s: %w", e.id, err)
	}
	if job.Status != domain.StatusRunning {
		return nil, leaseLostError(e.id)
	}
	end := e.end
	if end.err != nil {
		// A failure of a job a user canceled cancels it.
		ids, err := s.queue.CancelRequests(ctx, owner)
		if err != nil {
			return nil, fmt.Errorf("job %s: %w", e.id, err)
		}
		end.canceled = slices.Contains(ids, e.id)
	}
	now := c.clock.Now()
	next, err := c.attemptOutcome(job, end, now)
	if err != nil {
		return nil, fmt.Errorf("job %s: %w", e.id, err)
	}
	if err := s.queue.UpdateOwned(ctx, owner, next); err != nil {
		if errors.Is(err, domain.ErrLeaseLost) {
			return nil, leaseLostError(e.id)
		}
		return nil, fmt.Errorf("job %s: store the outcome: %w", e.id, err)
	}
	s.ext.tally.remove(e.id)
	c.metrics.AttemptFinished(job, now.Sub(job.StartedAt))
	c.events.publish(next)
	switch next.Status {
	case domain.StatusPending:
		c.metrics.JobRetried(next)
		// The store told every node; this one need not wait for it.
		c.actors.Root.Send(c.dispatcher, &claimNow{})
	case domain.StatusScheduled:
		c.metrics.JobRetried(next)
		c.scheduler.notify(next.RunAt)
	default:
		c.metrics.JobFinished(next)
	}
	return next.Clone(), nil
}

// receiveExternal handles the worker protocol's messages to the
// dispatcher of a shared source.
func (s *sharedSource) receiveExternal(d *dispatcher, ctx actor.Context) {
	if _, ok := ctx.Message().(*roomRequest); ok {
		ctx.Respond(&roomReply{room: d.roomByQueue()})
	}
}
