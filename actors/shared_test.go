package actors

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/internal/pgtest"
	"github.com/troupe-go/troupe/persistence/pgstore"
)

// Several Systems on one PostgreSQL schema, each its own node with its own
// connection pool, as separate processes would be.

type sharedNode struct {
	name  string
	sys   *System
	store *pgstore.Store
}

// startNodes starts n nodes; handlers gets each node's name and returns
// its handlers; before, when set, runs on the first node's store before any
// node starts.
func startNodes(t *testing.T, n int, handlers func(node string) map[domain.JobType]domain.Handler, before ...func(*pgstore.Store)) []*sharedNode {
	t.Helper()
	url := pgtest.URL(t)
	schema := pgtest.RandomSchema(t)
	pgtest.DropSchemaOnCleanup(t, url, schema)
	nodes := make([]*sharedNode, n)
	for i := range nodes {
		name := fmt.Sprintf("node-%d", i+1)
		store, err := pgstore.Open(context.Background(), pgstore.Options{URL: url, Schema: schema, MaxConns: 8, Logger: testLogger(t)})
		require.NoError(t, err)
		if i == 0 {
			for _, f := range before {
				f(store)
			}
		}
		sys, err := New(store,
			WithConfig(Config{Node: name, PollInterval: 50 * time.Millisecond, LeaseDuration: 2 * time.Second, RescueInterval: 100 * time.Millisecond}),
			WithSharedQueue(store), WithLogger(testLogger(t)), WithWorkers(4),
			WithRetryBackoff(10*time.Millisecond, 10*time.Millisecond, NoJitter))
		require.NoError(t, err)
		for typ, h := range handlers(name) {
			require.NoError(t, sys.Register(typ, h))
		}
		require.NoError(t, sys.Start(context.Background()))
		t.Cleanup(func() {
			require.NoError(t, sys.Stop(context.Background()))
			require.NoError(t, store.Close())
		})
		nodes[i] = &sharedNode{name: name, sys: sys, store: store}
	}
	return nodes
}

// waitForStatus waits until count jobs have status st.
func waitForStatus(t *testing.T, store domain.Store, st domain.Status, count int) {
	t.Helper()
	waitFor(t, func() bool {
		page, err := store.List(context.Background(), domain.Filter{Statuses: []domain.Status{st}, Limit: 1})
		require.NoError(t, err)
		return page.Total >= count
	})
}

func TestShared_EveryJobRunsOnceAcrossNodes(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	runs := map[uuid.UUID][]string{}
	nodes := startNodes(t, 3, func(node string) map[domain.JobType]domain.Handler {
		return map[domain.JobType]domain.Handler{"noop": domain.HandlerFunc(func(ctx context.Context, _ []byte) error {
			id, _ := JobIDFromContext(ctx)
			mu.Lock()
			runs[id] = append(runs[id], node)
			mu.Unlock()
			return nil
		})}
	})
	const jobs = 600
	for i := range jobs / 100 {
		params := make([]SubmitParams, 100)
		for j := range params {
			params[j] = SubmitParams{Type: "noop"}
		}
		_, err := nodes[i%len(nodes)].sys.SubmitBatch(context.Background(), params)
		require.NoError(t, err)
	}
	waitForStatus(t, nodes[0].store, domain.StatusCompleted, jobs)

	mu.Lock()
	defer mu.Unlock()
	require.Len(t, runs, jobs)
	perNode := map[string]int{}
	for id, ran := range runs {
		require.Len(t, ran, 1, "job %s ran on %v", id, ran)
		perNode[ran[0]]++
	}
	require.Greater(t, len(perNode), 1, "the work spread over nodes: %v", perNode)
}

func TestShared_RetryRunsAgainOnAnyNode(t *testing.T) {
	t.Parallel()
	nodes := startNodes(t, 2, func(string) map[domain.JobType]domain.Handler {
		return map[domain.JobType]domain.Handler{"flaky": domain.HandlerFunc(func(ctx context.Context, _ []byte) error {
			if AttemptFromContext(ctx) < 3 {
				return errors.New("not yet")
			}
			return nil
		})}
	})
	job, err := nodes[0].sys.Submit(context.Background(), SubmitParams{Type: "flaky", MaxAttempts: 3})
	require.NoError(t, err)
	waitForStatus(t, nodes[0].store, domain.StatusCompleted, 1)
	got, err := nodes[1].sys.Get(context.Background(), job.ID)
	require.NoError(t, err)
	require.Equal(t, 3, got.Attempts)
	require.Equal(t, "not yet", got.LastError)
}

