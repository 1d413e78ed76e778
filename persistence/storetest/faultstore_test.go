package storetest_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/persistence/memstore"
	"github.com/troupe-go/troupe/persistence/storetest"
)

func TestFaultStore_PassesEverythingThroughUntilAFaultIsInjected(t *testing.T) {
	t.Parallel()
	s := storetest.NewFaultStore(memstore.New())
	j := storetest.NewJob(t, "noop")
	require.NoError(t, s.Create(t.Context(), j))
	require.NoError(t, j.Start(time.Now()))
	require.NoError(t, s.Update(t.Context(), j))
	got, err := s.Get(t.Context(), j.ID)
	require.NoError(t, err)
	require.Equal(t, domain.StatusRunning, got.Status)
	require.NoError(t, s.Delete(t.Context(), j.ID))
	require.Zero(t, s.Refused(storetest.OpWrites))
}

func TestFaultStore_FailNextRefusesThatManyWritesOfItsOpsThenHeals(t *testing.T) {
	t.Parallel()
	s := storetest.NewFaultStore(memstore.New())
	j := storetest.NewJob(t, "noop")
	require.NoError(t, s.Create(t.Context(), j))

	s.FailNext(storetest.OpUpdate, 2, domain.ErrStorageFull)
	require.NoError(t, s.Create(t.Context(), storetest.NewJob(t, "noop")), "creates are not among the ops")
	started := j.Clone()
	require.NoError(t, started.Start(time.Now()))
	for range 2 {
		err := s.Update(t.Context(), started)
		require.ErrorIs(t, err, domain.ErrStorageFull)
		require.ErrorContains(t, err, j.ID.String(), "the refusal names the job")
		got, err := s.Get(t.Context(), j.ID)
		require.NoError(t, err)
		require.Equal(t, domain.StatusPending, got.Status, "a refused write changes nothing")
	}
	require.NoError(t, s.Update(t.Context(), started), "healed after two refusals")
	require.Equal(t, 2, s.Refused(storetest.OpUpdate))
	require.Zero(t, s.Refused(storetest.OpCreate|storetest.OpDelete))
}

func TestFaultStore_FailEveryRefusesEachNthWrite(t *testing.T) {
	t.Parallel()
	s := storetest.NewFaultStore(memstore.New())
	s.FailEvery(storetest.OpCreate, 3, domain.ErrUnavailable)
	var refused []int
	for i := 1; i <= 7; i++ {
		if err := s.Create(t.Context(), storetest.NewJob(t, "noop")); err != nil {
			require.ErrorIs(t, err, domain.ErrUnavailable)
			refused = append(refused, i)
		}
	}
	require.Equal(t, []int{3, 6}, refused)
	page, err := s.List(t.Context(), domain.Filter{})
	require.NoError(t, err)
	require.Equal(t, 5, page.Total, "refused creates store nothing")
}

// manualClock is a clock the test moves.
type manualClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestFaultStore_FailForRefusesUntilTheDurationHasPassed(t *testing.T) {
	t.Parallel()
	s := storetest.NewFaultStore(memstore.New())
	clock := &manualClock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	s.SetClock(clock.Now)
	j := storetest.NewJob(t, "noop")
	require.NoError(t, s.Create(t.Context(), j))

	s.FailFor(storetest.OpWrites, time.Minute, domain.ErrUnavailable)
	require.ErrorIs(t, s.Delete(t.Context(), j.ID), domain.ErrUnavailable)
	clock.advance(59 * time.Second)
	require.ErrorIs(t, s.Create(t.Context(), storetest.NewJob(t, "noop")), domain.ErrUnavailable)
	clock.advance(time.Second)
	require.NoError(t, s.Delete(t.Context(), j.ID), "a minute later the writes pass")
	require.Equal(t, 2, s.Refused(storetest.OpWrites))
}

func TestFaultStore_FailRefusesUntilHealed(t *testing.T) {
	t.Parallel()
	s := storetest.NewFaultStore(memstore.New())
	s.Fail(storetest.OpCreate|storetest.OpDelete, nil)
	for range 5 {
		require.ErrorIs(t, s.Create(t.Context(), storetest.NewJob(t, "noop")), domain.ErrUnavailable, "nil error means unavailable")
	}
	s.Heal()
	require.NoError(t, s.Create(t.Context(), storetest.NewJob(t, "noop")))
	require.Equal(t, 5, s.Refused(storetest.OpCreate))
}

func TestFaultStore_MatchRestrictsTheFaultToTheJobsItAccepts(t *testing.T) {
	t.Parallel()
	s := storetest.NewFaultStore(memstore.New())
	j := storetest.NewJob(t, "noop")
	require.NoError(t, s.Create(t.Context(), j))
	s.Inject(storetest.Fault{
		Ops:   storetest.OpUpdate,
		Match: func(j *domain.Job) bool { return j.Status.IsTerminal() },
		Times: 1,
	})
	now := time.Now()
	require.NoError(t, j.Start(now))
	require.NoError(t, s.Update(t.Context(), j), "the start is not terminal")
	done := j.Clone()
	require.NoError(t, done.Complete(now))
	require.ErrorIs(t, s.Update(t.Context(), done), domain.ErrUnavailable)
	require.NoError(t, s.Update(t.Context(), done))
	require.Equal(t, 1, s.Refused(storetest.OpUpdate))
}

