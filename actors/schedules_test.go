package actors

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/persistence/memstore"
)

// scheduleClock is a manual clock starting at t0.
func scheduleClock(t0 time.Time) *manualClock { return &manualClock{now: t0} }

// startScheduling starts a System on store with a "report" handler that
// does nothing; it is stopped at the end of the test unless stopped before.
func startScheduling(t *testing.T, store domain.Store, clock *manualClock, opts ...Option) *System {
	t.Helper()
	opts = append([]Option{WithLogger(testLogger(t)), WithClock(clock), WithWorkers(2)}, opts...)
	sys, err := New(store, opts...)
	require.NoError(t, err)
	require.NoError(t, sys.Register("report", domain.HandlerFunc(noop)))
	require.NoError(t, sys.Start(context.Background()))
	t.Cleanup(func() { require.NoError(t, sys.Stop(context.Background())) })
	return sys
}

func reportEvery(name, cron string) ScheduleParams {
	return ScheduleParams{Name: name, Cron: cron, Job: domain.ScheduledJob{Type: "report", Payload: []byte(`{"day":"yesterday"}`)}}
}

// slotKeys returns the unique keys of the jobs a schedule submitted, sorted.
func slotKeys(t *testing.T, store domain.Store, name string) []string {
	t.Helper()
	page, err := store.List(context.Background(), domain.Filter{Schedule: name})
	require.NoError(t, err)
	keys := make([]string, 0, len(page.Jobs))
	for _, j := range page.Jobs {
		require.Equal(t, name, j.Schedule)
		keys = append(keys, j.UniqueKey)
	}
	slices.Sort(keys)
	return keys
}

func keysOf(name string, slots ...time.Time) []string {
	keys := make([]string, len(slots))
	for i, s := range slots {
		keys[i] = domain.ScheduleSlotKey(name, s)
	}
	slices.Sort(keys)
	return keys
}

// timersAt counts the timers set to fire at at.
func timersAt(c *manualClock, at time.Time) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, tm := range c.timers {
		if tm.at.Equal(at) {
			n++
		}
	}
	return n
}

// reachSlot waits for the schedule services' timers (n of them) for slot,
// then moves the clock there.
func reachSlot(t *testing.T, clock *manualClock, slot time.Time, n int) {
	t.Helper()
	waitFor(t, func() bool { return timersAt(clock, slot) >= n })
	clock.advance(slot.Sub(clock.Now()))
}

