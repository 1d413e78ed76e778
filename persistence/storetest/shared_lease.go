package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
)

var errHandler = errors.New("handler failed")

func testSharedRenew(t *testing.T, newQueue func(t *testing.T) OpenNode) {
	t.Run("ExtendsOwnedLeasesAndReportsLostOnes", func(t *testing.T) {
		t.Parallel()
		open := newQueue(t)
		n1, n2 := open(t), open(t)
		kept := claimOne(t, n1, 3, "n1", shortLease)
		rescued := claimOne(t, n1, 3, "n1", shortLease)
		other := claimOne(t, n2, 3, "n2", liveLease)
		// Renew kept, expired or not (a late node is not a dead one), then
		// let another node take back rescued, whose lease runs out.
		lost, err := n1.RenewLeases(t.Context(), "n1", []uuid.UUID{kept.ID}, liveLease)
		require.NoError(t, err)
		require.Empty(t, lost)
		require.Equal(t, 1, rescueAtLeast(t, n2, 1), "only the lease not renewed")
		requireStatus(t, n1, rescued.ID, domain.StatusPending)

		missing := uuid.New()
		lost, err = n1.RenewLeases(t.Context(), "n1", []uuid.UUID{missing, kept.ID, rescued.ID, other.ID}, liveLease)
		require.NoError(t, err)
		require.Equal(t, []uuid.UUID{missing, rescued.ID, other.ID}, lost, "the lost ones, in the order given")
		n, err := n2.RescueExpired(t.Context())
		require.NoError(t, err)
		require.Zero(t, n, "renewed leases are live")
		requireOwned(t, n2, "n2", other.ID) // another node's job is left alone
		requireStored(t, n2, kept)          // renewing changes nothing of the job
		requireStored(t, n2, other)
	})

	t.Run("NothingToRenew", func(t *testing.T) {
		t.Parallel()
		q := newQueue(t)(t)
		lost, err := q.RenewLeases(t.Context(), "n1", nil, liveLease)
		require.NoError(t, err)
		require.Empty(t, lost)
	})
}

func testSharedUpdateOwned(t *testing.T, newQueue func(t *testing.T) OpenNode) {
	t.Run("WritesWhileTheNodeOwnsTheJob", func(t *testing.T) {
		t.Parallel()
		open := newQueue(t)
		n1, n2 := open(t), open(t)
		j := claimOne(t, n1, 3, "n1", liveLease)
		retry := j.Clone()
		require.NoError(t, retry.Retry(errHandler, later(), time.Now()))
		require.NoError(t, n1.UpdateOwned(t.Context(), "n1", retry))
		requireStored(t, n2, retry)
		requireNotOwned(t, n1, "n1", j.ID) // the lease ends with the attempt

		claimed, err := n2.ClaimJobs(t.Context(), "n2", domain.ClaimRequest{Limit: 1, Lease: liveLease})
		require.NoError(t, err)
		require.Empty(t, claimed, "a retry waits for its RunAt")

		done := claimOne(t, n2, 3, "n2", liveLease)
		completed := done.Clone()
		require.NoError(t, completed.Complete(time.Now()))
		require.NoError(t, n2.UpdateOwned(t.Context(), "n2", completed))
		requireStored(t, n1, completed)
	})

	t.Run("RefusesANodeThatDoesNotOwnTheJob", func(t *testing.T) {
		t.Parallel()
		open := newQueue(t)
		n1, n2 := open(t), open(t)
		j := claimOne(t, n1, 3, "n1", liveLease)
		stolen := j.Clone()
		require.NoError(t, stolen.Complete(time.Now()))
		err := n2.UpdateOwned(t.Context(), "n2", stolen)
		require.ErrorIs(t, err, domain.ErrLeaseLost)
		require.ErrorContains(t, err, j.ID.String())
		requireStored(t, n1, j)
		requireOwned(t, n1, "n1", j.ID)
	})

	t.Run("RefusesANodeWhoseLeaseWasRescued", func(t *testing.T) {
		t.Parallel()
		open := newQueue(t)
		n1, n2 := open(t), open(t)
		j := claimOne(t, n1, 3, "n1", shortLease)
		rescueAtLeast(t, n2, 1)

		late := j.Clone()
		require.NoError(t, late.Complete(time.Now()))
		err := n1.UpdateOwned(t.Context(), "n1", late)
		require.ErrorIs(t, err, domain.ErrLeaseLost)
		require.ErrorContains(t, err, j.ID.String())
		requireStatus(t, n2, j.ID, domain.StatusPending) // the rescue wins

		again, err := n2.ClaimJobs(t.Context(), "n2", domain.ClaimRequest{Limit: 1, Lease: liveLease})
		require.NoError(t, err)
		require.Equal(t, []uuid.UUID{j.ID}, ids(again))
		require.ErrorIs(t, n1.UpdateOwned(t.Context(), "n1", late), domain.ErrLeaseLost, "another node owns it now")
		require.NoError(t, n2.UpdateOwned(t.Context(), "n2", late))
		requireStored(t, n1, late)
	})

	t.Run("OfAMissingJobReturnsErrNotFound", func(t *testing.T) {
		t.Parallel()
		q := newQueue(t)(t)
		j := queuedJob(t, "noop", 3, at(0))
		err := q.UpdateOwned(t.Context(), "n1", j)
		require.ErrorIs(t, err, domain.ErrNotFound)
		require.ErrorContains(t, err, j.ID.String())
	})
}

// requireStatus fails unless job id is stored with status s.
func requireStatus(t *testing.T, store domain.Store, id uuid.UUID, s domain.Status) {
	t.Helper()
	got, err := store.Get(t.Context(), id)
	require.NoError(t, err, "get job %s", id)
	require.Equal(t, s, got.Status, "job %s", id)
}
