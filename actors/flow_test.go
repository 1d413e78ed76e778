package actors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/internal/pgtest"
	"github.com/troupe-go/troupe/persistence/badgerstore"
	"github.com/troupe-go/troupe/persistence/memstore"
	"github.com/troupe-go/troupe/persistence/pgstore"
)

// The conformance suite of flow control: the same cases against the local
// source (memory, Badger: the dispatcher enforces the settings) and the
// shared one (PostgreSQL, one node and three: the claim does), which must
// give the same answers.

// flowEnv is a started cluster of one or more nodes sharing a store.
type flowEnv struct {
	nodes []*System
	store domain.Store
	// clock moves only when a test moves it (local stores); nil on
	// PostgreSQL, which counts time by the database's clock.
	clock *manualClock
}

func (e *flowEnv) sys() *System { return e.nodes[0] }

// tick lets time pass for retries: the manual clock moves on; real time
// passes by itself.
func (e *flowEnv) tick() {
	if e.clock != nil {
		e.clock.advance(100 * time.Millisecond)
	}
}

// flowHarness starts a flowEnv with workers per node, each node's types
// registered by register (the external type "ext" is declared on all).
type flowHarness struct {
	name  string
	start func(t *testing.T, workers int, register func(*System)) *flowEnv
}

var flowHarnesses = []flowHarness{
	{"memory", func(t *testing.T, workers int, register func(*System)) *flowEnv {
		return startFlowLocal(t, memstore.New(), workers, register)
	}},
	{"badger", func(t *testing.T, workers int, register func(*System)) *flowEnv {
		bs, err := badgerstore.Open(badgerstore.Options{Dir: t.TempDir(), Logger: quietLogger()})
		require.NoError(t, err)
		t.Cleanup(func() { _ = bs.Close() })
		return startFlowLocal(t, bs, workers, register)
	}},
	{"postgres-1node", func(t *testing.T, workers int, register func(*System)) *flowEnv {
		return startFlowShared(t, 1, workers, register)
	}},
	{"postgres-3nodes", func(t *testing.T, workers int, register func(*System)) *flowEnv {
		return startFlowShared(t, 3, workers, register)
	}},
}

func startFlowLocal(t *testing.T, store domain.Store, workers int, register func(*System)) *flowEnv {
	t.Helper()
	clock := newManualClock()
	sys, err := New(store, WithLogger(testLogger(t)), WithClock(clock), WithWorkers(workers),
		WithRetryBackoff(time.Second, time.Second, NoJitter), WithExternalTypes("ext"))
	require.NoError(t, err)
	register(sys)
	require.NoError(t, sys.Start(context.Background()))
	t.Cleanup(func() { require.NoError(t, sys.Stop(context.Background())) })
	return &flowEnv{nodes: []*System{sys}, store: store, clock: clock}
}

func startFlowShared(t *testing.T, n, workers int, register func(*System)) *flowEnv {
	t.Helper()
	url := pgtest.URL(t)
	schema := pgtest.RandomSchema(t)
	pgtest.DropSchemaOnCleanup(t, url, schema)
	env := &flowEnv{}
	for i := range n {
		store, err := pgstore.Open(context.Background(), pgstore.Options{URL: url, Schema: schema, MaxConns: 8, Logger: testLogger(t)})
		require.NoError(t, err)
		sys, err := New(store,
			WithConfig(Config{Node: fmt.Sprintf("node-%d", i+1), PollInterval: 20 * time.Millisecond,
				LeaseDuration: 2 * time.Second, RescueInterval: 100 * time.Millisecond}),
			WithSharedQueue(store), WithLogger(testLogger(t)), WithWorkers(workers),
			WithRetryBackoff(20*time.Millisecond, 20*time.Millisecond, NoJitter), WithExternalTypes("ext"))
		require.NoError(t, err)
		register(sys)
		require.NoError(t, sys.Start(context.Background()))
		t.Cleanup(func() {
			require.NoError(t, sys.Stop(context.Background()))
			require.NoError(t, store.Close())
		})
		env.nodes = append(env.nodes, sys)
		if env.store == nil {
			env.store = store
		}
	}
	return env
}

