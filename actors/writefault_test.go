package actors

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/persistence/memstore"
	"github.com/troupe-go/troupe/persistence/storetest"
)

// These tests make the store refuse the writes of a job actor, the start
// of an attempt and its outcome, and check that the job waits with the
// right backoff, stays as stored meanwhile, logs each refusal, and ends
// once the store accepts exactly as it would have without the fault.

// errorLines keeps the messages logged at error, with their attributes,
// those of the logger's With included.
type errorLines struct {
	sink  *lineSink // shared by the handlers WithAttrs makes
	attrs []slog.Attr
}

type lineSink struct {
	mu    sync.Mutex
	lines []string
}

func newErrorLines() *errorLines { return &errorLines{sink: &lineSink{}} }

func (r *errorLines) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelError }

func (r *errorLines) Handle(_ context.Context, rec slog.Record) error {
	var b strings.Builder
	b.WriteString(rec.Message)
	for _, a := range r.attrs {
		b.WriteString(" " + a.String())
	}
	rec.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.String())
		return true
	})
	r.sink.mu.Lock()
	defer r.sink.mu.Unlock()
	r.sink.lines = append(r.sink.lines, b.String())
	return nil
}

func (r *errorLines) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &errorLines{sink: r.sink, attrs: append(slices.Clip(r.attrs), attrs...)}
}

func (r *errorLines) WithGroup(string) slog.Handler { return r }

// matching returns the lines that contain every one of substrs.
func (r *errorLines) matching(substrs ...string) []string {
	r.sink.mu.Lock()
	defer r.sink.mu.Unlock()
	var out []string
	for _, l := range r.sink.lines {
		if !slices.ContainsFunc(substrs, func(s string) bool { return !strings.Contains(l, s) }) {
			out = append(out, l)
		}
	}
	return out
}

// runCounter counts the handler's runs per job.
type runCounter struct {
	mu   sync.Mutex
	runs map[uuid.UUID]int
}

func (c *runCounter) count(ctx context.Context) int {
	id, _ := JobIDFromContext(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.runs == nil {
		c.runs = make(map[uuid.UUID]int)
	}
	c.runs[id]++
	return c.runs[id]
}

func (c *runCounter) of(id uuid.UUID) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.runs[id]
}

const (
	refusedStartLog   = "store refused the start of an attempt; retrying later"
	refusedOutcomeLog = "store refused the outcome of an attempt; retrying"
)

// startFaulty starts a System on a FaultStore over a memory store.
func startFaulty(t *testing.T, h domain.Handler, clock Clock, base, maxDelay time.Duration) (*System, *storetest.FaultStore, *finishRecorder, *errorLines) {
	t.Helper()
	store := storetest.NewFaultStore(memstore.New())
	rec, logs := newFinishRecorder(), newErrorLines()
	// Jobs kept for ever leave the pruner idle, with no timer beside the
	// job's own (the fault store keeps no request records either).
	sys, err := New(store, WithLogger(slog.New(logs)), WithMetrics(rec), WithClock(clock), WithRetryBackoff(base, maxDelay, NoJitter),
		WithRetention(Retention{Completed: KeepForever, Failed: KeepForever, Canceled: KeepForever}))
	require.NoError(t, err)
	require.NoError(t, sys.Register("noop", h))
	require.NoError(t, sys.Start(t.Context()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, sys.Stop(ctx))
	})
	return sys, store, rec, logs
}

func isRunning(j *domain.Job) bool { return j.Status == domain.StatusRunning }

// waitStored waits until the stored job satisfies ok and returns it.
func waitStored(t *testing.T, store domain.Store, id uuid.UUID, ok func(*domain.Job) bool, msg string) *domain.Job {
	t.Helper()
	var got *domain.Job
	require.Eventually(t, func() bool {
		j, err := store.Get(context.Background(), id)
		if err != nil || !ok(j) {
			return false
		}
		got = j
		return true
	}, 10*time.Second, time.Millisecond, msg)
	return got
}

