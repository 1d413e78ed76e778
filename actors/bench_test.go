package actors

import (
	"context"
	"io"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/persistence/badgerstore"
	"github.com/troupe-go/troupe/persistence/memstore"
)

// The benchmarks measure the runtime end to end on each store. Run them
// with `make bench`; they report figures, never pass or fail on speed.

type benchStore struct {
	name string
	open func(b *testing.B) domain.Store
}

var benchStores = []benchStore{
	{"memstore", func(*testing.B) domain.Store { return memstore.New() }},
	{"badger", func(b *testing.B) domain.Store {
		s, err := badgerstore.Open(badgerstore.Options{Dir: b.TempDir(), Logger: quietLogger()})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = s.Close() })
		return s
	}},
}

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelError}))
}

// countingNoop completes at once and closes done when n jobs are done: a
// job is done when the store committed its completed outcome, which
// newNoopSystem watches for. On a System that newNoopSystem did not build,
// nothing watches the store, and done closes when the n-th handler
// returned.
type countingNoop struct {
	n         int64
	ran       atomic.Int64
	committed atomic.Int64
	// watched says newNoopSystem wraps the store: done waits for commits.
	watched   atomic.Bool
	done      chan struct{}
	closeDone sync.Once
}

func (h *countingNoop) Execute(context.Context, []byte) error {
	if h.ran.Add(1) == h.n && !h.watched.Load() {
		h.closeDone.Do(func() { close(h.done) })
	}
	return nil
}

// stored notes the snapshots a store just committed; done closes once n
// completed ones were.
func (h *countingNoop) stored(jobs ...*domain.Job) {
	k := int64(0)
	for _, j := range jobs {
		if j.Status == domain.StatusCompleted {
			k++
		}
	}
	if k > 0 && h.committed.Add(k) >= h.n {
		h.closeDone.Do(func() { close(h.done) })
	}
}

// committedStore is a store that tells h the snapshots it committed: the
// runtime stores a job's outcome before it considers the job done.
type committedStore struct {
	domain.Store
	h *countingNoop
}

func (s committedStore) Update(ctx context.Context, jobs ...*domain.Job) error {
	if err := s.Store.Update(ctx, jobs...); err != nil {
		return err
	}
	s.h.stored(jobs...)
	return nil
}

// committedLog is a committedStore whose store keeps idempotency records,
// as every store does: the pruner expires them only on a store it sees is
// a domain.RequestLog.
type committedLog struct {
	committedStore
	domain.RequestLog
}

// committedShared is a shared queue that tells h the outcomes its node
// committed: a node of a shared store stores them through UpdateOwned.
type committedShared struct {
	domain.SharedQueue
	h *countingNoop
}

func (s committedShared) UpdateOwned(ctx context.Context, node string, job *domain.Job) error {
	if err := s.SharedQueue.UpdateOwned(ctx, node, job); err != nil {
		return err
	}
	s.h.stored(job)
	return nil
}

// newNoopSystem returns a System on store, not started, that runs h as
// the type "noop", with its store (and its shared queue, when opts give
// one) watched for h's committed outcomes.
func newNoopSystem(tb testing.TB, store domain.Store, h *countingNoop, opts ...Option) *System {
	tb.Helper()
	h.watched.Store(true)
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	all := append([]Option{WithLogger(quietLogger())}, opts...)
	if o.shared != nil {
		all = append(all, WithSharedQueue(committedShared{SharedQueue: o.shared, h: h}))
	}
	var watched domain.Store = committedStore{Store: store, h: h}
	if log, ok := store.(domain.RequestLog); ok {
		watched = committedLog{committedStore: committedStore{Store: store, h: h}, RequestLog: log}
	}
	sys, err := New(watched, all...)
	if err != nil {
		tb.Fatal(err)
	}
	if err := sys.Register("noop", h); err != nil {
		tb.Fatal(err)
	}
	return sys
}

// timeBurnDown starts systems and returns how long they took from the
// first start until h's jobs were done; it stops them after.
func timeBurnDown(tb testing.TB, h *countingNoop, systems ...*System) time.Duration {
	tb.Helper()
	start := time.Now()
	for _, sys := range systems {
		if err := sys.Start(context.Background()); err != nil {
			tb.Fatal(err)
		}
	}
	<-h.done
	elapsed := time.Since(start)
	for _, sys := range systems {
		if err := sys.Stop(context.Background()); err != nil {
			tb.Fatal(err)
		}
	}
	return elapsed
}

