package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	nethttp "net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/internal/pgtest"
)

// The end-to-end tests of the worker protocol: the real binary, and the
// example workers of examples/workers run as the user would run them.

// workerJobJSON is a claimed job on the wire: the job and its lease.
type workerJobJSON struct {
	jobJSON
	Attempt        int    `json:"attempt"`
	LeaseToken     string `json:"leaseToken"`
	LeaseExpiresAt string `json:"leaseExpiresAt"`
}

// wordCountResult is the result of the example workers' word_count.
type wordCountResult struct {
	Words  int    `json:"words"`
	Chars  int    `json:"chars"`
	Worker string `json:"worker"`
}

// requireTool returns the path of a program the test needs. Without it the
// test is skipped on a developer's machine and fails in CI, where .ci/run
// installs it.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is required in CI (.ci/run installs it): %v", name, err)
		}
		t.Skipf("%s is not installed: %v", name, err)
	}
	return path
}

// examplePath is a file of examples/workers.
func examplePath(t *testing.T, parts ...string) string {
	t.Helper()
	path, err := filepath.Abs(filepath.Join(append([]string{"..", "..", "examples", "workers"}, parts...)...))
	require.NoError(t, err)
	require.FileExists(t, path)
	return path
}

// childProcess is a program the test runs, an example worker.
type childProcess struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	logs *logBuffer
	done chan struct{}
	err  error
}

// startChild starts argv with env; it is killed, if still running, when
// the test ends, and its logs are shown if the test failed.
func startChild(t *testing.T, name string, env []string, argv ...string) *childProcess {
	t.Helper()
	p := &childProcess{t: t, name: name, cmd: exec.Command(argv[0], argv[1:]...), logs: &logBuffer{}, done: make(chan struct{})}
	p.cmd.Env = env
	p.cmd.Stdout = p.logs
	p.cmd.Stderr = p.logs
	require.NoError(t, p.cmd.Start())
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("logs of %s (pid %d):\n%s", p.name, p.cmd.Process.Pid, p.logs)
		}
	})
	return p
}

// waitExit waits for the process to exit and returns its exit status.
func (p *childProcess) waitExit() int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(waitTimeout):
		p.t.Fatalf("%s did not exit within %s", p.name, waitTimeout)
	}
	if p.cmd.ProcessState != nil {
		return p.cmd.ProcessState.ExitCode()
	}
	return -1
}

// workerEnv is the environment of an example worker: no proxy, which
// urllib and curl would use for 127.0.0.1 too, and the worker's options.
func workerEnv(base string, extra ...string) []string {
	var env []string
	for _, kv := range childEnv() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.EqualFold(name, "http_proxy") || strings.EqualFold(name, "https_proxy") || strings.EqualFold(name, "all_proxy") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, append([]string{"TROUPE_URL=" + base}, extra...)...)
}

// startPythonWorker runs examples/workers/python/worker.py against base.
func startPythonWorker(t *testing.T, base string, extra ...string) *childProcess {
	t.Helper()
	python := requireTool(t, "python3")
	return startChild(t, "worker.py", workerEnv(base, extra...), python, examplePath(t, "python", "worker.py"))
}

// startShellWorker runs examples/workers/shell/worker.sh against base.
func startShellWorker(t *testing.T, base string, extra ...string) *childProcess {
	t.Helper()
	bash := requireTool(t, "bash")
	requireTool(t, "curl")
	requireTool(t, "jq")
	return startChild(t, "worker.sh", workerEnv(base, extra...), bash, examplePath(t, "shell", "worker.sh"))
}

// startExternalServer starts a Badger server where word_count is run by
// external workers.
func startExternalServer(t *testing.T, extra ...string) (*serverProcess, *apiClient) {
	t.Helper()
	env := childEnv(append([]string{
		"TROUPE_DATA_DIR=" + t.TempDir(), "TROUPE_HTTP_ADDR=127.0.0.1:0",
		"TROUPE_EXTERNAL_TYPES=word_count", "TROUPE_RETRY_BASE_DELAY=10ms", "TROUPE_RETRY_MAX_DELAY=50ms",
	}, extra...)...)
	srv := startServer(t, env)
	return srv, newAPIClient(t, srv.waitReady())
}

