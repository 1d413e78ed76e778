package storetest

import (
	"context"
	"slices"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
)

func testDelete(t *testing.T, newStore factory) {
	t.Run("RemovesTheJob", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		j, other := NewJob(t, "send_email", JobCreatedAt(at(0))), NewJob(t, "send_email", JobCreatedAt(at(1)))
		mustCreate(t, store, j, other)
		require.NoError(t, store.Delete(t.Context(), j.ID))
		requireMissing(t, store, j.ID)
		requireStored(t, store, other)
	})

	t.Run("ReturnsErrNotFoundForMissingJob", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		id := uuid.New()
		err := store.Delete(t.Context(), id)
		require.ErrorIs(t, err, domain.ErrNotFound)
		require.ErrorContains(t, err, id.String(), "the error names the job")
	})

	t.Run("ReturnsErrNotFoundTheSecondTime", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		j := NewJob(t, "send_email", JobCreatedAt(at(0)))
		mustCreate(t, store, j)
		require.NoError(t, store.Delete(t.Context(), j.ID))
		require.ErrorIs(t, store.Delete(t.Context(), j.ID), domain.ErrNotFound)
	})

	t.Run("RemovesFromListings", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		jobs := mixedJobs(t, store)
		gone := jobs[5]
		require.NoError(t, store.Delete(t.Context(), gone.ID))
		kept := slices.DeleteFunc(slices.Clone(jobs), func(j *domain.Job) bool { return j.ID == gone.ID })

		filters := []domain.Filter{
			{},
			{Statuses: []domain.Status{gone.Status}},
			{Type: gone.Type},
			{Statuses: []domain.Status{gone.Status}, Type: gone.Type},
		}
		for _, f := range filters {
			want := matching(kept, f)
			requirePage(t, store, f, want, len(want))
			var scanned []*domain.Job
			require.NoError(t, store.Scan(t.Context(), f, func(j *domain.Job) error {
				scanned = append(scanned, j)
				return nil
			}))
			require.Equal(t, ids(want), ids(scanned), "scan %+v", f)
		}
	})

	t.Run("FreesTheIDForCreate", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		j := NewJob(t, "send_email", JobCreatedAt(at(0)))
		mustCreate(t, store, j)
		require.NoError(t, store.Delete(t.Context(), j.ID))

		again := withStatus(j.Clone(), domain.StatusRunning)
		again.Type = "process_file"
		mustCreate(t, store, again)
		requireStored(t, store, again)
		requirePage(t, store, domain.Filter{Type: "send_email"}, nil, 0)
		requirePage(t, store, domain.Filter{Statuses: []domain.Status{domain.StatusPending}}, nil, 0)
		requirePage(t, store, domain.Filter{Statuses: []domain.Status{domain.StatusRunning}}, []*domain.Job{again}, 1)
	})

	t.Run("ReturnsTheContextErrorWhenCanceled", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		j := NewJob(t, "send_email", JobCreatedAt(at(0)))
		mustCreate(t, store, j)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		require.ErrorIs(t, store.Delete(ctx, j.ID), context.Canceled)
		requireStored(t, store, j)
	})
}
