package storetest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
)

// fullSettings returns settings with every field set, nested rates
// included, to values other than their zero and other than each other's.
func fullSettings() domain.QueueSettings {
	return domain.QueueSettings{
		Limit: 10,
		Rate:  &domain.Rate{Count: 20, Per: time.Second, Burst: 25},
		PerKey: &domain.KeyLimits{
			Limit: 1,
			Rate:  &domain.Rate{Count: 5, Per: time.Minute, Burst: 7},
		},
		Ordered: true,
		Fair:    true,
	}
}

// keyedJob returns a job of type typ created at at(n) with flow key key.
func keyedJob(t *testing.T, typ domain.JobType, n int, key string, opts ...JobOption) *domain.Job {
	t.Helper()
	opts = append([]JobOption{JobCreatedAt(at(n)), JobEdit(func(j *domain.Job) { j.Key = key })}, opts...)
	return NewJob(t, typ, opts...)
}

// queueSettings returns the settings Queues lists for name, and whether
// it lists the queue.
func queueSettings(t *testing.T, store domain.Store, name string) (domain.QueueSettings, bool) {
	t.Helper()
	queues, err := store.Queues(t.Context())
	require.NoError(t, err)
	for _, q := range queues {
		if q.Name == name {
			return q.Settings, true
		}
	}
	return domain.QueueSettings{}, false
}

