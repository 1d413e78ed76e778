package actors

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/persistence/badgerstore"
	"github.com/troupe-go/troupe/persistence/memstore"
)

// extSystem is a started System whose types "ext" and "ext2" are run by
// external workers; "go" has a Go handler (noop unless given).
type extSystem struct {
	sys   *System
	store domain.Store
	rec   *finishRecorder
}

func startExternal(t *testing.T, store domain.Store, goHandler domain.Handler, opts ...Option) *extSystem {
	t.Helper()
	if store == nil {
		store = memstore.New()
	}
	if goHandler == nil {
		goHandler = domain.HandlerFunc(noop)
	}
	rec := newFinishRecorder()
	opts = append([]Option{WithLogger(testLogger(t)), WithMetrics(rec), WithWorkers(2),
		WithRetryBackoff(time.Millisecond, time.Millisecond, NoJitter), WithExternalTypes("ext", "ext2")}, opts...)
	sys, err := New(store, opts...)
	require.NoError(t, err)
	require.NoError(t, sys.Register("go", goHandler))
	require.NoError(t, sys.Start(context.Background()))
	t.Cleanup(func() { require.NoError(t, sys.Stop(context.Background())) })
	return &extSystem{sys: sys, store: store, rec: rec}
}

func (e *extSystem) submit(t *testing.T, p SubmitParams) *domain.Job {
	t.Helper()
	if p.Type == "" {
		p.Type = "ext"
	}
	job, err := e.sys.Submit(context.Background(), p)
	require.NoError(t, err)
	return job
}

func (e *extSystem) claim(t *testing.T, p ClaimParams) []ClaimedJob {
	t.Helper()
	if len(p.Types) == 0 {
		p.Types = []domain.JobType{"ext"}
	}
	jobs, err := e.sys.ClaimJobs(context.Background(), p)
	require.NoError(t, err)
	return jobs
}

func (e *extSystem) get(t *testing.T, id uuid.UUID) *domain.Job {
	t.Helper()
	job, err := e.sys.Get(context.Background(), id)
	require.NoError(t, err)
	return job
}

func (e *extSystem) waitStatus(t *testing.T, id uuid.UUID, st domain.Status) *domain.Job {
	t.Helper()
	var job *domain.Job
	waitFor(t, func() bool { job = e.get(t, id); return job.Status == st })
	return job
}

func claimedIDs(jobs []ClaimedJob) []uuid.UUID {
	ids := make([]uuid.UUID, len(jobs))
	for i, j := range jobs {
		ids[i] = j.Job.ID
	}
	return ids
}

func TestExternal_TypesHaveOneRunner(t *testing.T) {
	t.Parallel()
	e := startExternal(t, nil, nil)
	require.ErrorIs(t, e.sys.Register("ext", domain.HandlerFunc(noop)), domain.ErrDuplicateHandler)
	require.ErrorIs(t, e.sys.RegisterExternal("go"), domain.ErrDuplicateHandler)
	require.ErrorIs(t, e.sys.RegisterExternal("ext"), domain.ErrDuplicateHandler)
	require.NoError(t, e.sys.RegisterExternal("ext3"))
	require.NoError(t, e.sys.Register("hook", domain.HandlerFunc(noop), WithRunBy(RunByWebhook)))
	require.Equal(t, []domain.JobType{"ext", "ext2", "ext3", "go", "hook"}, e.sys.JobTypes())
	require.Equal(t, []JobTypeInfo{{"ext", RunByExternal}, {"ext2", RunByExternal}, {"ext3", RunByExternal},
		{"go", RunByGo}, {"hook", RunByWebhook}}, e.sys.JobTypeInfo())
	// Submissions accept every type; a typo still fails, naming them all.
	e.submit(t, SubmitParams{Type: "ext3"})
	_, err := e.sys.Submit(context.Background(), SubmitParams{Type: "exr"})
	require.ErrorIs(t, err, domain.ErrUnknownJobType)
	require.ErrorContains(t, err, "ext3")

	_, err = New(memstore.New(), WithExternalTypes("a", "a"))
	require.ErrorIs(t, err, domain.ErrDuplicateHandler)
}