// wordCount reads a word_count job's result.
func wordCount(t *testing.T, job jobJSON) wordCountResult {
	t.Helper()
	require.NotEmpty(t, job.Result, "job %s has no result", job.ID)
	var r wordCountResult
	require.NoError(t, json.Unmarshal(job.Result, &r), "result %s", job.Result)
	return r
}

// submitText submits a word_count job and returns its ID.
func (c *apiClient) submitText(text string, sleepMs, maxAttempts int) string {
	c.t.Helper()
	payload, err := json.Marshal(map[string]any{"text": text, "sleepMs": sleepMs})
	require.NoError(c.t, err)
	return c.submit("word_count", string(payload), maxAttempts).ID
}

// TestE2EPythonWorker runs the Python example against the binary: jobs
// complete with their results; a job longer than the lease completes
// because the heartbeats extend it, and carries their progress; bad input
// fails at once, permanently; a cancel reaches the worker through
// cancelRequested; and on SIGTERM the worker finishes the job it holds,
// reports it, and exits 0.
func TestE2EPythonWorker(t *testing.T) {
	t.Parallel()
	_, api := startExternalServer(t)
	worker := startPythonWorker(t, api.base, "TROUPE_WORKER_LEASE=5s", "TROUPE_WORKER_WAIT=1s",
		"TROUPE_WORKER_CONCURRENCY=4", "TROUPE_WORKER_NAME=py-1")

	texts := map[string]string{}
	for i := range 12 {
		text := strings.Repeat("word ", i+1) + "end"
		texts[api.submitText(text, 0, 3)] = text
	}
	long := api.submitText("a job longer than its lease", 8000, 1)
	bad := api.submit("word_count", `{"text": 42}`, 5).ID

	for id, text := range texts {
		job := api.waitStatus(id, "completed")
		r := wordCount(t, job)
		require.Equal(t, wordCountResult{Words: len(strings.Fields(text)), Chars: len(text), Worker: "py-1"}, r)
		require.Equal(t, 1, job.Attempts)
	}
	failed := api.waitStatus(bad, "failed")
	require.Equal(t, 1, failed.Attempts, "bad input is a permanent failure: no retry")
	require.Contains(t, failed.LastError, `"text" string`)
	require.Empty(t, failed.Result)

	longJob := api.waitStatus(long, "completed")
	require.Equal(t, 1, longJob.Attempts, "heartbeats kept the 5s lease of an 8s job")
	require.Equal(t, 6, wordCount(t, longJob).Words)
	require.NotNil(t, longJob.Progress, "heartbeats carried progress")
	require.Positive(t, longJob.Progress.Percent)

	// A cancel: the next heartbeat says cancelRequested, the worker stops
	// the job and reports a failure, which makes it canceled.
	canceled := api.submitText("never finishes", 600_000, 3)
	api.waitStatus(canceled, "running")
	api.mustCall(nethttp.MethodDelete, "/jobs/"+canceled, "", nethttp.StatusOK)
	job := api.waitStatus(canceled, "canceled")
	require.Equal(t, 1, job.Attempts)
	_, stopped := worker.logs.find("job canceled by a user: stopping it")
	require.True(t, stopped)

	// SIGTERM while a job runs: it is finished and reported, then the
	// worker exits 0 and claims nothing more.
	last := api.submitText("finished after the signal", 2000, 1)
	api.waitStatus(last, "running")
	require.NoError(t, worker.cmd.Process.Signal(syscall.SIGTERM))
	require.Equal(t, 0, worker.waitExit())
	require.Equal(t, 4, wordCount(t, api.waitStatus(last, "completed")).Words)
	_, ok := worker.logs.find("worker stopped")
	require.True(t, ok)
}

