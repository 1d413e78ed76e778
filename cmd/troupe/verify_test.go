package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// runVerify runs `troupe verify` on dir and returns its exit code and output.
func runVerify(t *testing.T, dir string) (int, string) {
	t.Helper()
	out, err := exec.Command(binaryPath(t), "verify", "--data-dir", dir).CombinedOutput()
	if err != nil {
		var exit *exec.ExitError
		require.ErrorAs(t, err, &exit, "%s", out)
		return exit.ExitCode(), string(out)
	}
	return 0, string(out)
}

// TestDamagedDataDirEndToEnd stores jobs with a server, stops it, checks
// the directory, removes its MANIFEST, and checks that the server refuses
// to start (exit 1, the reason on the last line) and verify reports it.
func TestDamagedDataDirEndToEnd(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := childEnv("TROUPE_DATA_DIR=" + dir)
	srv := startServer(t, env, "--http-addr", "127.0.0.1:0")
	api := newAPIClient(t, srv.waitReady())
	for range 20 {
		api.submit("noop", `{}`, 0)
	}
	srv.signal(syscall.SIGTERM)
	require.Equal(t, 0, srv.waitExit())

	code, out := runVerify(t, dir)
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "ok: 20 jobs")

	require.NoError(t, os.Remove(filepath.Join(dir, "MANIFEST")))
	code, out = runVerify(t, dir)
	require.Equal(t, 1, code, out)
	require.Contains(t, out, "damaged: ")
	require.Contains(t, out, "MANIFEST file is missing")

	second := startServer(t, env, "--http-addr", "127.0.0.1:0")
	require.Equal(t, 1, second.waitExit())
	lines := strings.Split(strings.TrimSpace(second.logs.String()), "\n")
	last := lines[len(lines)-1]
	require.True(t, strings.HasPrefix(last, "troupe: "), "the error is the last line: %s", last)
	require.Contains(t, last, "MANIFEST file is missing")
	require.Contains(t, last, "troupe restore")
	_, err := os.Stat(filepath.Join(dir, "MANIFEST"))
	require.ErrorIs(t, err, os.ErrNotExist, "the refused directory is left as it was")
}

func TestVerifyRefusesADirHeldByAServer(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srv := startServer(t, childEnv("TROUPE_DATA_DIR="+dir), "--http-addr", "127.0.0.1:0")
	srv.waitReady()
	code, out := runVerify(t, dir)
	require.Equal(t, 1, code, out)
	require.Contains(t, out, "in use")
}
