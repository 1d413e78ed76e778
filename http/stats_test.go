package http

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	nethttp "net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/actors"
	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/persistence/memstore"
)

func TestStats(t *testing.T) {
	t.Parallel()

	// countBy answers each one-status listing with the status's count.
	countBy := func(counts map[domain.Status]int, calls *atomic.Int32) func(context.Context, domain.Filter) (domain.Page, error) {
		return func(_ context.Context, f domain.Filter) (domain.Page, error) {
			calls.Add(1)
			if len(f.Statuses) != 1 || f.Limit != 1 || f.Offset != 0 || f.Type != "" {
				return domain.Page{}, errors.New("unexpected filter")
			}
			return domain.Page{Jobs: []*domain.Job{}, Total: counts[f.Statuses[0]]}, nil
		}
	}

	t.Run("ConcurrentCallersShareOneRead", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		var calls atomic.Int32
		release := make(chan struct{})
		entered := make(chan struct{}, 10)
		count := countBy(map[domain.Status]int{domain.StatusPending: 1}, &calls)
		b.svc.ListFunc = func(ctx context.Context, f domain.Filter) (domain.Page, error) {
			entered <- struct{}{}
			<-release
			return count(ctx, f)
		}
		b.svc.StatsFunc = func() actors.Stats { return actors.Stats{Running: true} }
		type result struct {
			st  StatsResponse
			err error
		}
		results := make(chan result, 3)
		for range 3 {
			go func() {
				st, err := b.server.stats(context.Background())
				results <- result{st, err}
			}()
		}
		<-entered // one read is under way; the others wait for it
		close(release)
		for range 3 {
			r := <-results
			require.NoError(t, r.err)
			require.Equal(t, 1, r.st.Counts.Pending)
		}
		require.EqualValues(t, len(domain.Statuses()), calls.Load(), "one read for three callers")
	})

	t.Run("ASlowStoreIsUnavailableAndAskedOnce", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		var calls atomic.Int32
		b.svc.ListFunc = func(ctx context.Context, f domain.Filter) (domain.Page, error) {
			calls.Add(1)
			return domain.Page{}, fmt.Errorf("list: %w", context.DeadlineExceeded)
		}
		b.svc.StatsFunc = func() actors.Stats { return actors.Stats{Running: true} }
		for range 3 {
			rec := b.do(t, request{method: "GET", target: "/stats"})
			requireProblem(t, rec, nethttp.StatusServiceUnavailable, ProblemTypeUnavailable)
		}
		require.EqualValues(t, 1, calls.Load(), "the failure is kept like a sample")
	})

	t.Run("CountsByStatusWithWorkersAndQueue", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		var calls atomic.Int32
		b.svc.ListFunc = countBy(map[domain.Status]int{
			domain.StatusPending: 5, domain.StatusRunning: 2, domain.StatusCompleted: 40,
			domain.StatusFailed: 3, domain.StatusCanceled: 1,
		}, &calls)
		b.svc.StatsFunc = func() actors.Stats {
			return actors.Stats{Workers: actors.WorkerStats{Size: 8, Busy: 2}, QueueDepth: 5, Running: true}
		}

		rec := b.do(t, request{method: "GET", target: "/stats"})
		got := requireJSON[StatsResponse](t, rec, nethttp.StatusOK)
		require.Equal(t, StatusCounts{Pending: 5, Running: 2, Completed: 40, Failed: 3, Canceled: 1}, got.Counts)
		require.Equal(t, WorkersResponse{Size: 8, Busy: 2}, got.Workers)
		require.Equal(t, 5, got.QueueDepth)
		require.False(t, got.SampledAt.IsZero())
		require.Equal(t, "no-store", rec.Header().Get("Cache-Control"))
		require.EqualValues(t, len(domain.Statuses()), calls.Load(), "one count per status")
	})

	t.Run("ASampleServesCallersForASecond", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		var calls atomic.Int32
		b.svc.ListFunc = countBy(nil, &calls)
		first := requireJSON[StatsResponse](t, b.do(t, request{method: "GET", target: "/stats"}), nethttp.StatusOK)
		second := requireJSON[StatsResponse](t, b.do(t, request{method: "GET", target: "/stats"}), nethttp.StatusOK)
		// The second call may come after the sample expired on a slow
		// machine; then it is a fresh sample, counted again.
		if second.SampledAt.Equal(first.SampledAt.Time) {
			require.EqualValues(t, len(domain.Statuses()), calls.Load())
		}
	})

	t.Run("StoreErrorIs500", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		b.svc.ListFunc = func(context.Context, domain.Filter) (domain.Page, error) {
			return domain.Page{}, errors.New("disk on fire")
		}
		rec := b.do(t, request{method: "GET", target: "/stats"})
		p := requireProblem(t, rec, nethttp.StatusInternalServerError, ProblemTypeInternal)
		require.NotContains(t, p.Detail, "disk on fire")
	})

	t.Run("NeedsAToken", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{APITokens: []string{"secret"}})
		requireProblem(t, b.do(t, request{method: "GET", target: "/stats"}), nethttp.StatusUnauthorized, ProblemTypeUnauthorized)
	})
}

func TestJobTypes(t *testing.T) {
	t.Parallel()

	t.Run("SortedRegisteredTypes", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		b.svc.JobTypesFunc = func() []domain.JobType { return []domain.JobType{"sleep", "noop", "flaky"} }
		got := requireJSON[JobTypesResponse](t, b.do(t, request{method: "GET", target: "/job-types"}), nethttp.StatusOK)
		require.Equal(t, []domain.JobType{"flaky", "noop", "sleep"}, got.Types)
	})

	t.Run("NoneIsAnEmptyList", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		b.svc.JobTypesFunc = func() []domain.JobType { return nil }
		rec := b.do(t, request{method: "GET", target: "/job-types"})
		require.JSONEq(t, `{"types":[],"jobTypes":[]}`, rec.Body.String())
	})

	t.Run("NeedsAToken", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{APITokens: []string{"secret"}})
		requireProblem(t, b.do(t, request{method: "GET", target: "/job-types"}), nethttp.StatusUnauthorized, ProblemTypeUnauthorized)
	})
}

// TestRuntimeRetention checks that the runtime's adapter reads the
// retention the System was configured with, defaults filled.
func TestRuntimeRetention(t *testing.T) {
	t.Parallel()
	sys, err := actors.New(memstore.New(), actors.WithRetention(actors.Retention{Completed: time.Hour, Failed: actors.KeepForever}),
		actors.WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)

	r := Runtime(sys).Retention()

	require.Equal(t, actors.Retention{Completed: time.Hour, Failed: actors.KeepForever, Canceled: actors.RetainCanceledDefault}, r)
	require.Equal(t, RetentionResponse{Completed: ptr("1h0m0s"), Canceled: ptr("168h0m0s")}, newRetentionResponse(r))
}

func ptr[T any](v T) *T { return &v }
