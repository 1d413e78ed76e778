package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	nethttp "net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/internal/pgtest"
)

// The end-to-end tests of flow control: queue settings enforced by the
// real binary, across three nodes on PostgreSQL and on one node on Badger.
// They read every execution from the nodes' debug lines "handler running"
// and "handler returned" (see executions): the runtime logs the first
// before it calls the handler, once the job is running, and the second
// when the handler returned, before the outcome is written. So each
// logged interval lies within the time the job held its queue's and its
// key's slot, and two logged intervals that overlap mean two jobs held a
// slot at once.

// flowNodeEnv is the environment of a node of the flow tests on the
// PostgreSQL schema, with a short lease so that a killed node's jobs are
// rescued quickly.
func flowNodeEnv(dbURL, schema, name string, extra ...string) []string {
	return childEnv(append([]string{
		"TROUPE_STORE=postgres", "TROUPE_DATABASE_URL=" + dbURL, "TROUPE_DATABASE_SCHEMA=" + schema,
		"TROUPE_NODE=" + name, "TROUPE_HTTP_ADDR=127.0.0.1:0", "TROUPE_LOG_LEVEL=debug",
		"TROUPE_WORKERS=8", "TROUPE_LEASE_DURATION=2s",
		"TROUPE_RESCUE_INTERVAL=200ms", "TROUPE_POLL_INTERVAL=200ms",
	}, extra...)...)
}

// startFlowNodes starts three nodes on a fresh PostgreSQL schema and
// returns them with their clients.
func startFlowNodes(t *testing.T, extra ...string) ([]string, []*serverProcess, []*apiClient) {
	t.Helper()
	dbURL := pgtest.URL(t)
	schema := pgtest.RandomSchema(t)
	pgtest.DropSchemaOnCleanup(t, dbURL, schema)
	names := []string{"node-a", "node-b", "node-c"}
	nodes := make([]*serverProcess, len(names))
	clients := make([]*apiClient, len(names))
	for i, name := range names {
		nodes[i] = startServer(t, flowNodeEnv(dbURL, schema, name, extra...))
	}
	for i, p := range nodes {
		clients[i] = newAPIClient(t, p.waitReady())
	}
	return names, nodes, clients
}

// batchJob is one job of a POST /jobs/batch body.
type batchJob struct {
	Type     string          `json:"type"`
	Payload  json.RawMessage `json:"payload,omitempty"`
	Queue    string          `json:"queue,omitempty"`
	Priority int             `json:"priority,omitempty"`
	Key      string          `json:"key,omitempty"`
}

// submitBatch submits the jobs in one batch, in order, and returns their
// IDs in the same order.
func (c *apiClient) submitBatch(jobs []batchJob) []string {
	c.t.Helper()
	body, err := json.Marshal(map[string]any{"jobs": jobs})
	require.NoError(c.t, err)
	var out struct {
		Jobs []struct {
			ID  string `json:"id"`
			Key string `json:"key"`
		} `json:"jobs"`
	}
	require.NoError(c.t, json.Unmarshal(c.mustCall(nethttp.MethodPost, "/jobs/batch", string(body), nethttp.StatusCreated), &out))
	require.Len(c.t, out.Jobs, len(jobs))
	ids := make([]string, len(jobs))
	for i, j := range out.Jobs {
		require.Equal(c.t, jobs[i].Key, j.Key, "the job carries its key")
		ids[i] = j.ID
	}
	return ids
}

// allExecutions merges the executions of every node's log, by job ID.
func allExecutions(t *testing.T, nodes []*serverProcess) map[string][]execution {
	t.Helper()
	all := map[string][]execution{}
	for _, p := range nodes {
		for id, runs := range executions(t, p.logs.String()) {
			all[id] = append(all[id], runs...)
		}
	}
	return all
}

