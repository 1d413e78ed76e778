package actors

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/persistence/memstore"
	"github.com/troupe-go/troupe/persistence/storetest"
)

// startRecorder records the order in which jobs start.
type startRecorder struct {
	mu    sync.Mutex
	order []uuid.UUID
}

func (r *startRecorder) Execute(ctx context.Context, _ []byte) error {
	id, _ := JobIDFromContext(ctx)
	r.mu.Lock()
	r.order = append(r.order, id)
	r.mu.Unlock()
	return nil
}

func (r *startRecorder) started() []uuid.UUID {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]uuid.UUID(nil), r.order...)
}

// A job submitted for later is stored scheduled, with no actor, no queue
// slot and one timer; it becomes pending when the clock reaches its RunAt,
// not a microsecond before, and runs then.
func TestScheduler_ScheduledJobRunsAtItsRunAtAndNotBefore(t *testing.T) {
	t.Parallel()
	clock := newManualClock()
	b := setup(t, map[domain.JobType]domain.Handler{"noop": domain.HandlerFunc(noop)}, WithClock(clock))
	runAt := clock.Now().Add(time.Hour)
	job, err := b.sys.Submit(context.Background(), SubmitParams{Type: "noop", Delay: time.Hour})
	require.NoError(t, err)
	require.Equal(t, domain.StatusScheduled, job.Status)
	require.Equal(t, runAt, job.RunAt)
	waitFor(t, func() bool { return clock.pendingAt(runAt) })
	stats := b.sys.Stats()
	require.Zero(t, stats.JobActors, "a scheduled job has no actor")
	require.Zero(t, stats.QueueDepth, "nor a place in the ready queue")

	clock.advance(time.Hour - time.Microsecond)
	time.Sleep(20 * time.Millisecond)
	require.Equal(t, domain.StatusScheduled, b.get(t, job.ID).Status, "not pending before its RunAt")

	clock.advance(time.Microsecond)
	b.finished.waitFinished(t, 1)
	got := b.get(t, job.ID)
	require.Equal(t, domain.StatusCompleted, got.Status)
	require.Equal(t, runAt, got.StartedAt, "started at its RunAt")
	require.Equal(t, runAt, got.RunAt, "RunAt is kept through running")
}

// Many scheduled jobs share the scheduler's one timer: only the earliest
// RunAt is armed, and each job runs at its own time.
func TestScheduler_OneTimerForManyJobs(t *testing.T) {
	t.Parallel()
	clock := newManualClock()
	rec := &startRecorder{}
	b := setup(t, map[domain.JobType]domain.Handler{"rec": rec}, WithClock(clock), WithJobTimeout(NoTimeout))
	start := clock.Now()
	params := make([]SubmitParams, 50)
	for i := range params {
		// Submitted latest first.
		params[i] = SubmitParams{Type: "rec", RunAt: start.Add(time.Duration(len(params)-i) * 2 * time.Minute)}
	}
	results, err := b.sys.SubmitBatch(context.Background(), params)
	require.NoError(t, err)
	waitFor(t, func() bool { return clock.pendingAt(start.Add(2*time.Minute)) && clock.pending() == 3 })
	require.ElementsMatch(t, []time.Duration{2 * time.Minute, schedulerPollLocal, pruneInterval}, clock.waiting(),
		"one timer, at the earliest RunAt, beside the poll and the pruner's")

	for i := 1; i <= len(params); i++ {
		clock.advance(2 * time.Minute)
		b.finished.waitFinished(t, i)
	}
	started := rec.started()
	for i := range results {
		require.Equal(t, results[len(results)-1-i].Job.ID, started[i], "in RunAt order")
	}
}