func testFlow(t *testing.T, newStore factory, cfg config) {
	t.Run("SettingsRoundTrip", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		ctx := t.Context()
		mustCreate(t, store, NewJob(t, "a", JobQueue("api")))
		settings := map[string]domain.QueueSettings{
			"api":       fullSettings(),
			"limit":     {Limit: domain.MaxFlowCount},
			"rate":      {Rate: &domain.Rate{Count: 1, Per: domain.MaxRatePer}},
			"fast-rate": {Rate: &domain.Rate{Count: domain.MaxFlowCount, Per: domain.MinRatePer, Burst: domain.MaxFlowCount}},
			"key-limit": {PerKey: &domain.KeyLimits{Limit: 3}},
			"key-rate":  {PerKey: &domain.KeyLimits{Rate: &domain.Rate{Count: 2, Per: 1500 * time.Millisecond}}},
			"fair":      {Fair: true},
			"ordered":   {PerKey: &domain.KeyLimits{Limit: 1}, Ordered: true},
		}
		for name, s := range settings {
			require.NoError(t, store.SetQueueSettings(ctx, name, s), name)
		}
		requireQueues(t, store, []domain.QueueInfo{
			{Name: "api", Settings: fullSettings(), Pending: 1},
			{Name: "fair", Settings: settings["fair"]},
			{Name: "fast-rate", Settings: settings["fast-rate"]},
			{Name: "key-limit", Settings: settings["key-limit"]},
			{Name: "key-rate", Settings: settings["key-rate"]},
			{Name: "limit", Settings: settings["limit"]},
			{Name: "ordered", Settings: settings["ordered"]},
			{Name: "rate", Settings: settings["rate"]},
		})
		got, _ := queueSettings(t, store, "key-limit")
		require.Nil(t, got.Rate, "no queue rate stays none")
		require.NotNil(t, got.PerKey)
		require.Nil(t, got.PerKey.Rate, "no key rate stays none")
		got, _ = queueSettings(t, store, "rate")
		require.Nil(t, got.PerKey, "no per-key limits stay none")
	})

	t.Run("SettingsAreCopies", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		ctx := t.Context()
		given := fullSettings()
		require.NoError(t, store.SetQueueSettings(ctx, "api", given))
		// The caller's settings stay its own after the call...
		given.Limit, given.Rate.Count, given.PerKey.Limit, given.PerKey.Rate.Per = 99, 99, 99, time.Hour
		got, ok := queueSettings(t, store, "api")
		require.True(t, ok)
		require.Equal(t, fullSettings(), got)
		// ...and so are the settings it reads.
		got.Rate.Count, got.Rate.Burst, got.PerKey.Limit, got.PerKey.Rate.Count = 98, 98, 98, 98
		got, _ = queueSettings(t, store, "api")
		require.Equal(t, fullSettings(), got)
	})

	t.Run("ReplacesEverySetting", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		ctx := t.Context()
		require.NoError(t, store.SetQueueSettings(ctx, "api", fullSettings()))
		only := domain.QueueSettings{Rate: &domain.Rate{Count: 3, Per: time.Hour}}
		require.NoError(t, store.SetQueueSettings(ctx, "api", only))
		requireQueues(t, store, []domain.QueueInfo{{Name: "api", Settings: only}})
	})

	t.Run("ZeroSettingsClearThem", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		ctx := t.Context()
		mustCreate(t, store, NewJob(t, "a", JobQueue("busy")))
		require.NoError(t, store.SetQueueSettings(ctx, "idle", fullSettings()))
		require.NoError(t, store.SetQueueSettings(ctx, "busy", fullSettings()))
		require.NoError(t, store.SetQueueSettings(ctx, "idle", domain.QueueSettings{}))
		require.NoError(t, store.SetQueueSettings(ctx, "busy", domain.QueueSettings{}))
		require.NoError(t, store.SetQueueSettings(ctx, "never-set", domain.QueueSettings{}), "clearing nothing is harmless")
		requireQueues(t, store, []domain.QueueInfo{{Name: "busy", Pending: 1}})
	})

	t.Run("PauseAndSettingsAreIndependent", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		ctx := t.Context()
		require.NoError(t, store.SetQueueSettings(ctx, "api", fullSettings()))
		require.NoError(t, store.SetQueuePaused(ctx, "api", true))
		requireQueues(t, store, []domain.QueueInfo{{Name: "api", Paused: true, Settings: fullSettings()}})
		require.NoError(t, store.SetQueuePaused(ctx, "api", false))
		requireQueues(t, store, []domain.QueueInfo{{Name: "api", Settings: fullSettings()}})

		require.NoError(t, store.SetQueuePaused(ctx, "api", true))
		require.NoError(t, store.SetQueueSettings(ctx, "api", domain.QueueSettings{}))
		requireQueues(t, store, []domain.QueueInfo{{Name: "api", Paused: true}})
		limit := domain.QueueSettings{Limit: 2}
		require.NoError(t, store.SetQueueSettings(ctx, "api", limit))
		requireQueues(t, store, []domain.QueueInfo{{Name: "api", Paused: true, Settings: limit}})
		require.NoError(t, store.SetQueuePaused(ctx, "api", false))
		require.NoError(t, store.SetQueueSettings(ctx, "api", domain.QueueSettings{}))
		requireQueues(t, store, []domain.QueueInfo{})
	})

	t.Run("RefusesABadQueueName", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		for _, name := range []string{"", "Email", "-email", "e mail", strings.Repeat("q", 65)} {
			err := store.SetQueueSettings(t.Context(), name, domain.QueueSettings{Limit: 1})
			require.ErrorIs(t, err, domain.ErrInvalid, "queue %q", name)
			err = store.SetQueueSettings(t.Context(), name, domain.QueueSettings{})
			require.ErrorIs(t, err, domain.ErrInvalid, "queue %q, clearing", name)
		}
		requireQueues(t, store, []domain.QueueInfo{})
	})

	t.Run("KeyRoundTripsThroughEveryMethod", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		ctx := t.Context()
		full := fullJob(t)
		full.Key = "tenant:«ü»:" + strings.Repeat("k", 200)
		longest := keyedJob(t, "a", 1, strings.Repeat("x", domain.MaxKeyLength))
		plain := NewJob(t, "a", JobCreatedAt(at(2)))
		scheduled := keyedJob(t, "a", 3, "tenant-s", JobRunAt(at(50)))
		mustCreate(t, store, full, longest, plain, scheduled)
		inserted := keyedJob(t, "b", 4, "tenant-i", JobUniqueKey("inserted", 0))
		existing, err := store.Insert(ctx, at(4), []*domain.Job{inserted})
		require.NoError(t, err)
		require.Equal(t, []*domain.Job{nil}, existing)
		all := []*domain.Job{full, longest, plain, scheduled, inserted}
		for _, j := range all {
			requireStored(t, store, j)
		}
		require.Empty(t, mustGet(t, store, plain).Key, "no key stays none")

		// The holder of a unique key comes back with its key.
		dup := keyedJob(t, "b", 5, "tenant-other", JobUniqueKey("inserted", 0))
		existing, err = store.Insert(ctx, at(5), []*domain.Job{dup})
		require.NoError(t, err)
		require.Equal(t, []*domain.Job{inserted}, existing)

		// Updates carry the key, and may change it.
		require.NoError(t, inserted.Start(at(6)))
		require.NoError(t, store.Update(ctx, inserted))
		requireStored(t, store, inserted)
		longest.Key = "moved"
		plain.Key = "added"
		require.NoError(t, store.Update(ctx, longest, plain))
		requireStored(t, store, longest)
		requireStored(t, store, plain)
		full.Key = ""
		require.NoError(t, store.Update(ctx, full))
		requireStored(t, store, full)

		// Promotion keeps it.
		promoted, err := store.PromoteDue(ctx, at(50), 10)
		require.NoError(t, err)
		require.Len(t, promoted, 1)
		require.NoError(t, scheduled.Promote(at(50)))
		if cfg.ownClock {
			// The store's clock set UpdatedAt.
			scheduled.UpdatedAt = promoted[0].UpdatedAt
		}
		require.Equal(t, scheduled, promoted[0])
		requireStored(t, store, scheduled)

		requirePage(t, store, domain.Filter{}, oldestFirst(all), len(all))
		var scanned []*domain.Job
		require.NoError(t, store.Scan(ctx, domain.Filter{}, func(j *domain.Job) error {
			scanned = append(scanned, j)
			return nil
		}))
		require.Equal(t, oldestFirst(all), scanned)
	})

	t.Run("ListAndScanByKey", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		jobs := keyedMix(t, store)
		pendingOrRunning := []domain.Status{domain.StatusPending, domain.StatusRunning}
		var filters []domain.Filter
		for _, f := range []domain.Filter{
			{Key: "a"},
			{Key: "b"},
			{Key: "c"},
			{Key: "nobody"},
			{Key: "a", Statuses: []domain.Status{domain.StatusPending}},
			{Key: "a", Statuses: []domain.Status{domain.StatusCompleted, domain.StatusScheduled}},
			{Key: "a", Queue: "q1"},
			{Key: "b", Queue: "q1", Statuses: pendingOrRunning},
			{Key: "a", Queue: domain.DefaultQueue, Statuses: pendingOrRunning},
			{Key: "a", Type: "t1"},
			{Key: "b", Type: "t2", Statuses: pendingOrRunning},
			{Key: "a", Type: "t1", Queue: "q1", Statuses: pendingOrRunning},
			{Key: "a", Schedule: "nightly"},
			{Key: "b", Schedule: "nightly", Queue: "q1"},
			{Queue: "q1", Statuses: pendingOrRunning},
		} {
			// Every filter whole, then by pages: a full page counts the
			// rest of the matches another way.
			filters = append(filters, f)
			for _, w := range [][2]int{{1, 0}, {2, 1}, {3, 2}, {0, 4}} {
				paged := f
				paged.Limit, paged.Offset = w[0], w[1]
				filters = append(filters, paged)
			}
		}
		for _, f := range filters {
			want := matching(jobs, f)
			total := len(want)
			requirePage(t, store, f, window(want, f), total)
			var scanned []*domain.Job
			require.NoError(t, store.Scan(t.Context(), f, func(j *domain.Job) error {
				scanned = append(scanned, j)
				return nil
			}), "scan %+v", f)
			require.Equal(t, ids(window(want, f)), ids(scanned), "scan %+v: wrong jobs or order", f)
		}
		// The fixture covers what the filters tell apart.
		require.NotEmpty(t, matching(jobs, domain.Filter{Key: "a", Queue: "q1", Type: "t1", Statuses: pendingOrRunning}))
		require.NotEmpty(t, matching(jobs, domain.Filter{Key: "b", Schedule: "nightly", Queue: "q1"}))
	})

	t.Run("WaitingForIsNeverStored", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		ctx := t.Context()
		waiting := func(j *domain.Job, r domain.WaitReason) *domain.Job {
			j.WaitingFor = r
			return j
		}
		created := waiting(keyedJob(t, "a", 0, "k"), domain.WaitKeyLimit)
		scheduled := waiting(keyedJob(t, "a", 1, "k", JobRunAt(at(30))), domain.WaitQueueRate)
		mustCreate(t, store, created, scheduled)
		inserted := waiting(keyedJob(t, "a", 2, "k"), domain.WaitKeyOrder)
		_, err := store.Insert(ctx, at(2), []*domain.Job{inserted})
		require.NoError(t, err)
		for _, j := range []*domain.Job{created, scheduled, inserted} {
			j.WaitingFor = ""
			requireStored(t, store, j)
		}
		waiting(created, domain.WaitQueueLimit)
		require.NoError(t, store.Update(ctx, created))
		created.WaitingFor = ""
		requireStored(t, store, created)

		promoted, err := store.PromoteDue(ctx, at(30), 10)
		require.NoError(t, err)
		require.Len(t, promoted, 1)
		require.Empty(t, promoted[0].WaitingFor)
		page, err := store.List(ctx, domain.Filter{})
		require.NoError(t, err)
		require.Len(t, page.Jobs, 3)
		require.NoError(t, store.Scan(ctx, domain.Filter{}, func(j *domain.Job) error {
			page.Jobs = append(page.Jobs, j)
			return nil
		}))
		for _, j := range page.Jobs {
			require.Empty(t, j.WaitingFor, "job %s", j.ID)
		}
	})

	if cfg.reopen != nil {
		t.Run("Reopen", func(t *testing.T) {
			t.Parallel()
			store, reopen := cfg.reopen(t)
			ctx := t.Context()
			keyed := keyedJob(t, "a", 0, "tenant-1", JobQueue("api"))
			plain := NewJob(t, "a", JobCreatedAt(at(1)), JobQueue("api"))
			mustCreate(t, store, keyed, plain)
			require.NoError(t, store.SetQueueSettings(ctx, "api", fullSettings()))
			only := domain.QueueSettings{PerKey: &domain.KeyLimits{Limit: 2}}
			require.NoError(t, store.SetQueueSettings(ctx, "idle", only))
			require.NoError(t, store.SetQueuePaused(ctx, "idle", true))
			require.NoError(t, store.SetQueueSettings(ctx, "cleared", fullSettings()))
			require.NoError(t, store.SetQueueSettings(ctx, "cleared", domain.QueueSettings{}))

			store = reopen(t)
			requireStored(t, store, keyed)
			requireStored(t, store, plain)
			requireQueues(t, store, []domain.QueueInfo{
				{Name: "api", Settings: fullSettings(), Pending: 2},
				{Name: "idle", Paused: true, Settings: only},
			})
			requirePage(t, store, domain.Filter{Key: "tenant-1"}, []*domain.Job{keyed}, 1)
		})
	}
}