// openRun reports whether the node's log shows a handler running now.
func openRun(t *testing.T, p *serverProcess) bool {
	t.Helper()
	for _, runs := range executions(t, p.logs.String()) {
		if runs[len(runs)-1].end.IsZero() {
			return true
		}
	}
	return false
}

// flowQueueYAML writes the config file of the ordered test: the queue
// "ordered" with one running job per key, in order.
func flowQueueYAML(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "troupe.yaml")
	require.NoError(t, os.WriteFile(path, []byte(`
queues:
  - name: ordered
    perKey: {limit: 1}
    ordered: true
`), 0o600))
	return path
}

// TestServeNodesKeepEachKeysOrder runs three nodes on PostgreSQL with the
// queue "ordered" set by the config file to perKey.limit 1 and ordered:
// 2,000 jobs over 20 keys, submitted in order with random priorities
// (which would reorder them, were the queue not ordered), run on every
// node while one node is killed with SIGKILL. From all the nodes' logs:
//
//   - No two executions of one key overlap: sorted by start, each starts
//     no earlier than every earlier one ended. A run on the killed node that
//     had not returned ends at the kill; the key's slot stays held until
//     the job's lease expires and it is rescued.
//   - Each key's jobs start in submission order. A job may run more than
//     once: a run cut short by the kill, or whose outcome the kill lost, is
//     rescued and runs again, as the same job. What is asserted is that,
//     sorted by start, a key's executions never go back in submission
//     order: a rescued job runs again before any later job of its key
//     (it holds the key while pending with attempts, and is the key's
//     head), so its runs are consecutive, and the first starts of the jobs
//     follow submission order.
//   - All 2,000 jobs complete, each with at least one execution.
func TestServeNodesKeepEachKeysOrder(t *testing.T) {
	t.Parallel()
	names, nodes, clients := startFlowNodes(t, "TROUPE_CONFIG="+flowQueueYAML(t))
	q := queueNamed(t, clients[1].mustCall(nethttp.MethodGet, "/queues", "", nethttp.StatusOK), "ordered")
	require.NotNil(t, q.PerKey, "the config file set the queue's settings: %+v", q)
	require.Equal(t, 1, q.PerKey.Limit)
	require.True(t, q.Ordered)

	const keys, perKey = 20, 100
	type submitted struct {
		key string
		seq int // the job's place among its key's jobs
	}
	jobs := map[string]submitted{}
	rng := rand.New(rand.NewPCG(1, 2))
	// Submitted through one node, one batch after the other: a batch's
	// jobs are created in order, and so are the batches.
	for batch := range 2 {
		var body []batchJob
		for i := range keys * perKey / 2 {
			n := batch*keys*perKey/2 + i
			body = append(body, batchJob{
				Type: "sleep", Payload: json.RawMessage(`{"ms":20}`), Queue: "ordered",
				Priority: 1 + rng.IntN(9), Key: fmt.Sprintf("key-%02d", n%keys),
			})
		}
		for i, id := range clients[0].submitBatch(body) {
			n := batch*keys*perKey/2 + i
			jobs[id] = submitted{key: body[i].Key, seq: n / keys}
		}
	}
	require.Len(t, jobs, keys*perKey)

	// One of the nodes not submitting is killed in the middle of the run,
	// while it runs a job. Which one is left to the run: a claim skips a
	// queue another node is claiming from, so on a busy machine one node
	// may take no job of the queue for a long while.
	deadAt := -1
	waitFor(t, 3*time.Minute, "a quarter of the jobs to start, and node-b or node-c to run one", func() (bool, error) {
		started := len(allExecutions(t, nodes))
		if started < keys*perKey/4 {
			return false, fmt.Errorf("%d jobs started", started)
		}
		for _, i := range []int{2, 1} {
			if openRun(t, nodes[i]) {
				deadAt = i
				return true, nil
			}
		}
		return false, fmt.Errorf("%d jobs started, none running on node-b or node-c", started)
	})
	dead := nodes[deadAt]
	dead.signal(syscall.SIGKILL)
	killedAt := time.Now()
	dead.waitExit()

	clients[0].waitTotal(url.Values{"queue": {"ordered"}, "status": {"completed"}}, keys*perKey, 5*time.Minute)
	page, err := clients[0].list(url.Values{"queue": {"ordered"}})
	require.NoError(t, err)
	require.Equal(t, keys*perKey, page.Total, "every job completed, none failed")

	// keyedRun is an execution with its job's place among its key's jobs.
	type keyedRun struct {
		execution
		seq int
	}
	byKey := map[string][]keyedRun{}
	all := allExecutions(t, nodes)
	cutShort, reruns := 0, 0
	for id, job := range jobs {
		runs := all[id]
		require.NotEmpty(t, runs, "job %s (%s #%d) completed with no execution logged", id, job.key, job.seq)
		reruns += len(runs) - 1
		for _, r := range runs {
			if r.end.IsZero() {
				require.Equal(t, names[deadAt], r.node, "job %s: only the killed node leaves runs unfinished", id)
				r.end = killedAt
				cutShort++
			}
			byKey[job.key] = append(byKey[job.key], keyedRun{execution: r, seq: job.seq})
		}
	}
	require.Len(t, byKey, keys)
	for key, runs := range byKey {
		slices.SortFunc(runs, func(a, b keyedRun) int { return a.start.Compare(b.start) })
		for i := 1; i < len(runs); i++ {
			prev, r := runs[i-1], runs[i]
			require.False(t, r.start.Before(prev.end),
				"%s: job #%d started on %s at %s, before job #%d ended on %s at %s: two of the key's jobs ran at once",
				key, r.seq, r.node, r.start.Format(time.RFC3339Nano), prev.seq, prev.node, prev.end.Format(time.RFC3339Nano))
			require.GreaterOrEqual(t, r.seq, prev.seq,
				"%s: job #%d started on %s at %s, after job #%d had started: out of submission order",
				key, r.seq, r.node, r.start.Format(time.RFC3339Nano), prev.seq)
		}
		require.Equal(t, perKey-1, runs[len(runs)-1].seq, "%s: the last run is of the key's last job", key)
	}
	t.Logf("executions: %d jobs; runs cut short by the kill: %d; jobs run again: %d", len(jobs), cutShort, reruns)

	for i, p := range nodes {
		if i == deadAt {
			continue
		}
		p.signal(syscall.SIGTERM)
		require.Equal(t, 0, p.waitExit())
	}
}

