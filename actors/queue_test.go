package actors

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
)

// The ready queue pops in (priority, RunAt, arrival) order whatever the
// order of pushes, interleaved with pops: in any order (mostly the heap),
// and mostly in order with a few jobs out of it (mostly the FIFO).
func TestReadyQueue_PopsInOrder(t *testing.T) {
	t.Parallel()
	base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	t.Run("AnyOrder", func(t *testing.T) {
		t.Parallel()
		r := rand.New(rand.NewPCG(1, 2))
		checkReadyQueue(t, r, 20_000, 3, func() *domain.Job {
			return &domain.Job{Priority: 1 + r.IntN(9), RunAt: base.Add(time.Duration(r.IntN(50)) * time.Microsecond)}
		})
	})
	t.Run("MostlyInOrder", func(t *testing.T) {
		t.Parallel()
		r := rand.New(rand.NewPCG(3, 4))
		at := base
		checkReadyQueue(t, r, 20_000, 2, func() *domain.Job {
			if r.IntN(50) == 0 {
				// A retry or a promoted job: due before the stream.
				return &domain.Job{Priority: 1 + r.IntN(9), RunAt: at.Add(-time.Duration(r.IntN(1000)) * time.Microsecond)}
			}
			at = at.Add(time.Duration(r.IntN(2)) * time.Microsecond)
			return &domain.Job{Priority: domain.DefaultPriority, RunAt: at}
		})
	})
}

// A long FIFO slides its entries down as it drains, and keeps its order
// with the heap's.
func TestReadyQueue_LongFIFOKeepsItsOrder(t *testing.T) {
	t.Parallel()
	base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	var q readyQueue
	var want []*domain.Job
	push := func(j *domain.Job) {
		q.push(j, uint64(len(want)))
		want = append(want, j)
	}
	for i := range 10_000 {
		push(&domain.Job{Priority: 5, RunAt: base.Add(time.Duration(i) * time.Microsecond)})
	}
	for i := range 6_000 {
		got, _ := q.pop()
		require.Same(t, want[i], got)
	}
	require.Less(t, q.head, 6_000, "the FIFO slid its entries down")
	for i := range 100 {
		// Due before the rest of the stream, and a few of higher priority.
		push(&domain.Job{Priority: 5 - i%2, RunAt: base.Add(time.Duration(i) * time.Microsecond)})
	}
	rest := slices.Clone(want[6_000:])
	slices.SortStableFunc(rest, func(a, b *domain.Job) int {
		if c := a.Priority - b.Priority; c != 0 {
			return c
		}
		return a.RunAt.Compare(b.RunAt)
	})
	for _, j := range rest {
		got, ok := q.pop()
		require.True(t, ok)
		require.Same(t, j, got)
	}
	require.Zero(t, q.len())
}

// checkReadyQueue pushes ops jobs from next, popping one in every
// popEvery operations, and checks every pop against a sorted model.
func checkReadyQueue(t *testing.T, r *rand.Rand, ops, popEvery int, next func() *domain.Job) {
	type entry struct {
		job *domain.Job
		seq uint64
	}
	var q readyQueue
	var model []entry
	less := func(a, b entry) int {
		if c := a.job.Priority - b.job.Priority; c != 0 {
			return c
		}
		if c := a.job.RunAt.Compare(b.job.RunAt); c != 0 {
			return c
		}
		return int(a.seq) - int(b.seq)
	}
	var seq uint64
	for range ops {
		if r.IntN(popEvery) > 0 || len(model) == 0 {
			seq++
			j := next()
			q.push(j, seq)
			model = append(model, entry{j, seq})
			continue
		}
		first := 0
		for i := range model {
			if less(model[i], model[first]) < 0 {
				first = i
			}
		}
		got, ok := q.pop()
		require.True(t, ok)
		require.Same(t, model[first].job, got)
		model = slices.Delete(model, first, first+1)
	}
	require.Equal(t, len(model), q.len())
	slices.SortFunc(model, less)
	for _, e := range model {
		got, _ := q.pop()
		require.Same(t, e.job, got)
	}
	_, ok := q.pop()
	require.False(t, ok)
}
