package main

import (
	"encoding/json"
	"fmt"
	nethttp "net/http"
	"net/url"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/http"
	"github.com/troupe-go/troupe/internal/pgtest"
)

// scheduledJSON is the part of a job the scheduling tests read.
type scheduledJSON struct {
	jobJSON
	Queue     string    `json:"queue"`
	Priority  int       `json:"priority"`
	RunAt     time.Time `json:"runAt"`
	StartedAt time.Time `json:"startedAt"`
	UniqueKey string    `json:"uniqueKey"`
}

// submitJSON posts body to /jobs and returns the status and the job.
func (c *apiClient) submitJSON(body string) (int, scheduledJSON) {
	c.t.Helper()
	status, job, err := c.trySubmitJSON(body)
	require.NoError(c.t, err)
	return status, job
}

// trySubmitJSON is submitJSON for goroutines other than the test's: it
// returns what went wrong instead of failing the test.
func (c *apiClient) trySubmitJSON(body string) (int, scheduledJSON, error) {
	var job scheduledJSON
	status, data, err := c.call(nethttp.MethodPost, "/jobs", body)
	if err != nil {
		return status, job, err
	}
	if status != nethttp.StatusCreated && status != nethttp.StatusOK {
		return status, job, fmt.Errorf("POST /jobs %s: %d %s", body, status, data)
	}
	return status, job, json.Unmarshal(data, &job)
}

func (c *apiClient) getScheduled(id string) scheduledJSON {
	c.t.Helper()
	var job scheduledJSON
	require.NoError(c.t, json.Unmarshal(c.mustCall(nethttp.MethodGet, "/jobs/"+id, "", nethttp.StatusOK), &job))
	return job
}

func (c *apiClient) queue(name string) http.QueueResponse {
	c.t.Helper()
	var out http.QueuesResponse
	require.NoError(c.t, json.Unmarshal(c.mustCall(nethttp.MethodGet, "/queues", "", nethttp.StatusOK), &out))
	for _, q := range out.Queues {
		if q.Name == name {
			return q
		}
	}
	return http.QueueResponse{Name: name}
}

// TestServeScheduledJobsRunOnTimeAfterAKill submits jobs for later, a paused queue's
// jobs and a unique job to the real binary on Badger, kills it with
// SIGKILL and restarts it: every scheduled job runs, none before its time
// (those whose time passed while the server was down at once), the pause
// holds until resumed, and the unique key still admits no second job.
func TestServeScheduledJobsRunOnTimeAfterAKill(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	env := childEnv("TROUPE_DATA_DIR=" + dataDir)
	srv := startServer(t, env, "--http-addr", "127.0.0.1:0", "--workers", "4")
	api := newAPIClient(t, srv.waitReady())

	// Jobs for later: some due while the server is down, some after it is back.
	var later []scheduledJSON
	for i := range 10 {
		delay := time.Duration(1+i%2*4) * time.Second // 1s or 5s
		status, job := api.submitJSON(fmt.Sprintf(`{"type":"noop","delay":%q}`, delay))
		require.Equal(t, nethttp.StatusCreated, status)
		require.Equal(t, "scheduled", job.Status)
		require.WithinDuration(t, time.Now().Add(delay), job.RunAt, 2*time.Second)
		later = append(later, job)
	}

	// A paused queue takes jobs and starts none.
	api.mustCall(nethttp.MethodPost, "/queues/held/pause", "", nethttp.StatusOK)
	var held []scheduledJSON
	for range 3 {
		_, job := api.submitJSON(`{"type":"noop","queue":"held"}`)
		require.Equal(t, "pending", job.Status)
		held = append(held, job)
	}

	// A unique job that is still running at the kill.
	status, unique := api.submitJSON(`{"type":"sleep","payload":{"ms":4000},"uniqueKey":"report-42"}`)
	require.Equal(t, nethttp.StatusCreated, status)
	api.waitStatus(unique.ID, "running")
	status, again := api.submitJSON(`{"type":"sleep","payload":{"ms":4000},"uniqueKey":"report-42"}`)
	require.Equal(t, nethttp.StatusOK, status, "a duplicate creates nothing")
	require.Equal(t, unique.ID, again.ID)

	srv.signal(syscall.SIGKILL)
	require.NotZero(t, srv.waitExit())
	time.Sleep(1500 * time.Millisecond) // the 1s jobs fall due while the server is down

	srv = startServer(t, env, "--http-addr", "127.0.0.1:0", "--workers", "4")
	api = newAPIClient(t, srv.waitReady())

	status, again = api.submitJSON(`{"type":"sleep","payload":{"ms":4000},"uniqueKey":"report-42"}`)
	require.Equal(t, nethttp.StatusOK, status, "the unique key survives the kill")
	require.Equal(t, unique.ID, again.ID)

	for _, job := range later {
		done := api.waitStatus(job.ID, "completed")
		got := api.getScheduled(done.ID)
		require.False(t, got.StartedAt.Before(job.RunAt), "job %s started at %s, before its runAt %s", job.ID, got.StartedAt, job.RunAt)
	}

	q := api.queue("held")
	require.True(t, q.Paused, "the pause survives the kill")
	require.Equal(t, len(held), q.Pending)
	for _, job := range held {
		require.Equal(t, "pending", api.getScheduled(job.ID).Status)
	}
	api.mustCall(nethttp.MethodPost, "/queues/held/resume", "", nethttp.StatusOK)
	for _, job := range held {
		api.waitStatus(job.ID, "completed")
	}
	api.waitStatus(unique.ID, "completed")

	srv.signal(syscall.SIGTERM)
	require.Equal(t, 0, srv.waitExit())
}

