package storetest

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
)

func testScan(t *testing.T, newStore factory) {
	t.Run("StreamsWhatListReturns", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		mixedJobs(t, store)
		pendingOrRunning := []domain.Status{domain.StatusPending, domain.StatusRunning}
		filters := []domain.Filter{
			{},
			{Statuses: []domain.Status{domain.StatusCompleted}},
			{Statuses: pendingOrRunning},
			{Type: "process_file"},
			{Statuses: pendingOrRunning, Type: "send_email"},
			{Limit: 5},
			{Offset: 7},
			{Limit: 4, Offset: 3},
			{Statuses: pendingOrRunning, Limit: 3, Offset: 2},
			{Type: "send_email", Limit: 2, Offset: 1},
			{Offset: 100},
			{Type: "unknown"},
		}
		for _, f := range filters {
			page, err := store.List(t.Context(), f)
			require.NoError(t, err)
			var scanned []*domain.Job
			require.NoError(t, store.Scan(t.Context(), f, func(j *domain.Job) error {
				scanned = append(scanned, j)
				return nil
			}), "scan %+v", f)
			require.Equal(t, ids(page.Jobs), ids(scanned), "scan %+v: wrong jobs or order", f)
			if len(scanned) > 0 {
				require.Equal(t, page.Jobs, scanned, "scan %+v", f)
			}
		}
	})

	t.Run("CallsNothingOnAnEmptyStore", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		require.NoError(t, store.Scan(t.Context(), domain.Filter{}, func(j *domain.Job) error {
			t.Errorf("fn called with job %s", j.ID)
			return nil
		}))
	})

	t.Run("StopsWithTheErrorOfFn", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		jobs := mixedJobs(t, store)
		stop := errors.New("enough")
		var seen []*domain.Job
		err := store.Scan(t.Context(), domain.Filter{}, func(j *domain.Job) error {
			seen = append(seen, j)
			if len(seen) == 3 {
				return stop
			}
			return nil
		})
		require.ErrorIs(t, err, stop)
		require.Equal(t, ids(oldestFirst(jobs)[:3]), ids(seen), "fn is not called after it failed")
	})

	t.Run("PassesCopies", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		j := fullJob(t)
		mustCreate(t, store, j)
		require.NoError(t, store.Scan(t.Context(), domain.Filter{}, func(got *domain.Job) error {
			got.Payload[0] = 'X'
			got.Status = domain.StatusCanceled
			return nil
		}))
		requireStored(t, store, j)
	})

	t.Run("ReturnsTheContextErrorWhenCanceled", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		mustCreate(t, store, NewJob(t, "send_email", JobCreatedAt(at(0))))
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		err := store.Scan(ctx, domain.Filter{}, func(*domain.Job) error { return nil })
		require.ErrorIs(t, err, context.Canceled)
	})
}
