package storetest

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
)

func testSharedCancel(t *testing.T, newQueue func(t *testing.T) OpenNode) {
	t.Run("APendingJobAtOnce", func(t *testing.T) {
		t.Parallel()
		q := newQueue(t)(t)
		j := queuedJob(t, "noop", 3, at(0))
		require.NoError(t, q.Create(t.Context(), j))
		got, err := q.CancelJob(t.Context(), j.ID)
		require.NoError(t, err)
		require.Equal(t, domain.StatusCanceled, got.Status)
		require.False(t, got.FinishedAt.IsZero())
		require.Equal(t, got.FinishedAt, got.UpdatedAt)
		requireStored(t, q, got)
		claimed, err := q.ClaimJobs(t.Context(), "n1", domain.ClaimRequest{Limit: 1, Lease: liveLease})
		require.NoError(t, err)
		require.Empty(t, claimed, "a canceled job is never claimed")

		again, err := q.CancelJob(t.Context(), j.ID)
		require.NoError(t, err)
		require.Equal(t, got, again, "canceled stays canceled, unchanged")
	})

	t.Run("ARunningJobOnAnotherNodeReachesItAsANotice", func(t *testing.T) {
		t.Parallel()
		open := newQueue(t)
		owner, api := open(t), open(t)
		j := claimOne(t, owner, 3, "owner", liveLease)
		notices := watch(t, owner)

		got, err := api.CancelJob(t.Context(), j.ID)
		require.NoError(t, err)
		require.Equal(t, j, got, "a running job comes back unchanged, still running")
		requireStored(t, api, j)
		n := awaitNotice(t, notices, func(n domain.QueueNotice) bool { return n.Kind == domain.NoticeCancelRequested })
		require.Equal(t, domain.QueueNotice{Kind: domain.NoticeCancelRequested, JobID: j.ID, Node: "owner"}, n)

		// A node that missed the notice finds the request by asking.
		requested, err := owner.CancelRequests(t.Context(), "owner")
		require.NoError(t, err)
		require.Equal(t, []uuid.UUID{j.ID}, requested)
		requested, err = owner.CancelRequests(t.Context(), "api")
		require.NoError(t, err)
		require.Empty(t, requested, "only the owner has anything to do")
		_, err = api.CancelJob(t.Context(), j.ID)
		require.NoError(t, err, "asking twice is harmless")

		canceled := j.Clone()
		require.NoError(t, canceled.Cancel(time.Now()))
		require.NoError(t, owner.UpdateOwned(t.Context(), "owner", canceled))
		requireStored(t, api, canceled)
		requested, err = owner.CancelRequests(t.Context(), "owner")
		require.NoError(t, err)
		require.Empty(t, requested, "the request ends with the attempt")
	})

	t.Run("ARequestEndsWithItsAttempt", func(t *testing.T) {
		t.Parallel()
		q := newQueue(t)(t)
		j := claimOne(t, q, 3, "n1", liveLease)
		_, err := q.CancelJob(t.Context(), j.ID)
		require.NoError(t, err)
		// The node hands the job back instead (it was shutting down): the
		// next attempt starts without the old request.
		back := j.Clone()
		require.NoError(t, back.Retry(domain.ErrInterrupted, time.Time{}, time.Now()))
		require.NoError(t, q.UpdateOwned(t.Context(), "n1", back))
		again, err := q.ClaimJobs(t.Context(), "n2", domain.ClaimRequest{Limit: 1, Lease: liveLease})
		require.NoError(t, err)
		require.Equal(t, []uuid.UUID{j.ID}, ids(again))
		requested, err := q.CancelRequests(t.Context(), "n2")
		require.NoError(t, err)
		require.Empty(t, requested)
	})

	t.Run("FinishedJobsAreNotCancelable", func(t *testing.T) {
		t.Parallel()
		q := newQueue(t)(t)
		for _, s := range []domain.Status{domain.StatusCompleted, domain.StatusFailed} {
			j := withStatus(queuedJob(t, "noop", 3, at(0)), s)
			j.FinishedAt = domain.Timestamp(at(1))
			require.NoError(t, q.Create(t.Context(), j))
			got, err := q.CancelJob(t.Context(), j.ID)
			require.ErrorIs(t, err, domain.ErrNotCancelable, "cancel a %s job", s)
			require.ErrorContains(t, err, j.ID.String())
			require.Nil(t, got)
			requireStored(t, q, j)
		}
	})

	t.Run("AMissingJob", func(t *testing.T) {
		t.Parallel()
		q := newQueue(t)(t)
		id := uuid.New()
		_, err := q.CancelJob(t.Context(), id)
		require.ErrorIs(t, err, domain.ErrNotFound)
		require.ErrorContains(t, err, id.String())
	})
}