func TestExternal_ClaimValidation(t *testing.T) {
	t.Parallel()
	e := startExternal(t, nil, nil)
	many := make([]domain.JobType, 101)
	for i := range many {
		many[i] = "ext"
	}
	for _, c := range []struct {
		field string
		p     ClaimParams
	}{
		{"types", ClaimParams{}},
		{"types", ClaimParams{Types: many}},
		{"types", ClaimParams{Types: []domain.JobType{"ext", "go"}}},
		{"queues", ClaimParams{Types: []domain.JobType{"ext"}, Queues: []string{"Bad Name"}}},
		{"max", ClaimParams{Types: []domain.JobType{"ext"}, Max: 101}},
		{"max", ClaimParams{Types: []domain.JobType{"ext"}, Max: -1}},
		{"wait", ClaimParams{Types: []domain.JobType{"ext"}, Wait: 61 * time.Second}},
		{"wait", ClaimParams{Types: []domain.JobType{"ext"}, Wait: -time.Second}},
		{"worker", ClaimParams{Types: []domain.JobType{"ext"}, Worker: string(make([]byte, 256))}},
		{"lease", ClaimParams{Types: []domain.JobType{"ext"}, Lease: time.Second}},
		{"lease", ClaimParams{Types: []domain.JobType{"ext"}, Lease: 11 * time.Minute}},
	} {
		_, err := e.sys.ClaimJobs(context.Background(), c.p)
		var fe *FieldError
		require.ErrorAs(t, err, &fe, c.field)
		require.Equal(t, c.field, fe.Field)
		require.ErrorIs(t, err, domain.ErrInvalid)
	}
	_, err := e.sys.ClaimJobs(context.Background(), ClaimParams{Types: []domain.JobType{"go"}})
	require.ErrorContains(t, err, `"go" is not run by external workers (external types: ext, ext2)`)
}

func TestExternal_ClaimCompleteStoresResult(t *testing.T) {
	t.Parallel()
	e := startExternal(t, nil, nil)
	job := e.submit(t, SubmitParams{Payload: []byte(`{"n":1}`)})
	claimed := e.claim(t, ClaimParams{Worker: "w1", Lease: 10 * time.Second})
	require.Len(t, claimed, 1)
	c := claimed[0]
	require.Equal(t, job.ID, c.Job.ID)
	require.Equal(t, domain.StatusRunning, c.Job.Status)
	require.Equal(t, 1, c.Job.Attempts)
	require.Equal(t, []byte(`{"n":1}`), c.Job.Payload)
	require.GreaterOrEqual(t, len(c.LeaseToken), 22)
	require.WithinDuration(t, time.Now().Add(10*time.Second), c.LeaseExpiresAt, 5*time.Second)
	require.Equal(t, domain.StatusRunning, e.get(t, job.ID).Status)

	done, err := e.sys.CompleteJob(context.Background(), job.ID, c.LeaseToken, json.RawMessage(`{"ok":true}`))
	require.NoError(t, err)
	require.Equal(t, domain.StatusCompleted, done.Status)
	got := e.get(t, job.ID)
	require.Equal(t, domain.StatusCompleted, got.Status)
	require.JSONEq(t, `{"ok":true}`, string(got.Result))
	e.rec.waitFinished(t, 1)

	// The attempt ended: the token holds nothing now.
	_, err = e.sys.CompleteJob(context.Background(), job.ID, c.LeaseToken, nil)
	require.ErrorIs(t, err, domain.ErrLeaseLost)
	_, err = e.sys.Heartbeat(context.Background(), job.ID, c.LeaseToken, nil)
	require.ErrorIs(t, err, domain.ErrLeaseLost)
}

func TestExternal_ResultLimits(t *testing.T) {
	t.Parallel()
	e := startExternal(t, nil, nil, WithMaxResultBytes(8))
	job := e.submit(t, SubmitParams{})
	c := e.claim(t, ClaimParams{})[0]
	_, err := e.sys.CompleteJob(context.Background(), job.ID, c.LeaseToken, json.RawMessage(`"123456789"`))
	require.ErrorIs(t, err, domain.ErrResultTooLarge)
	_, err = e.sys.CompleteJob(context.Background(), job.ID, c.LeaseToken, json.RawMessage(`{`))
	require.ErrorIs(t, err, domain.ErrInvalid)
	// Neither ended the attempt.
	require.Equal(t, domain.StatusRunning, e.get(t, job.ID).Status)
	_, err = e.sys.CompleteJob(context.Background(), job.ID, c.LeaseToken, json.RawMessage(`1`))
	require.NoError(t, err)
}

