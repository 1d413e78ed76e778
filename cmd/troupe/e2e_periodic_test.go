package main

import (
	"encoding/json"
	"fmt"
	nethttp "net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/internal/pgtest"
)

// slotJobJSON is a job a schedule submitted.
type slotJobJSON struct {
	scheduledJSON
	Schedule string `json:"schedule"`
}

// scheduleJobs lists every job of the schedule name, through GET
// /jobs?schedule=, a page of the largest size at a time.
func (c *apiClient) scheduleJobs(name string) ([]slotJobJSON, error) {
	var all []slotJobJSON
	for offset := 0; ; {
		q := url.Values{"schedule": {name}, "limit": {"1000"}, "offset": {strconv.Itoa(offset)}}
		status, data, err := c.call(nethttp.MethodGet, "/jobs?"+q.Encode(), "")
		if err != nil {
			return nil, err
		}
		if status != nethttp.StatusOK {
			return nil, fmt.Errorf("GET /jobs?%s: %d %s", q.Encode(), status, data)
		}
		var page struct {
			Jobs  []slotJobJSON `json:"jobs"`
			Total int           `json:"total"`
		}
		if err := json.Unmarshal(data, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Jobs...)
		offset += len(page.Jobs)
		if len(page.Jobs) == 0 || offset >= page.Total {
			return all, nil
		}
	}
}

// waitScheduleJobs waits until the schedule has submitted at least n jobs
// and returns them.
func (c *apiClient) waitScheduleJobs(name string, n int, timeout time.Duration) []slotJobJSON {
	c.t.Helper()
	var jobs []slotJobJSON
	waitFor(c.t, timeout, fmt.Sprintf("%d jobs of schedule %s", n, name), func() (bool, error) {
		var err error
		jobs, err = c.scheduleJobs(name)
		if err != nil {
			return false, err
		}
		return len(jobs) >= n, fmt.Errorf("%d jobs", len(jobs))
	})
	return jobs
}

// pauseAndSettle pauses the schedule, then lists its jobs once two
// listings a second apart agree: a slot some node was submitting when the
// pause landed has been stored by then.
func (c *apiClient) pauseAndSettle(name string) []slotJobJSON {
	c.t.Helper()
	c.mustCall(nethttp.MethodPost, "/schedules/"+name+"/pause", "", nethttp.StatusOK)
	var last []slotJobJSON
	waitFor(c.t, waitTimeout, "the jobs of schedule "+name+" to settle", func() (bool, error) {
		jobs, err := c.scheduleJobs(name)
		if err != nil {
			return false, err
		}
		settled := last != nil && len(jobs) == len(last)
		last = jobs
		if !settled {
			time.Sleep(time.Second)
		}
		return settled, fmt.Errorf("%d jobs", len(jobs))
	})
	return last
}

// slotCounts reads each job's slot from its unique key,
// schedule:<name>:<RFC 3339 time>, and counts the jobs of each slot. Every
// job must be the schedule's, with such a key.
func slotCounts(t *testing.T, name string, jobs []slotJobJSON) map[time.Time]int {
	t.Helper()
	counts := map[time.Time]int{}
	prefix := "schedule:" + name + ":"
	for _, j := range jobs {
		require.Equal(t, name, j.Schedule, "job %s names its schedule", j.ID)
		rest, ok := strings.CutPrefix(j.UniqueKey, prefix)
		require.True(t, ok, "job %s: unique key %q is no slot key of %s", j.ID, j.UniqueKey, name)
		slot, err := time.Parse(time.RFC3339, rest)
		require.NoError(t, err, "job %s: unique key %q", j.ID, j.UniqueKey)
		require.Equal(t, domain.ScheduleSlotKey(name, slot), j.UniqueKey)
		counts[slot]++
	}
	return counts
}

// requireOnePerSlot checks that no slot has two jobs, and returns the
// slots in order and the whole seconds between the first and the last
// that have none.
func requireOnePerSlot(t *testing.T, counts map[time.Time]int) (slots, missing []time.Time) {
	t.Helper()
	for slot, n := range counts {
		require.Equal(t, 1, n, "slot %s has %d jobs", slot.Format(time.RFC3339), n)
		slots = append(slots, slot)
	}
	slices.SortFunc(slots, func(a, b time.Time) int { return a.Compare(b) })
	require.NotEmpty(t, slots)
	for s := slots[0]; !s.After(slots[len(slots)-1]); s = s.Add(time.Second) {
		if counts[s] == 0 {
			missing = append(missing, s)
		}
	}
	return slots, missing
}

