package actors

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/persistence/memstore"
)

// A notice of jobs scheduled on another node sets the scheduler's timer on
// the System's Clock: when the clock reaches RunAt, not before, the
// scheduler promotes the job and the dispatcher claims.
func TestShared_NoticeOfLaterJobsWakesOnTheClock(t *testing.T) {
	clock := newManualClock()
	queue := newFakeSharedQueue()
	store := memstore.New()
	sys, err := New(store, WithSharedQueue(queue), WithClock(clock), WithLogger(testLogger(t)), WithWorkers(1),
		// No poll, renewal or rescue falls due while the test advances the
		// clock by an hour: only the wake-up can claim.
		WithConfig(Config{PollInterval: 24 * time.Hour, LeaseDuration: 24 * time.Hour, RescueInterval: 24 * time.Hour}))
	require.NoError(t, err)
	require.NoError(t, sys.Register("noop", domain.HandlerFunc(noop)))
	require.NoError(t, sys.Start(context.Background()))
	t.Cleanup(func() { require.NoError(t, sys.Stop(context.Background())) })

	// The idle worker's request claims once and finds nothing.
	require.Eventually(t, func() bool { return queue.claimCount() >= 1 }, 5*time.Second, time.Millisecond)

	// Another node stored a job for an hour from now and said so.
	runAt := clock.Now().Add(time.Hour)
	job, err := domain.NewJob("noop", nil, 1, clock.Now())
	require.NoError(t, err)
	job.ScheduleAt(runAt, clock.Now())
	require.NoError(t, store.Create(context.Background(), job))
	queue.notices <- domain.QueueNotice{Kind: domain.NoticeJobsAvailable, RunAt: runAt}
	require.Eventually(t, func() bool { return clock.pendingAt(runAt) }, 5*time.Second, time.Millisecond,
		"the wake-up is a timer of the System's clock")

	clock.advance(time.Hour - time.Microsecond)
	time.Sleep(20 * time.Millisecond)
	got, err := store.Get(context.Background(), job.ID)
	require.NoError(t, err)
	require.Equal(t, domain.StatusScheduled, got.Status, "not promoted before its RunAt")
	// Counted once the claims of the start and of the notice are over.
	before := queue.claimCount()

	clock.advance(time.Microsecond)
	require.Eventually(t, func() bool { return queue.claimCount() > before }, 5*time.Second, time.Millisecond,
		"the dispatcher claims when the clock reaches RunAt")
	got, err = store.Get(context.Background(), job.ID)
	require.NoError(t, err)
	require.Equal(t, domain.StatusPending, got.Status, "promoted at its RunAt")
}