func TestExternal_GoWorkersNeverRunExternalJobs(t *testing.T) {
	t.Parallel()
	e := startExternal(t, nil, nil)
	ext := e.submit(t, SubmitParams{})
	for range 10 {
		e.submit(t, SubmitParams{Type: "go"})
	}
	e.rec.waitFinished(t, 10)
	require.Equal(t, domain.StatusPending, e.get(t, ext.ID).Status)
	require.Equal(t, []uuid.UUID{ext.ID}, claimedIDs(e.claim(t, ClaimParams{Max: 5})))
}

func TestExternal_ClaimOrderAndFilters(t *testing.T) {
	t.Parallel()
	e := startExternal(t, nil, nil)
	a1 := e.submit(t, SubmitParams{Queue: "a"})
	a2 := e.submit(t, SubmitParams{Queue: "a"})
	a3 := e.submit(t, SubmitParams{Queue: "a", Priority: 1})
	x1 := e.submit(t, SubmitParams{Queue: "a", Type: "ext2", Priority: 9})
	b1 := e.submit(t, SubmitParams{Queue: "b"})
	b2 := e.submit(t, SubmitParams{Queue: "b"})
	c1 := e.submit(t, SubmitParams{Queue: "c"})

	// Queue filter, Max.
	require.Equal(t, []uuid.UUID{c1.ID}, claimedIDs(e.claim(t, ClaimParams{Queues: []string{"c"}, Max: 10})))
	// Queues in turn; within a queue priority, then submission.
	require.Equal(t, []uuid.UUID{a3.ID, b1.ID, a1.ID}, claimedIDs(e.claim(t, ClaimParams{Max: 3})))
	require.Equal(t, []uuid.UUID{b2.ID, a2.ID}, claimedIDs(e.claim(t, ClaimParams{Max: 10})))
	// Types filter: ext2 is only for claims naming it.
	require.Empty(t, e.claim(t, ClaimParams{}))
	require.Empty(t, e.claim(t, ClaimParams{Types: []domain.JobType{"ext2"}, Queues: []string{"b"}}))
	require.Equal(t, []uuid.UUID{x1.ID}, claimedIDs(e.claim(t, ClaimParams{Types: []domain.JobType{"ext", "ext2"}})))
}

func TestExternal_PausedQueueSkippedUntilResumed(t *testing.T) {
	t.Parallel()
	e := startExternal(t, nil, nil)
	ctx := context.Background()
	_, err := e.sys.PauseQueue(ctx, "p")
	require.NoError(t, err)
	job := e.submit(t, SubmitParams{Queue: "p"})
	require.Empty(t, e.claim(t, ClaimParams{}))

	got := make(chan []ClaimedJob, 1)
	go func() {
		jobs, _ := e.sys.ClaimJobs(ctx, ClaimParams{Types: []domain.JobType{"ext"}, Wait: 30 * time.Second})
		got <- jobs
	}()
	_, err = e.sys.ResumeQueue(ctx, "p")
	require.NoError(t, err)
	// The waiting claim, or this one, gets it; once.
	first := <-got
	if len(first) == 0 {
		first = e.claim(t, ClaimParams{})
	}
	require.Equal(t, []uuid.UUID{job.ID}, claimedIDs(first))
}

func TestExternal_QueueCapSharedWithGoWorkers(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	started := make(chan struct{}, 4)
	block := domain.HandlerFunc(func(ctx context.Context, _ []byte) error {
		started <- struct{}{}
		<-release
		return nil
	})
	e := startExternal(t, nil, block, WithQueueLimits(map[string]int{"capped": 1}))
	goJob := e.submit(t, SubmitParams{Type: "go", Queue: "capped"})
	<-started
	ext := e.submit(t, SubmitParams{Queue: "capped"})
	require.Empty(t, e.claim(t, ClaimParams{}), "the Go job holds the queue's one slot")

	got := make(chan []ClaimedJob, 1)
	go func() {
		jobs, err := e.sys.ClaimJobs(context.Background(), ClaimParams{Types: []domain.JobType{"ext"}, Wait: 30 * time.Second})
		require.NoError(t, err)
		got <- jobs
	}()
	release <- struct{}{}
	e.waitStatus(t, goJob.ID, domain.StatusCompleted)
	claimed := <-got
	require.Equal(t, []uuid.UUID{ext.ID}, claimedIDs(claimed))

	// Now the external job holds the slot: a Go job waits for it.
	goJob2 := e.submit(t, SubmitParams{Type: "go", Queue: "capped"})
	other := e.submit(t, SubmitParams{Type: "go", Queue: "free"})
	<-started // the free queue's job
	require.Equal(t, domain.StatusPending, e.get(t, goJob2.ID).Status)
	_, err := e.sys.CompleteJob(context.Background(), ext.ID, claimed[0].LeaseToken, nil)
	require.NoError(t, err)
	<-started
	close(release)
	e.waitStatus(t, goJob2.ID, domain.StatusCompleted)
	e.waitStatus(t, other.ID, domain.StatusCompleted)
}