// TestServePeriodicExactlyOnceOnThreeNodes runs three `troupe serve` nodes
// on one PostgreSQL schema with a schedule of a slot a second for about
// twenty seconds, while one node is killed with SIGKILL and restarted:
// every slot from the first to the last has exactly one job (no duplicate
// however many nodes fire it, and no gap, since the other nodes keep
// firing while one is down).
func TestServePeriodicExactlyOnceOnThreeNodes(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.URL(t)
	schema := pgtest.RandomSchema(t)
	pgtest.DropSchemaOnCleanup(t, dbURL, schema)

	names := []string{"node-a", "node-b", "node-c"}
	envOf := func(name string) []string {
		return childEnv(
			"TROUPE_STORE=postgres", "TROUPE_DATABASE_URL="+dbURL, "TROUPE_DATABASE_SCHEMA="+schema,
			"TROUPE_NODE="+name, "TROUPE_HTTP_ADDR=127.0.0.1:0", "TROUPE_WORKERS=4",
			"TROUPE_LEASE_DURATION=2s", "TROUPE_RESCUE_INTERVAL=200ms", "TROUPE_POLL_INTERVAL=200ms",
		)
	}
	nodes := make([]*serverProcess, len(names))
	clients := make([]*apiClient, len(names))
	for i, name := range names {
		nodes[i] = startServer(t, envOf(name))
	}
	for i, p := range nodes {
		clients[i] = newAPIClient(t, p.waitReady())
	}

	const name = "every-second"
	body := clients[0].mustCall(nethttp.MethodPut, "/schedules/"+name, `{"cron":"@every 1s","job":{"type":"noop"}}`, nethttp.StatusCreated)
	var created scheduleJSON
	require.NoError(t, json.Unmarshal(body, &created))
	require.Equal(t, "api", created.Source)
	require.Equal(t, "UTC", created.Timezone)

	// Every node fires every slot; a few slots, then node C dies.
	clients[1].waitScheduleJobs(name, 5, waitTimeout)
	nodes[2].signal(syscall.SIGKILL)
	nodes[2].waitExit()
	before := len(clients[0].waitScheduleJobs(name, 11, waitTimeout))

	// Node C comes back under the same name and fires again with the others.
	nodes[2] = startServer(t, envOf(names[2]))
	clients[2] = newAPIClient(t, nodes[2].waitReady())
	clients[2].waitScheduleJobs(name, max(before+6, 20), waitTimeout)

	jobs := clients[1].pauseAndSettle(name)
	slots, missing := requireOnePerSlot(t, slotCounts(t, name, jobs))
	require.Empty(t, missing, "no slot is skipped while a node is down or restarting")
	require.GreaterOrEqual(t, len(slots), 20)
	t.Logf("%d slots from %s to %s, one job each", len(slots), slots[0].Format(time.RFC3339), slots[len(slots)-1].Format(time.RFC3339))

	var got scheduleJSON
	require.NoError(t, json.Unmarshal(clients[2].mustCall(nethttp.MethodGet, "/schedules/"+name, "", nethttp.StatusOK), &got))
	require.True(t, got.Paused, "the pause reached every node through the store")
	require.Zero(t, got.NextRunAt, "a paused schedule has no next run")
	require.False(t, got.LastRunAt.IsZero())
	require.True(t, slices.ContainsFunc(jobs, func(j slotJobJSON) bool { return j.ID == got.LastJobID }), "the last job is one of the schedule's")

	for _, p := range nodes {
		p.signal(syscall.SIGTERM)
		require.Equal(t, 0, p.waitExit())
	}
}