// TestServeNodesShareARateLimit runs three nodes on PostgreSQL and sets
// the queue "rated" to 20 starts a second (burst 20) through the API.
// More jobs are submitted than the limit lets start in 10 seconds; one
// node is killed with SIGKILL after a few seconds. In the 10 seconds from
// the first start, the nodes together start at most 200 + 20 (the burst):
// the bucket is one for all nodes, kept in the database. Every job then
// completes.
func TestServeNodesShareARateLimit(t *testing.T) {
	t.Parallel()
	_, nodes, clients := startFlowNodes(t)
	const (
		count, burst = 20, 20
		window       = 10 * time.Second
		total        = 600
	)
	var q queueJSON
	require.NoError(t, json.Unmarshal(clients[0].mustCall(nethttp.MethodPut, "/queues/rated",
		fmt.Sprintf(`{"rate":{"count":%d,"per":"1s"}}`, count), nethttp.StatusOK), &q))
	require.NotNil(t, q.Rate)
	require.Zero(t, q.Rate.Burst, "no burst: the default, the count")
	require.Equal(t, "1s", q.Rate.Per)

	body := make([]batchJob, total)
	for i := range body {
		body[i] = batchJob{Type: "sleep", Payload: json.RawMessage(`{"ms":5}`), Queue: "rated"}
	}
	ids := clients[1].submitBatch(body)

	// starts lists the start of every execution of the jobs, sorted.
	starts := func() []time.Time {
		all := allExecutions(t, nodes)
		var out []time.Time
		for _, id := range ids {
			for _, r := range all[id] {
				out = append(out, r.start)
			}
		}
		slices.SortFunc(out, time.Time.Compare)
		return out
	}
	var first time.Time
	waitFor(t, waitTimeout, "the first start", func() (bool, error) {
		if s := starts(); len(s) > 0 {
			first = s[0]
			return true, nil
		}
		return false, errNotYet
	})
	dead := nodes[2]
	waitFor(t, waitTimeout, "a few seconds of starts", func() (bool, error) {
		return time.Since(first) > window/3, errNotYet
	})
	dead.signal(syscall.SIGKILL)
	dead.waitExit()
	// Past the window, every start within it is logged; the window opens
	// at the first claim, no later than the first start.
	waitFor(t, 2*window, "the end of the window", func() (bool, error) {
		return time.Since(first) > window+time.Second, errNotYet
	})
	logged := starts()

	// The jobs left complete once the rate is lifted: PUT {} clears it.
	clients[0].mustCall(nethttp.MethodPut, "/queues/rated", `{}`, nethttp.StatusOK)
	clients[0].waitTotal(url.Values{"queue": {"rated"}, "status": {"completed"}}, total, 3*time.Minute)

	// The window opens at the first claim, by the database's clock (the
	// same machine's): startedAt is the claim's now(), which the bucket
	// refills by, and the earliest is a job of the first claim (all 20 of
	// them would have to run again for it not to be). A start logged
	// within the window was claimed within it, since a handler runs after
	// its claim: so the starts logged within it are at most the claims
	// within it, which the bucket bounds to burst + count per second.
	var page struct {
		Jobs []struct {
			StartedAt time.Time `json:"startedAt"`
		} `json:"jobs"`
		Total int `json:"total"`
	}
	require.NoError(t, json.Unmarshal(clients[0].mustCall(nethttp.MethodGet, "/jobs?queue=rated&limit=1000", "", nethttp.StatusOK), &page))
	require.Equal(t, total, page.Total)
	opened := page.Jobs[0].StartedAt
	for _, j := range page.Jobs {
		require.False(t, j.StartedAt.IsZero())
		if j.StartedAt.Before(opened) {
			opened = j.StartedAt
		}
	}
	require.False(t, first.Before(opened), "the first logged start %s is before the first claim %s: the database's clock is not the nodes'", first, opened)
	inWindow := 0
	for _, s := range logged {
		if !s.Before(opened) && s.Before(opened.Add(window)) {
			inWindow++
		}
	}
	limit := count*int(window/time.Second) + burst
	t.Logf("starts in the %s from the first claim: %d (at most %d)", window, inWindow, limit)
	require.LessOrEqual(t, inWindow, limit, "more starts than the rate and the burst allow")
	require.Positive(t, inWindow)

	for _, p := range nodes[:2] {
		p.signal(syscall.SIGTERM)
		require.Equal(t, 0, p.waitExit())
	}
}