// TestE2EShellWorker runs the shell example (curl and jq) against the
// binary: jobs complete with results, bad input fails permanently.
func TestE2EShellWorker(t *testing.T) {
	t.Parallel()
	_, api := startExternalServer(t)
	worker := startShellWorker(t, api.base, "TROUPE_WORKER_LEASE=5", "TROUPE_WORKER_WAIT=1")

	texts := map[string]string{}
	for i := range 5 {
		text := strings.Repeat("shell ", i+1)
		texts[api.submitText(text, 0, 3)] = text
	}
	slow := api.submitText("longer than the heartbeat interval", 2500, 1)
	bad := api.submit("word_count", `{"words": "no text"}`, 5).ID
	for id, text := range texts {
		job := api.waitStatus(id, "completed")
		require.Equal(t, wordCountResult{Words: len(strings.Fields(text)), Chars: len(text), Worker: "shell"}, wordCount(t, job))
	}
	require.Equal(t, 5, wordCount(t, api.waitStatus(slow, "completed")).Words)
	failed := api.waitStatus(bad, "failed")
	require.Equal(t, 1, failed.Attempts)
	require.Contains(t, failed.LastError, `"text" string`)

	require.NoError(t, worker.cmd.Process.Signal(syscall.SIGTERM))
	require.Equal(t, 0, worker.waitExit())
}

// TestE2EPythonWorkerKilledMidJob kills a Python worker with SIGKILL while
// it runs a job: when the lease lapses the attempt ends as interrupted, and
// the job completes on a second worker, its second attempt. On Badger the
// job actor's lease timer ends the attempt; on PostgreSQL the rescuer of
// any node does, and the second worker claims through another node.
func TestE2EPythonWorkerKilledMidJob(t *testing.T) {
	t.Parallel()
	t.Run("badger", func(t *testing.T) {
		t.Parallel()
		_, api := startExternalServer(t)
		killMidJob(t, api, api)
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		dbURL := pgtest.URL(t)
		schema := pgtest.RandomSchema(t)
		pgtest.DropSchemaOnCleanup(t, dbURL, schema)
		var apis []*apiClient
		for _, node := range []string{"node-a", "node-b"} {
			srv := startServer(t, childEnv(
				"TROUPE_STORE=postgres", "TROUPE_DATABASE_URL="+dbURL, "TROUPE_DATABASE_SCHEMA="+schema,
				"TROUPE_NODE="+node, "TROUPE_HTTP_ADDR=127.0.0.1:0", "TROUPE_WORKERS=2",
				"TROUPE_EXTERNAL_TYPES=word_count", "TROUPE_RESCUE_INTERVAL=200ms", "TROUPE_POLL_INTERVAL=200ms",
				"TROUPE_RETRY_BASE_DELAY=10ms", "TROUPE_RETRY_MAX_DELAY=50ms",
			))
			apis = append(apis, newAPIClient(t, srv.waitReady()))
		}
		killMidJob(t, apis[0], apis[1])
	})
}

// killMidJob runs a job on a Python worker of first, kills the worker, and
// checks that a worker of second completes it.
func killMidJob(t *testing.T, first, second *apiClient) {
	t.Helper()
	doomed := startPythonWorker(t, first.base, "TROUPE_WORKER_LEASE=5s", "TROUPE_WORKER_WAIT=1s",
		"TROUPE_WORKER_CONCURRENCY=1", "TROUPE_WORKER_NAME=doomed")
	id := first.submitText("survives its worker", 3000, 3)
	first.waitStatus(id, "running")
	waitFor(t, waitTimeout, "the first worker to start the job", func() (bool, error) {
		_, ok := doomed.logs.find("job started")
		return ok, errNotYet
	})
	require.NoError(t, doomed.cmd.Process.Signal(syscall.SIGKILL))
	doomed.waitExit()
	killedAt := time.Now()

	startPythonWorker(t, second.base, "TROUPE_WORKER_LEASE=5s", "TROUPE_WORKER_WAIT=1s",
		"TROUPE_WORKER_CONCURRENCY=1", "TROUPE_WORKER_NAME=survivor")
	job := second.waitStatus(id, "completed")
	require.Equal(t, 2, job.Attempts, "the killed attempt counts, the second completes")
	require.Equal(t, "survivor", wordCount(t, job).Worker)
	t.Logf("completed %s after the kill", time.Since(killedAt).Round(10*time.Millisecond))
}

// claimJSON is the answer of POST /workers/claim.
type claimJSON struct {
	Jobs []workerJobJSON `json:"jobs"`
}

