package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
)

// fullSchedule returns a schedule with every definition field set to a
// value other than its zero value, and no run yet.
func fullSchedule(name string) *domain.Schedule {
	return &domain.Schedule{
		Name:     name,
		Cron:     "*/5 * * * *",
		Timezone: "Europe/Paris",
		Job: domain.ScheduledJob{
			Type:        "generate_report",
			Payload:     []byte(`{"day":"yesterday","note":"ünïcödé"}`),
			Queue:       "reports",
			Priority:    3,
			MaxAttempts: 5,
			Timeout:     10*time.Minute + 1500*time.Microsecond,
		},
		CatchUp:   domain.CatchUpOne,
		Source:    domain.SourceConfig,
		CreatedAt: domain.Timestamp(at(0)),
		UpdatedAt: domain.Timestamp(at(1)),
	}
}

// mustPutSchedule stores sc and requires created to be as said.
func mustPutSchedule(t *testing.T, store domain.Store, sc *domain.Schedule, created bool) {
	t.Helper()
	got, err := store.PutSchedule(t.Context(), sc)
	require.NoError(t, err, "put schedule %q", sc.Name)
	require.Equal(t, created, got, "put schedule %q: created", sc.Name)
}

// requireSchedule fails unless the store holds exactly want under its name.
func requireSchedule(t *testing.T, store domain.Store, want *domain.Schedule) {
	t.Helper()
	got, err := store.GetSchedule(t.Context(), want.Name)
	require.NoError(t, err, "get schedule %q", want.Name)
	require.Equal(t, want, got, "schedule %q reads back different", want.Name)
}

// requireNoSchedule fails unless the store answers ErrNotFound, naming
// the schedule, for name.
func requireNoSchedule(t *testing.T, store domain.Store, name string) {
	t.Helper()
	_, err := store.GetSchedule(t.Context(), name)
	require.ErrorIs(t, err, domain.ErrNotFound, "schedule %q should not be stored", name)
	require.ErrorContains(t, err, name, "the error names the schedule")
}

// mustRecordRun records run for the named schedule.
func mustRecordRun(t *testing.T, store domain.Store, name string, run domain.ScheduleRun) {
	t.Helper()
	require.NoError(t, store.RecordScheduleRun(t.Context(), name, run), "record run of %q", name)
}

