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

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/persistence/memstore"
	"github.com/troupe-go/troupe/persistence/storetest"
)

// pruneMetrics records the batches the pruner reports.
type pruneMetrics struct {
	NopMetrics
	mu      sync.Mutex
	batches map[domain.Status][]int
}

func newPruneMetrics() *pruneMetrics { return &pruneMetrics{batches: map[domain.Status][]int{}} }

func (m *pruneMetrics) JobsPruned(st domain.Status, n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.batches[st] = append(m.batches[st], n)
}

func (m *pruneMetrics) pruned(st domain.Status) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, b := range m.batches[st] {
		n += b
	}
	return n
}

func (m *pruneMetrics) batchesOf(st domain.Status) []int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]int(nil), m.batches[st]...)
}

// logLines keeps every log line at info and above.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) Enabled(_ context.Context, lv slog.Level) bool { return lv >= slog.LevelInfo }
func (l *logLines) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Level.String() + " " + r.Message)
	r.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.String())
		return true
	})
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, b.String())
	return nil
}
func (l *logLines) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logLines) WithGroup(string) slog.Handler      { return l }

func (l *logLines) matching(substrs ...string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
next:
	for _, line := range l.lines {
		for _, s := range substrs {
			if !strings.Contains(line, s) {
				continue next
			}
		}
		out = append(out, line)
	}
	return out
}

func finishedJob(t *testing.T, st domain.Status, finishedAt time.Time, opts ...storetest.JobOption) *domain.Job {
	t.Helper()
	opts = append([]storetest.JobOption{storetest.JobCreatedAt(finishedAt.Add(-time.Minute)), storetest.JobFinished(st, finishedAt)}, opts...)
	return storetest.NewJob(t, "noop", opts...)
}

func stored(t *testing.T, store domain.Store, id uuid.UUID) bool {
	t.Helper()
	_, err := store.Get(context.Background(), id)
	if err != nil {
		require.ErrorIs(t, err, domain.ErrNotFound)
		return false
	}
	return true
}

// The pruner of a running System deletes, on the virtual clock, each
// terminal status's jobs once its retention has passed since they
// finished, keeps those of a status kept for ever, those still holding
// their unique key and unfinished ones, forgets expired idempotency
// records, and counts what it deleted.
func TestPruner_DeletesEachStatusAfterItsRetention(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := scheduleClock(t0)
	store := memstore.New()
	ctx := context.Background()
	ago := func(d time.Duration) time.Time { return t0.Add(-d) }

	oldCompleted := finishedJob(t, domain.StatusCompleted, ago(2*time.Hour))
	newCompleted := finishedJob(t, domain.StatusCompleted, ago(30*time.Minute))
	keyed := finishedJob(t, domain.StatusCompleted, ago(2*time.Hour), storetest.JobUniqueKey("k", 24*time.Hour))
	oldFailed := finishedJob(t, domain.StatusFailed, ago(3*time.Hour))
	newFailed := finishedJob(t, domain.StatusFailed, ago(time.Hour))
	ancientCanceled := finishedJob(t, domain.StatusCanceled, ago(1000*time.Hour))
	pending := storetest.NewJob(t, "noop", storetest.JobCreatedAt(ago(1000*time.Hour)), storetest.JobRunAt(t0.Add(100*time.Hour)))
	require.NoError(t, store.Create(ctx, oldCompleted, newCompleted, keyed, oldFailed, newFailed, ancientCanceled, pending))
	_, err := store.BeginRequest(ctx, t0, domain.RequestRecord{Scope: "a", Key: "expired", ExpiresAt: t0.Add(time.Second)})
	require.NoError(t, err)
	_, err = store.BeginRequest(ctx, t0, domain.RequestRecord{Scope: "a", Key: "live", ExpiresAt: t0.Add(time.Hour)})
	require.NoError(t, err)

	metrics, logs := newPruneMetrics(), &logLines{}
	sys, err := New(store, WithClock(clock), WithMetrics(metrics), WithLogger(slog.New(logs)),
		WithRetention(Retention{Completed: time.Hour, Failed: 2 * time.Hour, Canceled: KeepForever}))
	require.NoError(t, err)
	require.NoError(t, sys.Register("noop", domain.HandlerFunc(noop)))
	require.NoError(t, sys.Start(ctx))
	t.Cleanup(func() { require.NoError(t, sys.Stop(context.Background())) })

	first := t0.Add(pruneInterval)
	waitFor(t, func() bool { return clock.pendingAt(first) })
	require.True(t, stored(t, store, oldCompleted.ID), "nothing is pruned before the first pass")
	clock.advance(pruneInterval)
	waitFor(t, func() bool {
		return metrics.pruned(domain.StatusCompleted) == 1 && metrics.pruned(domain.StatusFailed) == 1
	})
	waitFor(t, func() bool { return len(logs.matching("pruned finished jobs")) == 1 })
	line := logs.matching("pruned finished jobs")[0]
	require.Contains(t, line, "INFO")
	require.Contains(t, line, "completed=1")
	require.Contains(t, line, "failed=1")
	require.Contains(t, line, "requests=1")
	require.NotContains(t, line, "canceled")

	require.False(t, stored(t, store, oldCompleted.ID))
	require.False(t, stored(t, store, oldFailed.ID))
	for _, j := range []*domain.Job{newCompleted, keyed, newFailed, ancientCanceled, pending} {
		require.True(t, stored(t, store, j.ID), "%s finished at %s", j.Status, j.FinishedAt)
	}
	require.Zero(t, metrics.pruned(domain.StatusCanceled))

	// Half an hour on, the younger completed job is past its hour.
	clock.advance(30 * time.Minute)
	waitFor(t, func() bool { return metrics.pruned(domain.StatusCompleted) == 2 })
	require.False(t, stored(t, store, newCompleted.ID))
	require.True(t, stored(t, store, newFailed.ID), "failed jobs are kept two hours")
	require.Len(t, logs.matching("pruned finished jobs"), 2, "one line per pass that deleted something")

	// The live request record was kept: it is the only one left to expire.
	n, err := store.DeleteExpiredRequests(ctx, t0.Add(1000*time.Hour), 100)
	require.NoError(t, err)
	require.Equal(t, 1, n)
}

