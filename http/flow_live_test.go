package http

import (
	"encoding/json"
	"io"
	nethttp "net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
)

// The flow control tests over a real System on the memory store: what the
// API shows of jobs held back by their queue's settings.

// liveCall sends a request to the live server and returns the status and
// the body.
func (b *liveBundle) call(t *testing.T, method, path, body string) (int, []byte) {
	t.Helper()
	req, err := nethttp.NewRequestWithContext(t.Context(), method, b.base+path, strings.NewReader(body))
	require.NoError(t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := nethttp.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, data
}

// liveJSON is call for a 2xx JSON answer, decoded into T.
func liveJSON[T any](t *testing.T, b *liveBundle, method, path, body string, status int) T {
	t.Helper()
	code, data := b.call(t, method, path, body)
	require.Equal(t, status, code, "%s %s: %s", method, path, data)
	var v T
	require.NoError(t, json.Unmarshal(data, &v), "%s", data)
	return v
}

// TestEventsCarryTheKey: both event streams render a job with its key.
func TestEventsCarryTheKey(t *testing.T) {
	t.Parallel()
	b := setupLive(t, Config{})
	all := openStream(t, b.base+"/events", nil)
	all.mustNext(t) // the stats

	job := liveJSON[JobResponse](t, b, "POST", "/jobs", `{"type":"gate","key":"customer:42"}`, nethttp.StatusCreated)
	require.Equal(t, "customer:42", job.Key)
	one := openStream(t, b.base+"/jobs/"+job.ID.String()+"/events", nil)

	require.Equal(t, "customer:42", all.nextJob(t, job.ID).Key)
	require.Equal(t, "customer:42", one.nextJob(t, job.ID).Key)
	b.release <- struct{}{}
	for {
		j := all.nextJob(t, job.ID)
		require.Equal(t, "customer:42", j.Key, "every event of the job carries its key")
		if j.Status == domain.StatusCompleted {
			break
		}
	}
}

// TestQueueLimitLive sets a queue's limit through the API and sees its
// jobs wait for it: in the job, the listing by key, the queue's counts and
// the metrics. It needs the runtime's local flow control (the memory
// store's settings and the dispatcher's waiting reasons).
func TestQueueLimitLive(t *testing.T) {
	t.Parallel()
	b := setupLive(t, Config{})

	// The settings round trip, then a plain limit of 1.
	q := liveJSON[QueueResponse](t, b, "PUT", "/queues/default",
		`{"limit":3,"rate":{"count":20,"per":"1s","burst":40},"perKey":{"limit":1,"rate":{"count":5,"per":"1m"}},"ordered":true,"fair":true}`, nethttp.StatusOK)
	want := QueueResponse{Name: "default", Limit: 3, Rate: &RateSetting{Count: 20, Per: "1s", Burst: 40},
		PerKey: &KeyLimitsSetting{Limit: 1, Rate: &RateSetting{Count: 5, Per: "1m0s"}}, Ordered: true, Fair: true}
	require.Equal(t, want, q)
	listed := liveJSON[QueuesResponse](t, b, "GET", "/queues", "", nethttp.StatusOK)
	require.Equal(t, []QueueResponse{want}, listed.Queues)
	q = liveJSON[QueueResponse](t, b, "PUT", "/queues/default", `{"limit":1}`, nethttp.StatusOK)
	require.Equal(t, QueueResponse{Name: "default", Limit: 1}, q)

	// One job runs; the next two wait for the queue's limit.
	first := liveJSON[JobResponse](t, b, "POST", "/jobs", `{"type":"gate","key":"a"}`, nethttp.StatusCreated)
	b.waitStatus(t, first.ID, domain.StatusRunning)
	held := liveJSON[BatchSubmitResponse](t, b, "POST", "/jobs/batch",
		`{"jobs":[{"type":"gate","key":"b"},{"type":"gate","key":"b"}]}`, nethttp.StatusCreated)
	for _, j := range held.Jobs {
		got := liveJSON[JobResponse](t, b, "GET", "/jobs/"+j.ID.String(), "", nethttp.StatusOK)
		require.Equal(t, domain.StatusPending, got.Status)
		require.Equal(t, "b", got.Key)
		require.Equal(t, domain.WaitQueueLimit, got.WaitingFor)
	}
	page := liveJSON[ListResponse](t, b, "GET", "/jobs?key=b", "", nethttp.StatusOK)
	require.Equal(t, 2, page.Total)
	for _, j := range page.Jobs {
		require.Equal(t, domain.WaitQueueLimit, j.WaitingFor)
	}
	running := liveJSON[JobResponse](t, b, "GET", "/jobs/"+first.ID.String(), "", nethttp.StatusOK)
	require.Empty(t, running.WaitingFor, "a running job waits for nothing")

	listed = liveJSON[QueuesResponse](t, b, "GET", "/queues", "", nethttp.StatusOK)
	require.Equal(t, []QueueResponse{{Name: "default", Limit: 1, Pending: 2, Running: 1, Waiting: QueueWaiting{QueueLimit: 2}}}, listed.Queues)
	_, metrics := b.call(t, "GET", "/metrics", "")
	require.Contains(t, string(metrics), `troupe_jobs_waiting{queue="default",reason="queue limit"} 2`+"\n")

	// Each end lets the next start, one at a time, until none waits.
	for range 3 {
		b.release <- struct{}{}
	}
	for _, j := range held.Jobs {
		b.waitStatus(t, j.ID, domain.StatusCompleted)
	}
	listed = liveJSON[QueuesResponse](t, b, "GET", "/queues", "", nethttp.StatusOK)
	require.Equal(t, []QueueResponse{{Name: "default", Limit: 1}}, listed.Queues)
}

// TestQueueSettingsRefusedLive: the runtime's refusals name their fields
// through the API, and change nothing.
func TestQueueSettingsRefusedLive(t *testing.T) {
	t.Parallel()
	b := setupLive(t, Config{})

	code, body := b.call(t, "PUT", "/queues/default", `{"limit":-1,"perKey":{"limit":2},"ordered":true}`)

	require.Equal(t, nethttp.StatusBadRequest, code, "%s", body)
	var p Problem
	require.NoError(t, json.Unmarshal(body, &p))
	require.Equal(t, ProblemTypeValidation, p.Type)
	require.Equal(t, []FieldError{
		{Field: "limit", Message: "must be between 0 and 1000000, got -1"},
		{Field: "ordered", Message: "needs perKey.limit 1: a key's jobs run one at a time to run in order"},
	}, p.Errors)
	qs, err := b.sys.Queues(t.Context())
	require.NoError(t, err)
	for _, q := range qs {
		require.True(t, q.Settings.IsZero(), "nothing was stored: %+v", q)
	}
}
