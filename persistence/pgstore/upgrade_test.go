package pgstore

import (
	"context"
	"testing"
	"time"

	"github.com/golang-migrate/migrate/v4"
	migratepgx "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/internal/pgtest"
)

// migrateToVersion moves schema to one version of the migrations, as an
// older (or newer) Troupe would have left it.
func migrateToVersion(t *testing.T, url, schema string, version uint) {
	t.Helper()
	cfg, err := poolConfig(Options{URL: url, Schema: schema}.WithDefaults())
	require.NoError(t, err)
	require.NoError(t, ensureSchema(t.Context(), cfg.ConnConfig, schema))
	db := stdlib.OpenDB(*cfg.ConnConfig.Copy())
	defer db.Close()
	driver, err := migratepgx.WithInstance(db, &migratepgx.Config{SchemaName: schema, MigrationsTable: MigrationsTable})
	require.NoError(t, err)
	source, err := iofs.New(migrations, "migrations")
	require.NoError(t, err)
	m, err := migrate.NewWithInstance("iofs", source, "pgx5", driver)
	require.NoError(t, err)
	defer m.Close()
	require.NoError(t, m.Migrate(version))
}

// TestMigrationOfExistingJobs upgrades a schema of version 1 holding jobs
// of every kind it knew, checks what the upgrade made of them, and goes
// back down with jobs only version 2 knows.
func TestMigrationOfExistingJobs(t *testing.T) {
	t.Parallel()
	url, schema := pgtest.URL(t), pgtest.RandomSchema(t)
	pgtest.DropSchemaOnCleanup(t, url, schema)
	migrateToVersion(t, url, schema, 1)

	conn, err := pgx.Connect(t.Context(), url)
	require.NoError(t, err)
	defer conn.Close(context.WithoutCancel(t.Context()))
	_, err = conn.Exec(t.Context(), `SET search_path = `+pgx.Identifier{schema}.Sanitize())
	require.NoError(t, err)
	// Version 1's jobs: pending without run_at (due since created),
	// pending with a future run_at (a retry waiting out its backoff),
	// running (the claim cleared run_at) and completed.
	_, err = conn.Exec(t.Context(), `
INSERT INTO troupe_jobs (id, status, type, max_attempts, created_at, run_at, finished_at) VALUES
    ('00000000-0000-0000-0000-000000000001', 'pending',   'noop', 3, now() - interval '1 hour', NULL, NULL),
    ('00000000-0000-0000-0000-000000000002', 'pending',   'noop', 3, now() - interval '1 hour', now() + interval '1 hour', NULL),
    ('00000000-0000-0000-0000-000000000003', 'running',   'noop', 3, now() - interval '2 hours', NULL, NULL),
    ('00000000-0000-0000-0000-000000000004', 'completed', 'noop', 3, now() - interval '3 hours', NULL, now())`)
	require.NoError(t, err)

	s, err := Open(t.Context(), Options{URL: url, Schema: schema, MaxConns: 4})
	require.NoError(t, err)
	defer func() { require.NoError(t, s.Close()) }()
	jobs, err := s.List(t.Context(), domain.Filter{})
	require.NoError(t, err)
	require.Len(t, jobs.Jobs, 4)
	byID := map[string]*domain.Job{}
	for _, j := range jobs.Jobs {
		byID[j.ID.String()[len(j.ID.String())-1:]] = j
		require.Equal(t, domain.DefaultQueue, j.Queue)
		require.Equal(t, domain.DefaultPriority, j.Priority)
	}
	require.Equal(t, domain.StatusPending, byID["1"].Status)
	require.Equal(t, byID["1"].CreatedAt, byID["1"].RunAt, "due since it was created")
	require.Equal(t, domain.StatusScheduled, byID["2"].Status, "a retry waiting out its backoff is scheduled")
	require.Equal(t, domain.StatusRunning, byID["3"].Status)
	require.Equal(t, byID["3"].CreatedAt, byID["3"].RunAt)
	require.True(t, byID["4"].RunAt.IsZero(), "a finished job keeps what it had")

	queues, err := s.Queues(t.Context())
	require.NoError(t, err)
	require.Equal(t, []domain.QueueInfo{{Name: domain.DefaultQueue, Scheduled: 1, Pending: 1, Running: 1}}, queues)
	claimed, err := s.ClaimJobs(t.Context(), "n1", domain.ClaimRequest{Limit: 10, Lease: time.Hour})
	require.NoError(t, err)
	require.Equal(t, ids([]*domain.Job{byID["1"]}), ids(claimed), "the default queue was recorded: its jobs are claimed")

	// Down again, with what only version 2 has: a job scheduled in a
	// queue of its own, with a unique key.
	later := newJob(t, "noop", 3, past(0))
	later.Queue, later.UniqueKey = "email", "k"
	later.ScheduleAt(time.Now().Add(time.Hour), time.Now())
	require.NoError(t, s.Create(t.Context(), later))
	migrateToVersion(t, url, schema, 1)
	var status string
	require.NoError(t, conn.QueryRow(t.Context(), `SELECT status FROM troupe_jobs WHERE id = $1`, later.ID).Scan(&status))
	require.Equal(t, "pending", status, "version 1 kept a job due later as pending with its run_at")
	migrateToVersion(t, url, schema, 2)
}

