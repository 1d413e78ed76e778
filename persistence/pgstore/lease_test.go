package pgstore

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
)

// expired is a lease that has run out before the claim returns, so that a
// test can rescue at once instead of waiting for time to pass.
const expired = -time.Second

// TestLeaseColumns checks the scale-out columns behind the shared queue,
// which the port does not show: storetest.RunShared (TestSharedQueue)
// checks what claims, renewals, owned updates and rescues do to jobs; this
// checks that they leave owner_node, lease_expires_at and cancel_requested
// as the statements of other nodes expect them.
func TestLeaseColumns(t *testing.T) {
	t.Parallel()

	// claimOne stores a job and claims it on node with lease.
	claimOne := func(t *testing.T, s *Store, maxAttempts int, node string, lease time.Duration) *domain.Job {
		t.Helper()
		require.NoError(t, s.Create(t.Context(), newJob(t, "noop", maxAttempts, past(0))))
		got, err := s.ClaimJobs(t.Context(), node, domain.ClaimRequest{Limit: 1, Lease: lease})
		require.NoError(t, err)
		require.Len(t, got, 1)
		return got[0]
	}

	t.Run("AClaimSetsOwnerAndLease", func(t *testing.T) {
		t.Parallel()
		s := newTestStore(t)
		j := claimOne(t, s, 3, "n1", time.Hour)
		ls := readLease(t, s, j)
		require.Equal(t, "n1", *ls.Owner)
		require.True(t, ls.LeaseInFuture)
		require.False(t, ls.CancelRequested)
	})

	t.Run("ARenewalMovesOnlyOwnLeases", func(t *testing.T) {
		t.Parallel()
		s := newTestStore(t)
		kept := claimOne(t, s, 3, "n1", expired)
		other := claimOne(t, s, 3, "n2", expired)
		lost, err := s.RenewLeases(t.Context(), "n1", []uuid.UUID{kept.ID, other.ID}, time.Hour)
		require.NoError(t, err)
		require.Equal(t, []uuid.UUID{other.ID}, lost)
		require.True(t, readLease(t, s, kept).LeaseInFuture)
		ls := readLease(t, s, other)
		require.Equal(t, "n2", *ls.Owner, "another node's job is left alone")
		require.False(t, ls.LeaseInFuture)
	})

	t.Run("ARescueClearsOwnerLeaseAndCancelRequest", func(t *testing.T) {
		t.Parallel()
		s := newTestStore(t)
		pending := claimOne(t, s, 3, "n1", expired)
		canceled := claimOne(t, s, 3, "n1", expired)
		_, err := s.CancelJob(t.Context(), canceled.ID)
		require.NoError(t, err)
		require.True(t, readLease(t, s, canceled).CancelRequested)
		n, err := s.RescueExpired(t.Context())
		require.NoError(t, err)
		require.Equal(t, 2, n)
		for _, j := range []*domain.Job{pending, canceled} {
			ls := readLease(t, s, j)
			require.Nil(t, ls.Owner)
			require.Nil(t, ls.LeaseExpiresAt)
			require.False(t, ls.CancelRequested)
		}
	})

	t.Run("AnOwnedUpdateOutOfRunningClearsOwnerAndLease", func(t *testing.T) {
		t.Parallel()
		s := newTestStore(t)
		j := claimOne(t, s, 3, "n1", time.Hour)
		retry := j.Clone()
		require.NoError(t, retry.Retry(errTest, domain.Timestamp(time.Now().Add(time.Hour)), time.Now()))
		require.NoError(t, s.UpdateOwned(t.Context(), "n1", retry))
		ls := readLease(t, s, j)
		require.Nil(t, ls.Owner)
		require.Nil(t, ls.LeaseExpiresAt)
	})

	t.Run("AHeartbeatSetsTheLeaseItReturns", func(t *testing.T) {
		t.Parallel()
		s := newTestStore(t)
		j := claimOne(t, s, 3, "n1", expired)
		st, err := s.Heartbeat(t.Context(), "n1", j.ID, time.Hour, nil)
		require.NoError(t, err)
		ls := readLease(t, s, j)
		require.True(t, ls.LeaseInFuture, "an expired lease not yet rescued is renewed")
		require.Equal(t, st.ExpiresAt, domain.Timestamp(*ls.LeaseExpiresAt))
	})

	t.Run("AClaimClearsEveryProgressColumn", func(t *testing.T) {
		t.Parallel()
		s := newTestStore(t)
		j := claimOne(t, s, 3, "n1", expired)
		p := domain.NewProgress(20, "half way", time.Now())
		_, err := s.Heartbeat(t.Context(), "n1", j.ID, expired, &p)
		require.NoError(t, err)
		n, err := s.RescueExpired(t.Context())
		require.NoError(t, err)
		require.Equal(t, 1, n)
		_, err = s.ClaimJobs(t.Context(), "n2", domain.ClaimRequest{Limit: 1, Lease: time.Hour})
		require.NoError(t, err)
		var cleared bool
		require.NoError(t, s.pool.QueryRow(t.Context(), `
SELECT progress_percent IS NULL AND progress_message IS NULL AND progress_updated_at IS NULL
  FROM troupe_jobs WHERE id = $1`, j.ID).Scan(&cleared))
		require.True(t, cleared)
	})

	t.Run("ErrorsNeverCarryAnExternalWorkersToken", func(t *testing.T) {
		t.Parallel()
		s := newTestStore(t)
		const token = "secret-token-0123456789abcdefghijklmnopq.30000"
		j := claimOne(t, s, 3, "n1", time.Hour)
		_, err := s.Heartbeat(t.Context(), domain.ExternalOwner(token), j.ID, time.Hour, nil)
		require.ErrorIs(t, err, domain.ErrLeaseLost)
		require.NotContains(t, err.Error(), token)
		done := j.Clone()
		require.NoError(t, done.Complete(time.Now()))
		err = s.UpdateOwned(t.Context(), domain.ExternalOwner(token), done)
		require.ErrorIs(t, err, domain.ErrLeaseLost)
		require.NotContains(t, err.Error(), token)
		require.Contains(t, err.Error(), j.ID.String())
	})
}