// Jobs start by priority (1 first), then RunAt, then submission order,
// whatever order they reach the ready queue in: here the store's order at
// recovery, by creation, which differs from both.
func TestReadyQueue_OrderByPriorityThenRunAtThenSubmission(t *testing.T) {
	t.Parallel()
	store := memstore.New()
	base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	type spec struct {
		name     string
		priority int
		runAt    time.Duration
	}
	// Created in this order.
	specs := []spec{
		{"p5-late", 5, 3 * time.Second},
		{"p9-early", 9, 0},
		{"p5-early", 5, time.Second},
		{"p1-late", 1, 5 * time.Second},
		{"p5-tie-first", 5, 2 * time.Second},
		{"p5-tie-second", 5, 2 * time.Second},
		{"p1-early", 1, 4 * time.Second},
	}
	ids := map[uuid.UUID]string{}
	for i, s := range specs {
		job := storetest.NewJob(t, "rec", storetest.JobPayload(nil), storetest.JobCreatedAt(base.Add(time.Duration(i)*time.Millisecond)),
			storetest.JobEdit(func(j *domain.Job) {
				j.Priority = s.priority
				j.RunAt = base.Add(s.runAt)
			}))
		require.NoError(t, store.Create(context.Background(), job))
		ids[job.ID] = s.name
	}
	rec := &startRecorder{}
	clock := newManualClock()
	clock.now = base.Add(time.Minute)
	_, finished := startOnWith(t, store, "rec", rec, WithWorkers(1), WithClock(clock))
	finished.waitFinished(t, len(specs))
	var got []string
	for _, id := range rec.started() {
		got = append(got, ids[id])
	}
	require.Equal(t, []string{"p1-early", "p1-late", "p5-early", "p5-tie-first", "p5-tie-second", "p5-late", "p9-early"}, got)
}

// A job promoted with an old RunAt goes before fresh submissions of its
// priority that reached the queue first.
func TestReadyQueue_PromotedJobGoesBeforeLaterRunAts(t *testing.T) {
	t.Parallel()
	clock := newManualClock()
	blk := newBlocker()
	rec := &startRecorder{}
	b := setup(t, map[domain.JobType]domain.Handler{"block": blk, "rec": rec}, WithWorkers(1), WithClock(clock), WithJobTimeout(NoTimeout))
	ctx := context.Background()
	_, err := b.sys.Submit(ctx, SubmitParams{Type: "block"})
	require.NoError(t, err)
	blk.waitStarted(t)
	early, err := b.sys.Submit(ctx, SubmitParams{Type: "rec", Delay: time.Second})
	require.NoError(t, err)
	clock.advance(time.Second)
	waitFor(t, func() bool { return b.get(t, early.ID).Status == domain.StatusPending })
	// Submitted after the promotion, with a later RunAt.
	clock.advance(time.Second)
	fresh, err := b.sys.Submit(ctx, SubmitParams{Type: "rec"})
	require.NoError(t, err)
	urgent, err := b.sys.Submit(ctx, SubmitParams{Type: "rec", Priority: 1})
	require.NoError(t, err)
	waitFor(t, func() bool { return b.sys.Stats().QueueDepth == 3 })
	close(blk.release)
	b.finished.waitFinished(t, 4)
	require.Equal(t, []uuid.UUID{urgent.ID, early.ID, fresh.ID}, rec.started())
}

// startOnWith starts a System on store with one handler type.
func startOnWith(t *testing.T, store domain.Store, typ domain.JobType, h domain.Handler, opts ...Option) (*System, *finishRecorder) {
	t.Helper()
	rec := newFinishRecorder()
	opts = append([]Option{WithLogger(testLogger(t)), WithMetrics(rec), WithRetryBackoff(time.Millisecond, time.Millisecond, NoJitter)}, opts...)
	sys, err := New(store, opts...)
	require.NoError(t, err)
	require.NoError(t, sys.Register(typ, h))
	require.NoError(t, sys.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, sys.Stop(ctx))
	})
	return sys, rec
}

