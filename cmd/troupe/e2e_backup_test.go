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
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/persistence/badgerstore"
)

// commandResult is what a run of the binary printed and how it exited.
type commandResult struct {
	stdout, stderr string
	code           int
}

// runTroupe runs the binary with args and env to its end.
func runTroupe(t *testing.T, env []string, args ...string) commandResult {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), binaryPath(t), args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := commandResult{stdout: stdout.String(), stderr: stderr.String()}
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		res.code = exitErr.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return res
}

// requireOK checks that a run succeeded.
func (r commandResult) requireOK(t *testing.T) {
	t.Helper()
	require.Equal(t, 0, r.code, "stdout: %s\nstderr: %s", r.stdout, r.stderr)
}

// requireRefused checks that a run failed with one line on stderr that
// holds every part of want.
func (r commandResult) requireRefused(t *testing.T, want ...string) {
	t.Helper()
	require.Equal(t, 1, r.code, "stdout: %s\nstderr: %s", r.stdout, r.stderr)
	require.Equal(t, 1, strings.Count(r.stderr, "\n"), "one line: %s", r.stderr)
	for _, w := range want {
		require.Contains(t, r.stderr, w)
	}
}

// requireEntries checks the names in dir.
func requireEntries(t *testing.T, dir string, want ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	got := []string{}
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if want == nil {
		want = []string{}
	}
	require.Equal(t, want, got)
}

// tokenClient calls an API that needs a token; errors are returned, so
// that load generators can report them.
type tokenClient struct {
	base, token string
	http        *nethttp.Client
}

func newTokenClient(t *testing.T, base, token string) *tokenClient {
	c := &tokenClient{base: base, token: token, http: &nethttp.Client{
		Transport: nethttp.DefaultTransport.(*nethttp.Transport).Clone(),
		Timeout:   30 * time.Second,
	}}
	t.Cleanup(c.http.CloseIdleConnections)
	return c
}

func (c *tokenClient) call(method, path, body string, out any) (int, error) {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := nethttp.NewRequest(method, c.base+path, r)
	if err != nil {
		return 0, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: %w: %s", method, path, err, data)
		}
	}
	return resp.StatusCode, nil
}

// submitted is a job the server acknowledged with 201.
type submitted struct {
	typ, payload string
}

