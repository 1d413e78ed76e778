package actors

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/persistence/badgerstore"
)

// pruneCounter counts the jobs the pruner deleted.
type pruneCounter struct {
	NopMetrics
	n atomic.Int64
}

func (c *pruneCounter) JobsPruned(_ domain.Status, n int) { c.n.Add(int64(n)) }

// BenchmarkBurnDownWhilePruning seeds a Badger store with a backlog of
// completed jobs that finished two days ago (TROUPE_BENCH_PRUNE_BACKLOG,
// 1,000,000 by default, stored 10,000 a write and not timed) and 100,000
// pending no-op jobs, then times a System burning the pending jobs down:
// once with a 1ms retention for completed jobs, so that the pruner works
// the backlog off (and the burnt-down jobs after it) meanwhile, and once
// keeping them for ever. It reports jobs/s, and how many jobs the pruner
// deleted during the burn-down. Run it with -benchtime=1x: each run seeds
// its own store.
func BenchmarkBurnDownWhilePruning(b *testing.B) {
	const jobs = 100_000
	backlog := envInt("TROUPE_BENCH_PRUNE_BACKLOG", 1_000_000)
	for _, tc := range []struct {
		name      string
		retention time.Duration
	}{
		{"retention=1ms", time.Millisecond},
		{"keep-forever", KeepForever},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var elapsed time.Duration
			var pruned int64
			for range b.N {
				store, err := badgerstore.Open(badgerstore.Options{Dir: b.TempDir(), Logger: quietLogger()})
				if err != nil {
					b.Fatal(err)
				}
				seedFinished(b, store, backlog, time.Now().Add(-48*time.Hour))
				seedPending(b, store, jobs)
				h := &countingNoop{n: jobs, done: make(chan struct{})}
				metrics := &pruneCounter{}
				sys, err := New(store, WithLogger(quietLogger()), WithWorkers(burnDownWorkers), WithMetrics(metrics),
					WithRetention(Retention{Completed: tc.retention, Failed: KeepForever, Canceled: KeepForever}))
				if err != nil {
					b.Fatal(err)
				}
				if err := sys.Register("noop", h); err != nil {
					b.Fatal(err)
				}
				start := time.Now()
				if err := sys.Start(context.Background()); err != nil {
					b.Fatal(err)
				}
				<-h.done
				elapsed += time.Since(start)
				pruned += metrics.n.Load()
				if err := sys.Stop(context.Background()); err != nil {
					b.Fatal(err)
				}
				if err := store.Close(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(jobs*b.N)/elapsed.Seconds(), "jobs/s")
			b.ReportMetric(float64(pruned)/float64(b.N), "pruned/op")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// seedFinished stores n completed jobs that finished at finishedAt,
// 10,000 a write.
func seedFinished(b *testing.B, store domain.Store, n int, finishedAt time.Time) {
	b.Helper()
	batch := make([]*domain.Job, 0, 10_000)
	for i := range n {
		j, err := domain.NewJob("noop", []byte("{}"), 1, finishedAt.Add(-time.Second))
		if err != nil {
			b.Fatal(err)
		}
		j.Status, j.Attempts = domain.StatusCompleted, 1
		j.StartedAt = j.CreatedAt
		j.FinishedAt = domain.Timestamp(finishedAt)
		j.UpdatedAt = j.FinishedAt
		batch = append(batch, j)
		if len(batch) == cap(batch) || i == n-1 {
			if err := store.Create(context.Background(), batch...); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
}
