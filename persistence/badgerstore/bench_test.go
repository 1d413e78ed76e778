package badgerstore

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
)

// The benchmarks measure snapshots per second on local disk with the
// default options (no fsync per batch, except where the name says sync).
// BenchmarkRawWriteBatch is the ceiling: Badger's WriteBatch writing the
// same bytes with no checks, no coalescing and nobody to answer.

// benchJobs returns n pending jobs of the size the demo handlers submit.
func benchJobs(b *testing.B, n int) []*domain.Job {
	b.Helper()
	jobs := make([]*domain.Job, n)
	for i := range jobs {
		j, err := domain.NewJob("send_email", fmt.Appendf(nil, `{"to":"user%d@example.com","subject":"Welcome","template":"welcome"}`, i), 3, testEpoch)
		require.NoError(b, err)
		jobs[i] = j
	}
	return jobs
}

// benchStore opens a store on disk for a benchmark.
func benchStore(b *testing.B, opts Options) *Store {
	b.Helper()
	opts.Dir = b.TempDir()
	opts.Logger = slog.New(slog.DiscardHandler)
	s, err := Open(opts)
	require.NoError(b, err)
	b.Cleanup(func() { require.NoError(b, s.Close()) })
	return s
}

// report adds snapshots/s and, for the store, how many snapshots one
// group commit carried on average.
func report(b *testing.B, s *Store, batches0, snapshots0 int64) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "snapshots/s")
	if s == nil {
		return
	}
	if batches := s.w.batches.Load() - batches0; batches > 0 {
		b.ReportMetric(float64(s.w.snapshots.Load()-snapshots0)/float64(batches), "snapshots/batch")
	}
}

func BenchmarkRawWriteBatch(b *testing.B) {
	// new-jobs writes what Create writes. rewrites writes what an Update
	// that changes status writes (the snapshot, the old status key deleted,
	// the new one set) over jobs already stored, once each and in random
	// order: one WriteBatch would otherwise merge repeated writes of a key.
	b.Run("new-jobs", func(b *testing.B) {
		db := benchDB(b)
		benchRaw(b, db, benchJobs(b, b.N), false)
	})
	b.Run("rewrites", func(b *testing.B) {
		db := benchDB(b)
		jobs := benchJobs(b, b.N)
		b.StopTimer()
		benchRaw(b, db, jobs, false)
		rand.New(rand.NewPCG(1, 2)).Shuffle(len(jobs), func(i, j int) { jobs[i], jobs[j] = jobs[j], jobs[i] })
		b.ResetTimer()
		benchRaw(b, db, jobs, true)
	})
}

// benchDB opens a Badger database on disk with the store's options.
func benchDB(b *testing.B) *badger.DB {
	b.Helper()
	opts := Options{Dir: b.TempDir(), Logger: slog.New(slog.DiscardHandler)}.WithDefaults()
	db, err := badger.Open(opts.badgerOptions())
	require.NoError(b, err)
	b.Cleanup(func() { require.NoError(b, db.Close()) })
	return db
}

// benchRaw writes the snapshot of each job, and its status key, through
// one Badger WriteBatch, timed. With move, each job first flips between
// pending and running, and its previous status key is deleted.
func benchRaw(b *testing.B, db *badger.DB, jobs []*domain.Job, move bool) {
	b.ReportAllocs()
	b.StartTimer()
	wb := db.NewWriteBatch()
	defer wb.Cancel()
	for _, j := range jobs {
		if move {
			if err := wb.Delete(appendStatusKey(nil, j.ID, indexOf(j))); err != nil {
				b.Fatal(err)
			}
			if j.Status == domain.StatusPending {
				j.Status = domain.StatusRunning
			} else {
				j.Status = domain.StatusPending
			}
		}
		value, err := encode(nil, j)
		if err != nil {
			b.Fatal(err)
		}
		e := indexOf(j)
		if err := wb.Set(jobKey(j.ID), value); err != nil {
			b.Fatal(err)
		}
		if err := wb.Set(appendStatusKey(nil, j.ID, e), []byte(e.typ)); err != nil {
			b.Fatal(err)
		}
	}
	if err := wb.Flush(); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	report(b, nil, 0, 0)
}

// parallelisms are the goroutines per CPU the parallel benchmarks run:
// from one caller per CPU to the hundreds of job actors of a busy system.
var parallelisms = []int{1, 16, 256}

func BenchmarkUpdateParallel(b *testing.B) {
	for _, syncWrites := range []bool{false, true} {
		for _, p := range parallelisms {
			if syncWrites && p != parallelisms[len(parallelisms)-1] {
				continue
			}
			name := fmt.Sprintf("goroutines=%d", p*runtime.GOMAXPROCS(0))
			if syncWrites {
				name += "/sync"
			}
			b.Run(name, func(b *testing.B) { benchUpdate(b, p, syncWrites) })
		}
	}
}

