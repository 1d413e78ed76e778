package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"

	"github.com/troupe-go/troupe/domain"
)

// localSource is the job source of a node that owns its store: the ready
// queue lives in the dispatcher, bounded by Config.QueueSize, and a job
// due later waits in its actor's timer.
type localSource struct {
	rt *core
}

// recoveryBatch is how many recovered jobs go to the store and to the
// dispatcher at once: large enough to amortize a write, small enough that
// recovery of a big backlog streams.
const recoveryBatch = 1000

// recover queues every pending job and settles every running one: a job
// found running was interrupted by a crash, so its attempt counts and it
// follows the retry policy.
func (l *localSource) recover(ctx context.Context) (int, error) {
	c := l.rt
	now := c.clock.Now()
	var batch, interrupted []*domain.Job
	total := 0
	flush := func() error {
		if len(interrupted) > 0 {
			if err := c.store.Update(ctx, interrupted...); err != nil {
				return err
			}
			for _, j := range interrupted {
				c.events.publish(j)
				if j.Status == domain.StatusFailed {
					c.metrics.JobFinished(j)
				}
				c.logger.Warn("job was running when the process stopped; its attempt counts",
					slog.String("jobID", j.ID.String()), slog.String("type", string(j.Type)),
					slog.Int("attempt", j.Attempts), slog.String("status", j.Status.String()))
			}
			interrupted = interrupted[:0]
		}
		if len(batch) > 0 {
			c.queued.Add(int64(len(batch)))
			c.actors.Root.Send(c.dispatcher, &enqueueJobs{jobs: batch})
			total += len(batch)
			batch = nil
		}
		return nil
	}
	f := domain.Filter{Statuses: []domain.Status{domain.StatusPending, domain.StatusRunning}}
	err := c.store.Scan(ctx, f, func(j *domain.Job) error {
		if j.Status == domain.StatusRunning {
			if err := j.Recover(now); err != nil {
				return err
			}
			interrupted = append(interrupted, j)
		}
		if j.Status == domain.StatusPending {
			batch = append(batch, j)
		}
		if len(batch)+len(interrupted) >= recoveryBatch {
			return flush()
		}
		return nil
	})
	if err != nil {
		return total, err
	}
	return total, flush()
}

func (l *localSource) start(context.Context) error { return nil }

func (l *localSource) stop() {}

func (l *localSource) startedAttrs(recovered int) []any {
	return []any{slog.Int("recovered", recovered)}
}

// submit reserves queue slots, stores the jobs and queues them.
func (l *localSource) submit(ctx context.Context, now time.Time, jobs []*domain.Job) ([]SubmitResult, error) {
	c := l.rt
	n := int64(len(jobs))
	if c.queued.Add(n) > int64(c.cfg.QueueSize) {
		c.queued.Add(-n)
		return nil, fmt.Errorf("submit: %w (%d jobs waiting)", domain.ErrQueueFull, c.cfg.QueueSize)
	}
	// The write does not end with ctx. A store may commit a write whose
	// caller stopped waiting and answer only that ctx ended; the jobs would
	// then be stored but never queued, pending until a restart. Waiting for
	// the store's answer means that an error here always means not stored.
	existing, err := c.store.Insert(context.WithoutCancel(ctx), now, jobs)
	if err != nil {
		c.queued.Add(-n)
		return nil, fmt.Errorf("submit: store job %s: %w", jobs[0].ID, err)
	}
	out, stored := c.created(jobs, existing)
	c.queued.Add(int64(len(stored)) - n)
	if len(stored) > 0 {
		c.actors.Root.Send(c.dispatcher, &enqueueJobs{jobs: stored})
	}
	return out, nil
}

// cancelAttempts bounds how often Cancel chases a job whose actor stopped
// while the request was on its way; each chase follows a real change of
// owner, so a few always suffice.
const cancelAttempts = 5

// cancel asks the dispatcher, which knows whether the job is queued or
// live and serializes the cancel against dispatching.
func (l *localSource) cancel(ctx context.Context, id uuid.UUID) (*domain.Job, error) {
	c := l.rt
	for range cancelAttempts {
		res, err := c.actors.Root.RequestFuture(c.dispatcher, &cancelJob{id: id}, requestTimeout(ctx)).Result()
		if err != nil {
			// No answer in time: the runtime is overloaded or stopping.
			return nil, fmt.Errorf("cancel job %s: %w: %w", id, domain.ErrUnavailable, err)
		}
		switch r := res.(type) {
		case *cancelReply:
			if errors.Is(r.err, errJobGone) {
				continue
			}
			return r.job, r.err
		case *actor.DeadLetterResponse:
			continue
		}
	}
	return nil, fmt.Errorf("cancel job %s: %w: its owner kept changing; try again", id, domain.ErrUnavailable)
}

// take pops the ready queue, skipping jobs canceled while queued.
func (l *localSource) take(d *dispatcher, ctx actor.Context) {
	for !d.draining && len(d.idle) > 0 {
		job, ok := d.ready.pop()
		if !ok {
			return
		}
		l.rt.queued.Add(-1)
		if _, ok := d.canceled[job.ID]; ok {
			delete(d.canceled, job.ID)
			continue
		}
		d.run(ctx, job, false)
	}
}

// receive has nothing to do: the local source sends the dispatcher only
// the messages every source shares.
func (l *localSource) receive(*dispatcher, actor.Context) {}

// drain answers at once: taking a job from the ready queue is immediate.
func (l *localSource) drain(_ *dispatcher, ctx actor.Context) { ctx.Respond(&drained{}) }

func (l *localSource) write(next *domain.Job) error {
	return l.rt.store.Update(l.rt.storeCtx, next)
}

func (l *localSource) retriesWaitHere() bool { return true }
