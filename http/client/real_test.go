package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/actors"
	"github.com/troupe-go/troupe/domain"
	troupehttp "github.com/troupe-go/troupe/http"
	"github.com/troupe-go/troupe/http/client"
	"github.com/troupe-go/troupe/persistence/memstore"
)

// realServer is a real API server over a running actors.System on the
// memory store, on a loopback port.
type realServer struct {
	sys *actors.System
	url string
}

// externalTypes are the types the real server leaves to external workers.
var externalTypes = []domain.JobType{"resize", "parse", "long"}

// startRealServer starts the runtime with a Go "noop" handler, a Go
// "gated" handler that waits for gate, and externalTypes, and an API
// server on it.
func startRealServer(t *testing.T, gate <-chan struct{}, opts ...actors.Option) *realServer {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	store := memstore.New()
	sys, err := actors.New(store, append([]actors.Option{
		actors.WithWorkers(4), actors.WithLogger(logger), actors.WithExternalTypes(externalTypes...),
	}, opts...)...)
	require.NoError(t, err)
	require.NoError(t, sys.Register("noop", domain.HandlerFunc(func(ctx context.Context, payload []byte) error {
		return domain.SetResult(ctx, json.RawMessage(payload))
	})))
	require.NoError(t, sys.Register("gated", domain.HandlerFunc(func(ctx context.Context, _ []byte) error {
		select {
		case <-gate:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})))
	require.NoError(t, sys.Start(t.Context()))
	srv, err := troupehttp.NewServer(troupehttp.Config{Addr: "127.0.0.1:0"}, troupehttp.Runtime(sys), troupehttp.WithLogger(logger), troupehttp.WithRequestLog(store))
	require.NoError(t, err)
	require.NoError(t, srv.Start(t.Context()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, srv.Stop(ctx))
		require.NoError(t, sys.Stop(ctx))
	})
	return &realServer{sys: sys, url: "http://" + srv.Addr().String()}
}