// waitKeys waits until the schedule's jobs are those of slots.
func waitKeys(t *testing.T, store domain.Store, name string, slots ...time.Time) {
	t.Helper()
	want := keysOf(name, slots...)
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := slotKeys(t, store, name)
		if slices.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			require.Equal(t, want, got, "jobs of schedule %s", name)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitRecorded waits until the stored schedule's LastSlot is slot.
func waitRecorded(t *testing.T, store domain.Store, name string, slot time.Time) *domain.Schedule {
	t.Helper()
	var sc *domain.Schedule
	waitFor(t, func() bool {
		var err error
		sc, err = store.GetSchedule(context.Background(), name)
		require.NoError(t, err)
		return sc.LastSlot.Equal(slot)
	})
	return sc
}

func TestSchedules_EachSlotSubmitsOneJobCarryingItsKey(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := scheduleClock(t0)
	store := memstore.New()
	sys := startScheduling(t, store, clock)

	p := reportEvery("reports", "*/5 * * * *")
	p.Job.Queue, p.Job.Priority, p.Job.MaxAttempts, p.Job.Timeout = "mail", 3, 4, time.Minute
	info, created, err := sys.Schedule(context.Background(), p)
	require.NoError(t, err)
	require.True(t, created)
	require.Equal(t, t0.Add(5*time.Minute), info.NextRunAt, "created on a slot, it starts at the next one")
	require.Equal(t, "every 5 minutes", info.Description)
	require.Equal(t, "UTC", info.Timezone)
	require.Equal(t, domain.CatchUpSkip, info.CatchUp)
	require.Equal(t, domain.SourceAPI, info.Source)
	require.Empty(t, info.LastJobStatus)

	first := t0.Add(5 * time.Minute)
	reachSlot(t, clock, first, 1)
	waitKeys(t, store, "reports", first)
	sc := waitRecorded(t, store, "reports", first)
	job, err := store.Get(context.Background(), sc.LastJobID)
	require.NoError(t, err)
	require.Equal(t, domain.ScheduleSlotKey("reports", first), job.UniqueKey)
	require.Equal(t, scheduleSlotHold, job.UniqueFor)
	require.Equal(t, "reports", job.Schedule)
	require.Equal(t, "mail", job.Queue)
	require.Equal(t, 3, job.Priority)
	require.Equal(t, 4, job.MaxAttempts)
	require.Equal(t, time.Minute, job.Timeout)
	require.JSONEq(t, `{"day":"yesterday"}`, string(job.Payload))
	require.True(t, first.Equal(sc.LastRunAt), "submitted at its slot")

	waitFor(t, func() bool {
		info, err := sys.GetSchedule(context.Background(), "reports")
		require.NoError(t, err)
		return info.LastJobStatus == domain.StatusCompleted
	})
	info, err = sys.GetSchedule(context.Background(), "reports")
	require.NoError(t, err)
	require.Equal(t, first.Add(5*time.Minute), info.NextRunAt)
	require.Equal(t, job.ID, info.LastJobID)

	second := first.Add(5 * time.Minute)
	reachSlot(t, clock, second, 1)
	waitKeys(t, store, "reports", first, second)
	waitRecorded(t, store, "reports", second)

	// Replacing keeps the run fields and the creation time; the jobs stay
	// after a delete.
	p.Cron = "0 * * * *"
	info, created, err = sys.Schedule(context.Background(), p)
	require.NoError(t, err)
	require.False(t, created)
	require.True(t, t0.Equal(info.CreatedAt))
	require.True(t, second.Equal(info.LastSlot))
	require.Equal(t, t0.Add(time.Hour), info.NextRunAt)
	require.NoError(t, sys.DeleteSchedule(context.Background(), "reports"))
	_, err = sys.GetSchedule(context.Background(), "reports")
	require.ErrorIs(t, err, domain.ErrNotFound)
	require.ErrorIs(t, sys.DeleteSchedule(context.Background(), "reports"), domain.ErrNotFound)
	require.Len(t, slotKeys(t, store, "reports"), 2)
}

// The System fires a New York schedule at the slots the cron library
// gives across both DST changes: the daily 02:30 that does not exist on
// the spring-forward day is skipped, and an hourly schedule fires every
// absolute hour through the repeated one.
func TestSchedules_SlotsAcrossDSTInNewYork(t *testing.T) {
	t.Parallel()
	ny := mustZone(t, "America/New_York")
	t.Run("spring forward", func(t *testing.T) {
		t.Parallel()
		clock := scheduleClock(time.Date(2026, 3, 7, 12, 0, 0, 0, ny))
		store := memstore.New()
		sys := startScheduling(t, store, clock)
		p := reportEvery("nightly", "30 2 * * *")
		p.Timezone = "America/New_York"
		info, _, err := sys.Schedule(context.Background(), p)
		require.NoError(t, err)
		want := time.Date(2026, 3, 9, 6, 30, 0, 0, time.UTC) // 02:30 EDT
		require.True(t, want.Equal(info.NextRunAt), "next run %s", info.NextRunAt)
		reachSlot(t, clock, want, 1)
		waitKeys(t, store, "nightly", want)
		require.Equal(t, []string{"schedule:nightly:2026-03-09T06:30:00Z"}, slotKeys(t, store, "nightly"))
	})
	t.Run("fall back", func(t *testing.T) {
		t.Parallel()
		clock := scheduleClock(time.Date(2026, 11, 1, 0, 30, 0, 0, ny))
		store := memstore.New()
		sys := startScheduling(t, store, clock)
		p := reportEvery("hourly", "0 * * * *")
		p.Timezone = "America/New_York"
		_, _, err := sys.Schedule(context.Background(), p)
		require.NoError(t, err)
		// 01:00 EDT, 01:00 EST, 02:00 EST, 03:00 EST.
		var fired []time.Time
		for h := 5; h <= 8; h++ {
			slot := time.Date(2026, 11, 1, h, 0, 0, 0, time.UTC)
			reachSlot(t, clock, slot, 1)
			fired = append(fired, slot)
			waitKeys(t, store, "hourly", fired...)
		}
	})
}

func TestSchedules_EveryAndSecondsField(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2030, 1, 1, 0, 0, 7, 0, time.UTC)
	clock := scheduleClock(t0)
	store := memstore.New()
	sys := startScheduling(t, store, clock)
	_, _, err := sys.Schedule(context.Background(), reportEvery("often", "@every 30s"))
	require.NoError(t, err)
	_, _, err = sys.Schedule(context.Background(), reportEvery("quarter", "15 * * * * *"))
	require.NoError(t, err)

	base := t0.Truncate(time.Minute)
	at := func(d time.Duration) time.Time { return base.Add(d) }
	reachSlot(t, clock, at(15*time.Second), 1)
	waitKeys(t, store, "quarter", at(15*time.Second))
	reachSlot(t, clock, at(30*time.Second), 1)
	waitKeys(t, store, "often", at(30*time.Second))
	reachSlot(t, clock, at(60*time.Second), 1)
	waitKeys(t, store, "often", at(30*time.Second), at(60*time.Second))
	reachSlot(t, clock, at(75*time.Second), 1)
	waitKeys(t, store, "quarter", at(15*time.Second), at(75*time.Second))
	reachSlot(t, clock, at(90*time.Second), 1)
	waitKeys(t, store, "often", at(30*time.Second), at(60*time.Second), at(90*time.Second))
	waitKeys(t, store, "quarter", at(15*time.Second), at(75*time.Second))
}

