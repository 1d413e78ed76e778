package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/persistence/memstore"
)

// testBundle is a started System on a memory store with a recorder of
// job ends, so tests wait on signals rather than sleeps.
type testBundle struct {
	sys      *System
	store    *memstore.Store
	finished *finishRecorder
}

type finishRecorder struct {
	NopMetrics
	mu      sync.Mutex
	counts  map[domain.Status]int
	changed chan struct{}
	retried int
}

func newFinishRecorder() *finishRecorder {
	return &finishRecorder{counts: make(map[domain.Status]int), changed: make(chan struct{}, 1)}
}

func (r *finishRecorder) JobFinished(j *domain.Job) {
	r.mu.Lock()
	r.counts[j.Status]++
	r.mu.Unlock()
	r.signal()
}

func (r *finishRecorder) JobRetried(*domain.Job) {
	r.mu.Lock()
	r.retried++
	r.mu.Unlock()
	r.signal()
}

func (r *finishRecorder) signal() {
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

func (r *finishRecorder) retries() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.retried
}

func (r *finishRecorder) total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.counts {
		n += c
	}
	return n
}

// waitFinished waits until n jobs have finished, failing the test after a
// generous bound (a hang, not a measure of speed).
func (r *finishRecorder) waitFinished(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for r.total() < n {
		select {
		case <-r.changed:
		case <-deadline:
			t.Fatalf("%d of %d jobs finished before the deadline", r.total(), n)
		}
	}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

func setup(t *testing.T, handlers map[domain.JobType]domain.Handler, opts ...Option) *testBundle {
	t.Helper()
	store := memstore.New()
	rec := newFinishRecorder()
	opts = append([]Option{
		WithLogger(testLogger(t)),
		WithMetrics(rec),
		WithRetryBackoff(time.Millisecond, 5*time.Millisecond, NoJitter),
	}, opts...)
	sys, err := New(store, opts...)
	require.NoError(t, err)
	for typ, h := range handlers {
		require.NoError(t, sys.Register(typ, h))
	}
	require.NoError(t, sys.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, sys.Stop(ctx))
	})
	return &testBundle{sys: sys, store: store, finished: rec}
}

func noop(context.Context, []byte) error { return nil }

func TestSystem_BurnDown(t *testing.T) {
	t.Parallel()
	for _, workers := range []int{1, 4, 32} {
		t.Run(fmt.Sprintf("Workers%d", workers), func(t *testing.T) {
			t.Parallel()
			b := setup(t, map[domain.JobType]domain.Handler{"noop": domain.HandlerFunc(noop)}, WithWorkers(workers))
			ctx := context.Background()
			ids := make([]uuid.UUID, 0, 200)
			for range 200 {
				job, err := b.sys.Submit(ctx, SubmitParams{Type: "noop"})
				require.NoError(t, err)
				require.Equal(t, domain.StatusPending, job.Status)
				ids = append(ids, job.ID)
			}
			b.finished.waitFinished(t, 200)
			for _, id := range ids {
				job, err := b.sys.Get(ctx, id)
				require.NoError(t, err)
				require.Equal(t, domain.StatusCompleted, job.Status, "job %s", id)
				require.Equal(t, 1, job.Attempts)
				require.False(t, job.FinishedAt.IsZero())
			}
		})
	}
}

func TestSystem_RetryThenSucceed(t *testing.T) {
	t.Parallel()
	flaky := domain.HandlerFunc(func(ctx context.Context, _ []byte) error {
		if AttemptFromContext(ctx) <= 2 {
			return errors.New("not yet")
		}
		return nil
	})
	b := setup(t, map[domain.JobType]domain.Handler{"flaky": flaky})
	job, err := b.sys.Submit(context.Background(), SubmitParams{Type: "flaky", MaxAttempts: 3})
	require.NoError(t, err)
	b.finished.waitFinished(t, 1)
	got, err := b.sys.Get(context.Background(), job.ID)
	require.NoError(t, err)
	require.Equal(t, domain.StatusCompleted, got.Status)
	require.Equal(t, 3, got.Attempts)
	require.Equal(t, "not yet", got.LastError)
}

