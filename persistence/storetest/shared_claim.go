package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
)

func testSharedClaim(t *testing.T, newQueue func(t *testing.T) OpenNode) {
	t.Run("ClaimsReadyJobsInOrderAndMarksThemRunning", func(t *testing.T) {
		t.Parallel()
		open := newQueue(t)
		a, b := open(t), open(t)
		older, newer := queuedJob(t, "noop", 3, at(0)), queuedJob(t, "noop", 3, at(2))
		retried := queuedJob(t, "noop", 3, at(-5))
		retried.Attempts = 1
		retried.LastError = "first try failed"
		retried.RunAt = domain.Timestamp(at(1)) // ready after older, before newer
		notYet := queuedJob(t, "noop", 3, at(3))
		notYet.ScheduleAt(later(), time.Now())
		done := withStatus(queuedJob(t, "noop", 3, at(-10)), domain.StatusCompleted)
		require.NoError(t, a.Create(t.Context(), newer, notYet, done, retried, older))

		claimed, err := b.ClaimJobs(t.Context(), "n1", domain.ClaimRequest{Limit: 10, Lease: liveLease})
		require.NoError(t, err)
		require.Equal(t, ids([]*domain.Job{older, retried, newer}), ids(claimed), "ready jobs, oldest ready first")
		for _, j := range claimed {
			require.Equal(t, domain.StatusRunning, j.Status)
			require.False(t, j.StartedAt.IsZero())
			require.Equal(t, j.StartedAt, j.UpdatedAt)
			require.False(t, j.RunAt.IsZero(), "a claim keeps RunAt: when the attempt fell due")
			requireStored(t, a, j) // the claimed job is returned as stored
			requireOwned(t, a, "n1", j.ID)
			requireNotOwned(t, a, "n2", j.ID)
		}
		require.Equal(t, 1, claimed[0].Attempts, "the attempt counts at the claim")
		require.Equal(t, 2, claimed[1].Attempts)
		require.Equal(t, "first try failed", claimed[1].LastError)
		n, err := a.RescueExpired(t.Context())
		require.NoError(t, err)
		require.Zero(t, n, "the claimed leases are live")

		again, err := a.ClaimJobs(t.Context(), "n2", domain.ClaimRequest{Limit: 10, Lease: liveLease})
		require.NoError(t, err)
		require.Empty(t, again, "nothing else is ready")
	})

	t.Run("HonoursTheLimit", func(t *testing.T) {
		t.Parallel()
		q := newQueue(t)(t)
		for i := range 5 {
			require.NoError(t, q.Create(t.Context(), queuedJob(t, "noop", 3, at(i))))
		}
		got, err := q.ClaimJobs(t.Context(), "n1", domain.ClaimRequest{Limit: 2, Lease: liveLease})
		require.NoError(t, err)
		require.Len(t, got, 2)
		got, err = q.ClaimJobs(t.Context(), "n1", domain.ClaimRequest{Limit: 0, Lease: liveLease})
		require.NoError(t, err)
		require.Empty(t, got)
		_, err = q.ClaimJobs(t.Context(), "", domain.ClaimRequest{Limit: 1, Lease: liveLease})
		require.ErrorIs(t, err, domain.ErrInvalid, "a claim names its node")
		got, err = q.ClaimJobs(t.Context(), "n1", domain.ClaimRequest{Limit: 10, Lease: liveLease})
		require.NoError(t, err)
		require.Len(t, got, 3, "the rest")
	})

	t.Run("ByType", func(t *testing.T) {
		t.Parallel()
		q := newQueue(t)(t)
		ctx := t.Context()
		email := queuedJob(t, "email", 1, at(1))
		report := queuedJob(t, "report", 1, at(2))
		require.NoError(t, q.Create(ctx, email, report))

		none, err := q.ClaimJobs(ctx, "n1", domain.ClaimRequest{Limit: 10, Lease: liveLease, Types: []domain.JobType{"resize"}})
		require.NoError(t, err)
		require.Empty(t, none, "no job of a type the node does not handle")

		got, err := q.ClaimJobs(ctx, "n1", domain.ClaimRequest{Limit: 10, Lease: liveLease, Types: []domain.JobType{"report", "resize"}})
		require.NoError(t, err)
		require.Equal(t, []uuid.UUID{report.ID}, ids(got))

		rest, err := q.ClaimJobs(ctx, "n1", domain.ClaimRequest{Limit: 10, Lease: liveLease})
		require.NoError(t, err)
		require.Equal(t, []uuid.UUID{email.ID}, ids(rest), "no types: any type")
	})

	t.Run("ByQueue", func(t *testing.T) {
		t.Parallel()
		open := newQueue(t)
		q, api := open(t), open(t)
		ctx := t.Context()
		email := sharedJobIn(t, "email", 5, at(1))
		report := sharedJobIn(t, "reports", 5, at(2))
		resize := sharedJobIn(t, "images", 5, at(3))
		resize.Type = "resize"
		thumb := sharedJobIn(t, "images", 5, at(4))
		paused := sharedJobIn(t, "paused", 5, at(5))
		require.NoError(t, api.Create(ctx, email, report, resize, thumb, paused))
		require.NoError(t, api.SetQueuePaused(ctx, "paused", true))

		none := sharedClaim(t, q, "n1", domain.ClaimRequest{Limit: 10, Queues: []string{"unknown", "paused"}})
		require.Empty(t, none, "no job of a queue not asked for, none of a paused one")
		none = sharedClaim(t, q, "n1", domain.ClaimRequest{Limit: 10, Queues: []string{"images"}, Room: map[string]int{"images": 0}})
		require.Empty(t, none, "a queue asked for is still capped by its room")

		got := sharedClaim(t, q, "n1", domain.ClaimRequest{Limit: 10, Queues: []string{"images"}, Types: []domain.JobType{"resize"}})
		require.Equal(t, []uuid.UUID{resize.ID}, ids(got), "queues and types together")
		got = sharedClaim(t, q, "n1", domain.ClaimRequest{Limit: 10, Queues: []string{"reports", "images", "unknown"}})
		require.ElementsMatch(t, []uuid.UUID{report.ID, thumb.ID}, ids(got))
		got = sharedClaim(t, q, "n1", domain.ClaimRequest{Limit: 10})
		require.Equal(t, []uuid.UUID{email.ID}, ids(got), "no queues: any queue not paused")
	})

	t.Run("ConcurrentNodesClaimEachJobExactlyOnce", func(t *testing.T) {
		t.Parallel()
		open := newQueue(t)
		const nodes, claimersPerNode, total, batch = 4, 2, 10_000, 100
		handles := open.nodes(t, nodes)
		jobs := make([]*domain.Job, total)
		for i := range jobs {
			jobs[i] = queuedJob(t, "noop", 3, at(i%50))
		}
		require.NoError(t, handles[0].Create(t.Context(), jobs...))

		// Every claimer takes batches from the same pool until it is empty;
		// each records which node got which job.
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			owner = make(map[uuid.UUID][]string, total)
			errs  = make([]error, nodes*claimersPerNode)
		)
		for n, q := range handles {
			for c := range claimersPerNode {
				wg.Go(func() {
					node := fmt.Sprintf("node-%d", n)
					for {
						got, err := q.ClaimJobs(t.Context(), node, domain.ClaimRequest{Limit: batch, Lease: liveLease})
						if err != nil {
							errs[n*claimersPerNode+c] = err
							return
						}
						if len(got) == 0 {
							return
						}
						mu.Lock()
						for _, j := range got {
							owner[j.ID] = append(owner[j.ID], node)
						}
						mu.Unlock()
					}
				})
			}
		}
		wg.Wait()
		require.NoError(t, errors.Join(errs...))
		require.Len(t, owner, total, "every job was claimed")
		for id, nodes := range owner {
			require.Len(t, nodes, 1, "job %s claimed by %v", id, nodes)
		}
		page, err := handles[0].List(t.Context(), domain.Filter{Statuses: []domain.Status{domain.StatusRunning}, Limit: 1})
		require.NoError(t, err)
		require.Equal(t, total, page.Total)
		// Ownership is the claimer's, as seen from any node.
		for _, j := range jobs[:20] {
			node := owner[j.ID][0]
			requireOwned(t, handles[len(handles)-1], node, j.ID)
		}
	})
}
