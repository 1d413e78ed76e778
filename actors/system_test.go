package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
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

func (r *finishRecorder) JobFinished(_ domain.JobType, s domain.Status) {
	r.mu.Lock()
	r.counts[s]++
	r.mu.Unlock()
	r.signal()
}

func (r *finishRecorder) JobRetried(domain.JobType) {
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
		WithRetryBackoff(time.Millisecond, 5*time.Millisecond, false),
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