// claim claims up to max jobs of types through c, waiting up to wait.
func (c *apiClient) claim(types []string, max int, wait, lease string) []workerJobJSON {
	c.t.Helper()
	body, err := json.Marshal(map[string]any{"types": types, "max": max, "wait": wait, "lease": lease, "worker": c.t.Name()})
	require.NoError(c.t, err)
	var got claimJSON
	require.NoError(c.t, json.Unmarshal(c.mustCall(nethttp.MethodPost, "/workers/claim", string(body), nethttp.StatusOK), &got))
	return got.Jobs
}

// claimOne claims one job, waiting for it.
func (c *apiClient) claimOne(types []string, lease string) workerJobJSON {
	c.t.Helper()
	var jobs []workerJobJSON
	waitFor(c.t, waitTimeout, "a job to claim", func() (bool, error) {
		jobs = c.claim(types, 1, "1s", lease)
		return len(jobs) == 1, fmt.Errorf("claimed %d jobs", len(jobs))
	})
	require.NotEmpty(c.t, jobs[0].LeaseToken)
	return jobs[0]
}

// report posts an outcome (path complete or fail) and returns the status
// and body.
func (c *apiClient) report(id, path string, body map[string]any) (int, []byte) {
	c.t.Helper()
	b, err := json.Marshal(body)
	require.NoError(c.t, err)
	status, data, err := c.call(nethttp.MethodPost, "/jobs/"+id+"/"+path, string(b))
	require.NoError(c.t, err)
	return status, data
}

// heartbeatJSON is the answer of POST /jobs/{id}/heartbeat.
type heartbeatJSON struct {
	LeaseExpiresAt  string `json:"leaseExpiresAt"`
	CancelRequested bool   `json:"cancelRequested"`
}

func (c *apiClient) heartbeat(id, token string) heartbeatJSON {
	c.t.Helper()
	body, err := json.Marshal(map[string]any{"leaseToken": token, "progress": map[string]any{"percent": 50, "message": "half"}})
	require.NoError(c.t, err)
	var hb heartbeatJSON
	require.NoError(c.t, json.Unmarshal(c.mustCall(nethttp.MethodPost, "/jobs/"+id+"/heartbeat", string(body), nethttp.StatusOK), &hb))
	return hb
}

// requireLeaseLost checks a 409 lease-lost problem.
func requireLeaseLost(t *testing.T, status int, body []byte) {
	t.Helper()
	require.Equal(t, nethttp.StatusConflict, status, "%s", body)
	var p struct {
		Type string `json:"type"`
	}
	require.NoError(t, json.Unmarshal(body, &p))
	require.Equal(t, "urn:troupe:problem:lease-lost", p.Type)
}

// TestE2ELateOutcomeIsRefused: a worker that reports after its lease
// expired gets 409, whether the job waits for its next attempt or another
// worker already runs it, and the other worker's outcome stands.
func TestE2ELateOutcomeIsRefused(t *testing.T) {
	t.Parallel()
	_, api := startExternalServer(t)
	types := []string{"word_count"}
	id := api.submitText("late", 0, 3)

	slow := api.claimOne(types, "5s")
	require.Equal(t, id, slow.ID)
	require.Equal(t, 1, slow.Attempt)
	// No heartbeat: the lease lapses and the job waits for its next attempt.
	waitFor(t, 2*waitTimeout, "the lease to lapse", func() (bool, error) {
		job, err := api.get(id)
		return err == nil && job.Status != "running", fmt.Errorf("status %s: %w", job.Status, err)
	})
	status, body := api.report(id, "complete", map[string]any{"leaseToken": slow.LeaseToken, "result": "slow"})
	requireLeaseLost(t, status, body)

	fast := api.claimOne(types, "30s")
	require.Equal(t, id, fast.ID)
	require.Equal(t, 2, fast.Attempt)
	require.NotEqual(t, slow.LeaseToken, fast.LeaseToken)
	// The slow worker again, while the job is the fast one's: refused, and
	// the running attempt is untouched.
	status, body = api.report(id, "complete", map[string]any{"leaseToken": slow.LeaseToken, "result": "slow"})
	requireLeaseLost(t, status, body)
	status, body = api.report(id, "fail", map[string]any{"leaseToken": slow.LeaseToken, "error": "slow gave up", "permanent": true})
	requireLeaseLost(t, status, body)
	running, err := api.get(id)
	require.NoError(t, err)
	require.Equal(t, "running", running.Status)

	status, body = api.report(id, "complete", map[string]any{"leaseToken": fast.LeaseToken, "result": map[string]any{"by": "fast"}})
	require.Equal(t, nethttp.StatusOK, status, "%s", body)
	// Late again, after the job completed.
	status, body = api.report(id, "complete", map[string]any{"leaseToken": slow.LeaseToken, "result": "slow"})
	requireLeaseLost(t, status, body)

	job := api.waitStatus(id, "completed")
	require.JSONEq(t, `{"by":"fast"}`, string(job.Result))
	require.Equal(t, 2, job.Attempts)
}

