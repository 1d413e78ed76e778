package pgstore

import (
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
)

// expired is a lease that has run out before the claim returns, so that a
// test can rescue at once instead of waiting for time to pass.
const expired = -time.Second

func TestClaimJobs(t *testing.T) {
	t.Parallel()

	t.Run("ClaimsReadyJobsInOrderAndMarksThemRunning", func(t *testing.T) {
		t.Parallel()
		s := newTestStore(t)
		older, newer := newJob(t, "noop", 3, past(0)), newJob(t, "noop", 3, past(2))
		retried := newJob(t, "noop", 3, past(-5))
		retried.Attempts = 1
		retried.LastError = "first try failed"
		retried.RunAt = past(1) // ready after older, before newer
		later := newJob(t, "noop", 3, past(3))
		later.RunAt = domain.Timestamp(time.Now().Add(time.Hour))
		done := newJob(t, "noop", 3, past(-10))
		done.Status = domain.StatusCompleted
		require.NoError(t, s.Create(t.Context(), newer, later, done, retried, older))

		claimed, err := s.ClaimJobs(t.Context(), "n1", 10, time.Hour)
		require.NoError(t, err)
		require.Equal(t, []uuid.UUID{older.ID, retried.ID, newer.ID}, ids(claimed))
		for _, j := range claimed {
			require.Equal(t, domain.StatusRunning, j.Status)
			require.False(t, j.StartedAt.IsZero())
			require.Equal(t, j.StartedAt, j.UpdatedAt)
			require.True(t, j.RunAt.IsZero())
			stored, err := s.Get(t.Context(), j.ID)
			require.NoError(t, err)
			require.Equal(t, stored, j, "the claimed job is returned as stored")
			ls := readLease(t, s, j)
			require.Equal(t, "n1", *ls.Owner)
			require.True(t, ls.LeaseInFuture)
		}
		require.Equal(t, 1, claimed[0].Attempts, "the attempt counts at the claim")
		require.Equal(t, 2, claimed[1].Attempts)
		require.Equal(t, "first try failed", claimed[1].LastError)

		again, err := s.ClaimJobs(t.Context(), "n2", 10, time.Hour)
		require.NoError(t, err)
		require.Empty(t, again, "nothing else is ready")
	})

	t.Run("HonoursTheLimit", func(t *testing.T) {
		t.Parallel()
		s := newTestStore(t)
		for i := range 5 {
			require.NoError(t, s.Create(t.Context(), newJob(t, "noop", 3, past(i))))
		}
		got, err := s.ClaimJobs(t.Context(), "n1", 2, time.Hour)
		require.NoError(t, err)
		require.Len(t, got, 2)
		got, err = s.ClaimJobs(t.Context(), "n1", 0, time.Hour)
		require.NoError(t, err)
		require.Empty(t, got)
		_, err = s.ClaimJobs(t.Context(), "", 1, time.Hour)
		require.ErrorIs(t, err, domain.ErrInvalid)
	})

	t.Run("EightClaimersTakeEachJobExactlyOnce", func(t *testing.T) {
		t.Parallel()
		s := newTestStore(t)
		const total, claimers, batch = 10_000, 8, 100
		jobs := make([]*domain.Job, total)
		for i := range jobs {
			jobs[i] = newJob(t, "noop", 3, past(i%50))
		}
		require.NoError(t, s.Create(t.Context(), jobs...))

		var (
			wg     sync.WaitGroup
			mu     sync.Mutex
			counts = make(map[uuid.UUID]int, total)
			errs   = make(chan error, claimers)
		)
		for c := range claimers {
			wg.Go(func() {
				node := "node-" + string(rune('a'+c))
				for {
					got, err := s.ClaimJobs(t.Context(), node, batch, time.Hour)
					if err != nil {
						errs <- err
						return
					}
					if len(got) == 0 {
						return
					}
					mu.Lock()
					for _, j := range got {
						counts[j.ID]++
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		require.Len(t, counts, total, "every job was claimed")
		for id, n := range counts {
			require.Equal(t, 1, n, "job %s claimed %d times", id, n)
		}
		page, err := s.List(t.Context(), domain.Filter{Statuses: []domain.Status{domain.StatusRunning}})
		require.NoError(t, err)
		require.Equal(t, total, page.Total)
	})
}

func TestLeases(t *testing.T) {
	t.Parallel()

	// claimOne stores a job and claims it on node with lease.
	claimOne := func(t *testing.T, s *Store, maxAttempts int, node string, lease time.Duration) *domain.Job {
		t.Helper()
		require.NoError(t, s.Create(t.Context(), newJob(t, "noop", maxAttempts, past(0))))
		got, err := s.ClaimJobs(t.Context(), node, 1, lease)
		require.NoError(t, err)
		require.Len(t, got, 1)
		return got[0]
	}

	t.Run("RescueReturnsAnExpiredJobToPending", func(t *testing.T) {
		t.Parallel()
		s := newTestStore(t)
		j := claimOne(t, s, 3, "n1", expired)
		n, err := s.RescueExpired(t.Context())
		require.NoError(t, err)
		require.Equal(t, 1, n)

		got, err := s.Get(t.Context(), j.ID)
		require.NoError(t, err)
		require.Equal(t, domain.StatusPending, got.Status)
		require.Equal(t, 1, got.Attempts, "the interrupted attempt counts")
		require.Equal(t, domain.ErrInterrupted.Error(), got.LastError)
		require.True(t, got.FinishedAt.IsZero())
		require.True(t, got.RunAt.IsZero(), "ready at once")
		ls := readLease(t, s, j)
		require.Nil(t, ls.Owner)
		require.Nil(t, ls.LeaseExpiresAt)

		again, err := s.ClaimJobs(t.Context(), "n2", 1, time.Hour)
		require.NoError(t, err)
		require.Len(t, again, 1)
		require.Equal(t, 2, again[0].Attempts)

		n, err = s.RescueExpired(t.Context())
		require.NoError(t, err)
		require.Zero(t, n, "a live lease is left alone")
	})

	t.Run("RescueFailsAJobOutOfAttempts", func(t *testing.T) {
		t.Parallel()
		s := newTestStore(t)
		j := claimOne(t, s, 1, "n1", expired)
		n, err := s.RescueExpired(t.Context())
		require.NoError(t, err)
		require.Equal(t, 1, n)
		got, err := s.Get(t.Context(), j.ID)
		require.NoError(t, err)
		require.Equal(t, domain.StatusFailed, got.Status)
		require.Equal(t, 1, got.Attempts)
		require.Equal(t, domain.ErrInterrupted.Error(), got.LastError)
		require.False(t, got.FinishedAt.IsZero())
	})

	t.Run("RescueCancelsAJobWhoseCancelWasRequested", func(t *testing.T) {
		t.Parallel()
		s := newTestStore(t)
		j := claimOne(t, s, 3, "n1", expired)
		_, err := s.CancelJob(t.Context(), j.ID)
		require.NoError(t, err)
		n, err := s.RescueExpired(t.Context())
		require.NoError(t, err)
		require.Equal(t, 1, n)
		got, err := s.Get(t.Context(), j.ID)
		require.NoError(t, err)
		require.Equal(t, domain.StatusCanceled, got.Status)
		require.False(t, got.FinishedAt.IsZero())
		require.False(t, readLease(t, s, j).CancelRequested)
	})

	t.Run("RescueRunsConcurrently", func(t *testing.T) {
		t.Parallel()
		s := newTestStore(t)
		const jobs = 200
		for i := range jobs {
			require.NoError(t, s.Create(t.Context(), newJob(t, "noop", 3, past(i))))
		}
		_, err := s.ClaimJobs(t.Context(), "dead", jobs, expired)
		require.NoError(t, err)
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			rescued int
		)
		for range 4 {
			wg.Go(func() {
				n, err := s.RescueExpired(t.Context())
				if err == nil {
					mu.Lock()
					rescued += n
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		require.Equal(t, jobs, rescued, "each job rescued once")
	})

	t.Run("UpdateOwnedWritesWhileTheNodeOwnsTheJob", func(t *testing.T) {
		t.Parallel()
		s := newTestStore(t)
		j := claimOne(t, s, 3, "n1", time.Hour)
		retry := j.Clone()
		runAt := domain.Timestamp(time.Now().Add(time.Hour))
		require.NoError(t, retry.Retry(errTest, runAt, time.Now()))
		require.NoError(t, s.UpdateOwned(t.Context(), "n1", retry))
		got, err := s.Get(t.Context(), j.ID)
		require.NoError(t, err)
		require.Equal(t, retry, got)
		require.Nil(t, readLease(t, s, j).Owner)

		claimed, err := s.ClaimJobs(t.Context(), "n1", 1, time.Hour)
		require.NoError(t, err)
		require.Empty(t, claimed, "a retry waits for its RunAt")
	})

	t.Run("UpdateOwnedAfterARescueReturnsErrLeaseLost", func(t *testing.T) {
		t.Parallel()
		s := newTestStore(t)
		j := claimOne(t, s, 3, "n1", expired)
		_, err := s.RescueExpired(t.Context())
		require.NoError(t, err)

		late := j.Clone()
		require.NoError(t, late.Complete(time.Now()))
		err = s.UpdateOwned(t.Context(), "n1", late)
		require.ErrorIs(t, err, ErrLeaseLost)
		require.ErrorContains(t, err, j.ID.String())
		got, err := s.Get(t.Context(), j.ID)
		require.NoError(t, err)
		require.Equal(t, domain.StatusPending, got.Status, "the rescue wins")

		again, err := s.ClaimJobs(t.Context(), "n2", 1, time.Hour)
		require.NoError(t, err)
		require.Len(t, again, 1)
		require.ErrorIs(t, s.UpdateOwned(t.Context(), "n1", late), ErrLeaseLost, "another node owns it now")
		require.NoError(t, s.UpdateOwned(t.Context(), "n2", late))
	})

	t.Run("UpdateOwnedOfAMissingJobReturnsErrNotFound", func(t *testing.T) {
		t.Parallel()
		s := newTestStore(t)
		j := newJob(t, "noop", 3, past(0))
		err := s.UpdateOwned(t.Context(), "n1", j)
		require.ErrorIs(t, err, domain.ErrNotFound)
		require.ErrorContains(t, err, j.ID.String())
	})

	t.Run("RenewLeasesExtendsOwnedAndReportsLost", func(t *testing.T) {
		t.Parallel()
		s := newTestStore(t)
		kept := claimOne(t, s, 3, "n1", expired)
		rescued := claimOne(t, s, 3, "n1", expired)
		other := claimOne(t, s, 3, "n2", time.Hour)
		// Take back only rescued: renew the others first, then put them
		// back under an expired lease after the rescue.
		lost, err := s.RenewLeases(t.Context(), "n1", []uuid.UUID{kept.ID}, time.Hour)
		require.NoError(t, err)
		require.Empty(t, lost)
		n, err := s.RescueExpired(t.Context())
		require.NoError(t, err)
		require.Equal(t, 1, n)

		missing := uuid.New()
		lost, err = s.RenewLeases(t.Context(), "n1", []uuid.UUID{missing, kept.ID, rescued.ID, other.ID}, time.Hour)
		require.NoError(t, err)
		require.Equal(t, []uuid.UUID{missing, rescued.ID, other.ID}, lost, "in the order given")
		require.True(t, readLease(t, s, kept).LeaseInFuture)
		require.Equal(t, "n2", *readLease(t, s, other).Owner, "another node's job is left alone")

		before, err := s.Get(t.Context(), kept.ID)
		require.NoError(t, err)
		require.Equal(t, kept, before, "renewing changes nothing of the job")
	})
}

func TestClaimJobsByType(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	ctx := t.Context()
	email := newJob(t, "email", 1, past(1))
	report := newJob(t, "report", 1, past(2))
	require.NoError(t, s.Create(ctx, email, report))

	none, err := s.ClaimJobs(ctx, "n1", 10, time.Minute, "resize")
	require.NoError(t, err)
	require.Empty(t, none, "no job of a type the node does not handle")

	got, err := s.ClaimJobs(ctx, "n1", 10, time.Minute, "report", "resize")
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, report.ID, got[0].ID)

	rest, err := s.ClaimJobs(ctx, "n1", 10, time.Minute)
	require.NoError(t, err)
	require.Len(t, rest, 1, "no types: any type")
	require.Equal(t, email.ID, rest[0].ID)
}