// burnDownWorkers sizes the pool for no-op jobs: with handlers that take
// no time, the pool size is how many jobs are in flight, and so how many
// snapshots each group commit can carry.
var burnDownWorkers = envInt("TROUPE_BENCH_WORKERS", 64)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// BenchmarkBurnDown seeds a store with 100,000 pending no-op jobs, then
// times a System starting on it until every job's completed outcome is
// committed: recovery queues them and the workers burn them down. It
// reports jobs/s.
func BenchmarkBurnDown(b *testing.B) {
	const jobs = 100_000
	for _, bs := range benchStores {
		b.Run(bs.name, func(b *testing.B) {
			var elapsed time.Duration
			for range b.N {
				store := bs.open(b)
				seedPending(b, store, jobs)
				h := &countingNoop{n: jobs, done: make(chan struct{})}
				elapsed += timeBurnDown(b, h, newNoopSystem(b, store, h, WithWorkers(burnDownWorkers)))
			}
			b.ReportMetric(float64(jobs*b.N)/elapsed.Seconds(), "jobs/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}

func seedPending(tb testing.TB, store domain.Store, n int) {
	tb.Helper()
	now := time.Now()
	batch := make([]*domain.Job, 0, 1000)
	for i := range n {
		j, err := domain.NewJob("noop", []byte("{}"), 1, now)
		if err != nil {
			tb.Fatal(err)
		}
		batch = append(batch, j)
		if len(batch) == cap(batch) || i == n-1 {
			if err := store.Create(context.Background(), batch...); err != nil {
				tb.Fatal(err)
			}
			batch = batch[:0]
		}
	}
}

// discardStore accepts every write and keeps nothing, so that what the
// heap holds for a backlog is the runtime's own cost.
type discardStore struct{ domain.Store }

func (discardStore) Create(context.Context, ...*domain.Job) error { return nil }
func (discardStore) Update(context.Context, ...*domain.Job) error { return nil }
func (discardStore) Insert(context.Context, time.Time, []*domain.Job) ([]*domain.Job, error) {
	return nil, nil
}

// BenchmarkQueuedJobHeap submits 1,000,000 jobs while the only worker is
// busy, and reports the heap each queued job costs the runtime (the store
// keeps nothing) and, for comparison, on the memory and Badger stores.
func BenchmarkQueuedJobHeap(b *testing.B) {
	const jobs = 1_000_000
	stores := append([]benchStore{{"runtime-only", func(*testing.B) domain.Store { return discardStore{memstore.New()} }}}, benchStores...)
	for _, bs := range stores {
		b.Run(bs.name, func(b *testing.B) {
			for range b.N {
				store := bs.open(b)
				blk := newBlocker()
				sys, err := New(store, WithLogger(quietLogger()), WithWorkers(1), WithQueueSize(jobs+1))
				if err != nil {
					b.Fatal(err)
				}
				if err := sys.Register("block", blk); err != nil {
					b.Fatal(err)
				}
				if err := sys.Start(context.Background()); err != nil {
					b.Fatal(err)
				}
				if _, err := sys.Submit(context.Background(), SubmitParams{Type: "block"}); err != nil {
					b.Fatal(err)
				}
				<-blk.started
				before := heapInUse()
				params := make([]SubmitParams, 1000)
				for i := range params {
					params[i] = SubmitParams{Type: "block", Payload: []byte(`{"n":1}`)}
				}
				for range jobs / len(params) {
					if _, err := sys.SubmitBatch(context.Background(), params); err != nil {
						b.Fatal(err)
					}
				}
				for sys.Stats().QueueDepth < jobs {
					runtime.Gosched()
				}
				after := heapInUse()
				b.ReportMetric(float64(after-before)/jobs, "heap-B/job")
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				b.ReportMetric(float64(ms.Sys)/(1<<20), "sys-MiB")
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				_ = sys.Stop(ctx)
			}
			b.ReportMetric(0, "ns/op")
		})
	}
}

// BenchmarkScheduledJobs submits jobs scheduled an hour out
// (TROUPE_BENCH_SCHEDULED of them, 1,000,000 by default) and reports the
// heap each costs: the runtime's own (runtime-only: the store keeps
// nothing), and the process's with the memory and Badger stores. It then
// stops the System and times a Start on the same store with them stored
// (start-s): recovery reads pending and running jobs only, and the
// scheduler the earliest RunAt. The whole heap the restarted System adds,
// its fixed cost included, is restart-heap-MiB.
func BenchmarkScheduledJobs(b *testing.B) {
	jobs := envInt("TROUPE_BENCH_SCHEDULED", 1_000_000)
	stores := append([]benchStore{{"runtime-only", func(*testing.B) domain.Store { return discardStore{memstore.New()} }}}, benchStores...)
	for _, bs := range stores {
		b.Run(bs.name, func(b *testing.B) {
			for range b.N {
				store := bs.open(b)
				start := func() *System {
					sys, err := New(store, WithLogger(quietLogger()), WithWorkers(1))
					if err != nil {
						b.Fatal(err)
					}
					if err := sys.Register("noop", domain.HandlerFunc(noop)); err != nil {
						b.Fatal(err)
					}
					if err := sys.Start(context.Background()); err != nil {
						b.Fatal(err)
					}
					return sys
				}
				sys := start()
				before := heapInUse()
				params := make([]SubmitParams, 1000)
				for i := range params {
					params[i] = SubmitParams{Type: "noop", Payload: []byte(`{"n":1}`), Delay: time.Hour + time.Duration(i)*time.Millisecond}
				}
				for range jobs / len(params) {
					if _, err := sys.SubmitBatch(context.Background(), params); err != nil {
						b.Fatal(err)
					}
				}
				after := heapInUse()
				b.ReportMetric(float64(after-before)/float64(jobs), "heap-B/job")
				if err := sys.Stop(context.Background()); err != nil {
					b.Fatal(err)
				}
				before = heapInUse()
				began := time.Now()
				sys = start()
				b.ReportMetric(time.Since(began).Seconds(), "start-s")
				b.ReportMetric(float64(heapInUse()-before)/(1<<20), "restart-heap-MiB")
				if err := sys.Stop(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(0, "ns/op")
		})
	}
}

func heapInUse() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// BenchmarkEnqueueToStart submits at a steady 1,000 jobs/s for three
// seconds and reports the latency from calling Submit to the handler
// starting: p50, p99 and max.
func BenchmarkEnqueueToStart(b *testing.B) {
	const (
		rate     = 1000
		duration = 3 * time.Second
	)
	for _, bs := range benchStores {
		b.Run(bs.name, func(b *testing.B) {
			var all []time.Duration
			for range b.N {
				store := bs.open(b)
				var submitted sync.Map // job ID → time.Time before Submit
				var mu sync.Mutex
				var lat []time.Duration
				total := int(rate * duration.Seconds())
				done := make(chan struct{})
				h := domain.HandlerFunc(func(ctx context.Context, payload []byte) error {
					started := time.Now()
					id, _ := JobIDFromContext(ctx)
					var at any
					for {
						var ok bool
						if at, ok = submitted.Load(id); ok {
							break
						}
						runtime.Gosched() // Submit returned the ID a moment ago
					}
					mu.Lock()
					lat = append(lat, started.Sub(at.(time.Time)))
					if len(lat) == total {
						close(done)
					}
					mu.Unlock()
					return nil
				})
				sys, err := New(store, WithLogger(quietLogger()))
				if err != nil {
					b.Fatal(err)
				}
				if err := sys.Register("noop", h); err != nil {
					b.Fatal(err)
				}
				if err := sys.Start(context.Background()); err != nil {
					b.Fatal(err)
				}
				tick := time.NewTicker(time.Second / rate)
				for range total {
					<-tick.C
					at := time.Now()
					job, err := sys.Submit(context.Background(), SubmitParams{Type: "noop"})
					if err != nil {
						b.Fatal(err)
					}
					submitted.Store(job.ID, at)
				}
				tick.Stop()
				<-done
				_ = sys.Stop(context.Background())
				all = append(all, lat...)
			}
			slices.Sort(all)
			pct := func(p float64) float64 {
				return float64(all[int(p*float64(len(all)-1))].Microseconds()) / 1000
			}
			b.ReportMetric(pct(0.50), "p50-ms")
			b.ReportMetric(pct(0.99), "p99-ms")
			b.ReportMetric(pct(1), "max-ms")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// BenchmarkRecover seeds Badger with 1,000,000 pending jobs, as a crash
// would leave them, and times Start: recovery scans them all and queues
// them again before Start returns. The one worker stays busy, so the time
// is recovery alone. It reports the seconds Start took.
func BenchmarkRecover(b *testing.B) {
	const jobs = 1_000_000
	for range b.N {
		store := benchStores[1].open(b)
		seedPending(b, store, jobs)
		blk := newBlocker()
		sys, err := New(store, WithLogger(quietLogger()), WithWorkers(1))
		if err != nil {
			b.Fatal(err)
		}
		if err := sys.Register("noop", blk); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if err := sys.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		took := time.Since(start)
		if depth := sys.Stats().QueueDepth; depth < jobs-1 {
			b.Fatalf("queue depth %d after recovery, want %d", depth, jobs-1)
		}
		b.ReportMetric(took.Seconds(), "start-s")
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_ = sys.Stop(ctx)
	}
	b.ReportMetric(0, "ns/op")
}

// TestBurnDownCountsCommittedOutcomes checks what the burn-down
// benchmarks time: when done closes, every job's completed outcome is in
// the store, not only its handler returned.
func TestBurnDownCountsCommittedOutcomes(t *testing.T) {
	t.Parallel()
	const jobs = 200
	store := memstore.New()
	seedPending(t, store, jobs)
	h := &countingNoop{n: jobs, done: make(chan struct{})}
	timeBurnDown(t, h, newNoopSystem(t, store, h, WithWorkers(4)))
	requireCompleted(t, store, jobs)
	require.EqualValues(t, jobs, h.committed.Load())
}

// requireCompleted checks that store holds n completed jobs.
func requireCompleted(t *testing.T, store domain.Store, n int) {
	t.Helper()
	page, err := store.List(context.Background(), domain.Filter{Statuses: []domain.Status{domain.StatusCompleted}, Limit: 1})
	require.NoError(t, err)
	require.Equal(t, n, page.Total)
}
