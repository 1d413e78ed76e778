package pgstore

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
)

// BenchmarkClaimComplete measures a node's work loop against the database:
// claim up to 100 ready jobs, then record each as completed with
// UpdateOwned. It reports jobs/s.
func BenchmarkClaimComplete(b *testing.B) {
	s := newTestStore(b)
	ctx := b.Context()
	const batch = 100
	jobs := make([]*domain.Job, b.N)
	for i := range jobs {
		jobs[i] = newJob(b, "noop", 3, past(i))
	}
	for start := 0; start < len(jobs); start += 1000 {
		require.NoError(b, s.Create(ctx, jobs[start:min(start+1000, len(jobs))]...))
	}

	b.ResetTimer()
	done := 0
	for done < b.N {
		claimed, err := s.ClaimJobs(ctx, "bench", domain.ClaimRequest{Limit: batch, Lease: time.Minute})
		require.NoError(b, err)
		require.NotEmpty(b, claimed)
		for _, j := range claimed {
			require.NoError(b, j.Complete(time.Now()))
			require.NoError(b, s.UpdateOwned(ctx, "bench", j))
		}
		done += len(claimed)
	}
	b.StopTimer()
	b.ReportMetric(float64(done)/b.Elapsed().Seconds(), "jobs/s")
}

// BenchmarkCreateBatch measures Create of 1,000 jobs in one call, the size
// of a large batch submission. It reports jobs/s.
func BenchmarkCreateBatch(b *testing.B) {
	s := newTestStore(b)
	ctx := b.Context()
	const batch = 1000
	created := 0
	for b.Loop() {
		b.StopTimer()
		jobs := make([]*domain.Job, batch)
		for i := range jobs {
			jobs[i] = newJob(b, "noop", 3, past(i))
		}
		b.StartTimer()
		require.NoError(b, s.Create(ctx, jobs...))
		created += batch
	}
	b.ReportMetric(float64(created)/b.Elapsed().Seconds(), "jobs/s")
}

// BenchmarkClaimCompleteFlow is BenchmarkClaimComplete on a queue without
// settings and on one with a per-key limit of 1 over 10,000 keys (the jobs
// of a key far apart, as many tenants' would be), on the same machine one
// after the other: the cost of the flow-controlled claim. It reports jobs/s.
func BenchmarkClaimCompleteFlow(b *testing.B) {
	for _, bc := range []struct {
		name     string
		settings domain.QueueSettings
		keys     int
	}{
		{"NoSettings", domain.QueueSettings{}, 0},
		{"NoSettingsWithKeys", domain.QueueSettings{}, 10_000},
		{"PerKeyLimit1Over10000Keys", domain.QueueSettings{PerKey: &domain.KeyLimits{Limit: 1}}, 10_000},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s := newTestStore(b)
			ctx := b.Context()
			if !bc.settings.IsZero() {
				require.NoError(b, s.SetQueueSettings(ctx, domain.DefaultQueue, bc.settings))
			}
			const batch = 100
			jobs := make([]*domain.Job, b.N)
			for i := range jobs {
				jobs[i] = newJob(b, "noop", 3, past(i))
				if bc.keys > 0 {
					jobs[i].Key = "tenant-" + strconv.Itoa(i%bc.keys)
				}
			}
			for start := 0; start < len(jobs); start += 1000 {
				require.NoError(b, s.Create(ctx, jobs[start:min(start+1000, len(jobs))]...))
			}

			b.ResetTimer()
			done := 0
			for done < b.N {
				claimed, err := s.ClaimJobs(ctx, "bench", domain.ClaimRequest{Limit: batch, Lease: time.Minute})
				require.NoError(b, err)
				require.NotEmpty(b, claimed)
				for _, j := range claimed {
					require.NoError(b, j.Complete(time.Now()))
					require.NoError(b, s.UpdateOwned(ctx, "bench", j))
				}
				done += len(claimed)
			}
			b.StopTimer()
			b.ReportMetric(float64(done)/b.Elapsed().Seconds(), "jobs/s")
		})
	}
}
