package storetest

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
)

func testQueues(t *testing.T, newStore factory) {
	t.Run("NoQueuesInAnEmptyStore", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		requireQueues(t, store, []domain.QueueInfo{})
	})

	t.Run("CountsUnfinishedJobsPerQueue", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		var jobs []*domain.Job
		add := func(queue string, s domain.Status, n int) {
			for range n {
				opts := []JobOption{JobCreatedAt(at(len(jobs))), JobQueue(queue)}
				switch s {
				case domain.StatusScheduled:
					opts = append(opts, JobRunAt(at(10_000)))
				case domain.StatusCompleted, domain.StatusFailed, domain.StatusCanceled:
					opts = append(opts, JobFinished(s, at(100)))
				default:
					opts = append(opts, JobStatus(s, 0))
				}
				jobs = append(jobs, NewJob(t, "a", opts...))
			}
		}
		add("email", domain.StatusScheduled, 2)
		add("email", domain.StatusPending, 3)
		add("email", domain.StatusRunning, 1)
		add("email", domain.StatusCompleted, 4)
		add(domain.DefaultQueue, domain.StatusPending, 1)
		add("bulk", domain.StatusRunning, 2)
		add("finished-only", domain.StatusFailed, 1)
		add("finished-only", domain.StatusCanceled, 1)
		mustCreate(t, store, jobs...)
		requireQueues(t, store, []domain.QueueInfo{
			{Name: "bulk", Running: 2},
			{Name: domain.DefaultQueue, Pending: 1},
			{Name: "email", Scheduled: 2, Pending: 3, Running: 1},
		})

		// The counts follow the jobs' lives.
		email := jobs[:6]
		_, err := store.PromoteDue(t.Context(), at(10_000), 1)
		require.NoError(t, err)
		require.NoError(t, email[2].Start(at(200)))
		require.NoError(t, email[5].Complete(at(200)))
		require.NoError(t, store.Update(t.Context(), email[2], email[5]))
		require.NoError(t, store.Delete(t.Context(), jobs[10].ID))
		requireQueues(t, store, []domain.QueueInfo{
			{Name: "bulk", Running: 2},
			{Name: "email", Scheduled: 1, Pending: 3, Running: 1},
		})
	})

	t.Run("PauseAndResume", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		mustCreate(t, store, NewJob(t, "a", JobQueue("email")), NewJob(t, "a", JobCreatedAt(at(1)), JobQueue("bulk")))

		require.NoError(t, store.SetQueuePaused(t.Context(), "email", true))
		require.NoError(t, store.SetQueuePaused(t.Context(), "idle", true))
		require.NoError(t, store.SetQueuePaused(t.Context(), "idle", true), "pausing twice is harmless")
		requireQueues(t, store, []domain.QueueInfo{
			{Name: "bulk", Pending: 1},
			{Name: "email", Paused: true, Pending: 1},
			{Name: "idle", Paused: true},
		})

		require.NoError(t, store.SetQueuePaused(t.Context(), "idle", false))
		require.NoError(t, store.SetQueuePaused(t.Context(), "email", false))
		require.NoError(t, store.SetQueuePaused(t.Context(), "never-paused", false), "resuming a running queue is harmless")
		requireQueues(t, store, []domain.QueueInfo{
			{Name: "bulk", Pending: 1},
			{Name: "email", Pending: 1},
		})
	})

	t.Run("SetQueuePausedValidatesTheName", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		for _, name := range []string{"", "Email", "-x", "a b", string(make([]byte, 65))} {
			require.ErrorIs(t, store.SetQueuePaused(t.Context(), name, true), domain.ErrInvalid, "%q", name)
		}
		requireQueues(t, store, []domain.QueueInfo{})
	})
}

// requireQueues fails unless the store's queues are want, by name.
func requireQueues(t *testing.T, store domain.Store, want []domain.QueueInfo) {
	t.Helper()
	got, err := store.Queues(t.Context())
	require.NoError(t, err)
	if len(want) == 0 {
		require.Empty(t, got)
		return
	}
	require.Equal(t, want, got)
}
