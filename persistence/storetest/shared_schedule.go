package storetest

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
)

// sharedScheduledJob returns a job scheduled for runAt, created at
// createdAt. A runAt in the suite's past is due for every clock.
func sharedScheduledJob(t *testing.T, createdAt, runAt time.Time) *domain.Job {
	t.Helper()
	j := queuedJob(t, "noop", 3, createdAt)
	j.Status = domain.StatusScheduled
	j.RunAt = domain.Timestamp(runAt)
	return j
}

func testSharedSchedule(t *testing.T, newQueue func(t *testing.T) OpenNode) {
	t.Run("AScheduledJobWaitsUntilPromoted", func(t *testing.T) {
		t.Parallel()
		open := newQueue(t)
		a, b := open(t), open(t)
		ctx := t.Context()
		next, err := b.NextRunAt(ctx)
		require.NoError(t, err)
		require.True(t, next.IsZero(), "nothing is scheduled")

		runAt := later()
		notYet := sharedScheduledJob(t, at(0), runAt)
		afterThat := sharedScheduledJob(t, at(1), runAt.Add(time.Minute))
		require.NoError(t, a.Create(ctx, afterThat, notYet))
		next, err = b.NextRunAt(ctx)
		require.NoError(t, err)
		require.Equal(t, runAt, next, "the earliest RunAt of a scheduled job")

		require.Empty(t, sharedClaim(t, b, "nb", domain.ClaimRequest{Limit: 10}), "a scheduled job is not claimed")
		promoted, err := b.PromoteDue(ctx, time.Now(), 10)
		require.NoError(t, err)
		require.Empty(t, promoted, "nor promoted before its RunAt")
		requireStored(t, a, notYet)
	})

	t.Run("PromoteDueMakesDueJobsPendingEarliestFirst", func(t *testing.T) {
		t.Parallel()
		open := newQueue(t)
		a, b := open(t), open(t)
		ctx := t.Context()
		var due []*domain.Job
		for i := range 5 {
			due = append(due, sharedScheduledJob(t, at(0), at(10-i)))
		}
		notYet := sharedScheduledJob(t, at(0), later())
		require.NoError(t, a.Create(ctx, append(slices.Clone(due), notYet)...))

		promoted, err := b.PromoteDue(ctx, time.Now(), 2)
		require.NoError(t, err)
		require.Equal(t, []uuid.UUID{due[4].ID, due[3].ID}, ids(promoted), "earliest RunAt first, up to the limit")
		for _, j := range promoted {
			require.Equal(t, domain.StatusPending, j.Status)
			requireStored(t, a, j) // returned as stored
		}
		claimed := sharedClaim(t, a, "na", domain.ClaimRequest{Limit: 10})
		require.Equal(t, ids(promoted), ids(claimed), "a promoted job is claimed like any pending one")

		promoted, err = a.PromoteDue(ctx, time.Now(), 10)
		require.NoError(t, err)
		require.Equal(t, []uuid.UUID{due[2].ID, due[1].ID, due[0].ID}, ids(promoted))
		promoted, err = a.PromoteDue(ctx, time.Now(), 0)
		require.NoError(t, err)
		require.Empty(t, promoted, "a limit of 0 promotes nothing")
		next, err := b.NextRunAt(ctx)
		require.NoError(t, err)
		require.Equal(t, notYet.RunAt, next)
	})

	t.Run("NodesPromoteConcurrentlyEachJobOnce", func(t *testing.T) {
		t.Parallel()
		open := newQueue(t)
		const jobs, nodes, promotersPerNode, batch = 1000, 2, 2, 25
		handles := open.nodes(t, nodes)
		scheduled := make([]*domain.Job, jobs)
		for i := range scheduled {
			scheduled[i] = sharedScheduledJob(t, at(0), at(i%100))
		}
		require.NoError(t, handles[0].Create(t.Context(), scheduled...))

		var (
			wg       sync.WaitGroup
			mu       sync.Mutex
			promoted = map[uuid.UUID]int{}
			errs     = make([]error, nodes*promotersPerNode)
		)
		for n, q := range handles {
			for p := range promotersPerNode {
				wg.Go(func() {
					for {
						got, err := q.PromoteDue(t.Context(), time.Now(), batch)
						if err != nil {
							errs[n*promotersPerNode+p] = err
							return
						}
						if len(got) == 0 {
							return
						}
						mu.Lock()
						for _, j := range got {
							promoted[j.ID]++
						}
						mu.Unlock()
					}
				})
			}
		}
		wg.Wait()
		require.NoError(t, errors.Join(errs...))
		require.Len(t, promoted, jobs, "every job was promoted")
		for id, n := range promoted {
			require.Equal(t, 1, n, "job %s promoted %d times", id, n)
		}
		page, err := handles[1].List(t.Context(), domain.Filter{Statuses: []domain.Status{domain.StatusPending}, Limit: 1})
		require.NoError(t, err)
		require.Equal(t, jobs, page.Total)
	})

	t.Run("AScheduledJobIsCanceledAtOnce", func(t *testing.T) {
		t.Parallel()
		open := newQueue(t)
		a, b := open(t), open(t)
		ctx := t.Context()
		j := sharedScheduledJob(t, at(0), later())
		require.NoError(t, a.Create(ctx, j))
		got, err := b.CancelJob(ctx, j.ID)
		require.NoError(t, err)
		require.Equal(t, domain.StatusCanceled, got.Status)
		require.False(t, got.FinishedAt.IsZero())
		require.Equal(t, got.FinishedAt, got.UpdatedAt)
		requireStored(t, a, got)
		next, err := a.NextRunAt(ctx)
		require.NoError(t, err)
		require.True(t, next.IsZero(), "a canceled job is not scheduled any more")
	})

	t.Run("NoticesAnnounceScheduledJobsAndPromotions", func(t *testing.T) {
		t.Parallel()
		open := newQueue(t)
		api, idle := open(t), open(t)
		ctx := t.Context()
		notices := watch(t, idle)
		jobsAvailable := func(n domain.QueueNotice) bool { return n.Kind == domain.NoticeJobsAvailable }

		runAt := later()
		require.NoError(t, api.Create(ctx, sharedScheduledJob(t, at(0), runAt.Add(time.Minute)), sharedScheduledJob(t, at(1), runAt)))
		n := awaitNotice(t, notices, jobsAvailable)
		require.Equal(t, runAt, n.RunAt, "a scheduled job announces when it falls due, so nodes set a timer")

		// Due now and due later in one write: both are announced.
		require.NoError(t, api.Create(ctx, queuedJob(t, "noop", 3, at(2)), sharedScheduledJob(t, at(3), runAt)))
		var nowSeen, laterSeen bool
		for !nowSeen || !laterSeen {
			n := awaitNotice(t, notices, jobsAvailable)
			nowSeen = nowSeen || n.RunAt.IsZero()
			laterSeen = laterSeen || n.RunAt.Equal(runAt)
		}

		due := sharedScheduledJob(t, at(4), at(5))
		require.NoError(t, api.Create(ctx, due))
		n = awaitNotice(t, notices, jobsAvailable)
		require.Equal(t, due.RunAt, n.RunAt, "a scheduled job due already announces its passed RunAt: promote at once")
		promoted, err := api.PromoteDue(ctx, time.Now(), 10)
		require.NoError(t, err)
		require.Len(t, promoted, 1)
		n = awaitNotice(t, notices, jobsAvailable)
		require.True(t, n.RunAt.IsZero(), "a promotion announces jobs ready now")
	})
}
