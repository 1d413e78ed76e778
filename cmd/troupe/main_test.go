package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/troupe-go/troupe/internal/leaktest"
	"github.com/troupe-go/troupe/internal/syncbuf"
)

// builtBinary is the troupe binary that the end-to-end tests run, built at
// most once per test binary, in a directory that TestMain removes.
type builtBinary struct {
	once sync.Once
	dir  string
	path string
	err  error
}

var troupeBinary builtBinary

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "troupe-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "troupe tests: temp dir:", err)
		os.Exit(1)
	}
	troupeBinary.dir = dir
	goleak.VerifyTestMain(m, append(leaktest.ProtoactorOptions(),
		goleak.Cleanup(func(code int) {
			_ = os.RemoveAll(dir)
			os.Exit(code)
		}),
	)...)
}

// buildTimeout bounds `go build`, which compiles everything on a cold cache.
const buildTimeout = 5 * time.Minute

// binaryPath builds the troupe binary from this package, once, and returns
// its path.
func binaryPath(t *testing.T) string {
	t.Helper()
	troupeBinary.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
		defer cancel()
		path := filepath.Join(troupeBinary.dir, "troupe")
		var out bytes.Buffer
		cmd := exec.CommandContext(ctx, "go", "build", "-o", path, ".")
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			troupeBinary.err = fmt.Errorf("go build: %w\n%s", err, out.String())
			return
		}
		troupeBinary.path = path
	})
	if troupeBinary.err != nil {
		t.Fatal(troupeBinary.err)
	}
	return troupeBinary.path
}

// pollInterval and waitTimeout bound every wait for a condition.
const (
	pollInterval = 20 * time.Millisecond
	waitTimeout  = 30 * time.Second
)

// waitFor polls cond until it reports true, failing the test after timeout
// with what it waited for and cond's last error.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	ticker := time.NewTicker(pollInterval)
	defer ticker.Stop()
	var lastErr error
	for {
		ok, err := cond()
		if ok {
			return
		}
		lastErr = err
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %s waiting for %s (last error: %v)", timeout, what, lastErr)
		}
		<-ticker.C
	}
}

// logBuffer collects a process's log lines; it is safe for concurrent use.
type logBuffer struct{ syncbuf.Buffer }

// find returns the first complete JSON log line whose msg is msg.
func (b *logBuffer) find(msg string) (map[string]any, bool) {
	for line := range strings.Lines(b.String()) {
		if !strings.HasSuffix(line, "\n") {
			break
		}
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == msg {
			return rec, true
		}
	}
	return nil, false
}

// errNotYet is a waitFor condition's "not yet" when nothing went wrong.
var errNotYet = errors.New("not yet")
