package actors

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/persistence/memstore"
)

// concurrency tracks how many handlers of each queue run at once, and the
// most there ever were.
type concurrency struct {
	mu      sync.Mutex
	running map[string]int
	most    map[string]int
}

func newConcurrency() *concurrency {
	return &concurrency{running: map[string]int{}, most: map[string]int{}}
}

func (c *concurrency) handler(queue string) domain.Handler {
	return domain.HandlerFunc(func(context.Context, []byte) error {
		c.mu.Lock()
		c.running[queue]++
		c.most[queue] = max(c.most[queue], c.running[queue])
		c.mu.Unlock()
		time.Sleep(100 * time.Microsecond)
		c.mu.Lock()
		c.running[queue]--
		c.mu.Unlock()
		return nil
	})
}

func (c *concurrency) max(queue string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.most[queue]
}

// A queue's cap bounds how many of its jobs run at once on the node,
// however many workers are free; other queues use the rest of the pool.
func TestQueues_CapIsNeverExceeded(t *testing.T) {
	t.Parallel()
	c := newConcurrency()
	b := setup(t, map[domain.JobType]domain.Handler{"email": c.handler("email"), "other": c.handler("default")},
		WithWorkers(8), WithQueueLimits(map[string]int{"email": 2}))
	params := make([]SubmitParams, 0, 800)
	for range 400 {
		params = append(params, SubmitParams{Type: "email", Queue: "email"}, SubmitParams{Type: "other"})
	}
	_, err := b.sys.SubmitBatch(context.Background(), params)
	require.NoError(t, err)
	b.finished.waitFinished(t, len(params))
	require.Equal(t, 2, c.max("email"), "the capped queue ran two at a time, never more")
	require.Greater(t, c.max("default"), 2, "the uncapped queue used the other workers")
	q, err := b.sys.Queue(context.Background(), "email")
	require.NoError(t, err)
	require.Equal(t, 2, q.Limit)
}

// A flood in one queue does not stall another: 100,000 jobs in bulk, then
// 10 in default; free workers take turns between the queues, so the 10
// start within a few jobs' time.
func TestQueues_FloodDoesNotStallAnotherQueue(t *testing.T) {
	t.Parallel()
	const flood = 100_000
	var bulkStarted atomic.Int64
	var othersQueued atomic.Bool
	var mu sync.Mutex
	firstDefaultAfter, lastDefaultAfter := int64(-1), int64(-1)
	defaults := 0
	handlers := map[domain.JobType]domain.Handler{
		"bulk": domain.HandlerFunc(func(context.Context, []byte) error {
			bulkStarted.Add(1)
			if othersQueued.Load() {
				// Counting starts: a bulk job that takes a while keeps a
				// goroutine the machine is slow to schedule from counting
				// as unfairness.
				time.Sleep(2 * time.Millisecond)
			}
			return nil
		}),
		"default": domain.HandlerFunc(func(context.Context, []byte) error {
			mu.Lock()
			defaults++
			if defaults == 1 {
				firstDefaultAfter = bulkStarted.Load()
			}
			if defaults == 10 {
				lastDefaultAfter = bulkStarted.Load()
			}
			mu.Unlock()
			return nil
		}),
	}
	b := setup(t, handlers, WithWorkers(2), WithQueueSize(flood+10))
	ctx := context.Background()
	batch := make([]SubmitParams, 1000)
	for i := range batch {
		batch[i] = SubmitParams{Type: "bulk", Queue: "bulk"}
	}
	for range flood / len(batch) {
		_, err := b.sys.SubmitBatch(ctx, batch)
		require.NoError(t, err)
	}
	batch = batch[:10]
	for i := range batch {
		batch[i] = SubmitParams{Type: "default"}
	}
	othersQueued.Store(true)
	_, err := b.sys.SubmitBatch(ctx, batch)
	require.NoError(t, err)
	// Counted once the 10 are queued: bulk jobs starting while their
	// write is on its way (longer on a busy machine) are not behind them.
	before := bulkStarted.Load()
	waitFor(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return defaults == 10
	})
	mu.Lock()
	wait, between := firstDefaultAfter-before, lastDefaultAfter-firstDefaultAfter
	mu.Unlock()
	require.Less(t, before, int64(flood/2), "the flood was still queued when the others came")
	// The first default job waits at most for the jobs already handed to
	// the dispatcher (how many depends on the machine's load, not on the
	// flood); then the queues take turns.
	require.LessOrEqual(t, wait, int64(1000), "bulk jobs started after the others were queued and before the first of them")
	require.LessOrEqual(t, between, int64(30), "bulk jobs started between the first and the last of the others")
	t.Logf("%d bulk jobs before the first of 10 default ones, %d between the first and the last (%d before they were submitted)", wait, between, before)
}

