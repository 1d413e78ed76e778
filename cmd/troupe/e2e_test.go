package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	nethttp "net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// serverProcess is a `troupe serve` child process.
type serverProcess struct {
	t    *testing.T
	cmd  *exec.Cmd
	logs *logBuffer
	done chan struct{} // closed when the process has exited
	err  error         // Wait's result, once done is closed
}

// childEnv is the test's environment without TROUPE_* variables, which
// would leak the developer's configuration into the tests, plus extra.
func childEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, EnvPrefix) {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// startServer starts the binary with `serve` and args. The process is
// killed, if still running, when the test ends; its logs are shown if the
// test failed.
func startServer(t *testing.T, env []string, args ...string) *serverProcess {
	t.Helper()
	p := &serverProcess{
		t:    t,
		cmd:  exec.Command(binaryPath(t), append([]string{"serve"}, args...)...),
		logs: &logBuffer{},
		done: make(chan struct{}),
	}
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
			t.Logf("logs of troupe serve (pid %d):\n%s", p.cmd.Process.Pid, p.logs)
		}
	})
	return p
}

// waitReady waits for the server's "troupe started" line and returns the
// API's base URL from it. It fails if the process exits first.
func (p *serverProcess) waitReady() string {
	p.t.Helper()
	var addr string
	waitFor(p.t, waitTimeout, "the server to start", func() (bool, error) {
		if rec, ok := p.logs.find("troupe started"); ok {
			addr, _ = rec["addr"].(string)
			return addr != "", fmt.Errorf("no addr in %v", rec)
		}
		select {
		case <-p.done:
			p.t.Fatalf("troupe serve exited before it started: %v\n%s", p.err, p.logs)
		default:
		}
		return false, errNotYet
	})
	return "http://" + addr
}

// signal sends sig to the process.
func (p *serverProcess) signal(sig os.Signal) {
	p.t.Helper()
	require.NoError(p.t, p.cmd.Process.Signal(sig))
}

// waitExit waits for the process to exit and returns its exit status.
func (p *serverProcess) waitExit() int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(waitTimeout):
		p.t.Fatalf("troupe serve did not exit within %s", waitTimeout)
	}
	var exitErr *exec.ExitError
	if errors.As(p.err, &exitErr) {
		return exitErr.ExitCode()
	}
	require.NoError(p.t, p.err)
	return 0
}

// jobJSON is the part of a job on the wire that the tests read.
type jobJSON struct {
	ID          string          `json:"id"`
	Type        string          `json:"type"`
	Payload     json.RawMessage `json:"payload"`
	Status      string          `json:"status"`
	Attempts    int             `json:"attempts"`
	MaxAttempts int             `json:"maxAttempts"`
	LastError   string          `json:"lastError"`
	Result      json.RawMessage `json:"result"`
	Progress    *struct {
		Percent float64 `json:"percent"`
		Message string  `json:"message"`
	} `json:"progress"`
}

// listJSON is the answer of GET /jobs.
type listJSON struct {
	Jobs   []jobJSON `json:"jobs"`
	Total  int       `json:"total"`
	Limit  int       `json:"limit"`
	Offset int       `json:"offset"`
}

// apiClient calls a server's API for the tests.
type apiClient struct {
	t    *testing.T
	base string
	http *nethttp.Client
	// token, when set, is sent as the bearer token.
	token string
}

func newAPIClient(t *testing.T, base string) *apiClient {
	c := &apiClient{t: t, base: base, http: &nethttp.Client{
		Transport: nethttp.DefaultTransport.(*nethttp.Transport).Clone(),
		Timeout:   10 * time.Second,
	}}
	t.Cleanup(c.http.CloseIdleConnections)
	return c
}

