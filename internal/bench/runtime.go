package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/troupe-go/troupe/actors"
	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/http"
)

// burndown inserts n jobs while the workers are held, then releases them
// and times the work-off.
func (b *Bencher) Burndown(ctx context.Context, n, batch int) (summary *Summary, err error) {
	rec := newRecorder(true, false)
	run, err := b.startSystem(ctx, rec, max(actors.QueueSizeDefault, n))
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, run.stop()) }()
	sys := run.sys

	var inserted atomic.Int64
	// burnStart is set when the workers are released.
	var burnStart atomic.Pointer[time.Time]
	insertMeter := newRateMeter()
	var burnMeter *rateMeter
	stopProgress := startProgress(b.Progress, func() (string, float64) {
		if at := burnStart.Load(); at != nil {
			if burnMeter == nil {
				burnMeter = &rateMeter{at: *at}
			}
			done := rec.completed.Load()
			return fmt.Sprintf("burndown: %d/%d done (%.0f jobs/s)", done, n, burnMeter.rate(done)), float64(done) / float64(n)
		}
		ins := inserted.Load()
		return fmt.Sprintf("burndown: %d/%d inserted (%.0f jobs/s)", ins, n, insertMeter.rate(ins)), float64(ins) / float64(n)
	})
	defer stopProgress()

	params := make([]actors.SubmitParams, min(batch, n))
	for i := range params {
		params[i] = actors.SubmitParams{Type: JobType, Payload: payload}
	}
	start := time.Now()
	for left := n; left > 0; {
		k := min(left, len(params))
		if _, err := sys.SubmitBatch(ctx, params[:k]); err != nil {
			return nil, fmt.Errorf("insert jobs: %w", err)
		}
		left -= k
		inserted.Add(int64(k))
	}
	insertTook := time.Since(start)

	released := time.Now()
	burnStart.Store(&released)
	rec.release()
	if err := rec.waitCompleted(ctx, int64(n)); err != nil {
		return nil, fmt.Errorf("burn down: %w", err)
	}
	burnTook := time.Since(released)
	stopProgress()

	completed := rec.completed.Load()
	return describe(&Summary{
		Mode:             "burndown",
		Store:            b.Store,
		Workers:          b.Workers,
		Jobs:             int64(n),
		Completed:        &completed,
		Seconds:          burnTook.Seconds(),
		JobsPerSecond:    perSecond(completed, burnTook),
		Errors:           map[string]int64{},
		InsertSeconds:    insertTook.Seconds(),
		InsertsPerSecond: perSecond(int64(n), insertTook),
		TotalSeconds:     (insertTook + burnTook).Seconds(),
		Batch:            batch,
	}, b.nodes(), run.facts, DoneOutcomeCommitted, rec.completedByNode(b.nodes())), nil
}

// steady submits at rate jobs/s for d, then waits for every job to be
// done, and measures each job's latency to its start and to its end.
func (b *Bencher) Steady(ctx context.Context, rate float64, d time.Duration) (summary *Summary, err error) {
	rec := newRecorder(false, true)
	run, err := b.startSystem(ctx, rec, actors.QueueSizeDefault)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, run.stop()) }()
	sys := run.sys

	total := int64(math.Round(rate * d.Seconds()))
	// A tick per job up to 1,000 jobs/s; beyond, a tick a millisecond with
	// a batch each, since tickers do not keep up with shorter periods.
	interval := max(time.Duration(float64(time.Second)/rate), time.Millisecond)
	submitAt := make(map[uuid.UUID]time.Time, total)
	errs := map[string]int64{}
	var accepted atomic.Int64
	var submitting atomic.Bool
	submitting.Store(true)
	begin := time.Now()
	meter := newRateMeter()
	stopProgress := startProgress(b.Progress, func() (string, float64) {
		done := rec.completed.Load()
		if submitting.Load() {
			elapsed := time.Since(begin)
			return fmt.Sprintf("steady: %s/%s submitted %d, done %d (%.0f jobs/s)",
				elapsed.Truncate(time.Second), d, accepted.Load(), done, meter.rate(done)), elapsed.Seconds() / d.Seconds()
		}
		acc := accepted.Load()
		return fmt.Sprintf("steady: waiting for the last jobs: %d/%d done", done, acc), float64(done) / float64(max(acc, 1))
	})
	defer stopProgress()

	params := make([]actors.SubmitParams, http.MaxBatchJobs)
	for i := range params {
		params[i] = actors.SubmitParams{Type: JobType, Payload: payload}
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	sent := int64(0)
	for sent < total {
		select {
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		case <-ticker.C:
		}
		due := min(total, int64(rate*time.Since(begin).Seconds()))
		var err error
		sent, err = submitUpTo(ctx, sys, params, sent, due, errs, func(at time.Time, jobs []actors.SubmitResult) {
			for _, j := range jobs {
				submitAt[j.Job.ID] = at
			}
			accepted.Add(int64(len(jobs)))
		})
		if err != nil {
			return nil, err
		}
	}
	submitTook := time.Since(begin)
	submitting.Store(false)
	if err := rec.waitCompleted(ctx, accepted.Load()); err != nil {
		return nil, fmt.Errorf("wait for the jobs: %w", err)
	}
	stopProgress()

	rec.mu.Lock()
	defer rec.mu.Unlock()
	toStart := make([]time.Duration, 0, len(submitAt))
	toDone := make([]time.Duration, 0, len(submitAt))
	last := begin
	for id, at := range submitAt {
		if s, ok := rec.startAt[id]; ok {
			toStart = append(toStart, s.Sub(at))
		}
		if e, ok := rec.doneAt[id]; ok {
			toDone = append(toDone, e.Sub(at))
			if e.After(last) {
				last = e
			}
		}
	}
	completed := rec.completed.Load()
	took := last.Sub(begin)
	return describe(&Summary{
		Mode:          "steady",
		Store:         b.Store,
		Workers:       b.Workers,
		Jobs:          accepted.Load(),
		Completed:     &completed,
		Seconds:       took.Seconds(),
		JobsPerSecond: perSecond(completed, took),
		Latency:       summarizeLatency(toStart),
		Errors:        errs,
		Rate:          rate,
		SubmitRate:    perSecond(accepted.Load(), submitTook),
		DoneLatency:   summarizeLatency(toDone),
	}, b.nodes(), run.facts, DoneOutcomeCommitted, rec.completedByNode(b.nodes())), nil
}

// submitUpTo submits the bench's jobs in batches of params until sent
// reaches due, as a paced load does at each tick: a batch the full queue
// refuses counts in errs, and each accepted batch goes to accepted with
// when it was submitted. It returns the new count sent.
func submitUpTo(ctx context.Context, sys *actors.System, params []actors.SubmitParams, sent, due int64,
	errs map[string]int64, accepted func(at time.Time, jobs []actors.SubmitResult),
) (int64, error) {
	for sent < due {
		k := min(due-sent, int64(len(params)))
		at := time.Now()
		jobs, err := sys.SubmitBatch(ctx, params[:k])
		sent += k
		switch {
		case errors.Is(err, domain.ErrQueueFull):
			errs["queue full"] += k
			continue
		case err != nil:
			return sent, fmt.Errorf("submit: %w", err)
		}
		accepted(at, jobs)
	}
	return sent, nil
}