// A paused queue keeps taking jobs but starts none; a job of it already
// running finishes; the pause outlives a restart on the same store; resume
// starts the waiting jobs.
func TestQueues_PauseAndResume(t *testing.T) {
	t.Parallel()
	store := memstore.New()
	blk := newBlocker()
	rec := &startRecorder{}
	start := func() (*System, *finishRecorder) {
		t.Helper()
		fin := newFinishRecorder()
		sys, err := New(store, WithLogger(testLogger(t)), WithMetrics(fin), WithWorkers(2))
		require.NoError(t, err)
		require.NoError(t, sys.Register("block", blk))
		require.NoError(t, sys.Register("rec", rec))
		require.NoError(t, sys.Start(context.Background()))
		return sys, fin
	}
	ctx := context.Background()
	sys, fin := start()
	running, err := sys.Submit(ctx, SubmitParams{Type: "block", Queue: "reports"})
	require.NoError(t, err)
	blk.waitStarted(t)
	q, err := sys.PauseQueue(ctx, "reports")
	require.NoError(t, err)
	require.True(t, q.Paused)

	var waiting []uuid.UUID
	for range 3 {
		j, err := sys.Submit(ctx, SubmitParams{Type: "rec", Queue: "reports"})
		require.NoError(t, err, "a paused queue takes jobs")
		waiting = append(waiting, j.ID)
	}
	barrier, err := sys.Submit(ctx, SubmitParams{Type: "rec"})
	require.NoError(t, err)
	fin.waitFinished(t, 1)
	blk.release <- struct{}{}
	fin.waitFinished(t, 2)
	got, err := sys.Get(ctx, running.ID)
	require.NoError(t, err)
	require.Equal(t, domain.StatusCompleted, got.Status, "the running job finished")
	require.Equal(t, []uuid.UUID{barrier.ID}, rec.started(), "the paused queue started nothing")
	require.Equal(t, 3, sys.Stats().QueueDepth)
	require.NoError(t, sys.Stop(ctx))

	sys, fin = start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		require.NoError(t, sys.Stop(ctx))
	})
	q, err = sys.Queue(ctx, "reports")
	require.NoError(t, err)
	require.True(t, q.Paused, "the pause is stored")
	require.Equal(t, 3, q.Pending)
	barrier2, err := sys.Submit(ctx, SubmitParams{Type: "rec"})
	require.NoError(t, err)
	fin.waitFinished(t, 1)
	require.Equal(t, []uuid.UUID{barrier.ID, barrier2.ID}, rec.started(), "still paused after the restart")

	q, err = sys.ResumeQueue(ctx, "reports")
	require.NoError(t, err)
	require.False(t, q.Paused)
	fin.waitFinished(t, 4)
	require.ElementsMatch(t, waiting, rec.started()[2:])
}

// claimingQueue is a fake shared queue that hands out the jobs it holds,
// as many as the claim's Limit and Room allow, and records each claim.
type claimingQueue struct {
	*fakeSharedQueue
	mu       sync.Mutex
	jobs     []*domain.Job
	requests []domain.ClaimRequest
}

func (q *claimingQueue) ClaimJobs(_ context.Context, _ string, r domain.ClaimRequest) ([]*domain.Job, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.requests = append(q.requests, r)
	taken := map[string]int{}
	var out, left []*domain.Job
	for _, j := range q.jobs {
		room, capped := r.Room[j.Queue]
		if len(out) < r.Limit && (!capped || taken[j.Queue] < room) {
			taken[j.Queue]++
			_ = j.Start(time.Now())
			out = append(out, j)
			continue
		}
		left = append(left, j)
	}
	q.jobs = left
	return out, nil
}

func (q *claimingQueue) UpdateOwned(context.Context, string, *domain.Job) error { return nil }

func (q *claimingQueue) rooms(queue string) []int {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []int
	for _, r := range q.requests {
		out = append(out, r.Room[queue])
	}
	return out
}

// In shared mode a claim asks for no more of a capped queue's jobs than
// its cap leaves room for on this node.
func TestShared_ClaimRoomFollowsQueueCaps(t *testing.T) {
	t.Parallel()
	queue := &claimingQueue{fakeSharedQueue: newFakeSharedQueue()}
	for range 5 {
		j, err := domain.NewJob("block", nil, 1, time.Now())
		require.NoError(t, err)
		j.Queue = "email"
		queue.jobs = append(queue.jobs, j)
	}
	blk := newBlocker()
	sys, err := New(memstore.New(), WithConfig(Config{PollInterval: 10 * time.Millisecond}),
		WithSharedQueue(queue), WithLogger(testLogger(t)), WithWorkers(4), WithQueueLimits(map[string]int{"email": 2}))
	require.NoError(t, err)
	require.NoError(t, sys.Register("block", blk))
	require.NoError(t, sys.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		require.NoError(t, sys.Stop(ctx))
	})

	blk.waitStarted(t)
	blk.waitStarted(t)
	require.Equal(t, 2, sys.Stats().Workers.Busy)
	n := len(queue.rooms("email"))
	waitFor(t, func() bool { return len(queue.rooms("email")) > n+3 })
	for _, room := range queue.rooms("email")[n:] {
		require.Zero(t, room, "no room while two run")
	}
	require.Equal(t, 2, queue.rooms("email")[0], "the first claim had room for two")
	require.Equal(t, 2, sys.Stats().Workers.Busy, "no third job started")

	blk.release <- struct{}{}
	blk.waitStarted(t)
	waitFor(t, func() bool { return sys.Stats().Workers.Busy == 2 })
	close(blk.release)
}
