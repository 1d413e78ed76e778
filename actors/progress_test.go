package actors

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/persistence/badgerstore"
	"github.com/troupe-go/troupe/persistence/memstore"
	"github.com/troupe-go/troupe/persistence/storetest"
)

// progressCounter counts the writes of running jobs with a progress: the
// progress writes (the start of an attempt has none, an outcome is not
// running).
type progressCounter struct {
	domain.Store
	mu     sync.Mutex
	writes int
}

func (s *progressCounter) Update(ctx context.Context, jobs ...*domain.Job) error {
	s.mu.Lock()
	for _, j := range jobs {
		if j.Status == domain.StatusRunning && j.Progress != nil {
			s.writes++
		}
	}
	s.mu.Unlock()
	return s.Store.Update(ctx, jobs...)
}

func (s *progressCounter) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes
}

func storedProgress(t *testing.T, sys *System, id [16]byte) *domain.Progress {
	t.Helper()
	job, err := sys.Get(context.Background(), id)
	require.NoError(t, err)
	return job.Progress
}

// 10,000 reports in a tight loop, on a clock that does not move: the first
// is written at once, the rest wait for the interval and are written as
// one, the latest; the outcome carries the report made after that.
func TestProgress_TightLoopIsCoalesced(t *testing.T) {
	t.Parallel()
	clock := newManualClock()
	store := &progressCounter{Store: memstore.New()}
	reported, proceed := make(chan struct{}), make(chan struct{})
	h := domain.HandlerFunc(func(ctx context.Context, _ []byte) error {
		for i := 1; i <= 10_000; i++ {
			ReportProgress(ctx, float64(i)/200, "step "+strconv.Itoa(i))
		}
		close(reported)
		select {
		case <-proceed:
		case <-ctx.Done():
			return ctx.Err()
		}
		ReportProgress(ctx, 100, "done")
		return nil
	})
	sys, rec := startOnWith(t, store, "p", h, WithClock(clock))
	job, err := sys.Submit(context.Background(), SubmitParams{Type: "p"})
	require.NoError(t, err)
	<-reported
	reportedAt := clock.Now()
	waitFor(t, func() bool { return store.count() >= 1 })
	require.Equal(t, 1, store.count(), "one write until the interval passes")
	clock.advance(progressInterval)
	waitFor(t, func() bool {
		p := storedProgress(t, sys, job.ID)
		return p != nil && p.Message == "step 10000"
	})
	require.LessOrEqual(t, store.count(), 2)
	p := storedProgress(t, sys, job.ID)
	require.Equal(t, 50.0, p.Percent)
	require.Equal(t, reportedAt, p.UpdatedAt, "when the handler reported it")

	close(proceed)
	rec.waitFinished(t, 1)
	got, err := sys.Get(context.Background(), job.ID)
	require.NoError(t, err)
	require.Equal(t, domain.StatusCompleted, got.Status)
	require.Equal(t, &domain.Progress{Percent: 100, Message: "done", UpdatedAt: clock.Now()}, got.Progress,
		"the outcome carries the latest progress, never written on its own")
	require.LessOrEqual(t, store.count(), 2)
}

// On the wall clock, on Badger, a tight loop of 10,000 reports costs at
// most one write per interval it lasts, plus the first.
func TestProgress_TightLoopOnTheWallClock(t *testing.T) {
	t.Parallel()
	bs, err := badgerstore.Open(badgerstore.Options{Dir: t.TempDir(), Logger: quietLogger()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = bs.Close() })
	store := &progressCounter{Store: bs}
	var took time.Duration
	h := domain.HandlerFunc(func(ctx context.Context, _ []byte) error {
		start := time.Now()
		for i := 1; i <= 10_000; i++ {
			ReportProgress(ctx, float64(i)/100, "step "+strconv.Itoa(i))
		}
		took = time.Since(start)
		return nil
	})
	sys, rec := startOnWith(t, store, "p", h)
	_, err = sys.Submit(context.Background(), SubmitParams{Type: "p"})
	require.NoError(t, err)
	rec.waitFinished(t, 1)
	bound := int(took/progressInterval) + 1
	t.Logf("10,000 reports took %s: %d progress writes (at most %d)", took, store.count(), bound)
	require.GreaterOrEqual(t, store.count(), 1, "the first report is written at once")
	require.LessOrEqual(t, store.count(), bound)
}

