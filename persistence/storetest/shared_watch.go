package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
)

func testSharedWatch(t *testing.T, newQueue func(t *testing.T) OpenNode) {
	jobsAvailable := func(n domain.QueueNotice) bool { return n.Kind == domain.NoticeJobsAvailable }

	t.Run("NewJobsWakeAWatcherOnAnotherNode", func(t *testing.T) {
		t.Parallel()
		open := newQueue(t)
		idle, api := open(t), open(t)
		notices := watch(t, idle)
		require.NoError(t, api.Create(t.Context(), queuedJob(t, "noop", 3, at(0)), queuedJob(t, "noop", 3, at(1))))
		n := awaitNotice(t, notices, jobsAvailable)
		require.True(t, n.RunAt.IsZero(), "ready now")
	})

	t.Run("ARetryAnnouncesWhenItIsReady", func(t *testing.T) {
		t.Parallel()
		open := newQueue(t)
		worker, idle := open(t), open(t)
		j := claimOne(t, worker, 3, "worker", liveLease)
		notices := watch(t, idle)
		runAt := later()
		retry := j.Clone()
		require.NoError(t, retry.Retry(errHandler, runAt, time.Now()))
		require.NoError(t, worker.UpdateOwned(t.Context(), "worker", retry))
		n := awaitNotice(t, notices, jobsAvailable)
		require.Equal(t, runAt, n.RunAt)
	})

	t.Run("ARescueAnnouncesJobs", func(t *testing.T) {
		t.Parallel()
		open := newQueue(t)
		dead, idle := open(t), open(t)
		claimOne(t, dead, 3, "dead", shortLease)
		notices := watch(t, idle)
		rescueAtLeast(t, idle, 1)
		n := awaitNotice(t, notices, jobsAvailable)
		require.True(t, n.RunAt.IsZero(), "ready now")
	})

	t.Run("EveryWatcherHearsACancel", func(t *testing.T) {
		t.Parallel()
		open := newQueue(t)
		owner, other, api := open(t), open(t), open(t)
		j := claimOne(t, owner, 3, "owner", liveLease)
		ownerNotices, otherNotices := watch(t, owner), watch(t, other)
		_, err := api.CancelJob(t.Context(), j.ID)
		require.NoError(t, err)
		// The notice names the node, so every watcher can tell whether the
		// job is its own.
		want := domain.QueueNotice{Kind: domain.NoticeCancelRequested, JobID: j.ID, Node: "owner"}
		isCancel := func(n domain.QueueNotice) bool { return n.Kind == domain.NoticeCancelRequested }
		require.Equal(t, want, awaitNotice(t, ownerNotices, isCancel))
		require.Equal(t, want, awaitNotice(t, otherNotices, isCancel))
	})

	t.Run("ReturnsWhenItsContextEnds", func(t *testing.T) {
		t.Parallel()
		q := newQueue(t)(t)
		ctx, cancel := context.WithCancel(t.Context())
		watching := make(chan struct{}, 1)
		done := make(chan error, 1)
		go func() {
			done <- q.Watch(ctx, func(n domain.QueueNotice) {
				if n.Kind == domain.NoticeWatching {
					select {
					case watching <- struct{}{}:
					default:
					}
				}
			})
		}()
		select {
		case <-watching:
		case <-time.After(sharedWaitTimeout):
			t.Fatal("Watch never announced NoticeWatching")
		}
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(sharedWaitTimeout):
			t.Fatal("Watch did not return after its context ended")
		}
	})
}
