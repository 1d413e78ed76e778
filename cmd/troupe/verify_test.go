package main

import (
	"bytes"
	"crypto/rand"
	"fmt"
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

// TestDamagedTableEndToEnd damages the table a stopped server left and
// checks that verify reports it and the server refuses to start.
func TestDamagedTableEndToEnd(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := childEnv("TROUPE_DATA_DIR=" + dir)
	srv := startServer(t, env, "--http-addr", "127.0.0.1:0")
	api := newAPIClient(t, srv.waitReady())
	for range 50 {
		api.submit("noop", `{"padding":"`+strings.Repeat("x", 500)+`"}`, 0)
	}
	srv.signal(syscall.SIGTERM)
	require.Equal(t, 0, srv.waitExit())

	tables, err := filepath.Glob(filepath.Join(dir, "*.sst"))
	require.NoError(t, err)
	require.NotEmpty(t, tables, "the stop writes the memtable to a table")
	fi, err := os.Stat(tables[0])
	require.NoError(t, err)
	junk := make([]byte, min(4096, fi.Size()/4))
	_, _ = rand.Read(junk)
	f, err := os.OpenFile(tables[0], os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteAt(junk, fi.Size()/3)
	require.NoError(t, err)
	require.NoError(t, f.Close())

	code, out := runVerify(t, dir)
	require.Equal(t, 1, code, out)
	require.Contains(t, out, "damaged: ")
	require.Contains(t, out, filepath.Base(tables[0])+" is damaged")

	second := startServer(t, env, "--http-addr", "127.0.0.1:0")
	require.Equal(t, 1, second.waitExit())
	lines := strings.Split(strings.TrimSpace(second.logs.String()), "\n")
	last := lines[len(lines)-1]
	require.True(t, strings.HasPrefix(last, "troupe: "), "the error is the last line: %s", last)
	require.Contains(t, last, "store is corrupt")
	require.Contains(t, last, filepath.Base(tables[0])+" is damaged")
}

// TestTruncatedMemtableLogEndToEnd kills a server after writes, cuts its
// memtable log to half its written length, and checks that the server
// refuses to start and verify reports the log; then, after the cut the
// message proposes, that both accept the directory.
func TestTruncatedMemtableLogEndToEnd(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := childEnv("TROUPE_DATA_DIR=" + dir)
	srv := startServer(t, env, "--http-addr", "127.0.0.1:0")
	api := newAPIClient(t, srv.waitReady())
	for range 100 {
		api.submit("noop", `{}`, 0)
	}
	srv.signal(syscall.SIGKILL)
	srv.waitExit()
	code, out := runVerify(t, dir)
	require.Equal(t, 0, code, "a killed server leaves a sound directory: %s", out)
	require.Contains(t, out, "ok: 100 jobs")

	logs, err := filepath.Glob(filepath.Join(dir, "*.mem"))
	require.NoError(t, err)
	var path string
	var written int
	for _, p := range logs {
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		if n := len(bytes.TrimRight(b, "\x00")); n > written {
			path, written = p, n
		}
	}
	require.Greater(t, written, 20, "the jobs are in a memtable log")
	require.NoError(t, os.Truncate(path, int64(written/2)))

	code, out = runVerify(t, dir)
	require.Equal(t, 1, code, out)
	require.Contains(t, out, "cut short")

	second := startServer(t, env, "--http-addr", "127.0.0.1:0")
	require.Equal(t, 1, second.waitExit())
	lines := strings.Split(strings.TrimSpace(second.logs.String()), "\n")
	last := lines[len(lines)-1]
	require.True(t, strings.HasPrefix(last, "troupe: "), "the error is the last line: %s", last)
	require.Contains(t, last, "the file was cut short; acknowledged writes after byte")

	var validEnd int64
	_, err = fmt.Sscanf(last[strings.Index(last, "truncate -s "):], "truncate -s %d", &validEnd)
	require.NoError(t, err)
	require.NoError(t, os.Truncate(path, validEnd))
	code, out = runVerify(t, dir)
	require.Equal(t, 0, code, out)
	third := startServer(t, env, "--http-addr", "127.0.0.1:0")
	third.waitReady()
}