// flowPayload is what a probe's job carries: its key (handlers cannot
// see it otherwise), its number, and how many of its attempts fail.
type flowPayload struct {
	Key  string `json:"key"`
	N    int    `json:"n"`
	Fail int    `json:"fail"`
	// RetryNow makes the failures ask for their retry at once, no backoff.
	RetryNow bool `json:"retryNow,omitempty"`
}

type flowStart struct {
	id      uuid.UUID
	key     string
	n       int
	attempt int
	at      time.Time
}

// flowProbe is the handler of type "flow": it records every start and
// how many attempts run at once, in all and per key, and, when blocking,
// holds each attempt until the test releases it.
type flowProbe struct {
	release    chan struct{} // nil: attempts do not wait
	mu         sync.Mutex
	running    int
	maxRunning int
	keyRunning map[string]int
	maxKey     map[string]int
	starts     []flowStart
}

func newFlowProbe(blocking bool) *flowProbe {
	p := &flowProbe{keyRunning: make(map[string]int), maxKey: make(map[string]int)}
	if blocking {
		p.release = make(chan struct{})
	}
	return p
}

func (p *flowProbe) register(sys *System) {
	if err := sys.Register("flow", p); err != nil {
		panic(err)
	}
}

func (p *flowProbe) Execute(ctx context.Context, payload []byte) error {
	var pl flowPayload
	if err := json.Unmarshal(payload, &pl); err != nil {
		return err
	}
	id, _ := JobIDFromContext(ctx)
	attempt := AttemptFromContext(ctx)
	p.mu.Lock()
	p.running++
	p.maxRunning = max(p.maxRunning, p.running)
	p.keyRunning[pl.Key]++
	p.maxKey[pl.Key] = max(p.maxKey[pl.Key], p.keyRunning[pl.Key])
	p.starts = append(p.starts, flowStart{id: id, key: pl.Key, n: pl.N, attempt: attempt, at: time.Now()})
	p.mu.Unlock()
	if p.release != nil {
		select {
		case <-p.release:
		case <-ctx.Done():
		}
	}
	p.mu.Lock()
	p.running--
	p.keyRunning[pl.Key]--
	p.mu.Unlock()
	if attempt <= pl.Fail {
		if pl.RetryNow {
			return domain.RetryAfter(errors.New("planned failure"), 0)
		}
		return errors.New("planned failure")
	}
	return nil
}

func (p *flowProbe) started() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.starts)
}

func (p *flowProbe) startList() []flowStart {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.starts)
}

func (p *flowProbe) max() (all int, perKey map[string]int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.maxRunning, maps(p.maxKey)
}

