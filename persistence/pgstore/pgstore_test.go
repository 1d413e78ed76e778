package pgstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/internal/pgtest"
	"github.com/troupe-go/troupe/internal/syncbuf"
	"github.com/troupe-go/troupe/persistence/storetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// newTestStore opens a store in a fresh schema of the test database, closed
// and dropped when the test ends.
func newTestStore(tb testing.TB) *Store {
	tb.Helper()
	return newTestStoreIn(tb, pgtest.RandomSchema(tb))
}

// newTestStoreIn is newTestStore with a chosen schema name.
func newTestStoreIn(tb testing.TB, schema string) *Store {
	tb.Helper()
	url := pgtest.URL(tb)
	pgtest.DropSchemaOnCleanup(tb, url, schema)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Open(ctx, Options{URL: url, Schema: schema, MaxConns: 10})
	require.NoError(tb, err)
	tb.Cleanup(func() { require.NoError(tb, s.Close()) })
	return s
}

// newJob returns a pending job of type typ created at createdAt.
func newJob(tb testing.TB, typ domain.JobType, maxAttempts int, createdAt time.Time) *domain.Job {
	tb.Helper()
	return storetest.NewJob(tb, typ, storetest.JobPayload([]byte(`{"n":1}`)), storetest.JobMaxAttempts(maxAttempts), storetest.JobCreatedAt(createdAt))
}

// past returns a creation time safely before the database's now, so that a
// job without RunAt is ready at once.
func past(n int) time.Time {
	return domain.Timestamp(time.Date(2025, time.January, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(n) * time.Millisecond))
}

// leaseState reads the scale-out columns of a job straight from the table.
type leaseState struct {
	Owner           *string
	LeaseExpiresAt  *time.Time
	LeaseInFuture   bool
	CancelRequested bool
}

func readLease(t *testing.T, s *Store, j *domain.Job) leaseState {
	t.Helper()
	var ls leaseState
	err := s.pool.QueryRow(t.Context(), `
SELECT owner_node, lease_expires_at, COALESCE(lease_expires_at > now(), false), cancel_requested
  FROM troupe_jobs WHERE id = $1`, j.ID).Scan(&ls.Owner, &ls.LeaseExpiresAt, &ls.LeaseInFuture, &ls.CancelRequested)
	require.NoError(t, err)
	return ls
}

// TestStore runs the conformance suite, each subtest on a store in a schema
// of its own. The store judges due jobs and unique keys by the database's
// clock, so the cases that move time through now are skipped here;
// TestSharedQueue checks scheduling and uniqueness on that clock.
func TestStore(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) domain.Store { return newTestStore(t) }, storetest.WithOwnClock())
}

func TestOptions(t *testing.T) {
	t.Parallel()

	t.Run("Defaults", func(t *testing.T) {
		t.Parallel()
		o := Options{URL: "postgres://x@localhost/db"}.WithDefaults()
		require.Equal(t, "public", o.Schema)
		require.Equal(t, time.Hour, o.MaxConnLifetime)
		require.Equal(t, 30*time.Minute, o.MaxConnIdleTime)
		require.NotNil(t, o.Logger)
		require.Zero(t, o.MaxConns)
		require.Zero(t, o.MinConns)
		require.False(t, o.SkipMigrations)
	})

	t.Run("PoolConfig", func(t *testing.T) {
		t.Parallel()
		cfg, err := poolConfig(Options{URL: "postgres://x@localhost/db", Schema: `odd"name`, MaxConns: 7, MinConns: 2}.WithDefaults())
		require.NoError(t, err)
		require.EqualValues(t, 7, cfg.MaxConns)
		require.EqualValues(t, 2, cfg.MinConns)
		require.Equal(t, `"odd""name"`, cfg.ConnConfig.RuntimeParams["search_path"])
	})

	invalid := map[string]Options{
		"MissingURL":          {},
		"UnparsableURL":       {URL: "postgres://x@localhost:notaport/db"},
		"LongSchema":          {URL: "postgres://x@localhost/db", Schema: string(make([]byte, 64))},
		"NegativeMaxConns":    {URL: "postgres://x@localhost/db", MaxConns: -1},
		"MinConnsAboveMax":    {URL: "postgres://x@localhost/db", MaxConns: 2, MinConns: 3},
		"NegativeIdleTimeout": {URL: "postgres://x@localhost/db", MaxConnIdleTime: -time.Second},
	}
	for name, opts := range invalid {
		t.Run("Rejects"+name, func(t *testing.T) {
			t.Parallel()
			_, err := Open(t.Context(), opts)
			require.ErrorIs(t, err, domain.ErrInvalid)
		})
	}
}