func fakeStore() domain.Store { return memstore.New() }

// blocker is a handler that reports each start and then blocks until its
// context ends or the test releases it.
type blocker struct {
	started chan uuid.UUID
	release chan struct{}
}

func newBlocker() *blocker {
	return &blocker{started: make(chan uuid.UUID, 100), release: make(chan struct{})}
}

func (b *blocker) Execute(ctx context.Context, _ []byte) error {
	id, _ := JobIDFromContext(ctx)
	select {
	case b.started <- id:
	default: // tests wait for the first few starts only
	}
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-b.release:
		return nil
	}
}

func (b *blocker) waitStarted(t *testing.T) uuid.UUID {
	t.Helper()
	select {
	case id := <-b.started:
		return id
	case <-time.After(30 * time.Second):
		t.Fatal("handler did not start")
		return uuid.Nil
	}
}

func (b *testBundle) get(t *testing.T, id uuid.UUID) *domain.Job {
	t.Helper()
	job, err := b.sys.Get(context.Background(), id)
	require.NoError(t, err)
	return job
}

func (b *testBundle) submit(t *testing.T, typ domain.JobType, maxAttempts int) *domain.Job {
	t.Helper()
	job, err := b.sys.Submit(context.Background(), SubmitParams{Type: typ, MaxAttempts: maxAttempts})
	require.NoError(t, err)
	return job
}

func TestSystem_FailsAfterMaxAttempts(t *testing.T) {
	t.Parallel()
	failing := domain.HandlerFunc(func(ctx context.Context, _ []byte) error {
		return fmt.Errorf("boom on attempt %d", AttemptFromContext(ctx))
	})
	b := setup(t, map[domain.JobType]domain.Handler{"failing": failing})
	job := b.submit(t, "failing", 4)
	b.finished.waitFinished(t, 1)
	got := b.get(t, job.ID)
	require.Equal(t, domain.StatusFailed, got.Status)
	require.Equal(t, 4, got.Attempts)
	require.Equal(t, "boom on attempt 4", got.LastError)
	require.False(t, got.FinishedAt.IsZero())
	require.Equal(t, 3, b.finished.retries())
}

func TestSystem_PermanentErrorSkipsRetries(t *testing.T) {
	t.Parallel()
	h := domain.HandlerFunc(func(context.Context, []byte) error {
		return domain.Permanent(errors.New("bad payload"))
	})
	b := setup(t, map[domain.JobType]domain.Handler{"perm": h})
	job := b.submit(t, "perm", 5)
	b.finished.waitFinished(t, 1)
	got := b.get(t, job.ID)
	require.Equal(t, domain.StatusFailed, got.Status)
	require.Equal(t, 1, got.Attempts)
	require.Equal(t, "bad payload", got.LastError)
}

// backoffDelays runs a job that always fails on a manual clock and
// returns the backoff of each retry, as the store holds it: the job waits
// scheduled, with no actor, and the test moves the clock to its RunAt.
func backoffDelays(t *testing.T, maxAttempts int, opts ...Option) []time.Duration {
	t.Helper()
	clock := newManualClock()
	failing := domain.HandlerFunc(func(context.Context, []byte) error { return errors.New("no") })
	b := setup(t, map[domain.JobType]domain.Handler{"failing": failing}, append(opts, WithClock(clock))...)
	job := b.submit(t, "failing", maxAttempts)
	var delays []time.Duration
	for i := 1; i < maxAttempts; i++ {
		waitFor(t, func() bool { return b.finished.retries() == i && b.sys.Stats().JobActors == 0 })
		got := b.get(t, job.ID)
		require.Equal(t, domain.StatusScheduled, got.Status)
		d := got.RunAt.Sub(clock.Now())
		delays = append(delays, d)
		clock.advance(d - time.Microsecond)
		time.Sleep(5 * time.Millisecond)
		require.Equal(t, domain.StatusScheduled, b.get(t, job.ID).Status, "not before its RunAt")
		clock.advance(time.Microsecond)
	}
	b.finished.waitFinished(t, 1)
	return delays
}