// After a downtime, a "skip" schedule resumes at its next slot and a "one"
// schedule first submits one job for all the slots it missed.
func TestSchedules_CatchUpAfterDowntime(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	clock := scheduleClock(t0)
	store := memstore.New()
	sys := startScheduling(t, store, clock)
	_, _, err := sys.Schedule(context.Background(), reportEvery("skipper", "*/5 * * * *"))
	require.NoError(t, err)
	one := reportEvery("oner", "*/5 * * * *")
	one.CatchUp = domain.CatchUpOne
	_, _, err = sys.Schedule(context.Background(), one)
	require.NoError(t, err)

	reachSlot(t, clock, at(5*time.Minute), 1)
	waitKeys(t, store, "skipper", at(5*time.Minute))
	waitKeys(t, store, "oner", at(5*time.Minute))
	waitRecorded(t, store, "skipper", at(5*time.Minute))
	waitRecorded(t, store, "oner", at(5*time.Minute))
	require.NoError(t, sys.Stop(context.Background()))

	// Down for an hour and two minutes: eleven slots missed, the last two
	// minutes ago.
	clock.advance(62 * time.Minute)
	sys2 := startScheduling(t, store, clock)
	waitFor(t, func() bool { return timersAt(clock, at(70*time.Minute)) == 1 }) // the first round is over
	waitKeys(t, store, "oner", at(5*time.Minute), at(65*time.Minute))
	require.Equal(t, keysOf("skipper", at(5*time.Minute)), slotKeys(t, store, "skipper"), "skip submits nothing for missed slots")
	for _, name := range []string{"skipper", "oner"} {
		info, err := sys2.GetSchedule(context.Background(), name)
		require.NoError(t, err)
		require.Equal(t, at(70*time.Minute), info.NextRunAt, name)
	}

	reachSlot(t, clock, at(70*time.Minute), 1)
	waitKeys(t, store, "skipper", at(5*time.Minute), at(70*time.Minute))
	waitKeys(t, store, "oner", at(5*time.Minute), at(65*time.Minute), at(70*time.Minute))
}

