package pgstore

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/internal/pgtest"
)

// waitTimeout bounds every wait for a notification; it only decides when a
// test gives up, never whether it passes.
const waitTimeout = 30 * time.Second

// startListener runs s.Watch until the test ends and returns what it
// delivers, after the first NoticeWatching: from then on, nothing is missed.
func startListener(t *testing.T, s *Store) <-chan domain.QueueNotice {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	notes := make(chan domain.QueueNotice, 1024)
	done := make(chan error, 1)
	go func() {
		done <- s.Watch(ctx, func(n domain.QueueNotice) {
			select {
			case notes <- n:
			case <-ctx.Done():
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	waitFor(t, notes, func(n domain.QueueNotice) bool { return n.Kind == domain.NoticeWatching })
	return notes
}

// waitFor returns the first notification that matches, skipping others.
func waitFor(t *testing.T, notes <-chan domain.QueueNotice, match func(domain.QueueNotice) bool) domain.QueueNotice {
	t.Helper()
	timeout := time.NewTimer(waitTimeout)
	defer timeout.Stop()
	for {
		select {
		case n := <-notes:
			if match(n) {
				return n
			}
		case <-timeout.C:
			t.Fatal("no matching notification arrived")
			return domain.QueueNotice{}
		}
	}
}

func TestWatch(t *testing.T) {
	t.Parallel()

	t.Run("JobsAvailableAfterCreate", func(t *testing.T) {
		t.Parallel()
		s := newTestStore(t)
		notes := startListener(t, s)
		jobs := []*domain.Job{newJob(t, "noop", 3, past(0)), newJob(t, "noop", 3, past(1))}
		require.NoError(t, s.Create(t.Context(), jobs...))
		n := waitFor(t, notes, func(n domain.QueueNotice) bool { return n.Kind == domain.NoticeJobsAvailable })
		require.True(t, n.RunAt.IsZero(), "ready now")
	})

	t.Run("JobsAvailableWithRunAtAfterARetry", func(t *testing.T) {
		t.Parallel()
		s := newTestStore(t)
		require.NoError(t, s.Create(t.Context(), newJob(t, "noop", 3, past(0))))
		claimed, err := s.ClaimJobs(t.Context(), "n1", domain.ClaimRequest{Limit: 1, Lease: time.Hour})
		require.NoError(t, err)
		require.Len(t, claimed, 1)

		notes := startListener(t, s)
		runAt := domain.Timestamp(time.Now().Add(time.Hour))
		retry := claimed[0].Clone()
		require.NoError(t, retry.Retry(errTest, runAt, time.Now()))
		require.NoError(t, s.UpdateOwned(t.Context(), "n1", retry))
		n := waitFor(t, notes, func(n domain.QueueNotice) bool { return n.Kind == domain.NoticeJobsAvailable })
		require.Equal(t, runAt, n.RunAt)
	})

	t.Run("JobsAvailableAfterARescue", func(t *testing.T) {
		t.Parallel()
		s := newTestStore(t)
		require.NoError(t, s.Create(t.Context(), newJob(t, "noop", 3, past(0))))
		_, err := s.ClaimJobs(t.Context(), "n1", domain.ClaimRequest{Limit: 1, Lease: expired})
		require.NoError(t, err)
		notes := startListener(t, s)
		_, err = s.RescueExpired(t.Context())
		require.NoError(t, err)
		n := waitFor(t, notes, func(n domain.QueueNotice) bool { return n.Kind == domain.NoticeJobsAvailable })
		require.True(t, n.RunAt.IsZero())
	})

	t.Run("CancelRequestedAfterCancelOfARunningJob", func(t *testing.T) {
		t.Parallel()
		s := newTestStore(t)
		require.NoError(t, s.Create(t.Context(), newJob(t, "noop", 3, past(0))))
		claimed, err := s.ClaimJobs(t.Context(), "node-7", domain.ClaimRequest{Limit: 1, Lease: time.Hour})
		require.NoError(t, err)
		require.Len(t, claimed, 1)
		notes := startListener(t, s)
		_, err = s.CancelJob(t.Context(), claimed[0].ID)
		require.NoError(t, err)
		n := waitFor(t, notes, func(n domain.QueueNotice) bool { return n.Kind == domain.NoticeCancelRequested })
		require.Equal(t, domain.QueueNotice{Kind: domain.NoticeCancelRequested, JobID: claimed[0].ID, Node: "node-7"}, n)
	})

	t.Run("OneJobsAvailablePerStatement", func(t *testing.T) {
		t.Parallel()
		s := newTestStore(t)
		sentinel := newJob(t, "noop", 3, past(0))
		require.NoError(t, s.Create(t.Context(), sentinel))
		_, err := s.ClaimJobs(t.Context(), "n1", domain.ClaimRequest{Limit: 1, Lease: time.Hour})
		require.NoError(t, err)
		notes := startListener(t, s)

		jobs := make([]*domain.Job, 100)
		for i := range jobs {
			jobs[i] = newJob(t, "noop", 3, past(i+1))
		}
		require.NoError(t, s.Create(t.Context(), jobs...))
		_, err = s.ClaimJobs(t.Context(), "n1", domain.ClaimRequest{Limit: 50, Lease: time.Hour})
		require.NoError(t, err)
		// The cancel commits last; PostgreSQL delivers in commit order, so
		// whatever the statements above sent has arrived before it.
		_, err = s.CancelJob(t.Context(), sentinel.ID)
		require.NoError(t, err)

		available := 0
		waitFor(t, notes, func(n domain.QueueNotice) bool {
			if n.Kind == domain.NoticeJobsAvailable {
				available++
			}
			return n.Kind == domain.NoticeCancelRequested
		})
		require.Equal(t, 1, available, "one notice for a create of 100 jobs, none for a claim")
	})

	t.Run("ReconnectsAfterLosingItsConnection", func(t *testing.T) {
		t.Parallel()
		s := newTestStore(t)
		notes := startListener(t, s)
		var terminated int
		require.NoError(t, s.pool.QueryRow(t.Context(), `
SELECT count(pg_terminate_backend(pid))
  FROM pg_stat_activity
 WHERE datname = current_database() AND query = 'LISTEN ' || quote_ident($1)`, s.Channel()).Scan(&terminated))
		require.Equal(t, 1, terminated)
		waitFor(t, notes, func(n domain.QueueNotice) bool { return n.Kind == domain.NoticeWatching })

		require.NoError(t, s.Create(t.Context(), newJob(t, "noop", 3, past(0))))
		waitFor(t, notes, func(n domain.QueueNotice) bool { return n.Kind == domain.NoticeJobsAvailable })
	})

	t.Run("SchemasDoNotCrossTalk", func(t *testing.T) {
		t.Parallel()
		mine, theirs := newTestStore(t), newTestStore(t)
		require.NotEqual(t, mine.Channel(), theirs.Channel())
		notes := startListener(t, mine)

		// Their cancel commits before my create, and PostgreSQL delivers in
		// commit order: had it reached my channel, it would come first.
		require.NoError(t, theirs.Create(t.Context(), newJob(t, "noop", 3, past(0))))
		claimed, err := theirs.ClaimJobs(t.Context(), "n1", domain.ClaimRequest{Limit: 1, Lease: time.Hour})
		require.NoError(t, err)
		require.Len(t, claimed, 1)
		_, err = theirs.CancelJob(t.Context(), claimed[0].ID)
		require.NoError(t, err)
		require.NoError(t, mine.Create(t.Context(), newJob(t, "noop", 3, past(0))))

		n := waitFor(t, notes, func(domain.QueueNotice) bool { return true })
		require.Equal(t, domain.NoticeJobsAvailable, n.Kind)
	})

	t.Run("LongSchemaNamesShareTheChannelWithTheTrigger", func(t *testing.T) {
		t.Parallel()
		prefix := pgtest.RandomSchema(t)
		schema := prefix + strings.Repeat("x", 63-len(prefix))
		require.Len(t, schema, 63)
		s := newTestStoreIn(t, schema)
		require.Len(t, s.Channel(), len("troupe_jobs.")+32, "an md5 stands for a long schema")
		notes := startListener(t, s)
		require.NoError(t, s.Create(t.Context(), newJob(t, "noop", 3, past(0))))
		waitFor(t, notes, func(n domain.QueueNotice) bool { return n.Kind == domain.NoticeJobsAvailable })
	})

	t.Run("ReturnsErrClosedWhenTheStoreCloses", func(t *testing.T) {
		t.Parallel()
		s := newTestStore(t)
		ready := make(chan struct{}, 1)
		done := make(chan error, 1)
		go func() {
			done <- s.Watch(context.Background(), func(n domain.QueueNotice) {
				if n.Kind == domain.NoticeWatching {
					ready <- struct{}{}
				}
			})
		}()
		select {
		case <-ready:
		case <-time.After(waitTimeout):
			t.Fatal("the listener never subscribed")
		}
		require.NoError(t, s.Close())
		select {
		case err := <-done:
			require.ErrorIs(t, err, domain.ErrClosed)
		case <-time.After(waitTimeout):
			t.Fatal("Watch did not return after Close")
		}
	})
}

func TestNotificationPayloads(t *testing.T) {
	t.Parallel()
	n, err := parseNotification(`{"kind":"jobs_available","runAt":"2026-01-02T03:04:05.123456Z"}`)
	require.NoError(t, err)
	require.Equal(t, domain.QueueNotice{Kind: domain.NoticeJobsAvailable, RunAt: time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC)}, n)

	n, err = parseNotification(`{"kind":"cancel_requested","jobId":"0190a0b4-8f3e-7c4d-9a1b-2c3d4e5f6a7b","node":"n1"}`)
	require.NoError(t, err)
	require.Equal(t, domain.NoticeCancelRequested, n.Kind)
	require.Equal(t, "0190a0b4-8f3e-7c4d-9a1b-2c3d4e5f6a7b", n.JobID.String())
	require.Equal(t, "n1", n.Node)

	for _, bad := range []string{`nope`, `{"kind":"other"}`, `{"kind":"cancel_requested"}`} {
		_, err := parseNotification(bad)
		require.Error(t, err, bad)
	}
	require.Equal(t, "troupe_jobs.public", notifyChannel("public"))
}