// A canceled scheduled job is canceled at once, counted as finished, and
// never runs when its RunAt comes.
func TestScheduler_CancelOfAScheduledJob(t *testing.T) {
	t.Parallel()
	clock := newManualClock()
	rec := &startRecorder{}
	b := setup(t, map[domain.JobType]domain.Handler{"rec": rec}, WithClock(clock))
	job, err := b.sys.Submit(context.Background(), SubmitParams{Type: "rec", Delay: time.Minute})
	require.NoError(t, err)
	got, err := b.sys.Cancel(context.Background(), job.ID)
	require.NoError(t, err)
	require.Equal(t, domain.StatusCanceled, got.Status)
	require.Equal(t, domain.StatusCanceled, b.get(t, job.ID).Status)
	b.finished.waitFinished(t, 1)

	clock.advance(time.Minute)
	// A job due at the same time is the barrier: it runs, the canceled one not.
	other, err := b.sys.Submit(context.Background(), SubmitParams{Type: "rec"})
	require.NoError(t, err)
	b.finished.waitFinished(t, 2)
	require.Equal(t, []uuid.UUID{other.ID}, rec.started())
	waitFor(t, func() bool { return b.sys.Stats().JobActors == 0 })
}

// countingMetrics counts every metrics call.
type countingMetrics struct {
	finishRecorder
	mu                          sync.Mutex
	created, attempts, timedOut int
	finishedBy                  map[domain.Status]int
}

func newCountingMetrics() *countingMetrics {
	return &countingMetrics{finishRecorder: *newFinishRecorder(), finishedBy: map[domain.Status]int{}}
}

func (m *countingMetrics) JobCreated(*domain.Job) {
	m.mu.Lock()
	m.created++
	m.mu.Unlock()
}

func (m *countingMetrics) AttemptFinished(*domain.Job, time.Duration) {
	m.mu.Lock()
	m.attempts++
	m.mu.Unlock()
}

func (m *countingMetrics) AttemptTimedOut(*domain.Job) {
	m.mu.Lock()
	m.timedOut++
	m.mu.Unlock()
	m.signal()
}

func (m *countingMetrics) counts() (created, attempts, timedOut int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.created, m.attempts, m.timedOut
}

// A second submission with a held unique key stores nothing and returns
// the job holding it with ErrDuplicate; in a batch, its position says
// Created false and names that job.
func TestSystem_SubmitDuplicateReturnsTheExistingJob(t *testing.T) {
	t.Parallel()
	m := newCountingMetrics()
	clock := newManualClock()
	b := setup(t, map[domain.JobType]domain.Handler{"noop": domain.HandlerFunc(noop)}, WithMetrics(m), WithClock(clock))
	ctx := context.Background()
	first, err := b.sys.Submit(ctx, SubmitParams{Type: "noop", UniqueKey: "k", Delay: time.Hour})
	require.NoError(t, err)
	again, err := b.sys.Submit(ctx, SubmitParams{Type: "noop", UniqueKey: "k"})
	require.ErrorIs(t, err, ErrDuplicate)
	require.Equal(t, first.ID, again.ID)

	results, err := b.sys.SubmitBatch(ctx, []SubmitParams{
		{Type: "noop", UniqueKey: "b", Delay: time.Hour},
		{Type: "noop", UniqueKey: "k"},
		{Type: "noop", UniqueKey: "b"},
	})
	require.NoError(t, err)
	require.True(t, results[0].Created)
	require.False(t, results[1].Created)
	require.Equal(t, first.ID, results[1].Job.ID)
	require.False(t, results[2].Created)
	require.Equal(t, results[0].Job.ID, results[2].Job.ID)
	created, _, _ := m.counts()
	require.Equal(t, 2, created, "only stored jobs are counted")
	page, err := b.sys.List(ctx, domain.Filter{})
	require.NoError(t, err)
	require.Equal(t, 2, page.Total)
}