// A restart less than a minute after a slot still submits that slot's job.
func TestSchedules_ARestartJustAfterASlotStillRunsIt(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := scheduleClock(t0)
	store := memstore.New()
	sys := startScheduling(t, store, clock)
	_, _, err := sys.Schedule(context.Background(), reportEvery("reports", "*/5 * * * *"))
	require.NoError(t, err)
	waitFor(t, func() bool { return timersAt(clock, t0.Add(5*time.Minute)) == 1 })
	require.NoError(t, sys.Stop(context.Background()))
	clock.advance(5*time.Minute + 40*time.Second)
	startScheduling(t, store, clock)
	waitKeys(t, store, "reports", t0.Add(5*time.Minute))
}

func TestSchedules_PauseAndResume(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	clock := scheduleClock(t0)
	store := memstore.New()
	sys := startScheduling(t, store, clock)
	_, _, err := sys.Schedule(context.Background(), reportEvery("reports", "*/5 * * * *"))
	require.NoError(t, err)
	waitFor(t, func() bool { return timersAt(clock, at(5*time.Minute)) == 1 })

	info, err := sys.PauseSchedule(context.Background(), "reports")
	require.NoError(t, err)
	require.True(t, info.Paused)
	require.True(t, info.NextRunAt.IsZero(), "no next run while paused")
	waitFor(t, func() bool { return timersAt(clock, at(5*time.Minute)) == 0 })
	again, err := sys.PauseSchedule(context.Background(), "reports")
	require.NoError(t, err, "pausing a paused schedule changes nothing")
	require.True(t, again.UpdatedAt.Equal(info.UpdatedAt))

	clock.advance(7 * time.Minute) // slot 5 passes while paused
	info, err = sys.ResumeSchedule(context.Background(), "reports")
	require.NoError(t, err)
	require.False(t, info.Paused)
	require.Equal(t, at(10*time.Minute), info.NextRunAt)
	waitFor(t, func() bool { return timersAt(clock, at(10*time.Minute)) == 1 })
	require.Empty(t, slotKeys(t, store, "reports"), "the slot passed while paused is skipped")

	reachSlot(t, clock, at(10*time.Minute), 1)
	waitKeys(t, store, "reports", at(10*time.Minute))
}

func TestSchedules_TriggerSubmitsOutsideTheSlots(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := scheduleClock(t0)
	store := memstore.New()
	sys := startScheduling(t, store, clock)
	p := reportEvery("reports", "0 3 * * *")
	p.Paused = true
	_, _, err := sys.Schedule(context.Background(), p)
	require.NoError(t, err)

	clock.advance(time.Minute)
	first, err := sys.TriggerSchedule(context.Background(), "reports")
	require.NoError(t, err, "a paused schedule may be triggered")
	require.Equal(t, "reports", first.Schedule)
	require.Empty(t, first.UniqueKey, "a trigger is not a slot")
	second, err := sys.TriggerSchedule(context.Background(), "reports")
	require.NoError(t, err)
	require.NotEqual(t, first.ID, second.ID, "each trigger submits a job")

	info, err := sys.GetSchedule(context.Background(), "reports")
	require.NoError(t, err)
	require.Equal(t, second.ID, info.LastJobID)
	require.True(t, info.LastRunAt.Equal(t0.Add(time.Minute)))
	require.True(t, info.LastSlot.IsZero(), "a trigger settles no slot")
	page, err := store.List(context.Background(), domain.Filter{Schedule: "reports"})
	require.NoError(t, err)
	require.Equal(t, 2, page.Total)

	_, err = sys.TriggerSchedule(context.Background(), "nope")
	require.ErrorIs(t, err, domain.ErrNotFound)
}

