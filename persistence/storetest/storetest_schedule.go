package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
)

// testFields covers what scheduling and queues added to a job: the new
// fields, the scheduled status and the queue filter.
func testFields(t *testing.T, newStore factory) {
	t.Run("RoundTripsQueueAndUniqueFields", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		j := NewJob(t, "send_email", JobCreatedAt(at(0)), JobQueue("email"), JobPriority(1),
			JobUniqueKey("welcome:ada@example.com", 36*time.Hour+7*time.Microsecond), JobTimeout(90*time.Second),
			JobRunAt(at(3600)))
		require.Equal(t, domain.StatusScheduled, j.Status, "fixture")
		mustCreate(t, store, j)
		requireStored(t, store, j)

		// RunAt is kept through running.
		require.NoError(t, j.Promote(at(3600)))
		require.NoError(t, j.Start(at(3601)))
		require.NoError(t, store.Update(t.Context(), j))
		requireStored(t, store, j)
		require.Equal(t, domain.Timestamp(at(3600)), j.RunAt)

		last := NewJob(t, "noop", JobCreatedAt(at(1)), JobPriority(domain.MaxPriority), JobQueue("a"))
		mustCreate(t, store, last)
		requireStored(t, store, last)
	})

	t.Run("ListsScansAndFiltersScheduledJobs", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		var jobs []*domain.Job
		for i := range 6 {
			opts := []JobOption{JobCreatedAt(at(100 - i))}
			if i%2 == 0 {
				opts = append(opts, JobRunAt(at(1000+i)))
			}
			jobs = append(jobs, NewJob(t, "send_email", opts...))
		}
		mustCreate(t, store, jobs...)
		scheduled := domain.Filter{Statuses: []domain.Status{domain.StatusScheduled}}
		want := matching(jobs, scheduled)
		require.Len(t, want, 3, "fixture")
		requirePage(t, store, scheduled, want, 3)
		requirePage(t, store, domain.Filter{Statuses: []domain.Status{domain.StatusScheduled}, Type: "send_email"}, want, 3)
		requirePage(t, store, domain.Filter{Statuses: []domain.Status{domain.StatusScheduled}, Type: "other"}, nil, 0)
		requirePage(t, store, domain.Filter{}, oldestFirst(jobs), len(jobs))
		unfinished := domain.Filter{Statuses: domain.Unfinished()}
		requirePage(t, store, unfinished, oldestFirst(jobs), len(jobs))
		require.Equal(t, want, scanAll(t, store, scheduled))
	})

	t.Run("FiltersByQueue", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		var jobs []*domain.Job
		queues := []string{domain.DefaultQueue, "email", "emails", "reports"}
		for i := range 16 {
			opts := []JobOption{JobCreatedAt(at(50 - 3*i)), JobQueue(queues[i%len(queues)])}
			if i%3 == 0 {
				opts = append(opts, JobRunAt(at(500)))
			}
			j := NewJob(t, domain.JobType([]string{"send_email", "process_file"}[i%2]), opts...)
			jobs = append(jobs, j)
		}
		mustCreate(t, store, jobs...)
		filters := []domain.Filter{
			{Queue: "email"},
			{Queue: "emails"},
			{Queue: domain.DefaultQueue},
			{Queue: "missing"},
			{Queue: "email", Type: "send_email"},
			{Queue: "reports", Type: "process_file"},
			{Queue: "reports", Statuses: []domain.Status{domain.StatusScheduled}},
			{Queue: domain.DefaultQueue, Statuses: []domain.Status{domain.StatusPending, domain.StatusRunning}},
			{Queue: "email", Type: "send_email", Statuses: []domain.Status{domain.StatusPending}},
		}
		for _, f := range filters {
			want := matching(jobs, f)
			requirePage(t, store, f, want, len(want))
			f.Limit = 1
			if len(want) > 1 {
				requirePage(t, store, f, want[:1], len(want))
			}
			f.Limit = 0
			require.Equal(t, want, scanAll(t, store, f), "scan %+v", f)
		}
	})
}

// scanAll returns what Scan hands out for f.
func scanAll(t *testing.T, store domain.Store, f domain.Filter) []*domain.Job {
	t.Helper()
	var got []*domain.Job
	require.NoError(t, store.Scan(t.Context(), f, func(j *domain.Job) error {
		got = append(got, j)
		return nil
	}))
	return got
}

