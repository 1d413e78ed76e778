package actors

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/persistence/badgerstore"
	"github.com/troupe-go/troupe/persistence/memstore"
)

// Flow control cases of the local source alone: what a restart keeps,
// cancels of retries that hold keys, and the bounded per-key state.

func openFlowBadger(t *testing.T, dir string) *badgerstore.Store {
	t.Helper()
	bs, err := badgerstore.Open(badgerstore.Options{Dir: dir, Logger: quietLogger()})
	require.NoError(t, err)
	return bs
}

func startFlowSystem(t *testing.T, store domain.Store, clock *manualClock, probe *flowProbe, backoff time.Duration) *System {
	t.Helper()
	sys, err := New(store, WithLogger(testLogger(t)), WithClock(clock), WithWorkers(2),
		WithRetryBackoff(backoff, backoff, NoJitter))
	require.NoError(t, err)
	probe.register(sys)
	require.NoError(t, sys.Start(context.Background()))
	return sys
}

// A restart keeps the settings, knows which keys of an ordered queue wait
// for a retry, and starts the rate buckets empty.
func TestFlow_RestartKeepsSettingsHoldersAndEmptiesBuckets(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := context.Background()
	probe := newFlowProbe(false)
	bs := openFlowBadger(t, dir)
	clock := newManualClock()
	sys := startFlowSystem(t, bs, clock, probe, time.Hour)
	setSettings(t, sys, "ord", orderedSettings())
	rate := domain.QueueSettings{Rate: &domain.Rate{Count: 1, Per: time.Minute}}
	setSettings(t, sys, "rated", rate)
	jobs := submitFlow(t, sys, flowJob("ord", "k", 1, 1), flowJob("ord", "k", 2, 0))
	env := &flowEnv{nodes: []*System{sys}, store: bs, clock: clock}
	waitFor(t, func() bool { return status(t, env, jobs[0].ID) == domain.StatusScheduled })
	waitFor(t, func() bool { return waitingFor(t, sys, jobs[1].ID) == domain.WaitKeyOrder })
	require.NoError(t, sys.Stop(ctx))
	require.NoError(t, bs.Close())

	bs = openFlowBadger(t, dir)
	t.Cleanup(func() { _ = bs.Close() })
	clock = newManualClock()
	sys = startFlowSystem(t, bs, clock, probe, time.Hour)
	t.Cleanup(func() { require.NoError(t, sys.Stop(context.Background())) })
	env = &flowEnv{nodes: []*System{sys}, store: bs, clock: clock}
	info, err := sys.Queue(ctx, "ord")
	require.NoError(t, err)
	require.True(t, orderedSettings().Equal(info.Settings))
	info, err = sys.Queue(ctx, "rated")
	require.NoError(t, err)
	require.True(t, rate.Equal(info.Settings))

	// The retry still holds its key after the restart.
	require.Equal(t, domain.StatusScheduled, status(t, env, jobs[0].ID))
	require.Equal(t, domain.WaitKeyOrder, waitingFor(t, sys, jobs[1].ID))
	require.Equal(t, 1, waiting(t, sys, "ord", domain.WaitKeyOrder))

	// The bucket is empty: the first job waits for a token.
	rated := submitFlow(t, sys, flowJob("rated", "", 1, 0))[0]
	waitFor(t, func() bool { return waitingFor(t, sys, rated.ID) == domain.WaitQueueRate })
	clock.advance(time.Minute)
	waitFor(t, func() bool { return status(t, env, rated.ID) == domain.StatusCompleted })

	// The retry falls due, runs, and then the key's next job.
	waitFor(t, func() bool {
		clock.advance(10 * time.Minute)
		return status(t, env, jobs[1].ID) == domain.StatusCompleted
	})
	require.Equal(t, []string{"1#1", "1#2", "2#1"}, keyStarts(probe.startList(), "k"))
}

