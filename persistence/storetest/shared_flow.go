package storetest

import (
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
)

// flowJob returns a ready job of queue with key (none when empty), created
// at createdAt.
func flowJob(t *testing.T, queue, key string, createdAt time.Time) *domain.Job {
	t.Helper()
	j := queuedJob(t, "noop", 3, createdAt)
	j.Queue, j.Key = queue, key
	return j
}

// flowJobs returns n ready jobs of queue with key, created one a
// microsecond apart from createdAt, in that order.
func flowJobs(t *testing.T, queue, key string, n int, createdAt time.Time) []*domain.Job {
	t.Helper()
	out := make([]*domain.Job, n)
	for i := range out {
		out[i] = flowJob(t, queue, key, createdAt.Add(time.Duration(i)*time.Microsecond))
	}
	return out
}

// setFlow sets a queue's settings through q, failing on an error.
func setFlow(t *testing.T, q SharedStore, queue string, s domain.QueueSettings) {
	t.Helper()
	require.NoError(t, s.Validate())
	require.NoError(t, q.SetQueueSettings(t.Context(), queue, s))
}

// createMany stores jobs in batches.
func createMany(t *testing.T, q SharedStore, jobs []*domain.Job) {
	t.Helper()
	for start := 0; start < len(jobs); start += 1000 {
		require.NoError(t, q.Create(t.Context(), jobs[start:min(start+1000, len(jobs))]...))
	}
}

// finish records the end of a claimed job on node: completed.
func finish(t *testing.T, q SharedStore, node string, j *domain.Job) {
	t.Helper()
	require.NoError(t, j.Complete(time.Now()))
	require.NoError(t, q.UpdateOwned(t.Context(), node, j))
}

// keysOf counts jobs by key.
func keysOf(jobs []*domain.Job) map[string]int {
	out := map[string]int{}
	for _, j := range jobs {
		out[j.Key]++
	}
	return out
}