// call sends a request and returns the status and body; transport errors
// are returned, not fatal, so that conditions can retry them.
func (c *apiClient) call(method, path string, body string) (int, []byte, error) {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := nethttp.NewRequestWithContext(c.t.Context(), method, c.base+path, r)
	if err != nil {
		return 0, nil, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, data, err
}

// mustCall is call that fails the test on a transport error or an
// unexpected status.
func (c *apiClient) mustCall(method, path, body string, wantStatus int) []byte {
	c.t.Helper()
	status, data, err := c.call(method, path, body)
	require.NoError(c.t, err, "%s %s", method, path)
	require.Equal(c.t, wantStatus, status, "%s %s: %s", method, path, data)
	return data
}

func (c *apiClient) submit(typ, payload string, maxAttempts int) jobJSON {
	c.t.Helper()
	body := fmt.Sprintf(`{"type":%q,"payload":%s,"maxAttempts":%d}`, typ, payload, maxAttempts)
	var job jobJSON
	require.NoError(c.t, json.Unmarshal(c.mustCall(nethttp.MethodPost, "/jobs", body, nethttp.StatusCreated), &job))
	return job
}

func (c *apiClient) get(id string) (jobJSON, error) {
	status, data, err := c.call(nethttp.MethodGet, "/jobs/"+id, "")
	if err != nil {
		return jobJSON{}, err
	}
	if status != nethttp.StatusOK {
		return jobJSON{}, fmt.Errorf("GET /jobs/%s: %d %s", id, status, data)
	}
	var job jobJSON
	return job, json.Unmarshal(data, &job)
}

func (c *apiClient) list(query url.Values) (listJSON, error) {
	status, data, err := c.call(nethttp.MethodGet, "/jobs?"+query.Encode(), "")
	if err != nil {
		return listJSON{}, err
	}
	if status != nethttp.StatusOK {
		return listJSON{}, fmt.Errorf("GET /jobs?%s: %d %s", query.Encode(), status, data)
	}
	var page listJSON
	return page, json.Unmarshal(data, &page)
}

// waitStatus waits until the job has status and returns it.
func (c *apiClient) waitStatus(id, status string) jobJSON {
	c.t.Helper()
	var job jobJSON
	waitFor(c.t, waitTimeout, fmt.Sprintf("job %s to be %s", id, status), func() (bool, error) {
		var err error
		job, err = c.get(id)
		if err != nil {
			return false, err
		}
		return job.Status == status, fmt.Errorf("status is %s (attempts %d, last error %q)", job.Status, job.Attempts, job.LastError)
	})
	return job
}

// waitTotal waits until the listing for query counts want jobs.
func (c *apiClient) waitTotal(query url.Values, want int, timeout time.Duration) {
	c.t.Helper()
	waitFor(c.t, timeout, fmt.Sprintf("%d jobs for %s", want, query.Encode()), func() (bool, error) {
		page, err := c.list(query)
		if err != nil {
			return false, err
		}
		return page.Total == want, fmt.Errorf("total is %d", page.Total)
	})
}

// TestServeEndToEnd drives the real binary over HTTP: the demo handlers,
// retries, panics, cancellation, listing, metrics and health; then a kill
// with a backlog, a restart that finishes it, and a graceful stop.
func TestServeEndToEnd(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	env := childEnv("TROUPE_RETRY_BASE_DELAY=10ms", "TROUPE_DATA_DIR="+dataDir)
	srv := startServer(t, env, "--http-addr", "127.0.0.1:0", "--workers", "2")
	api := newAPIClient(t, srv.waitReady())

	noop := api.submit("noop", `{}`, 0)
	require.Equal(t, "pending", noop.Status)
	api.waitStatus(noop.ID, "completed")

	flaky := api.submit("flaky", `{"failTimes":2}`, 3)
	flakyDone := api.waitStatus(flaky.ID, "completed")
	require.Equal(t, 3, flakyDone.Attempts)

	panicky := api.submit("panic", `{}`, 1)
	panicked := api.waitStatus(panicky.ID, "failed")
	require.Contains(t, panicked.LastError, "panic")

	sleeper := api.submit("sleep", `{"ms":60000}`, 0)
	api.waitStatus(sleeper.ID, "running")
	api.mustCall(nethttp.MethodDelete, "/jobs/"+sleeper.ID, "", nethttp.StatusOK)
	api.waitStatus(sleeper.ID, "canceled")

	var problem struct {
		Status int    `json:"status"`
		Detail string `json:"detail"`
	}
	body := api.mustCall(nethttp.MethodDelete, "/jobs/"+noop.ID, "", nethttp.StatusConflict)
	require.NoError(t, json.Unmarshal(body, &problem))
	require.Equal(t, nethttp.StatusConflict, problem.Status)
	require.NotEmpty(t, problem.Detail)

	page, err := api.list(url.Values{"status": {"completed"}, "limit": {"1"}, "offset": {"1"}})
	require.NoError(t, err)
	require.Equal(t, 2, page.Total, "noop and flaky completed")
	require.Equal(t, 1, page.Limit)
	require.Equal(t, 1, page.Offset)
	require.Len(t, page.Jobs, 1)
	require.Equal(t, flaky.ID, page.Jobs[0].ID, "oldest first: the second completed job is flaky")
	page, err = api.list(url.Values{"status": {"failed", "canceled"}})
	require.NoError(t, err)
	require.Equal(t, 2, page.Total)

	metrics := api.mustCall(nethttp.MethodGet, "/metrics", "", nethttp.StatusOK)
	require.Contains(t, string(metrics), "troupe_jobs_completed_total")
	api.mustCall(nethttp.MethodGet, "/health", "", nethttp.StatusOK)

	// A backlog, then a kill: two workers leave most of it queued.
	const backlog = 100
	for range backlog {
		api.submit("sleep", `{"ms":200}`, 0)
	}
	if page, err := api.list(url.Values{"status": {"pending"}, "type": {"sleep"}, "limit": {"1"}}); err == nil {
		t.Logf("killing the server with %d of %d sleep jobs pending", page.Total, backlog)
	}
	srv.signal(syscall.SIGKILL)
	require.NotZero(t, srv.waitExit())

	// Restarted on the same data, the server finishes all of it.
	srv = startServer(t, env, "--http-addr", "127.0.0.1:0", "--workers", "10")
	api = newAPIClient(t, srv.waitReady())
	api.waitTotal(url.Values{"status": {"completed"}, "type": {"sleep"}, "limit": {"1"}}, backlog, 2*waitTimeout)
	got, err := api.get(noop.ID)
	require.NoError(t, err)
	require.Equal(t, "completed", got.Status, "jobs from before the kill are still there")

	srv.signal(syscall.SIGTERM)
	require.Equal(t, 0, srv.waitExit())
	_, stopped := srv.logs.find("troupe stopped")
	require.True(t, stopped, "the stop is logged")
	_, closed := srv.logs.find("store closed")
	require.True(t, closed, "the store is closed on the way out")
}

// TestServeBadConfigExits1 checks that a bad option stops serve before it
// starts, with one line that names the option.
func TestServeBadConfigExits1(t *testing.T) {
	t.Parallel()
	srv := startServer(t, childEnv("TROUPE_WORKERS=abc", "TROUPE_DATA_DIR="+t.TempDir()), "--http-addr", "127.0.0.1:0")
	require.Equal(t, 1, srv.waitExit())
	out := srv.logs.String()
	require.Contains(t, out, `troupe: invalid TROUPE_WORKERS "abc"`)
	require.Equal(t, 1, strings.Count(out, "\n"), "one line: %s", out)
}

// TestServeDataDirInUse checks that a second server on the same data
// directory fails with a clear error and leaves the first one serving.
func TestServeDataDirInUse(t *testing.T) {
	t.Parallel()
	env := childEnv("TROUPE_DATA_DIR=" + t.TempDir())
	first := startServer(t, env, "--http-addr", "127.0.0.1:0")
	api := newAPIClient(t, first.waitReady())

	second := startServer(t, env, "--http-addr", "127.0.0.1:0")
	require.Equal(t, 1, second.waitExit())
	lines := strings.Split(strings.TrimSpace(second.logs.String()), "\n")
	last := lines[len(lines)-1]
	require.True(t, strings.HasPrefix(last, "troupe: "), "the error is the last line: %s", last)
	require.Contains(t, last, "in use")

	api.mustCall(nethttp.MethodGet, "/health", "", nethttp.StatusOK)
}

// TestServeSecondSignalExitsAtOnce checks that a second signal does not
// wait for the running jobs that the first one is waiting for.
func TestServeSecondSignalExitsAtOnce(t *testing.T) {
	t.Parallel()
	srv := startServer(t, childEnv("TROUPE_DATA_DIR="+t.TempDir()), "--http-addr", "127.0.0.1:0", "--shutdown-timeout", "10m")
	api := newAPIClient(t, srv.waitReady())
	job := api.submit("sleep", `{"ms":600000}`, 0)
	api.waitStatus(job.ID, "running")

	srv.signal(syscall.SIGTERM)
	waitFor(t, waitTimeout, "the stop to begin", func() (bool, error) {
		_, ok := srv.logs.find("troupe stopping")
		return ok, errNotYet
	})
	srv.signal(syscall.SIGTERM)
	require.Equal(t, 128+int(syscall.SIGTERM), srv.waitExit())
	_, ok := srv.logs.find("second signal received: exiting at once without finishing the shutdown")
	require.True(t, ok)
	require.False(t, bytes.Contains([]byte(srv.logs.String()), []byte(`"msg":"troupe stopped"`)))
}