// flowJobJSON is the part of a job the flow tests read.
type flowJobJSON struct {
	jobJSON
	Queue      string `json:"queue"`
	Key        string `json:"key"`
	WaitingFor string `json:"waitingFor"`
}

// TestServeQueueLimitSurvivesARestart runs one node on Badger: a queue
// limited to one running job through PUT /queues, three long jobs of which
// two wait, each saying why (waitingFor "queue limit") and counted in GET
// /queues; killed with SIGKILL and started again, the node keeps the
// setting and the jobs still wait for it, never two running at once.
func TestServeQueueLimitSurvivesARestart(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	env := childEnv("TROUPE_DATA_DIR="+dataDir, "TROUPE_HTTP_ADDR=127.0.0.1:0", "TROUPE_WORKERS=4")
	srv := startServer(t, env)
	api := newAPIClient(t, srv.waitReady())

	var q queueJSON
	require.NoError(t, json.Unmarshal(api.mustCall(nethttp.MethodPut, "/queues/limited", `{"limit":1}`, nethttp.StatusOK), &q))
	require.Equal(t, 1, q.Limit)
	status, data, err := api.call(nethttp.MethodPut, "/queues/limited", `{"rate":{"count":10,"per":"10/x"}}`)
	require.NoError(t, err)
	require.Equal(t, nethttp.StatusBadRequest, status, "%s", data)
	require.Contains(t, string(data), `"rate.per"`)

	var ids []string
	for i := range 3 {
		status, data, err := api.call(nethttp.MethodPost, "/jobs",
			fmt.Sprintf(`{"type":"sleep","payload":{"ms":600000},"queue":"limited","key":"k%d"}`, i))
		require.NoError(t, err)
		require.Equal(t, nethttp.StatusCreated, status, "%s", data)
		var job flowJobJSON
		require.NoError(t, json.Unmarshal(data, &job))
		require.Equal(t, fmt.Sprintf("k%d", i), job.Key)
		ids = append(ids, job.ID)
	}

	// waitLimited waits for one job running and two waiting for the limit,
	// checking at every look that no more than one runs.
	waitLimited := func(api *apiClient) {
		t.Helper()
		waitFor(t, waitTimeout, "one job running and two waiting for the queue limit", func() (bool, error) {
			status, data, err := api.call(nethttp.MethodGet, "/queues", "")
			if err != nil || status != nethttp.StatusOK {
				return false, fmt.Errorf("GET /queues: %d %s: %w", status, data, err)
			}
			q := queueNamed(t, data, "limited")
			require.LessOrEqual(t, q.Running, 1, "the limit holds: %s", data)
			return q.Running == 1 && q.Pending == 2 && q.Waiting["queue limit"] == 2, fmt.Errorf("%s", data)
		})
		waiting := 0
		for _, id := range ids {
			var job flowJobJSON
			require.NoError(t, json.Unmarshal(api.mustCall(nethttp.MethodGet, "/jobs/"+id, "", nethttp.StatusOK), &job))
			switch job.Status {
			case "pending":
				require.Equal(t, "queue limit", job.WaitingFor, "job %s", id)
				waiting++
			case "running":
				require.Empty(t, job.WaitingFor, "job %s", id)
			default:
				t.Fatalf("job %s is %s", id, job.Status)
			}
		}
		require.Equal(t, 2, waiting)
		var page struct {
			Jobs []flowJobJSON `json:"jobs"`
		}
		require.NoError(t, json.Unmarshal(api.mustCall(nethttp.MethodGet, "/jobs?queue=limited&key=k1", "", nethttp.StatusOK), &page))
		require.Len(t, page.Jobs, 1, "GET /jobs?key= lists the key's job")
		require.Equal(t, ids[1], page.Jobs[0].ID)
	}
	waitLimited(api)

	srv.signal(syscall.SIGKILL)
	srv.waitExit()
	srv = startServer(t, env)
	api = newAPIClient(t, srv.waitReady())
	q = queueNamed(t, api.mustCall(nethttp.MethodGet, "/queues", "", nethttp.StatusOK), "limited")
	require.Equal(t, 1, q.Limit, "the setting survives the restart")
	waitLimited(api)

	// Raised through the API, the limit lets the waiting jobs start.
	require.NoError(t, json.Unmarshal(api.mustCall(nethttp.MethodPut, "/queues/limited", `{"limit":3}`, nethttp.StatusOK), &q))
	require.Equal(t, 3, q.Limit)
	for _, id := range ids {
		api.waitStatus(id, "running")
		api.mustCall(nethttp.MethodDelete, "/jobs/"+id, "", nethttp.StatusOK)
		api.waitStatus(id, "canceled")
	}
	srv.signal(syscall.SIGTERM)
	require.Equal(t, 0, srv.waitExit())
}
