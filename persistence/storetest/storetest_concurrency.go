package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
)

func testConcurrency(t *testing.T, newStore factory) {
	t.Run("WritersKeepEveryJob", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		const writers, perWriter = 8, 200

		// Each writer creates its jobs one by one, then drives each through
		// its life to one of four ends chosen by its index. Readers list
		// and get at the same time, so the race detector sees writes and
		// reads interleave.
		finals := make([][]*domain.Job, writers)
		errs := make([]error, writers)
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() { finals[w], errs[w] = drive(t, store, w, perWriter) })
		}
		done := make(chan struct{})
		var readErr error
		var readers sync.WaitGroup
		readers.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				if _, err := store.List(t.Context(), domain.Filter{Statuses: []domain.Status{domain.StatusRunning}, Limit: 10}); err != nil {
					readErr = err
					return
				}
			}
		})
		wg.Wait()
		close(done)
		readers.Wait()
		require.NoError(t, errors.Join(errs...))
		require.NoError(t, readErr)

		var all []*domain.Job
		counts := map[domain.Status]int{}
		for _, jobs := range finals {
			for _, j := range jobs {
				requireStored(t, store, j)
				counts[j.Status]++
			}
			all = append(all, jobs...)
		}
		require.Len(t, all, writers*perWriter)
		sum := 0
		for _, s := range domain.Statuses() {
			page, err := store.List(t.Context(), domain.Filter{Statuses: []domain.Status{s}, Limit: 1})
			require.NoError(t, err)
			require.Equal(t, counts[s], page.Total, "jobs %s", s)
			sum += page.Total
		}
		require.Equal(t, writers*perWriter, sum, "the counts by status add up")
		requirePage(t, store, domain.Filter{}, oldestFirst(all), len(all))
	})
}

// drive creates n jobs for writer w and moves each through its life, one
// Update per transition. It returns the jobs in their final state.
func drive(t *testing.T, store domain.Store, w, n int) ([]*domain.Job, error) {
	ctx := t.Context()
	jobs := make([]*domain.Job, 0, n)
	for i := range n {
		j, err := domain.NewJob(domain.JobType(fmt.Sprintf("type_%d", i%3)), fmt.Appendf(nil, `{"w":%d,"i":%d}`, w, i), 3, at(i))
		if err != nil {
			return nil, err
		}
		if err := store.Create(ctx, j); err != nil {
			return nil, err
		}
		jobs = append(jobs, j)
	}
	for i, j := range jobs {
		if err := j.Start(at(n + i)); err != nil {
			return nil, err
		}
		if err := store.Update(ctx, j); err != nil {
			return nil, err
		}
		var err error
		switch i % 4 {
		case 0:
			err = j.Complete(at(2*n + i))
		case 1:
			err = j.Fail(errors.New("permanent"), at(2*n+i))
		case 2:
			err = j.Cancel(at(2*n + i))
		case 3:
			err = j.Retry(errors.New("again"), at(3*n+i), at(2*n+i))
		}
		if err != nil {
			return nil, err
		}
		if err := store.Update(ctx, j); err != nil {
			return nil, fmt.Errorf("writer %d job %d: %w", w, i, err)
		}
	}
	return jobs, nil
}
