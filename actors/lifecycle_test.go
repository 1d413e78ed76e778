package actors

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/persistence/memstore"
	"github.com/troupe-go/troupe/persistence/storetest"
)

// seed stores a job in the given state, as a previous process left it.
func seed(t *testing.T, store domain.Store, status domain.Status, attempts, maxAttempts int, mutate ...func(*domain.Job)) *domain.Job {
	t.Helper()
	opts := []storetest.JobOption{storetest.JobPayload(nil), storetest.JobMaxAttempts(maxAttempts), storetest.JobCreatedAt(time.Now()), storetest.JobStatus(status, attempts)}
	for _, m := range mutate {
		opts = append(opts, storetest.JobEdit(m))
	}
	job := storetest.NewJob(t, "noop", opts...)
	require.NoError(t, store.Create(context.Background(), job))
	return job
}

func startOn(t *testing.T, store domain.Store, h domain.Handler, opts ...Option) (*System, *finishRecorder) {
	t.Helper()
	rec := newFinishRecorder()
	opts = append([]Option{WithLogger(testLogger(t)), WithMetrics(rec), WithRetryBackoff(time.Millisecond, time.Millisecond, NoJitter)}, opts...)
	sys, err := New(store, opts...)
	require.NoError(t, err)
	require.NoError(t, sys.Register("noop", h))
	require.NoError(t, sys.Start(context.Background()))
	t.Cleanup(func() { require.NoError(t, sys.Stop(context.Background())) })
	return sys, rec
}

func TestSystem_RecoversUnfinishedJobs(t *testing.T) {
	t.Parallel()
	store := memstore.New()
	pending := seed(t, store, domain.StatusPending, 0, 3)
	retrying := seed(t, store, domain.StatusPending, 1, 3, func(j *domain.Job) { j.LastError = "earlier" })
	interrupted := seed(t, store, domain.StatusRunning, 1, 3)
	exhausted := seed(t, store, domain.StatusRunning, 3, 3)
	completed := seed(t, store, domain.StatusCompleted, 1, 3)

	sys, rec := startOn(t, store, domain.HandlerFunc(noop))
	rec.waitFinished(t, 4)

	get := func(j *domain.Job) *domain.Job {
		got, err := sys.Get(context.Background(), j.ID)
		require.NoError(t, err)
		return got
	}
	require.Equal(t, domain.StatusCompleted, get(pending).Status)
	require.Equal(t, 2, get(retrying).Attempts)
	got := get(interrupted)
	require.Equal(t, domain.StatusCompleted, got.Status)
	require.Equal(t, 2, got.Attempts, "the interrupted attempt counts")
	got = get(exhausted)
	require.Equal(t, domain.StatusFailed, got.Status)
	require.Equal(t, 3, got.Attempts)
	require.Equal(t, domain.ErrInterrupted.Error(), got.LastError)
	require.Equal(t, 1, get(completed).Attempts, "terminal jobs are left alone")
}

// A job a previous run left scheduled stays in the store, with no actor
// and no read at start beyond the earliest RunAt, and runs at its RunAt.
func TestSystem_RecoveredRetryWaitsForRunAt(t *testing.T) {
	t.Parallel()
	store := memstore.New()
	clock := newManualClock()
	runAt := clock.Now().Add(time.Minute)
	job := seed(t, store, domain.StatusScheduled, 1, 3, func(j *domain.Job) { j.RunAt = runAt })
	sys, rec := startOn(t, store, domain.HandlerFunc(noop), WithClock(clock))
	waitFor(t, func() bool { return clock.pendingAt(runAt) })
	require.Zero(t, sys.Stats().JobActors)
	require.Zero(t, sys.Stats().QueueDepth)
	clock.advance(time.Minute)
	rec.waitFinished(t, 1)
	got, err := sys.Get(context.Background(), job.ID)
	require.NoError(t, err)
	require.Equal(t, domain.StatusCompleted, got.Status)
	require.Equal(t, runAt, got.StartedAt, "started at its runAt")
}