func TestSchedules_ValidationNamesTheField(t *testing.T) {
	t.Parallel()
	clock := scheduleClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	store := memstore.New()
	sys := startScheduling(t, store, clock, WithMaxPayloadBytes(16))
	for _, tc := range []struct {
		field string
		edit  func(*ScheduleParams)
		is    error
	}{
		{"name", func(p *ScheduleParams) { p.Name = "Bad Name" }, domain.ErrInvalid},
		{"name", func(p *ScheduleParams) { p.Name = "" }, domain.ErrInvalid},
		{"cron", func(p *ScheduleParams) { p.Cron = "every day" }, domain.ErrInvalid},
		{"cron", func(p *ScheduleParams) { p.Cron = "CRON_TZ=Europe/Paris 0 3 * * *" }, domain.ErrInvalid},
		{"timezone", func(p *ScheduleParams) { p.Timezone = "Europe/Atlantis" }, domain.ErrInvalid},
		{"catchUp", func(p *ScheduleParams) { p.CatchUp = "all" }, domain.ErrInvalid},
		{"job.type", func(p *ScheduleParams) { p.Job.Type = "" }, domain.ErrInvalid},
		{"job.type", func(p *ScheduleParams) { p.Job.Type = "unheard.of" }, domain.ErrUnknownJobType},
		{"job.payload", func(p *ScheduleParams) { p.Job.Payload = []byte(strings.Repeat("x", 17)) }, domain.ErrPayloadTooLarge},
		{"job.queue", func(p *ScheduleParams) { p.Job.Queue = "No Such Queue" }, domain.ErrInvalid},
		{"job.priority", func(p *ScheduleParams) { p.Job.Priority = 12 }, domain.ErrInvalid},
		{"job.maxAttempts", func(p *ScheduleParams) { p.Job.MaxAttempts = -1 }, domain.ErrInvalid},
		{"job.timeout", func(p *ScheduleParams) { p.Job.Timeout = -5 * time.Second }, domain.ErrInvalid},
	} {
		p := reportEvery("reports", "*/5 * * * *")
		p.Job.Payload = nil
		tc.edit(&p)
		_, _, err := sys.Schedule(context.Background(), p)
		require.ErrorIs(t, err, tc.is, tc.field)
		require.Contains(t, err.Error(), tc.field+": ", tc.field)
		var fe *FieldError
		require.ErrorAs(t, err, &fe, tc.field)
		require.Equal(t, tc.field, fe.Field)
	}
	list, err := sys.Schedules(context.Background())
	require.NoError(t, err)
	require.Empty(t, list, "nothing refused was stored")

	p := reportEvery("reports", "*/5 * * * *")
	p.Job.Payload, p.Job.Timeout = nil, NoTimeout
	_, created, err := sys.Schedule(context.Background(), p)
	require.NoError(t, err, "NoTimeout is a timeout Submit takes")
	require.True(t, created)
}

