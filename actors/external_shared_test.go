package actors

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/internal/pgtest"
	"github.com/troupe-go/troupe/persistence/pgstore"
)

// startExternalNodes starts n nodes on one PostgreSQL schema; "ext" is run
// by external workers, "go" by a Go handler on every node.
func startExternalNodes(t *testing.T, n int) []*System {
	t.Helper()
	url := pgtest.URL(t)
	schema := pgtest.RandomSchema(t)
	pgtest.DropSchemaOnCleanup(t, url, schema)
	nodes := make([]*System, n)
	for i := range nodes {
		store, err := pgstore.Open(context.Background(), pgstore.Options{URL: url, Schema: schema, MaxConns: 8, Logger: testLogger(t)})
		require.NoError(t, err)
		sys, err := New(store,
			WithConfig(Config{Node: fmt.Sprintf("node-%d", i+1), PollInterval: 50 * time.Millisecond,
				LeaseDuration: 2 * time.Second, RescueInterval: 100 * time.Millisecond}),
			WithSharedQueue(store), WithLogger(testLogger(t)), WithWorkers(2), WithExternalTypes("ext"),
			WithRetryBackoff(10*time.Millisecond, 10*time.Millisecond, NoJitter))
		require.NoError(t, err)
		require.NoError(t, sys.Register("go", domain.HandlerFunc(noop)))
		require.NoError(t, sys.Start(context.Background()))
		t.Cleanup(func() {
			require.NoError(t, sys.Stop(context.Background()))
			require.NoError(t, store.Close())
		})
		nodes[i] = sys
	}
	return nodes
}

func sharedClaim(t *testing.T, sys *System, p ClaimParams) []ClaimedJob {
	t.Helper()
	p.Types = []domain.JobType{"ext"}
	jobs, err := sys.ClaimJobs(context.Background(), p)
	require.NoError(t, err)
	return jobs
}

func TestSharedExternal_ClaimOnOneNodeReportOnAnother(t *testing.T) {
	t.Parallel()
	nodes := startExternalNodes(t, 3)
	ctx := context.Background()
	goJob, err := nodes[0].Submit(ctx, SubmitParams{Type: "go"})
	require.NoError(t, err)
	job, err := nodes[0].Submit(ctx, SubmitParams{Type: "ext"})
	require.NoError(t, err)
	waitFor(t, func() bool {
		j, err := nodes[0].Get(ctx, goJob.ID)
		require.NoError(t, err)
		return j.Status == domain.StatusCompleted
	})
	got, err := nodes[0].Get(ctx, job.ID)
	require.NoError(t, err)
	require.Equal(t, domain.StatusPending, got.Status, "no Go worker takes an external job")

	c := sharedClaim(t, nodes[1], ClaimParams{Wait: 10 * time.Second, Lease: 10 * time.Second})
	require.Equal(t, []uuid.UUID{job.ID}, claimedIDs(c))
	require.Equal(t, 1, c[0].Job.Attempts)
	st, err := nodes[2].Heartbeat(ctx, job.ID, c[0].LeaseToken, &domain.Progress{Percent: 50, Message: "half"})
	require.NoError(t, err)
	require.False(t, st.CancelRequested)
	require.WithinDuration(t, time.Now().Add(10*time.Second), st.ExpiresAt, 5*time.Second)
	got, err = nodes[0].Get(ctx, job.ID)
	require.NoError(t, err)
	require.NotNil(t, got.Progress)
	require.Equal(t, "half", got.Progress.Message)

	_, err = nodes[0].CompleteJob(ctx, job.ID, newLeaseToken(10*time.Second), nil)
	require.ErrorIs(t, err, domain.ErrLeaseLost)
	done, err := nodes[0].CompleteJob(ctx, job.ID, c[0].LeaseToken, json.RawMessage(`{"ok":1}`))
	require.NoError(t, err)
	require.Equal(t, domain.StatusCompleted, done.Status)
	got, err = nodes[2].Get(ctx, job.ID)
	require.NoError(t, err)
	require.JSONEq(t, `{"ok":1}`, string(got.Result))
	_, err = nodes[1].CompleteJob(ctx, job.ID, c[0].LeaseToken, nil)
	require.ErrorIs(t, err, domain.ErrLeaseLost)
	_, err = nodes[1].Heartbeat(ctx, uuid.New(), c[0].LeaseToken, nil)
	require.ErrorIs(t, err, domain.ErrNotFound)
}