// waitRefusal waits until the store refused n writes and the runtime set
// one timer for its next try (beside the scheduler's poll), and returns
// that timer's delay.
func waitRefusal(t *testing.T, store *storetest.FaultStore, clock *manualClock, n int) time.Duration {
	t.Helper()
	require.Eventually(t, func() bool {
		return store.Refused(storetest.OpWrites) == n && len(jobTimers(clock)) == 1
	}, 10*time.Second, time.Millisecond, "refusal %d and the timer of the next try", n)
	return jobTimers(clock)[0]
}

// jobTimers returns the delays of the timers set, but the scheduler's poll.
func jobTimers(clock *manualClock) []time.Duration {
	return slices.DeleteFunc(clock.waiting(), func(d time.Duration) bool { return d == schedulerPollLocal })
}

func TestJobActor_RefusedStartWaitsTheBaseDelayAndStartsOnceTheStoreAccepts(t *testing.T) {
	t.Parallel()
	const base = time.Second
	clock := newManualClock()
	var runs runCounter
	sys, store, rec, logs := startFaulty(t, domain.HandlerFunc(func(ctx context.Context, _ []byte) error {
		runs.count(ctx)
		return nil
	}), clock, base, time.Minute)
	store.Inject(storetest.Fault{Ops: storetest.OpUpdate, Err: domain.ErrUnavailable, Match: isRunning})

	job, err := sys.Submit(t.Context(), SubmitParams{Type: "noop"})
	require.NoError(t, err)
	const refusals = 3
	for i := 1; i <= refusals; i++ {
		require.Equal(t, base, waitRefusal(t, store, clock, i), "a refused start waits the base delay, every time")
		stored, err := store.Get(t.Context(), job.ID)
		require.NoError(t, err)
		require.Equal(t, domain.StatusPending, stored.Status, "the job stays pending while its start is refused")
		require.Zero(t, stored.Attempts, "a refused start uses no attempt")
		require.Zero(t, runs.of(job.ID), "the handler does not run without a stored start")
		require.Len(t, logs.matching(refusedStartLog, job.ID.String(), domain.ErrUnavailable.Error()), i, "each refusal is logged at error with the job")
		if i == refusals {
			store.Heal()
		}
		clock.fireNext(t)
	}

	rec.waitFinished(t, 1)
	done := waitStored(t, store, job.ID, func(j *domain.Job) bool { return j.Status == domain.StatusCompleted }, "completed once the store accepts")
	require.Equal(t, 1, done.Attempts, "only the accepted start counts an attempt")
	require.Equal(t, 1, runs.of(job.ID), "the handler ran once")
	require.Equal(t, 1, rec.total())
	require.Len(t, logs.matching(refusedStartLog), refusals)
	require.Empty(t, logs.matching(refusedOutcomeLog))
}

func TestJobActor_RefusedOutcomeIsRetriedWithBackoffAndWrittenOnce(t *testing.T) {
	t.Parallel()
	const base, maxDelay = time.Second, 5 * time.Second
	clock := newManualClock()
	var runs runCounter
	sys, store, rec, logs := startFaulty(t, domain.HandlerFunc(func(ctx context.Context, _ []byte) error {
		runs.count(ctx)
		return nil
	}), clock, base, maxDelay)
	store.Inject(storetest.Fault{
		Ops:   storetest.OpUpdate,
		Err:   domain.ErrStorageFull,
		Match: func(j *domain.Job) bool { return j.Status.IsTerminal() },
	})

	job, err := sys.Submit(t.Context(), SubmitParams{Type: "noop"})
	require.NoError(t, err)
	// Doubling from the base delay, capped at the max.
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}
	for i, delay := range want {
		n := i + 1
		require.Equal(t, delay, waitRefusal(t, store, clock, n), "backoff of refusal %d", n)
		stored, err := store.Get(t.Context(), job.ID)
		require.NoError(t, err)
		require.Equal(t, domain.StatusRunning, stored.Status, "the job stays stored running while its outcome is refused")
		require.Equal(t, 1, stored.Attempts)
		require.Equal(t, 1, runs.of(job.ID), "the outcome is retried, not the attempt")
		require.Zero(t, rec.total(), "not finished until written")
		lines := logs.matching(refusedOutcomeLog, job.ID.String(), domain.ErrStorageFull.Error())
		require.Len(t, lines, n, "each refusal is logged at error with the job")
		require.Contains(t, lines[n-1], "in="+delay.String(), "and the delay")
		if n == len(want) {
			store.Heal()
		}
		clock.fireNext(t)
	}

	rec.waitFinished(t, 1)
	done := waitStored(t, store, job.ID, func(j *domain.Job) bool { return j.Status.IsTerminal() }, "the outcome is written once the store accepts")
	require.Equal(t, domain.StatusCompleted, done.Status)
	require.Equal(t, 1, done.Attempts)
	require.Equal(t, 1, runs.of(job.ID))
	require.Equal(t, 1, rec.total(), "finished once")
	require.Len(t, logs.matching(refusedOutcomeLog), len(want))
	require.Empty(t, logs.matching(refusedStartLog))
}

