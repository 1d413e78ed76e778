package storetest

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
)

// sharedJobIn returns a pending job of queue and priority, created (and
// due) at createdAt.
func sharedJobIn(t *testing.T, queue string, priority int, createdAt time.Time) *domain.Job {
	t.Helper()
	j := queuedJob(t, "noop", 3, createdAt)
	j.Queue, j.Priority = queue, priority
	return j
}

// sharedClaim claims through q on node and fails on an error.
func sharedClaim(t *testing.T, q SharedStore, node string, r domain.ClaimRequest) []*domain.Job {
	t.Helper()
	if r.Lease == 0 {
		r.Lease = liveLease
	}
	got, err := q.ClaimJobs(t.Context(), node, r)
	require.NoError(t, err)
	return got
}

// sharedQueueCounts returns how many of jobs are in each queue.
func sharedQueueCounts(jobs []*domain.Job) map[string]int {
	counts := map[string]int{}
	for _, j := range jobs {
		counts[j.Queue]++
	}
	return counts
}

func testSharedQueues(t *testing.T, newQueue func(t *testing.T) OpenNode) {
	t.Run("PriorityFirstThenRunAtAcrossClaimsOfSeveralNodes", func(t *testing.T) {
		t.Parallel()
		open := newQueue(t)
		a, b := open(t), open(t)
		// Created newest first, so that neither creation nor insertion
		// order is what the claims follow.
		var jobs []*domain.Job
		for i := range 18 {
			priority := domain.MaxPriority - i%domain.MaxPriority
			jobs = append(jobs, sharedJobIn(t, domain.DefaultQueue, priority, at(100-i)))
		}
		require.NoError(t, a.Create(t.Context(), jobs...))
		var order []*domain.Job
		for i := 0; len(order) < len(jobs); i++ {
			q := []SharedStore{a, b}[i%2]
			got := sharedClaim(t, q, "n"+string(rune('a'+i%2)), domain.ClaimRequest{Limit: 4})
			require.NotEmpty(t, got, "jobs remain")
			order = append(order, got...)
		}
		for i := 1; i < len(order); i++ {
			prev, next := order[i-1], order[i]
			require.LessOrEqual(t, prev.Priority, next.Priority, "claim %d: priority 1 runs first", i)
			if prev.Priority == next.Priority {
				require.False(t, next.RunAt.Before(prev.RunAt), "claim %d: within a priority, earliest RunAt first", i)
			}
		}
	})

	t.Run("APausedQueueIsSkippedByEveryNodeUntilResumed", func(t *testing.T) {
		t.Parallel()
		open := newQueue(t)
		a, b, c := open(t), open(t), open(t)
		ctx := t.Context()
		email := sharedJobIn(t, "email", 1, at(0))
		other := sharedJobIn(t, domain.DefaultQueue, 9, at(1))
		require.NoError(t, a.Create(ctx, email, other))
		require.NoError(t, a.SetQueuePaused(ctx, "email", true))

		for _, q := range []SharedStore{b, c} {
			queues, err := q.Queues(ctx)
			require.NoError(t, err)
			require.Contains(t, queues, domain.QueueInfo{Name: "email", Paused: true, Pending: 1}, "every node sees the pause")
		}
		got := sharedClaim(t, b, "nb", domain.ClaimRequest{Limit: 10})
		require.Equal(t, []uuid.UUID{other.ID}, ids(got), "a paused queue's jobs wait, whatever their priority")
		require.Empty(t, sharedClaim(t, c, "nc", domain.ClaimRequest{Limit: 10}), "on every node")

		later := sharedJobIn(t, "email", 5, at(2))
		require.NoError(t, c.Create(ctx, later))
		require.Empty(t, sharedClaim(t, a, "na", domain.ClaimRequest{Limit: 10}), "a paused queue still takes jobs, and holds them")

		notices := watch(t, a)
		require.NoError(t, b.SetQueuePaused(ctx, "email", false))
		awaitNotice(t, notices, func(n domain.QueueNotice) bool { return n.Kind == domain.NoticeJobsAvailable })
		got = sharedClaim(t, c, "nc", domain.ClaimRequest{Limit: 10})
		require.Equal(t, []uuid.UUID{email.ID, later.ID}, ids(got), "resumed on every node")
		queues, err := a.Queues(ctx)
		require.NoError(t, err)
		require.Contains(t, queues, domain.QueueInfo{Name: "email", Running: 2})
	})

	t.Run("PausingAQueueWithoutJobs", func(t *testing.T) {
		t.Parallel()
		open := newQueue(t)
		a, b := open(t), open(t)
		ctx := t.Context()
		require.ErrorIs(t, a.SetQueuePaused(ctx, "Not A Name", true), domain.ErrInvalid)
		require.NoError(t, a.SetQueuePaused(ctx, "reports", true))
		require.NoError(t, a.SetQueuePaused(ctx, "reports", true), "pausing twice is harmless")
		queues, err := b.Queues(ctx)
		require.NoError(t, err)
		require.Equal(t, []domain.QueueInfo{{Name: "reports", Paused: true}}, queues, "a paused queue is listed without jobs")

		j := sharedJobIn(t, "reports", 5, at(0))
		require.NoError(t, b.Create(ctx, j))
		require.Empty(t, sharedClaim(t, b, "nb", domain.ClaimRequest{Limit: 10}), "a job submitted to a paused queue waits")
		require.NoError(t, b.SetQueuePaused(ctx, "reports", false))
		require.Equal(t, []uuid.UUID{j.ID}, ids(sharedClaim(t, a, "na", domain.ClaimRequest{Limit: 10})))
		require.NoError(t, a.UpdateOwned(ctx, "na", sharedCompleted(t, j.ID, a)))
		queues, err = b.Queues(ctx)
		require.NoError(t, err)
		require.Empty(t, queues, "a queue neither paused nor holding unfinished jobs is not listed")
	})

	t.Run("RoomCapsEachNamedQueue", func(t *testing.T) {
		t.Parallel()
		q := newQueue(t)(t)
		ctx := t.Context()
		var jobs []*domain.Job
		for i := range 5 {
			jobs = append(jobs,
				sharedJobIn(t, "email", 5, at(i)),
				sharedJobIn(t, "reports", 5, at(i)),
				sharedJobIn(t, domain.DefaultQueue, 5, at(i)))
		}
		require.NoError(t, q.Create(ctx, jobs...))

		got := sharedClaim(t, q, "n1", domain.ClaimRequest{Limit: 100, Room: map[string]int{"email": 2, "reports": 0}})
		require.Equal(t, map[string]int{"email": 2, domain.DefaultQueue: 5}, sharedQueueCounts(got),
			"email takes its room, reports none, default is capped by the limit only")
		got = sharedClaim(t, q, "n1", domain.ClaimRequest{Limit: 100, Room: map[string]int{"email": 1, "reports": -3}})
		require.Equal(t, map[string]int{"email": 1}, sharedQueueCounts(got), "a negative room is none")
		got = sharedClaim(t, q, "n1", domain.ClaimRequest{Limit: 3, Room: map[string]int{"reports": 10}})
		require.Len(t, got, 3, "the limit caps a queue with more room")
	})

	t.Run("AFloodInOneQueueDoesNotStallAnother", func(t *testing.T) {
		t.Parallel()
		open := newQueue(t)
		a, b := open(t), open(t)
		ctx := t.Context()
		flood := make([]*domain.Job, 2000)
		for i := range flood {
			// Older and more urgent than anything in default.
			flood[i] = sharedJobIn(t, "bulk", 1, at(i%100))
		}
		require.NoError(t, a.Create(ctx, flood...))
		var few []*domain.Job
		for i := range 10 {
			few = append(few, sharedJobIn(t, domain.DefaultQueue, 9, at(1000+i)))
		}
		require.NoError(t, a.Create(ctx, few...))

		got := sharedClaim(t, b, "nb", domain.ClaimRequest{Limit: 10})
		require.Equal(t, map[string]int{"bulk": 5, domain.DefaultQueue: 5}, sharedQueueCounts(got), "the claim takes turns across queues")
		got = sharedClaim(t, a, "na", domain.ClaimRequest{Limit: 4})
		require.Equal(t, map[string]int{"bulk": 2, domain.DefaultQueue: 2}, sharedQueueCounts(got))
		got = sharedClaim(t, b, "nb", domain.ClaimRequest{Limit: 10})
		require.Equal(t, map[string]int{"bulk": 7, domain.DefaultQueue: 3}, sharedQueueCounts(got),
			"a queue that runs out leaves its turns to the others")
		require.Equal(t, ids(few[7:]), ids(sharedInQueue(got, domain.DefaultQueue)), "within a queue, in order")
	})
}

// sharedInQueue returns the jobs of jobs in queue, in their order.
func sharedInQueue(jobs []*domain.Job, queue string) []*domain.Job {
	var out []*domain.Job
	for _, j := range jobs {
		if j.Queue == queue {
			out = append(out, j)
		}
	}
	return out
}

// sharedCompleted reads job id through q and returns it completed.
func sharedCompleted(t *testing.T, id uuid.UUID, q SharedStore) *domain.Job {
	t.Helper()
	j, err := q.Get(t.Context(), id)
	require.NoError(t, err)
	require.NoError(t, j.Complete(time.Now()))
	return j
}