func TestSharedExternal_CancelOnOneNodeSeenByHeartbeatOnAnother(t *testing.T) {
	t.Parallel()
	nodes := startExternalNodes(t, 3)
	ctx := context.Background()
	job, err := nodes[0].Submit(ctx, SubmitParams{Type: "ext"})
	require.NoError(t, err)
	c := sharedClaim(t, nodes[0], ClaimParams{Wait: 10 * time.Second})
	require.Len(t, c, 1)
	canceled, err := nodes[1].Cancel(ctx, job.ID)
	require.NoError(t, err)
	require.Equal(t, domain.StatusRunning, canceled.Status)
	st, err := nodes[0].Heartbeat(ctx, job.ID, c[0].LeaseToken, nil)
	require.NoError(t, err)
	require.True(t, st.CancelRequested)
	got, err := nodes[2].FailJob(ctx, job.ID, c[0].LeaseToken, FailParams{Error: "stopped"})
	require.NoError(t, err)
	require.Equal(t, domain.StatusCanceled, got.Status)
}

func TestSharedExternal_LongPollWakesOnSubmitElsewhere(t *testing.T) {
	t.Parallel()
	nodes := startExternalNodes(t, 2)
	got := make(chan []ClaimedJob, 1)
	go func() {
		jobs, err := nodes[0].ClaimJobs(context.Background(), ClaimParams{Types: []domain.JobType{"ext"}, Wait: 30 * time.Second})
		require.NoError(t, err)
		got <- jobs
	}()
	job, err := nodes[1].Submit(context.Background(), SubmitParams{Type: "ext"})
	require.NoError(t, err)
	require.Equal(t, []uuid.UUID{job.ID}, claimedIDs(<-got))
	// With nothing ready the wait ends empty.
	require.Empty(t, sharedClaim(t, nodes[0], ClaimParams{Wait: 100 * time.Millisecond}))
}

func TestSharedExternal_ExpiredLeaseIsRescued(t *testing.T) {
	t.Parallel()
	nodes := startExternalNodes(t, 2)
	ctx := context.Background()
	job, err := nodes[0].Submit(ctx, SubmitParams{Type: "ext", MaxAttempts: 3})
	require.NoError(t, err)
	first := sharedClaim(t, nodes[0], ClaimParams{Wait: 10 * time.Second, Lease: MinLease})
	require.Len(t, first, 1)
	// The worker dies: no heartbeat. A rescuer returns the job to pending,
	// and a claim on the other node runs it again.
	second := sharedClaim(t, nodes[1], ClaimParams{Wait: 30 * time.Second})
	require.Equal(t, []uuid.UUID{job.ID}, claimedIDs(second))
	require.Equal(t, 2, second[0].Job.Attempts)
	_, err = nodes[0].CompleteJob(ctx, job.ID, first[0].LeaseToken, json.RawMessage(`"late"`))
	require.ErrorIs(t, err, domain.ErrLeaseLost)
	_, err = nodes[1].Heartbeat(ctx, job.ID, first[0].LeaseToken, nil)
	require.ErrorIs(t, err, domain.ErrLeaseLost)
	_, err = nodes[1].CompleteJob(ctx, job.ID, second[0].LeaseToken, json.RawMessage(`"rerun"`))
	require.NoError(t, err)
	got, err := nodes[0].Get(ctx, job.ID)
	require.NoError(t, err)
	require.Equal(t, domain.StatusCompleted, got.Status)
	require.Equal(t, `"rerun"`, string(got.Result))
}

func TestSharedExternal_ClaimsNeverHandOutAJobTwice(t *testing.T) {
	t.Parallel()
	nodes := startExternalNodes(t, 3)
	ctx := context.Background()
	const total = 300
	ps := make([]SubmitParams, total)
	for i := range ps {
		ps[i] = SubmitParams{Type: "ext"}
	}
	_, err := nodes[0].SubmitBatch(ctx, ps)
	require.NoError(t, err)

	var mu sync.Mutex
	seen := map[uuid.UUID]int{}
	var wg sync.WaitGroup
	for _, sys := range nodes {
		for range 2 {
			wg.Go(func() {
				for {
					mu.Lock()
					done := len(seen) == total
					mu.Unlock()
					if done {
						return
					}
					jobs, err := sys.ClaimJobs(ctx, ClaimParams{Types: []domain.JobType{"ext"}, Max: 7, Wait: 200 * time.Millisecond})
					require.NoError(t, err)
					outs := make([]Outcome, len(jobs))
					mu.Lock()
					for i, j := range jobs {
						seen[j.Job.ID]++
						outs[i] = Outcome{JobID: j.Job.ID, LeaseToken: j.LeaseToken}
					}
					mu.Unlock()
					res, err := nodes[len(jobs)%len(nodes)].ReportOutcomes(ctx, outs)
					require.NoError(t, err)
					for _, r := range res {
						require.NoError(t, r.Err)
					}
				}
			})
		}
	}
	wg.Wait()
	require.Len(t, seen, total)
	for id, n := range seen {
		require.Equal(t, 1, n, "job %s claimed %d times", id, n)
	}
	page, err := nodes[0].List(ctx, domain.Filter{Statuses: []domain.Status{domain.StatusCompleted}, Limit: 1})
	require.NoError(t, err)
	require.Equal(t, total, page.Total)
}