// ownedQueue is a shared store whose only queue method is UpdateOwned.
type ownedQueue struct {
	*memstore.Store
	domain.SharedQueue
	owned int
}

func (q *ownedQueue) UpdateOwned(ctx context.Context, _ string, job *domain.Job) error {
	q.owned++
	return q.Update(ctx, job)
}

func TestSharedFaultStore_RefusesUpdateOwnedAsAnUpdate(t *testing.T) {
	t.Parallel()
	inner := &ownedQueue{Store: memstore.New()}
	s := storetest.NewSharedFaultStore(inner)
	j := storetest.NewJob(t, "noop")
	require.NoError(t, s.Create(t.Context(), j))
	s.FailNext(storetest.OpUpdate, 1, domain.ErrUnavailable)
	require.ErrorIs(t, s.UpdateOwned(t.Context(), "node-a", j), domain.ErrUnavailable)
	require.Zero(t, inner.owned, "a refused write does not reach the store")
	require.NoError(t, s.UpdateOwned(t.Context(), "node-a", j))
	require.Equal(t, 1, inner.owned)
}

func TestFaultStore_InsertAndTheSchedulingWritesAreRefusedToo(t *testing.T) {
	t.Parallel()
	s := storetest.NewFaultStore(memstore.New())
	s.Fail(storetest.OpCreate, domain.ErrStorageFull)
	_, err := s.Insert(t.Context(), time.Now(), []*domain.Job{storetest.NewJob(t, "noop")})
	require.ErrorIs(t, err, domain.ErrStorageFull)
	page, err := s.List(t.Context(), domain.Filter{})
	require.NoError(t, err)
	require.Zero(t, page.Total, "a refused insert stores nothing")

	s.Fail(storetest.OpUpdate, domain.ErrUnavailable)
	_, err = s.PromoteDue(t.Context(), time.Now(), 10)
	require.ErrorIs(t, err, domain.ErrUnavailable)
	require.ErrorIs(t, s.SetQueuePaused(t.Context(), "mail", true), domain.ErrUnavailable)
	require.Equal(t, 1, s.Refused(storetest.OpCreate))
	require.Equal(t, 2, s.Refused(storetest.OpUpdate))
	s.Heal()
	require.NoError(t, s.SetQueuePaused(t.Context(), "mail", true))
}

func TestFaultStore_RetentionAndScheduleWritesAreRefusedToo(t *testing.T) {
	t.Parallel()
	s := storetest.NewFaultStore(memstore.New())
	now := time.Now()
	done := storetest.NewJob(t, "noop", storetest.JobFinished(domain.StatusCompleted, now.Add(-time.Hour)))
	require.NoError(t, s.Create(t.Context(), done))
	sc := &domain.Schedule{Name: "nightly", Cron: "@daily", Job: domain.ScheduledJob{Type: "noop"}}
	_, err := s.PutSchedule(t.Context(), sc)
	require.NoError(t, err)

	s.Fail(storetest.OpDelete, domain.ErrUnavailable)
	_, err = s.DeleteFinished(t.Context(), now, domain.StatusCompleted, now, 10)
	require.ErrorIs(t, err, domain.ErrUnavailable)
	err = s.DeleteSchedule(t.Context(), "nightly")
	require.ErrorIs(t, err, domain.ErrUnavailable)
	require.ErrorContains(t, err, "nightly", "the refusal names the schedule")
	_, err = s.Get(t.Context(), done.ID)
	require.NoError(t, err, "a refused prune deletes nothing")
	_, err = s.GetSchedule(t.Context(), "nightly")
	require.NoError(t, err, "a refused delete deletes nothing")

	s.Fail(storetest.OpUpdate, domain.ErrStorageFull)
	_, err = s.PutSchedule(t.Context(), &domain.Schedule{Name: "hourly", Cron: "@hourly", Job: domain.ScheduledJob{Type: "noop"}})
	require.ErrorIs(t, err, domain.ErrStorageFull)
	err = s.RecordScheduleRun(t.Context(), "nightly", domain.ScheduleRun{At: now, JobID: done.ID})
	require.ErrorIs(t, err, domain.ErrStorageFull)
	got, err := s.GetSchedule(t.Context(), "nightly")
	require.NoError(t, err)
	require.True(t, got.LastRunAt.IsZero(), "a refused record changes nothing")
	_, err = s.GetSchedule(t.Context(), "hourly")
	require.ErrorIs(t, err, domain.ErrNotFound, "a refused put stores nothing")
	require.Equal(t, 2, s.Refused(storetest.OpDelete))
	require.Equal(t, 2, s.Refused(storetest.OpUpdate))

	s.Heal()
	n, err := s.DeleteFinished(t.Context(), now, domain.StatusCompleted, now, 10)
	require.NoError(t, err)
	require.Equal(t, 1, n)
}
