package actors

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/persistence/memstore"
)

// cancelKey carries, in a submission's context, the function that cancels it.
type cancelKey struct{}

// hangUpStore is a store whose callers hang up while their Create commits:
// it cancels the caller's context right after the jobs are stored and then
// answers, as a store may, only that the context ended.
type hangUpStore struct{ domain.Store }

func (s hangUpStore) Create(ctx context.Context, jobs ...*domain.Job) error {
	if err := s.Store.Create(ctx, jobs...); err != nil {
		return err
	}
	if cancel, ok := ctx.Value(cancelKey{}).(context.CancelFunc); ok {
		cancel()
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("create job %s: %w", jobs[0].ID, err)
	}
	return nil
}

// allStored returns every stored job.
func allStored(t *testing.T, store domain.Store) []*domain.Job {
	t.Helper()
	page, err := store.List(context.Background(), domain.Filter{})
	require.NoError(t, err)
	return page.Jobs
}

func TestSystem_SubmitQueuesStoredJobsWhenTheCallerHangsUp(t *testing.T) {
	t.Parallel()
	store := hangUpStore{memstore.New()}
	sys, _ := startOn(t, store, domain.HandlerFunc(noop))

	const submissions = 50
	for i := range submissions {
		ctx, cancel := context.WithCancel(context.Background())
		ctx = context.WithValue(ctx, cancelKey{}, cancel)
		var err error
		if i%2 == 0 {
			_, err = sys.Submit(ctx, SubmitParams{Type: "noop"})
		} else {
			_, err = sys.SubmitBatch(ctx, []SubmitParams{{Type: "noop"}, {Type: "noop"}, {Type: "noop"}})
		}
		cancel()
		require.NoError(t, err, "the jobs are stored: the caller is told so")
	}

	stored := allStored(t, store)
	require.Len(t, stored, submissions/2+3*submissions/2)
	waitFor(t, func() bool {
		for _, j := range allStored(t, store) {
			if j.Status != domain.StatusCompleted {
				return false
			}
		}
		return true
	})
	require.Zero(t, sys.Stats().QueueDepth)
}

func TestSystem_SubmitWithAnEndedContextStoresNothing(t *testing.T) {
	t.Parallel()
	store := memstore.New()
	sys, _ := startOn(t, store, domain.HandlerFunc(noop))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := sys.Submit(ctx, SubmitParams{Type: "noop"})
	require.ErrorIs(t, err, context.Canceled)
	_, err = sys.SubmitBatch(ctx, []SubmitParams{{Type: "noop"}, {Type: "noop"}})
	require.ErrorIs(t, err, context.Canceled)
	require.Empty(t, allStored(t, store))
	require.Zero(t, sys.Stats().QueueDepth, "no queue slot is left reserved")
}
