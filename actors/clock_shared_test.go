package actors

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
)

// A notice of jobs due later sets the dispatcher's wake-up on the System's
// Clock, so that a retry's backoff in a shared store follows the virtual
// clock: the claim comes when the clock reaches RunAt, not before.
func TestShared_NoticeOfLaterJobsWakesOnTheClock(t *testing.T) {
	clock := newManualClock()
	queue := newFakeSharedQueue()
	sys, err := New(fakeStore(), WithSharedQueue(queue), WithClock(clock), WithLogger(testLogger(t)), WithWorkers(1),
		// No poll, renewal or rescue falls due while the test advances the
		// clock by an hour: only the wake-up can claim.
		WithConfig(Config{PollInterval: 24 * time.Hour, LeaseDuration: 24 * time.Hour, RescueInterval: 24 * time.Hour}))
	require.NoError(t, err)
	require.NoError(t, sys.Register("noop", domain.HandlerFunc(noop)))
	require.NoError(t, sys.Start(context.Background()))
	t.Cleanup(func() { require.NoError(t, sys.Stop(context.Background())) })

	// The idle worker's request claims once and finds nothing.
	require.Eventually(t, func() bool { return queue.claimCount() >= 1 }, 5*time.Second, time.Millisecond)

	runAt := clock.Now().Add(time.Hour)
	queue.notices <- domain.QueueNotice{Kind: domain.NoticeJobsAvailable, RunAt: runAt}
	require.Eventually(t, func() bool { return clock.pendingAt(runAt) }, 5*time.Second, time.Millisecond,
		"the wake-up is a timer of the System's clock")
	before := queue.claimCount()

	clock.advance(time.Hour)
	require.Eventually(t, func() bool { return queue.claimCount() > before }, 5*time.Second, time.Millisecond,
		"the dispatcher claims when the clock reaches RunAt")
}
