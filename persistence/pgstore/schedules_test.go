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
