package actors

import (
	"context"
	"log/slog"
	"time"

	"github.com/troupe-go/troupe/domain"
)

// The pruner's pace. A batch is one bounded write; the pause between two
// lets job traffic through, so that a backlog of expired jobs is worked
// off without stalling the jobs running meanwhile.
const (
	pruneInterval = 10 * time.Second
	// pruneIntervalMin bounds the interval a short retention asks for.
	pruneIntervalMin = time.Second
	pruneBatch       = 1000
	pruneBatchPause  = 20 * time.Millisecond
	// pruneDuty bounds the share of time a pass spends deleting while a
	// backlog is worked off: the pause after a batch is at least
	// pruneBatchPause, and pruneDuty-1 times as long as the batch took, so
	// that a store slow to delete (and busy with jobs) is given more room.
	pruneDuty = 6
	// pruneBackoffMax bounds the wait after passes the store refused.
	pruneBackoffMax = 5 * time.Minute
)

// prunedStatuses are the terminal statuses the pruner deletes.
var prunedStatuses = [...]domain.Status{domain.StatusCompleted, domain.StatusFailed, domain.StatusCanceled}

// pruner deletes finished jobs once their status's retention has passed,
// and expired idempotency records, on every node: each delete is a
// bounded, idempotent write, so nodes pruning at once only share the work.
type pruner struct {
	serviceLoop
	store     domain.Store
	clock     Clock
	logger    *slog.Logger
	metrics   Metrics
	retention Retention
	interval  time.Duration
	batch     int
	// pause waits between batches. It is on the wall clock: it spaces
	// writes for the store's sake, and a virtual clock must not hold a
	// pass in the middle.
	pause func(ctx context.Context, d time.Duration) bool
}

func newPruner(c *core) *pruner {
	return &pruner{
		store: c.store, clock: c.clock, logger: c.logger, metrics: c.metrics,
		retention: c.cfg.Retention, interval: pruneIntervalFor(c.cfg.Retention),
		batch: pruneBatch, pause: wallPause,
	}
}

// pruneIntervalFor is pruneInterval, or for a retention under a minute a
// third of it (at least pruneIntervalMin), so that jobs outlive their
// retention by a fraction of it at most.
func pruneIntervalFor(r Retention) time.Duration {
	interval := pruneInterval
	for _, st := range prunedStatuses {
		if d, ok := r.For(st); ok && d < time.Minute {
			interval = min(interval, max(d/3, pruneIntervalMin))
		}
	}
	return interval
}

func wallPause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Start implements service.
func (p *pruner) Start(ctx context.Context) error {
	if !p.run(ctx, p.loop) {
		return errServiceRunning
	}
	return nil
}

func (p *pruner) loop(ctx context.Context) {
	if !p.hasWork() {
		return // every status kept for ever, and no request records
	}
	failures := 0
	for {
		wait := p.interval
		if failures > 0 {
			wait = min(p.interval<<min(failures, 16), max(pruneBackoffMax, p.interval))
		}
		if !sleepCtx(ctx, p.clock, wait) {
			return
		}
		if p.pass(ctx) {
			failures = 0
		} else {
			failures++
		}
	}
}

// hasWork reports whether anything is ever pruned.
func (p *pruner) hasWork() bool {
	if _, ok := p.store.(domain.RequestLog); ok {
		return true
	}
	for _, st := range prunedStatuses {
		if _, finite := p.retention.For(st); finite {
			return true
		}
	}
	return false
}

// pass deletes, a batch at a time, every job past its retention and every
// expired request record. It reports false, and leaves the rest for the
// next pass, as soon as the store refuses a batch: the same fault would
// refuse the others.
func (p *pruner) pass(ctx context.Context) bool {
	now := p.clock.Now()
	var deleted []any
	defer func() {
		if len(deleted) > 0 {
			p.logger.Info("pruned finished jobs past their retention", deleted...)
		}
	}()
	for _, st := range prunedStatuses {
		d, finite := p.retention.For(st)
		if !finite {
			continue
		}
		before := now.Add(-d)
		n, err := p.drain(ctx, func() (int, error) {
			n, err := p.store.DeleteFinished(ctx, now, st, before, p.batch)
			if n > 0 {
				p.metrics.JobsPruned(st, n)
			}
			return n, err
		})
		if n > 0 {
			deleted = append(deleted, slog.Int(string(st), n))
		}
		if err != nil {
			p.failed(ctx, "deleting finished jobs failed", err, slog.String("status", string(st)))
			return false
		}
	}
	if log, isLog := p.store.(domain.RequestLog); isLog {
		n, err := p.drain(ctx, func() (int, error) { return log.DeleteExpiredRequests(ctx, now, p.batch) })
		if n > 0 {
			deleted = append(deleted, slog.Int("requests", n))
		}
		if err != nil {
			p.failed(ctx, "deleting expired idempotency records failed", err)
			return false
		}
	}
	return true
}

// drain calls batch until it deletes fewer than a full batch, pausing
// between calls, and returns how many it deleted in all. The batch's
// duration is wall-clock time, as the pause is.
func (p *pruner) drain(ctx context.Context, batch func() (int, error)) (int, error) {
	total := 0
	for {
		start := time.Now()
		n, err := batch()
		took := time.Since(start)
		total += n
		if err != nil || n < p.batch {
			return total, err
		}
		if !p.pause(ctx, max(pruneBatchPause, (pruneDuty-1)*took)) {
			return total, ctx.Err()
		}
	}
}

func (p *pruner) failed(ctx context.Context, msg string, err error, attrs ...any) {
	if ctx.Err() != nil {
		return // stopping
	}
	p.logger.Warn(msg+"; trying again later", append(attrs, slog.Any("error", err))...)
}