func testSharedFlow(t *testing.T, newQueue func(t *testing.T) OpenNode) {
	t.Run("KeysAreStoredAndFiltered", func(t *testing.T) {
		t.Parallel()
		q := newQueue(t)(t)
		a, b, none := flowJob(t, "default", "cust-1", at(0)), flowJob(t, "default", "cust-2", at(1)), flowJob(t, "default", "", at(2))
		require.NoError(t, q.Create(t.Context(), a, b, none))
		requireStored(t, q, a)
		requireStored(t, q, none)
		page, err := q.List(t.Context(), domain.Filter{Key: "cust-1"})
		require.NoError(t, err)
		require.Equal(t, []uuid.UUID{a.ID}, ids(page.Jobs))
		var scanned []*domain.Job
		require.NoError(t, q.Scan(t.Context(), domain.Filter{Key: "cust-2"}, func(j *domain.Job) error {
			scanned = append(scanned, j)
			return nil
		}))
		require.Equal(t, []uuid.UUID{b.ID}, ids(scanned))
		claimed := sharedClaim(t, q, "n1", domain.ClaimRequest{Limit: 10})
		require.Len(t, claimed, 3)
		require.Equal(t, map[string]int{"cust-1": 1, "cust-2": 1, "": 1}, keysOf(claimed), "the claim returns keys")
		b2 := claimed[1].Clone()
		b2.Key = "cust-3"
		require.NoError(t, q.UpdateOwned(t.Context(), "n1", b2))
		requireStored(t, q, b2)
	})

	t.Run("SettingsAreDurableAndListed", func(t *testing.T) {
		t.Parallel()
		open := newQueue(t)
		q := open(t)
		s := domain.QueueSettings{
			Limit: 10, Rate: &domain.Rate{Count: 20, Per: time.Second, Burst: 30},
			PerKey:  &domain.KeyLimits{Limit: 1, Rate: &domain.Rate{Count: 5, Per: time.Minute}},
			Ordered: true, Fair: true,
		}
		setFlow(t, q, "api", s)
		require.NoError(t, q.SetQueuePaused(t.Context(), "api", true))
		other := open(t)
		queues, err := other.Queues(t.Context())
		require.NoError(t, err)
		require.Len(t, queues, 1)
		require.Equal(t, "api", queues[0].Name)
		require.True(t, queues[0].Paused, "settings leave the pause alone")
		require.True(t, s.Equal(queues[0].Settings), "got %+v", queues[0].Settings)

		setFlow(t, other, "api", domain.QueueSettings{Limit: 3})
		queues, err = q.Queues(t.Context())
		require.NoError(t, err)
		require.Equal(t, domain.QueueSettings{Limit: 3}, queues[0].Settings, "PUT replaces every setting")
		require.True(t, queues[0].Paused)

		require.NoError(t, q.SetQueuePaused(t.Context(), "api", false))
		setFlow(t, q, "api", domain.QueueSettings{})
		queues, err = q.Queues(t.Context())
		require.NoError(t, err)
		require.Empty(t, queues, "a queue without jobs, pause or settings is not listed")
	})

	t.Run("LimitIsExactAcrossNodes", func(t *testing.T) {
		t.Parallel()
		open := newQueue(t)
		nodes := open.nodes(t, 3)
		const limit, total = 3, 90
		setFlow(t, nodes[0], "lim", domain.QueueSettings{Limit: limit})
		createMany(t, nodes[0], flowJobs(t, "lim", "", total, at(0)))
		// Other jobs, without settings, claimed alongside.
		createMany(t, nodes[0], flowJobs(t, "free", "", 30, at(0)))

		var running, peak, done, seen atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		// A reader counts the running jobs as the store sees them, in
		// snapshots: none may show more than the limit.
		monitor := make(chan struct{})
		go func() {
			defer close(monitor)
			for done.Load() < total {
				queues, err := nodes[2].Queues(t.Context())
				if err != nil {
					errs <- err
					return
				}
				for _, qi := range queues {
					if qi.Name == "lim" && int64(qi.Running) > seen.Load() {
						seen.Store(int64(qi.Running))
					}
				}
			}
		}()
		for n, q := range nodes {
			for w := range 3 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					node := []string{"a", "b", "c"}[n]
					deadline := time.Now().Add(sharedWaitTimeout)
					for done.Load() < total && time.Now().Before(deadline) {
						got, err := q.ClaimJobs(t.Context(), node, domain.ClaimRequest{Limit: 1 + (w+n)%3, Lease: liveLease})
						if err != nil {
							errs <- err
							return
						}
						for _, j := range got {
							if j.Queue != "lim" {
								continue
							}
							r := running.Add(1)
							for p := peak.Load(); r > p && !peak.CompareAndSwap(p, r); p = peak.Load() {
							}
						}
						time.Sleep(3 * time.Millisecond)
						for _, j := range got {
							if j.Queue == "lim" {
								running.Add(-1)
								done.Add(1)
							}
							if err := j.Complete(time.Now()); err != nil {
								errs <- err
								return
							}
							if err := q.UpdateOwned(t.Context(), node, j); err != nil {
								errs <- err
								return
							}
						}
						if len(got) == 0 {
							time.Sleep(time.Millisecond)
						}
					}
				}()
			}
		}
		wg.Wait()
		<-monitor
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		require.Equal(t, int64(total), done.Load(), "every job of the limited queue ran")
		require.LessOrEqual(t, peak.Load(), int64(limit), "never more running than the limit")
		require.LessOrEqual(t, seen.Load(), int64(limit), "the store never ran more than the limit")
		require.Positive(t, peak.Load())
	})

	t.Run("LimitCountsRunningJobsOfEveryNode", func(t *testing.T) {
		t.Parallel()
		open := newQueue(t)
		a, b := open(t), open(t)
		setFlow(t, a, "lim", domain.QueueSettings{Limit: 2})
		createMany(t, a, flowJobs(t, "lim", "", 5, at(0)))
		require.Len(t, sharedClaim(t, a, "a", domain.ClaimRequest{Limit: 1}), 1)
		got := sharedClaim(t, b, "b", domain.ClaimRequest{Limit: 10})
		require.Len(t, got, 1, "one more up to the limit")
		require.Empty(t, sharedClaim(t, a, "a", domain.ClaimRequest{Limit: 10}))
		finish(t, b, "b", got[0])
		require.Len(t, sharedClaim(t, a, "a", domain.ClaimRequest{Limit: 10}), 1, "an end frees a place")

		setFlow(t, a, "lim", domain.QueueSettings{Limit: 4})
		require.Len(t, sharedClaim(t, b, "b", domain.ClaimRequest{Limit: 10}), 2, "a new limit holds at once")
	})

	t.Run("Rate", func(t *testing.T) {
		t.Parallel()
		open := newQueue(t)
		nodes := open.nodes(t, 3)
		const count, burst, total = 5, 5, 200
		per := 200 * time.Millisecond
		setFlow(t, nodes[0], "rate", domain.QueueSettings{Rate: &domain.Rate{Count: count, Per: per, Burst: burst}})
		createMany(t, nodes[0], flowJobs(t, "rate", "", total, at(0)))

		start := time.Now()
		first := sharedClaim(t, nodes[1], "b", domain.ClaimRequest{Limit: 50})
		require.Len(t, first, burst, "a full bucket lets a burst start")
		var started atomic.Int64
		started.Add(int64(len(first)))
		var wg sync.WaitGroup
		for n, q := range nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Since(start) < time.Second {
					got, err := q.ClaimJobs(t.Context(), "node", domain.ClaimRequest{Limit: 3 + n, Lease: liveLease})
					if err != nil {
						t.Error(err)
						return
					}
					started.Add(int64(len(got)))
					time.Sleep(5 * time.Millisecond)
				}
			}()
		}
		wg.Wait()
		elapsed := time.Since(start)
		allowed := burst + int64(float64(count)*float64(elapsed)/float64(per)) + 1
		require.LessOrEqual(t, started.Load(), allowed, "never more starts than the bucket allows (in %s)", elapsed)
		require.Greater(t, started.Load(), int64(burst), "the bucket refills")

		wait, err := nodes[0].FlowWakeAfter(t.Context())
		require.NoError(t, err)
		require.LessOrEqual(t, wait, per, "the next token is at most a period away")
	})

	t.Run("RateBucketIsKeptWhenTheRateStays", func(t *testing.T) {
		t.Parallel()
		q := newQueue(t)(t)
		rate := &domain.Rate{Count: 2, Per: time.Hour}
		setFlow(t, q, "r", domain.QueueSettings{Rate: rate})
		createMany(t, q, flowJobs(t, "r", "", 10, at(0)))
		require.Len(t, sharedClaim(t, q, "n", domain.ClaimRequest{Limit: 10}), 2)
		require.Empty(t, sharedClaim(t, q, "n", domain.ClaimRequest{Limit: 10}))
		wait, err := q.FlowWakeAfter(t.Context())
		require.NoError(t, err)
		require.Greater(t, wait, 20*time.Minute, "a token is half an hour away")
		require.LessOrEqual(t, wait, 30*time.Minute)

		setFlow(t, q, "r", domain.QueueSettings{Rate: rate, Limit: 100})
		require.Empty(t, sharedClaim(t, q, "n", domain.ClaimRequest{Limit: 10}), "the same rate keeps its bucket")
		setFlow(t, q, "r", domain.QueueSettings{Rate: &domain.Rate{Count: 3, Per: time.Hour}})
		require.Len(t, sharedClaim(t, q, "n", domain.ClaimRequest{Limit: 10}), 3, "a new rate starts full")

		other := newQueue(t)(t)
		wait, err = other.FlowWakeAfter(t.Context())
		require.NoError(t, err)
		require.Zero(t, wait, "no job waits for a rate")
	})

	t.Run("PerKeyLimit", func(t *testing.T) {
		t.Parallel()
		open := newQueue(t)
		a, b := open(t), open(t)
		setFlow(t, a, "k", domain.QueueSettings{PerKey: &domain.KeyLimits{Limit: 2}})
		var jobs []*domain.Job
		jobs = append(jobs, flowJobs(t, "k", "x", 5, at(0))...)
		jobs = append(jobs, flowJobs(t, "k", "y", 5, at(1))...)
		jobs = append(jobs, flowJobs(t, "k", "", 3, at(2))...)
		createMany(t, a, jobs)
		got := sharedClaim(t, b, "b", domain.ClaimRequest{Limit: 100})
		require.Equal(t, map[string]int{"x": 2, "y": 2, "": 3}, keysOf(got), "keyless jobs ignore the per-key limit")
		require.Empty(t, sharedClaim(t, a, "a", domain.ClaimRequest{Limit: 100}))
		for _, j := range got {
			if j.Key == "x" {
				finish(t, b, "b", j)
				break
			}
		}
		again := sharedClaim(t, a, "a", domain.ClaimRequest{Limit: 100})
		require.Equal(t, map[string]int{"x": 1}, keysOf(again))
	})

	t.Run("PerKeyLimitIsExactAcrossNodes", func(t *testing.T) {
		t.Parallel()
		open := newQueue(t)
		nodes := open.nodes(t, 3)
		setFlow(t, nodes[0], "k", domain.QueueSettings{PerKey: &domain.KeyLimits{Limit: 1}, Ordered: true})
		var jobs []*domain.Job
		for k := range 4 {
			jobs = append(jobs, flowJobs(t, "k", string(rune('a'+k)), 15, at(k))...)
		}
		createMany(t, nodes[0], jobs)
		var mu sync.Mutex
		runningByKey := map[string]int{}
		startedByKey := map[string][]uuid.UUID{}
		overlap := false
		var done atomic.Int64
		var wg sync.WaitGroup
		for n, q := range nodes {
			for w := range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					node := []string{"a", "b", "c"}[n]
					deadline := time.Now().Add(sharedWaitTimeout)
					for done.Load() < int64(len(jobs)) && time.Now().Before(deadline) {
						got, err := q.ClaimJobs(t.Context(), node, domain.ClaimRequest{Limit: 1 + w, Lease: liveLease})
						if err != nil {
							t.Error(err)
							return
						}
						mu.Lock()
						for _, j := range got {
							runningByKey[j.Key]++
							overlap = overlap || runningByKey[j.Key] > 1
							startedByKey[j.Key] = append(startedByKey[j.Key], j.ID)
						}
						mu.Unlock()
						time.Sleep(time.Millisecond)
						for _, j := range got {
							mu.Lock()
							runningByKey[j.Key]--
							mu.Unlock()
							done.Add(1)
							if err := j.Complete(time.Now()); err != nil {
								t.Error(err)
								return
							}
							if err := q.UpdateOwned(t.Context(), node, j); err != nil {
								t.Error(err)
								return
							}
						}
					}
				}()
			}
		}
		wg.Wait()
		require.Equal(t, int64(len(jobs)), done.Load())
		require.False(t, overlap, "two jobs of a key ran at once")
		for k := range 4 {
			key := string(rune('a' + k))
			require.Equal(t, ids(jobs[k*15:(k+1)*15]), startedByKey[key], "key %s started in submission order", key)
		}
	})

	t.Run("PerKeyRate", func(t *testing.T) {
		t.Parallel()
		q := newQueue(t)(t)
		setFlow(t, q, "kr", domain.QueueSettings{PerKey: &domain.KeyLimits{Rate: &domain.Rate{Count: 1, Per: time.Hour, Burst: 2}}})
		var jobs []*domain.Job
		jobs = append(jobs, flowJobs(t, "kr", "x", 4, at(0))...)
		jobs = append(jobs, flowJobs(t, "kr", "y", 1, at(1))...)
		createMany(t, q, jobs)
		got := sharedClaim(t, q, "n", domain.ClaimRequest{Limit: 10})
		require.Equal(t, map[string]int{"x": 2, "y": 1}, keysOf(got))
		for _, j := range got {
			finish(t, q, "n", j)
		}
		require.Empty(t, sharedClaim(t, q, "n", domain.ClaimRequest{Limit: 10}), "x's bucket is empty though nothing runs")
		reasons, err := q.FlowWaiting(t.Context(), ids(jobs))
		require.NoError(t, err)
		require.Equal(t, map[uuid.UUID]domain.WaitReason{jobs[2].ID: domain.WaitKeyRate, jobs[3].ID: domain.WaitKeyRate}, reasons)
		wait, err := q.FlowWakeAfter(t.Context())
		require.NoError(t, err)
		require.Greater(t, wait, 30*time.Minute, "x's next token is an hour away")
	})

	t.Run("OrderedUnderRetries", func(t *testing.T) {
		t.Parallel()
		open := newQueue(t)
		q, api := open(t), open(t)
		setFlow(t, api, "o", domain.QueueSettings{PerKey: &domain.KeyLimits{Limit: 1}, Ordered: true})
		k := flowJobs(t, "o", "k", 3, at(0))
		for _, j := range k {
			j.MaxAttempts = 2
		}
		k[2].Priority = 1 // priority does not reorder a key
		createMany(t, api, k)

		got := sharedClaim(t, q, "n", domain.ClaimRequest{Limit: 10})
		require.Equal(t, []uuid.UUID{k[0].ID}, ids(got), "the key's head only")
		reasons, err := api.FlowWaiting(t.Context(), ids(k))
		require.NoError(t, err)
		require.Equal(t, domain.WaitKeyLimit, reasons[k[1].ID])

		// The head fails and waits for its retry: the key waits with it.
		first := got[0]
		require.NoError(t, first.Retry(errors.New("boom"), later(), time.Now()))
		require.NoError(t, q.UpdateOwned(t.Context(), "n", first))
		require.Empty(t, sharedClaim(t, q, "n", domain.ClaimRequest{Limit: 10}), "a retrying job holds its key")
		reasons, err = api.FlowWaiting(t.Context(), ids(k))
		require.NoError(t, err)
		require.Equal(t, map[uuid.UUID]domain.WaitReason{k[1].ID: domain.WaitKeyOrder, k[2].ID: domain.WaitKeyOrder}, reasons)
		counts, err := api.WaitingCounts(t.Context())
		require.NoError(t, err)
		require.Equal(t, []domain.WaitingCount{{Queue: "o", Reason: domain.WaitKeyOrder, Count: 2}}, counts)

		// Its retry falls due: it goes first again.
		due, err := api.Get(t.Context(), first.ID)
		require.NoError(t, err)
		due.Status, due.RunAt = domain.StatusPending, domain.Timestamp(at(50))
		require.NoError(t, api.Update(t.Context(), due))
		got = sharedClaim(t, q, "n", domain.ClaimRequest{Limit: 10})
		require.Equal(t, []uuid.UUID{first.ID}, ids(got), "the job that started goes before the key's later jobs")
		require.Equal(t, 2, got[0].Attempts)

		// Its last attempt fails: the key moves on.
		require.NoError(t, got[0].Fail(errors.New("boom again"), time.Now()))
		require.NoError(t, q.UpdateOwned(t.Context(), "n", got[0]))
		got = sharedClaim(t, q, "n", domain.ClaimRequest{Limit: 10, Lease: shortLease})
		require.Equal(t, []uuid.UUID{k[1].ID}, ids(got), "a failure does not block its key for ever")

		// Its node dies: the rescue frees the key's slot, for the same job.
		rescueAtLeast(t, api, 1)
		got = sharedClaim(t, q, "n", domain.ClaimRequest{Limit: 10})
		require.Equal(t, []uuid.UUID{k[1].ID}, ids(got), "the rescued job is still the key's head")
		finish(t, q, "n", got[0])
		got = sharedClaim(t, q, "n", domain.ClaimRequest{Limit: 10})
		require.Equal(t, []uuid.UUID{k[2].ID}, ids(got))
	})

	t.Run("CancelOfARetryingJobReleasesItsKey", func(t *testing.T) {
		t.Parallel()
		q := newQueue(t)(t)
		setFlow(t, q, "o", domain.QueueSettings{PerKey: &domain.KeyLimits{Limit: 1}, Ordered: true})
		k := flowJobs(t, "o", "k", 2, at(0))
		createMany(t, q, k)
		got := sharedClaim(t, q, "n", domain.ClaimRequest{Limit: 10})
		require.NoError(t, got[0].Retry(errors.New("boom"), later(), time.Now()))
		require.NoError(t, q.UpdateOwned(t.Context(), "n", got[0]))
		require.Empty(t, sharedClaim(t, q, "n", domain.ClaimRequest{Limit: 10}))
		_, err := q.CancelJob(t.Context(), k[0].ID)
		require.NoError(t, err)
		require.Equal(t, []uuid.UUID{k[1].ID}, ids(sharedClaim(t, q, "n", domain.ClaimRequest{Limit: 10})))
	})

	t.Run("Fair", func(t *testing.T) {
		t.Parallel()
		q := newQueue(t)(t)
		setFlow(t, q, "f", domain.QueueSettings{Fair: true})
		big := flowJobs(t, "f", "A", 10_000, at(0))
		small := flowJobs(t, "f", "B", 10, at(100))
		createMany(t, q, big)
		createMany(t, q, small)
		seen := 0
		smallDone := 0
		for seen < 40 && smallDone < len(small) {
			got := sharedClaim(t, q, "n", domain.ClaimRequest{Limit: 1 + rand.IntN(4)})
			require.NotEmpty(t, got)
			for _, j := range got {
				seen++
				if j.Key == "B" {
					smallDone++
				}
				finish(t, q, "n", j)
			}
		}
		require.Equal(t, len(small), smallDone, "the small key's jobs all start within the first 40 (%d seen)", seen)
	})

	t.Run("FairIncludesKeylessJobsAndKeepsPriorityWithinAKey", func(t *testing.T) {
		t.Parallel()
		q := newQueue(t)(t)
		setFlow(t, q, "f", domain.QueueSettings{Fair: true})
		a := flowJobs(t, "f", "A", 3, at(0))
		a[2].Priority = 1
		none := flowJobs(t, "f", "", 3, at(1))
		createMany(t, q, append(a, none...))
		got := sharedClaim(t, q, "n", domain.ClaimRequest{Limit: 2})
		require.Equal(t, map[string]int{"A": 1, "": 1}, keysOf(got), "one job of each key per turn")
		for _, j := range got {
			if j.Key == "A" {
				require.Equal(t, a[2].ID, j.ID, "by priority within a key")
			}
		}
		require.Len(t, sharedClaim(t, q, "n", domain.ClaimRequest{Limit: 10}), 4)
	})

	t.Run("WaitingReasons", func(t *testing.T) {
		t.Parallel()
		q := newQueue(t)(t)
		ctx := t.Context()
		hour := time.Hour
		setFlow(t, q, "ql", domain.QueueSettings{Limit: 1, Rate: &domain.Rate{Count: 1, Per: hour}})
		setFlow(t, q, "qr", domain.QueueSettings{Rate: &domain.Rate{Count: 1, Per: hour}, PerKey: &domain.KeyLimits{Limit: 1}})
		setFlow(t, q, "kl", domain.QueueSettings{PerKey: &domain.KeyLimits{Limit: 1}})
		setFlow(t, q, "ko", domain.QueueSettings{PerKey: &domain.KeyLimits{Limit: 1}, Ordered: true})
		setFlow(t, q, "kr", domain.QueueSettings{PerKey: &domain.KeyLimits{Limit: 1, Rate: &domain.Rate{Count: 1, Per: hour}}})
		ql, qr := flowJobs(t, "ql", "", 2, at(0)), flowJobs(t, "qr", "x", 2, at(0))
		kl, ko, kr := flowJobs(t, "kl", "x", 2, at(0)), flowJobs(t, "ko", "x", 2, at(0)), flowJobs(t, "kr", "x", 2, at(0))
		plain := flowJobs(t, "plain", "x", 1, at(0))
		notDue := flowJob(t, "kl", "x", at(1))
		notDue.ScheduleAt(later(), time.Now())
		all := [][]*domain.Job{ql, qr, kl, ko, kr, plain, {notDue}}
		for _, jobs := range all {
			createMany(t, q, jobs)
		}
		reasons, err := q.FlowWaiting(ctx, ids(ko))
		require.NoError(t, err)
		require.Equal(t, map[uuid.UUID]domain.WaitReason{ko[1].ID: domain.WaitKeyOrder}, reasons, "not its key's head")

		// Start the first job of each queue; kr's completes, its bucket empty.
		for _, name := range []string{"ql", "qr", "kl", "ko", "kr", "plain"} {
			require.Len(t, sharedClaim(t, q, "n", domain.ClaimRequest{Limit: 1, Queues: []string{name}}), 1, name)
		}
		got := sharedClaim(t, q, "n", domain.ClaimRequest{Limit: 10})
		require.Empty(t, got)
		claimedKr, err := q.Get(ctx, kr[0].ID)
		require.NoError(t, err)
		finish(t, q, "n", claimedKr)

		var every []*domain.Job
		for _, jobs := range all {
			every = append(every, jobs...)
		}
		reasons, err = q.FlowWaiting(ctx, ids(every))
		require.NoError(t, err)
		require.Equal(t, map[uuid.UUID]domain.WaitReason{
			ql[1].ID: domain.WaitQueueLimit, // limit before rate
			qr[1].ID: domain.WaitQueueRate,  // rate before the key's limit
			kl[1].ID: domain.WaitKeyLimit,
			ko[1].ID: domain.WaitKeyLimit, // its key runs a job
			kr[1].ID: domain.WaitKeyRate,
		}, reasons, "running, scheduled and unlimited jobs wait for nothing")
		counts, err := q.WaitingCounts(ctx)
		require.NoError(t, err)
		require.Equal(t, []domain.WaitingCount{
			{Queue: "kl", Reason: domain.WaitKeyLimit, Count: 1},
			{Queue: "ko", Reason: domain.WaitKeyLimit, Count: 1},
			{Queue: "kr", Reason: domain.WaitKeyRate, Count: 1},
			{Queue: "ql", Reason: domain.WaitQueueLimit, Count: 1},
			{Queue: "qr", Reason: domain.WaitQueueRate, Count: 1},
		}, counts)

		none, err := q.FlowWaiting(ctx, nil)
		require.NoError(t, err)
		require.Empty(t, none)
	})

	t.Run("Filters", func(t *testing.T) {
		t.Parallel()
		q := newQueue(t)(t)
		setFlow(t, q, "lim", domain.QueueSettings{Limit: 5})
		setFlow(t, q, "fair", domain.QueueSettings{Fair: true, PerKey: &domain.KeyLimits{Limit: 1}})
		lim := flowJobs(t, "lim", "", 6, at(0))
		lim[0].Type = "email"
		fair := flowJobs(t, "fair", "x", 3, at(0))
		fair[1].Type = "email"
		other := flowJobs(t, "other", "", 3, at(0))
		createMany(t, q, append(append(lim, fair...), other...))

		got := sharedClaim(t, q, "n", domain.ClaimRequest{Limit: 10, Types: []domain.JobType{"email"}})
		require.ElementsMatch(t, []uuid.UUID{lim[0].ID, fair[1].ID}, ids(got), "types filter flow queues too")
		got = sharedClaim(t, q, "n", domain.ClaimRequest{Limit: 10, Queues: []string{"other"}})
		require.Equal(t, ids(other), ids(got), "queues filter flow queues out")
		got = sharedClaim(t, q, "n", domain.ClaimRequest{Limit: 10, Room: map[string]int{"lim": 1, "fair": 0}})
		require.Equal(t, map[string]int{"lim": 1}, sharedQueueCounts(got), "room caps flow queues")
		require.NoError(t, q.SetQueuePaused(t.Context(), "lim", true))
		got = sharedClaim(t, q, "n", domain.ClaimRequest{Limit: 10})
		require.Empty(t, got, "lim is paused, fair's key runs a job")
		require.NoError(t, q.SetQueuePaused(t.Context(), "lim", false))
		got = sharedClaim(t, q, "n", domain.ClaimRequest{Limit: 10})
		require.Equal(t, map[string]int{"lim": 3}, sharedQueueCounts(got), "up to the limit of 5 running")
	})

	t.Run("EndOfALimitedJobIsAnnounced", func(t *testing.T) {
		t.Parallel()
		open := newQueue(t)
		q, watcher := open(t), open(t)
		setFlow(t, q, "lim", domain.QueueSettings{Limit: 1})
		createMany(t, q, flowJobs(t, "lim", "", 2, at(0)))
		got := sharedClaim(t, q, "n", domain.ClaimRequest{Limit: 10})
		require.Len(t, got, 1)
		notices := watch(t, watcher)
		finish(t, q, "n", got[0])
		awaitNotice(t, notices, func(n domain.QueueNotice) bool {
			return n.Kind == domain.NoticeJobsAvailable && n.RunAt.IsZero()
		})
	})
}
