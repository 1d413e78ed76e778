package http

import (
	"context"
	nethttp "net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/actors"
	"github.com/troupe-go/troupe/domain"
)

func TestMetrics(t *testing.T) {
	t.Parallel()

	t.Run("CountersAndGauges", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		b.svc.StatsFunc = func() actors.Stats {
			return actors.Stats{Workers: actors.WorkerStats{Size: 8, Busy: 5}, QueueDepth: 42, Running: true}
		}
		m := NewMetrics(b.registry)
		job := func(typ domain.JobType, status domain.Status) *domain.Job {
			return &domain.Job{Type: typ, Status: status, Queue: domain.DefaultQueue}
		}
		m.JobCreated(job("send_email", domain.StatusPending))
		m.JobCreated(job("send_email", domain.StatusPending))
		m.JobCreated(job("noop", domain.StatusPending))
		m.JobRetried(job("send_email", domain.StatusScheduled))
		m.JobFinished(job("send_email", domain.StatusCompleted))
		m.JobFinished(job("noop", domain.StatusFailed))
		m.JobFinished(job("noop", domain.StatusCanceled))
		m.JobFinished(job("noop", domain.StatusRunning)) // not an ending: ignored
		m.AttemptFinished(job("send_email", domain.StatusRunning), 1500*time.Millisecond)

		rec := b.do(t, request{method: "GET", target: "/metrics"})

		require.Equal(t, nethttp.StatusOK, rec.Code)
		require.True(t, strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain"), rec.Header().Get("Content-Type"))
		body := rec.Body.String()
		for _, line := range []string{
			`troupe_jobs_created_total{queue="default",type="send_email"} 2`,
			`troupe_jobs_created_total{queue="default",type="noop"} 1`,
			`troupe_jobs_retried_total{queue="default",type="send_email"} 1`,
			`troupe_jobs_completed_total{queue="default",type="send_email"} 1`,
			`troupe_jobs_failed_total{queue="default",type="noop"} 1`,
			`troupe_jobs_canceled_total{queue="default",type="noop"} 1`,
			`troupe_job_duration_seconds_count{queue="default",type="send_email"} 1`,
			`troupe_job_duration_seconds_sum{queue="default",type="send_email"} 1.5`,
			`troupe_active_workers 5`,
			`troupe_ready_queue_depth 42`,
			`# TYPE troupe_job_duration_seconds histogram`,
		} {
			require.Contains(t, body, line+"\n")
		}
		require.NotContains(t, body, `troupe_jobs_completed_total{queue="default",type="noop"}`)
		require.Contains(t, body, "go_goroutines ")
		require.Contains(t, body, "process_")
	})

	t.Run("JobsPrunedByStatus", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		m := NewMetrics(b.registry)
		m.JobsPruned(domain.StatusCompleted, 1000)
		m.JobsPruned(domain.StatusCompleted, 37)
		m.JobsPruned(domain.StatusFailed, 2)
		m.JobsPruned(domain.StatusCanceled, 0) // an empty batch: no series

		body := b.do(t, request{method: "GET", target: "/metrics"}).Body.String()

		require.Contains(t, body, `troupe_jobs_pruned_total{status="completed"} 1037`+"\n")
		require.Contains(t, body, `troupe_jobs_pruned_total{status="failed"} 2`+"\n")
		require.Contains(t, body, "# TYPE troupe_jobs_pruned_total counter\n")
		require.NotContains(t, body, `troupe_jobs_pruned_total{status="canceled"}`)
	})

	t.Run("GaugesAreReadAtScrapeTime", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		depth := 1
		b.svc.StatsFunc = func() actors.Stats { return actors.Stats{QueueDepth: depth} }

		require.Contains(t, b.do(t, request{method: "GET", target: "/metrics"}).Body.String(), "troupe_ready_queue_depth 1\n")
		depth = 7
		require.Contains(t, b.do(t, request{method: "GET", target: "/metrics"}).Body.String(), "troupe_ready_queue_depth 7\n")
	})

	t.Run("OwnRegistryNotTheGlobalOne", func(t *testing.T) {
		t.Parallel()
		// Two servers in one process do not collide, and nothing lands in
		// the default registry.
		setup(t, Config{})
		setup(t, Config{})
		families, err := prometheus.DefaultGatherer.Gather()
		require.NoError(t, err)
		for _, f := range families {
			require.False(t, strings.HasPrefix(f.GetName(), "troupe_"), f.GetName())
		}
	})

	t.Run("DefaultRegistryHasGaugesOnly", func(t *testing.T) {
		t.Parallel()
		s, err := NewServer(Config{Addr: "127.0.0.1:0"}, &fakeService{t: t})
		require.NoError(t, err)
		rec := request{method: "GET", target: "/metrics"}
		b := &testBundle{server: s}

		body := b.do(t, rec).Body.String()

		require.Contains(t, body, "troupe_ready_queue_depth 0\n")
		require.Contains(t, body, "go_goroutines ")
	})

	t.Run("SecondServerOnOneRegistryFails", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})

		_, err := NewServer(Config{}, b.svc, WithRegistry(b.registry))

		require.Error(t, err)
	})

	t.Run("Requests", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		b.svc.GetFunc = func(context.Context, uuid.UUID) (*domain.Job, error) { return nil, domain.ErrNotFound }
		b.svc.ListFunc = func(context.Context, domain.Filter) (domain.Page, error) { return domain.Page{}, nil }

		b.do(t, request{method: "GET", target: jobsPath(uuid.New())})
		b.do(t, request{method: "GET", target: jobsPath(uuid.New())})
		b.do(t, request{method: "GET", target: "/jobs"})
		b.do(t, request{method: "GET", target: "/wp-admin/setup.php"})
		b.do(t, request{method: "GET", target: "/.env"})
		b.do(t, request{method: "POST", target: "/health"})

		body := b.do(t, request{method: "GET", target: "/metrics"}).Body.String()
		for _, line := range []string{
			`# TYPE troupe_http_requests_total counter`,
			`troupe_http_requests_total{code="404",route="/jobs/:id"} 2`,
			`troupe_http_requests_total{code="200",route="/jobs"} 1`,
			// Paths without a route share one series, whatever they are.
			`troupe_http_requests_total{code="404",route="unmatched"} 2`,
			`troupe_http_requests_total{code="405",route="unmatched"} 1`,
			`# TYPE troupe_http_request_duration_seconds histogram`,
			`troupe_http_request_duration_seconds_count{route="/jobs/:id"} 2`,
			`troupe_http_request_duration_seconds_count{route="unmatched"} 3`,
		} {
			require.Contains(t, body, line+"\n")
		}
		require.NotContains(t, body, "wp-admin", "a raw path is never a label")
		require.NotContains(t, body, `route="/jobs/0`, "a raw path is never a label")
	})

	t.Run("NilRegistererRegistersNothing", func(t *testing.T) {
		t.Parallel()
		m := NewMetrics(nil)
		m.JobCreated(&domain.Job{Type: "noop"}) // still safe to call
	})
}
