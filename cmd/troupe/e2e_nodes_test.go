package main

import (
	"encoding/json"
	"fmt"
	nethttp "net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/internal/pgtest"
)

// execution is one run of a handler, read from a node's debug log lines
// "handler running" and "handler returned".
type execution struct {
	node       string
	attempt    int
	start, end time.Time // end is zero when the node died during the run
}

// executions reads every handler run from a node's logs, by job ID.
func executions(t *testing.T, logs string) map[string][]execution {
	t.Helper()
	runs := map[string][]execution{}
	open := map[string]int{} // jobID/attempt → index in runs[jobID]
	for line := range strings.Lines(logs) {
		var rec struct {
			Msg     string    `json:"msg"`
			Time    time.Time `json:"time"`
			JobID   string    `json:"jobID"`
			Attempt int       `json:"attempt"`
			Node    string    `json:"node"`
		}
		if json.Unmarshal([]byte(line), &rec) != nil || rec.JobID == "" {
			continue
		}
		key := fmt.Sprintf("%s/%d", rec.JobID, rec.Attempt)
		switch rec.Msg {
		case "handler running":
			open[key] = len(runs[rec.JobID])
			runs[rec.JobID] = append(runs[rec.JobID], execution{node: rec.Node, attempt: rec.Attempt, start: rec.Time})
		case "handler returned":
			i, ok := open[key]
			require.True(t, ok, "%s returned without starting", key)
			runs[rec.JobID][i].end = rec.Time
			delete(open, key)
		}
	}
	return runs
}

// TestServeNodesShareOneDatabase runs three `troupe serve` nodes on one
// PostgreSQL schema: a cancel sent to one node stops a job running on
// another; 5,000 jobs submitted through every node all end as expected
// although one node is killed with SIGKILL in the middle; the killed node's
// running jobs are rescued once their lease expires; and no job ever runs
// on two nodes at once.
func TestServeNodesShareOneDatabase(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.URL(t)
	schema := pgtest.RandomSchema(t)
	pgtest.DropSchemaOnCleanup(t, dbURL, schema)

	const lease = 2 * time.Second
	names := []string{"node-a", "node-b", "node-c"}
	nodes := make([]*serverProcess, len(names))
	clients := make([]*apiClient, len(names))
	for i, name := range names {
		nodes[i] = startServer(t, childEnv(
			"TROUPE_STORE=postgres", "TROUPE_DATABASE_URL="+dbURL, "TROUPE_DATABASE_SCHEMA="+schema,
			"TROUPE_NODE="+name, "TROUPE_HTTP_ADDR=127.0.0.1:0", "TROUPE_LOG_LEVEL=debug",
			"TROUPE_WORKERS=8", "TROUPE_LEASE_DURATION="+lease.String(),
			"TROUPE_RESCUE_INTERVAL=200ms", "TROUPE_POLL_INTERVAL=200ms",
			"TROUPE_RETRY_BASE_DELAY=20ms", "TROUPE_RETRY_MAX_DELAY=100ms",
		))
	}
	for i, p := range nodes {
		clients[i] = newAPIClient(t, p.waitReady())
	}
	nodeOf := func(jobID string) string {
		for i, p := range nodes {
			if runs := executions(t, p.logs.String())[jobID]; len(runs) > 0 && runs[len(runs)-1].end.IsZero() {
				return names[i]
			}
		}
		return ""
	}

	// A cancel reaches the node that runs the job.
	long := clients[0].submit("sleep", `{"ms":60000}`, 3)
	var runningOn string
	waitFor(t, waitTimeout, "the long job to start", func() (bool, error) {
		runningOn = nodeOf(long.ID)
		return runningOn != "", errNotYet
	})
	other := slices.IndexFunc(names, func(n string) bool { return n != runningOn })
	clients[other].mustCall(nethttp.MethodDelete, "/jobs/"+long.ID, "", nethttp.StatusOK)
	canceled := clients[other].waitStatus(long.ID, "canceled")
	require.Equal(t, 1, canceled.Attempts)

	// The burst, through nodes A and B: noop, short sleeps and flaky jobs.
	const burst, slow = 5000, 30
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < burst; i += 8 {
				c := clients[i%2]
				switch {
				case i%10 < 6:
					c.submit("noop", `null`, 3)
				case i%10 < 8:
					c.submit("sleep", `{"ms":5}`, 3)
				default:
					c.submit("flaky", `{"failTimes":1}`, 3)
				}
			}
		})
	}
	// Meanwhile, through node C, jobs slow enough that C surely holds some
	// when it is killed.
	for range slow {
		clients[2].submit("sleep", `{"ms":3000}`, 3)
	}
	dead := nodes[2]
	waitFor(t, waitTimeout, "node-c to run jobs", func() (bool, error) {
		for _, runs := range executions(t, dead.logs.String()) {
			if runs[len(runs)-1].end.IsZero() {
				return true, nil
			}
		}
		return false, errNotYet
	})
	dead.signal(syscall.SIGKILL)
	killedAt := time.Now()
	dead.waitExit()
	wg.Wait()

	// Everything but the canceled job completes on the two live nodes.
	clients[0].waitTotal(url.Values{"status": {"completed"}}, slow+burst, 3*time.Minute)
	page, err := clients[1].list(url.Values{})
	require.NoError(t, err)
	require.Equal(t, slow+burst+1, page.Total)

	// No job ran twice at once, and each attempt ran once.
	all := map[string][]execution{}
	for _, p := range nodes {
		for id, runs := range executions(t, p.logs.String()) {
			all[id] = append(all[id], runs...)
		}
	}
	rescued := 0
	for id, runs := range all {
		slices.SortFunc(runs, func(a, b execution) int { return a.start.Compare(b.start) })
		for i, r := range runs {
			if r.end.IsZero() {
				require.Equal(t, "node-c", r.node, "job %s: only the killed node leaves runs unfinished", id)
				r.end = killedAt
				rescued++
				runs[i] = r
			}
			if i > 0 {
				prev := runs[i-1]
				require.NotEqual(t, prev.attempt, r.attempt, "job %s: attempt %d ran twice (%s, %s)", id, r.attempt, prev.node, r.node)
				require.False(t, r.start.Before(prev.end), "job %s: attempt %d on %s started before attempt %d on %s ended", id, r.attempt, r.node, prev.attempt, prev.node)
			}
		}
	}
	require.Positive(t, rescued, "the killed node was running jobs")
	t.Logf("executions: %d jobs; runs cut short by the kill and rescued: %d", len(all), rescued)

	for _, p := range nodes[:2] {
		p.signal(syscall.SIGTERM)
		require.Equal(t, 0, p.waitExit())
	}
}