// A retry canceled while it waits frees its key for the next job.
func TestFlow_CancelOfAWaitingRetryFreesItsKey(t *testing.T) {
	t.Parallel()
	probe := newFlowProbe(false)
	store := memstore.New()
	clock := newManualClock()
	sys := startFlowSystem(t, store, clock, probe, time.Hour)
	t.Cleanup(func() { require.NoError(t, sys.Stop(context.Background())) })
	env := &flowEnv{nodes: []*System{sys}, store: store, clock: clock}
	setSettings(t, sys, "ord", orderedSettings())
	jobs := submitFlow(t, sys, flowJob("ord", "k", 1, 1), flowJob("ord", "k", 2, 0))
	waitFor(t, func() bool { return status(t, env, jobs[0].ID) == domain.StatusScheduled })
	waitFor(t, func() bool { return waitingFor(t, sys, jobs[1].ID) == domain.WaitKeyOrder })
	_, err := sys.Cancel(context.Background(), jobs[0].ID)
	require.NoError(t, err)
	waitFor(t, func() bool { return status(t, env, jobs[1].ID) == domain.StatusCompleted })
	require.Equal(t, []string{"1#1", "2#1"}, keyStarts(probe.startList(), "k"))
}

// A retry due now (no backoff) goes first in its ordered key, before the
// key's next job, and a canceled job queued in a key is skipped.
func TestFlow_RetryDueNowGoesFirst(t *testing.T) {
	t.Parallel()
	probe := newFlowProbe(false)
	store := memstore.New()
	clock := newManualClock()
	sys := startFlowSystem(t, store, clock, probe, time.Hour)
	t.Cleanup(func() { require.NoError(t, sys.Stop(context.Background())) })
	env := &flowEnv{nodes: []*System{sys}, store: store, clock: clock}
	setSettings(t, sys, "ord", orderedSettings())
	_, err := sys.PauseQueue(context.Background(), "ord")
	require.NoError(t, err)
	retried := flowJob("ord", "k", 1, 2)
	retried.Payload = []byte(`{"key":"k","n":1,"fail":2,"retryNow":true}`)
	jobs := submitFlow(t, sys, retried, flowJob("ord", "k", 2, 0), flowJob("ord", "k", 3, 0))
	_, err = sys.Cancel(context.Background(), jobs[1].ID)
	require.NoError(t, err)
	_, err = sys.ResumeQueue(context.Background(), "ord")
	require.NoError(t, err)
	waitAllDone(t, env, "ord", 3)
	require.Equal(t, []string{"1#1", "1#2", "1#3", "3#1"}, keyStarts(probe.startList(), "k"))
}

// Changing the settings sorts the waiting jobs again: an ordered key takes
// its jobs in submission order, whatever their priority, and without the
// order the priority counts again.
func TestFlow_SettingsChangeSortsWaitingJobsAgain(t *testing.T) {
	t.Parallel()
	for _, h := range flowHarnesses[:2] {
		t.Run(h.name, func(t *testing.T) {
			t.Parallel()
			probe := newFlowProbe(false)
			env := h.start(t, 1, probe.register)
			sys := env.sys()
			ctx := context.Background()
			submitPaused := func(queue string) {
				_, err := sys.PauseQueue(ctx, queue)
				require.NoError(t, err)
				late, early := flowJob(queue, "k", 1, 0), flowJob(queue, "k", 2, 0)
				late.Priority, early.Priority = 9, 1
				submitFlow(t, sys, late, early)
			}
			submitPaused("became-ordered")
			setSettings(t, sys, "became-ordered", orderedSettings())
			setSettings(t, sys, "was-ordered", orderedSettings())
			submitPaused("was-ordered")
			setSettings(t, sys, "was-ordered", domain.QueueSettings{})
			for _, q := range []string{"became-ordered", "was-ordered"} {
				_, err := sys.ResumeQueue(ctx, q)
				require.NoError(t, err)
				waitAllDone(t, env, q, 2)
			}
			starts := probe.startList()
			require.Equal(t, 1, starts[0].n, "ordered: submission order")
			require.Equal(t, 2, starts[2].n, "plain: priority order")
		})
	}
}

func flowKeyCount(t *testing.T, sys *System, queue string) int {
	t.Helper()
	res, err := sys.core.actors.Root.RequestFuture(sys.core.dispatcher, &countFlowKeys{queue: queue}, time.Minute).Result()
	require.NoError(t, err)
	return res.(int)
}