// TestBackupOnlineUnderLoadRestoresEveryAcknowledgedJob takes a backup
// from a running server through the API while clients keep submitting
// and canceling jobs, restores it into a new directory and finds there
// every job acknowledged before the backup began, in the state it had
// reached: a job seen completed or canceled before is so in the backup.
func TestBackupOnlineUnderLoadRestoresEveryAcknowledgedJob(t *testing.T) {
	t.Parallel()
	const token = "backup-s3cret"
	env := childEnv("TROUPE_DATA_DIR="+t.TempDir(), "TROUPE_API_TOKENS="+token)
	srv := startServer(t, env, "--http-addr", "127.0.0.1:0")
	base := srv.waitReady()
	api := newTokenClient(t, base, token)

	var (
		mu       sync.Mutex
		acked    = map[string]submitted{}
		canceled = map[string]bool{}
		stop     = make(chan struct{})
		wg       sync.WaitGroup
		loadErrs = make(chan error, 8)
	)
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				typ, payload, delay := "noop", fmt.Sprintf(`{"worker":%d,"n":%d}`, w, i), "0s"
				if i%2 == 1 {
					typ, payload = "sleep", fmt.Sprintf(`{"ms":%d}`, 10+i%40)
				}
				if i%10 == 1 {
					// Canceled below: a job due now may start before the
					// cancel, as soon as it is committed; one due later
					// waits for it.
					delay = "1h"
				}
				var job jobJSON
				status, err := api.call(nethttp.MethodPost, "/jobs", fmt.Sprintf(`{"type":%q,"payload":%s,"delay":%q}`, typ, payload, delay), &job)
				if err == nil && status != nethttp.StatusCreated {
					err = fmt.Errorf("POST /jobs: %d", status)
				}
				if err != nil {
					loadErrs <- err
					return
				}
				mu.Lock()
				acked[job.ID] = submitted{typ: typ, payload: payload}
				mu.Unlock()
				if i%10 == 1 {
					var got jobJSON
					status, err := api.call(nethttp.MethodDelete, "/jobs/"+job.ID, "", &got)
					if err != nil {
						loadErrs <- err
						return
					}
					if status == nethttp.StatusOK && got.Status == "canceled" {
						mu.Lock()
						canceled[job.ID] = true
						mu.Unlock()
					}
				}
			}
		})
	}
	t.Cleanup(func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	})
	waitFor(t, waitTimeout, "400 jobs acknowledged", func() (bool, error) {
		select {
		case err := <-loadErrs:
			t.Fatalf("load: %v", err)
		default:
		}
		mu.Lock()
		defer mu.Unlock()
		return len(acked) >= 400, fmt.Errorf("%d acknowledged", len(acked))
	})

	// What the clients know before the backup begins.
	mu.Lock()
	before := make(map[string]submitted, len(acked))
	for id, s := range acked {
		before[id] = s
	}
	canceledBefore := make(map[string]bool, len(canceled))
	for id := range canceled {
		canceledBefore[id] = true
	}
	mu.Unlock()
	// On a slow machine the 400th acknowledgement may come before the
	// first completion: the check below needs one.
	waitFor(t, waitTimeout, "a job completed", func() (bool, error) {
		var page listJSON
		status, err := api.call(nethttp.MethodGet, "/jobs?status=completed&limit=1", "", &page)
		if err != nil {
			return false, err
		}
		return status == nethttp.StatusOK && page.Total > 0, fmt.Errorf("status %d, %d completed", status, page.Total)
	})
	completedBefore := map[string]bool{}
	for offset := 0; ; offset += 1000 {
		var page listJSON
		status, err := api.call(nethttp.MethodGet, fmt.Sprintf("/jobs?status=completed&limit=1000&offset=%d", offset), "", &page)
		require.NoError(t, err)
		require.Equal(t, nethttp.StatusOK, status)
		for _, j := range page.Jobs {
			completedBefore[j.ID] = true
		}
		if offset+len(page.Jobs) >= page.Total || len(page.Jobs) == 0 {
			break
		}
	}
	require.NotEmpty(t, completedBefore)
	require.NotEmpty(t, canceledBefore)

	out := filepath.Join(t.TempDir(), "online.backup")
	clientEnv := childEnv("TROUPE_HTTP_ADDR=" + strings.TrimPrefix(base, "http://"))
	runTroupe(t, clientEnv, "backup", "--out", out).requireRefused(t, "this route needs an API token", "401")
	requireEntries(t, filepath.Dir(out))

	res := runTroupe(t, append(clientEnv, "TROUPE_API_TOKEN="+token), "backup", "--out", out)
	res.requireOK(t)
	require.Contains(t, res.stdout, "wrote backup "+out)
	requireEntries(t, filepath.Dir(out), "online.backup")

	// The load went on during the backup; it stops now.
	mu.Lock()
	after := len(acked)
	mu.Unlock()
	waitFor(t, waitTimeout, "more jobs after the backup", func() (bool, error) {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) > after+50, errNotYet
	})
	close(stop)
	wg.Wait()
	select {
	case err := <-loadErrs:
		t.Fatalf("load: %v", err)
	default:
	}

	restored := filepath.Join(t.TempDir(), "restored")
	res = runTroupe(t, childEnv(), "restore", "--in", out, "--data-dir", restored)
	res.requireOK(t)
	require.Contains(t, res.stdout, "restored "+out+" into "+restored)

	s, err := badgerstore.Open(badgerstore.Options{Dir: restored})
	require.NoError(t, err)
	for id, sub := range before {
		job, err := s.Get(t.Context(), uuid.MustParse(id))
		require.NoError(t, err, "job %s was acknowledged before the backup began", id)
		require.Equal(t, domain.JobType(sub.typ), job.Type, "job %s", id)
		require.JSONEq(t, sub.payload, string(job.Payload), "job %s", id)
		switch {
		case canceledBefore[id]:
			require.Equal(t, domain.StatusCanceled, job.Status, "job %s was canceled before the backup", id)
		case completedBefore[id]:
			require.Equal(t, domain.StatusCompleted, job.Status, "job %s was completed before the backup", id)
		default:
			require.Contains(t, []domain.Status{domain.StatusScheduled, domain.StatusPending, domain.StatusRunning, domain.StatusCompleted, domain.StatusCanceled}, job.Status, "job %s", id)
		}
	}
	page, err := s.List(t.Context(), domain.Filter{})
	require.NoError(t, err)
	require.GreaterOrEqual(t, page.Total, len(before))
	require.Contains(t, res.stdout, fmt.Sprintf(": %d jobs", page.Total))
	require.NoError(t, s.Close())
	t.Logf("%d jobs acknowledged before the backup (%d completed, %d canceled), %d in it", len(before), len(completedBefore), len(canceledBefore), page.Total)

	// A server starts on the restored directory and serves the jobs.
	srv2 := startServer(t, childEnv("TROUPE_DATA_DIR="+restored, "TROUPE_API_TOKENS="+token), "--http-addr", "127.0.0.1:0")
	api2 := newTokenClient(t, srv2.waitReady(), token)
	for id := range completedBefore {
		var job jobJSON
		status, err := api2.call(nethttp.MethodGet, "/jobs/"+id, "", &job)
		require.NoError(t, err)
		require.Equal(t, nethttp.StatusOK, status)
		require.Equal(t, "completed", job.Status)
		break
	}
	waitFor(t, waitTimeout, "the restored server to finish every job", func() (bool, error) {
		var page listJSON
		_, err := api2.call(nethttp.MethodGet, "/jobs?"+url.Values{"status": {"pending", "running"}}.Encode(), "", &page)
		return err == nil && page.Total == 0, fmt.Errorf("%d unfinished, error %w", page.Total, err)
	})
}

