package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
)

func testSharedRescue(t *testing.T, newQueue func(t *testing.T) OpenNode) {
	t.Run("AnotherNodeReturnsAnExpiredJobToPending", func(t *testing.T) {
		t.Parallel()
		open := newQueue(t)
		dead, alive := open(t), open(t)
		j := claimOne(t, dead, 3, "dead", shortLease)
		require.Equal(t, 1, rescueAtLeast(t, alive, 1))

		got, err := alive.Get(t.Context(), j.ID)
		require.NoError(t, err)
		require.Equal(t, domain.StatusPending, got.Status)
		require.Equal(t, 1, got.Attempts, "the interrupted attempt counts")
		require.Equal(t, domain.ErrInterrupted.Error(), got.LastError, "the attempt ends as interrupted")
		require.True(t, got.FinishedAt.IsZero())
		require.False(t, got.RunAt.IsZero(), "ready at once: RunAt is the rescue's time")
		require.False(t, got.RunAt.After(time.Now().Add(time.Minute)), "ready at once, not later")
		requireNotOwned(t, dead, "dead", j.ID)

		again, err := alive.ClaimJobs(t.Context(), "alive", domain.ClaimRequest{Limit: 1, Lease: liveLease})
		require.NoError(t, err)
		require.Len(t, again, 1)
		require.Equal(t, 2, again[0].Attempts)

		n, err := dead.RescueExpired(t.Context())
		require.NoError(t, err)
		require.Zero(t, n, "a live lease is left alone")
		requireOwned(t, dead, "alive", j.ID)
	})

	t.Run("FailsAJobOutOfAttempts", func(t *testing.T) {
		t.Parallel()
		open := newQueue(t)
		dead, alive := open(t), open(t)
		j := claimOne(t, dead, 1, "dead", shortLease)
		require.Equal(t, 1, rescueAtLeast(t, alive, 1))
		got, err := alive.Get(t.Context(), j.ID)
		require.NoError(t, err)
		require.Equal(t, domain.StatusFailed, got.Status)
		require.Equal(t, 1, got.Attempts)
		require.Equal(t, domain.ErrInterrupted.Error(), got.LastError)
		require.False(t, got.FinishedAt.IsZero())
		requireNotOwned(t, dead, "dead", j.ID)
	})

	t.Run("CancelsAJobWhoseCancelWasRequested", func(t *testing.T) {
		t.Parallel()
		open := newQueue(t)
		dead, alive := open(t), open(t)
		j := claimOne(t, dead, 3, "dead", shortLease)
		_, err := alive.CancelJob(t.Context(), j.ID)
		require.NoError(t, err)
		require.Equal(t, 1, rescueAtLeast(t, alive, 1))
		got, err := alive.Get(t.Context(), j.ID)
		require.NoError(t, err)
		require.Equal(t, domain.StatusCanceled, got.Status)
		require.False(t, got.FinishedAt.IsZero())
		requests, err := alive.CancelRequests(t.Context(), "dead")
		require.NoError(t, err)
		require.Empty(t, requests, "the request ended with the job")
	})

	t.Run("NodesRescueConcurrentlyEachJobOnce", func(t *testing.T) {
		t.Parallel()
		open := newQueue(t)
		const jobs, nodes, rescuersPerNode = 200, 2, 2
		dead := open(t)
		for i := range jobs {
			require.NoError(t, dead.Create(t.Context(), queuedJob(t, "noop", 3, at(i))))
		}
		claimed, err := dead.ClaimJobs(t.Context(), "dead", domain.ClaimRequest{Limit: jobs, Lease: shortLease})
		require.NoError(t, err)
		require.Len(t, claimed, jobs)

		// Every rescuer rescues until no job is running any more.
		handles := open.nodes(t, nodes)
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			rescued int
			errs    = make([]error, nodes*rescuersPerNode)
		)
		running := domain.Filter{Statuses: []domain.Status{domain.StatusRunning}, Limit: 1}
		deadline := time.Now().Add(sharedWaitTimeout)
		for n, q := range handles {
			for r := range rescuersPerNode {
				wg.Go(func() {
					for {
						got, err := q.RescueExpired(t.Context())
						if err != nil {
							errs[n*rescuersPerNode+r] = err
							return
						}
						mu.Lock()
						rescued += got
						mu.Unlock()
						page, err := q.List(t.Context(), running)
						if err != nil {
							errs[n*rescuersPerNode+r] = err
							return
						}
						if page.Total == 0 {
							return
						}
						if time.Now().After(deadline) {
							errs[n*rescuersPerNode+r] = fmt.Errorf("%d jobs still running: their leases never expired", page.Total)
							return
						}
					}
				})
			}
		}
		wg.Wait()
		require.NoError(t, errors.Join(errs...))
		require.Equal(t, jobs, rescued, "each job rescued once")
		page, err := dead.List(t.Context(), domain.Filter{Statuses: []domain.Status{domain.StatusPending}, Limit: 1})
		require.NoError(t, err)
		require.Equal(t, jobs, page.Total, "every job back to pending")
	})
}
