package storetest

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
)

func testUpdate(t *testing.T, newStore factory) {
	t.Run("ReplacesEveryField", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		j := NewJob(t, "send_email", JobCreatedAt(at(0)))
		mustCreate(t, store, j)

		changed := fullJob(t)
		changed.ID = j.ID
		require.NoError(t, store.Update(t.Context(), changed))
		requireStored(t, store, changed)
	})

	t.Run("FollowsTheJobsLife", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		j := NewJob(t, "send_email", JobCreatedAt(at(0)))
		mustCreate(t, store, j)

		steps := []func() error{
			func() error { return j.Start(at(1)) },
			func() error { return j.Retry(fmt.Errorf("smtp timeout"), at(10), at(2)) },
			func() error { return j.Promote(at(10)) },
			func() error { return j.Start(at(11)) },
			func() error { return j.Complete(at(12)) },
		}
		for i, step := range steps {
			require.NoError(t, step(), "step %d", i)
			require.NoError(t, store.Update(t.Context(), j), "step %d", i)
			requireStored(t, store, j)
		}
	})

	t.Run("ReplacesSeveralJobs", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		a, b := NewJob(t, "send_email", JobCreatedAt(at(0))), NewJob(t, "process_file", JobCreatedAt(at(1)))
		mustCreate(t, store, a, b)
		require.NoError(t, a.Start(at(2)))
		require.NoError(t, b.Cancel(at(3)))
		require.NoError(t, store.Update(t.Context(), a, b))
		requireStored(t, store, a)
		requireStored(t, store, b)
	})

	t.Run("NoJobsIsANoOp", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		j := NewJob(t, "send_email", JobCreatedAt(at(0)))
		mustCreate(t, store, j)
		require.NoError(t, store.Update(t.Context()))
		requireStored(t, store, j)
	})

	t.Run("ReturnsErrNotFoundForMissingJob", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		j := NewJob(t, "send_email", JobCreatedAt(at(0)))
		err := store.Update(t.Context(), j)
		require.ErrorIs(t, err, domain.ErrNotFound)
		require.ErrorContains(t, err, j.ID.String(), "the error names the job")
		requireMissing(t, store, j.ID)
	})

	t.Run("IsAllOrNoneWhenOneIsMissing", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		a, b := NewJob(t, "send_email", JobCreatedAt(at(0))), NewJob(t, "send_email", JobCreatedAt(at(1)))
		mustCreate(t, store, a, b)
		wantA, wantB := a.Clone(), b.Clone()

		missing := NewJob(t, "send_email", JobCreatedAt(at(2)))
		require.NoError(t, a.Start(at(3)))
		require.NoError(t, b.Start(at(3)))
		err := store.Update(t.Context(), a, missing, b)
		require.ErrorIs(t, err, domain.ErrNotFound)
		requireStored(t, store, wantA)
		requireStored(t, store, wantB)
		requireMissing(t, store, missing.ID)
		requirePage(t, store, domain.Filter{Statuses: []domain.Status{domain.StatusRunning}}, nil, 0)
	})

	t.Run("StoresACopy", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		j := NewJob(t, "send_email", JobCreatedAt(at(0)))
		mustCreate(t, store, j)

		changed := fullJob(t)
		changed.ID = j.ID
		want := changed.Clone()
		require.NoError(t, store.Update(t.Context(), changed))
		changed.Payload[0] = 'X'
		changed.Status = domain.StatusCompleted
		changed.LastError = "changed"
		changed.Result[0] = 'X'
		changed.Progress.Message = "changed"
		requireStored(t, store, want)
	})

	t.Run("MovesBetweenEveryPairOfStatuses", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		// One job per (from, to) pair: stored in from, updated to to. The
		// store does not enforce the state machine (the domain does), so
		// every pair, allowed or not, must be indexed right.
		type move struct {
			from, to domain.Status
			job      *domain.Job
		}
		var moves []move
		n := 0
		for _, from := range domain.Statuses() {
			for _, to := range domain.Statuses() {
				j := withStatus(NewJob(t, "send_email", JobCreatedAt(at(n))), from)
				n++
				mustCreate(t, store, j)
				moves = append(moves, move{from: from, to: to, job: j})
			}
		}
		var final []*domain.Job
		for _, m := range moves {
			m.job.Status = m.to
			m.job.UpdatedAt = domain.Timestamp(at(1000))
			require.NoError(t, store.Update(t.Context(), m.job), "%s → %s", m.from, m.to)
			final = append(final, m.job)
		}
		for _, s := range domain.Statuses() {
			f := domain.Filter{Statuses: []domain.Status{s}}
			want := matching(final, f)
			requirePage(t, store, f, want, len(want))
		}
		requirePage(t, store, domain.Filter{}, oldestFirst(final), len(final))
	})

	t.Run("ReindexesAChangedTypeAndCreationTime", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		first, j, last := NewJob(t, "send_email", JobCreatedAt(at(0))), NewJob(t, "send_email", JobCreatedAt(at(1))), NewJob(t, "send_email", JobCreatedAt(at(2)))
		mustCreate(t, store, first, j, last)

		// Snapshots are whole jobs: whatever Update is given is the job now.
		j.Type = "process_file"
		j.CreatedAt = domain.Timestamp(at(3))
		require.NoError(t, store.Update(t.Context(), j))
		requirePage(t, store, domain.Filter{Type: "send_email"}, []*domain.Job{first, last}, 2)
		requirePage(t, store, domain.Filter{Type: "process_file"}, []*domain.Job{j}, 1)
		requirePage(t, store, domain.Filter{}, []*domain.Job{first, last, j}, 3)
		pending := domain.Filter{Statuses: []domain.Status{domain.StatusPending}}
		requirePage(t, store, pending, []*domain.Job{first, last, j}, 3)
	})

	t.Run("ReturnsTheContextErrorWhenCanceled", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		j := NewJob(t, "send_email", JobCreatedAt(at(0)))
		mustCreate(t, store, j)
		want := j.Clone()
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		require.NoError(t, j.Start(at(1)))
		require.ErrorIs(t, store.Update(ctx, j), context.Canceled)
		requireStored(t, store, want)
	})

	t.Run("ReturnsErrNotFoundAfterDelete", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		j := NewJob(t, "send_email", JobCreatedAt(at(0)))
		mustCreate(t, store, j)
		require.NoError(t, store.Delete(t.Context(), j.ID))
		require.ErrorIs(t, store.Update(t.Context(), j), domain.ErrNotFound)
		requireMissing(t, store, j.ID)
	})

	t.Run("LeavesOtherJobsAlone", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		jobs := mixedJobs(t, store)
		target := jobs[3]
		target.Status = domain.StatusCanceled
		require.NoError(t, store.Update(t.Context(), target))
		for _, j := range jobs {
			requireStored(t, store, j)
		}
	})
}