// TestBackupOfAStoppedDataDir backs up the data directory of a stopped
// server, after being refused while it ran, and restores it exactly; and
// restore refuses a directory in use, a file that is not a backup and a
// backup cut short.
func TestBackupOfAStoppedDataDir(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	srv := startServer(t, childEnv("TROUPE_DATA_DIR="+dataDir), "--http-addr", "127.0.0.1:0", "--shutdown-timeout", "100ms")
	api := newAPIClient(t, srv.waitReady())
	var ids []string
	for i := range 20 {
		ids = append(ids, api.submit("noop", fmt.Sprintf(`{"n":%d}`, i), 0).ID)
	}
	for _, id := range ids {
		api.waitStatus(id, "completed")
	}
	running := api.submit("sleep", `{"ms":600000}`, 0)
	api.waitStatus(running.ID, "running")
	canceled := api.submit("sleep", `{"ms":600000}`, 0)
	api.mustCall(nethttp.MethodDelete, "/jobs/"+canceled.ID, "", nethttp.StatusOK)
	api.waitStatus(canceled.ID, "canceled")

	outDir := t.TempDir()
	out := filepath.Join(outDir, "offline.backup")
	runTroupe(t, childEnv(), "backup", "--data-dir", dataDir, "--out", out).
		requireRefused(t, "data directory "+dataDir+" is in use by a running troupe server")
	requireEntries(t, outDir)

	srv.signal(syscall.SIGTERM)
	require.Equal(t, 0, srv.waitExit())

	res := runTroupe(t, childEnv(), "backup", "--data-dir", dataDir, "--out", out)
	res.requireOK(t)
	require.Contains(t, res.stdout, "wrote backup "+out)
	requireEntries(t, outDir, "offline.backup")

	restored := filepath.Join(t.TempDir(), "restored")
	res = runTroupe(t, childEnv(), "restore", "--in", out, "--data-dir", restored)
	res.requireOK(t)
	require.Contains(t, res.stdout, ": 22 jobs")

	// Restored exactly: every job, and every listing, as in the original.
	original, err := badgerstore.Open(badgerstore.Options{Dir: dataDir})
	require.NoError(t, err)
	want, err := original.List(t.Context(), domain.Filter{})
	require.NoError(t, err)
	require.NoError(t, original.Close())
	copyOf, err := badgerstore.Open(badgerstore.Options{Dir: restored})
	require.NoError(t, err)
	got, err := copyOf.List(t.Context(), domain.Filter{})
	require.NoError(t, err)
	for _, st := range []domain.Status{domain.StatusPending, domain.StatusCompleted, domain.StatusCanceled} {
		page, err := copyOf.List(t.Context(), domain.Filter{Statuses: []domain.Status{st}})
		require.NoError(t, err)
		require.NotZero(t, page.Total, "%s jobs", st)
	}
	require.NoError(t, copyOf.Close())
	require.Equal(t, want, got)
	require.Equal(t, 22, got.Total)

	// Restore refuses, and leaves the directory as it was.
	res = runTroupe(t, childEnv(), "restore", "--in", out, "--data-dir", restored)
	res.requireRefused(t, "directory is not empty", "restore into a new or empty directory")

	notBackup := filepath.Join(outDir, "notes.txt")
	require.NoError(t, os.WriteFile(notBackup, []byte("# notes, not a backup\n"), 0o600))
	fresh := filepath.Join(t.TempDir(), "fresh")
	runTroupe(t, childEnv(), "restore", "--in", notBackup, "--data-dir", fresh).
		requireRefused(t, notBackup+" is not a Troupe backup")
	require.NoDirExists(t, fresh)

	data, err := os.ReadFile(out)
	require.NoError(t, err)
	cut := filepath.Join(outDir, "cut.backup")
	require.NoError(t, os.WriteFile(cut, data[:len(data)-1], 0o600))
	runTroupe(t, childEnv(), "restore", "--in", cut, "--data-dir", fresh).
		requireRefused(t, "the backup is incomplete or damaged")
	require.NoDirExists(t, fresh)
}

// TestBackupOfAMemoryStoreSaysWhy checks the answer of a server whose
// store cannot be backed up.
func TestBackupOfAMemoryStoreSaysWhy(t *testing.T) {
	t.Parallel()
	srv := startServer(t, childEnv(), "--http-addr", "127.0.0.1:0", "--store", "memory")
	base := srv.waitReady()
	out := filepath.Join(t.TempDir(), "memory.backup")
	runTroupe(t, childEnv(), "backup", "--server", base, "--out", out).
		requireRefused(t, "the memory store cannot be backed up", "409")
	require.NoFileExists(t, out)
}