// webhookCall is one request the webhook test server received.
type webhookCall struct {
	path, idempotencyKey, team, userAgent string
	signatureOK                           bool
	body                                  struct {
		ID      string          `json:"id"`
		Type    string          `json:"type"`
		Attempt int             `json:"attempt"`
		Payload json.RawMessage `json:"payload"`
	}
}

// verifySignature checks a Troupe-Signature header by the spec (the
// scheme Stripe uses): t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>.
func verifySignature(secret, header string, body []byte) bool {
	var ts, sig string
	for part := range strings.SplitSeq(header, ",") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	if ts == "" || sig == "" {
		return false
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "." + string(body)))
	want := hex.EncodeToString(mac.Sum(nil))
	return hmac.Equal([]byte(want), []byte(sig))
}

// TestE2EWebhookFromYAML configures webhook types in the YAML file, with
// the secret from an environment variable, and points them at a test
// server that verifies every signature: a 503 is retried and the 2xx that
// follows completes the job with the JSON it answered; a 422 fails the job
// at once with the status and the body.
func TestE2EWebhookFromYAML(t *testing.T) {
	t.Parallel()
	const secret = "whsec-e2e-test"
	var (
		mu    sync.Mutex
		calls []webhookCall
	)
	hooks := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		data, _ := io.ReadAll(r.Body)
		c := webhookCall{
			path: r.URL.Path, idempotencyKey: r.Header.Get("Idempotency-Key"), team: r.Header.Get("X-Team"),
			userAgent: r.Header.Get("User-Agent"), signatureOK: verifySignature(secret, r.Header.Get("Troupe-Signature"), data),
		}
		_ = json.Unmarshal(data, &c.body)
		mu.Lock()
		calls = append(calls, c)
		mu.Unlock()
		switch {
		case !c.signatureOK:
			nethttp.Error(w, "bad signature", nethttp.StatusUnauthorized)
		case r.URL.Path == "/reject":
			nethttp.Error(w, "unprocessable: size 0x0", nethttp.StatusUnprocessableEntity)
		case c.body.Attempt == 1:
			w.Header().Set("Retry-After", "0")
			nethttp.Error(w, "busy, try again", nethttp.StatusServiceUnavailable)
		default:
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"thumbnail":"thumb-%s.png","attempt":%d}`, c.body.ID, c.body.Attempt)
		}
	}))
	t.Cleanup(hooks.Close)

	config := filepath.Join(t.TempDir(), "troupe.yaml")
	require.NoError(t, os.WriteFile(config, fmt.Appendf(nil, `
webhooks:
  - type: resize_image
    url: %[1]s/resize
    timeout: 5s
    headers: {X-Team: imaging}
    secretEnv: RESIZE_HOOK_SECRET
  - type: reject_image
    url: %[1]s/reject
    secret: %[2]s
`, hooks.URL, secret), 0o600))
	srv := startServer(t, childEnv("TROUPE_DATA_DIR="+t.TempDir(), "TROUPE_HTTP_ADDR=127.0.0.1:0",
		"TROUPE_RETRY_BASE_DELAY=10ms", "TROUPE_RETRY_MAX_DELAY=50ms", "TROUPE_CONFIG="+config,
		"RESIZE_HOOK_SECRET="+secret))
	api := newAPIClient(t, srv.waitReady())
	require.NotContains(t, srv.logs.String(), secret, "the secret is never logged")

	var types struct {
		JobTypes []struct {
			Type  string `json:"type"`
			RunBy string `json:"runBy"`
		} `json:"jobTypes"`
	}
	require.NoError(t, json.Unmarshal(api.mustCall(nethttp.MethodGet, "/job-types", "", nethttp.StatusOK), &types))
	runBy := map[string]string{}
	for _, jt := range types.JobTypes {
		runBy[jt.Type] = jt.RunBy
	}
	require.Equal(t, "webhook", runBy["resize_image"])
	require.Equal(t, "webhook", runBy["reject_image"])

	ok := api.submit("resize_image", `{"src":"cat.png","w":64}`, 3)
	job := api.waitStatus(ok.ID, "completed")
	require.Equal(t, 2, job.Attempts)
	require.JSONEq(t, fmt.Sprintf(`{"thumbnail":"thumb-%s.png","attempt":2}`, ok.ID), string(job.Result))

	rejected := api.submit("reject_image", `{"src":"empty.png"}`, 5)
	failed := api.waitStatus(rejected.ID, "failed")
	require.Equal(t, 1, failed.Attempts, "a 4xx is permanent")
	require.Contains(t, failed.LastError, "422")
	require.Contains(t, failed.LastError, "unprocessable: size 0x0")

	mu.Lock()
	defer mu.Unlock()
	require.Len(t, calls, 3)
	for i, c := range calls {
		require.True(t, c.signatureOK, "call %d is signed with the secret", i)
		require.Equal(t, fmt.Sprintf("%s:%d", c.body.ID, c.body.Attempt), c.idempotencyKey, "call %d", i)
		require.Equal(t, "troupe-webhook", c.userAgent)
	}
	require.Equal(t, "/resize", calls[0].path)
	require.Equal(t, "resize_image", calls[0].body.Type)
	require.JSONEq(t, `{"src":"cat.png","w":64}`, string(calls[0].body.Payload))
	require.Equal(t, "imaging", calls[0].team, "the configured header is sent")
	require.Equal(t, []int{1, 2}, []int{calls[0].body.Attempt, calls[1].body.Attempt})
	require.Empty(t, calls[2].team, "each webhook sends its own headers")
}

// TestE2EWorkersAcrossNodes runs three nodes on PostgreSQL: an external
// worker claims a job through one node, heartbeats through another and
// completes it through the third; a cancel sent to one node reaches a
// worker that heartbeats through another, and its failure report makes
// the job canceled.
func TestE2EWorkersAcrossNodes(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.URL(t)
	schema := pgtest.RandomSchema(t)
	pgtest.DropSchemaOnCleanup(t, dbURL, schema)

	nodes := make([]*apiClient, 3)
	procs := make([]*serverProcess, 3)
	for i, name := range []string{"node-a", "node-b", "node-c"} {
		procs[i] = startServer(t, childEnv(
			"TROUPE_STORE=postgres", "TROUPE_DATABASE_URL="+dbURL, "TROUPE_DATABASE_SCHEMA="+schema,
			"TROUPE_NODE="+name, "TROUPE_HTTP_ADDR=127.0.0.1:0", "TROUPE_WORKERS=2",
			"TROUPE_EXTERNAL_TYPES=word_count", "TROUPE_LEASE_DURATION=2s",
			"TROUPE_RESCUE_INTERVAL=200ms", "TROUPE_POLL_INTERVAL=200ms",
		))
	}
	for i, p := range procs {
		nodes[i] = newAPIClient(t, p.waitReady())
	}
	a, b, c := nodes[0], nodes[1], nodes[2]
	types := []string{"word_count"}

	// Submitted through A, claimed through B, completed through C.
	id := a.submitText("three nodes one job", 0, 3)
	claimed := b.claimOne(types, "30s")
	require.Equal(t, id, claimed.ID)
	hb := c.heartbeat(id, claimed.LeaseToken)
	require.False(t, hb.CancelRequested)
	status, body := c.report(id, "complete", map[string]any{"leaseToken": claimed.LeaseToken, "result": map[string]any{"words": 4}})
	require.Equal(t, nethttp.StatusOK, status, "%s", body)
	done := a.waitStatus(id, "completed")
	require.JSONEq(t, `{"words":4}`, string(done.Result))

	// Claimed through A, canceled through C, learned through B.
	id = b.submitText("canceled elsewhere", 0, 3)
	claimed = a.claimOne(types, "30s")
	require.Equal(t, id, claimed.ID)
	c.mustCall(nethttp.MethodDelete, "/jobs/"+id, "", nethttp.StatusOK)
	waitFor(t, waitTimeout, "the cancel to reach the heartbeat", func() (bool, error) {
		return b.heartbeat(id, claimed.LeaseToken).CancelRequested, errNotYet
	})
	status, body = b.report(id, "fail", map[string]any{"leaseToken": claimed.LeaseToken, "error": "stopped: canceled"})
	require.Equal(t, nethttp.StatusOK, status, "%s", body)
	c.waitStatus(id, "canceled")

	for _, p := range procs {
		p.signal(syscall.SIGTERM)
		require.Equal(t, 0, p.waitExit())
	}
}

// TestE2EWorkerToken runs the Python worker with a worker token on a
// server that also has API tokens: the worker completes jobs, and its
// token is refused everywhere but the worker routes.
func TestE2EWorkerToken(t *testing.T) {
	t.Parallel()
	const apiToken, workerToken = "api-e2e-token", "worker-e2e-token"
	_, api := startExternalServer(t, "TROUPE_API_TOKENS="+apiToken, "TROUPE_WORKER_TOKENS="+workerToken)
	api.token = apiToken
	startPythonWorker(t, api.base, "TROUPE_TOKEN="+workerToken, "TROUPE_WORKER_WAIT=1s", "TROUPE_WORKER_NAME=tokened")
	id := api.submitText("with a worker token", 0, 1)
	require.Equal(t, "tokened", wordCount(t, api.waitStatus(id, "completed")).Worker)

	worker := newAPIClient(t, api.base)
	worker.token = workerToken
	for _, call := range []struct{ method, path, body string }{
		{nethttp.MethodGet, "/jobs", ""},
		{nethttp.MethodGet, "/jobs/" + id, ""},
		{nethttp.MethodPost, "/jobs", `{"type":"word_count","payload":{"text":"x"}}`},
		{nethttp.MethodDelete, "/jobs/" + id, ""},
	} {
		body := worker.mustCall(call.method, call.path, call.body, nethttp.StatusForbidden)
		require.Contains(t, string(body), "urn:troupe:problem:forbidden", "%s %s", call.method, call.path)
	}
	require.Empty(t, worker.claim([]string{"word_count"}, 1, "0s", "5s"), "the worker routes take it")
	anonymous := newAPIClient(t, api.base)
	anonymous.mustCall(nethttp.MethodPost, "/workers/claim", `{"types":["word_count"]}`, nethttp.StatusUnauthorized)
}

// TestServeBadWebhookExits1 checks that a webhook whose type is also an
// external type stops serve before it starts, with one line that names
// the entry, and that a webhook whose secretEnv is unset does too; neither
// shows a secret.
func TestServeBadWebhookExits1(t *testing.T) {
	t.Parallel()
	config := filepath.Join(t.TempDir(), "troupe.yaml")
	require.NoError(t, os.WriteFile(config, []byte(`
external_types: [resize_image]
webhooks:
  - {type: resize_image, url: "http://imgsvc/jobs", secret: s3cret-value}
  - {type: transcode, url: "http://video/jobs", secretEnv: TRANSCODE_SECRET}
`), 0o600))
	srv := startServer(t, childEnv("TROUPE_DATA_DIR="+t.TempDir(), "TROUPE_CONFIG="+config), "--http-addr", "127.0.0.1:0")
	require.Equal(t, 1, srv.waitExit())
	out := srv.logs.String()
	require.Equal(t, 1, strings.Count(out, "\n"), "one line: %s", out)
	require.Contains(t, out, `webhooks[1] ("transcode"): secretEnv names the environment variable TRANSCODE_SECRET, which is not set or empty`)
	require.NotContains(t, out, "s3cret-value")

	srv = startServer(t, childEnv("TROUPE_DATA_DIR="+t.TempDir(), "TROUPE_CONFIG="+config, "TRANSCODE_SECRET=t0p-secret"),
		"--http-addr", "127.0.0.1:0")
	require.Equal(t, 1, srv.waitExit())
	out = srv.logs.String()
	require.Equal(t, 1, strings.Count(out, "\n"), "one line: %s", out)
	require.Contains(t, out, `troupe: webhooks[0] ("resize_image"): type "resize_image" is also in external_types (in `+config+`)`)
	require.NotContains(t, out, "s3cret-value")
	require.NotContains(t, out, "t0p-secret")
}

// TestE2EServerKilledWhileAWorkerHoldsAJob kills the server (-9) while an
// external worker holds a job. On Badger the restarted server counts the
// attempt as interrupted: the worker's late outcome gets 409, and the job
// is claimed again and completes. On PostgreSQL the lease lives in the
// database, so the worker reports through another node as if nothing had
// happened.
func TestE2EServerKilledWhileAWorkerHoldsAJob(t *testing.T) {
	t.Parallel()
	types := []string{"word_count"}
	t.Run("badger", func(t *testing.T) {
		t.Parallel()
		env := childEnv("TROUPE_DATA_DIR="+t.TempDir(), "TROUPE_HTTP_ADDR=127.0.0.1:0", "TROUPE_EXTERNAL_TYPES=word_count")
		srv := startServer(t, env)
		api := newAPIClient(t, srv.waitReady())
		id := api.submitText("held while the server dies", 0, 3)
		held := api.claimOne(types, "30s")
		require.Equal(t, id, held.ID)
		srv.signal(syscall.SIGKILL)
		srv.waitExit()

		api = newAPIClient(t, startServer(t, env).waitReady())
		status, body := api.report(id, "complete", map[string]any{"leaseToken": held.LeaseToken, "result": map[string]any{"words": 5}})
		requireLeaseLost(t, status, body)
		again := api.claimOne(types, "30s")
		require.Equal(t, id, again.ID)
		require.Equal(t, 2, again.Attempt, "the attempt the kill interrupted counts")
		status, body = api.report(id, "complete", map[string]any{"leaseToken": again.LeaseToken, "result": map[string]any{"words": 5}})
		require.Equal(t, nethttp.StatusOK, status, "%s", body)
		done := api.waitStatus(id, "completed")
		require.JSONEq(t, `{"words":5}`, string(done.Result))
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		dbURL := pgtest.URL(t)
		schema := pgtest.RandomSchema(t)
		pgtest.DropSchemaOnCleanup(t, dbURL, schema)
		procs := make([]*serverProcess, 2)
		nodes := make([]*apiClient, 2)
		for i, name := range []string{"node-a", "node-b"} {
			procs[i] = startServer(t, childEnv(
				"TROUPE_STORE=postgres", "TROUPE_DATABASE_URL="+dbURL, "TROUPE_DATABASE_SCHEMA="+schema,
				"TROUPE_NODE="+name, "TROUPE_HTTP_ADDR=127.0.0.1:0", "TROUPE_EXTERNAL_TYPES=word_count",
				"TROUPE_LEASE_DURATION=1s", "TROUPE_RESCUE_INTERVAL=200ms", "TROUPE_POLL_INTERVAL=200ms",
			))
			nodes[i] = newAPIClient(t, procs[i].waitReady())
		}
		id := nodes[0].submitText("held while its node dies", 0, 3)
		held := nodes[0].claimOne(types, "30s")
		require.Equal(t, id, held.ID)
		procs[0].signal(syscall.SIGKILL)
		procs[0].waitExit()

		// Past the dead node's own lease and several rescues: the worker's
		// lease is its own, and still holds.
		time.Sleep(2 * time.Second)
		require.False(t, nodes[1].heartbeat(id, held.LeaseToken).CancelRequested)
		status, body := nodes[1].report(id, "complete", map[string]any{"leaseToken": held.LeaseToken, "result": map[string]any{"words": 5}})
		require.Equal(t, nethttp.StatusOK, status, "%s", body)
		done := nodes[1].waitStatus(id, "completed")
		require.Equal(t, 1, done.Attempts, "one attempt: the node's death did not interrupt the worker's")
		require.JSONEq(t, `{"words":5}`, string(done.Result))
	})
}