func TestExternal_LongPoll(t *testing.T) {
	t.Parallel()
	e := startExternal(t, nil, nil)
	// With nothing ready, the wait ends empty, not in error.
	jobs, err := e.sys.ClaimJobs(context.Background(), ClaimParams{Types: []domain.JobType{"ext"}, Wait: 20 * time.Millisecond})
	require.NoError(t, err)
	require.NotNil(t, jobs)
	require.Empty(t, jobs)

	got := make(chan []ClaimedJob, 2)
	for range 2 {
		go func() {
			jobs, err := e.sys.ClaimJobs(context.Background(), ClaimParams{Types: []domain.JobType{"ext"}, Wait: 30 * time.Second, Max: 5})
			require.NoError(t, err)
			got <- jobs
		}()
	}
	// A submission wakes a waiting claim; a second one the other.
	waitFor(t, func() bool { return e.waiters() == 2 })
	job := e.submit(t, SubmitParams{})
	require.Equal(t, []uuid.UUID{job.ID}, claimedIDs(<-got))
	job2 := e.submit(t, SubmitParams{})
	require.Equal(t, []uuid.UUID{job2.ID}, claimedIDs(<-got))
}

// waiters counts the claims waiting in the dispatcher.
func (e *extSystem) waiters() int { return claimWaiters(e.sys) }

func claimWaiters(sys *System) int {
	res, err := sys.core.actors.Root.RequestFuture(sys.core.dispatcher, &countWaiters{}, time.Second).Result()
	if err != nil {
		return -1
	}
	return res.(int)
}

func TestExternal_LongPollEndsOnManualClock(t *testing.T) {
	t.Parallel()
	clock := newManualClock()
	e := startExternal(t, nil, nil, WithClock(clock))
	got := make(chan []ClaimedJob, 1)
	go func() {
		jobs, err := e.sys.ClaimJobs(context.Background(), ClaimParams{Types: []domain.JobType{"ext"}, Wait: 7 * time.Second})
		require.NoError(t, err)
		got <- jobs
	}()
	waitFor(t, func() bool { return e.waiters() == 1 })
	clock.advance(7 * time.Second)
	require.Empty(t, <-got)
	require.Equal(t, 0, e.waiters())
}

func TestExternal_HeartbeatExtendsLeaseAndReportsCancel(t *testing.T) {
	t.Parallel()
	clock := newManualClock()
	e := startExternal(t, nil, nil, WithClock(clock))
	job := e.submit(t, SubmitParams{})
	c := e.claim(t, ClaimParams{Lease: 10 * time.Second})[0]
	require.Equal(t, clock.Now().Add(10*time.Second), c.LeaseExpiresAt)

	clock.advance(6 * time.Second)
	st, err := e.sys.Heartbeat(context.Background(), job.ID, c.LeaseToken, &domain.Progress{Percent: 40, Message: "half"})
	require.NoError(t, err)
	require.Equal(t, clock.Now().Add(10*time.Second), st.ExpiresAt)
	require.False(t, st.CancelRequested)
	// Past the first lease's end: the heartbeat moved it.
	clock.advance(6 * time.Second)
	st, err = e.sys.Heartbeat(context.Background(), job.ID, c.LeaseToken, nil)
	require.NoError(t, err)

	canceled, err := e.sys.Cancel(context.Background(), job.ID)
	require.NoError(t, err)
	require.Equal(t, domain.StatusRunning, canceled.Status)
	st, err = e.sys.Heartbeat(context.Background(), job.ID, c.LeaseToken, nil)
	require.NoError(t, err)
	require.True(t, st.CancelRequested)
	// The worker stops and reports a failure: the job is canceled.
	done, err := e.sys.FailJob(context.Background(), job.ID, c.LeaseToken, FailParams{Error: "stopped: canceled"})
	require.NoError(t, err)
	require.Equal(t, domain.StatusCanceled, done.Status)
}

