package pgstore

import (
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
)

var errTest = errors.New("handler failed")

func TestCancelJob(t *testing.T) {
	t.Parallel()

	// Every status is covered, so that adding one without deciding what
	// canceling it does fails here.
	for _, status := range domain.Statuses() {
		t.Run("From"+string(status), func(t *testing.T) {
			t.Parallel()
			s := newTestStore(t)
			j := newJob(t, "noop", 3, past(0))
			require.NoError(t, s.Create(t.Context(), j))
			if status == domain.StatusRunning {
				claimed, err := s.ClaimJobs(t.Context(), "n1", domain.ClaimRequest{Limit: 1, Lease: time.Hour})
				require.NoError(t, err)
				require.Len(t, claimed, 1)
				j = claimed[0]
			} else if status == domain.StatusScheduled {
				j.ScheduleAt(time.Now().Add(time.Hour), time.Now())
				require.NoError(t, s.Update(t.Context(), j))
			} else if status != domain.StatusPending {
				j.Status = status
				j.FinishedAt = past(1)
				require.NoError(t, s.Update(t.Context(), j))
			}

			got, err := s.CancelJob(t.Context(), j.ID)
			stored, getErr := s.Get(t.Context(), j.ID)
			require.NoError(t, getErr)

			switch status {
			case domain.StatusScheduled, domain.StatusPending:
				require.NoError(t, err)
				require.Equal(t, domain.StatusCanceled, got.Status)
				require.False(t, got.FinishedAt.IsZero())
				require.Equal(t, got.FinishedAt, got.UpdatedAt)
				require.Equal(t, got, stored)
			case domain.StatusRunning:
				require.NoError(t, err)
				require.Equal(t, j, got, "a running job comes back unchanged, still running")
				require.Equal(t, j, stored)
				require.True(t, readLease(t, s, j).CancelRequested)
				requested, err := s.CancelRequests(t.Context(), "n1")
				require.NoError(t, err)
				require.Equal(t, []uuid.UUID{j.ID}, requested)
				requested, err = s.CancelRequests(t.Context(), "n2")
				require.NoError(t, err)
				require.Empty(t, requested)

				_, err = s.CancelJob(t.Context(), j.ID)
				require.NoError(t, err, "asking twice is harmless")

				canceled := got.Clone()
				require.NoError(t, canceled.Cancel(time.Now()))
				require.NoError(t, s.UpdateOwned(t.Context(), "n1", canceled))
				require.False(t, readLease(t, s, j).CancelRequested, "the request ends with the attempt")
				requested, err = s.CancelRequests(t.Context(), "n1")
				require.NoError(t, err)
				require.Empty(t, requested)
			case domain.StatusCanceled:
				require.NoError(t, err)
				require.Equal(t, j, got, "canceling again changes nothing")
				require.Equal(t, j, stored)
			case domain.StatusCompleted, domain.StatusFailed:
				require.ErrorIs(t, err, domain.ErrNotCancelable)
				require.ErrorContains(t, err, j.ID.String())
				require.Nil(t, got)
				require.Equal(t, j, stored)
			default:
				t.Fatalf("no expectation for status %s", status)
			}
		})
	}

	t.Run("MissingJob", func(t *testing.T) {
		t.Parallel()
		s := newTestStore(t)
		id := uuid.New()
		_, err := s.CancelJob(t.Context(), id)
		require.ErrorIs(t, err, domain.ErrNotFound)
		require.ErrorContains(t, err, id.String())
	})
}
