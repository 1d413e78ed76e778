package pgstore

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/internal/pgtest"
)

func TestRequestLog(t *testing.T) {
	t.Parallel()
	now := domain.Timestamp(time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC))
	record := func(scope, key, fingerprint string) domain.RequestRecord {
		return domain.RequestRecord{Scope: scope, Key: key, Fingerprint: fingerprint, ExpiresAt: now.Add(time.Minute)}
	}

	t.Run("BeginFinishReplay", func(t *testing.T) {
		t.Parallel()
		s := newTestStore(t)
		ctx := t.Context()
		first := record("alice", "k1", "f1")
		existing, err := s.BeginRequest(ctx, now, first)
		require.NoError(t, err)
		require.Nil(t, existing, "a free key is taken")

		existing, err = s.BeginRequest(ctx, now, record("alice", "k1", "f2"))
		require.NoError(t, err)
		require.Equal(t, &domain.RequestRecord{Scope: "alice", Key: "k1", Fingerprint: "f1", ExpiresAt: first.ExpiresAt}, existing,
			"the first request is in flight")
		existing, err = s.BeginRequest(ctx, now, record("bob", "k1", "f1"))
		require.NoError(t, err)
		require.Nil(t, existing, "keys are per scope")

		done := first
		done.Status, done.Body, done.ExpiresAt = 201, []byte(`{"id":"x"}`), now.Add(24*time.Hour)
		require.NoError(t, s.FinishRequest(ctx, done))
		existing, err = s.BeginRequest(ctx, now.Add(time.Hour), record("alice", "k1", "f1"))
		require.NoError(t, err)
		done.Done = true
		require.Equal(t, &done, existing, "the recorded response comes back")

		replacement := record("alice", "k1", "f3")
		replacement.ExpiresAt = done.ExpiresAt.Add(time.Minute)
		existing, err = s.BeginRequest(ctx, done.ExpiresAt, replacement)
		require.NoError(t, err)
		require.Nil(t, existing, "an expired record is replaced")
		existing, err = s.BeginRequest(ctx, done.ExpiresAt, record("alice", "k1", "f4"))
		require.NoError(t, err)
		require.Equal(t, "f3", existing.Fingerprint)
		require.False(t, existing.Done)
		require.Nil(t, existing.Body)
	})

	t.Run("AbandonForgetsOnlyARequestInFlight", func(t *testing.T) {
		t.Parallel()
		s := newTestStore(t)
		ctx := t.Context()
		_, err := s.BeginRequest(ctx, now, record("alice", "k1", "f1"))
		require.NoError(t, err)
		require.NoError(t, s.AbandonRequest(ctx, "alice", "k1"))
		existing, err := s.BeginRequest(ctx, now, record("alice", "k1", "f2"))
		require.NoError(t, err)
		require.Nil(t, existing, "abandoned: the key may be used again at once")

		done := record("alice", "k1", "f2")
		done.Status = 200
		require.NoError(t, s.FinishRequest(ctx, done))
		require.NoError(t, s.AbandonRequest(ctx, "alice", "k1"))
		existing, err = s.BeginRequest(ctx, now, record("alice", "k1", "f2"))
		require.NoError(t, err)
		require.True(t, existing.Done, "a finished record stays")
		require.NoError(t, s.AbandonRequest(ctx, "nobody", "nothing"), "abandoning nothing is harmless")
	})

	t.Run("DeleteExpiredRequests", func(t *testing.T) {
		t.Parallel()
		s := newTestStore(t)
		ctx := t.Context()
		for i, key := range []string{"a", "b", "c", "d"} {
			rec := record("s", key, "f")
			rec.ExpiresAt = now.Add(time.Duration(i) * time.Minute)
			_, err := s.BeginRequest(ctx, now, rec)
			require.NoError(t, err)
		}
		n, err := s.DeleteExpiredRequests(ctx, now.Add(2*time.Minute), 0)
		require.NoError(t, err)
		require.Zero(t, n, "a limit of 0 deletes nothing")
		n, err = s.DeleteExpiredRequests(ctx, now.Add(2*time.Minute), 2)
		require.NoError(t, err)
		require.Equal(t, 2, n, "up to the limit")
		n, err = s.DeleteExpiredRequests(ctx, now.Add(2*time.Minute), 10)
		require.NoError(t, err)
		require.Equal(t, 1, n, "the third expired at the given time")
		existing, err := s.BeginRequest(ctx, now, record("s", "d", "other"))
		require.NoError(t, err)
		require.Equal(t, "f", existing.Fingerprint, "a live record stays")
	})

	t.Run("NodesRacingOnOneKeyHaveOneWinner", func(t *testing.T) {
		t.Parallel()
		url, schema := pgtest.URL(t), pgtest.RandomSchema(t)
		pgtest.DropSchemaOnCleanup(t, url, schema)
		nodes := make([]*Store, 2)
		for i := range nodes {
			s, err := Open(t.Context(), Options{URL: url, Schema: schema, MaxConns: 8})
			require.NoError(t, err)
			t.Cleanup(func() { require.NoError(t, s.Close()) })
			nodes[i] = s
		}
		const racers = 16
		for round := range 20 {
			key := string(rune('a' + round))
			var (
				wg      sync.WaitGroup
				mu      sync.Mutex
				winners int
				errs    []error
			)
			for r := range racers {
				wg.Go(func() {
					existing, err := nodes[r%2].BeginRequest(t.Context(), now, record("alice", key, "f"))
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						errs = append(errs, err)
					}
					if err == nil && existing == nil {
						winners++
					}
				})
			}
			wg.Wait()
			require.Empty(t, errs)
			require.Equal(t, 1, winners, "key %s", key)
		}
	})

	t.Run("ClosedStore", func(t *testing.T) {
		t.Parallel()
		s := newTestStore(t)
		require.NoError(t, s.Close())
		ctx := t.Context()
		_, err := s.BeginRequest(ctx, now, record("s", "k", "f"))
		require.ErrorIs(t, err, domain.ErrClosed)
		require.ErrorIs(t, s.FinishRequest(ctx, record("s", "k", "f")), domain.ErrClosed)
		require.ErrorIs(t, s.AbandonRequest(ctx, "s", "k"), domain.ErrClosed)
		_, err = s.DeleteExpiredRequests(ctx, now, 1)
		require.ErrorIs(t, err, domain.ErrClosed)
	})
}
