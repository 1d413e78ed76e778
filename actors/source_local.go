package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"

	"github.com/troupe-go/troupe/domain"
)

// localSource is the job source of a node that owns its store: the ready
// queues live in the dispatcher, bounded together by Config.QueueSize.
type localSource struct {
	rt *core
	// settled names the queues with flow settings: without any, no job
	// waits for them and nobody need ask the dispatcher.
	settledMu sync.Mutex
	settled   map[string]struct{}
}

// recoveryBatch is how many recovered jobs go to the store and to the
// dispatcher at once: large enough to amortize a write, small enough that
// recovery of a big backlog streams.
const recoveryBatch = 1000

// recover tells the dispatcher which queues are paused, queues every
// pending job and settles every running one: a job found running was
// interrupted by a crash, so its attempt counts and it follows the retry
// policy. Scheduled jobs stay in the store, untouched and unread: the
// scheduler promotes them when due.
func (l *localSource) recover(ctx context.Context) (int, error) {
	c := l.rt
	queues, err := c.store.Queues(ctx)
	if err != nil {
		return 0, fmt.Errorf("read queues: %w", err)
	}
	for _, q := range queues {
		if q.Paused {
			// Sent before any job, so none of the queue's starts.
			c.actors.Root.Send(c.dispatcher, &queuePauseChanged{name: q.Name, paused: true})
		}
		if !q.Settings.IsZero() {
			l.noteSettings(q.Name, q.Settings)
			// Sent before any job too; the buckets start empty.
			msg := &flowSettingsChanged{name: q.Name, settings: q.Settings, restart: true}
			if q.Settings.Ordered {
				if msg.holds, err = l.retryHolds(ctx, q.Name); err != nil {
					return 0, err
				}
			}
			c.actors.Root.Send(c.dispatcher, msg)
		}
	}
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
				} else {
					c.metrics.JobRetried(j)
				}
				c.logger.Warn("job was running when the process stopped; its attempt counts",
					slog.String("jobID", j.ID.String()), slog.String("type", string(j.Type)),
					slog.Int("attempt", j.Attempts), slog.String("status", j.Status.String()))
			}
			if held := retryHeld(interrupted); len(held) > 0 {
				c.actors.Root.Send(c.dispatcher, &flowHeld{jobs: held})
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
	err = c.store.Scan(ctx, f, func(j *domain.Job) error {
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

// submit reserves queue slots for the jobs due now, stores the jobs and
// queues those; the scheduler hears of the others.
func (l *localSource) submit(ctx context.Context, now time.Time, jobs []*domain.Job) ([]SubmitResult, error) {
	c := l.rt
	var due int64
	for _, j := range jobs {
		if j.Status == domain.StatusPending {
			due++
		}
	}
	if due > 0 && c.queued.Add(due) > int64(c.cfg.QueueSize) {
		c.queued.Add(-due)
		return nil, fmt.Errorf("submit: %w (%d jobs waiting)", domain.ErrQueueFull, c.cfg.QueueSize)
	}
	// The write does not end with ctx. A store may commit a write whose
	// caller stopped waiting and answer only that ctx ended; the jobs would
	// then be stored but never queued, pending until a restart. Waiting for
	// the store's answer means that an error here always means not stored,
	// unless the store said the jobs were committed first (queued below).
	var (
		out      []SubmitResult
		enqueued bool
	)
	queue := func(existing []*domain.Job) {
		enqueued = true
		var stored []*domain.Job
		out, stored = c.created(jobs, existing)
		pending, earliest := splitScheduled(stored)
		c.queued.Add(int64(len(pending)) - due)
		if len(pending) > 0 {
			c.actors.Root.Send(c.dispatcher, &enqueueJobs{jobs: pending})
		}
		if !earliest.IsZero() {
			c.scheduler.notify(earliest)
		}
	}
	// A store that commits before it syncs lets the jobs start while it
	// syncs: the fsync no longer delays the start.
	wctx := domain.WithInsertTrace(context.WithoutCancel(ctx), &domain.InsertTrace{Committed: queue})
	existing, err := c.store.Insert(wctx, now, jobs)
	if err != nil {
		if !enqueued {
			c.queued.Add(-due)
		}
		return nil, fmt.Errorf("submit: store job %s: %w", jobs[0].ID, err)
	}
	if !enqueued {
		queue(existing)
	}
	return out, nil
}

// promoted queues the jobs the scheduler made pending. They are stored, so
// they are queued even past QueueSize: refusing them would strand them.
func (l *localSource) promoted(jobs []*domain.Job) {
	c := l.rt
	c.queued.Add(int64(len(jobs)))
	c.actors.Root.Send(c.dispatcher, &enqueueJobs{jobs: jobs})
}

func (l *localSource) promotionsSent() {
	l.rt.actors.Root.Send(l.rt.dispatcher, &promotionRound{})
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

// take pops the ready queues, a queue at a time, skipping jobs canceled
// while queued.
func (l *localSource) take(d *dispatcher, ctx actor.Context) {
	for !d.draining && len(d.idle) > 0 {
		job, ok := d.nextReady()
		if !ok {
			return
		}
		if _, ok := d.canceled[job.ID]; ok {
			delete(d.canceled, job.ID)
			continue
		}
		d.run(ctx, job, false)
	}
}

// receive handles the worker protocol's claims.
func (l *localSource) receive(d *dispatcher, ctx actor.Context) { l.receiveExternal(d, ctx) }

// drain answers at once: taking a job from the ready queue is immediate.
// External workers' attempts are handed back without waiting for them.
func (l *localSource) drain(d *dispatcher, ctx actor.Context) {
	d.drainExternal(ctx)
	ctx.Respond(&drained{})
}

func (l *localSource) write(next *domain.Job) error {
	return l.rt.store.Update(l.rt.storeCtx, next)
}

func (l *localSource) requeuesHere() bool { return true }