func maps(m map[string]int) map[string]int {
	out := make(map[string]int, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// releaseAll lets n attempts finish, one at a time.
func (p *flowProbe) releaseAll(n int) {
	for range n {
		p.release <- struct{}{}
	}
}

func flowJob(queue, key string, n, fail int) SubmitParams {
	payload, _ := json.Marshal(flowPayload{Key: key, N: n, Fail: fail})
	return SubmitParams{Type: "flow", Queue: queue, Key: key, Payload: payload, MaxAttempts: 3}
}

func submitFlow(t *testing.T, sys *System, ps ...SubmitParams) []*domain.Job {
	t.Helper()
	var jobs []*domain.Job
	for chunk := range slices.Chunk(ps, 1000) {
		res, err := sys.SubmitBatch(context.Background(), chunk)
		require.NoError(t, err)
		for _, r := range res {
			require.True(t, r.Created)
			jobs = append(jobs, r.Job)
		}
	}
	return jobs
}

func setSettings(t *testing.T, sys *System, queue string, s domain.QueueSettings) {
	t.Helper()
	info, err := sys.SetQueueSettings(context.Background(), queue, s)
	require.NoError(t, err)
	require.True(t, s.Equal(info.Settings), "settings as stored: %+v", info.Settings)
}

// waiting returns how many of queue's jobs wait for reason.
func waiting(t *testing.T, sys *System, queue string, reason domain.WaitReason) int {
	t.Helper()
	counts, err := sys.WaitingCounts(context.Background())
	require.NoError(t, err)
	n := 0
	for _, c := range counts {
		if c.Queue == queue && c.Reason == reason {
			n += c.Count
		}
	}
	return n
}

// waitingFor returns why the job waits, as Get gives it.
func waitingFor(t *testing.T, sys *System, id uuid.UUID) domain.WaitReason {
	t.Helper()
	job, err := sys.Get(context.Background(), id)
	require.NoError(t, err)
	return job.WaitingFor
}

// waitAllDone waits until every job of queue finished, moving time on.
func waitAllDone(t *testing.T, env *flowEnv, queue string, n int) {
	t.Helper()
	waitFor(t, func() bool {
		env.tick()
		page, err := env.store.List(context.Background(), domain.Filter{Queue: queue,
			Statuses: []domain.Status{domain.StatusCompleted, domain.StatusFailed, domain.StatusCanceled}, Limit: 1})
		require.NoError(t, err)
		return page.Total >= n
	})
}

func status(t *testing.T, env *flowEnv, id uuid.UUID) domain.Status {
	t.Helper()
	job, err := env.store.Get(context.Background(), id)
	require.NoError(t, err)
	return job.Status
}

// TestFlow_Conformance runs every case against every source.
func TestFlow_Conformance(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		run  func(t *testing.T, h flowHarness)
	}{
		{"Limit", flowLimit},
		{"Rate", flowRate},
		{"KeyLimit", flowKeyLimit},
		{"ReasonPrecedence", flowReasonPrecedence},
		{"OrderUnderRetries", flowOrderUnderRetries},
		{"LastFailureFreesTheKey", flowLastFailureFreesTheKey},
		{"FairnessOneWorker", func(t *testing.T, h flowHarness) { flowFairness(t, h, 1) }},
		{"FairnessFourWorkers", func(t *testing.T, h flowHarness) { flowFairness(t, h, 4) }},
		{"SettingsChangeAtRuntime", flowSettingsChange},
		{"ExternalClaims", flowExternalClaims},
	}
	for _, h := range flowHarnesses {
		for _, c := range cases {
			t.Run(h.name+"/"+c.name, func(t *testing.T) {
				t.Parallel()
				c.run(t, h)
			})
		}
	}
}

// Never more than Limit jobs of the queue run; the others wait for the
// queue limit, and say so.
func flowLimit(t *testing.T, h flowHarness) {
	probe := newFlowProbe(true)
	env := h.start(t, 4, probe.register)
	sys := env.sys()
	setSettings(t, sys, "lim", domain.QueueSettings{Limit: 2})
	var ps []SubmitParams
	for i := range 6 {
		ps = append(ps, flowJob("lim", "", i, 0))
	}
	jobs := submitFlow(t, sys, ps...)
	waitFor(t, func() bool { return probe.started() == 2 })
	waitFor(t, func() bool { return waiting(t, sys, "lim", domain.WaitQueueLimit) == 4 })
	for _, j := range jobs {
		if status(t, env, j.ID) == domain.StatusPending {
			require.Equal(t, domain.WaitQueueLimit, waitingFor(t, sys, j.ID))
		}
	}
	info, err := sys.Queue(context.Background(), "lim")
	require.NoError(t, err)
	require.Equal(t, 4, info.Waiting[domain.WaitQueueLimit])
	probe.releaseAll(6)
	waitAllDone(t, env, "lim", 6)
	all, _ := probe.max()
	require.Equal(t, 2, all)
	require.Zero(t, waiting(t, sys, "lim", domain.WaitQueueLimit))
}

// A rate lets Burst jobs start at once, then one per Per/Count.
func flowRate(t *testing.T, h flowHarness) {
	probe := newFlowProbe(false)
	env := h.start(t, 4, probe.register)
	sys := env.sys()
	if env.clock == nil {
		flowRateRealTime(t, env, probe)
		return
	}
	setSettings(t, sys, "rated", domain.QueueSettings{Rate: &domain.Rate{Count: 1, Per: time.Second, Burst: 2}})
	var ps []SubmitParams
	for i := range 5 {
		ps = append(ps, flowJob("rated", "", i, 0))
	}
	jobs := submitFlow(t, sys, ps...)
	// The clock stands still: two tokens, two starts, and the rest wait.
	waitFor(t, func() bool { return waiting(t, sys, "rated", domain.WaitQueueRate) == 3 })
	waitFor(t, func() bool { return probe.started() == 2 })
	for _, j := range jobs {
		if status(t, env, j.ID) == domain.StatusPending {
			require.Equal(t, domain.WaitQueueRate, waitingFor(t, sys, j.ID))
		}
	}
	env.clock.advance(time.Second)
	waitFor(t, func() bool { return waiting(t, sys, "rated", domain.WaitQueueRate) == 2 })
	waitFor(t, func() bool { return probe.started() == 3 })
	env.clock.advance(999 * time.Millisecond)
	require.Equal(t, 2, waiting(t, sys, "rated", domain.WaitQueueRate))
	env.clock.advance(2 * time.Millisecond)
	waitFor(t, func() bool { return waiting(t, sys, "rated", domain.WaitQueueRate) == 1 })
	env.clock.advance(time.Second)
	waitAllDone(t, env, "rated", 5)
	require.Equal(t, 5, probe.started())
}

// On PostgreSQL time is real: the starts by any moment stay within the
// burst plus what the rate refilled since the settings were set.
func flowRateRealTime(t *testing.T, env *flowEnv, probe *flowProbe) {
	sys := env.sys()
	const jobs, perSecond, burst = 15, 20, 3
	var ps []SubmitParams
	for i := range jobs {
		ps = append(ps, flowJob("rated", "", i, 0))
	}
	set := time.Now()
	setSettings(t, sys, "rated", domain.QueueSettings{Rate: &domain.Rate{Count: perSecond, Per: time.Second, Burst: burst}})
	submitFlow(t, sys, ps...)
	waitAllDone(t, env, "rated", jobs)
	starts := probe.startList()
	slices.SortFunc(starts, func(a, b flowStart) int { return a.at.Compare(b.at) })
	for i, s := range starts {
		allowed := burst + int(s.at.Sub(set).Seconds()*perSecond) + 1 // one token of slack for the clocks
		require.LessOrEqual(t, i+1, allowed, "start %d at %s", i+1, s.at.Sub(set))
	}
}

// Each key runs at most PerKey.Limit jobs at once; different keys run
// side by side.
func flowKeyLimit(t *testing.T, h flowHarness) {
	probe := newFlowProbe(true)
	env := h.start(t, 4, probe.register)
	sys := env.sys()
	setSettings(t, sys, "keyed", domain.QueueSettings{PerKey: &domain.KeyLimits{Limit: 1}})
	jobs := submitFlow(t, sys, flowJob("keyed", "a", 1, 0), flowJob("keyed", "a", 2, 0), flowJob("keyed", "b", 1, 0),
		flowJob("keyed", "b", 2, 0), flowJob("keyed", "", 1, 0))
	// a and b run one each, the keyless job is not subject to the key limit.
	waitFor(t, func() bool { return probe.started() == 3 })
	waitFor(t, func() bool { return waiting(t, sys, "keyed", domain.WaitKeyLimit) == 2 })
	require.Equal(t, domain.WaitKeyLimit, waitingFor(t, sys, jobs[1].ID))
	require.Equal(t, domain.WaitKeyLimit, waitingFor(t, sys, jobs[3].ID))
	page, err := sys.List(context.Background(), domain.Filter{Queue: "keyed", Key: "a"})
	require.NoError(t, err)
	require.Len(t, page.Jobs, 2)
	reasons := []domain.WaitReason{page.Jobs[0].WaitingFor, page.Jobs[1].WaitingFor}
	require.ElementsMatch(t, []domain.WaitReason{"", domain.WaitKeyLimit}, reasons)
	probe.releaseAll(5)
	waitAllDone(t, env, "keyed", 5)
	_, perKey := probe.max()
	require.Equal(t, map[string]int{"a": 1, "b": 1, "": 1}, perKey)
}

// A job held back by several settings gives the first reason.
func flowReasonPrecedence(t *testing.T, h flowHarness) {
	probe := newFlowProbe(true)
	env := h.start(t, 4, probe.register)
	sys := env.sys()
	setSettings(t, sys, "both", domain.QueueSettings{Limit: 1, PerKey: &domain.KeyLimits{Limit: 1}})
	jobs := submitFlow(t, sys, flowJob("both", "a", 1, 0), flowJob("both", "a", 2, 0), flowJob("both", "b", 1, 0))
	waitFor(t, func() bool { return probe.started() == 1 })
	waitFor(t, func() bool { return waiting(t, sys, "both", domain.WaitQueueLimit) == 2 })
	require.Zero(t, waiting(t, sys, "both", domain.WaitKeyLimit))
	for _, j := range jobs {
		if status(t, env, j.ID) == domain.StatusPending {
			require.Equal(t, domain.WaitQueueLimit, waitingFor(t, sys, j.ID))
		}
	}
	// Lifting the queue's limit leaves the key's.
	setSettings(t, sys, "both", domain.QueueSettings{PerKey: &domain.KeyLimits{Limit: 1}})
	waitFor(t, func() bool { return probe.started() == 2 })
	waitFor(t, func() bool { return waiting(t, sys, "both", domain.WaitKeyLimit) == 1 })
	require.Zero(t, waiting(t, sys, "both", domain.WaitQueueLimit))
	require.Equal(t, domain.WaitKeyLimit, waitingFor(t, sys, jobs[1].ID))
	probe.releaseAll(3)
	waitAllDone(t, env, "both", 3)
}

func orderedSettings() domain.QueueSettings {
	return domain.QueueSettings{PerKey: &domain.KeyLimits{Limit: 1}, Ordered: true}
}

// keyStarts lists the starts of key's jobs: their numbers and attempts.
func keyStarts(starts []flowStart, key string) []string {
	var out []string
	for _, s := range starts {
		if s.key == key {
			out = append(out, fmt.Sprintf("%d#%d", s.n, s.attempt))
		}
	}
	return out
}

// An ordered key's jobs start in submission order; while one waits for its
// retry, the key's later jobs wait, and other keys go on.
func flowOrderUnderRetries(t *testing.T, h flowHarness) {
	probe := newFlowProbe(false)
	env := h.start(t, 4, probe.register)
	sys := env.sys()
	setSettings(t, sys, "ord", orderedSettings())
	// Priority does not reorder a key's jobs.
	first := flowJob("ord", "k", 1, 1)
	first.Priority = 9
	jobs := submitFlow(t, sys, first, flowJob("ord", "k", 2, 0), flowJob("ord", "k", 3, 0), flowJob("ord", "x", 1, 0))
	if env.clock != nil {
		// The retry waits for the clock: the key's next job waits for it.
		waitFor(t, func() bool { return status(t, env, jobs[0].ID) == domain.StatusScheduled })
		waitFor(t, func() bool { return status(t, env, jobs[3].ID) == domain.StatusCompleted })
		waitFor(t, func() bool { return waiting(t, sys, "ord", domain.WaitKeyOrder) == 2 })
		require.Equal(t, domain.WaitKeyOrder, waitingFor(t, sys, jobs[1].ID))
		require.Equal(t, domain.WaitKeyOrder, waitingFor(t, sys, jobs[2].ID))
	}
	waitAllDone(t, env, "ord", 4)
	require.Equal(t, []string{"1#1", "1#2", "2#1", "3#1"}, keyStarts(probe.startList(), "k"))
	_, perKey := probe.max()
	require.Equal(t, 1, perKey["k"])
}

// A job that fails its last attempt ends, and its key's next job starts.
func flowLastFailureFreesTheKey(t *testing.T, h flowHarness) {
	probe := newFlowProbe(false)
	env := h.start(t, 2, probe.register)
	sys := env.sys()
	setSettings(t, sys, "ord", orderedSettings())
	doomed := flowJob("ord", "k", 1, 99)
	doomed.MaxAttempts = 2
	jobs := submitFlow(t, sys, doomed, flowJob("ord", "k", 2, 0))
	waitAllDone(t, env, "ord", 2)
	require.Equal(t, domain.StatusFailed, status(t, env, jobs[0].ID))
	require.Equal(t, domain.StatusCompleted, status(t, env, jobs[1].ID))
	require.Equal(t, []string{"1#1", "1#2", "2#1"}, keyStarts(probe.startList(), "k"))
}

// A fair queue takes keys in turn: a key with 10 jobs submitted after one
// with 10,000 starts them all within the first 40 starts.
func flowFairness(t *testing.T, h flowHarness, workers int) {
	probe := newFlowProbe(false)
	env := h.start(t, workers, probe.register)
	sys := env.sys()
	ctx := context.Background()
	_, err := sys.PauseQueue(ctx, "fair")
	require.NoError(t, err)
	var ps []SubmitParams
	for i := range 10_000 {
		ps = append(ps, flowJob("fair", "A", i, 0))
	}
	for i := range 10 {
		ps = append(ps, flowJob("fair", "B", i, 0))
	}
	submitFlow(t, sys, ps...)
	setSettings(t, sys, "fair", domain.QueueSettings{Fair: true})
	_, err = sys.ResumeQueue(ctx, "fair")
	require.NoError(t, err)
	// Counted by the probe: listing 10,000 jobs again and again would slow
	// the store down for the workers. Only the first starts matter: B's
	// ten must be among the first 40, where an unfair queue would start
	// them after A's 10,000. The rest are handed back at the stop.
	const within = 40
	deadline := time.Now().Add(5 * time.Minute)
	for probe.started() < within {
		require.True(t, time.Now().Before(deadline), "%d of %d jobs started", probe.started(), within)
		time.Sleep(10 * time.Millisecond)
	}
	seen := 0
	for _, s := range probe.startList()[:within] {
		if s.key == "B" {
			seen++
		}
	}
	require.Equal(t, 10, seen, "B's jobs among the first %d starts", within)
}

// Settings changed at runtime apply to the jobs already waiting.
func flowSettingsChange(t *testing.T, h flowHarness) {
	probe := newFlowProbe(true)
	env := h.start(t, 5, probe.register)
	sys := env.sys()
	setSettings(t, sys, "chg", domain.QueueSettings{Limit: 1})
	var ps []SubmitParams
	for i := range 5 {
		ps = append(ps, flowJob("chg", "", i, 0))
	}
	submitFlow(t, sys, ps...)
	waitFor(t, func() bool { return waiting(t, sys, "chg", domain.WaitQueueLimit) == 4 })
	waitFor(t, func() bool { return probe.started() == 1 })
	setSettings(t, sys, "chg", domain.QueueSettings{Limit: 3})
	waitFor(t, func() bool { return probe.started() == 3 })
	waitFor(t, func() bool { return waiting(t, sys, "chg", domain.WaitQueueLimit) == 2 })
	setSettings(t, sys, "chg", domain.QueueSettings{})
	waitFor(t, func() bool { return probe.started() == 5 })
	counts, err := sys.WaitingCounts(context.Background())
	require.NoError(t, err)
	require.Empty(t, counts)
	info, err := sys.Queue(context.Background(), "chg")
	require.NoError(t, err)
	require.True(t, info.Settings.IsZero())
	probe.releaseAll(5)
	waitAllDone(t, env, "chg", 5)
}

// External workers' claims obey the queue's and the keys' limits.
func flowExternalClaims(t *testing.T, h flowHarness) {
	env := h.start(t, 2, func(sys *System) { newFlowProbe(false).register(sys) })
	sys := env.sys()
	ctx := context.Background()
	setSettings(t, sys, "ext", domain.QueueSettings{Limit: 2, PerKey: &domain.KeyLimits{Limit: 1}})
	var ps []SubmitParams
	for _, key := range []string{"a", "a", "a", "b"} {
		ps = append(ps, SubmitParams{Type: "ext", Queue: "ext", Key: key})
	}
	submitFlow(t, sys, ps...)
	claim := func() []ClaimedJob {
		var got []ClaimedJob
		for _, node := range env.nodes {
			jobs, err := node.ClaimJobs(ctx, ClaimParams{Types: []domain.JobType{"ext"}, Max: 5})
			require.NoError(t, err)
			got = append(got, jobs...)
		}
		return got
	}
	// A shared store may skip a queue another claimer holds at that moment:
	// claim until the limit is reached, then no more comes.
	var first []ClaimedJob
	waitFor(t, func() bool { first = append(first, claim()...); return len(first) >= 2 })
	require.Len(t, first, 2)
	require.ElementsMatch(t, []string{"a", "b"}, []string{first[0].Job.Key, first[1].Job.Key})
	require.Empty(t, claim())
	require.Equal(t, 2, waiting(t, sys, "ext", domain.WaitQueueLimit))
	var a ClaimedJob
	for _, c := range first {
		if c.Job.Key == "a" {
			a = c
		}
	}
	_, err := sys.CompleteJob(ctx, a.Job.ID, a.LeaseToken, nil)
	require.NoError(t, err)
	// One slot free: a's next job, but no more.
	var next []ClaimedJob
	waitFor(t, func() bool { next = append(next, claim()...); return len(next) > 0 })
	require.Len(t, next, 1)
	require.Equal(t, "a", next[0].Job.Key)
	require.Empty(t, claim())
}