func TestSystem_BackoffDelaysAreExponential(t *testing.T) {
	t.Parallel()
	delays := backoffDelays(t, 5, WithRetryBackoff(time.Second, 5*time.Second, NoJitter))
	require.Equal(t, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second}, delays)
}

func TestSystem_BackoffJitterUsesRandom(t *testing.T) {
	t.Parallel()
	delays := backoffDelays(t, 3, WithRetryBackoff(time.Second, time.Minute, FullJitter), withRandom(func() float64 { return 0.5 }))
	require.Equal(t, []time.Duration{500 * time.Millisecond, time.Second}, delays)
}

func TestSystem_PanicFailsTheAttemptAndTheWorkerGoesOn(t *testing.T) {
	t.Parallel()
	b := setup(t, map[domain.JobType]domain.Handler{
		"panic": domain.HandlerFunc(func(context.Context, []byte) error { panic("kaboom") }),
		"noop":  domain.HandlerFunc(noop),
	}, WithWorkers(1))
	bad := b.submit(t, "panic", 1)
	good := b.submit(t, "noop", 1)
	b.finished.waitFinished(t, 2)
	got := b.get(t, bad.ID)
	require.Equal(t, domain.StatusFailed, got.Status)
	require.Contains(t, got.LastError, "panic: kaboom")
	require.Equal(t, domain.StatusCompleted, b.get(t, good.ID).Status)
}

// queuedBehindABlocker starts a System with one worker held by a blocker
// job and returns a second job, pending in the queue behind it.
func queuedBehindABlocker(t *testing.T) (*testBundle, *blocker, *domain.Job) {
	t.Helper()
	blk := newBlocker()
	b := setup(t, map[domain.JobType]domain.Handler{"block": blk}, WithWorkers(1))
	b.submit(t, "block", 1)
	blk.waitStarted(t)
	return b, blk, b.submit(t, "block", 1)
}

func TestSystem_Cancel(t *testing.T) {
	t.Parallel()

	t.Run("PendingIsCanceledAtOnce", func(t *testing.T) {
		t.Parallel()
		b, blk, queued := queuedBehindABlocker(t)
		got, err := b.sys.Cancel(context.Background(), queued.ID)
		require.NoError(t, err)
		require.Equal(t, domain.StatusCanceled, got.Status)
		require.Equal(t, domain.StatusCanceled, b.get(t, queued.ID).Status)
		close(blk.release)
		b.finished.waitFinished(t, 2)
		// The canceled job never ran.
		require.Equal(t, 0, b.get(t, queued.ID).Attempts)
	})

	t.Run("RunningEndsCanceledWhenHandlerReturns", func(t *testing.T) {
		t.Parallel()
		blk := newBlocker()
		b := setup(t, map[domain.JobType]domain.Handler{"block": blk})
		job := b.submit(t, "block", 3)
		blk.waitStarted(t)
		got, err := b.sys.Cancel(context.Background(), job.ID)
		require.NoError(t, err)
		require.Equal(t, domain.StatusRunning, got.Status)
		b.finished.waitFinished(t, 1)
		final := b.get(t, job.ID)
		require.Equal(t, domain.StatusCanceled, final.Status)
		require.Equal(t, 1, final.Attempts)
		require.Contains(t, final.LastError, "job canceled")
	})

	t.Run("TwiceIsANoOp", func(t *testing.T) {
		t.Parallel()
		b, blk, queued := queuedBehindABlocker(t)
		first, err := b.sys.Cancel(context.Background(), queued.ID)
		require.NoError(t, err)
		second, err := b.sys.Cancel(context.Background(), queued.ID)
		require.NoError(t, err)
		require.Equal(t, domain.StatusCanceled, second.Status)
		require.Equal(t, first.UpdatedAt, second.UpdatedAt)
		close(blk.release)
	})

	t.Run("CompletedIsNotCancelable", func(t *testing.T) {
		t.Parallel()
		b := setup(t, map[domain.JobType]domain.Handler{"noop": domain.HandlerFunc(noop)})
		job := b.submit(t, "noop", 1)
		b.finished.waitFinished(t, 1)
		_, err := b.sys.Cancel(context.Background(), job.ID)
		require.ErrorIs(t, err, domain.ErrNotCancelable)
		require.Equal(t, domain.StatusCompleted, b.get(t, job.ID).Status)
	})

	t.Run("FailedIsNotCancelable", func(t *testing.T) {
		t.Parallel()
		b := setup(t, map[domain.JobType]domain.Handler{"fail": domain.HandlerFunc(func(context.Context, []byte) error {
			return errors.New("no")
		})})
		job := b.submit(t, "fail", 1)
		b.finished.waitFinished(t, 1)
		_, err := b.sys.Cancel(context.Background(), job.ID)
		require.ErrorIs(t, err, domain.ErrNotCancelable)
	})

	t.Run("WaitingForRetryIsCanceledAtOnce", func(t *testing.T) {
		t.Parallel()
		b := setup(t, map[domain.JobType]domain.Handler{"fail": domain.HandlerFunc(func(context.Context, []byte) error {
			return errors.New("not now")
		})}, WithClock(stoppedClock{}), WithRetryBackoff(time.Hour, time.Hour, NoJitter))
		job := b.submit(t, "fail", 3)
		deadline := time.After(30 * time.Second)
		for b.finished.retries() == 0 {
			select {
			case <-b.finished.changed:
			case <-deadline:
				t.Fatal("job was not retried")
			}
		}
		waiting := b.get(t, job.ID)
		require.Equal(t, domain.StatusScheduled, waiting.Status)
		require.Equal(t, time.Hour, waiting.RunAt.Sub(waiting.UpdatedAt))
		waitFor(t, func() bool { return b.sys.Stats().JobActors == 0 })
		got, err := b.sys.Cancel(context.Background(), job.ID)
		require.NoError(t, err)
		require.Equal(t, domain.StatusCanceled, got.Status)
		require.Equal(t, 1, got.Attempts)
		require.Equal(t, domain.StatusCanceled, b.get(t, job.ID).Status)
		b.finished.waitFinished(t, 1) // counted as finished
	})

	t.Run("UnknownIDIsNotFound", func(t *testing.T) {
		t.Parallel()
		b := setup(t, nil)
		_, err := b.sys.Cancel(context.Background(), uuid.New())
		require.ErrorIs(t, err, domain.ErrNotFound)
	})
}

