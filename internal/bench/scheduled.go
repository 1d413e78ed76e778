package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"

	"github.com/troupe-go/troupe/actors"
)

// scheduledLead is how far ahead of the first RunAt the window starts, so
// that the submissions end before any job falls due.
const scheduledLead = time.Second

// Scheduled submits n jobs with RunAts spread evenly over window (in a
// random order, a batch at a time), starting scheduledLead after the
// submissions end, and measures each job's lateness: when its handler
// started minus its RunAt. The jobs wait scheduled in the store, and the
// System's scheduler makes them pending when due, as with troupe serve.
func (b *Bencher) Scheduled(ctx context.Context, n int, window time.Duration, batch int) (summary *Summary, err error) {
	rec := newRecorder(false, true)
	run, err := b.startSystem(ctx, rec, actors.QueueSizeDefault)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, run.stop()) }()
	sys := run.sys

	// Offsets in the window, evenly spread, submitted shuffled: the
	// scheduler must not rely on jobs arriving in RunAt order.
	offsets := make([]time.Duration, n)
	for i := range offsets {
		offsets[i] = time.Duration(float64(window) * (float64(i) + 0.5) / float64(n))
	}
	rand.Shuffle(n, func(i, j int) { offsets[i], offsets[j] = offsets[j], offsets[i] })
	// The window starts after the submissions are expected to end: a
	// conservative 20,000 jobs/s plus the lead.
	begin := time.Now().Add(scheduledLead + time.Duration(float64(n)/20_000*float64(time.Second)))

	runAt := make(map[uuid.UUID]time.Time, n)
	params := make([]actors.SubmitParams, 0, batch)
	submitStart := time.Now()
	stopProgress := startProgress(b.Progress, func() (string, float64) {
		done := rec.completed.Load()
		return fmt.Sprintf("scheduled: %d/%d done", done, n), float64(done) / float64(n)
	})
	defer stopProgress()
	for i := 0; i < n; {
		params = params[:0]
		for ; i < n && len(params) < batch; i++ {
			params = append(params, actors.SubmitParams{Type: JobType, Payload: payload, RunAt: begin.Add(offsets[i])})
		}
		results, err := sys.SubmitBatch(ctx, params)
		if err != nil {
			return nil, fmt.Errorf("submit: %w", err)
		}
		for _, r := range results {
			runAt[r.Job.ID] = r.Job.RunAt
		}
	}
	submitTook := time.Since(submitStart)
	if time.Now().After(begin) {
		return nil, fmt.Errorf("submitting %d jobs took %s, past the start of the window; use fewer jobs", n, submitTook.Round(time.Millisecond))
	}
	if err := rec.waitCompleted(ctx, int64(n)); err != nil {
		return nil, fmt.Errorf("wait for the jobs: %w", err)
	}
	stopProgress()

	rec.mu.Lock()
	defer rec.mu.Unlock()
	lateness := make([]time.Duration, 0, n)
	for id, at := range runAt {
		if s, ok := rec.startAt[id]; ok {
			lateness = append(lateness, s.Sub(at))
		}
	}
	completed := rec.completed.Load()
	return describe(&Summary{
		Mode:             "scheduled",
		Store:            b.Store,
		Workers:          b.Workers,
		Jobs:             int64(n),
		Completed:        &completed,
		Seconds:          window.Seconds(),
		JobsPerSecond:    perSecond(completed, window),
		Lateness:         summarizeLatency(lateness),
		Errors:           map[string]int64{},
		InsertSeconds:    submitTook.Seconds(),
		InsertsPerSecond: perSecond(int64(n), submitTook),
		Batch:            batch,
	}, b.nodes(), run.facts, DoneOutcomeCommitted, rec.completedByNode(b.nodes())), nil
}