// TestServePeriodicSurvivesAKillOnBadger runs one node on Badger with a
// slot a second, kills it with SIGKILL mid-run and restarts it: no slot
// has two jobs, and the slots without one all fall while the node was
// down (up to the first second after it was back).
func TestServePeriodicSurvivesAKillOnBadger(t *testing.T) {
	t.Parallel()
	env := childEnv("TROUPE_DATA_DIR="+t.TempDir(), "TROUPE_HTTP_ADDR=127.0.0.1:0", "TROUPE_WORKERS=2")
	srv := startServer(t, env)
	api := newAPIClient(t, srv.waitReady())

	const name = "badger-every-second"
	api.mustCall(nethttp.MethodPut, "/schedules/"+name, `{"cron":"@every 1s","job":{"type":"noop"}}`, nethttp.StatusCreated)
	api.waitScheduleJobs(name, 4, waitTimeout)

	// The kill lands somewhere within a slot, and the node stays down for a
	// few slots.
	killedAt := time.Now()
	srv.signal(syscall.SIGKILL)
	srv.waitExit()
	time.Sleep(3 * time.Second)
	srv = startServer(t, env)
	api = newAPIClient(t, srv.waitReady())
	backAt := time.Now()

	waitFor(t, waitTimeout, "slots after the restart", func() (bool, error) {
		jobs, err := api.scheduleJobs(name)
		if err != nil {
			return false, err
		}
		after := 0
		for slot := range slotCounts(t, name, jobs) {
			if slot.After(backAt.Add(time.Second)) {
				after++
			}
		}
		return after >= 4, fmt.Errorf("%d slots after the restart", after)
	})

	jobs := api.pauseAndSettle(name)
	slots, missing := requireOnePerSlot(t, slotCounts(t, name, jobs))
	down := fmt.Sprintf("down from %s to %s", killedAt.Format(time.RFC3339Nano), backAt.Format(time.RFC3339Nano))
	for _, s := range missing {
		// The slot due just before the kill may have been in flight.
		require.False(t, s.Before(killedAt.Add(-time.Second)), "slot %s has no job, but the node was up (%s)", s.Format(time.RFC3339), down)
		require.False(t, s.After(backAt.Add(time.Second)), "slot %s has no job, but the node was back (%s)", s.Format(time.RFC3339), down)
	}
	t.Logf("%d slots, %d missing while %s", len(slots), len(missing), down)

	srv.signal(syscall.SIGTERM)
	require.Equal(t, 0, srv.waitExit())
}

// TestServeConfigSchedules checks the schedules of the YAML file: listed
// with source config, refused (409) to the API's changes but not to a
// trigger, and deleted once removed from the file and the server
// restarted, while the API's own schedules stay.
func TestServeConfigSchedules(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	config := filepath.Join(dir, "troupe.yaml")
	require.NoError(t, os.WriteFile(config, []byte(`
http_addr: 127.0.0.1:0
data_dir: `+filepath.Join(dir, "data")+`
schedules:
  - name: from-file
    cron: "0 3 * * *"
    timezone: Europe/Paris
    catchUp: one
    job: {type: noop, payload: {from: file}, queue: reports, priority: 3}
`), 0o600))
	env := childEnv()
	srv := startServer(t, env, "--config", config)
	api := newAPIClient(t, srv.waitReady())

	var list struct {
		Schedules []scheduleJSON `json:"schedules"`
	}
	require.NoError(t, json.Unmarshal(api.mustCall(nethttp.MethodGet, "/schedules", "", nethttp.StatusOK), &list))
	require.Len(t, list.Schedules, 1)
	fromFile := list.Schedules[0]
	require.Equal(t, "from-file", fromFile.Name)
	require.Equal(t, "config", fromFile.Source)
	require.Equal(t, "Europe/Paris", fromFile.Timezone)
	require.Equal(t, "one", fromFile.CatchUp)
	require.NotZero(t, fromFile.NextRunAt)

	// The file owns it: the API may not change it, but may run it now.
	for _, call := range []struct{ method, path, body string }{
		{nethttp.MethodPut, "/schedules/from-file", `{"cron":"@hourly","job":{"type":"noop"}}`},
		{nethttp.MethodDelete, "/schedules/from-file", ""},
		{nethttp.MethodPost, "/schedules/from-file/pause", ""},
		{nethttp.MethodPost, "/schedules/from-file/resume", ""},
	} {
		body := api.mustCall(call.method, call.path, call.body, nethttp.StatusConflict)
		require.Contains(t, string(body), "urn:troupe:problem:conflict", "%s %s", call.method, call.path)
	}
	var triggered slotJobJSON
	require.NoError(t, json.Unmarshal(api.mustCall(nethttp.MethodPost, "/schedules/from-file/trigger", "", nethttp.StatusCreated), &triggered))
	require.Equal(t, "from-file", triggered.Schedule)
	require.Equal(t, "reports", triggered.Queue)
	require.JSONEq(t, `{"from":"file"}`, string(triggered.Payload))
	require.Empty(t, triggered.UniqueKey, "a trigger is outside the slots")
	api.waitStatus(triggered.ID, "completed")

	api.mustCall(nethttp.MethodPut, "/schedules/from-api", `{"cron":"@daily","job":{"type":"noop"}}`, nethttp.StatusCreated)

	// Removed from the file, it is gone after a restart; the API's stays,
	// and so does the job the file's submitted.
	srv.signal(syscall.SIGTERM)
	require.Equal(t, 0, srv.waitExit())
	require.NoError(t, os.WriteFile(config, []byte("http_addr: 127.0.0.1:0\ndata_dir: "+filepath.Join(dir, "data")+"\n"), 0o600))
	srv = startServer(t, env, "--config", config)
	api = newAPIClient(t, srv.waitReady())
	api.mustCall(nethttp.MethodGet, "/schedules/from-file", "", nethttp.StatusNotFound)
	var fromAPI scheduleJSON
	require.NoError(t, json.Unmarshal(api.mustCall(nethttp.MethodGet, "/schedules/from-api", "", nethttp.StatusOK), &fromAPI))
	require.Equal(t, "api", fromAPI.Source)
	got, err := api.get(triggered.ID)
	require.NoError(t, err)
	require.Equal(t, "completed", got.Status)

	srv.signal(syscall.SIGTERM)
	require.Equal(t, 0, srv.waitExit())
}

