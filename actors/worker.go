package actors

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/troupe-go/troupe/domain"
)

// Messages a worker receives.
type (
	// executeJob hands a worker an attempt to run. ctx is canceled by the
	// owner (the job's actor) on a user's cancel or a stop.
	executeJob struct {
		gen   uint64 // the owner's activation
		job   *domain.Job
		ctx   context.Context
		owner *actor.PID
		// reporter is the attempt's domain.AttemptReporter, in ctx.
		reporter *attemptReporter
	}
	// releaseWorker frees a worker whose assigned job could not start.
	releaseWorker struct{}
)

// worker is one slot of the fixed pool. It asks the dispatcher for work
// when it is free and runs each handler on a goroutine of its own, so that
// its mailbox stays responsive and a slow handler blocks nothing but its
// slot. The goroutine lives as long as the worker: a new one per job would
// grow its stack again each time. A panicking handler costs one attempt,
// never the worker.
type worker struct {
	rt   *core
	id   int
	jobs chan *executeJob
}

// Receive implements actor.Actor.
func (w *worker) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		if w.jobs == nil {
			// The dispatcher assigns one job at a time, so one slot is room enough.
			w.jobs = make(chan *executeJob, 1)
			go w.loop(ctx.Self(), w.jobs)
		}
		ctx.Send(w.rt.dispatcher, &requestWork{worker: ctx.Self()})
	case *releaseWorker:
		ctx.Send(w.rt.dispatcher, &requestWork{worker: ctx.Self()})
	case *executeJob:
		w.rt.busy.Add(1)
		w.jobs <- msg
	case *actor.Stopping:
		// The loop ends once the handler it runs, if any, returns.
		close(w.jobs)
	}
}

func (w *worker) loop(self *actor.PID, jobs <-chan *executeJob) {
	for msg := range jobs {
		w.run(self, msg)
	}
}

func (w *worker) run(self *actor.PID, msg *executeJob) {
	start := w.rt.clock.Now()
	err := w.execute(msg)
	result, resultErr := msg.reporter.finish()
	if resultErr != nil {
		// The handler was told its result would not be kept; whatever it
		// returned, the attempt fails (and may retry).
		err = resultErr
	}
	took := w.rt.clock.Now().Sub(start)
	if w.rt.logger.Enabled(msg.ctx, slog.LevelDebug) {
		// With "handler running", this line records every execution, which
		// is how a run of several nodes can be checked for overlaps.
		w.rt.logger.LogAttrs(msg.ctx, slog.LevelDebug, "handler returned",
			slog.String("jobID", msg.job.ID.String()), slog.String("type", string(msg.job.Type)),
			slog.Int("attempt", msg.job.Attempts), slog.Int("workerID", w.id),
			slog.String("node", w.rt.cfg.Node), slog.Duration("took", took), slog.Any("error", err))
	}
	w.rt.busy.Add(-1)
	root := w.rt.actors.Root
	root.Send(msg.owner, &attemptDone{gen: msg.gen, err: err, took: took, result: result})
	root.Send(w.rt.dispatcher, &requestWork{worker: self})
}

// execute runs the handler, turning a panic into the attempt's error.
func (w *worker) execute(msg *executeJob) (err error) {
	job := msg.job
	entry, ok := w.rt.registry.lookup(job.Type)
	if !ok || entry.handler == nil {
		// Possible for a job stored before its handler was removed: no
		// attempt can ever succeed.
		return domain.Permanent(w.rt.registry.unknownTypeError(job.Type))
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
			w.rt.logger.Error("handler panicked",
				slog.String("jobID", job.ID.String()), slog.String("type", string(job.Type)),
				slog.Int("attempt", job.Attempts), slog.Int("workerID", w.id),
				slog.Any("panic", r), slog.String("stack", string(debug.Stack())))
		}
	}()
	if w.rt.logger.Enabled(msg.ctx, slog.LevelDebug) {
		w.rt.logger.LogAttrs(msg.ctx, slog.LevelDebug, "handler running",
			slog.String("jobID", job.ID.String()), slog.String("type", string(job.Type)),
			slog.Int("attempt", job.Attempts), slog.Int("workerID", w.id), slog.String("node", w.rt.cfg.Node))
	}
	return entry.handler.Execute(msg.ctx, job.Payload)
}
