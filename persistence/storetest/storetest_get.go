package storetest

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
)

func testGet(t *testing.T, newStore factory) {
	t.Run("ReturnsErrNotFoundForMissingJob", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		mustCreate(t, store, NewJob(t, "send_email", JobCreatedAt(at(0))))
		id := uuid.New()
		_, err := store.Get(t.Context(), id)
		require.ErrorIs(t, err, domain.ErrNotFound)
		require.ErrorContains(t, err, id.String(), "the error names the job")
	})

	t.Run("ReturnsACopy", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		j := fullJob(t)
		mustCreate(t, store, j)

		got, err := store.Get(t.Context(), j.ID)
		require.NoError(t, err)
		got.Payload[0] = 'X'
		got.Attempts = 99
		got.LastError = "changed"
		got.Result[0] = 'X'
		got.Progress.Message = "changed"
		got.Progress.Percent = 1
		requireStored(t, store, j)
	})

	t.Run("ReturnsTheContextErrorWhenCanceled", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		j := NewJob(t, "send_email", JobCreatedAt(at(0)))
		mustCreate(t, store, j)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := store.Get(ctx, j.ID)
		require.ErrorIs(t, err, context.Canceled)
	})
}