func TestAgainstARealServer(t *testing.T) {
	t.Parallel()
	gate := make(chan struct{})
	srv := startRealServer(t, gate)
	c := newTestClient(t, srv.url)
	ctx := t.Context()

	t.Run("submit, then wait for the result", func(t *testing.T) {
		t.Parallel()
		job, created, err := c.Submit(ctx, client.SubmitRequest{Type: "noop", Payload: json.RawMessage(`{"n":1}`)})
		require.NoError(t, err)
		require.True(t, created)
		done, err := c.Wait(ctx, job.ID)
		require.NoError(t, err)
		require.Equal(t, domain.StatusCompleted, done.Status)
		require.JSONEq(t, `{"n":1}`, string(done.Result))
		got, err := c.Get(ctx, job.ID)
		require.NoError(t, err)
		require.Equal(t, done.Status, got.Status)
	})

	t.Run("a retry with the same key answers the same job", func(t *testing.T) {
		t.Parallel()
		req := client.SubmitRequest{Type: "gated", Queue: "idem"}
		first, created, err := c.Submit(ctx, req, client.IdempotencyKey("k-"+uuid.NewString()))
		require.NoError(t, err)
		require.True(t, created)
		key := client.IdempotencyKey("k2-" + uuid.NewString())
		a, _, err := c.Submit(ctx, req, key)
		require.NoError(t, err)
		b, _, err := c.Submit(ctx, req, key)
		require.NoError(t, err)
		require.Equal(t, a.ID, b.ID, "the replay answers the first job")
		require.NotEqual(t, first.ID, a.ID)
		list, err := c.List(ctx, client.Filter{Queue: "idem"})
		require.NoError(t, err)
		require.Equal(t, 2, list.Total, "the replay created nothing")
	})

	t.Run("the list iterator reads every page", func(t *testing.T) {
		t.Parallel()
		reqs := make([]client.SubmitRequest, 23)
		for i := range reqs {
			reqs[i] = client.SubmitRequest{Type: "gated", Queue: "paged", Delay: "1h"}
		}
		batch, err := c.SubmitBatch(ctx, reqs)
		require.NoError(t, err)
		require.Len(t, batch.Jobs, 23)
		seen := map[uuid.UUID]bool{}
		for job, err := range c.All(ctx, client.Filter{Queue: "paged", Limit: 5}) {
			require.NoError(t, err)
			seen[job.ID] = true
		}
		require.Len(t, seen, 23)
		for _, j := range batch.Jobs {
			require.True(t, seen[j.ID])
		}
	})

	t.Run("errors are problems", func(t *testing.T) {
		t.Parallel()
		_, err := c.Get(ctx, uuid.New())
		require.True(t, client.IsNotFound(err), "%v", err)
		_, _, err = c.Submit(ctx, client.SubmitRequest{Type: "nope"})
		require.True(t, client.IsProblem(err, client.ProblemUnknownJobType), "%v", err)
		_, _, err = c.Submit(ctx, client.SubmitRequest{Type: "noop", Priority: 12})
		var p *client.Problem
		require.ErrorAs(t, err, &p)
		require.Equal(t, client.ProblemValidation, p.Type)
		require.Equal(t, "priority", p.Errors[0].Field)
		_, err = c.PauseQueue(ctx, "Not A Queue")
		require.True(t, client.IsInvalid(err), "%v", err)
	})

	t.Run("queues, schedules, stats, types and health", func(t *testing.T) {
		t.Parallel()
		q, err := c.PauseQueue(ctx, "ops")
		require.NoError(t, err)
		require.True(t, q.Paused)
		q, err = c.ResumeQueue(ctx, "ops")
		require.NoError(t, err)
		require.False(t, q.Paused)
		_, err = c.Queues(ctx)
		require.NoError(t, err)

		s, err := c.PutSchedule(ctx, "nightly", client.ScheduleRequest{Cron: "0 3 * * *", Job: client.ScheduleJob{Type: "noop"}})
		require.NoError(t, err)
		require.Equal(t, "nightly", s.Name)
		_, err = c.PauseSchedule(ctx, "nightly")
		require.NoError(t, err)
		_, err = c.ResumeSchedule(ctx, "nightly")
		require.NoError(t, err)
		job, err := c.TriggerSchedule(ctx, "nightly")
		require.NoError(t, err)
		require.Equal(t, "nightly", job.Schedule)
		list, err := c.Schedules(ctx)
		require.NoError(t, err)
		require.NotEmpty(t, list)
		require.NoError(t, c.DeleteSchedule(ctx, "nightly"))
		_, err = c.Schedule(ctx, "nightly")
		require.True(t, client.IsNotFound(err))

		st, err := c.Stats(ctx)
		require.NoError(t, err)
		require.Equal(t, 4, st.Workers.Size)
		types, err := c.JobTypes(ctx)
		require.NoError(t, err)
		require.Contains(t, types.Types, domain.JobType("noop"))
		h, err := c.Health(ctx)
		require.NoError(t, err)
		require.True(t, h.OK())
		m, err := c.Metrics(ctx)
		require.NoError(t, err)
		require.NotEmpty(t, m)
		spec, err := c.OpenAPI(ctx)
		require.NoError(t, err)
		require.Contains(t, string(spec), "openapi:")
	})

	t.Run("cancel and retry", func(t *testing.T) {
		t.Parallel()
		job, _, err := c.Submit(ctx, client.SubmitRequest{Type: "gated", Delay: "1h"})
		require.NoError(t, err)
		canceled, err := c.Cancel(ctx, job.ID)
		require.NoError(t, err)
		require.Equal(t, domain.StatusCanceled, canceled.Status)
		copyJob, err := c.Retry(ctx, job.ID)
		require.NoError(t, err)
		require.Equal(t, job.ID, *copyJob.RetryOf)
		_, err = c.Cancel(ctx, copyJob.ID)
		require.NoError(t, err)
	})
}