func testSchedules(t *testing.T, newStore factory) {
	t.Run("PutCreatesThenReplacesTheDefinition", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		sc := fullSchedule("nightly-report")
		mustPutSchedule(t, store, sc, true)
		requireSchedule(t, store, sc)

		run := domain.ScheduleRun{Slot: domain.Timestamp(at(300)), At: domain.Timestamp(at(301)), JobID: uuid.New()}
		mustRecordRun(t, store, sc.Name, run)

		// Every definition field changes; CreatedAt and the run fields
		// given are ignored.
		repl := &domain.Schedule{
			Name: sc.Name,
			Cron: "@every 30s",
			Job: domain.ScheduledJob{
				Type:    "send_email",
				Payload: []byte(`[1,2]`),
			},
			Paused:    true,
			CatchUp:   domain.CatchUpSkip,
			Source:    domain.SourceAPI,
			CreatedAt: domain.Timestamp(at(500)),
			UpdatedAt: domain.Timestamp(at(501)),
			LastSlot:  domain.Timestamp(at(9000)),
			LastRunAt: domain.Timestamp(at(9001)),
			LastJobID: uuid.New(),
		}
		mustPutSchedule(t, store, repl, false)
		want := repl.Clone()
		want.CreatedAt = sc.CreatedAt
		want.LastSlot, want.LastRunAt, want.LastJobID = run.Slot, run.At, run.JobID
		requireSchedule(t, store, want)

		// And back: the full definition replaces the bare one.
		back := fullSchedule(sc.Name)
		back.UpdatedAt = domain.Timestamp(at(600))
		mustPutSchedule(t, store, back, false)
		want = back.Clone()
		want.LastSlot, want.LastRunAt, want.LastJobID = run.Slot, run.At, run.JobID
		requireSchedule(t, store, want)
	})

	t.Run("GetReturnsErrNotFoundNamingTheSchedule", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		mustPutSchedule(t, store, fullSchedule("hourly"), true)
		requireNoSchedule(t, store, "nightly")
	})

	t.Run("ListReturnsEveryScheduleByName", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		list, err := store.ListSchedules(t.Context())
		require.NoError(t, err)
		require.NotNil(t, list, "empty, never nil")
		require.Empty(t, list)

		byName := map[string]*domain.Schedule{}
		for _, name := range []string{"gamma", "alpha", "delta", "beta"} {
			sc := fullSchedule(name)
			sc.Cron = "@every " + name
			mustPutSchedule(t, store, sc, true)
			byName[name] = sc
		}
		want := []*domain.Schedule{byName["alpha"], byName["beta"], byName["delta"], byName["gamma"]}
		list, err = store.ListSchedules(t.Context())
		require.NoError(t, err)
		require.Equal(t, want, list)
	})

	t.Run("DeleteRemovesOnlyThatSchedule", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		gone, kept := fullSchedule("gone"), fullSchedule("kept")
		mustPutSchedule(t, store, gone, true)
		mustPutSchedule(t, store, kept, true)
		mustRecordRun(t, store, gone.Name, domain.ScheduleRun{Slot: at(10), At: at(10), JobID: uuid.New()})
		require.NoError(t, store.DeleteSchedule(t.Context(), gone.Name))
		requireNoSchedule(t, store, gone.Name)
		requireSchedule(t, store, kept)
		list, err := store.ListSchedules(t.Context())
		require.NoError(t, err)
		require.Equal(t, []*domain.Schedule{kept}, list)

		err = store.DeleteSchedule(t.Context(), gone.Name)
		require.ErrorIs(t, err, domain.ErrNotFound, "the second time")
		require.ErrorContains(t, err, gone.Name)

		// Put again starts afresh: the old run is forgotten.
		mustPutSchedule(t, store, gone, true)
		requireSchedule(t, store, gone)
	})

	t.Run("RecordRunNeverMovesBack", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		sc := fullSchedule("every-minute")
		mustPutSchedule(t, store, sc, true)
		want := sc.Clone()
		step := func(run domain.ScheduleRun, slot, runAt time.Time, job uuid.UUID) {
			t.Helper()
			mustRecordRun(t, store, sc.Name, run)
			want.LastSlot, want.LastRunAt, want.LastJobID = domain.Timestamp(slot), domain.Timestamp(runAt), job
			requireSchedule(t, store, want)
		}
		j1, j2, j3, j4, j5 := uuid.New(), uuid.New(), uuid.New(), uuid.New(), uuid.New()
		step(domain.ScheduleRun{Slot: at(100), At: at(101), JobID: j1}, at(100), at(101), j1)
		// An earlier slot recorded later: the job is the latest, the slot
		// stays.
		step(domain.ScheduleRun{Slot: at(50), At: at(150), JobID: j2}, at(100), at(150), j2)
		// A later slot recorded with an earlier time: the slot moves, the
		// job stays.
		step(domain.ScheduleRun{Slot: at(200), At: at(120), JobID: j3}, at(200), at(150), j2)
		// A trigger (no slot) at the same time as the latest job wins.
		step(domain.ScheduleRun{At: at(150), JobID: j4}, at(200), at(150), j4)
		// Both move.
		step(domain.ScheduleRun{Slot: at(260), At: at(261), JobID: j5}, at(260), at(261), j5)

		require.NoError(t, store.DeleteSchedule(t.Context(), sc.Name))
		err := store.RecordScheduleRun(t.Context(), sc.Name, domain.ScheduleRun{Slot: at(300), At: at(300), JobID: uuid.New()})
		require.ErrorIs(t, err, domain.ErrNotFound, "a deleted schedule")
		require.ErrorContains(t, err, sc.Name)
		requireNoSchedule(t, store, sc.Name)
	})

	t.Run("HandsOutCopies", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		sc := fullSchedule("copies")
		want := sc.Clone()
		mustPutSchedule(t, store, sc, true)
		sc.Job.Payload[0], sc.Cron = '[', "@hourly"

		got, err := store.GetSchedule(t.Context(), want.Name)
		require.NoError(t, err)
		got.Job.Payload[0], got.Paused = '[', true
		list, err := store.ListSchedules(t.Context())
		require.NoError(t, err)
		list[0].Job.Payload[1], list[0].Timezone = 'x', "UTC"
		requireSchedule(t, store, want)
	})

	t.Run("ReturnsTheContextErrorWhenCanceled", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		sc := fullSchedule("canceled")
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := store.PutSchedule(ctx, sc)
		require.ErrorIs(t, err, context.Canceled)
		requireNoSchedule(t, store, sc.Name)
	})
}

