package main

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	nethttp "net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/internal/smallfs"
)

// fullDiskMinFree is the floor the full-disk tests configure: small, so
// that a small file system fills in seconds, and it makes Badger use a
// memtable of about 1.6 MiB.
const fullDiskMinFree = 32 << 20

// incompressiblePayload is a JSON payload of about 10 KB that compression
// does not shrink.
func incompressiblePayload() string {
	pad := make([]byte, 5_000)
	_, _ = rand.Read(pad)
	return fmt.Sprintf(`{"pad":"%x"}`, pad)
}

// TestServeOnAFullDisk fills the data directory's file system through the
// API. Before the guard the process died of SIGBUS; now it answers 507,
// reports the disk full on /health, finishes the jobs it had, and recovers
// once space is freed, without a restart. Then it cannot start on a disk
// below the floor, and says so.
func TestServeOnAFullDisk(t *testing.T) {
	t.Parallel()
	fs := smallfs.Mount(t, 80<<20)
	dataDir := filepath.Join(fs, "data")
	// Most of the disk taken by something else: the API fills the rest.
	filler := smallfs.Fill(t, fs, fullDiskMinFree+8<<20)
	// A short retry cap: an outcome refused while a flush dips below the
	// floor is written again within a second.
	env := childEnv("TROUPE_DATA_DIR="+dataDir, fmt.Sprintf("TROUPE_MIN_FREE_BYTES=%d", fullDiskMinFree), "TROUPE_RETRY_MAX_DELAY=1s")
	srv := startServer(t, env, "--http-addr", "127.0.0.1:0")
	api := newAPIClient(t, srv.waitReady())

	var accepted []string
	var refused *nethttp.Response
	var refusedBody []byte
	for i := 0; refused == nil; i++ {
		require.Less(t, i, 5_000, "the server never refused a job")
		body := fmt.Sprintf(`{"type":"noop","payload":%s}`, incompressiblePayload())
		resp, err := api.http.Post(api.base+"/jobs", "application/json", strings.NewReader(body))
		require.NoError(t, err, "the server is alive")
		data, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		switch resp.StatusCode {
		case nethttp.StatusCreated:
			var job jobJSON
			require.NoError(t, json.Unmarshal(data, &job))
			accepted = append(accepted, job.ID)
		case nethttp.StatusInsufficientStorage:
			refused, refusedBody = resp, data
		default:
			t.Fatalf("POST /jobs: %d %s", resp.StatusCode, data)
		}
	}
	t.Logf("accepted %d jobs of 10 KB, then: %s", len(accepted), refusedBody)
	require.NotEmpty(t, accepted)
	require.Equal(t, "30", refused.Header.Get("Retry-After"))
	require.Equal(t, "application/problem+json", refused.Header.Get("Content-Type"))
	var problem struct {
		Type, Detail string
		Status       int
	}
	require.NoError(t, json.Unmarshal(refusedBody, &problem))
	require.Equal(t, "urn:troupe:problem:insufficient-storage", problem.Type)
	require.Equal(t, nethttp.StatusInsufficientStorage, problem.Status)
	require.Regexp(t, `disk full \(\d+ bytes free\)`, problem.Detail)

	// The health check says why; a flush that ends meanwhile can give a
	// little space back, so it is waited for rather than read once.
	waitFor(t, waitTimeout, "/health to report the full disk", func() (bool, error) {
		status, data, err := api.call(nethttp.MethodGet, "/health", "")
		if err != nil {
			return false, err
		}
		var h struct{ Status, Store string }
		if err := json.Unmarshal(data, &h); err != nil {
			return false, err
		}
		if status == nethttp.StatusOK {
			// Room for a few more jobs came back: take it.
			// Its answer does not matter: the next poll reads the state.
			_, _, _ = api.call(nethttp.MethodPost, "/jobs", fmt.Sprintf(`{"type":"noop","payload":%s}`, incompressiblePayload()))
			return false, errNotYet
		}
		return status == nethttp.StatusServiceUnavailable && strings.HasPrefix(h.Store, "down: disk full ("),
			fmt.Errorf("%d %s", status, data)
	})
	// Logged at error when it begins; a flush in progress can take the
	// first measurement past both thresholds at once.
	rec, ok := srv.logs.find("badger store: disk nearly full; refusing new jobs, stored jobs still record their outcomes")
	if !ok {
		rec, ok = srv.logs.find("badger store: disk full; refusing every write")
	}
	require.True(t, ok, "the refusal is logged")
	require.Equal(t, "ERROR", rec["level"])
	require.Contains(t, rec, "freeBytes")

	// The jobs it had still run to the end: their outcomes fit.
	for _, id := range accepted {
		api.waitStatus(id, "completed")
	}

	// Space comes back: the same process takes jobs again.
	require.NoError(t, os.Remove(filler))
	waitFor(t, waitTimeout, "/health to recover", func() (bool, error) {
		status, data, err := api.call(nethttp.MethodGet, "/health", "")
		return status == nethttp.StatusOK, fmt.Errorf("%d %s %w", status, data, err)
	})
	job := api.submit("noop", incompressiblePayload(), 1)
	api.waitStatus(job.ID, "completed")
	_, ok = srv.logs.find("badger store: disk space recovered; accepting every write")
	require.True(t, ok, "the recovery is logged")
	srv.signal(syscall.SIGTERM)
	require.Equal(t, 0, srv.waitExit())

	// A disk below the floor: the server does not start, and says why.
	filler = smallfs.Fill(t, fs, fullDiskMinFree-1<<20)
	stuck := startServer(t, env, "--http-addr", "127.0.0.1:0")
	require.Equal(t, 1, stuck.waitExit(), "exit 1, not a signal")
	lines := strings.Split(strings.TrimSpace(stuck.logs.String()), "\n")
	last := lines[len(lines)-1]
	t.Logf("start on a full disk: %s", last)
	require.Regexp(t, `^troupe: .*disk full \(\d+ bytes free\): the store needs at least \d+ free: `, last)
	require.Contains(t, last, "TROUPE_MIN_FREE_BYTES")

	// Freed again, it starts with every job it had.
	require.NoError(t, os.Remove(filler))
	again := startServer(t, env, "--http-addr", "127.0.0.1:0")
	api = newAPIClient(t, again.waitReady())
	for _, id := range append(accepted, job.ID) {
		got, err := api.get(id)
		require.NoError(t, err)
		require.Equal(t, "completed", got.Status)
	}
	again.signal(syscall.SIGTERM)
	require.Equal(t, 0, again.waitExit())
}
