package actors

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/persistence/memstore"
)

// flakyPromotions is a store whose PromoteDue fails while failing is set.
type flakyPromotions struct {
	*memstore.Store
	failing atomic.Bool
	calls   atomic.Int64
}

func (s *flakyPromotions) PromoteDue(ctx context.Context, now time.Time, limit int) ([]*domain.Job, error) {
	s.calls.Add(1)
	if s.failing.Load() {
		return nil, domain.ErrUnavailable
	}
	return s.Store.PromoteDue(ctx, now, limit)
}

// A round the store refuses is tried again after a pause, on the clock,
// and the due jobs are then handed on.
func TestScheduler_RetriesARefusedRoundAfterAPause(t *testing.T) {
	t.Parallel()
	clock := newManualClock()
	store := &flakyPromotions{Store: memstore.New()}
	var mu sync.Mutex
	var handed []*domain.Job
	s := &scheduler{
		store: store, clock: clock, logger: testLogger(t), poll: time.Hour,
		promoted: func(jobs []*domain.Job) {
			mu.Lock()
			handed = append(handed, jobs...)
			mu.Unlock()
		},
		roundDone: func() {},
		publish:   func(*domain.Job) {},
		kick:      make(chan struct{}, 1),
	}
	job, err := domain.NewJob("noop", nil, 1, clock.Now())
	require.NoError(t, err)
	job.ScheduleAt(clock.Now().Add(time.Minute), clock.Now())
	require.NoError(t, store.Create(context.Background(), job))

	require.NoError(t, s.Start(context.Background()))
	t.Cleanup(s.Stop)
	waitFor(t, func() bool { return clock.pendingAt(job.RunAt) })
	store.failing.Store(true)
	clock.advance(time.Minute)
	retryAt := clock.Now().Add(schedulerRetryDelay)
	waitFor(t, func() bool { return clock.pendingAt(retryAt) })
	mu.Lock()
	require.Empty(t, handed)
	mu.Unlock()

	store.failing.Store(false)
	clock.advance(schedulerRetryDelay)
	waitFor(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(handed) == 1
	})
	require.Equal(t, job.ID, handed[0].ID)
	require.Equal(t, domain.StatusPending, handed[0].Status)
}

// notify only ever moves the timer earlier, and after Stop it does nothing.
func TestScheduler_NotifyKeepsTheEarliestRunAt(t *testing.T) {
	t.Parallel()
	clock := newManualClock()
	s := &scheduler{store: memstore.New(), clock: clock, logger: testLogger(t), poll: 1000 * time.Hour,
		promoted: func([]*domain.Job) {}, roundDone: func() {}, publish: func(*domain.Job) {}, kick: make(chan struct{}, 1)}
	require.NoError(t, s.Start(context.Background()))
	waitFor(t, func() bool { return clock.pending() == 1 }) // the poll, after the first round
	now := clock.Now()
	s.notify(now.Add(time.Hour))
	s.notify(now.Add(2 * time.Hour))
	require.True(t, clock.pendingAt(now.Add(time.Hour)))
	require.False(t, clock.pendingAt(now.Add(2*time.Hour)))
	s.notify(now.Add(time.Minute))
	require.True(t, clock.pendingAt(now.Add(time.Minute)))
	require.False(t, clock.pendingAt(now.Add(time.Hour)), "one timer: the later one is stopped")
	s.Stop()
	require.Zero(t, clock.pending(), "Stop leaves no timer")
	s.notify(now.Add(time.Second))
	require.Zero(t, clock.pending())
}
