package actors

import (
	"context"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"

	"github.com/troupe-go/troupe/domain"
)

// jobSource is where the dispatcher's ready jobs come from and where the
// job actors' writes go. New chooses one for the life of the System:
//
//   - localSource: one node owns the store. Pending jobs wait in the
//     dispatcher's ready queues, and snapshots are plain domain.Store
//     updates.
//   - sharedSource: several nodes share a domain.SharedQueue. The queue is
//     the store: idle workers claim jobs from it, each claimed job is
//     leased, snapshots are owned updates, and background services keep
//     the node in step with the store.
//
// In both modes a job due later (submitted for later, or waiting out a
// retry's backoff) is scheduled in the store and nothing else: the
// System's scheduler promotes it when due and hands it to promoted.
//
// Everything that differs between the two modes is a method here, so
// callers never ask which mode they are in. Background work (cron,
// retention) plugs in as services started by start.
//
// Methods whose doc says "in the dispatcher's mailbox" are called only from
// the dispatcher's Receive and may touch its state freely; the others may
// be called from any goroutine.
type jobSource interface {
	// recover runs in Start before any worker exists and returns how many
	// jobs it queued again. It settles what a previous run of this node
	// left unfinished; ctx bounds it.
	recover(ctx context.Context) (int, error)
	// start starts the source's background services once the actors run;
	// they run until stop (or until ctx ends).
	start(ctx context.Context) error
	// stop stops them; Stop calls it after the last attempt's outcome is
	// written, before the actors stop.
	stop()
	// startedAttrs describes the source in the log line of a start.
	startedAttrs(recovered int) []any

	// submit stores new, valid jobs in one write (domain.Store.Insert:
	// all but those whose unique key is held) and makes them available to
	// the workers. It returns the caller's copies, or an error carrying the
	// first job's ID; the System is running.
	submit(ctx context.Context, now time.Time, jobs []*domain.Job) ([]SubmitResult, error)
	// cancel cancels job id wherever it is: see System.Cancel.
	cancel(ctx context.Context, id uuid.UUID) (*domain.Job, error)

	// take hands ready jobs to the dispatcher's idle workers (through
	// dispatcher.run), for as long as both last and the dispatcher is not
	// draining. In the dispatcher's mailbox.
	take(d *dispatcher, ctx actor.Context)
	// receive handles the messages the source sends its dispatcher and
	// the dispatcher's *actor.Stopping. In the dispatcher's mailbox.
	receive(d *dispatcher, ctx actor.Context)
	// drain answers the sender of ctx's message with *drained once no job
	// taken for a worker is still on its way to the dispatcher: Stop then
	// counts every attempt. In the dispatcher's mailbox.
	drain(d *dispatcher, ctx actor.Context)

	// write stores a job actor's snapshot of a job this node runs or holds;
	// an error wrapping domain.ErrLeaseLost means another node owns the job
	// now, and the snapshot must be dropped.
	write(next *domain.Job) error
	// requeuesHere reports whether a job pending again after an attempt
	// here (a retry due at once) goes back to this node's ready queue
	// (true), or waits in the store for any node to claim (false).
	requeuesHere() bool
	// promoted hands on jobs the scheduler made pending. Called from the
	// scheduler's goroutine.
	promoted(jobs []*domain.Job)
	// promotionsSent follows the last promoted call of a scheduler round.
	promotionsSent()

	// The worker protocol (external.go). claimExternal sends a valid
	// claim on its way and returns the wait for its jobs; the System
	// calls it while running, under its read lock, so that a stop finds
	// the claim.
	claimExternal(spec *claimSpec) func(ctx context.Context) ([]ClaimedJob, error)
	// heartbeat extends the lease of a job an external worker runs.
	heartbeat(ctx context.Context, id uuid.UUID, token string, progress *domain.Progress) (LeaseState, error)
	// reportOutcomes applies ends (nil entries were refused already: their
	// results hold the error) and fills in results.
	reportOutcomes(ctx context.Context, ends []*externalEnd, results []OutcomeResult)

	// Flow control (domain.QueueSettings). settingsChanged tells this
	// node's runtime that a queue's settings changed; the System stored
	// them already. flowWaiting sets WaitingFor on the pending jobs among
	// jobs that flow settings hold back (the others keep it empty), and
	// waitingCounts counts those jobs by queue and reason. Any goroutine.
	settingsChanged(name string, settings domain.QueueSettings)
	flowWaiting(ctx context.Context, jobs []*domain.Job) error
	waitingCounts(ctx context.Context) ([]domain.WaitingCount, error)
}

// newJobSource chooses the source of a System at New.
func newJobSource(c *core, shared domain.SharedQueue) jobSource {
	if shared != nil {
		return &sharedSource{rt: c, queue: shared, ext: externalShared{stopped: make(chan struct{})}}
	}
	return &localSource{rt: c}
}

// created counts and announces the stored new jobs among jobs (those
// without an existing job holding their key) and returns the caller's
// results, and the stored jobs.
func (c *core) created(jobs, existing []*domain.Job) ([]SubmitResult, []*domain.Job) {
	out := make([]SubmitResult, len(jobs))
	stored := jobs
	if len(existing) > 0 {
		stored = make([]*domain.Job, 0, len(jobs))
	}
	for i, j := range jobs {
		if len(existing) > 0 && existing[i] != nil {
			out[i] = SubmitResult{Job: existing[i]}
			continue
		}
		if len(existing) > 0 {
			stored = append(stored, j)
		}
		c.metrics.JobCreated(j)
		c.events.publish(j)
		out[i] = SubmitResult{Job: j.Clone(), Created: true}
	}
	return out, stored
}

// splitScheduled returns the pending jobs among stored, and the earliest
// RunAt of the scheduled ones (zero if none). It reuses stored when every
// job is pending, the usual case.
func splitScheduled(stored []*domain.Job) (pending []*domain.Job, earliest time.Time) {
	scheduled := 0
	for _, j := range stored {
		if j.Status == domain.StatusScheduled {
			scheduled++
			if earliest.IsZero() || j.RunAt.Before(earliest) {
				earliest = j.RunAt
			}
		}
	}
	if scheduled == 0 {
		return stored, earliest
	}
	pending = make([]*domain.Job, 0, len(stored)-scheduled)
	for _, j := range stored {
		if j.Status != domain.StatusScheduled {
			pending = append(pending, j)
		}
	}
	return pending, earliest
}

// startedLog is the log line of a start, with the source's attributes.
func (c *core) startedLog(recovered int) {
	attrs := append([]any{slog.Int("workers", c.cfg.Workers)}, c.source.startedAttrs(recovered)...)
	c.logger.Info("job system started", attrs...)
}