func TestQueuesAndTheQueueFilter(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	ctx := t.Context()
	var all []*domain.Job
	add := func(queue string, status domain.Status, n int) {
		for range n {
			j := newJob(t, "noop", 3, past(len(all)))
			j.Queue, j.Status = queue, status
			if status == domain.StatusScheduled {
				j.RunAt = domain.Timestamp(time.Now().Add(time.Hour))
			}
			all = append(all, j)
		}
	}
	add("email", domain.StatusScheduled, 2)
	add("email", domain.StatusPending, 3)
	add("reports", domain.StatusPending, 1)
	add("reports", domain.StatusCompleted, 4)
	add("archive", domain.StatusFailed, 1)
	require.NoError(t, s.Create(ctx, all...))
	claimed, err := s.ClaimJobs(ctx, "n1", domain.ClaimRequest{Limit: 1, Lease: time.Hour, Room: map[string]int{"email": 0}})
	require.NoError(t, err)
	require.Len(t, claimed, 1)
	require.NoError(t, s.SetQueuePaused(ctx, "idle", true))

	queues, err := s.Queues(ctx)
	require.NoError(t, err)
	require.Equal(t, []domain.QueueInfo{
		{Name: "email", Scheduled: 2, Pending: 3},
		{Name: "idle", Paused: true},
		{Name: "reports", Running: 1},
	}, queues, "by name; a queue with only finished jobs is not listed")

	page, err := s.List(ctx, domain.Filter{Queue: "reports", Statuses: []domain.Status{domain.StatusCompleted}, Limit: 2})
	require.NoError(t, err)
	require.Equal(t, 4, page.Total)
	require.Equal(t, ids(all[6:8]), ids(page.Jobs))
	var scanned []*domain.Job
	require.NoError(t, s.Scan(ctx, domain.Filter{Queue: "email"}, func(j *domain.Job) error {
		scanned = append(scanned, j)
		return nil
	}))
	require.Equal(t, ids(all[:5]), ids(scanned))
}

func TestCreateRejectsAPriorityOutOfRange(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	for _, p := range []int{0, 10, -1, 1 << 20} {
		j := newJob(t, "noop", 1, past(0))
		j.Priority = p
		require.ErrorIs(t, s.Create(t.Context(), j), domain.ErrInvalid, "priority %d", p)
	}
}