func TestSystem_Stop(t *testing.T) {
	t.Parallel()

	t.Run("LetsRunningJobsFinish", func(t *testing.T) {
		t.Parallel()
		store := memstore.New()
		blk := newBlocker()
		sys, err := New(store, WithLogger(testLogger(t)))
		require.NoError(t, err)
		require.NoError(t, sys.Register("block", blk))
		require.NoError(t, sys.Start(context.Background()))
		job, err := sys.Submit(context.Background(), SubmitParams{Type: "block"})
		require.NoError(t, err)
		blk.waitStarted(t)

		stopped := make(chan error)
		go func() { stopped <- sys.Stop(context.Background()) }()
		waitFor(t, func() bool { return !sys.Stats().Running })
		_, err = sys.Submit(context.Background(), SubmitParams{Type: "block"})
		require.ErrorIs(t, err, domain.ErrNotRunning, "intake closes first")
		close(blk.release)
		require.NoError(t, <-stopped)

		got, err := store.Get(context.Background(), job.ID)
		require.NoError(t, err)
		require.Equal(t, domain.StatusCompleted, got.Status)
		require.NoError(t, sys.Stop(context.Background()), "stopping twice is fine")
	})

	t.Run("HandsBackWhatOutlivesTheDeadline", func(t *testing.T) {
		t.Parallel()
		store := memstore.New()
		blk := newBlocker()
		sys, err := New(store, WithLogger(testLogger(t)))
		require.NoError(t, err)
		require.NoError(t, sys.Register("noop", blk))
		require.NoError(t, sys.Start(context.Background()))
		job, err := sys.Submit(context.Background(), SubmitParams{Type: "noop", MaxAttempts: 1})
		require.NoError(t, err)
		blk.waitStarted(t)

		ctx, cancel := context.WithCancel(context.Background())
		cancel() // no time at all: hand back at once
		require.NoError(t, sys.Stop(ctx))

		got, err := store.Get(context.Background(), job.ID)
		require.NoError(t, err)
		require.Equal(t, domain.StatusPending, got.Status, "handed back, not canceled")
		require.Equal(t, 0, got.Attempts, "a stop does not use up an attempt")
		require.Empty(t, got.LastError, "a handed-back attempt did not fail")

		// The next start runs it again, even though it had one attempt.
		next, rec := startOn(t, store, domain.HandlerFunc(noop))
		rec.waitFinished(t, 1)
		got, err = next.Get(context.Background(), job.ID)
		require.NoError(t, err)
		require.Equal(t, domain.StatusCompleted, got.Status)
		require.Equal(t, 1, got.Attempts)
	})

	t.Run("HandBackKeepsThePreviousError", func(t *testing.T) {
		t.Parallel()
		store := memstore.New()
		job := seed(t, store, domain.StatusPending, 1, 3, func(j *domain.Job) { j.LastError = "earlier failure" })
		blk := newBlocker()
		sys, err := New(store, WithLogger(testLogger(t)))
		require.NoError(t, err)
		require.NoError(t, sys.Register("noop", blk))
		require.NoError(t, sys.Start(context.Background()))
		blk.waitStarted(t)

		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		require.NoError(t, sys.Stop(ctx))

		got, err := store.Get(context.Background(), job.ID)
		require.NoError(t, err)
		require.Equal(t, domain.StatusPending, got.Status)
		require.Equal(t, 1, got.Attempts)
		require.Equal(t, "earlier failure", got.LastError)
	})

	t.Run("LeavesRetryWaitsForTheNextStart", func(t *testing.T) {
		t.Parallel()
		store := memstore.New()
		failOnce := domain.HandlerFunc(func(ctx context.Context, _ []byte) error {
			if AttemptFromContext(ctx) == 1 {
				return errors.New("first try fails")
			}
			return nil
		})
		rec := newFinishRecorder()
		sys, err := New(store, WithLogger(testLogger(t)), WithMetrics(rec), WithClock(stoppedClock{}), WithRetryBackoff(time.Hour, time.Hour, NoJitter))
		require.NoError(t, err)
		require.NoError(t, sys.Register("noop", failOnce))
		require.NoError(t, sys.Start(context.Background()))
		job, err := sys.Submit(context.Background(), SubmitParams{Type: "noop"})
		require.NoError(t, err)
		waitFor(t, func() bool { return rec.retries() == 1 })
		require.NoError(t, sys.Stop(context.Background()))

		got, err := store.Get(context.Background(), job.ID)
		require.NoError(t, err)
		require.Equal(t, domain.StatusScheduled, got.Status)
		require.Equal(t, time.Hour, got.RunAt.Sub(got.UpdatedAt))

		clock := newManualClock()
		clock.now = got.RunAt.Add(-time.Second)
		next, rec2 := startOn(t, store, failOnce, WithClock(clock))
		waitFor(t, func() bool { return clock.pendingAt(got.RunAt) })
		clock.advance(time.Second)
		rec2.waitFinished(t, 1)
		got, err = next.Get(context.Background(), job.ID)
		require.NoError(t, err)
		require.Equal(t, domain.StatusCompleted, got.Status)
		require.Equal(t, 2, got.Attempts)
	})

	t.Run("StartTwiceFails", func(t *testing.T) {
		t.Parallel()
		sys, _ := startOn(t, memstore.New(), domain.HandlerFunc(noop))
		require.Error(t, sys.Start(context.Background()))
	})
}

// waitFor polls cond until it holds, failing after a bound that only a
// hang reaches.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met")
		}
		time.Sleep(time.Millisecond)
	}
}