func TestSystem_SubmitErrors(t *testing.T) {
	t.Parallel()

	t.Run("UnknownTypeNamesRegistered", func(t *testing.T) {
		t.Parallel()
		b := setup(t, map[domain.JobType]domain.Handler{"noop": domain.HandlerFunc(noop), "other": domain.HandlerFunc(noop)})
		_, err := b.sys.Submit(context.Background(), SubmitParams{Type: "nope"})
		require.ErrorIs(t, err, domain.ErrUnknownJobType)
		require.ErrorContains(t, err, "noop, other")
	})

	t.Run("InvalidMaxAttempts", func(t *testing.T) {
		t.Parallel()
		b := setup(t, map[domain.JobType]domain.Handler{"noop": domain.HandlerFunc(noop)})
		_, err := b.sys.Submit(context.Background(), SubmitParams{Type: "noop", MaxAttempts: -1})
		require.ErrorIs(t, err, domain.ErrInvalid)
	})

	t.Run("DefaultMaxAttempts", func(t *testing.T) {
		t.Parallel()
		b := setup(t, map[domain.JobType]domain.Handler{"noop": domain.HandlerFunc(noop)}, WithMaxAttempts(7))
		job := b.submit(t, "noop", 0)
		require.Equal(t, 7, job.MaxAttempts)
	})

	t.Run("QueueFullStoresNothing", func(t *testing.T) {
		t.Parallel()
		blk := newBlocker()
		b := setup(t, map[domain.JobType]domain.Handler{"block": blk}, WithWorkers(1), WithQueueSize(2))
		b.submit(t, "block", 1)
		blk.waitStarted(t)
		b.submit(t, "block", 1)
		b.submit(t, "block", 1)
		_, err := b.sys.Submit(context.Background(), SubmitParams{Type: "block"})
		require.ErrorIs(t, err, domain.ErrQueueFull)
		page, err := b.sys.List(context.Background(), domain.Filter{})
		require.NoError(t, err)
		require.Equal(t, 3, page.Total)
		close(blk.release)
		b.finished.waitFinished(t, 3)
	})

	t.Run("BatchIsAllOrNothing", func(t *testing.T) {
		t.Parallel()
		b := setup(t, map[domain.JobType]domain.Handler{"noop": domain.HandlerFunc(noop)})
		_, err := b.sys.SubmitBatch(context.Background(), []SubmitParams{{Type: "noop"}, {Type: "nope"}})
		require.ErrorIs(t, err, domain.ErrUnknownJobType)
		require.ErrorContains(t, err, "job 1")
		page, err := b.sys.List(context.Background(), domain.Filter{})
		require.NoError(t, err)
		require.Equal(t, 0, page.Total)

		jobs, err := b.sys.SubmitBatch(context.Background(), []SubmitParams{{Type: "noop"}, {Type: "noop"}, {Type: "noop"}})
		require.NoError(t, err)
		require.Len(t, jobs, 3)
		b.finished.waitFinished(t, 3)
	})

	t.Run("PayloadOverTheLimit", func(t *testing.T) {
		t.Parallel()
		b := setup(t, map[domain.JobType]domain.Handler{"noop": domain.HandlerFunc(noop)}, WithMaxPayloadBytes(8))
		_, err := b.sys.Submit(context.Background(), SubmitParams{Type: "noop", Payload: []byte(`"123456"`)})
		require.NoError(t, err, "exactly the limit is allowed")

		_, err = b.sys.Submit(context.Background(), SubmitParams{Type: "noop", Payload: []byte(`"1234567"`)})
		require.ErrorIs(t, err, domain.ErrPayloadTooLarge)
		require.ErrorIs(t, err, domain.ErrInvalid, "a payload too large is invalid input")
		require.ErrorContains(t, err, "9 bytes, over the limit of 8 bytes")

		_, err = b.sys.SubmitBatch(context.Background(), []SubmitParams{
			{Type: "noop"}, {Type: "noop", Payload: []byte(`"1234567"`)}})
		require.ErrorIs(t, err, domain.ErrPayloadTooLarge)
		var jobErr *BatchJobError
		require.ErrorAs(t, err, &jobErr)
		require.Equal(t, 1, jobErr.Index)
		page, err := b.sys.List(context.Background(), domain.Filter{})
		require.NoError(t, err)
		require.Equal(t, 1, page.Total, "nothing of the refused batch is stored")
		b.finished.waitFinished(t, 1)
	})

	t.Run("PayloadLimitDefault", func(t *testing.T) {
		t.Parallel()
		b := setup(t, map[domain.JobType]domain.Handler{"noop": domain.HandlerFunc(noop)})
		big := make([]byte, MaxPayloadBytesDefault+1)
		_, err := b.sys.Submit(context.Background(), SubmitParams{Type: "noop", Payload: big})
		require.ErrorIs(t, err, domain.ErrPayloadTooLarge)
	})

	t.Run("NotRunning", func(t *testing.T) {
		t.Parallel()
		sys, err := New(fakeStore(), WithLogger(testLogger(t)))
		require.NoError(t, err)
		require.NoError(t, sys.Register("noop", domain.HandlerFunc(noop)))
		_, err = sys.Submit(context.Background(), SubmitParams{Type: "noop"})
		require.ErrorIs(t, err, domain.ErrNotRunning)
		_, err = sys.Cancel(context.Background(), uuid.New())
		require.ErrorIs(t, err, domain.ErrNotRunning)
	})
}