// TestServeRetention runs the binary with short retentions: finished jobs
// disappear from GET /jobs, /stats says how long each status is kept, and
// a failed job retried before it was pruned gives a copy that still runs
// after the original is gone.
func TestServeRetention(t *testing.T) {
	t.Parallel()
	env := childEnv("TROUPE_DATA_DIR="+t.TempDir(), "TROUPE_HTTP_ADDR=127.0.0.1:0", "TROUPE_WORKERS=4",
		"TROUPE_RETENTION_COMPLETED=1s", "TROUPE_RETENTION_FAILED=5s", "TROUPE_RETENTION_CANCELED=0")
	srv := startServer(t, env)
	api := newAPIClient(t, srv.waitReady())

	var stats struct {
		Retention map[string]*string `json:"retention"`
	}
	require.NoError(t, json.Unmarshal(api.mustCall(nethttp.MethodGet, "/stats", "", nethttp.StatusOK), &stats))
	for status, want := range map[string]string{"completed": "1s", "failed": "5s"} {
		require.NotNil(t, stats.Retention[status], "/stats gives the retention of %s jobs", status)
		require.Equal(t, want, *stats.Retention[status])
	}
	require.Contains(t, stats.Retention, "canceled")
	require.Nil(t, stats.Retention["canceled"], "0 keeps canceled jobs for ever")

	// Completed jobs go a second after they finish.
	var ids []string
	for range 20 {
		ids = append(ids, api.submit("noop", `{}`, 1).ID)
	}
	api.waitTotal(url.Values{"type": {"noop"}}, 0, 2*waitTimeout)
	for _, id := range ids {
		api.mustCall(nethttp.MethodGet, "/jobs/"+id, "", nethttp.StatusNotFound)
	}

	// A canceled job is kept for ever.
	api.mustCall(nethttp.MethodPost, "/queues/held/pause", "", nethttp.StatusOK)
	var canceled jobJSON
	require.NoError(t, json.Unmarshal(api.mustCall(nethttp.MethodPost, "/jobs", `{"type":"noop","queue":"held"}`, nethttp.StatusCreated), &canceled))
	api.mustCall(nethttp.MethodDelete, "/jobs/"+canceled.ID, "", nethttp.StatusOK)
	api.waitStatus(canceled.ID, "canceled")

	// A failed job, retried while its queue is paused so that the copy
	// waits; the original is pruned; then the copy runs on its own.
	var failed jobJSON
	require.NoError(t, json.Unmarshal(api.mustCall(nethttp.MethodPost, "/jobs",
		`{"type":"flaky","payload":{"failTimes":1},"maxAttempts":1,"queue":"retry-me"}`, nethttp.StatusCreated), &failed))
	api.waitStatus(failed.ID, "failed")
	api.mustCall(nethttp.MethodPost, "/queues/retry-me/pause", "", nethttp.StatusOK)
	var copied struct {
		jobJSON
		RetryOf string `json:"retryOf"`
	}
	require.NoError(t, json.Unmarshal(api.mustCall(nethttp.MethodPost, "/jobs/"+failed.ID+"/retry", "", nethttp.StatusCreated), &copied))
	require.Equal(t, failed.ID, copied.RetryOf)
	waitFor(t, 2*waitTimeout, "the failed original to be pruned", func() (bool, error) {
		status, _, err := api.call(nethttp.MethodGet, "/jobs/"+failed.ID, "")
		return err == nil && status == nethttp.StatusNotFound, fmt.Errorf("status %d, error %w", status, err)
	})
	got, err := api.get(copied.ID)
	require.NoError(t, err)
	require.Equal(t, "pending", got.Status, "the copy waits in its paused queue, not pruned")
	api.mustCall(nethttp.MethodPost, "/queues/retry-me/resume", "", nethttp.StatusOK)
	// The copy fails like its original (flaky fails a first attempt) and
	// is kept five seconds after: it ran, standing alone.
	ran := api.waitStatus(copied.ID, "failed")
	require.Equal(t, 1, ran.Attempts)

	got, err = api.get(canceled.ID)
	require.NoError(t, err)
	require.Equal(t, "canceled", got.Status, "kept for ever")

	metrics := api.mustCall(nethttp.MethodGet, "/metrics", "", nethttp.StatusOK)
	require.Contains(t, string(metrics), `troupe_jobs_pruned_total{status="completed"}`)

	srv.signal(syscall.SIGTERM)
	require.Equal(t, 0, srv.waitExit())
}

