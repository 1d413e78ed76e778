package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
)

// terminal lists the statuses DeleteFinished accepts.
func terminal() []domain.Status {
	return []domain.Status{domain.StatusCompleted, domain.StatusFailed, domain.StatusCanceled}
}

// forever is a UniqueFor that holds a key at any time a test (or a store
// with its own clock) may judge it by.
const forever = 200 * 365 * 24 * time.Hour

// deleteFinished calls DeleteFinished and requires it to delete want jobs.
func deleteFinished(t *testing.T, store domain.Store, now time.Time, status domain.Status, before time.Time, limit, want int) {
	t.Helper()
	n, err := store.DeleteFinished(t.Context(), now, status, before, limit)
	require.NoError(t, err, "delete %s before %s", status, before)
	require.Equal(t, want, n, "delete %s before %s, limit %d: jobs deleted", status, before, limit)
}

// requireTotal fails unless f matches total jobs, listed and scanned.
func requireTotal(t *testing.T, store domain.Store, f domain.Filter, total int) {
	t.Helper()
	page, err := store.List(t.Context(), f)
	require.NoError(t, err)
	require.Equal(t, total, page.Total, "list %+v: total", f)
	n := 0
	require.NoError(t, store.Scan(t.Context(), f, func(*domain.Job) error { n++; return nil }))
	require.Equal(t, total, n, "scan %+v: jobs", f)
}