// TestServeNodesShareQueues runs three `troupe serve` nodes on one
// PostgreSQL schema: a unique key admits one job however many nodes are
// asked at once; a pause sent to one node stops every node, and a resume
// sent to another starts them all again; and a queue's per-node limit holds
// on each node.
func TestServeNodesShareQueues(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.URL(t)
	schema := pgtest.RandomSchema(t)
	pgtest.DropSchemaOnCleanup(t, dbURL, schema)

	names := []string{"node-a", "node-b", "node-c"}
	nodes := make([]*serverProcess, len(names))
	clients := make([]*apiClient, len(names))
	for i, name := range names {
		nodes[i] = startServer(t, childEnv(
			"TROUPE_STORE=postgres", "TROUPE_DATABASE_URL="+dbURL, "TROUPE_DATABASE_SCHEMA="+schema,
			"TROUPE_NODE="+name, "TROUPE_HTTP_ADDR=127.0.0.1:0", "TROUPE_LOG_LEVEL=debug",
			"TROUPE_WORKERS=6", "TROUPE_QUEUE_LIMITS=capped=1", "TROUPE_POLL_INTERVAL=200ms",
		))
	}
	for i, p := range nodes {
		clients[i] = newAPIClient(t, p.waitReady())
	}

	// Uniqueness across nodes: every node is asked for every key at once.
	const keys = 20
	var wg sync.WaitGroup
	var mu sync.Mutex
	created := map[string]int{}
	ids := map[string]map[string]bool{}
	var errs []error
	for _, c := range clients {
		for k := range keys {
			wg.Go(func() {
				key := fmt.Sprintf("k-%d", k)
				status, job, err := c.trySubmitJSON(fmt.Sprintf(`{"type":"noop","uniqueKey":%q,"delay":"1h"}`, key))
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
					return
				}
				if status == nethttp.StatusCreated {
					created[key]++
				}
				if ids[key] == nil {
					ids[key] = map[string]bool{}
				}
				ids[key][job.ID] = true
			})
		}
	}
	wg.Wait()
	require.Empty(t, errs)
	for k := range keys {
		key := fmt.Sprintf("k-%d", k)
		require.Equal(t, 1, created[key], "key %s created once", key)
		require.Len(t, ids[key], 1, "every node answered key %s with the same job", key)
	}

	// A pause through node A holds on every node.
	clients[0].mustCall(nethttp.MethodPost, "/queues/mail/pause", "", nethttp.StatusOK)
	var mail []jobJSON
	for i := range 9 {
		_, job := clients[i%3].submitJSON(`{"type":"noop","queue":"mail"}`)
		mail = append(mail, job.jobJSON)
	}
	time.Sleep(1500 * time.Millisecond)
	page, err := clients[1].list(url.Values{"queue": {"mail"}, "status": {"pending"}})
	require.NoError(t, err)
	require.Equal(t, len(mail), page.Total, "no node starts a paused queue's jobs")
	clients[2].mustCall(nethttp.MethodPost, "/queues/mail/resume", "", nethttp.StatusOK)
	for _, job := range mail {
		clients[0].waitStatus(job.ID, "completed")
	}

	// The per-node limit: at most one "capped" job runs on each node at a time.
	var capped []jobJSON
	for i := range 12 {
		_, job := clients[i%3].submitJSON(`{"type":"sleep","payload":{"ms":150},"queue":"capped"}`)
		capped = append(capped, job.jobJSON)
	}
	for _, job := range capped {
		clients[0].waitStatus(job.ID, "completed")
	}
	for i, p := range nodes {
		var runs []execution
		for _, job := range capped {
			runs = append(runs, executions(t, p.logs.String())[job.ID]...)
		}
		for a := range runs {
			for b := a + 1; b < len(runs); b++ {
				overlap := runs[a].start.Before(runs[b].end) && runs[b].start.Before(runs[a].end)
				require.False(t, overlap, "%s ran two capped jobs at once", names[i])
			}
		}
	}

	for _, p := range nodes {
		p.signal(syscall.SIGTERM)
		require.Equal(t, 0, p.waitExit())
	}
}