func TestSystem_SubmitValidatesSchedulingFields(t *testing.T) {
	t.Parallel()
	clock := newManualClock()
	b := setup(t, map[domain.JobType]domain.Handler{"noop": domain.HandlerFunc(noop)}, WithClock(clock))
	ctx := context.Background()
	bad := map[string]SubmitParams{
		"RunAtAndDelay":       {Type: "noop", RunAt: clock.Now().Add(time.Hour), Delay: time.Minute},
		"NegativeDelay":       {Type: "noop", Delay: -time.Second},
		"DelayOverMax":        {Type: "noop", Delay: MaxDelay + time.Second},
		"RunAtOverMax":        {Type: "noop", RunAt: clock.Now().Add(MaxDelay + time.Second)},
		"BadQueue":            {Type: "noop", Queue: "Bad!"},
		"QueueTooLong":        {Type: "noop", Queue: string(make([]byte, 65))},
		"PriorityTen":         {Type: "noop", Priority: 10},
		"PriorityNegative":    {Type: "noop", Priority: -1},
		"UniqueForWithoutKey": {Type: "noop", UniqueFor: time.Hour},
		"UniqueKeyTooLong":    {Type: "noop", UniqueKey: string(make([]byte, 256))},
		"NegativeUniqueFor":   {Type: "noop", UniqueKey: "k", UniqueFor: -time.Second},
		"NegativeTimeout":     {Type: "noop", Timeout: -2 * time.Second},
	}
	for name, p := range bad {
		_, err := b.sys.Submit(ctx, p)
		require.ErrorIs(t, err, domain.ErrInvalid, name)
	}
	page, err := b.sys.List(ctx, domain.Filter{})
	require.NoError(t, err)
	require.Zero(t, page.Total, "nothing stored")

	job, err := b.sys.Submit(ctx, SubmitParams{Type: "noop", Delay: time.Hour})
	require.NoError(t, err)
	require.Equal(t, domain.DefaultPriority, job.Priority, "priority 0 means the default")
	require.Equal(t, domain.DefaultQueue, job.Queue)
	require.Equal(t, JobTimeoutDefault, job.Timeout)
	past, err := b.sys.Submit(ctx, SubmitParams{Type: "noop", RunAt: clock.Now().Add(-time.Hour)})
	require.NoError(t, err)
	require.Equal(t, domain.StatusPending, past.Status, "a RunAt in the past is now")
	require.Equal(t, clock.Now(), past.RunAt)
	none, err := b.sys.Submit(ctx, SubmitParams{Type: "noop", Timeout: NoTimeout, Delay: time.Hour})
	require.NoError(t, err)
	require.Zero(t, none.Timeout)
}

var errGaveUp = errors.New("gave up")

// cancelingQueue is a fake shared queue whose CancelJob cancels a job of
// store that is not running, as a shared store does.
type cancelingQueue struct {
	*fakeSharedQueue
	store domain.Store
}

func (q *cancelingQueue) CancelJob(ctx context.Context, id uuid.UUID) (*domain.Job, error) {
	job, err := q.store.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := job.Cancel(time.Now()); err != nil {
		return nil, err
	}
	return job, q.store.Update(ctx, job)
}

// In shared mode the store cancels a scheduled job at once; the node that
// asked counts it finished, once.
func TestShared_CancelOfAScheduledJobIsCountedOnce(t *testing.T) {
	t.Parallel()
	store := memstore.New()
	m := newCountingMetrics()
	sys, err := New(store, WithConfig(Config{PollInterval: time.Hour}), WithSharedQueue(&cancelingQueue{fakeSharedQueue: newFakeSharedQueue(), store: store}),
		WithLogger(testLogger(t)), WithMetrics(m))
	require.NoError(t, err)
	require.NoError(t, sys.Register("noop", domain.HandlerFunc(noop)))
	require.NoError(t, sys.Start(context.Background()))
	t.Cleanup(func() { require.NoError(t, sys.Stop(context.Background())) })

	job, err := sys.Submit(context.Background(), SubmitParams{Type: "noop", Delay: time.Hour})
	require.NoError(t, err)
	require.Equal(t, domain.StatusScheduled, job.Status)
	for range 2 {
		got, err := sys.Cancel(context.Background(), job.ID)
		require.NoError(t, err)
		require.Equal(t, domain.StatusCanceled, got.Status)
	}
	require.Equal(t, 1, m.total(), "finished once")
}
