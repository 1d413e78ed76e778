package actors

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/persistence/memstore"
)

// committingStore commits an Insert, tells its trace, then holds the
// answer until release closes, as a store that fsyncs after committing
// does; fail, if set, is the answer.
type committingStore struct {
	domain.Store
	release chan struct{}
	fail    error
}

func (s *committingStore) Insert(ctx context.Context, now time.Time, jobs []*domain.Job) ([]*domain.Job, error) {
	existing, err := s.Store.Insert(ctx, now, jobs)
	if err != nil {
		return nil, err
	}
	if t := domain.InsertTraceFrom(ctx); t != nil && t.Committed != nil {
		t.Committed(existing)
	}
	<-s.release
	return existing, s.fail
}

// TestLocalSourceStartsJobsOnceCommitted: a job whose store committed it
// starts while the store makes it durable; if that fails, Submit reports
// it and the committed job still runs once, as at least once allows.
func TestLocalSourceStartsJobsOnceCommitted(t *testing.T) {
	t.Parallel()
	for name, fail := range map[string]error{"durable": nil, "fsync failed": errors.New("input/output error")} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			store := &committingStore{Store: memstore.New(), release: make(chan struct{}), fail: fail}
			started := make(chan struct{}, 1)
			rec := newFinishRecorder()
			sys, err := New(store, WithLogger(testLogger(t)), WithMetrics(rec))
			require.NoError(t, err)
			require.NoError(t, sys.Register("noop", domain.HandlerFunc(func(context.Context, []byte) error {
				started <- struct{}{}
				return nil
			})))
			require.NoError(t, sys.Start(t.Context()))
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				require.NoError(t, sys.Stop(ctx))
			})

			submitted := make(chan error, 1)
			go func() {
				_, err := sys.Submit(t.Context(), SubmitParams{Type: "noop"})
				submitted <- err
			}()
			<-started
			select {
			case err := <-submitted:
				t.Fatalf("Submit returned before its store did: %v", err)
			default:
			}
			close(store.release)
			require.ErrorIs(t, <-submitted, fail)
			rec.waitFinished(t, 1)
			require.Zero(t, sys.Stats().QueueDepth, "the queue's count is back to zero")
		})
	}
}