func TestSchedules_ConfigSchedulesAreAppliedAtStartAndRefuseTheAPI(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := scheduleClock(t0)
	store := memstore.New()
	ctx := context.Background()
	// Left by an earlier start: one schedule of the API, one of a config
	// file that no longer declares it.
	for _, sc := range []*domain.Schedule{
		{Name: "adhoc", Cron: "@daily", Timezone: "UTC", CatchUp: domain.CatchUpSkip, Source: domain.SourceAPI, Job: domain.ScheduledJob{Type: "report"}, CreatedAt: t0, UpdatedAt: t0},
		{Name: "retired", Cron: "@daily", Timezone: "UTC", CatchUp: domain.CatchUpSkip, Source: domain.SourceConfig, Job: domain.ScheduledJob{Type: "report"}, CreatedAt: t0, UpdatedAt: t0},
	} {
		_, err := store.PutSchedule(ctx, sc)
		require.NoError(t, err)
	}
	nightly := reportEvery("nightly", "0 3 * * *")
	nightly.Timezone, nightly.CatchUp = "Europe/Paris", domain.CatchUpOne
	sys := startScheduling(t, store, clock, WithConfigSchedules(nightly))

	list, err := sys.Schedules(ctx)
	require.NoError(t, err)
	var names []string
	for _, info := range list {
		names = append(names, info.Name)
	}
	require.Equal(t, []string{"adhoc", "nightly"}, names, "the undeclared config schedule is gone; the API's stays")
	info, err := sys.GetSchedule(ctx, "nightly")
	require.NoError(t, err)
	require.Equal(t, domain.SourceConfig, info.Source)
	require.Equal(t, "every day at 03:00", info.Description)
	require.Equal(t, time.Date(2030, 1, 1, 2, 0, 0, 0, time.UTC), info.NextRunAt, "03:00 in Paris")

	_, _, err = sys.Schedule(ctx, reportEvery("nightly", "0 4 * * *"))
	require.ErrorIs(t, err, domain.ErrConflict)
	require.ErrorIs(t, sys.DeleteSchedule(ctx, "nightly"), domain.ErrConflict)
	_, err = sys.PauseSchedule(ctx, "nightly")
	require.ErrorIs(t, err, domain.ErrConflict)
	_, err = sys.ResumeSchedule(ctx, "nightly")
	require.ErrorIs(t, err, domain.ErrConflict)
	job, err := sys.TriggerSchedule(ctx, "nightly")
	require.NoError(t, err, "a config schedule may be triggered")
	require.Equal(t, "nightly", job.Schedule)
	unchanged, err := sys.GetSchedule(ctx, "nightly")
	require.NoError(t, err)
	require.Equal(t, "0 3 * * *", unchanged.Cron)
	require.NoError(t, sys.Stop(ctx))

	// The same declaration again rewrites nothing; a changed one replaces
	// the stored schedule, keeping its runs.
	clock.advance(time.Hour)
	sys2 := startScheduling(t, store, clock, WithConfigSchedules(nightly))
	again, err := sys2.GetSchedule(ctx, "nightly")
	require.NoError(t, err)
	require.True(t, again.UpdatedAt.Equal(info.UpdatedAt), "an unchanged declaration is not rewritten")
	require.NoError(t, sys2.Stop(ctx))
	nightly.Cron = "0 4 * * *"
	clock.advance(time.Hour)
	sys3 := startScheduling(t, store, clock, WithConfigSchedules(nightly))
	changed, err := sys3.GetSchedule(ctx, "nightly")
	require.NoError(t, err)
	require.Equal(t, "0 4 * * *", changed.Cron)
	require.True(t, changed.UpdatedAt.Equal(t0.Add(2*time.Hour)))
	require.Equal(t, job.ID, changed.LastJobID)
	require.NoError(t, sys3.Stop(ctx))

	// A bad declaration fails Start, naming the schedule and the field.
	bad := reportEvery("broken", "0 3 * * *")
	bad.Job.Type = "unheard.of"
	s4, err := New(store, WithLogger(testLogger(t)), WithClock(clock), WithConfigSchedules(nightly, bad))
	require.NoError(t, err)
	require.NoError(t, s4.Register("report", domain.HandlerFunc(noop)))
	err = s4.Start(ctx)
	require.ErrorIs(t, err, domain.ErrUnknownJobType)
	require.Contains(t, err.Error(), `"broken"`)
	require.Contains(t, err.Error(), "job.type")
	require.NoError(t, s4.Stop(ctx))
}

// Two nodes on one store fire every slot; each slot has one job.
func TestSchedules_TwoNodesOneJobPerSlot(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := scheduleClock(t0)
	store := &countingSubmits{Store: memstore.New(), inserts: map[string]int{}}
	_, err := store.PutSchedule(context.Background(), &domain.Schedule{
		Name: "even-minutes", Cron: "*/2 * * * *", Timezone: "UTC", CatchUp: domain.CatchUpSkip, Source: domain.SourceAPI,
		Job: domain.ScheduledJob{Type: "report"}, CreatedAt: t0, UpdatedAt: t0,
	})
	require.NoError(t, err)
	startScheduling(t, store, clock)
	startScheduling(t, store, clock)

	var slots []time.Time
	for i := 1; i <= 5; i++ {
		slot := t0.Add(time.Duration(2*i) * time.Minute)
		reachSlot(t, clock, slot, 2)
		slots = append(slots, slot)
		waitRecorded(t, store, "even-minutes", slot)
		// Both nodes are done with the slot once both wait for the next
		// (their polls wait a minute, not two).
		waitFor(t, func() bool { return timersAt(clock, slot.Add(2*time.Minute)) == 2 })
		waitKeys(t, store, "even-minutes", slots...)
	}
	require.Equal(t, int64(2*len(slots)), store.slotInserts.Load(), "both nodes submitted every slot, once")
}