func TestWorkerAgainstARealServer(t *testing.T) {
	t.Parallel()
	srv := startRealServer(t, nil)
	c := newTestClient(t, srv.url)
	ctx := t.Context()

	release := make(chan struct{})
	w := client.NewWorker(c, client.WorkerOptions{Batch: 10, Lease: 5 * time.Second, Wait: time.Second})
	w.Handle("resize", domain.HandlerFunc(func(ctx context.Context, payload []byte) error {
		var in struct {
			N    int  `json:"n"`
			Slow bool `json:"slow"`
		}
		if err := json.Unmarshal(payload, &in); err != nil {
			return domain.Permanent(err)
		}
		if in.Slow {
			domain.ReportProgress(ctx, 50, "half")
			select {
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return domain.SetResult(ctx, map[string]int{"double": 2 * in.N})
	}))
	w.Handle("parse", domain.HandlerFunc(func(context.Context, []byte) error {
		return domain.Permanent(errors.New("cannot parse"))
	}))
	runWorker(t, w)

	slow, _, err := c.Submit(ctx, client.SubmitRequest{Type: "resize", Payload: json.RawMessage(`{"n":100,"slow":true}`)})
	require.NoError(t, err)
	var ids []uuid.UUID
	for i := range 30 {
		job, _, err := c.Submit(ctx, client.SubmitRequest{Type: "resize", Payload: json.RawMessage(`{"n":` + strconv.Itoa(i) + `}`)})
		require.NoError(t, err)
		ids = append(ids, job.ID)
	}
	for i, id := range ids {
		done, err := c.Wait(ctx, id)
		require.NoError(t, err)
		require.Equal(t, domain.StatusCompleted, done.Status)
		require.JSONEq(t, `{"double":`+strconv.Itoa(2*i)+`}`, string(done.Result))
	}

	// The slow job's progress reaches the server on a heartbeat.
	for job, err := range c.JobEvents(ctx, slow.ID) {
		require.NoError(t, err)
		if job.Progress != nil {
			require.Equal(t, 50.0, job.Progress.Percent)
			require.Equal(t, "half", job.Progress.Message)
			require.Equal(t, domain.StatusRunning, job.Status)
			break
		}
	}
	close(release)
	done, err := c.Wait(ctx, slow.ID)
	require.NoError(t, err)
	require.JSONEq(t, `{"double":200}`, string(done.Result))

	bad, _, err := c.Submit(ctx, client.SubmitRequest{Type: "parse", MaxAttempts: 5})
	require.NoError(t, err)
	done, err = c.Wait(ctx, bad.ID)
	require.NoError(t, err)
	require.Equal(t, domain.StatusFailed, done.Status)
	require.Equal(t, 1, done.Attempts, "a permanent error fails the job at once")
	require.Contains(t, done.LastError, "cannot parse")
}

func TestWorkerProtocolAgainstARealServer(t *testing.T) {
	t.Parallel()
	srv := startRealServer(t, nil)
	c := newTestClient(t, srv.url)
	ctx := t.Context()

	t.Run("claim, heartbeat, complete; a wrong or spent token is lease-lost", func(t *testing.T) {
		t.Parallel()
		job, _, err := c.Submit(ctx, client.SubmitRequest{Type: "long", Queue: "proto", Payload: json.RawMessage(`{"x":1}`)})
		require.NoError(t, err)
		claimed, err := c.Claim(ctx, client.ClaimRequest{Types: []domain.JobType{"long"}, Queues: []string{"proto"}, Max: 5, Wait: 5 * time.Second, Lease: 5 * time.Second})
		require.NoError(t, err)
		require.Len(t, claimed, 1)
		cj := claimed[0]
		require.Equal(t, job.ID, cj.ID)
		require.Equal(t, 1, cj.Attempt)
		require.NotEmpty(t, cj.LeaseToken)
		require.JSONEq(t, `{"x":1}`, string(cj.Payload))

		_, err = c.Heartbeat(ctx, cj.ID, "not-the-token", nil)
		require.True(t, client.IsLeaseLost(err), "%v", err)
		st, err := c.Heartbeat(ctx, cj.ID, cj.LeaseToken, &client.ProgressReport{Percent: 10, Message: "started"})
		require.NoError(t, err)
		require.False(t, st.CancelRequested)
		require.True(t, st.LeaseExpiresAt.After(time.Now()))
		_, err = c.Complete(ctx, cj.ID, "not-the-token", nil)
		require.True(t, client.IsLeaseLost(err), "%v", err)
		done, err := c.Complete(ctx, cj.ID, cj.LeaseToken, json.RawMessage(`{"ok":true}`))
		require.NoError(t, err)
		require.Equal(t, domain.StatusCompleted, done.Status)
		require.JSONEq(t, `{"ok":true}`, string(done.Result))
		_, err = c.Complete(ctx, cj.ID, cj.LeaseToken, nil)
		require.True(t, client.IsLeaseLost(err), "an ended attempt: %v", err)
		_, err = c.Heartbeat(ctx, uuid.New(), cj.LeaseToken, nil)
		require.True(t, client.IsNotFound(err), "%v", err)
	})

	t.Run("fail and outcomes in a batch", func(t *testing.T) {
		t.Parallel()
		for range 3 {
			_, _, err := c.Submit(ctx, client.SubmitRequest{Type: "parse", Queue: "batch", MaxAttempts: 3})
			require.NoError(t, err)
		}
		claimed, err := c.Claim(ctx, client.ClaimRequest{Types: []domain.JobType{"parse"}, Queues: []string{"batch"}, Max: 3, Wait: 5 * time.Second})
		require.NoError(t, err)
		for len(claimed) < 3 {
			more, err := c.Claim(ctx, client.ClaimRequest{Types: []domain.JobType{"parse"}, Queues: []string{"batch"}, Max: 3 - len(claimed), Wait: 5 * time.Second})
			require.NoError(t, err)
			claimed = append(claimed, more...)
		}
		failed, err := c.Fail(ctx, claimed[0].ID, claimed[0].LeaseToken, client.Failure{Error: "bad input", Permanent: true})
		require.NoError(t, err)
		require.Equal(t, domain.StatusFailed, failed.Status)
		res, err := c.ReportOutcomes(ctx, []client.Outcome{
			{ID: claimed[1].ID, LeaseToken: claimed[1].LeaseToken, Result: json.RawMessage(`[1,2]`)},
			{ID: claimed[2].ID, LeaseToken: claimed[2].LeaseToken, Failure: &client.Failure{Error: "busy", RetryIn: time.Hour}},
			{ID: claimed[0].ID, LeaseToken: claimed[0].LeaseToken, Result: json.RawMessage(`1`)},
		})
		require.NoError(t, err)
		require.Len(t, res, 3)
		require.NoError(t, res[0].Err())
		require.Equal(t, domain.StatusCompleted, res[0].Status)
		require.NoError(t, res[1].Err())
		require.Equal(t, domain.StatusScheduled, res[1].Status, "retries in an hour")
		require.True(t, client.IsLeaseLost(res[2].Err()), "%v", res[2].Err())
	})

	t.Run("a lease that lapses is lost; the job runs again", func(t *testing.T) {
		t.Parallel()
		job, _, err := c.Submit(ctx, client.SubmitRequest{Type: "long", Queue: "lapse"})
		require.NoError(t, err)
		claimed, err := c.Claim(ctx, client.ClaimRequest{Types: []domain.JobType{"long"}, Queues: []string{"lapse"}, Wait: 5 * time.Second, Lease: 5 * time.Second})
		require.NoError(t, err)
		require.Len(t, claimed, 1)
		// No heartbeat: after the lease the job is pending again.
		again, err := c.Claim(ctx, client.ClaimRequest{Types: []domain.JobType{"long"}, Queues: []string{"lapse"}, Wait: 20 * time.Second, Lease: 5 * time.Second})
		require.NoError(t, err)
		require.Len(t, again, 1, "claimed again once the first lease lapsed")
		require.Equal(t, job.ID, again[0].ID)
		require.Equal(t, 2, again[0].Attempt)
		_, err = c.Complete(ctx, job.ID, claimed[0].LeaseToken, nil)
		require.True(t, client.IsLeaseLost(err), "the late outcome is refused: %v", err)
		done, err := c.Complete(ctx, job.ID, again[0].LeaseToken, json.RawMessage(`"second"`))
		require.NoError(t, err)
		require.JSONEq(t, `"second"`, string(done.Result))
	})
}

func TestWorkerSeesACancelAgainstARealServer(t *testing.T) {
	t.Parallel()
	srv := startRealServer(t, nil)
	c := newTestClient(t, srv.url)
	ctx := t.Context()

	causes := make(chan error, 1)
	w := client.NewWorker(c, client.WorkerOptions{Lease: 5 * time.Second, Wait: time.Second})
	w.Handle("long", domain.HandlerFunc(func(ctx context.Context, _ []byte) error {
		<-ctx.Done()
		causes <- context.Cause(ctx)
		return ctx.Err()
	}))
	runWorker(t, w)

	job, _, err := c.Submit(ctx, client.SubmitRequest{Type: "long"})
	require.NoError(t, err)
	for j, err := range c.JobEvents(ctx, job.ID) {
		require.NoError(t, err)
		if j.Status == domain.StatusRunning {
			break
		}
	}
	_, err = c.Cancel(ctx, job.ID)
	require.NoError(t, err)
	done, err := c.Wait(ctx, job.ID)
	require.NoError(t, err)
	require.Equal(t, domain.StatusCanceled, done.Status)
	require.ErrorIs(t, <-causes, client.ErrCanceled, "the heartbeat told the worker")
}

func TestWorkerResultOverTheServersLimitFailsTheAttempt(t *testing.T) {
	t.Parallel()
	srv := startRealServer(t, nil)
	c := newTestClient(t, srv.url)
	ctx := t.Context()

	// The worker's own limit is higher than the server's (64 KiB).
	w := client.NewWorker(c, client.WorkerOptions{Wait: time.Second, MaxResultBytes: 1 << 20})
	w.Handle("resize", domain.HandlerFunc(func(ctx context.Context, _ []byte) error {
		return domain.SetResult(ctx, strings.Repeat("x", 100<<10))
	}))
	runWorker(t, w)
	job, _, err := c.Submit(ctx, client.SubmitRequest{Type: "resize", MaxAttempts: 1})
	require.NoError(t, err)
	done, err := c.Wait(ctx, job.ID)
	require.NoError(t, err)
	require.Equal(t, domain.StatusFailed, done.Status)
	require.Contains(t, done.LastError, "result")
	require.Nil(t, done.Result)
}

func TestQueueSettingsAgainstARealServer(t *testing.T) {
	t.Parallel()
	gate := make(chan struct{})
	srv := startRealServer(t, gate)
	c := newTestClient(t, srv.url)
	ctx := t.Context()

	q, err := c.SetQueue(ctx, "flow", client.QueueSettings{Limit: 1, PerKey: &client.KeyLimits{Limit: 1}, Ordered: true})
	require.NoError(t, err)
	require.Equal(t, client.QueueSettings{Limit: 1, PerKey: &client.KeyLimits{Limit: 1}, Ordered: true}, q.QueueSettings)

	first, _, err := c.Submit(ctx, client.SubmitRequest{Type: "gated", Queue: "flow", Key: "a"})
	require.NoError(t, err)
	require.Equal(t, "a", first.Key)
	for job, err := range c.JobEvents(ctx, first.ID) {
		require.NoError(t, err)
		if job.Status == domain.StatusRunning {
			break
		}
	}
	second, _, err := c.Submit(ctx, client.SubmitRequest{Type: "gated", Queue: "flow", Key: "b"})
	require.NoError(t, err)
	got, err := c.Get(ctx, second.ID)
	require.NoError(t, err)
	require.Equal(t, domain.StatusPending, got.Status)
	require.Equal(t, domain.WaitQueueLimit, got.WaitingFor)

	queues, err := c.Queues(ctx)
	require.NoError(t, err)
	var flow *client.Queue
	for i := range queues {
		if queues[i].Name == "flow" {
			flow = &queues[i]
		}
	}
	require.NotNil(t, flow)
	require.Equal(t, 1, flow.Limit)
	require.Equal(t, 1, flow.Waiting[domain.WaitQueueLimit])

	page, err := c.List(ctx, client.Filter{Queue: "flow", Key: "b"})
	require.NoError(t, err)
	require.Equal(t, 1, page.Total)
	require.Equal(t, second.ID, page.Jobs[0].ID)

	_, err = c.SetQueue(ctx, "flow", client.QueueSettings{Ordered: true})
	require.True(t, client.IsInvalid(err), "%v", err)
	var p *client.Problem
	require.ErrorAs(t, err, &p)
	require.Equal(t, "ordered", p.Errors[0].Field)

	close(gate)
	for _, id := range []uuid.UUID{first.ID, second.ID} {
		done, err := c.Wait(ctx, id)
		require.NoError(t, err)
		require.Equal(t, domain.StatusCompleted, done.Status)
	}
	q, err = c.SetQueue(ctx, "flow", client.QueueSettings{})
	require.NoError(t, err)
	require.Zero(t, q.QueueSettings, "the zero settings clear them")
}