func TestSystem_Register(t *testing.T) {
	t.Parallel()
	sys, err := New(fakeStore())
	require.NoError(t, err)
	require.NoError(t, sys.Register("a", domain.HandlerFunc(noop)))
	require.ErrorIs(t, sys.Register("a", domain.HandlerFunc(noop)), domain.ErrDuplicateHandler)
	require.ErrorIs(t, sys.Register("", domain.HandlerFunc(noop)), domain.ErrInvalid)
	require.ErrorIs(t, sys.Register("b", nil), domain.ErrInvalid)

	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() { errs <- sys.Register("c", domain.HandlerFunc(noop)) })
	}
	wg.Wait()
	close(errs)
	ok := 0
	for err := range errs {
		if err == nil {
			ok++
		} else {
			require.ErrorIs(t, err, domain.ErrDuplicateHandler)
		}
	}
	require.Equal(t, 1, ok)
	require.Equal(t, []domain.JobType{"a", "c"}, sys.JobTypes())
}

func TestSystem_BacklogHasNoActors(t *testing.T) {
	t.Parallel()
	blk := newBlocker()
	b := setup(t, map[domain.JobType]domain.Handler{"block": blk}, WithWorkers(1))
	b.submit(t, "block", 1)
	blk.waitStarted(t)
	for range 500 {
		b.submit(t, "block", 1)
	}
	stats := b.sys.Stats()
	require.Equal(t, 500, stats.QueueDepth)
	require.Equal(t, 1, stats.JobActors, "only the running job has an actor")
	require.Equal(t, WorkerStats{Size: 1, Busy: 1}, stats.Workers)
	close(blk.release)
	b.finished.waitFinished(t, 501)
}

