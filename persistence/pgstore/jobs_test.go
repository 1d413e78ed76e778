package pgstore

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
)

// These tests cover what is particular to PostgreSQL; the conformance suite
// (storetest) covers the port's promises.

func TestJobs(t *testing.T) {
	t.Parallel()

	t.Run("RoundTripsZeroAndSetTimes", func(t *testing.T) {
		t.Parallel()
		s := newTestStore(t)
		// The schema requires a priority; everything else may be zero.
		bare := &domain.Job{ID: uuid.New(), Type: "noop", Status: domain.StatusPending, MaxAttempts: 1, Priority: domain.MaxPriority}
		full := newJob(t, "noop", 3, past(1))
		full.Queue = "email"
		full.Priority = domain.MinPriority
		full.UniqueKey = "order-17"
		full.UniqueFor = 90*time.Minute + time.Nanosecond
		full.Timeout = 30*time.Second + time.Nanosecond
		full.Status = domain.StatusFailed
		full.Attempts = 3
		full.LastError = "boom"
		full.RunAt = past(2)
		full.StartedAt = past(3)
		full.FinishedAt = past(4)
		full.UpdatedAt = past(4)
		full.Payload = nil
		require.NoError(t, s.Create(t.Context(), bare, full))
		for _, want := range []*domain.Job{bare, full} {
			got, err := s.Get(t.Context(), want.ID)
			require.NoError(t, err)
			require.Equal(t, want, got)
		}
		page, err := s.List(t.Context(), domain.Filter{})
		require.NoError(t, err)
		require.Equal(t, []*domain.Job{bare, full}, page.Jobs, "a job without CreatedAt sorts first")
	})

	t.Run("CreateIsAllOrNoneAndNamesTheDuplicate", func(t *testing.T) {
		t.Parallel()
		s := newTestStore(t)
		stored := newJob(t, "noop", 1, past(0))
		require.NoError(t, s.Create(t.Context(), stored))

		fresh := newJob(t, "noop", 1, past(1))
		err := s.Create(t.Context(), fresh, stored.Clone())
		require.ErrorIs(t, err, domain.ErrAlreadyExists)
		require.ErrorContains(t, err, stored.ID.String())
		_, err = s.Get(t.Context(), fresh.ID)
		require.ErrorIs(t, err, domain.ErrNotFound, "nothing of a failed batch is stored")

		again := newJob(t, "noop", 1, past(2))
		err = s.Create(t.Context(), again, again.Clone())
		require.ErrorIs(t, err, domain.ErrAlreadyExists, "an ID repeated inside one batch")
		require.ErrorContains(t, err, again.ID.String())
	})

	t.Run("CreateRejectsWhatTheSchemaForbids", func(t *testing.T) {
		t.Parallel()
		s := newTestStore(t)
		j := newJob(t, "noop", 1, past(0))
		j.MaxAttempts = 0
		require.ErrorIs(t, s.Create(t.Context(), j), domain.ErrInvalid)
		j = newJob(t, "noop", 1, past(0))
		j.Status = "sleeping"
		require.ErrorIs(t, s.Create(t.Context(), j), domain.ErrInvalid)
	})

	t.Run("CreatesABatchOfAThousand", func(t *testing.T) {
		t.Parallel()
		s := newTestStore(t)
		jobs := make([]*domain.Job, 1000)
		for i := range jobs {
			jobs[i] = newJob(t, "noop", 3, past(i))
		}
		require.NoError(t, s.Create(t.Context(), jobs...))
		page, err := s.List(t.Context(), domain.Filter{Limit: 10, Offset: 990})
		require.NoError(t, err)
		require.Equal(t, 1000, page.Total)
		require.Equal(t, jobs[990:], page.Jobs)
	})

	t.Run("UpdateIsAllOrNoneAndNamesTheMissingJob", func(t *testing.T) {
		t.Parallel()
		s := newTestStore(t)
		a, b := newJob(t, "noop", 1, past(0)), newJob(t, "noop", 1, past(1))
		require.NoError(t, s.Create(t.Context(), a, b))
		missing := newJob(t, "noop", 1, past(2))

		changed := a.Clone()
		changed.LastError = "changed"
		err := s.Update(t.Context(), changed, missing)
		require.ErrorIs(t, err, domain.ErrNotFound)
		require.ErrorContains(t, err, missing.ID.String())
		got, err := s.Get(t.Context(), a.ID)
		require.NoError(t, err)
		require.Equal(t, a, got, "nothing of a failed batch is written")

		first, last := a.Clone(), a.Clone()
		first.LastError, last.LastError = "first", "last"
		other := b.Clone()
		other.Attempts = 1
		require.NoError(t, s.Update(t.Context(), first, other, last))
		got, err = s.Get(t.Context(), a.ID)
		require.NoError(t, err)
		require.Equal(t, "last", got.LastError, "the last snapshot of a repeated ID wins")
		got, err = s.Get(t.Context(), b.ID)
		require.NoError(t, err)
		require.Equal(t, other, got)
	})

	t.Run("UpdateClearsTheLeaseWhenTheJobLeavesRunning", func(t *testing.T) {
		t.Parallel()
		s := newTestStore(t)
		j := newJob(t, "noop", 3, past(0))
		require.NoError(t, s.Create(t.Context(), j))
		claimed, err := s.ClaimJobs(t.Context(), "n1", domain.ClaimRequest{Limit: 1, Lease: time.Hour})
		require.NoError(t, err)
		require.Len(t, claimed, 1)
		require.NotNil(t, readLease(t, s, j).Owner)

		done := claimed[0]
		require.NoError(t, done.Complete(time.Now()))
		require.NoError(t, s.Update(t.Context(), done))
		ls := readLease(t, s, j)
		require.Nil(t, ls.Owner)
		require.Nil(t, ls.LeaseExpiresAt)
	})

	t.Run("ScanStreamsInChunksAndStopsOnError", func(t *testing.T) {
		t.Parallel()
		s := newTestStore(t)
		n := 2*scanChunk + 7
		jobs := make([]*domain.Job, n)
		for i := range jobs {
			jobs[i] = newJob(t, "noop", 3, past(i/3)) // equal times: id breaks ties
		}
		require.NoError(t, s.Create(t.Context(), jobs...))
		want := oldestFirst(jobs)

		var got []*domain.Job
		require.NoError(t, s.Scan(t.Context(), domain.Filter{}, func(j *domain.Job) error {
			got = append(got, j)
			j.CreatedAt = time.Time{} // the job is the caller's own
			return nil
		}))
		require.Len(t, got, n)
		for i := range got {
			require.Equal(t, want[i].ID, got[i].ID, "position %d", i)
		}

		var windowed []uuid.UUID
		require.NoError(t, s.Scan(t.Context(), domain.Filter{Offset: scanChunk - 3, Limit: scanChunk + 5}, func(j *domain.Job) error {
			windowed = append(windowed, j.ID)
			return nil
		}))
		require.Equal(t, ids(want[scanChunk-3:2*scanChunk+2]), windowed)

		stop := errors.New("stop")
		seen := 0
		err := s.Scan(t.Context(), domain.Filter{}, func(*domain.Job) error {
			seen++
			if seen == scanChunk+1 {
				return stop
			}
			return nil
		})
		require.ErrorIs(t, err, stop)
		require.Equal(t, scanChunk+1, seen)
	})

	t.Run("ScanLetsFnWriteToTheStore", func(t *testing.T) {
		t.Parallel()
		s := newTestStore(t)
		jobs := make([]*domain.Job, scanChunk+1)
		for i := range jobs {
			jobs[i] = newJob(t, "noop", 3, past(i))
			jobs[i].Status = domain.StatusRunning
			jobs[i].Attempts = 1
		}
		require.NoError(t, s.Create(t.Context(), jobs...))
		recovered := 0
		require.NoError(t, s.Scan(t.Context(), domain.Filter{Statuses: []domain.Status{domain.StatusRunning}}, func(j *domain.Job) error {
			recovered++
			require.NoError(t, j.Recover(time.Now()))
			return s.Update(t.Context(), j)
		}))
		require.Equal(t, len(jobs), recovered, "each job is seen once even though it stops matching")
		page, err := s.List(t.Context(), domain.Filter{Statuses: []domain.Status{domain.StatusPending}})
		require.NoError(t, err)
		require.Equal(t, len(jobs), page.Total)
	})

	t.Run("ListFiltersByStatusAndType", func(t *testing.T) {
		t.Parallel()
		s := newTestStore(t)
		var jobs []*domain.Job
		for i, st := range domain.Statuses() {
			for k, typ := range []domain.JobType{"a", "b"} {
				j := newJob(t, typ, 3, past(10*i+k))
				j.Status = st
				jobs = append(jobs, j)
			}
		}
		require.NoError(t, s.Create(t.Context(), jobs...))
		f := domain.Filter{Statuses: []domain.Status{domain.StatusFailed, domain.StatusPending}, Type: "b", Limit: 1, Offset: 1}
		page, err := s.List(t.Context(), f)
		require.NoError(t, err)
		require.Equal(t, 2, page.Total)
		failedB := slices.IndexFunc(jobs, func(j *domain.Job) bool { return j.Status == domain.StatusFailed && j.Type == "b" })
		require.Equal(t, []*domain.Job{jobs[failedB]}, page.Jobs, "the pending b, then the failed b")

		page, err = s.List(t.Context(), domain.Filter{Offset: 100})
		require.NoError(t, err)
		require.Equal(t, len(jobs), page.Total)
		require.NotNil(t, page.Jobs)
		require.Empty(t, page.Jobs)
	})

	t.Run("PingAndFlush", func(t *testing.T) {
		t.Parallel()
		s := newTestStore(t)
		require.NoError(t, s.Ping(t.Context()))
		require.NoError(t, s.Flush(t.Context()))
	})
}

// oldestFirst sorts a copy of jobs the way every store lists.
func oldestFirst(jobs []*domain.Job) []*domain.Job {
	out := slices.Clone(jobs)
	slices.SortFunc(out, domain.Compare)
	return out
}

func ids(jobs []*domain.Job) []uuid.UUID {
	out := make([]uuid.UUID, len(jobs))
	for i, j := range jobs {
		out[i] = j.ID
	}
	return out
}