// TestServeRetentionOnNodesAcrossAKill runs two nodes on PostgreSQL that
// both prune completed jobs a second after they finish, and kills one
// with SIGKILL while it runs jobs: its jobs are rescued by the other,
// and in the end every job is gone from the store. Failed and canceled
// jobs are kept for ever, so a job can only leave the store by completing
// and then being pruned: none was lost on the way, and the two pruners
// sharing the table did not stop each other.
func TestServeRetentionOnNodesAcrossAKill(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.URL(t)
	schema := pgtest.RandomSchema(t)
	pgtest.DropSchemaOnCleanup(t, dbURL, schema)
	envOf := func(name string) []string {
		return childEnv(
			"TROUPE_STORE=postgres", "TROUPE_DATABASE_URL="+dbURL, "TROUPE_DATABASE_SCHEMA="+schema,
			"TROUPE_NODE="+name, "TROUPE_HTTP_ADDR=127.0.0.1:0", "TROUPE_WORKERS=4",
			"TROUPE_LEASE_DURATION=2s", "TROUPE_RESCUE_INTERVAL=200ms", "TROUPE_POLL_INTERVAL=200ms",
			"TROUPE_RETENTION_COMPLETED=1s", "TROUPE_RETENTION_FAILED=0", "TROUPE_RETENTION_CANCELED=0",
		)
	}
	a, b := startServer(t, envOf("node-a")), startServer(t, envOf("node-b"))
	apiA, apiB := newAPIClient(t, a.waitReady()), newAPIClient(t, b.waitReady())

	// Long enough that eight are still running once all 120 are in on a
	// loaded machine.
	for range 20 {
		apiA.submit("sleep", `{"ms":3000}`, 3)
	}
	for range 100 {
		apiB.submit("noop", `{}`, 3)
	}
	// Node A dies holding sleep jobs; B rescues them once their leases
	// expire.
	apiA.waitTotal(url.Values{"status": {"running"}}, 8, waitTimeout)
	a.signal(syscall.SIGKILL)
	a.waitExit()
	a = startServer(t, envOf("node-a"))
	apiA = newAPIClient(t, a.waitReady())

	apiB.waitTotal(url.Values{}, 0, 3*waitTimeout)
	metrics := string(apiB.mustCall(nethttp.MethodGet, "/metrics", "", nethttp.StatusOK)) +
		string(apiA.mustCall(nethttp.MethodGet, "/metrics", "", nethttp.StatusOK))
	require.Contains(t, metrics, `troupe_jobs_pruned_total{status="completed"}`)

	for _, p := range []*serverProcess{a, b} {
		p.signal(syscall.SIGTERM)
		require.Equal(t, 0, p.waitExit())
	}
}
