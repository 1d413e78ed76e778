package actors

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/internal/pgtest"
	"github.com/troupe-go/troupe/persistence/pgstore"
)

// BenchmarkBurnDownShared seeds 100,000 pending no-op jobs in PostgreSQL
// and times one node, then three nodes on the same schema, each with its
// own pool, until every job's completed outcome is committed (through
// UpdateOwned, whichever node ran it). It reports jobs/s.
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
func openBenchSchema(tb testing.TB, url, schema string) *pgstore.Store {
	tb.Helper()
	store, err := pgstore.Open(context.Background(), pgstore.Options{URL: url, Schema: schema, MaxConns: 40, Logger: quietLogger()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = store.Close() })
	return store
}

// TestBurnDownSharedCountsCommittedOutcomes is
// TestBurnDownCountsCommittedOutcomes on two nodes sharing a PostgreSQL
// queue, as BenchmarkBurnDownShared runs them.
func TestBurnDownSharedCountsCommittedOutcomes(t *testing.T) {
	t.Parallel()
	const jobs = 200
	url := pgtest.URL(t)
	schema := pgtest.RandomSchema(t)
	pgtest.DropSchemaOnCleanup(t, url, schema)
	h := &countingNoop{n: jobs, done: make(chan struct{})}
	var first *pgstore.Store
	systems := make([]*System, 2)
	for i := range systems {
		store := openBenchSchema(t, url, schema)
		if i == 0 {
			first = store
			seedPending(t, store, jobs)
		}
		systems[i] = newNoopSystem(t, store, h,
			WithConfig(Config{Node: fmt.Sprintf("bench-%d", i), Workers: 4}), WithSharedQueue(store))
	}
	timeBurnDown(t, h, systems...)
	requireCompleted(t, first, jobs)
	require.EqualValues(t, jobs, h.committed.Load())
}
