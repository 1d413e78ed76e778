package storetest

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
)

// testRequests covers domain.RequestLog, for the stores that implement it.
func testRequests(t *testing.T, newStore factory) {
	requestLog := func(t *testing.T) domain.RequestLog {
		t.Helper()
		log, ok := newStore(t).(domain.RequestLog)
		if !ok {
			t.Skip("the store keeps no request log")
		}
		return log
	}
	record := func(scope, key string, expiresAt int) domain.RequestRecord {
		return domain.RequestRecord{Scope: scope, Key: key, Fingerprint: "sha256:" + scope + key, ExpiresAt: at(expiresAt)}
	}

	t.Run("BeginStoresANewKey", func(t *testing.T) {
		t.Parallel()
		log := requestLog(t)
		existing, err := log.BeginRequest(t.Context(), at(0), record("ci", "k1", 60))
		require.NoError(t, err)
		require.Nil(t, existing)

		existing, err = log.BeginRequest(t.Context(), at(1), record("ci", "k1", 61))
		require.NoError(t, err)
		require.Equal(t, &domain.RequestRecord{Scope: "ci", Key: "k1", Fingerprint: "sha256:cik1", ExpiresAt: at(60)}, existing,
			"the first request, still in flight")
	})

	t.Run("BeginReturnsTheFinishedResponse", func(t *testing.T) {
		t.Parallel()
		log := requestLog(t)
		_, err := log.BeginRequest(t.Context(), at(0), record("ci", "k1", 60))
		require.NoError(t, err)
		done := record("ci", "k1", 86_400)
		done.Status, done.Body = 201, []byte(`{"id":"0190…","status":"pending"}`)
		require.NoError(t, log.FinishRequest(t.Context(), done))

		retry := record("ci", "k1", 90_000)
		retry.Fingerprint = "sha256:other"
		existing, err := log.BeginRequest(t.Context(), at(100), retry)
		require.NoError(t, err)
		done.Done = true
		require.Equal(t, &done, existing)
	})

	t.Run("BeginReplacesAnExpiredRecord", func(t *testing.T) {
		t.Parallel()
		log := requestLog(t)
		_, err := log.BeginRequest(t.Context(), at(0), record("ci", "inflight", 60))
		require.NoError(t, err)
		_, err = log.BeginRequest(t.Context(), at(0), record("ci", "done", 60))
		require.NoError(t, err)
		done := record("ci", "done", 120)
		done.Status = 200
		require.NoError(t, log.FinishRequest(t.Context(), done))

		existing, err := log.BeginRequest(t.Context(), at(60), record("ci", "inflight", 200))
		require.NoError(t, err)
		require.Nil(t, existing, "an in-flight record expires (its server died)")
		existing, err = log.BeginRequest(t.Context(), at(120), record("ci", "done", 300))
		require.NoError(t, err)
		require.Nil(t, existing, "a done record expires")

		existing, err = log.BeginRequest(t.Context(), at(121), record("ci", "done", 400))
		require.NoError(t, err)
		require.Equal(t, at(300), existing.ExpiresAt, "the replacement is the live record")
		require.False(t, existing.Done)
	})

	t.Run("AbandonForgetsOnlyInFlightRecords", func(t *testing.T) {
		t.Parallel()
		log := requestLog(t)
		_, err := log.BeginRequest(t.Context(), at(0), record("ci", "inflight", 60))
		require.NoError(t, err)
		_, err = log.BeginRequest(t.Context(), at(0), record("ci", "done", 60))
		require.NoError(t, err)
		done := record("ci", "done", 600)
		done.Status = 201
		require.NoError(t, log.FinishRequest(t.Context(), done))

		require.NoError(t, log.AbandonRequest(t.Context(), "ci", "inflight"))
		require.NoError(t, log.AbandonRequest(t.Context(), "ci", "done"))
		require.NoError(t, log.AbandonRequest(t.Context(), "ci", "never"))

		existing, err := log.BeginRequest(t.Context(), at(1), record("ci", "inflight", 60))
		require.NoError(t, err)
		require.Nil(t, existing, "the abandoned key may be used again at once")
		existing, err = log.BeginRequest(t.Context(), at(1), record("ci", "done", 60))
		require.NoError(t, err)
		require.NotNil(t, existing, "a finished record stays")
		require.True(t, existing.Done)
	})

	t.Run("ScopesKeepKeysApart", func(t *testing.T) {
		t.Parallel()
		log := requestLog(t)
		// Scopes and keys that would collide if joined naively.
		for _, r := range []domain.RequestRecord{record("a", "bc", 60), record("ab", "c", 60), record("", "abc", 60), record("abc", "", 60)} {
			existing, err := log.BeginRequest(t.Context(), at(0), r)
			require.NoError(t, err)
			require.Nil(t, existing, "%q/%q", r.Scope, r.Key)
		}
		done := record("a", "bc", 60)
		done.Status = 202
		require.NoError(t, log.FinishRequest(t.Context(), done))
		existing, err := log.BeginRequest(t.Context(), at(1), record("ab", "c", 60))
		require.NoError(t, err)
		require.False(t, existing.Done, "finishing a/bc left ab/c alone")
	})

	t.Run("DeleteExpiredHonoursTheLimit", func(t *testing.T) {
		t.Parallel()
		log := requestLog(t)
		for i := range 10 {
			// Five expire at 50, five at 500.
			expires := 50
			if i%2 == 1 {
				expires = 500
			}
			_, err := log.BeginRequest(t.Context(), at(0), record("ci", fmt.Sprintf("k%d", i), expires))
			require.NoError(t, err)
		}
		n, err := log.DeleteExpiredRequests(t.Context(), at(49), 100)
		require.NoError(t, err)
		require.Zero(t, n)
		n, err = log.DeleteExpiredRequests(t.Context(), at(50), 3)
		require.NoError(t, err)
		require.Equal(t, 3, n)
		n, err = log.DeleteExpiredRequests(t.Context(), at(50), 100)
		require.NoError(t, err)
		require.Equal(t, 2, n)
		n, err = log.DeleteExpiredRequests(t.Context(), at(50), 100)
		require.NoError(t, err)
		require.Zero(t, n)

		// The live ones are still there: Begin finds them at a time
		// before they expire.
		for i := 1; i < 10; i += 2 {
			existing, err := log.BeginRequest(t.Context(), at(60), record("ci", fmt.Sprintf("k%d", i), 900))
			require.NoError(t, err)
			require.NotNil(t, existing, "k%d", i)
		}
		n, err = log.DeleteExpiredRequests(t.Context(), at(500), 100)
		require.NoError(t, err)
		require.Equal(t, 5, n)
	})
}