// keyedMix stores jobs over keys "a", "b" and none, two queues, two
// types, every status and a schedule, with creation times out of
// insertion order, and returns them.
func keyedMix(t *testing.T, store domain.Store) []*domain.Job {
	t.Helper()
	var jobs []*domain.Job
	n := 0
	for _, key := range []string{"a", "b", ""} {
		for _, queue := range []string{domain.DefaultQueue, "q1"} {
			for _, typ := range []domain.JobType{"t1", "t2"} {
				for _, s := range domain.Statuses() {
					opts := []JobOption{JobQueue(queue)}
					switch s {
					case domain.StatusScheduled:
						opts = append(opts, JobRunAt(at(100_000)))
					case domain.StatusCompleted, domain.StatusFailed, domain.StatusCanceled:
						opts = append(opts, JobFinished(s, at(5000)))
					default:
						opts = append(opts, JobStatus(s, 1))
					}
					if n%3 == 0 {
						opts = append(opts, JobEdit(func(j *domain.Job) { j.Schedule = "nightly" }))
					}
					j := keyedJob(t, typ, 1000-(7*n)%211, key, opts...)
					j.Payload = fmt.Appendf(nil, `{"n":%d}`, n)
					jobs = append(jobs, j)
					n++
				}
			}
		}
	}
	mustCreate(t, store, jobs...)
	return jobs
}