// countingSubmits counts the slot jobs offered to the store, and holds
// back the record of each slot's run until both nodes offered its job: the
// nodes race for every slot, instead of the second finding it recorded.
type countingSubmits struct {
	*memstore.Store
	mu          sync.Mutex
	inserts     map[string]int
	slotInserts atomic.Int64
}

func (s *countingSubmits) Insert(ctx context.Context, now time.Time, jobs []*domain.Job) ([]*domain.Job, error) {
	s.mu.Lock()
	for _, j := range jobs {
		if strings.HasPrefix(j.UniqueKey, "schedule:") {
			s.inserts[j.UniqueKey]++
			s.slotInserts.Add(1)
		}
	}
	s.mu.Unlock()
	return s.Store.Insert(ctx, now, jobs)
}

func (s *countingSubmits) RecordScheduleRun(ctx context.Context, name string, run domain.ScheduleRun) error {
	key := domain.ScheduleSlotKey(name, run.Slot)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		s.mu.Lock()
		n := s.inserts[key]
		s.mu.Unlock()
		if n >= 2 {
			break
		}
	}
	return s.Store.RecordScheduleRun(ctx, name, run)
}

// refusingRuns is a store that refuses to record schedule runs while
// refusing is set: a node that crashes between submitting a slot's job
// and recording it.
type refusingRuns struct {
	*memstore.Store
	refusing atomic.Bool
	refused  atomic.Int64
}

func (s *refusingRuns) RecordScheduleRun(ctx context.Context, name string, run domain.ScheduleRun) error {
	if s.refusing.Load() {
		s.refused.Add(1)
		return domain.ErrUnavailable
	}
	return s.Store.RecordScheduleRun(ctx, name, run)
}

// A node that submitted a slot's job but never recorded it, restarted,
// finds the job under the slot's key and records it: no second job, even
// when the restart comes after the slot counts as missed.
func TestSchedules_CrashBetweenSubmitAndRecordSubmitsNoSecondJob(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		catchUp domain.CatchUp
		down    time.Duration
	}{
		{"restart within the minute", domain.CatchUpSkip, 30 * time.Second},
		{"restart later, catch up one", domain.CatchUpOne, 3 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
			clock := scheduleClock(t0)
			store := &refusingRuns{Store: memstore.New()}
			store.refusing.Store(true)
			sys := startScheduling(t, store, clock)
			p := reportEvery("reports", "*/5 * * * *")
			p.CatchUp = tc.catchUp
			_, _, err := sys.Schedule(context.Background(), p)
			require.NoError(t, err)
			slot := t0.Add(5 * time.Minute)
			reachSlot(t, clock, slot, 1)
			waitKeys(t, store, "reports", slot)
			waitFor(t, func() bool { return store.refused.Load() >= 1 })
			require.NoError(t, sys.Stop(context.Background()))
			sc, err := store.GetSchedule(context.Background(), "reports")
			require.NoError(t, err)
			require.True(t, sc.LastSlot.IsZero(), "the run was never recorded")

			store.refusing.Store(false)
			clock.advance(tc.down)
			startScheduling(t, store, clock)
			sc = waitRecorded(t, store, "reports", slot)
			require.Equal(t, keysOf("reports", slot), slotKeys(t, store, "reports"), "one job for the slot")
			page, err := store.List(context.Background(), domain.Filter{Schedule: "reports"})
			require.NoError(t, err)
			require.Equal(t, page.Jobs[0].ID, sc.LastJobID, "the job found under the key is recorded")
		})
	}
}