func TestExternal_CancelThenLeaseLapseCancels(t *testing.T) {
	t.Parallel()
	clock := newManualClock()
	e := startExternal(t, nil, nil, WithClock(clock))
	job := e.submit(t, SubmitParams{})
	e.claim(t, ClaimParams{Lease: 5 * time.Second})
	_, err := e.sys.Cancel(context.Background(), job.ID)
	require.NoError(t, err)
	clock.advance(5 * time.Second)
	e.waitStatus(t, job.ID, domain.StatusCanceled)
}

func TestExternal_FailRetriesOrFails(t *testing.T) {
	t.Parallel()
	clock := newManualClock()
	e := startExternal(t, nil, nil, WithClock(clock))
	ctx := context.Background()
	job := e.submit(t, SubmitParams{MaxAttempts: 3})
	c := e.claim(t, ClaimParams{})[0]
	// An empty error is refused and changes nothing.
	_, err := e.sys.FailJob(ctx, job.ID, c.LeaseToken, FailParams{})
	var fe *FieldError
	require.ErrorAs(t, err, &fe)
	require.Equal(t, "error", fe.Field)
	_, err = e.sys.FailJob(ctx, job.ID, c.LeaseToken, FailParams{Error: "x", RetryIn: -time.Second})
	require.ErrorAs(t, err, &fe)
	require.Equal(t, "retryIn", fe.Field)

	got, err := e.sys.FailJob(ctx, job.ID, c.LeaseToken, FailParams{Error: "busy", RetryIn: time.Hour})
	require.NoError(t, err)
	require.Equal(t, domain.StatusScheduled, got.Status)
	require.Equal(t, clock.Now().Add(time.Hour), got.RunAt)
	require.Equal(t, "busy", got.LastError)
	require.Equal(t, 1, e.rec.retries())

	job2 := e.submit(t, SubmitParams{MaxAttempts: 3})
	c2 := e.claim(t, ClaimParams{})[0]
	require.Equal(t, job2.ID, c2.Job.ID)
	got, err = e.sys.FailJob(ctx, job2.ID, c2.LeaseToken, FailParams{Error: "bad input", Permanent: true})
	require.NoError(t, err)
	require.Equal(t, domain.StatusFailed, got.Status)
	require.Equal(t, "bad input", got.LastError)
}

func TestExternal_WrongTokenAppliesNothing(t *testing.T) {
	t.Parallel()
	e := startExternal(t, nil, nil)
	ctx := context.Background()
	job := e.submit(t, SubmitParams{})
	c := e.claim(t, ClaimParams{})[0]
	wrong := newLeaseToken(30 * time.Second)
	_, err := e.sys.CompleteJob(ctx, job.ID, wrong, nil)
	require.ErrorIs(t, err, domain.ErrLeaseLost)
	_, err = e.sys.FailJob(ctx, job.ID, wrong, FailParams{Error: "x", Permanent: true})
	require.ErrorIs(t, err, domain.ErrLeaseLost)
	_, err = e.sys.Heartbeat(ctx, job.ID, wrong, nil)
	require.ErrorIs(t, err, domain.ErrLeaseLost)
	require.Equal(t, domain.StatusRunning, e.get(t, job.ID).Status)
	// A job nobody runs: lease lost too; an unknown one: not found.
	pending := e.submit(t, SubmitParams{Type: "ext2"})
	_, err = e.sys.CompleteJob(ctx, pending.ID, c.LeaseToken, nil)
	require.ErrorIs(t, err, domain.ErrLeaseLost)
	_, err = e.sys.Heartbeat(ctx, uuid.New(), c.LeaseToken, nil)
	require.ErrorIs(t, err, domain.ErrNotFound)
	// The right token still works.
	_, err = e.sys.CompleteJob(ctx, job.ID, c.LeaseToken, nil)
	require.NoError(t, err)
}

func TestExternal_LateOutcomeAfterLeaseExpiryIsLost(t *testing.T) {
	t.Parallel()
	clock := newManualClock()
	e := startExternal(t, nil, nil, WithClock(clock))
	ctx := context.Background()
	job := e.submit(t, SubmitParams{MaxAttempts: 3})
	first := e.claim(t, ClaimParams{Lease: 5 * time.Second})[0]
	clock.advance(5 * time.Second)
	got := e.waitStatus(t, job.ID, domain.StatusPending)
	require.Equal(t, 1, got.Attempts)
	require.Equal(t, domain.ErrLeaseExpired.Error(), got.LastError)

	second := e.claim(t, ClaimParams{Lease: 5 * time.Second})
	require.Len(t, second, 1)
	require.Equal(t, 2, second[0].Job.Attempts)
	_, err := e.sys.CompleteJob(ctx, job.ID, first.LeaseToken, json.RawMessage(`"late"`))
	require.ErrorIs(t, err, domain.ErrLeaseLost)
	_, err = e.sys.CompleteJob(ctx, job.ID, second[0].LeaseToken, json.RawMessage(`"rerun"`))
	require.NoError(t, err)
	got = e.get(t, job.ID)
	require.Equal(t, domain.StatusCompleted, got.Status)
	require.Equal(t, `"rerun"`, string(got.Result))
}