// A backlog is deleted in batches of the pruner's size, with a pause
// between two, each batch counted as it goes.
func TestPruner_DeletesInBatches(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	store := memstore.New()
	ctx := context.Background()
	for i := range 7 {
		require.NoError(t, store.Create(ctx, finishedJob(t, domain.StatusCompleted, t0.Add(-time.Duration(48+i)*time.Hour))))
	}
	for i := range 4 {
		require.NoError(t, store.Create(ctx, finishedJob(t, domain.StatusFailed, t0.Add(-time.Duration(200+i)*time.Hour))))
	}
	for i := range 5 {
		_, err := store.BeginRequest(ctx, t0.Add(-time.Hour), domain.RequestRecord{Scope: "a", Key: fmt.Sprint(i), ExpiresAt: t0.Add(-time.Minute)})
		require.NoError(t, err)
	}
	metrics := newPruneMetrics()
	var pauses atomic.Int64
	p := &pruner{
		store: store, clock: scheduleClock(t0), logger: testLogger(t), metrics: metrics,
		retention: Config{}.WithDefaults().Retention, batch: 3,
		pause: func(context.Context, time.Duration) bool { pauses.Add(1); return true },
	}
	require.True(t, p.pass(ctx))
	require.Equal(t, []int{3, 3, 1}, metrics.batchesOf(domain.StatusCompleted))
	require.Equal(t, []int{3, 1}, metrics.batchesOf(domain.StatusFailed))
	// completed: 2 pauses; failed: 1; requests (3, 2): 1.
	require.Equal(t, int64(4), pauses.Load())
	page, err := store.List(ctx, domain.Filter{})
	require.NoError(t, err)
	require.Zero(t, page.Total)
	n, err := store.DeleteExpiredRequests(ctx, t0.Add(time.Hour), 100)
	require.NoError(t, err)
	require.Zero(t, n, "every expired record was deleted")
}

// A store refusing deletes (its disk full, say) makes the pruner warn and
// wait longer before the next pass, without stopping it; once the store
// accepts, it prunes and goes back to its interval.
func TestPruner_BacksOffWhileTheStoreRefuses(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := scheduleClock(t0)
	inner := memstore.New()
	ctx := context.Background()
	old := finishedJob(t, domain.StatusCompleted, t0.Add(-48*time.Hour))
	require.NoError(t, inner.Create(ctx, old))
	store := storetest.NewFaultStore(inner)
	store.Fail(storetest.OpDelete, domain.ErrStorageFull)
	metrics, logs := newPruneMetrics(), &logLines{}
	p := &pruner{
		store: store, clock: clock, logger: slog.New(logs), metrics: metrics,
		retention: Config{}.WithDefaults().Retention, interval: pruneInterval, batch: pruneBatch, pause: wallPause,
	}
	require.NoError(t, p.Start(ctx))
	t.Cleanup(p.Stop)

	delay := pruneInterval
	for i := 1; i <= 3; i++ {
		waitFor(t, func() bool { return slicesEqual(clock.waiting(), []time.Duration{delay}) })
		clock.advance(delay)
		waitFor(t, func() bool {
			return len(logs.matching("WARN", "deleting finished jobs failed", "out of disk space")) == i
		})
		delay *= 2
	}
	require.True(t, stored(t, inner, old.ID))
	store.Heal()
	waitFor(t, func() bool { return slicesEqual(clock.waiting(), []time.Duration{delay}) })
	clock.advance(delay)
	waitFor(t, func() bool { return metrics.pruned(domain.StatusCompleted) == 1 })
	require.False(t, stored(t, inner, old.ID))
	waitFor(t, func() bool { return slicesEqual(clock.waiting(), []time.Duration{pruneInterval}) })
}

func slicesEqual(a, b []time.Duration) bool {
	return fmt.Sprint(a) == fmt.Sprint(b)
}

func TestPruneIntervalFor(t *testing.T) {
	t.Parallel()
	def := Config{}.WithDefaults().Retention
	require.Equal(t, pruneInterval, pruneIntervalFor(def))
	require.Equal(t, 10*time.Second, pruneIntervalFor(Retention{Completed: 30 * time.Second, Failed: KeepForever, Canceled: KeepForever}))
	require.Equal(t, 5*time.Second, pruneIntervalFor(Retention{Completed: 15 * time.Second, Failed: time.Hour, Canceled: time.Hour}))
	require.Equal(t, time.Second, pruneIntervalFor(Retention{Completed: time.Millisecond, Failed: time.Hour, Canceled: time.Hour}))
	require.Equal(t, pruneInterval, pruneIntervalFor(Retention{Completed: KeepForever, Failed: KeepForever, Canceled: KeepForever}))
}