// testReopenRetention checks that schedules, Job.Schedule and what
// DeleteFinished needs survive a close and an open.
func testReopenRetention(t *testing.T, open ReopenFactory) {
	store, reopen := open(t)
	ctx := t.Context()
	nightly, hourly := fullSchedule("nightly"), fullSchedule("hourly")
	hourly.Paused, hourly.Source = true, domain.SourceAPI
	mustPutSchedule(t, store, nightly, true)
	mustPutSchedule(t, store, hourly, true)
	run := domain.ScheduleRun{Slot: domain.Timestamp(at(60)), At: domain.Timestamp(at(61)), JobID: uuid.New()}
	mustRecordRun(t, store, nightly.Name, run)
	nightly.LastSlot, nightly.LastRunAt, nightly.LastJobID = run.Slot, run.At, run.JobID

	bySchedule := func(name string, created, finished int) *domain.Job {
		return NewJob(t, "report", JobCreatedAt(at(created)), JobFinished(domain.StatusCompleted, at(finished)),
			JobEdit(func(j *domain.Job) { j.Schedule = name }))
	}
	pruned := bySchedule("nightly", 0, 10)
	old := bySchedule("nightly", 1, 20)
	recent := bySchedule("hourly", 2, 500)
	running := NewJob(t, "report", JobCreatedAt(at(3)), JobStatus(domain.StatusRunning, 1),
		JobEdit(func(j *domain.Job) { j.Schedule = "hourly" }))
	mustCreate(t, store, pruned, old, recent, running)
	deleteFinished(t, store, at(1000), domain.StatusCompleted, at(15), 10, 1)

	store = reopen(t)
	list, err := store.ListSchedules(ctx)
	require.NoError(t, err)
	require.Equal(t, []*domain.Schedule{hourly, nightly}, list, "schedules survive, with their runs")
	requireMissing(t, store, pruned.ID)
	requirePage(t, store, domain.Filter{Schedule: "nightly"}, []*domain.Job{old}, 1)
	requirePage(t, store, domain.Filter{Schedule: "hourly"}, []*domain.Job{recent, running}, 2)

	// What DeleteFinished reads survived too.
	deleteFinished(t, store, at(1000), domain.StatusCompleted, at(1000), 10, 2)
	requireStored(t, store, running)
	require.NoError(t, store.DeleteSchedule(ctx, nightly.Name))

	store = reopen(t)
	requireTotal(t, store, domain.Filter{}, 1)
	requireNoSchedule(t, store, nightly.Name)
	requireSchedule(t, store, hourly)
	running.Status, running.FinishedAt = domain.StatusCompleted, domain.Timestamp(at(2000))
	require.NoError(t, store.Update(ctx, running))
	deleteFinished(t, store, at(3000), domain.StatusCompleted, at(3000), 10, 1)
	requireTotal(t, store, domain.Filter{}, 0)
}
