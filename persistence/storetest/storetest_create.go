package storetest

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
)

func testCreate(t *testing.T, newStore factory) {
	t.Run("RoundTripsNewJob", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		j := NewJob(t, "send_email", JobCreatedAt(at(0)))
		mustCreate(t, store, j)
		requireStored(t, store, j)
	})

	t.Run("RoundTripsEveryField", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		j := fullJob(t)
		mustCreate(t, store, j)
		requireStored(t, store, j)
	})

	t.Run("RoundTripsEveryStatus", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		for i, s := range domain.Statuses() {
			j := withStatus(fullJob(t), s)
			j.CreatedAt = domain.Timestamp(at(i))
			mustCreate(t, store, j)
			requireStored(t, store, j)
		}
	})

	t.Run("RoundTripsBinaryPayload", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		j := NewJob(t, "process_file", JobCreatedAt(at(0)))
		j.Payload = []byte{0x00, 0xff, 0x01, 0xfe, '\n', 0x00}
		mustCreate(t, store, j)
		requireStored(t, store, j)
	})

	t.Run("RoundTripsEmptyPayload", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		j := NewJob(t, "noop", JobCreatedAt(at(0)))
		j.Payload = []byte{}
		mustCreate(t, store, j)
		got, err := store.Get(t.Context(), j.ID)
		require.NoError(t, err)
		// Whether an empty payload comes back nil or empty is the
		// backend's business; that it is empty is not.
		require.Empty(t, got.Payload)
		got.Payload = j.Payload
		require.Equal(t, j, got)
	})

	t.Run("StoresSeveralJobs", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		jobs := []*domain.Job{NewJob(t, "a", JobCreatedAt(at(0))), NewJob(t, "b", JobCreatedAt(at(1))), NewJob(t, "c", JobCreatedAt(at(2)))}
		mustCreate(t, store, jobs...)
		for _, j := range jobs {
			requireStored(t, store, j)
		}
	})

	t.Run("NoJobsIsANoOp", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		require.NoError(t, store.Create(t.Context()))
		requirePage(t, store, domain.Filter{}, nil, 0)
	})

	t.Run("ReturnsErrAlreadyExistsForStoredJob", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		j := NewJob(t, "send_email", JobCreatedAt(at(0)))
		mustCreate(t, store, j)

		again := j.Clone()
		again.Status = domain.StatusRunning
		again.Payload = []byte(`{"other":true}`)
		err := store.Create(t.Context(), again)
		require.ErrorIs(t, err, domain.ErrAlreadyExists)
		require.ErrorContains(t, err, j.ID.String(), "the error names the job")
		requireStored(t, store, j)
	})

	t.Run("IsAllOrNoneWhenOneIsStored", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		stored := NewJob(t, "send_email", JobCreatedAt(at(0)))
		mustCreate(t, store, stored)

		before, after := NewJob(t, "send_email", JobCreatedAt(at(1))), NewJob(t, "send_email", JobCreatedAt(at(2)))
		err := store.Create(t.Context(), before, stored.Clone(), after)
		require.ErrorIs(t, err, domain.ErrAlreadyExists)
		requireMissing(t, store, before.ID)
		requireMissing(t, store, after.ID)
		requireStored(t, store, stored)
		requirePage(t, store, domain.Filter{}, []*domain.Job{stored}, 1)
	})

	t.Run("IsAllOrNoneWhenDuplicatedInTheCall", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		other, j := NewJob(t, "send_email", JobCreatedAt(at(0))), NewJob(t, "send_email", JobCreatedAt(at(1)))
		twin := j.Clone()
		twin.Payload = []byte(`{"twin":true}`)

		err := store.Create(t.Context(), other, j, twin)
		require.ErrorIs(t, err, domain.ErrAlreadyExists)
		requireMissing(t, store, other.ID)
		requireMissing(t, store, j.ID)
		requirePage(t, store, domain.Filter{}, nil, 0)
	})

	t.Run("StoresACopy", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		j := fullJob(t)
		want := j.Clone()
		mustCreate(t, store, j)

		// The caller keeps using its job; the store must not see that.
		j.Payload[0] = 'X'
		j.Status = domain.StatusFailed
		j.Attempts = 99
		j.LastError = "changed"
		j.UpdatedAt = at(99)
		requireStored(t, store, want)
	})

	t.Run("ReturnsTheContextErrorWhenCanceled", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		j := NewJob(t, "send_email", JobCreatedAt(at(0)))
		require.ErrorIs(t, store.Create(ctx, j), context.Canceled)
		requireMissing(t, store, j.ID)
	})
}