func TestExternal_LeaseExpiryFailsWhenAttemptsRunOut(t *testing.T) {
	t.Parallel()
	clock := newManualClock()
	e := startExternal(t, nil, nil, WithClock(clock))
	job := e.submit(t, SubmitParams{MaxAttempts: 2})
	for attempt := 1; attempt <= 2; attempt++ {
		c := e.claim(t, ClaimParams{Lease: 5 * time.Second})
		require.Len(t, c, 1, "attempt %d", attempt)
		require.Equal(t, attempt, c[0].Job.Attempts)
		clock.advance(5 * time.Second)
		if attempt == 1 {
			e.waitStatus(t, job.ID, domain.StatusPending)
		}
	}
	got := e.waitStatus(t, job.ID, domain.StatusFailed)
	require.Equal(t, domain.ErrLeaseExpired.Error(), got.LastError)
	require.Empty(t, e.claim(t, ClaimParams{}))
}

func TestExternal_TimeoutEndsAttempt(t *testing.T) {
	t.Parallel()
	clock := newManualClock()
	e := startExternal(t, nil, nil, WithClock(clock))
	job := e.submit(t, SubmitParams{MaxAttempts: 1, Timeout: 20 * time.Second})
	c := e.claim(t, ClaimParams{Lease: time.Minute})[0]
	_, err := e.sys.Heartbeat(context.Background(), job.ID, c.LeaseToken, nil)
	require.NoError(t, err)
	clock.advance(20 * time.Second)
	got := e.waitStatus(t, job.ID, domain.StatusFailed)
	require.Equal(t, "timeout after 20s", got.LastError)
	_, err = e.sys.Heartbeat(context.Background(), job.ID, c.LeaseToken, nil)
	require.ErrorIs(t, err, domain.ErrLeaseLost)
}

func TestExternal_StopHandsBackWithoutWaiting(t *testing.T) {
	t.Parallel()
	store := memstore.New()
	rec := newFinishRecorder()
	sys, err := New(store, WithLogger(testLogger(t)), WithMetrics(rec), WithExternalTypes("ext"))
	require.NoError(t, err)
	require.NoError(t, sys.Start(context.Background()))
	job, err := sys.Submit(context.Background(), SubmitParams{Type: "ext"})
	require.NoError(t, err)
	claimed, err := sys.ClaimJobs(context.Background(), ClaimParams{Types: []domain.JobType{"ext"}})
	require.NoError(t, err)
	require.Len(t, claimed, 1)
	waiting := make(chan error, 1)
	go func() {
		_, err := sys.ClaimJobs(context.Background(), ClaimParams{Types: []domain.JobType{"ext"}, Wait: time.Minute})
		waiting <- err
	}()
	waitFor(t, func() bool { return claimWaiters(sys) == 1 })

	// No deadline: a stop that waited for the worker would never return.
	stopped := make(chan error, 1)
	go func() { stopped <- sys.Stop(context.Background()) }()
	select {
	case err := <-stopped:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("Stop waited for an external worker")
	}
	require.NoError(t, <-waiting) // ended empty by the stop
	got, err := store.Get(context.Background(), job.ID)
	require.NoError(t, err)
	require.Equal(t, domain.StatusPending, got.Status)
	require.Equal(t, 0, got.Attempts)
	_, err = sys.CompleteJob(context.Background(), job.ID, claimed[0].LeaseToken, nil)
	require.ErrorIs(t, err, domain.ErrNotRunning)

	// The next start runs it again, and the old token holds nothing.
	sys2, err := New(store, WithLogger(testLogger(t)), WithExternalTypes("ext"))
	require.NoError(t, err)
	require.NoError(t, sys2.Start(context.Background()))
	t.Cleanup(func() { require.NoError(t, sys2.Stop(context.Background())) })
	_, err = sys2.CompleteJob(context.Background(), job.ID, claimed[0].LeaseToken, nil)
	require.ErrorIs(t, err, domain.ErrLeaseLost)
	again, err := sys2.ClaimJobs(context.Background(), ClaimParams{Types: []domain.JobType{"ext"}})
	require.NoError(t, err)
	require.Equal(t, []uuid.UUID{job.ID}, claimedIDs(again))
	require.Equal(t, 1, again[0].Job.Attempts)
}