func TestAJobUpdatedIntoANewQueueIsClaimed(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	j := newJob(t, "noop", 1, past(0))
	require.NoError(t, s.Create(t.Context(), j))
	j.Queue = "fresh"
	require.NoError(t, s.Update(t.Context(), j))
	claimed, err := s.ClaimJobs(t.Context(), "n1", domain.ClaimRequest{Limit: 1, Lease: time.Hour})
	require.NoError(t, err)
	require.Equal(t, ids([]*domain.Job{j}), ids(claimed))
}

// TestMigrationToSchedules upgrades a schema of version 2 holding jobs,
// which come out with no schedule and are pruned like any other, then goes
// back down with a schedule and a scheduled job stored, and up again.
func TestMigrationToSchedules(t *testing.T) {
	t.Parallel()
	url, schema := pgtest.URL(t), pgtest.RandomSchema(t)
	pgtest.DropSchemaOnCleanup(t, url, schema)
	migrateToVersion(t, url, schema, 2)

	conn, err := pgx.Connect(t.Context(), url)
	require.NoError(t, err)
	defer conn.Close(context.WithoutCancel(t.Context()))
	_, err = conn.Exec(t.Context(), `SET search_path = `+pgx.Identifier{schema}.Sanitize())
	require.NoError(t, err)
	_, err = conn.Exec(t.Context(), `
INSERT INTO troupe_jobs (id, status, type, max_attempts, created_at, run_at, finished_at) VALUES
    ('00000000-0000-0000-0000-000000000001', 'pending',   'noop', 3, now() - interval '3 hours', now(), NULL),
    ('00000000-0000-0000-0000-000000000002', 'completed', 'noop', 3, now() - interval '3 hours', now(), now() - interval '2 hours'),
    ('00000000-0000-0000-0000-000000000003', 'failed',    'noop', 3, now() - interval '3 hours', now(), now() - interval '2 hours')`)
	require.NoError(t, err)

	s, err := Open(t.Context(), Options{URL: url, Schema: schema, MaxConns: 4})
	require.NoError(t, err)
	defer func() { require.NoError(t, s.Close()) }()
	page, err := s.List(t.Context(), domain.Filter{})
	require.NoError(t, err)
	require.Len(t, page.Jobs, 3)
	for _, j := range page.Jobs {
		require.Empty(t, j.Schedule)
	}
	n, err := s.DeleteFinished(t.Context(), time.Time{}, domain.StatusCompleted, time.Now().Add(-time.Hour), 100)
	require.NoError(t, err)
	require.Equal(t, 1, n, "the job version 2 left completed is pruned")

	// Down again, with what only version 3 has.
	j := newJob(t, "noop", 3, past(0))
	j.Schedule = "nightly"
	require.NoError(t, s.Create(t.Context(), j))
	created, err := s.PutSchedule(t.Context(), &domain.Schedule{Name: "nightly", Cron: "@daily", Job: domain.ScheduledJob{Type: "noop"}})
	require.NoError(t, err)
	require.True(t, created)
	migrateToVersion(t, url, schema, 2)
	var jobs int
	require.NoError(t, conn.QueryRow(t.Context(), `SELECT count(*) FROM troupe_jobs`).Scan(&jobs))
	require.Equal(t, 3, jobs, "a schedule's job stays a job")
	var schedules bool
	require.NoError(t, conn.QueryRow(t.Context(), `SELECT to_regclass('troupe_schedules') IS NOT NULL`).Scan(&schedules))
	require.False(t, schedules)

	// Back up to the latest version, which this build reads.
	require.NoError(t, Migrate(t.Context(), url, schema, MigrationUp))
	got, err := s.Get(t.Context(), j.ID)
	require.NoError(t, err)
	require.Empty(t, got.Schedule, "version 2 forgot it")
	list, err := s.ListSchedules(t.Context())
	require.NoError(t, err)
	require.Empty(t, list)
}

