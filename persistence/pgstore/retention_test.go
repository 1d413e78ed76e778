package pgstore

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/internal/pgtest"
	"github.com/troupe-go/troupe/persistence/storetest"
)

// openNodes opens n stores on one fresh schema, each with its own pool, as
// n nodes on separate machines would.
func openNodes(t *testing.T, n int) []*Store {
	t.Helper()
	url, schema := pgtest.URL(t), pgtest.RandomSchema(t)
	// Registered first, so it runs after every node has closed.
	pgtest.DropSchemaOnCleanup(t, url, schema)
	nodes := make([]*Store, n)
	for i := range nodes {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		s, err := Open(ctx, Options{URL: url, Schema: schema, MaxConns: 4})
		cancel()
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, s.Close()) })
		nodes[i] = s
	}
	return nodes
}

// finishedJob is a completed job that finished at finished.
func finishedJob(t *testing.T, n int, finished time.Time, opts ...storetest.JobOption) *domain.Job {
	t.Helper()
	opts = append([]storetest.JobOption{storetest.JobCreatedAt(past(n)), storetest.JobFinished(domain.StatusCompleted, finished)}, opts...)
	return storetest.NewJob(t, "noop", opts...)
}

// countJobs counts the rows of troupe_jobs.
func countJobs(t *testing.T, s *Store) int {
	t.Helper()
	var n int
	require.NoError(t, s.pool.QueryRow(t.Context(), `SELECT count(*) FROM troupe_jobs`).Scan(&n))
	return n
}

// TestDeleteFinishedJudgesHoldsByTheCallersClock: a finished job's unique
// key is held until UniqueFor after FinishedAt, on the clock of the now
// given (which wrote FinishedAt), and on the database's when now is zero.
// The conformance suite skips this for a store with its own clock.
func TestDeleteFinishedJudgesHoldsByTheCallersClock(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	ctx := t.Context()
	base := past(0)
	at := func(sec int) time.Time { return base.Add(time.Duration(sec) * time.Second) }

	// Finished at 100, holding its key until 160.
	j := finishedJob(t, 0, at(100), storetest.JobUniqueKey("slot", time.Minute))
	require.NoError(t, s.Create(ctx, j))
	n, err := s.DeleteFinished(ctx, at(159), domain.StatusCompleted, at(150), 100)
	require.NoError(t, err)
	require.Zero(t, n, "still held at 159")
	n, err = s.DeleteFinished(ctx, at(160), domain.StatusCompleted, at(150), 100)
	require.NoError(t, err)
	require.Equal(t, 1, n, "free at 160")
	existing, err := s.Insert(ctx, at(160), []*domain.Job{storetest.NewJob(t, "noop", storetest.JobUniqueKey("slot", 0))})
	require.NoError(t, err)
	require.Equal(t, []*domain.Job{nil}, existing, "the key went with the row")

	// The database's clock: finished an hour ago, one held for two hours
	// and one for half an hour.
	now := time.Now()
	long := finishedJob(t, 1, now.Add(-time.Hour), storetest.JobUniqueKey("long", 2*time.Hour))
	short := finishedJob(t, 2, now.Add(-time.Hour), storetest.JobUniqueKey("short", 30*time.Minute))
	require.NoError(t, s.Create(ctx, long, short))
	n, err = s.DeleteFinished(ctx, time.Time{}, domain.StatusCompleted, now, 100)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	_, err = s.Get(ctx, short.ID)
	require.ErrorIs(t, err, domain.ErrNotFound)
	_, err = s.Get(ctx, long.ID)
	require.NoError(t, err)
}

// TestDeleteFinishedSkipsRowsLockedElsewhere: a row another transaction
// holds (a node finishing or updating it, or pruning it) is passed over,
// not waited for; it is deleted by a later batch once free.
func TestDeleteFinishedSkipsRowsLockedElsewhere(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	ctx := t.Context()
	var jobs []*domain.Job
	for i := range 5 {
		jobs = append(jobs, finishedJob(t, i, past(100+i)))
	}
	require.NoError(t, s.Create(ctx, jobs...))

	tx, err := s.pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	_, err = tx.Exec(ctx, `SELECT 1 FROM troupe_jobs WHERE id = $1 FOR UPDATE`, jobs[0].ID)
	require.NoError(t, err)

	// Waiting for the lock would block until the transaction ends: the
	// deadline only turns such a hang into a failure.
	waitCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	n, err := s.DeleteFinished(waitCtx, time.Now(), domain.StatusCompleted, past(1000), 100)
	require.NoError(t, err)
	require.Equal(t, 4, n, "all but the locked job")
	_, err = s.Get(ctx, jobs[0].ID)
	require.NoError(t, err)

	require.NoError(t, tx.Rollback(ctx))
	n, err = s.DeleteFinished(ctx, time.Now(), domain.StatusCompleted, past(1000), 100)
	require.NoError(t, err)
	require.Equal(t, 1, n, "the job once released")
	require.Zero(t, countJobs(t, s))
}

// TestDeleteFinishedOnTwoNodesAtOnce: two nodes pruning the same jobs
// concurrently, in small batches, delete each expired job once and
// together all of them, and nothing else.
func TestDeleteFinishedOnTwoNodesAtOnce(t *testing.T) {
	t.Parallel()
	nodes := openNodes(t, 2)
	ctx := t.Context()
	const expired, kept = 3000, 300
	cutoff := past(0).Add(time.Hour)
	var jobs []*domain.Job
	for i := range expired {
		jobs = append(jobs, finishedJob(t, i, cutoff.Add(-time.Duration(expired-i)*time.Millisecond)))
	}
	keptIDs := map[string]bool{}
	for i := range kept {
		var j *domain.Job
		switch i % 3 {
		case 0: // finished after the cutoff
			j = finishedJob(t, expired+i, cutoff.Add(time.Duration(i+1)*time.Millisecond))
		case 1: // holding its unique key
			j = finishedJob(t, expired+i, cutoff.Add(-time.Second), storetest.JobUniqueKey(fmt.Sprintf("k%d", i), 100*time.Hour))
		default: // failed, not completed
			j = storetest.NewJob(t, "noop", storetest.JobCreatedAt(past(expired+i)), storetest.JobFinished(domain.StatusFailed, cutoff.Add(-time.Second)))
		}
		keptIDs[j.ID.String()] = true
		jobs = append(jobs, j)
	}
	require.NoError(t, nodes[0].Create(ctx, jobs...))

	// Two pruners per node, each deleting batches of 50 until one comes
	// back empty.
	var (
		mu    sync.Mutex
		total int
		wg    sync.WaitGroup
		errs  = make(chan error, 4)
	)
	start := make(chan struct{})
	for _, s := range append(nodes, nodes...) {
		wg.Go(func() {
			<-start
			for {
				n, err := s.DeleteFinished(ctx, cutoff, domain.StatusCompleted, cutoff, 50)
				if err != nil {
					errs <- err
					return
				}
				if n == 0 {
					return
				}
				mu.Lock()
				total += n
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Equal(t, expired, total, "each expired job is deleted once")
	page, err := nodes[1].List(ctx, domain.Filter{})
	require.NoError(t, err)
	require.Equal(t, kept, page.Total, "every expired job is gone, every other job stays")
	for _, j := range page.Jobs {
		require.True(t, keptIDs[j.ID.String()], "job %s should have been deleted", j.ID)
	}
}