func TestMapError(t *testing.T) {
	t.Parallel()
	require.NoError(t, mapError(nil))
	require.ErrorIs(t, mapError(pgx.ErrNoRows), domain.ErrNotFound)
	other := context.DeadlineExceeded
	require.ErrorIs(t, mapError(other), context.DeadlineExceeded)
	require.NotErrorIs(t, mapError(other), domain.ErrUnavailable, "the caller's deadline is not an outage")

	down := &pgconn.PgError{Code: "57P01", Message: "terminating connection due to administrator command"}
	require.ErrorIs(t, mapError(down), domain.ErrUnavailable)
	require.ErrorIs(t, mapError(down), down)
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	require.ErrorIs(t, mapError(fmt.Errorf("query: %w", refused)), domain.ErrUnavailable)
	require.NotErrorIs(t, mapError(&pgconn.PgError{Code: "42P01"}), domain.ErrUnavailable, "a missing table is a bug, not an outage")
}

func TestClosedStore(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	j := newJob(t, "noop", 1, past(0))
	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "closing twice is harmless")

	ctx := t.Context()
	require.ErrorIs(t, s.Create(ctx, j), domain.ErrClosed)
	_, err := s.Get(ctx, j.ID)
	require.ErrorIs(t, err, domain.ErrClosed)
	require.ErrorIs(t, s.Update(ctx, j), domain.ErrClosed)
	require.ErrorIs(t, s.Delete(ctx, j.ID), domain.ErrClosed)
	_, err = s.List(ctx, domain.Filter{})
	require.ErrorIs(t, err, domain.ErrClosed)
	require.ErrorIs(t, s.Scan(ctx, domain.Filter{}, func(*domain.Job) error { return nil }), domain.ErrClosed)
	require.ErrorIs(t, s.Ping(ctx), domain.ErrClosed)
	require.ErrorIs(t, s.Flush(ctx), domain.ErrClosed)
	_, err = s.ClaimJobs(ctx, "n1", domain.ClaimRequest{Limit: 1, Lease: time.Minute})
	require.ErrorIs(t, err, domain.ErrClosed)
	_, err = s.RescueExpired(ctx)
	require.ErrorIs(t, err, domain.ErrClosed)
	require.ErrorIs(t, s.Watch(ctx, func(domain.QueueNotice) {}), domain.ErrClosed)
}

// TestOpenWarnsWithoutAutovacuum: a server without autovacuum gets a
// warning at Open, and one with it none.
func TestOpenWarnsWithoutAutovacuum(t *testing.T) {
	url := pgtest.URL(t)
	schema := pgtest.RandomSchema(t)
	pgtest.DropSchemaOnCleanup(t, url, schema)
	var logs syncbuf.Buffer
	s, err := Open(t.Context(), Options{URL: url, Schema: schema, MaxConns: 2,
		Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	require.NoError(t, err)
	defer func() { require.NoError(t, s.Close()) }()
	var on bool
	require.NoError(t, s.pool.QueryRow(t.Context(), `SELECT current_setting('autovacuum')::boolean`).Scan(&on))
	if on {
		require.NotContains(t, logs.String(), "autovacuum off")
	} else {
		require.Contains(t, logs.String(), "autovacuum off")
	}
}
