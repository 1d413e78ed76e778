package actors

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/persistence/memstore"
)

// BenchmarkBurnDownFlow burns down 100,000 pending jobs spread over 10,000
// keys in one queue, as BenchmarkBurnDown does, with and without flow
// settings, on the memory store (the runtime's own cost). It reports
// jobs/s; compare the settings with "none".
func BenchmarkBurnDownFlow(b *testing.B) {
	const jobs, keys = 100_000, 10_000
	variants := []struct {
		name     string
		settings domain.QueueSettings
	}{
		{"none", domain.QueueSettings{}},
		{"limit", domain.QueueSettings{Limit: burnDownWorkers}},
		{"perKeyLimit1", domain.QueueSettings{PerKey: &domain.KeyLimits{Limit: 1}}},
		{"ordered", domain.QueueSettings{PerKey: &domain.KeyLimits{Limit: 1}, Ordered: true}},
		{"fair", domain.QueueSettings{Fair: true}},
	}
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) {
			var elapsed time.Duration
			for range b.N {
				store := memstore.New()
				seedKeyed(b, store, jobs, keys)
				if !v.settings.IsZero() {
					if err := store.SetQueueSettings(context.Background(), domain.DefaultQueue, v.settings); err != nil {
						b.Fatal(err)
					}
				}
				h := &countingNoop{n: jobs, done: make(chan struct{})}
				elapsed += timeBurnDown(b, h, newNoopSystem(b, store, h, WithWorkers(burnDownWorkers)))
			}
			b.ReportMetric(float64(jobs*b.N)/elapsed.Seconds(), "jobs/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// seedKeyed stores n pending jobs, job i with key i mod keys.
func seedKeyed(b *testing.B, store domain.Store, n, keys int) {
	b.Helper()
	now := time.Now()
	batch := make([]*domain.Job, 0, 1000)
	for i := range n {
		j, err := domain.NewJob("noop", []byte("{}"), 1, now)
		if err != nil {
			b.Fatal(err)
		}
		j.Key = fmt.Sprintf("key-%d", i%keys)
		batch = append(batch, j)
		if len(batch) == cap(batch) || i == n-1 {
			if err := store.Create(context.Background(), batch...); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
}