func testRetention(t *testing.T, newStore factory, cfg config) {
	t.Run("DeletesOnlyTheStatusFinishedBeforeTheCutoff", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		byStatus := map[domain.Status][]*domain.Job{}
		n := 0
		for _, s := range terminal() {
			// Finished at 100, 199, 200 and 300; the cutoff is 200.
			for _, fin := range []int{300, 100, 200, 199} {
				j := NewJob(t, "a", JobCreatedAt(at(50-n)), JobFinished(s, at(fin)))
				byStatus[s] = append(byStatus[s], j)
				n++
			}
			mustCreate(t, store, byStatus[s]...)
		}
		for i, s := range terminal() {
			deleteFinished(t, store, at(10_000), s, at(200), 100, 2)
			jobs := byStatus[s]
			requireStored(t, store, jobs[0])
			requireMissing(t, store, jobs[1].ID)
			requireStored(t, store, jobs[2])
			requireMissing(t, store, jobs[3].ID)
			// The statuses not yet pruned are whole.
			for _, other := range terminal()[i+1:] {
				for _, j := range byStatus[other] {
					requireStored(t, store, j)
				}
			}
			deleteFinished(t, store, at(10_000), s, at(200), 100, 0)
		}
		requireTotal(t, store, domain.Filter{}, 6)
	})

	t.Run("HonoursTheLimitOldestFinishedFirst", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		// Creation order runs against finishing order, so that a store
		// deleting oldest created first fails.
		finished := []int{500, 100, 400, 200, 300}
		var jobs []*domain.Job
		for _, fin := range finished {
			jobs = append(jobs, NewJob(t, "a", JobCreatedAt(at(1000-fin/10)), JobFinished(domain.StatusCompleted, at(fin))))
		}
		mustCreate(t, store, jobs...)
		deleteFinished(t, store, at(10_000), domain.StatusCompleted, at(1000), 2, 2)
		requireMissing(t, store, jobs[1].ID) // 100
		requireMissing(t, store, jobs[3].ID) // 200
		requireStored(t, store, jobs[4])     // 300
		deleteFinished(t, store, at(10_000), domain.StatusCompleted, at(1000), 2, 2)
		requireMissing(t, store, jobs[4].ID) // 300
		requireMissing(t, store, jobs[2].ID) // 400
		requireStored(t, store, jobs[0])     // 500
		deleteFinished(t, store, at(10_000), domain.StatusCompleted, at(1000), 2, 1)
		deleteFinished(t, store, at(10_000), domain.StatusCompleted, at(1000), 2, 0)
		requireTotal(t, store, domain.Filter{}, 0)
	})

	t.Run("RefusesAStatusThatIsNotTerminal", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		j := NewJob(t, "a", JobCreatedAt(at(0)))
		mustCreate(t, store, j)
		for _, s := range append(domain.Unfinished(), "bogus") {
			n, err := store.DeleteFinished(t.Context(), at(10_000), s, at(10_000), 100)
			require.ErrorIs(t, err, domain.ErrInvalid, "status %q", s)
			require.Zero(t, n)
		}
		requireStored(t, store, j)
	})

	t.Run("LeavesUnfinishedJobsAlone", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		var jobs []*domain.Job
		for i, s := range domain.Unfinished() {
			opts := []JobOption{JobCreatedAt(at(i)), JobStatus(s, 1)}
			if s == domain.StatusScheduled {
				opts = append(opts, JobRunAt(at(3600)))
			}
			// A FinishedAt left from an earlier life must not make an
			// unfinished job look finished.
			opts = append(opts, JobEdit(func(j *domain.Job) { j.FinishedAt = domain.Timestamp(at(1)) }))
			jobs = append(jobs, NewJob(t, "a", opts...))
		}
		mustCreate(t, store, jobs...)
		for _, s := range terminal() {
			deleteFinished(t, store, at(10_000), s, at(10_000), 100, 0)
		}
		for _, j := range jobs {
			requireStored(t, store, j)
		}
	})

	t.Run("FollowsUpdatesOfStatusAndFinishedAt", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		// Finished through updates, as the runtime finishes jobs.
		ran := NewJob(t, "a", JobCreatedAt(at(0)))
		moved := NewJob(t, "a", JobCreatedAt(at(1)), JobFinished(domain.StatusCompleted, at(100)))
		reopened := NewJob(t, "a", JobCreatedAt(at(2)), JobFinished(domain.StatusFailed, at(100)))
		mustCreate(t, store, ran, moved, reopened)
		require.NoError(t, ran.Start(at(10)))
		require.NoError(t, ran.Complete(at(20)))
		moved.FinishedAt, moved.UpdatedAt = domain.Timestamp(at(500)), domain.Timestamp(at(500))
		// A store does not judge transitions: a terminal job updated to
		// an unfinished status is unfinished.
		reopened.Status, reopened.FinishedAt = domain.StatusPending, time.Time{}
		require.NoError(t, store.Update(t.Context(), ran, moved, reopened))

		deleteFinished(t, store, at(10_000), domain.StatusFailed, at(1000), 100, 0)
		deleteFinished(t, store, at(10_000), domain.StatusCompleted, at(200), 100, 1)
		requireMissing(t, store, ran.ID)
		requireStored(t, store, moved)
		requireStored(t, store, reopened)
		deleteFinished(t, store, at(10_000), domain.StatusCompleted, at(501), 100, 1)
		requireMissing(t, store, moved.ID)
		requireStored(t, store, reopened)
	})

	t.Run("SkipsJobsHoldingTheirUniqueKey", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		held := NewJob(t, "a", JobCreatedAt(at(0)), JobUniqueKey("held", forever), JobFinished(domain.StatusCompleted, at(100)))
		free := NewJob(t, "a", JobCreatedAt(at(1)), JobUniqueKey("free", 0), JobFinished(domain.StatusCompleted, at(101)))
		expired := NewJob(t, "a", JobCreatedAt(at(2)), JobUniqueKey("expired", time.Second), JobFinished(domain.StatusCompleted, at(102)))
		plain := NewJob(t, "a", JobCreatedAt(at(3)), JobFinished(domain.StatusCompleted, at(103)))
		mustCreate(t, store, held, free, expired, plain)

		deleteFinished(t, store, at(1000), domain.StatusCompleted, at(1000), 100, 3)
		requireStored(t, store, held)
		for _, j := range []*domain.Job{free, expired, plain} {
			requireMissing(t, store, j.ID)
		}
		deleteFinished(t, store, at(1000), domain.StatusCompleted, at(1000), 100, 0)

		// A held job does not use up the limit: the batch goes past it.
		later := NewJob(t, "a", JobCreatedAt(at(4)), JobFinished(domain.StatusCompleted, at(200)))
		mustCreate(t, store, later)
		deleteFinished(t, store, at(1000), domain.StatusCompleted, at(1000), 1, 1)
		requireMissing(t, store, later.ID)

		// The deleted holders' keys are free; the held one is not.
		again := []*domain.Job{
			NewJob(t, "a", JobCreatedAt(at(10)), JobUniqueKey("free", 0)),
			NewJob(t, "a", JobCreatedAt(at(11)), JobUniqueKey("expired", 0)),
			NewJob(t, "a", JobCreatedAt(at(12)), JobUniqueKey("held", 0)),
		}
		existing, err := store.Insert(t.Context(), at(1000), again)
		require.NoError(t, err)
		require.Equal(t, []*domain.Job{nil, nil, held}, existing)
		requireStored(t, store, again[0])
		requireStored(t, store, again[1])
	})

	t.Run("DeletesAHeldJobOnceItsHoldPassed", func(t *testing.T) {
		t.Parallel()
		needsDrivenClock(t, cfg)
		store := newStore(t)
		// Finished at 100, holding its key until 160.
		j := NewJob(t, "a", JobCreatedAt(at(0)), JobUniqueKey("slot", time.Minute), JobFinished(domain.StatusCompleted, at(100)))
		// Deleted past the held job first: a store that remembers where
		// it stopped must still come back for the held one.
		after := NewJob(t, "a", JobCreatedAt(at(1)), JobFinished(domain.StatusCompleted, at(120)))
		mustCreate(t, store, j, after)
		deleteFinished(t, store, at(159), domain.StatusCompleted, at(150), 100, 1)
		requireStored(t, store, j)
		requireMissing(t, store, after.ID)
		deleteFinished(t, store, at(160), domain.StatusCompleted, at(150), 100, 1)
		requireMissing(t, store, j.ID)

		next := NewJob(t, "a", JobCreatedAt(at(1)), JobUniqueKey("slot", 0))
		existing, err := store.Insert(t.Context(), at(160), []*domain.Job{next})
		require.NoError(t, err)
		require.Equal(t, []*domain.Job{nil}, existing)
		requireStored(t, store, next)
	})

	t.Run("ADeletedJobIsGoneEverywhere", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		// Two jobs of each status and each of two types, creation times
		// out of order, the finished ones with their FinishedAt.
		var jobs []*domain.Job
		finished := 0
		for n := range 2 * 2 * len(domain.Statuses()) {
			s := domain.Statuses()[n/2%len(domain.Statuses())]
			opts := []JobOption{JobCreatedAt(at(1000 - (7*n)%97)), JobStatus(s, 0)}
			if s.IsTerminal() {
				opts = append(opts, JobFinished(s, at(2000+n)))
			}
			if s == domain.StatusCompleted {
				finished++
			}
			jobs = append(jobs, NewJob(t, domain.JobType([]string{"send_email", "process_file"}[n%2]), opts...))
		}
		mustCreate(t, store, jobs...)
		done := NewJob(t, "send_email", JobCreatedAt(at(5)), JobQueue("mail"), JobUniqueKey("once", 0),
			JobFinished(domain.StatusCompleted, at(7)))
		mustCreate(t, store, done)
		deleteFinished(t, store, at(10_000), domain.StatusCompleted, at(10_000), 100, finished+1)
		requireMissing(t, store, done.ID)
		require.ErrorIs(t, store.Delete(t.Context(), done.ID), domain.ErrNotFound)

		var kept []*domain.Job
		for _, j := range jobs {
			if j.Status != domain.StatusCompleted {
				kept = append(kept, j)
			}
		}
		for _, f := range []domain.Filter{
			{},
			{Statuses: []domain.Status{domain.StatusCompleted}},
			{Type: "send_email"},
			{Queue: "mail"},
		} {
			want := matching(kept, f)
			requirePage(t, store, f, want, len(want))
			requireTotal(t, store, f, len(want))
		}

		again := NewJob(t, "send_email", JobCreatedAt(at(8)), JobUniqueKey("once", 0))
		existing, err := store.Insert(t.Context(), at(10_000), []*domain.Job{again})
		require.NoError(t, err)
		require.Equal(t, []*domain.Job{nil}, existing, "the deleted job's key is free")
		requireStored(t, store, again)
	})

	t.Run("ReturnsTheContextErrorWhenCanceled", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		j := NewJob(t, "a", JobCreatedAt(at(0)), JobFinished(domain.StatusCompleted, at(1)))
		mustCreate(t, store, j)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := store.DeleteFinished(ctx, at(10_000), domain.StatusCompleted, at(10_000), 100)
		require.ErrorIs(t, err, context.Canceled)
		requireStored(t, store, j)
	})
}

