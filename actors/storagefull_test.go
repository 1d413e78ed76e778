package actors

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/persistence/memstore"
)

// fullDiskStore refuses new jobs, and the outcomes of attempts, with
// domain.ErrStorageFull while full is set: a disk that filled while a job
// ran.
type fullDiskStore struct {
	*memstore.Store
	full atomic.Bool
}

func (s *fullDiskStore) Create(ctx context.Context, jobs ...*domain.Job) error {
	if s.full.Load() {
		return fmt.Errorf("create: disk full (0 bytes free): %w", domain.ErrStorageFull)
	}
	return s.Store.Create(ctx, jobs...)
}

func (s *fullDiskStore) Insert(ctx context.Context, now time.Time, jobs []*domain.Job) ([]*domain.Job, error) {
	if s.full.Load() {
		return nil, fmt.Errorf("insert: disk full (0 bytes free): %w", domain.ErrStorageFull)
	}
	return s.Store.Insert(ctx, now, jobs)
}

func (s *fullDiskStore) Update(ctx context.Context, jobs ...*domain.Job) error {
	if s.full.Load() {
		for _, j := range jobs {
			if j.Status.IsTerminal() {
				return fmt.Errorf("update job %s: disk full (0 bytes free): %w", j.ID, domain.ErrStorageFull)
			}
		}
	}
	return s.Store.Update(ctx, jobs...)
}

// logRecorder keeps the messages logged at error.
type logRecorder struct {
	mu     sync.Mutex
	errors []string
}

func (r *logRecorder) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelError }
func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	line := rec.Message
	rec.Attrs(func(a slog.Attr) bool {
		line += " " + a.String()
		return true
	})
	r.errors = append(r.errors, line)
	return nil
}
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *logRecorder) WithGroup(string) slog.Handler      { return r }

func (r *logRecorder) count(substr string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, l := range r.errors {
		if strings.Contains(l, substr) {
			n++
		}
	}
	return n
}

// TestSystem_OutcomeRefusedForAFullDiskIsKeptAndRetried checks that an
// outcome the store refuses for lack of space is neither dropped nor
// applied: the job stays stored as it was (running), the refusal is logged
// at error, and the outcome is written once space comes back.
func TestSystem_OutcomeRefusedForAFullDiskIsKeptAndRetried(t *testing.T) {
	t.Parallel()
	store := &fullDiskStore{Store: memstore.New()}
	logs := &logRecorder{}
	release := make(chan struct{})
	handler := domain.HandlerFunc(func(ctx context.Context, _ []byte) error {
		<-release
		return nil
	})
	sys, err := New(store, WithLogger(slog.New(logs)), WithRetryBackoff(time.Millisecond, 20*time.Millisecond, NoJitter))
	require.NoError(t, err)
	require.NoError(t, sys.Register("work", handler))
	require.NoError(t, sys.Start(t.Context()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, sys.Stop(ctx))
	})

	job, err := sys.Submit(t.Context(), SubmitParams{Type: "work"})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		j, err := store.Get(context.Background(), job.ID)
		return err == nil && j.Status == domain.StatusRunning
	}, 10*time.Second, time.Millisecond)

	store.full.Store(true)
	_, err = sys.Submit(t.Context(), SubmitParams{Type: "work"})
	require.ErrorIs(t, err, domain.ErrStorageFull, "new jobs are refused")
	close(release)
	require.Eventually(t, func() bool {
		return logs.count("store refused the outcome of an attempt; retrying") >= 2
	}, 10*time.Second, time.Millisecond, "the refusal is logged at error, and retried")
	j, err := store.Get(t.Context(), job.ID)
	require.NoError(t, err)
	require.Equal(t, domain.StatusRunning, j.Status, "stored as it was while the outcome is refused")

	store.full.Store(false)
	require.Eventually(t, func() bool {
		j, err := store.Get(context.Background(), job.ID)
		return err == nil && j.Status == domain.StatusCompleted
	}, 10*time.Second, time.Millisecond, "the outcome is written once space is back")
}
