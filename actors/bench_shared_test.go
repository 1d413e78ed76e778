package actors

import (
	"context"
	"fmt"
	"testing"
	"time"

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
					store := openBenchSchema(b, url, schema)
					if i == 0 {
						seedPending(b, store, jobs)
					}
					systems[i] = newNoopSystem(b, store, h,
						WithConfig(Config{Node: fmt.Sprintf("bench-%d", i), Workers: burnDownWorkers}), WithSharedQueue(store))
				}
				elapsed += timeBurnDown(b, h, systems...)
			}
			b.ReportMetric(float64(jobs*b.N)/elapsed.Seconds(), "jobs/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// openBenchSchema opens a PostgreSQL store on schema for a benchmark,
// closed at its end.
func openBenchSchema(b *testing.B, url, schema string) *pgstore.Store {
	b.Helper()
	store, err := pgstore.Open(context.Background(), pgstore.Options{URL: url, Schema: schema, MaxConns: 40, Logger: quietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = store.Close() })
	return store
}
