package storetest

import (
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
)

func testPing(t *testing.T, newStore factory) {
	t.Run("SucceedsOnAnOpenStore", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		require.NoError(t, store.Ping(t.Context()))
		mustCreate(t, store, NewJob(t, "send_email", JobCreatedAt(at(0))))
		require.NoError(t, store.Ping(t.Context()))
	})
}

func testFlush(t *testing.T, newStore factory) {
	t.Run("SucceedsOnAnOpenStore", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		require.NoError(t, store.Flush(t.Context()), "flush with nothing written")
		j := NewJob(t, "send_email", JobCreatedAt(at(0)))
		mustCreate(t, store, j)
		require.NoError(t, store.Flush(t.Context()))
		requireStored(t, store, j)
	})
}

func testClose(t *testing.T, newStore factory) {
	t.Run("MakesLaterCallsReturnErrClosed", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		j := NewJob(t, "send_email", JobCreatedAt(at(0)))
		mustCreate(t, store, j)
		require.NoError(t, store.Close())

		ctx := t.Context()
		_, getErr := store.Get(ctx, j.ID)
		_, listErr := store.List(ctx, domain.Filter{})
		calls := map[string]error{
			"Create": store.Create(ctx, NewJob(t, "send_email", JobCreatedAt(at(1)))),
			"Get":    getErr,
			"Update": store.Update(ctx, j),
			"Delete": store.Delete(ctx, j.ID),
			"List":   listErr,
			"Scan":   store.Scan(ctx, domain.Filter{}, func(*domain.Job) error { return nil }),
			"Ping":   store.Ping(ctx),
			"Flush":  store.Flush(ctx),
		}
		for name, err := range calls {
			require.ErrorIs(t, err, domain.ErrClosed, "%s after Close", name)
		}
	})

	t.Run("TwiceIsHarmless", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		require.NoError(t, store.Close())
		if err := store.Close(); err != nil {
			require.ErrorIs(t, err, domain.ErrClosed, "a second Close returns nil or ErrClosed")
		}
		_, err := store.Get(t.Context(), uuid.New())
		require.ErrorIs(t, err, domain.ErrClosed)
	})

}