// testScheduleField covers Job.Schedule and Filter.Schedule.
func testScheduleField(t *testing.T, newStore factory) {
	t.Run("ListAndScanFilterBySchedule", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		var jobs []*domain.Job
		for i := range 9 {
			name := []string{"nightly", "hourly", ""}[i%3]
			s := domain.Statuses()[i%len(domain.Statuses())]
			jobs = append(jobs, NewJob(t, domain.JobType([]string{"a", "b"}[i%2]), JobCreatedAt(at(100-i)), JobStatus(s, 0),
				JobEdit(func(j *domain.Job) { j.Schedule = name })))
		}
		mustCreate(t, store, jobs...)
		for _, f := range []domain.Filter{
			{Schedule: "nightly"},
			{Schedule: "hourly"},
			{Schedule: "never"},
			{Schedule: "nightly", Type: "a"},
			{Schedule: "hourly", Statuses: []domain.Status{jobs[1].Status, jobs[4].Status}},
			{Schedule: "nightly", Limit: 2, Offset: 1},
		} {
			want := matching(jobs, f)
			total := len(want)
			want = window(want, f)
			requirePage(t, store, f, want, total)
			var scanned []*domain.Job
			require.NoError(t, store.Scan(t.Context(), f, func(j *domain.Job) error {
				scanned = append(scanned, j)
				return nil
			}))
			require.Equal(t, ids(want), ids(scanned), "scan %+v", f)
		}
	})

	t.Run("JobScheduleRoundTrips", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		j := NewJob(t, "a", JobCreatedAt(at(0)), JobEdit(func(j *domain.Job) { j.Schedule = "nightly-report.v2" }))
		mustCreate(t, store, j)
		requireStored(t, store, j)
		require.NoError(t, j.Start(at(1)))
		require.NoError(t, store.Update(t.Context(), j))
		requireStored(t, store, j)
	})
}

// window applies f's offset and limit to jobs already filtered.
func window(jobs []*domain.Job, f domain.Filter) []*domain.Job {
	if f.Offset >= len(jobs) {
		return nil
	}
	jobs = jobs[f.Offset:]
	if f.Limit > 0 && f.Limit < len(jobs) {
		jobs = jobs[:f.Limit]
	}
	return jobs
}
