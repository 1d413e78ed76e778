package actors

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/troupe-go/troupe/domain"
)

// BenchmarkExternalClaimComplete times external workers draining 100,000
// pending jobs through the System's worker protocol: 8 workers, each
// claiming batches of 50 and reporting them with one ReportOutcomes. A
// job counts once its outcome is stored. It reports jobs/s.
func BenchmarkExternalClaimComplete(b *testing.B) {
	const jobs, workers, batch = 100_000, 8, 50
	for _, bs := range benchStores {
		b.Run(bs.name, func(b *testing.B) {
			var elapsed time.Duration
			for range b.N {
				store := bs.open(b)
				seedPendingOf(b, store, "ext", jobs)
				sys, err := New(store, WithLogger(quietLogger()), WithExternalTypes("ext"))
				if err != nil {
					b.Fatal(err)
				}
				if err := sys.Start(context.Background()); err != nil {
					b.Fatal(err)
				}
				ctx := context.Background()
				var done atomic.Int64
				var wg sync.WaitGroup
				start := time.Now()
				for range workers {
					wg.Go(func() {
						outs := make([]Outcome, 0, batch)
						for done.Load() < jobs {
							claimed, err := sys.ClaimJobs(ctx, ClaimParams{Types: []domain.JobType{"ext"}, Max: batch, Wait: 10 * time.Millisecond})
							if err != nil {
								b.Error(err)
								return
							}
							outs = outs[:0]
							for _, c := range claimed {
								outs = append(outs, Outcome{JobID: c.Job.ID, LeaseToken: c.LeaseToken})
							}
							res, err := sys.ReportOutcomes(ctx, outs)
							if err != nil {
								b.Error(err)
								return
							}
							for _, r := range res {
								if r.Err != nil {
									b.Error(r.Err)
									return
								}
							}
							done.Add(int64(len(res)))
						}
					})
				}
				wg.Wait()
				elapsed += time.Since(start)
				if err := sys.Stop(ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(jobs*b.N)/elapsed.Seconds(), "jobs/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}

func seedPendingOf(b *testing.B, store domain.Store, typ domain.JobType, n int) {
	b.Helper()
	now := time.Now()
	batch := make([]*domain.Job, 0, 1000)
	for i := range n {
		j, err := domain.NewJob(typ, []byte("{}"), 1, now)
		if err != nil {
			b.Fatal(err)
		}
		batch = append(batch, j)
		if len(batch) == cap(batch) || i == n-1 {
			if err := store.Create(context.Background(), batch...); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
}
