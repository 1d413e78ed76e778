package pgstore

import (
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
)

func testSchedule(name string) *domain.Schedule {
	return &domain.Schedule{
		Name:      name,
		Cron:      "@every 1s",
		Job:       domain.ScheduledJob{Type: "noop", Payload: []byte(`{}`)},
		Source:    domain.SourceAPI,
		CreatedAt: past(0),
		UpdatedAt: past(0),
	}
}

// TestRecordScheduleRunOnNodesOutOfOrder: nodes recording runs at once, in
// any order, leave the latest slot and the latest run, as if they had
// recorded them one by one in order.
func TestRecordScheduleRunOnNodesOutOfOrder(t *testing.T) {
	t.Parallel()
	nodes := openNodes(t, 2)
	ctx := t.Context()
	sc := testSchedule("every-second")
	created, err := nodes[0].PutSchedule(ctx, sc)
	require.NoError(t, err)
	require.True(t, created)

	// Slots and run times drawn independently, so that the latest slot
	// and the latest run are different records; every run time distinct.
	const writers, each = 8, 40
	runs := make([]domain.ScheduleRun, writers*each)
	for i, n := range rand.Perm(len(runs)) {
		runs[i] = domain.ScheduleRun{
			Slot:  past(0).Add(time.Duration(rand.IntN(len(runs))) * time.Second),
			At:    past(0).Add(time.Duration(n) * time.Millisecond),
			JobID: uuid.New(),
		}
	}
	runs[1].Slot = time.Time{} // a trigger
	var want domain.ScheduleRun
	for _, r := range runs {
		if r.Slot.After(want.Slot) {
			want.Slot = r.Slot
		}
		if !r.At.Before(want.At) {
			want.At, want.JobID = r.At, r.JobID
		}
	}

	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		s := nodes[w%2]
		wg.Go(func() {
			for _, r := range runs[w*each : (w+1)*each] {
				if err := s.RecordScheduleRun(ctx, sc.Name, r); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	got, err := nodes[1].GetSchedule(ctx, sc.Name)
	require.NoError(t, err)
	require.Equal(t, want.Slot, got.LastSlot)
	require.Equal(t, want.At, got.LastRunAt)
	require.Equal(t, want.JobID, got.LastJobID)
}

// TestPutScheduleOnNodesAtOnce: nodes applying the same schedule at once
// (as every node does with the configuration's at start) create it once;
// the others replace it.
func TestPutScheduleOnNodesAtOnce(t *testing.T) {
	t.Parallel()
	nodes := openNodes(t, 3)
	ctx := t.Context()
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		created int
	)
	errs := make(chan error, 2*len(nodes))
	for _, s := range append(nodes, nodes...) {
		wg.Go(func() {
			c, err := s.PutSchedule(ctx, testSchedule("from-config"))
			if err != nil {
				errs <- err
				return
			}
			if c {
				mu.Lock()
				created++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Equal(t, 1, created)
	list, err := nodes[0].ListSchedules(ctx)
	require.NoError(t, err)
	require.Equal(t, []*domain.Schedule{testSchedule("from-config")}, list)
}

// TestPutScheduleRejectsWhatItCannotKeep: an invalid name or a number out of
// the column's range is refused as invalid, naming the schedule.
func TestPutScheduleRejectsWhatItCannotKeep(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	bad := testSchedule("Not A Name")
	_, err := s.PutSchedule(t.Context(), bad)
	require.ErrorIs(t, err, domain.ErrInvalid)
	huge := testSchedule("huge")
	huge.Job.Priority = 1 << 40
	_, err = s.PutSchedule(t.Context(), huge)
	require.ErrorIs(t, err, domain.ErrInvalid)
	require.ErrorContains(t, err, "huge")
	list, err := s.ListSchedules(t.Context())
	require.NoError(t, err)
	require.Empty(t, list)
}

// TestAJobKeepsItsScheduleThroughEveryWrite: the schedule a job was
// submitted by comes back from every statement that returns jobs or
// rewrites them: Insert (and the holder it reports), promotion, claim,
// an owned update, a rescue and a cancel.
func TestAJobKeepsItsScheduleThroughEveryWrite(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	ctx := t.Context()
	slot := newJob(t, "noop", 2, past(0))
	slot.Schedule, slot.UniqueKey, slot.UniqueFor = "every-minute", domain.ScheduleSlotKey("every-minute", past(0)), time.Hour
	slot.Status, slot.RunAt = domain.StatusScheduled, past(1)
	existing, err := s.Insert(ctx, time.Time{}, []*domain.Job{slot})
	require.NoError(t, err)
	require.Equal(t, []*domain.Job{nil}, existing)

	again := newJob(t, "noop", 2, past(2))
	again.Schedule, again.UniqueKey = "every-minute", slot.UniqueKey
	existing, err = s.Insert(ctx, time.Time{}, []*domain.Job{again})
	require.NoError(t, err)
	require.Len(t, existing, 1)
	require.Equal(t, slot.ID, existing[0].ID)
	require.Equal(t, "every-minute", existing[0].Schedule, "the holder")

	promoted, err := s.PromoteDue(ctx, time.Time{}, 10)
	require.NoError(t, err)
	require.Len(t, promoted, 1)
	require.Equal(t, "every-minute", promoted[0].Schedule, "promoted")

	claimed, err := s.ClaimJobs(ctx, "n1", domain.ClaimRequest{Limit: 1, Lease: -time.Second})
	require.NoError(t, err)
	require.Len(t, claimed, 1)
	require.Equal(t, "every-minute", claimed[0].Schedule, "claimed")

	rescued, err := s.RescueExpired(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, rescued)
	claimed, err = s.ClaimJobs(ctx, "n1", domain.ClaimRequest{Limit: 1, Lease: time.Hour})
	require.NoError(t, err)
	require.Len(t, claimed, 1)
	require.Equal(t, "every-minute", claimed[0].Schedule, "claimed after a rescue")

	j := claimed[0]
	j.LastError = "try again"
	require.NoError(t, s.UpdateOwned(ctx, "n1", j))
	got, err := s.Get(ctx, j.ID)
	require.NoError(t, err)
	require.Equal(t, "every-minute", got.Schedule, "after an owned update")

	canceled, err := s.CancelJob(ctx, j.ID)
	require.NoError(t, err)
	require.Equal(t, "every-minute", canceled.Schedule, "canceled")

	got.Schedule = ""
	require.NoError(t, s.Update(ctx, got))
	page, err := s.List(ctx, domain.Filter{Schedule: "every-minute"})
	require.NoError(t, err)
	require.Zero(t, page.Total, "an update clears it like any field")
}