// Each progress write is published, with the running job.
func TestProgress_IsPublished(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	h := domain.HandlerFunc(func(ctx context.Context, _ []byte) error {
		ReportProgress(ctx, 40, "reading")
		<-release
		return nil
	})
	sys, rec := startOnWith(t, memstore.New(), "p", h)
	sub := sys.Subscribe(64)
	defer sub.Close()
	job, err := sys.Submit(context.Background(), SubmitParams{Type: "p"})
	require.NoError(t, err)
	deadline := time.After(30 * time.Second)
	for found := false; !found; {
		select {
		case ev := <-sub.C:
			if ev.Job.ID == job.ID && ev.Job.Progress != nil {
				require.Equal(t, domain.StatusRunning, ev.Job.Status)
				require.Equal(t, 40.0, ev.Job.Progress.Percent)
				require.Equal(t, "reading", ev.Job.Progress.Message)
				found = true
			}
		case <-deadline:
			t.Fatal("no progress event")
		}
	}
	close(release)
	rec.waitFinished(t, 1)
}

// A retry's attempt starts with no progress; the failed attempt's snapshot
// kept the progress it reached.
func TestProgress_NewAttemptStartsWithout(t *testing.T) {
	t.Parallel()
	var sys *System
	atStart := make(chan *domain.Progress, 1)
	h := domain.HandlerFunc(func(ctx context.Context, _ []byte) error {
		id, _ := JobIDFromContext(ctx)
		if AttemptFromContext(ctx) == 1 {
			ReportProgress(ctx, 50, "half")
			return errors.New("lost the connection")
		}
		job, err := sys.Get(ctx, id)
		if err != nil {
			return err
		}
		atStart <- job.Progress
		return nil
	})
	var rec *finishRecorder
	sys, rec = startOnWith(t, memstore.New(), "p", h)
	sub := sys.Subscribe(64)
	defer sub.Close()
	job, err := sys.Submit(context.Background(), SubmitParams{Type: "p", MaxAttempts: 2})
	require.NoError(t, err)
	rec.waitFinished(t, 1)
	require.Nil(t, <-atStart)

	var failed *domain.Job
	for failed == nil {
		ev := <-sub.C
		if ev.Job.ID == job.ID && ev.Job.Attempts == 1 && ev.Job.LastError != "" {
			failed = ev.Job
		}
	}
	require.NotNil(t, failed.Progress, "the failed attempt's outcome carries its progress")
	require.Equal(t, "half", failed.Progress.Message)
	got, err := sys.Get(context.Background(), job.ID)
	require.NoError(t, err)
	require.Equal(t, domain.StatusCompleted, got.Status)
	require.Nil(t, got.Progress)
}

// A progress write the store refuses is tried again: a handler that
// reports once and then works on shows its progress without reporting
// again, and completes with it.
func TestProgress_FailedWriteIsRetried(t *testing.T) {
	t.Parallel()
	fs := storetest.NewFaultStore(memstore.New())
	fs.Inject(storetest.Fault{Ops: storetest.OpUpdate, Times: 1, Match: func(j *domain.Job) bool {
		return j.Status == domain.StatusRunning && j.Progress != nil
	}})
	shown := make(chan struct{})
	h := domain.HandlerFunc(func(ctx context.Context, _ []byte) error {
		ReportProgress(ctx, 10, "first")
		select {
		case <-shown:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	sys, rec := startOnWith(t, fs, "p", h)
	job, err := sys.Submit(context.Background(), SubmitParams{Type: "p"})
	require.NoError(t, err)
	waitFor(t, func() bool { return fs.Refused(storetest.OpUpdate) == 1 })
	waitFor(t, func() bool {
		p := storedProgress(t, sys, job.ID)
		return p != nil && p.Message == "first"
	})
	close(shown)
	rec.waitFinished(t, 1)
	got, err := sys.Get(context.Background(), job.ID)
	require.NoError(t, err)
	require.Equal(t, domain.StatusCompleted, got.Status)
	require.Equal(t, 1, got.Attempts)
	require.Empty(t, got.LastError)
	require.NotNil(t, got.Progress)
	require.Equal(t, "first", got.Progress.Message)
}

// ReportProgress allocates nothing per call (a message is allocated only
// when the actor has taken the previous report): a handler may call it in
// its inner loop.
// Not parallel: AllocsPerRun counts every goroutine's allocations.
func TestProgress_ReportDoesNotAllocate(t *testing.T) {
	clock := newManualClock()
	allocs := make(chan float64, 1)
	h := domain.HandlerFunc(func(ctx context.Context, _ []byte) error {
		ReportProgress(ctx, 1, "warming up") // allocates the slot
		allocs <- testing.AllocsPerRun(10_000, func() { ReportProgress(ctx, 50, "working") })
		return nil
	})
	sys, rec := startOnWith(t, memstore.New(), "p", h, WithClock(clock))
	_, err := sys.Submit(context.Background(), SubmitParams{Type: "p"})
	require.NoError(t, err)
	rec.waitFinished(t, 1)
	require.Zero(t, <-allocs)
}