// pingFailStore is a memory store whose Ping fails on demand.
type pingFailStore struct {
	domain.Store
	fail atomic.Bool
}

func (s *pingFailStore) Ping(ctx context.Context) error {
	if s.fail.Load() {
		return errors.New("disk on fire")
	}
	return s.Store.Ping(ctx)
}

func TestSystem_Health(t *testing.T) {
	t.Parallel()
	store := &pingFailStore{Store: memstore.New()}
	sys, err := New(store, WithLogger(testLogger(t)), WithWorkers(3))
	require.NoError(t, err)
	require.False(t, sys.Health(context.Background()).OK(), "not started")
	require.NoError(t, sys.Start(context.Background()))

	h := sys.Health(context.Background())
	require.True(t, h.OK(), "%+v", h)
	require.Equal(t, WorkerStats{Size: 3}, h.Workers)

	store.fail.Store(true)
	h = sys.Health(context.Background())
	require.False(t, h.OK())
	require.ErrorContains(t, h.Store, "disk on fire")
	require.NoError(t, h.Dispatcher)

	require.NoError(t, sys.Stop(context.Background()))
	require.False(t, sys.Health(context.Background()).OK(), "stopped")
}

func TestSystem_Subscribe(t *testing.T) {
	t.Parallel()
	b := setup(t, map[domain.JobType]domain.Handler{"flaky": domain.HandlerFunc(func(ctx context.Context, _ []byte) error {
		if AttemptFromContext(ctx) == 1 {
			return errors.New("once")
		}
		return nil
	})})
	sub := b.sys.Subscribe(100)
	defer sub.Close()
	job := b.submit(t, "flaky", 2)

	var seen []domain.Status
	timeout := time.After(30 * time.Second)
	for len(seen) == 0 || !seen[len(seen)-1].IsTerminal() {
		select {
		case ev := <-sub.C:
			if ev.Job.ID == job.ID {
				seen = append(seen, ev.Job.Status)
			}
		case <-timeout:
			t.Fatalf("events so far: %v", seen)
		}
	}
	// The retry waits out its backoff scheduled, and the scheduler's
	// promotion is an event too.
	require.Equal(t, []domain.Status{
		domain.StatusPending, domain.StatusRunning, domain.StatusScheduled, domain.StatusPending, domain.StatusRunning, domain.StatusCompleted,
	}, seen)
	require.Zero(t, sub.Dropped())
	sub.Close()
	sub.Close()
	_, open := <-sub.C
	require.False(t, open)
}

func TestSystem_SubscribeDropsWhenFull(t *testing.T) {
	t.Parallel()
	b := setup(t, map[domain.JobType]domain.Handler{"noop": domain.HandlerFunc(noop)})
	sub := b.sys.Subscribe(1)
	defer sub.Close()
	for range 10 {
		b.submit(t, "noop", 1)
	}
	b.finished.waitFinished(t, 10)
	require.Positive(t, sub.Dropped(), "a full subscriber misses events instead of blocking jobs")
}
