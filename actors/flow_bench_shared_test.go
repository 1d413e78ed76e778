package actors

import (
	"context"
	"testing"
	"time"

	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/internal/pgtest"
)

// BenchmarkBurnDownSharedFlow is BenchmarkBurnDownShared (one node) over
// 100,000 jobs spread over 10,000 keys, without settings and with a
// per-key limit of 1: the cost of a key's limit enforced in the claim.
func BenchmarkBurnDownSharedFlow(b *testing.B) {
	const jobs, keys = 100_000, 10_000
	variants := []struct {
		name     string
		settings domain.QueueSettings
	}{
		{"none", domain.QueueSettings{}},
		{"perKeyLimit1", domain.QueueSettings{PerKey: &domain.KeyLimits{Limit: 1}}},
	}
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) {
			var elapsed time.Duration
			for range b.N {
				url := pgtest.URL(b)
				schema := pgtest.RandomSchema(b)
				pgtest.DropSchemaOnCleanup(b, url, schema)
				store := openBenchSchema(b, url, schema)
				seedKeyed(b, store, jobs, keys)
				if !v.settings.IsZero() {
					if err := store.SetQueueSettings(context.Background(), domain.DefaultQueue, v.settings); err != nil {
						b.Fatal(err)
					}
				}
				h := &countingNoop{n: jobs, done: make(chan struct{})}
				elapsed += timeBurnDown(b, h, newNoopSystem(b, store, h,
					WithConfig(Config{Node: "bench-0", Workers: burnDownWorkers}), WithSharedQueue(store)))
			}
			b.ReportMetric(float64(jobs*b.N)/elapsed.Seconds(), "jobs/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}