func testSchedule(t *testing.T, newStore factory, cfg config) {
	t.Run("PromotesOnlyDueJobsEarliestFirst", func(t *testing.T) {
		t.Parallel()
		needsDrivenClock(t, cfg)
		store := newStore(t)
		// RunAt order differs from creation order and from insertion order.
		late := NewJob(t, "a", JobCreatedAt(at(0)), JobRunAt(at(300)))
		early := NewJob(t, "a", JobCreatedAt(at(1)), JobRunAt(at(100)))
		middle := NewJob(t, "a", JobCreatedAt(at(2)), JobRunAt(at(200)))
		notYet := NewJob(t, "a", JobCreatedAt(at(3)), JobRunAt(at(301)))
		pending := NewJob(t, "a", JobCreatedAt(at(4)))
		mustCreate(t, store, late, notYet, pending, middle, early)

		got, err := store.PromoteDue(t.Context(), at(50), 10)
		require.NoError(t, err)
		require.Empty(t, got, "nothing is due yet")

		got, err = store.PromoteDue(t.Context(), at(300), 10)
		require.NoError(t, err)
		require.Equal(t, ids([]*domain.Job{early, middle, late}), ids(got), "due jobs, earliest RunAt first")
		for _, want := range []*domain.Job{early, middle, late} {
			require.NoError(t, want.Promote(at(300)))
		}
		require.Equal(t, []*domain.Job{early, middle, late}, got, "returned as stored")
		for _, j := range got {
			requireStored(t, store, j)
		}
		requireStored(t, store, notYet)
		requireStored(t, store, pending)

		again, err := store.PromoteDue(t.Context(), at(300), 10)
		require.NoError(t, err)
		require.Empty(t, again, "a promoted job is not promoted twice")
	})

	t.Run("PromoteHonoursTheLimit", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		var jobs []*domain.Job
		for i := range 7 {
			jobs = append(jobs, NewJob(t, "a", JobCreatedAt(at(0)), JobRunAt(at(100-i))))
		}
		mustCreate(t, store, jobs...)
		first, err := store.PromoteDue(t.Context(), at(200), 3)
		require.NoError(t, err)
		require.Equal(t, ids([]*domain.Job{jobs[6], jobs[5], jobs[4]}), ids(first))
		second, err := store.PromoteDue(t.Context(), at(200), 3)
		require.NoError(t, err)
		require.Equal(t, ids([]*domain.Job{jobs[3], jobs[2], jobs[1]}), ids(second))
		third, err := store.PromoteDue(t.Context(), at(200), 3)
		require.NoError(t, err)
		require.Equal(t, ids([]*domain.Job{jobs[0]}), ids(third))
		requirePage(t, store, domain.Filter{Statuses: []domain.Status{domain.StatusScheduled}}, nil, 0)
		page, err := store.List(t.Context(), domain.Filter{Statuses: []domain.Status{domain.StatusPending}})
		require.NoError(t, err)
		require.Equal(t, 7, page.Total)
	})

	t.Run("PromotesARetryBackoff", func(t *testing.T) {
		t.Parallel()
		needsDrivenClock(t, cfg)
		store := newStore(t)
		j := NewJob(t, "a", JobCreatedAt(at(0)))
		mustCreate(t, store, j)
		require.NoError(t, j.Start(at(1)))
		require.NoError(t, store.Update(t.Context(), j))
		require.NoError(t, j.Retry(errors.New("busy"), at(60), at(2)))
		require.NoError(t, store.Update(t.Context(), j))
		requireNextRunAt(t, store, at(60))

		got, err := store.PromoteDue(t.Context(), at(60), 10)
		require.NoError(t, err)
		require.NoError(t, j.Promote(at(60)))
		require.Equal(t, []*domain.Job{j}, got)
		requireNextRunAt(t, store, time.Time{})
	})

	t.Run("NextRunAtFollowsTheScheduledJobs", func(t *testing.T) {
		t.Parallel()
		needsDrivenClock(t, cfg)
		store := newStore(t)
		requireNextRunAt(t, store, time.Time{})
		mustCreate(t, store, NewJob(t, "a", JobCreatedAt(at(0))))
		requireNextRunAt(t, store, time.Time{})

		a := NewJob(t, "a", JobCreatedAt(at(1)), JobRunAt(at(500)))
		b := NewJob(t, "a", JobCreatedAt(at(2)), JobRunAt(at(400)))
		c := NewJob(t, "a", JobCreatedAt(at(3)), JobRunAt(at(600)))
		d := NewJob(t, "a", JobCreatedAt(at(4)), JobRunAt(at(700)))
		mustCreate(t, store, a, b, c, d)
		requireNextRunAt(t, store, at(400))

		_, err := store.PromoteDue(t.Context(), at(450), 10)
		require.NoError(t, err)
		requireNextRunAt(t, store, at(500))

		require.NoError(t, a.Cancel(at(5)))
		require.NoError(t, store.Update(t.Context(), a))
		requireNextRunAt(t, store, at(600))

		require.NoError(t, store.Delete(t.Context(), c.ID))
		requireNextRunAt(t, store, at(700))

		// A job rescheduled by an update moves in the index.
		d.RunAt = domain.Timestamp(at(650))
		require.NoError(t, store.Update(t.Context(), d))
		requireNextRunAt(t, store, at(650))
		got, err := store.PromoteDue(t.Context(), at(660), 10)
		require.NoError(t, err)
		require.Equal(t, ids([]*domain.Job{d}), ids(got))
		requireNextRunAt(t, store, time.Time{})
	})
}

// requireNextRunAt fails unless the store's next RunAt is want.
func requireNextRunAt(t *testing.T, store domain.Store, want time.Time) {
	t.Helper()
	got, err := store.NextRunAt(t.Context())
	require.NoError(t, err)
	if want.IsZero() {
		require.True(t, got.IsZero(), "no job is scheduled, got %v", got)
		return
	}
	require.Equal(t, domain.Timestamp(want), got)
}