// The dispatcher forgets a key once it holds nothing: no job waiting or
// running, a full bucket, no retry.
func TestFlow_KeyStateIsForgotten(t *testing.T) {
	t.Parallel()
	probe := newFlowProbe(false)
	store := memstore.New()
	clock := newManualClock()
	sys := startFlowSystem(t, store, clock, probe, time.Hour)
	t.Cleanup(func() { require.NoError(t, sys.Stop(context.Background())) })
	env := &flowEnv{nodes: []*System{sys}, store: store, clock: clock}
	setSettings(t, sys, "limited", domain.QueueSettings{PerKey: &domain.KeyLimits{Limit: 1}})
	setSettings(t, sys, "rated", domain.QueueSettings{PerKey: &domain.KeyLimits{Rate: &domain.Rate{Count: 1, Per: time.Second}}})
	round := func(queue string, from int) {
		var ps []SubmitParams
		for i := range 200 {
			ps = append(ps, flowJob(queue, fmt.Sprintf("key-%d", from+i), i, 0))
		}
		submitFlow(t, sys, ps...)
	}
	round("limited", 0)
	waitAllDone(t, env, "limited", 200)
	// A job is stored done before its actor passivates, which is when the
	// dispatcher lets go of its key.
	waitFor(t, func() bool { return flowKeyCount(t, sys, "limited") == 0 })

	// A key whose bucket is not full yet is kept until it refilled, and
	// then forgotten as new keys come.
	round("rated", 0)
	waitFor(t, func() bool { return probe.started() == 400 })
	// Every attempt ended, so the round's keys are idle: only their
	// buckets keep them.
	waitFor(t, func() bool {
		page, err := store.List(context.Background(), domain.Filter{Queue: "rated", Statuses: []domain.Status{domain.StatusCompleted}, Limit: 1})
		require.NoError(t, err)
		return page.Total == 200
	})
	clock.advance(time.Second)
	round("rated", 200)
	waitFor(t, func() bool { return probe.started() == 600 })
	require.LessOrEqual(t, flowKeyCount(t, sys, "rated"), 256)
}

// A key's bucket holds back only that key's jobs, until the clock brings
// its next token.
func TestFlow_KeyRate(t *testing.T) {
	t.Parallel()
	probe := newFlowProbe(false)
	store := memstore.New()
	clock := newManualClock()
	sys := startFlowSystem(t, store, clock, probe, time.Hour)
	t.Cleanup(func() { require.NoError(t, sys.Stop(context.Background())) })
	setSettings(t, sys, "kr", domain.QueueSettings{PerKey: &domain.KeyLimits{Rate: &domain.Rate{Count: 1, Per: time.Second}}})
	jobs := submitFlow(t, sys, flowJob("kr", "a", 1, 0), flowJob("kr", "a", 2, 0), flowJob("kr", "a", 3, 0),
		flowJob("kr", "b", 1, 0), flowJob("kr", "", 1, 0))
	waitFor(t, func() bool { return probe.started() == 3 })
	waitFor(t, func() bool { return waiting(t, sys, "kr", domain.WaitKeyRate) == 2 })
	require.Equal(t, domain.WaitKeyRate, waitingFor(t, sys, jobs[1].ID))
	clock.advance(time.Second)
	waitFor(t, func() bool { return probe.started() == 4 })
	waitFor(t, func() bool { return waiting(t, sys, "kr", domain.WaitKeyRate) == 1 })
	clock.advance(time.Second)
	waitFor(t, func() bool { return probe.started() == 5 })
	require.Equal(t, []string{"1#1", "2#1", "3#1"}, keyStarts(probe.startList(), "a"))
}

// A claim waiting for jobs of a queue whose bucket is empty gets one when
// the bucket's next token comes.
func TestFlow_WaitingClaimGetsTheNextToken(t *testing.T) {
	t.Parallel()
	clock := newManualClock()
	ext := startExternal(t, nil, nil, WithClock(clock))
	ctx := context.Background()
	setSettings(t, ext.sys, "rated", domain.QueueSettings{Rate: &domain.Rate{Count: 1, Per: time.Second}})
	for range 3 {
		ext.submit(t, SubmitParams{Queue: "rated"})
	}
	require.Len(t, ext.claim(t, ClaimParams{Max: 5}), 1)
	require.Equal(t, 2, waiting(t, ext.sys, "rated", domain.WaitQueueRate))
	got := make(chan []ClaimedJob, 1)
	go func() {
		jobs, err := ext.sys.ClaimJobs(ctx, ClaimParams{Types: []domain.JobType{"ext"}, Max: 5, Wait: time.Minute})
		if err != nil {
			jobs = nil
		}
		got <- jobs
	}()
	waitFor(t, func() bool {
		n, err := ext.sys.core.actors.Root.RequestFuture(ext.sys.core.dispatcher, &countWaiters{}, time.Minute).Result()
		require.NoError(t, err)
		return n.(int) == 1
	})
	clock.advance(time.Second)
	require.Len(t, <-got, 1)
}