func benchUpdate(b *testing.B, parallelism int, syncWrites bool) {
	d := DurabilityNone
	if syncWrites {
		d = DurabilitySyncAll
	}
	s := benchStore(b, Options{Durability: d})
	ctx := b.Context()
	// Each goroutine owns a few jobs, so no two update one job at once,
	// and every update moves a job between pending and running: the
	// index keys move too, the costlier case.
	const perGoroutine = 16
	goroutines := parallelism * runtime.GOMAXPROCS(0)
	jobs := benchJobs(b, goroutines*perGoroutine)
	for start := 0; start < len(jobs); start += 1000 {
		require.NoError(b, s.Create(ctx, jobs[start:min(start+1000, len(jobs))]...))
	}
	var next atomic.Int64
	batches0, snapshots0 := s.w.batches.Load(), s.w.snapshots.Load()
	b.ReportAllocs()
	b.SetParallelism(parallelism)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		g := int(next.Add(1) - 1)
		mine := jobs[g*perGoroutine : (g+1)*perGoroutine]
		for i := 0; pb.Next(); i++ {
			j := mine[i%perGoroutine]
			if j.Status == domain.StatusPending {
				j.Status = domain.StatusRunning
			} else {
				j.Status = domain.StatusPending
			}
			j.Attempts++
			if err := s.Update(ctx, j); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	report(b, s, batches0, snapshots0)
}

func BenchmarkCreate(b *testing.B) {
	b.Run("goroutines=1", func(b *testing.B) {
		s := benchStore(b, Options{})
		jobs := benchJobs(b, b.N)
		batches0, snapshots0 := s.w.batches.Load(), s.w.snapshots.Load()
		b.ReportAllocs()
		b.ResetTimer()
		for _, j := range jobs {
			if err := s.Create(b.Context(), j); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		report(b, s, batches0, snapshots0)
	})
	b.Run("goroutines=1/jobs-per-call=100", func(b *testing.B) {
		s := benchStore(b, Options{})
		jobs := benchJobs(b, b.N)
		batches0, snapshots0 := s.w.batches.Load(), s.w.snapshots.Load()
		b.ReportAllocs()
		b.ResetTimer()
		for start := 0; start < len(jobs); start += 100 {
			if err := s.Create(b.Context(), jobs[start:min(start+100, len(jobs))]...); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		report(b, s, batches0, snapshots0)
	})
	for _, p := range parallelisms[1:] {
		b.Run(fmt.Sprintf("goroutines=%d", p*runtime.GOMAXPROCS(0)), func(b *testing.B) {
			s := benchStore(b, Options{})
			jobs := benchJobs(b, b.N)
			var next atomic.Int64
			batches0, snapshots0 := s.w.batches.Load(), s.w.snapshots.Load()
			b.ReportAllocs()
			b.SetParallelism(p)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := s.Create(b.Context(), jobs[next.Add(1)-1]); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			report(b, s, batches0, snapshots0)
		})
	}
}

// BenchmarkDeleteFinished measures retention on disk: one op is one
// DeleteFinished of 1,000 jobs (the pruner's batch) from a store that
// holds up to 100,000 finished jobs, refilled, outside the timer, when
// fewer than a batch remain. ns/job is the cost of deleting one job with
// all its keys.
func BenchmarkDeleteFinished(b *testing.B) {
	const stored, batch = 100_000, 1000
	s := benchStore(b, Options{})
	ctx := b.Context()
	finishedAt := testEpoch.Add(time.Hour)
	now := finishedAt.Add(24 * time.Hour)
	left := 0
	fill := func() {
		jobs := benchJobs(b, stored-left)
		for i, j := range jobs {
			require.NoError(b, j.Start(testEpoch))
			// Finished over an hour, so the cutoff falls inside the index.
			require.NoError(b, j.Complete(finishedAt.Add(time.Duration(i)*time.Millisecond)))
		}
		for start := 0; start < len(jobs); start += batch {
			require.NoError(b, s.Create(ctx, jobs[start:min(start+batch, len(jobs))]...))
		}
		left = stored
	}
	fill()
	deleted := 0
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if left < batch {
			b.StopTimer()
			fill()
			b.StartTimer()
		}
		n, err := s.DeleteFinished(ctx, now, domain.StatusCompleted, now, batch)
		if err != nil {
			b.Fatal(err)
		}
		if n != batch {
			b.Fatalf("deleted %d jobs, want %d", n, batch)
		}
		left -= n
		deleted += n
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(deleted), "ns/job")
	b.ReportMetric(float64(deleted)/b.Elapsed().Seconds(), "jobs/s")
}
