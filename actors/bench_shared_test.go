package actors

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/internal/pgtest"
	"github.com/troupe-go/troupe/persistence/pgstore"
)

// BenchmarkBurnDownShared seeds 100,000 pending no-op jobs in PostgreSQL
// and times one node, then three nodes on the same schema, until every job
// has run. It reports jobs/s.
func BenchmarkBurnDownShared(b *testing.B) {
	const jobs = 100_000
	for _, nodes := range []int{1, 3} {
		b.Run(fmt.Sprintf("nodes=%d", nodes), func(b *testing.B) {
			var elapsed time.Duration
			for range b.N {
				url := pgtest.URL(b)
				schema := pgtest.RandomSchema(b)
				pgtest.DropSchemaOnCleanup(b, url, schema)
				h := &countingNoop{n: jobs, done: make(chan struct{})}
				systems := make([]*System, nodes)
				for i := range systems {
					store, err := pgstore.Open(context.Background(), pgstore.Options{URL: url, Schema: schema, MaxConns: 40, Logger: quietLogger()})
					if err != nil {
						b.Fatal(err)
					}
					b.Cleanup(func() { _ = store.Close() })
					if i == 0 {
						seedPending(b, store, jobs)
					}
					sys, err := New(store, WithConfig(Config{Node: fmt.Sprintf("bench-%d", i), Workers: burnDownWorkers}),
						WithSharedQueue(store), WithLogger(quietLogger()))
					if err != nil {
						b.Fatal(err)
					}
					if err := sys.Register("noop", domain.HandlerFunc(h.Execute)); err != nil {
						b.Fatal(err)
					}
					systems[i] = sys
				}
				start := time.Now()
				for _, sys := range systems {
					if err := sys.Start(context.Background()); err != nil {
						b.Fatal(err)
					}
				}
				<-h.done
				elapsed += time.Since(start)
				for _, sys := range systems {
					_ = sys.Stop(context.Background())
				}
			}
			b.ReportMetric(float64(jobs*b.N)/elapsed.Seconds(), "jobs/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}