func TestJobActor_RefusedRetryOutcomeKeepsTheFailedAttemptAndRunsTheNext(t *testing.T) {
	t.Parallel()
	const base = time.Second
	clock := newManualClock()
	var runs runCounter
	errFlaky := errors.New("flaky")
	sys, store, rec, logs := startFaulty(t, domain.HandlerFunc(func(ctx context.Context, _ []byte) error {
		if runs.count(ctx) == 1 {
			return errFlaky
		}
		return nil
	}), clock, base, time.Minute)
	store.Inject(storetest.Fault{
		Ops:   storetest.OpUpdate,
		Match: func(j *domain.Job) bool { return j.Status == domain.StatusScheduled },
		Times: 2,
	})

	job, err := sys.Submit(t.Context(), SubmitParams{Type: "noop"})
	require.NoError(t, err)
	for n := 1; n <= 2; n++ {
		waitRefusal(t, store, clock, n)
		stored, err := store.Get(t.Context(), job.ID)
		require.NoError(t, err)
		require.Equal(t, domain.StatusRunning, stored.Status, "the failed attempt's outcome is not lost, nor applied, while refused")
		clock.fireNext(t)
	}
	// Once written, the retry waits scheduled for what is left of its own
	// backoff, then runs.
	require.Eventually(t, func() bool {
		if len(jobTimers(clock)) == 1 {
			clock.fireNext(t)
		}
		return rec.total() == 1
	}, 10*time.Second, time.Millisecond, "the second attempt runs and completes")

	done := waitStored(t, store, job.ID, func(j *domain.Job) bool { return j.Status.IsTerminal() }, "finished")
	require.Equal(t, domain.StatusCompleted, done.Status)
	require.Equal(t, 2, done.Attempts, "one failed attempt and one that completed")
	require.Equal(t, 2, runs.of(job.ID))
	require.Equal(t, 1, rec.retries(), "the retry is counted once, when written")
	require.Len(t, logs.matching(refusedOutcomeLog, job.ID.String()), 2)
	require.Equal(t, 2, store.Refused(storetest.OpWrites))
}

// TestJobActor_EveryThirdWriteRefusedLosesAndRepeatsNothing runs many jobs
// while the store refuses every third update, starts and outcomes alike:
// each job still runs once and completes once.
func TestJobActor_EveryThirdWriteRefusedLosesAndRepeatsNothing(t *testing.T) {
	t.Parallel()
	var runs runCounter
	sys, store, rec, _ := startFaulty(t, domain.HandlerFunc(func(ctx context.Context, _ []byte) error {
		runs.count(ctx)
		return nil
	}), wallClock{}, time.Millisecond, 10*time.Millisecond)
	store.FailEvery(storetest.OpUpdate, 3, domain.ErrUnavailable)

	const n = 50
	params := make([]SubmitParams, n)
	for i := range params {
		params[i] = SubmitParams{Type: "noop"}
	}
	jobs, err := sys.SubmitBatch(t.Context(), params)
	require.NoError(t, err)
	rec.waitFinished(t, n)

	for _, j := range jobs {
		stored, err := store.Get(t.Context(), j.Job.ID)
		require.NoError(t, err)
		require.Equal(t, domain.StatusCompleted, stored.Status)
		require.Equal(t, 1, stored.Attempts, "a refused write never costs an attempt")
		require.Equal(t, 1, runs.of(j.Job.ID), "and never repeats the handler")
	}
	require.Equal(t, n, rec.total())
	require.Positive(t, store.Refused(storetest.OpUpdate))
}
