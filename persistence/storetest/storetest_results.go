package storetest

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
)

// resultJob returns a job of type typ created at at(n) with a result and
// progress.
func resultJob(t *testing.T, typ domain.JobType, n int) *domain.Job {
	t.Helper()
	j := NewJob(t, typ, JobCreatedAt(at(n)), JobStatus(domain.StatusCompleted, 1))
	j.Result = []byte(`{"n":` + strings.Repeat("9", n%5+1) + `, "é":[true,null]}`)
	j.Progress = &domain.Progress{Percent: 100.0 / 3, Message: "done", UpdatedAt: domain.Timestamp(at(n + 1))}
	return j
}

func testResults(t *testing.T, newStore factory) {
	t.Run("RoundTripThroughEveryPath", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		ctx := t.Context()
		created := resultJob(t, "a", 0)
		// A progress report of nothing yet: zero percent, no message, no
		// time, is a report all the same.
		bare := NewJob(t, "a", JobCreatedAt(at(1)), JobStatus(domain.StatusRunning, 1))
		bare.Progress = &domain.Progress{}
		// The longest message a report keeps, cut on a rune boundary.
		long := NewJob(t, "b", JobCreatedAt(at(2)), JobStatus(domain.StatusRunning, 1))
		p := domain.NewProgress(12.345678901234567, strings.Repeat("ü", domain.MaxProgressMessageBytes), at(3))
		long.Progress = &p
		plain := NewJob(t, "b", JobCreatedAt(at(3)))
		mustCreate(t, store, created, bare, long, plain)
		inserted := resultJob(t, "b", 4)
		existing, err := store.Insert(ctx, at(4), []*domain.Job{inserted})
		require.NoError(t, err)
		require.Equal(t, []*domain.Job{nil}, existing)

		all := []*domain.Job{created, bare, long, plain, inserted}
		for _, j := range all {
			requireStored(t, store, j)
		}
		require.Nil(t, mustGet(t, store, plain).Result, "no result stays none")
		require.Nil(t, mustGet(t, store, plain).Progress, "no progress stays none")
		requirePage(t, store, domain.Filter{}, all, len(all))
		requirePage(t, store, domain.Filter{Type: "b"}, []*domain.Job{long, plain, inserted}, 3)
		require.Equal(t, all, scanAll(t, store, domain.Filter{}))

		// Update sets, replaces and clears them.
		plain.Result = []byte(`"just a string"`)
		plain.Progress = &domain.Progress{Percent: 99.5, Message: "almost", UpdatedAt: domain.Timestamp(at(9))}
		created.Result, created.Progress = nil, nil
		long.Progress.Message = "shorter"
		require.NoError(t, store.Update(ctx, plain, created, long))
		for _, j := range all {
			requireStored(t, store, j)
		}
		require.Equal(t, all, scanAll(t, store, domain.Filter{}))
	})

	t.Run("CopiesBothWays", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		ctx := t.Context()
		j := resultJob(t, "a", 0)
		want := j.Clone()
		mustCreate(t, store, j)
		j.Result[1] = 'X'
		j.Progress.Message = "changed after Create"
		requireStored(t, store, want)

		page, err := store.List(ctx, domain.Filter{})
		require.NoError(t, err)
		page.Jobs[0].Result[1] = 'X'
		page.Jobs[0].Progress.Percent = -1
		requireStored(t, store, want)
		for _, got := range scanAll(t, store, domain.Filter{}) {
			got.Result[1] = 'X'
			got.Progress.Message = "changed after Scan"
		}
		requireStored(t, store, want)

		j = want.Clone()
		j.Result = []byte(`{"second":2}`)
		want = j.Clone()
		require.NoError(t, store.Update(ctx, j))
		j.Result[1] = 'X'
		j.Progress.UpdatedAt = at(1000)
		requireStored(t, store, want)
	})
}

// mustGet returns the stored copy of j.
func mustGet(t *testing.T, store domain.Store, j *domain.Job) *domain.Job {
	t.Helper()
	got, err := store.Get(t.Context(), j.ID)
	require.NoError(t, err)
	return got
}
