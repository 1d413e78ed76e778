package http

import (
	"context"
	"errors"
	"fmt"
	nethttp "net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/actors"
	"github.com/troupe-go/troupe/domain"
)

func twoQueues(context.Context) ([]actors.QueueInfo, error) {
	return []actors.QueueInfo{
		{QueueInfo: domain.QueueInfo{Name: "default", Scheduled: 1, Pending: 2, Running: 3}},
		{QueueInfo: domain.QueueInfo{Name: "email", Paused: true, Pending: 7}, Limit: 2},
	}, nil
}

func TestQueues(t *testing.T) {
	t.Parallel()

	t.Run("List", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		b.svc.QueuesFunc = twoQueues

		rec := b.do(t, request{method: "GET", target: "/queues"})

		require.Equal(t, nethttp.StatusOK, rec.Code)
		require.JSONEq(t, `{"queues":[
			{"name":"default","paused":false,"limit":0,"scheduled":1,"pending":2,"running":3},
			{"name":"email","paused":true,"limit":2,"scheduled":0,"pending":7,"running":0}]}`, rec.Body.String())
		require.Equal(t, "no-store", rec.Header().Get("Cache-Control"))
	})

	t.Run("NoneIsAnEmptyList", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})

		rec := b.do(t, request{method: "GET", target: "/queues"})

		require.JSONEq(t, `{"queues":[]}`, rec.Body.String())
	})

	t.Run("PauseAndResume", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		var calls []string
		b.svc.PauseFunc = func(_ context.Context, name string, pause bool) (actors.QueueInfo, error) {
			calls = append(calls, fmt.Sprint(name, " ", pause))
			return actors.QueueInfo{QueueInfo: domain.QueueInfo{Name: name, Paused: pause, Pending: 4}, Limit: 1}, nil
		}

		paused := b.do(t, request{method: "POST", target: "/queues/email/pause"})
		resumed := b.do(t, request{method: "POST", target: "/queues/email/resume"})

		got := requireJSON[QueueResponse](t, paused, nethttp.StatusOK)
		require.Equal(t, QueueResponse{Name: "email", Paused: true, Limit: 1, Pending: 4}, got)
		got = requireJSON[QueueResponse](t, resumed, nethttp.StatusOK)
		require.False(t, got.Paused)
		require.Equal(t, []string{"email true", "email false"}, calls)
	})

	t.Run("BadName", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{}) // nothing may reach the service

		for _, target := range []string{"/queues/Email/pause", "/queues/-x/resume", "/queues/a%20b/pause"} {
			rec := b.do(t, request{method: "POST", target: target})
			p := requireProblem(t, rec, nethttp.StatusBadRequest, ProblemTypeValidation)
			require.Equal(t, []FieldError{{Field: "name", Message: queueNameRule}}, p.Errors, target)
		}
	})

	t.Run("StoreErrors", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		b.svc.QueuesFunc = func(context.Context) ([]actors.QueueInfo, error) { return nil, domain.ErrUnavailable }
		b.svc.PauseFunc = func(context.Context, string, bool) (actors.QueueInfo, error) {
			return actors.QueueInfo{}, errors.New("disk on fire")
		}

		requireProblem(t, b.do(t, request{method: "GET", target: "/queues"}), nethttp.StatusServiceUnavailable, ProblemTypeUnavailable)
		requireProblem(t, b.do(t, request{method: "POST", target: "/queues/email/pause"}), nethttp.StatusInternalServerError, ProblemTypeInternal)
	})

	t.Run("NeedAToken", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{APITokens: []string{"secret"}})

		requireProblem(t, b.do(t, request{method: "GET", target: "/queues"}), nethttp.StatusUnauthorized, ProblemTypeUnauthorized)
		requireProblem(t, b.do(t, request{method: "POST", target: "/queues/email/pause"}), nethttp.StatusUnauthorized, ProblemTypeUnauthorized)
	})
}

func TestStatsShowQueuesScheduledAndStuck(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	b.svc.QueuesFunc = twoQueues
	b.svc.StatsFunc = func() actors.Stats { return actors.Stats{Stuck: 2, Running: true} }
	b.svc.ListFunc = func(_ context.Context, f domain.Filter) (domain.Page, error) {
		if f.Statuses[0] == domain.StatusScheduled {
			return domain.Page{Total: 11}, nil
		}
		return domain.Page{}, nil
	}

	st := requireJSON[StatsResponse](t, b.do(t, request{method: "GET", target: "/stats"}), nethttp.StatusOK)

	require.Equal(t, 11, st.Counts.Scheduled)
	require.Equal(t, 2, st.Stuck)
	require.Equal(t, []QueueResponse{
		{Name: "default", Scheduled: 1, Pending: 2, Running: 3},
		{Name: "email", Paused: true, Limit: 2, Pending: 7},
	}, st.Queues)
}

func TestQueueMetrics(t *testing.T) {
	t.Parallel()

	t.Run("Gauges", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		b.svc.QueuesFunc = twoQueues
		b.svc.StatsFunc = func() actors.Stats { return actors.Stats{Stuck: 3} }
		m := NewMetrics(b.registry)
		m.AttemptTimedOut(&domain.Job{Type: "report", Queue: "reports"})
		m.AttemptTimedOut(&domain.Job{Type: "report", Queue: "reports"})
		m.JobCreated(&domain.Job{Type: "send_email", Queue: "email"})

		body := b.do(t, request{method: "GET", target: "/metrics"}).Body.String()

		for _, line := range []string{
			`troupe_queue_depth{queue="default"} 2`,
			`troupe_queue_depth{queue="email"} 7`,
			`troupe_queue_paused{queue="default"} 0`,
			`troupe_queue_paused{queue="email"} 1`,
			`troupe_jobs_stuck 3`,
			`troupe_jobs_timed_out_total{queue="reports",type="report"} 2`,
			`troupe_jobs_created_total{queue="email",type="send_email"} 1`,
		} {
			require.Contains(t, body, line+"\n")
		}
	})

	t.Run("AStoreThatCannotListFailsTheQueueSeriesOnly", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		b.svc.QueuesFunc = func(context.Context) ([]actors.QueueInfo, error) { return nil, domain.ErrUnavailable }

		rec := b.do(t, request{method: "GET", target: "/metrics"})

		require.Contains(t, rec.Body.String(), "troupe_active_workers ")
		require.NotContains(t, rec.Body.String(), "troupe_queue_paused{")
	})
}