func TestShared_CancelReachesTheNodeRunningTheJob(t *testing.T) {
	t.Parallel()
	started := make(chan string, 1)
	nodes := startNodes(t, 2, func(node string) map[domain.JobType]domain.Handler {
		return map[domain.JobType]domain.Handler{"block": domain.HandlerFunc(func(ctx context.Context, _ []byte) error {
			started <- node
			<-ctx.Done()
			return context.Cause(ctx)
		})}
	})
	job, err := nodes[0].sys.Submit(context.Background(), SubmitParams{Type: "block", MaxAttempts: 3})
	require.NoError(t, err)
	runningOn := <-started

	// Cancel through the node that does not run it.
	other := nodes[0]
	if other.name == runningOn {
		other = nodes[1]
	}
	got, err := other.sys.Cancel(context.Background(), job.ID)
	require.NoError(t, err)
	require.Equal(t, domain.StatusRunning, got.Status)
	waitForStatus(t, other.store, domain.StatusCanceled, 1)
	final, err := other.sys.Get(context.Background(), job.ID)
	require.NoError(t, err)
	require.Equal(t, 1, final.Attempts, "canceled, not retried")

	_, err = other.sys.Cancel(context.Background(), job.ID)
	require.NoError(t, err, "canceling twice is a no-op")
}

func TestShared_RescuesTheJobsOfADeadNode(t *testing.T) {
	t.Parallel()
	var job, orphan *domain.Job
	// Before any live node starts, a node claims two jobs and dies: its
	// leases run out at once.
	dies := func(store *pgstore.Store) {
		var err error
		job, err = domain.NewJob("noop", nil, 3, time.Now().Add(-time.Minute))
		require.NoError(t, err)
		orphan, err = domain.NewJob("noop", nil, 1, time.Now().Add(-time.Minute))
		require.NoError(t, err)
		require.NoError(t, store.Create(context.Background(), job, orphan))
		claimed, err := store.ClaimJobs(context.Background(), "dead-node", domain.ClaimRequest{Limit: 2, Lease: -time.Second})
		require.NoError(t, err)
		require.Len(t, claimed, 2)
	}
	nodes := startNodes(t, 1, func(string) map[domain.JobType]domain.Handler {
		return map[domain.JobType]domain.Handler{"noop": domain.HandlerFunc(noop)}
	}, dies)
	store := nodes[0].store

	waitForStatus(t, store, domain.StatusCompleted, 1)
	waitForStatus(t, store, domain.StatusFailed, 1)
	got, err := store.Get(context.Background(), job.ID)
	require.NoError(t, err)
	require.Equal(t, domain.StatusCompleted, got.Status)
	require.Equal(t, 2, got.Attempts, "the dead node's attempt counts")
	got, err = store.Get(context.Background(), orphan.ID)
	require.NoError(t, err)
	require.Equal(t, domain.StatusFailed, got.Status, "out of attempts")
	require.Equal(t, domain.ErrInterrupted.Error(), got.LastError)
}

func TestShared_NodesClaimOnlyTypesTheyHandle(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	ranOn := map[domain.JobType][]string{}
	record := func(node string, typ domain.JobType) domain.Handler {
		return domain.HandlerFunc(func(context.Context, []byte) error {
			mu.Lock()
			ranOn[typ] = append(ranOn[typ], node)
			mu.Unlock()
			return nil
		})
	}
	nodes := startNodes(t, 2, func(node string) map[domain.JobType]domain.Handler {
		if node == "node-1" {
			return map[domain.JobType]domain.Handler{"email": record(node, "email")}
		}
		return map[domain.JobType]domain.Handler{"report": record(node, "report")}
	})
	// Each node accepts only its own types at submission; store the other
	// kind straight into the shared table, as another deployment would.
	for range 20 {
		for _, typ := range []domain.JobType{"email", "report"} {
			job, err := domain.NewJob(typ, nil, 1, time.Now().Add(-time.Second))
			require.NoError(t, err)
			require.NoError(t, nodes[0].store.Create(context.Background(), job))
		}
	}
	waitForStatus(t, nodes[0].store, domain.StatusCompleted, 40)
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, ranOn["email"], 20)
	require.Len(t, ranOn["report"], 20)
	for _, n := range ranOn["email"] {
		require.Equal(t, "node-1", n)
	}
	for _, n := range ranOn["report"] {
		require.Equal(t, "node-2", n)
	}
}

// A node without handlers (one that serves only the API) claims nothing:
// every job runs on the node that handles its type, none fails here for
// want of a handler.
func TestShared_NodeWithoutHandlersClaimsNothing(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	ranOn := map[string]int{}
	nodes := startNodes(t, 2, func(node string) map[domain.JobType]domain.Handler {
		if node == "node-1" {
			return nil
		}
		return map[domain.JobType]domain.Handler{"email": domain.HandlerFunc(func(context.Context, []byte) error {
			mu.Lock()
			ranOn[node]++
			mu.Unlock()
			return nil
		})}
	})
	for range 20 {
		job, err := domain.NewJob("email", nil, 1, time.Now().Add(-time.Second))
		require.NoError(t, err)
		require.NoError(t, nodes[0].store.Create(context.Background(), job))
	}
	waitForStatus(t, nodes[0].store, domain.StatusCompleted, 20)
	failed, err := nodes[0].store.List(context.Background(), domain.Filter{Statuses: []domain.Status{domain.StatusFailed}, Limit: 1})
	require.NoError(t, err)
	require.Zero(t, failed.Total)
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, map[string]int{"node-2": 20}, ranOn)
}