// gatedStore holds back the first write of a running job until gate
// closes, telling held when it waits.
type gatedStore struct {
	*memstore.Store
	once sync.Once
	held chan struct{}
	gate chan struct{}
}

func (s *gatedStore) Update(ctx context.Context, jobs ...*domain.Job) error {
	for _, j := range jobs {
		if j.Status == domain.StatusRunning {
			s.once.Do(func() {
				close(s.held)
				<-s.gate
			})
		}
	}
	return s.Store.Update(ctx, jobs...)
}

func TestExternal_ClaimWhoseCallerLeftHandsJobsBack(t *testing.T) {
	t.Parallel()
	store := &gatedStore{Store: memstore.New(), held: make(chan struct{}), gate: make(chan struct{})}
	e := startExternal(t, store, nil)
	job := e.submit(t, SubmitParams{})

	ctx, cancel := context.WithCancel(context.Background())
	result := make(chan error, 1)
	go func() {
		jobs, err := e.sys.ClaimJobs(ctx, ClaimParams{Types: []domain.JobType{"ext"}})
		if err == nil && len(jobs) > 0 {
			err = errors.New("a claim whose caller left returned jobs")
		}
		result <- err
	}()
	<-store.held // the job is taken, its start being written
	cancel()
	close(store.gate)
	require.ErrorIs(t, <-result, context.Canceled)
	got := e.waitStatus(t, job.ID, domain.StatusPending)
	require.Equal(t, 0, got.Attempts, "handed back, its attempt not counted")
	// Back in the queue, at once.
	again := e.claim(t, ClaimParams{})
	require.Equal(t, []uuid.UUID{job.ID}, claimedIDs(again))
	require.Equal(t, 1, again[0].Job.Attempts)

	// A waiting claim whose caller leaves takes nothing later.
	ctx2, cancel2 := context.WithCancel(context.Background())
	go func() {
		_, err := e.sys.ClaimJobs(ctx2, ClaimParams{Types: []domain.JobType{"ext"}, Wait: time.Minute})
		result <- err
	}()
	waitFor(t, func() bool { return e.waiters() == 1 })
	cancel2()
	require.NoError(t, <-result, "a wait cut short ends empty")
	require.Equal(t, 0, e.waiters())
	later := e.submit(t, SubmitParams{})
	require.Equal(t, []uuid.UUID{later.ID}, claimedIDs(e.claim(t, ClaimParams{})))
}

func TestExternal_CanceledWhileQueuedIsNotClaimed(t *testing.T) {
	t.Parallel()
	e := startExternal(t, nil, nil)
	job := e.submit(t, SubmitParams{})
	kept := e.submit(t, SubmitParams{})
	got, err := e.sys.Cancel(context.Background(), job.ID)
	require.NoError(t, err)
	require.Equal(t, domain.StatusCanceled, got.Status)
	require.Equal(t, []uuid.UUID{kept.ID}, claimedIDs(e.claim(t, ClaimParams{Max: 10})))
}

func TestExternal_ReportOutcomesBatch(t *testing.T) {
	t.Parallel()
	e := startExternal(t, nil, nil)
	for range 4 {
		e.submit(t, SubmitParams{MaxAttempts: 1})
	}
	c := e.claim(t, ClaimParams{Max: 10})
	require.Len(t, c, 4)
	res, err := e.sys.ReportOutcomes(context.Background(), []Outcome{
		{JobID: c[0].Job.ID, LeaseToken: c[0].LeaseToken, Result: json.RawMessage(`[1]`)},
		{JobID: c[1].Job.ID, LeaseToken: c[1].LeaseToken, Failure: &FailParams{Error: "boom"}},
		{JobID: c[2].Job.ID, LeaseToken: "wrong.30000"},
		{JobID: c[3].Job.ID, LeaseToken: c[3].LeaseToken, Failure: &FailParams{}},
	})
	require.NoError(t, err)
	require.Len(t, res, 4)
	require.NoError(t, res[0].Err)
	require.Equal(t, domain.StatusCompleted, res[0].Job.Status)
	require.NoError(t, res[1].Err)
	require.Equal(t, domain.StatusFailed, res[1].Job.Status)
	require.ErrorIs(t, res[2].Err, domain.ErrLeaseLost)
	require.ErrorIs(t, res[3].Err, domain.ErrInvalid)
	require.Equal(t, domain.StatusRunning, e.get(t, c[2].Job.ID).Status)
	require.Equal(t, domain.StatusRunning, e.get(t, c[3].Job.ID).Status)
}