// TestMigrationToResults upgrades a schema of version 3 holding jobs, which
// come out with no result or progress, stores both, goes back down (the
// jobs stay, without them) and up again.
func TestMigrationToResults(t *testing.T) {
	t.Parallel()
	url, schema := pgtest.URL(t), pgtest.RandomSchema(t)
	pgtest.DropSchemaOnCleanup(t, url, schema)
	migrateToVersion(t, url, schema, 3)

	conn, err := pgx.Connect(t.Context(), url)
	require.NoError(t, err)
	defer conn.Close(context.WithoutCancel(t.Context()))
	_, err = conn.Exec(t.Context(), `SET search_path = `+pgx.Identifier{schema}.Sanitize())
	require.NoError(t, err)
	_, err = conn.Exec(t.Context(), `
INSERT INTO troupe_jobs (id, status, type, max_attempts, created_at, run_at, finished_at) VALUES
    ('00000000-0000-0000-0000-000000000001', 'pending',   'noop', 3, now() - interval '3 hours', now(), NULL),
    ('00000000-0000-0000-0000-000000000002', 'completed', 'noop', 3, now() - interval '3 hours', now(), now() - interval '2 hours')`)
	require.NoError(t, err)
	_, err = conn.Exec(t.Context(), `INSERT INTO troupe_queues (name) VALUES ('default') ON CONFLICT DO NOTHING`)
	require.NoError(t, err)

	s, err := Open(t.Context(), Options{URL: url, Schema: schema, MaxConns: 4})
	require.NoError(t, err)
	defer func() { require.NoError(t, s.Close()) }()
	page, err := s.List(t.Context(), domain.Filter{})
	require.NoError(t, err)
	require.Len(t, page.Jobs, 2)
	for _, j := range page.Jobs {
		require.Nil(t, j.Result)
		require.Nil(t, j.Progress)
	}
	claimed, err := s.ClaimJobs(t.Context(), "n1", domain.ClaimRequest{Limit: 1, Lease: time.Hour})
	require.NoError(t, err)
	require.Len(t, claimed, 1, "version 3's pending job is claimed")
	require.Nil(t, claimed[0].Progress)
	_, err = s.Heartbeat(t.Context(), "n1", claimed[0].ID, time.Hour, &domain.Progress{Percent: 50, Message: "half"})
	require.NoError(t, err)
	// An outcome is the whole snapshot: the runtime reads the job, with
	// the progress the heartbeat stored, and ends it.
	done, err := s.Get(t.Context(), claimed[0].ID)
	require.NoError(t, err)
	done.Status, done.FinishedAt, done.Result = domain.StatusCompleted, domain.Timestamp(time.Now()), []byte(`{"b":1, "a":2}`)
	require.NoError(t, s.UpdateOwned(t.Context(), "n1", done))
	got, err := s.Get(t.Context(), done.ID)
	require.NoError(t, err)
	require.Equal(t, `{"b":1, "a":2}`, string(got.Result), "byte for byte")
	require.Equal(t, "half", got.Progress.Message)

	migrateToVersion(t, url, schema, 3)
	var jobs int
	require.NoError(t, conn.QueryRow(t.Context(), `SELECT count(*) FROM troupe_jobs`).Scan(&jobs))
	require.Equal(t, 2, jobs, "jobs stay, without results")
	var hasResult bool
	require.NoError(t, conn.QueryRow(t.Context(), `
SELECT EXISTS (SELECT 1 FROM information_schema.columns
                WHERE table_schema = $1 AND table_name = 'troupe_jobs' AND column_name = 'result')`, schema).Scan(&hasResult))
	require.False(t, hasResult)

	require.NoError(t, Migrate(t.Context(), url, schema, MigrationUp))
	got, err = s.Get(t.Context(), done.ID)
	require.NoError(t, err)
	require.Nil(t, got.Result, "version 3 forgot it")
	require.Nil(t, got.Progress)
	require.Equal(t, domain.StatusCompleted, got.Status)
}