// A store refusing submissions leaves the slot due: it is submitted once
// the store accepts, within the minute.
func TestSchedules_ARefusedSubmissionIsRetried(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := scheduleClock(t0)
	store := &refusingInserts{Store: memstore.New()}
	sys := startScheduling(t, store, clock)
	_, _, err := sys.Schedule(context.Background(), reportEvery("reports", "*/5 * * * *"))
	require.NoError(t, err)
	store.refusing.Store(true)
	slot := t0.Add(5 * time.Minute)
	reachSlot(t, clock, slot, 1)
	retry := slot.Add(scheduleRetryDelay)
	waitFor(t, func() bool { return store.refused.Load() >= 1 && timersAt(clock, retry) == 1 })
	require.Empty(t, slotKeys(t, store, "reports"))
	store.refusing.Store(false)
	clock.advance(scheduleRetryDelay)
	waitKeys(t, store, "reports", slot)
	waitRecorded(t, store, "reports", slot)
}

type refusingInserts struct {
	*memstore.Store
	refusing atomic.Bool
	refused  atomic.Int64
}

func (s *refusingInserts) Insert(ctx context.Context, now time.Time, jobs []*domain.Job) ([]*domain.Job, error) {
	if s.refusing.Load() {
		s.refused.Add(1)
		return nil, domain.ErrUnavailable
	}
	return s.Store.Insert(ctx, now, jobs)
}

// A node that does not handle a schedule's job type leaves its slots to
// the nodes that do: no timer, no submission, one line in the log.
func TestSchedules_AnUnhandledTypeIsLeftToOtherNodes(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := scheduleClock(t0)
	store := memstore.New()
	_, err := store.PutSchedule(context.Background(), &domain.Schedule{
		Name: "elsewhere", Cron: "*/5 * * * *", Timezone: "UTC", CatchUp: domain.CatchUpSkip, Source: domain.SourceAPI,
		Job: domain.ScheduledJob{Type: "ghost"}, CreatedAt: t0, UpdatedAt: t0,
	})
	require.NoError(t, err)
	logs := &logLines{}
	sys := startScheduling(t, store, clock, WithLogger(slog.New(logs)))
	// Another schedule, created twice, wakes the service twice.
	for range 2 {
		_, _, err = sys.Schedule(context.Background(), reportEvery("here", "*/5 * * * *"))
		require.NoError(t, err)
	}
	reachSlot(t, clock, t0.Add(5*time.Minute), 1)
	waitKeys(t, store, "here", t0.Add(5*time.Minute))
	require.Empty(t, slotKeys(t, store, "elsewhere"))
	require.Len(t, logs.matching("INFO", "not registered on this node", "schedule=elsewhere", "type=ghost"), 1)
}

// Stop ends the schedule service and the pruner with their timers; a
// schedule changed while the System is stopped is read at the next start.
func TestSchedules_StopLeavesNoTimer(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := scheduleClock(t0)
	store := memstore.New()
	sys := startScheduling(t, store, clock)
	_, _, err := sys.Schedule(context.Background(), reportEvery("reports", "*/5 * * * *"))
	require.NoError(t, err)
	waitFor(t, func() bool {
		return timersAt(clock, t0.Add(5*time.Minute)) == 1 && clock.pendingAt(t0.Add(pruneInterval))
	})
	require.NoError(t, sys.Stop(context.Background()))
	require.Zero(t, clock.pending(), "no timer outlives Stop")

	_, err = sys.PauseSchedule(context.Background(), "reports")
	require.NoError(t, err, "schedules are data: they change while stopped")
	// A second schedule, running, due after the paused one's next slot:
	// its slot timer shows that the restarted service has made its first
	// round, and is the one timer only if the paused schedule was skipped.
	_, _, err = sys.Schedule(context.Background(), reportEvery("other", "*/20 * * * *"))
	require.NoError(t, err)
	clock.advance(10 * time.Minute)
	startScheduling(t, store, clock)
	waitFor(t, func() bool { return timersAt(clock, t0.Add(20*time.Minute)) == 1 })
	require.Empty(t, slotKeys(t, store, "reports"))
	require.Zero(t, timersAt(clock, t0.Add(15*time.Minute)), "paused: no slot timer")
}
