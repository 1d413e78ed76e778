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
// order of pushes, interleaved with pops.
func TestReadyQueue_PopsInOrder(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
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
	for range 20_000 {
		if r.IntN(3) > 0 || len(model) == 0 {
			seq++
			j := &domain.Job{Priority: 1 + r.IntN(9), RunAt: base.Add(time.Duration(r.IntN(50)) * time.Microsecond)}
			q.push(j, seq)
			model = append(model, entry{j, seq})
			continue
		}
		slices.SortFunc(model, less)
		got, ok := q.pop()
		require.True(t, ok)
		require.Same(t, model[0].job, got)
		model = model[1:]
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