// claimHookQueue is a PostgreSQL shared queue that calls afterClaim once
// a claim of an external worker returned jobs.
type claimHookQueue struct {
	*pgstore.Store
	afterClaim func()
}

func (q *claimHookQueue) ClaimJobs(ctx context.Context, node string, r domain.ClaimRequest) ([]*domain.Job, error) {
	jobs, err := q.Store.ClaimJobs(ctx, node, r)
	if len(jobs) > 0 && strings.HasPrefix(node, domain.ExternalOwnerPrefix) && q.afterClaim != nil {
		q.afterClaim()
	}
	return jobs, err
}

func startHookedExternalNode(t *testing.T, opts ...Option) (*System, *claimHookQueue) {
	t.Helper()
	url := pgtest.URL(t)
	schema := pgtest.RandomSchema(t)
	pgtest.DropSchemaOnCleanup(t, url, schema)
	store, err := pgstore.Open(context.Background(), pgstore.Options{URL: url, Schema: schema, MaxConns: 8, Logger: testLogger(t)})
	require.NoError(t, err)
	q := &claimHookQueue{Store: store}
	opts = append([]Option{WithConfig(Config{Node: "node-1", PollInterval: 50 * time.Millisecond, LeaseDuration: 2 * time.Second,
		RescueInterval: 100 * time.Millisecond}), WithSharedQueue(q), WithLogger(testLogger(t)), WithWorkers(2),
		WithExternalTypes("ext")}, opts...)
	sys, err := New(store, opts...)
	require.NoError(t, err)
	require.NoError(t, sys.Register("go", domain.HandlerFunc(noop)))
	require.NoError(t, sys.Start(context.Background()))
	t.Cleanup(func() {
		require.NoError(t, sys.Stop(context.Background()))
		require.NoError(t, store.Close())
	})
	return sys, q
}

func TestSharedExternal_ClaimWhoseCallerLeftHandsJobsBack(t *testing.T) {
	t.Parallel()
	sys, q := startHookedExternalNode(t)
	job, err := sys.Submit(context.Background(), SubmitParams{Type: "ext"})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	q.afterClaim = cancel // the caller leaves while the store hands it the job
	_, err = sys.ClaimJobs(ctx, ClaimParams{Types: []domain.JobType{"ext"}, Wait: 10 * time.Second})
	require.ErrorIs(t, err, context.Canceled)
	q.afterClaim = nil
	got, err := sys.Get(context.Background(), job.ID)
	require.NoError(t, err)
	require.Equal(t, domain.StatusPending, got.Status)
	require.Equal(t, 0, got.Attempts, "handed back, its attempt not counted")
	again := sharedClaim(t, sys, ClaimParams{})
	require.Equal(t, []uuid.UUID{job.ID}, claimedIDs(again))
	require.Equal(t, 1, again[0].Job.Attempts)
}

func TestSharedExternal_QueueFilterAndNodeCap(t *testing.T) {
	t.Parallel()
	sys, _ := startHookedExternalNode(t, WithQueueLimits(map[string]int{"capped": 1}))
	ctx := context.Background()
	submit := func(queue string) *domain.Job {
		job, err := sys.Submit(ctx, SubmitParams{Type: "ext", Queue: queue})
		require.NoError(t, err)
		return job
	}
	c1, c2, other := submit("capped"), submit("capped"), submit("other")
	require.Equal(t, []uuid.UUID{other.ID}, claimedIDs(sharedClaim(t, sys, ClaimParams{Queues: []string{"other"}, Max: 10})))
	first := sharedClaim(t, sys, ClaimParams{Max: 10})
	require.Equal(t, []uuid.UUID{c1.ID}, claimedIDs(first), "the cap lets one run through this node")
	require.Empty(t, sharedClaim(t, sys, ClaimParams{Max: 10}))
	_, err := sys.CompleteJob(ctx, c1.ID, first[0].LeaseToken, nil)
	require.NoError(t, err)
	require.Equal(t, []uuid.UUID{c2.ID}, claimedIDs(sharedClaim(t, sys, ClaimParams{Max: 10})))
}