func TestExternal_RestartRecoversRunningJobOnBadger(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	store, err := badgerstore.Open(badgerstore.Options{Dir: dir, Logger: quietLogger()})
	require.NoError(t, err)
	// As a process killed while an external worker ran the job leaves it.
	job := seed(t, store, domain.StatusRunning, 1, 3, func(j *domain.Job) { j.Type = "ext" })
	require.NoError(t, store.Close())

	store, err = badgerstore.Open(badgerstore.Options{Dir: dir, Logger: quietLogger()})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, store.Close()) })
	e := startExternal(t, store, nil)
	got := e.get(t, job.ID)
	require.Equal(t, domain.StatusPending, got.Status)
	require.Equal(t, domain.ErrInterrupted.Error(), got.LastError)
	c := e.claim(t, ClaimParams{})
	require.Equal(t, []uuid.UUID{job.ID}, claimedIDs(c))
	require.Equal(t, 2, c[0].Job.Attempts)
	_, err = e.sys.CompleteJob(context.Background(), job.ID, c[0].LeaseToken, nil)
	require.NoError(t, err)
}

// refusingStore refuses writes of finished jobs while refuse is set.
type refusingStore struct {
	*memstore.Store
	mu     sync.Mutex
	refuse bool
}

func (s *refusingStore) Update(ctx context.Context, jobs ...*domain.Job) error {
	s.mu.Lock()
	refuse := s.refuse
	s.mu.Unlock()
	for _, j := range jobs {
		if refuse && j.Status.IsTerminal() {
			return errors.New("disk on fire")
		}
	}
	return s.Store.Update(ctx, jobs...)
}

func TestExternal_RefusedOutcomeKeepsAttemptRunning(t *testing.T) {
	t.Parallel()
	store := &refusingStore{Store: memstore.New(), refuse: true}
	e := startExternal(t, store, nil)
	job := e.submit(t, SubmitParams{})
	c := e.claim(t, ClaimParams{})[0]
	_, err := e.sys.CompleteJob(context.Background(), job.ID, c.LeaseToken, json.RawMessage(`1`))
	require.ErrorContains(t, err, "disk on fire")
	require.NotErrorIs(t, err, domain.ErrLeaseLost)
	require.Equal(t, domain.StatusRunning, e.get(t, job.ID).Status)
	// The worker reports again once the store takes writes.
	store.mu.Lock()
	store.refuse = false
	store.mu.Unlock()
	_, err = e.sys.Heartbeat(context.Background(), job.ID, c.LeaseToken, nil)
	require.NoError(t, err)
	done, err := e.sys.CompleteJob(context.Background(), job.ID, c.LeaseToken, json.RawMessage(`1`))
	require.NoError(t, err)
	require.Equal(t, domain.StatusCompleted, done.Status)
}

func TestExternal_RetryFallsDueToAWaitingClaim(t *testing.T) {
	t.Parallel()
	clock := newManualClock()
	e := startExternal(t, nil, nil, WithClock(clock))
	job := e.submit(t, SubmitParams{MaxAttempts: 3})
	c := e.claim(t, ClaimParams{})[0]
	got, err := e.sys.FailJob(context.Background(), job.ID, c.LeaseToken, FailParams{Error: "later", RetryIn: 30 * time.Second})
	require.NoError(t, err)
	require.Equal(t, domain.StatusScheduled, got.Status)

	claimed := make(chan []ClaimedJob, 1)
	go func() {
		jobs, err := e.sys.ClaimJobs(context.Background(), ClaimParams{Types: []domain.JobType{"ext"}, Wait: time.Minute})
		require.NoError(t, err)
		claimed <- jobs
	}()
	waitFor(t, func() bool { return e.waiters() == 1 })
	// The scheduler promotes the retry when due; the waiting claim gets it.
	waitFor(t, func() bool { return clock.pendingAt(got.RunAt) })
	clock.advance(30 * time.Second)
	again := <-claimed
	require.Equal(t, []uuid.UUID{job.ID}, claimedIDs(again))
	require.Equal(t, 2, again[0].Job.Attempts)
}
