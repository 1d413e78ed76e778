package actors

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/persistence/badgerstore"
)

// The crash test runs jobs on Badger in a child process (this test binary
// run again), kills it with SIGKILL in the middle of the work, then reopens
// the store here and checks that every job reaches a terminal state.

const (
	crashChildEnv = "TROUPE_CRASH_CHILD_DIR"
	crashJobs     = 300
)

// crashWork takes a moment, so that the kill finds jobs queued and running.
func crashWork(ctx context.Context, _ []byte) error {
	select {
	case <-time.After(2 * time.Millisecond):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// lineMetrics reports each finished job as a line, for the parent to count.
type lineMetrics struct {
	NopMetrics
	w io.Writer
}

func (m lineMetrics) JobFinished(j *domain.Job) {
	fmt.Fprintf(m.w, "finished %s\n", j.Status)
}

// runCrashChild is the child's whole life, called from TestMain: it never
// returns, the parent kills it.
func runCrashChild(dir string) {
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "crash child:", err)
		os.Exit(2)
	}
	store, err := badgerstore.Open(badgerstore.Options{Dir: dir, Logger: quietLogger()})
	if err != nil {
		fail(err)
	}
	sys, err := New(store, WithLogger(quietLogger()), WithWorkers(4), WithMetrics(lineMetrics{w: os.Stdout}))
	if err != nil {
		fail(err)
	}
	if err := sys.Register("work", domain.HandlerFunc(crashWork)); err != nil {
		fail(err)
	}
	if err := sys.Start(context.Background()); err != nil {
		fail(err)
	}
	params := make([]SubmitParams, crashJobs)
	for i := range params {
		params[i] = SubmitParams{Type: "work", MaxAttempts: 3}
	}
	if _, err := sys.SubmitBatch(context.Background(), params); err != nil {
		fail(err)
	}
	fmt.Println("submitted")
	select {} // until killed
}

func TestCrashRecovery(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	// Kill it once the jobs are stored and some, not all, have finished.
	lines := bufio.NewScanner(out)
	submitted, finished := false, 0
	for lines.Scan() && (!submitted || finished < 30) {
		switch line := lines.Text(); {
		case line == "submitted":
			submitted = true
		case strings.HasPrefix(line, "finished "):
			finished++
		}
	}
	require.True(t, submitted, "the child never stored its jobs")
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait()
	require.Less(t, finished, crashJobs, "the kill came after the work was done; nothing was tested")

	store, err := badgerstore.Open(badgerstore.Options{Dir: dir, Logger: quietLogger()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	before, err := store.List(context.Background(), domain.Filter{})
	require.NoError(t, err)
	require.Equal(t, crashJobs, before.Total, "every acknowledged job survived the kill")
	unfinished, err := store.List(context.Background(), domain.Filter{Statuses: []domain.Status{domain.StatusPending, domain.StatusRunning}})
	require.NoError(t, err)
	require.Positive(t, unfinished.Total, "the kill left work to recover")

	rec := newFinishRecorder()
	sys, err := New(store, WithLogger(testLogger(t)), WithMetrics(rec))
	require.NoError(t, err)
	require.NoError(t, sys.Register("work", domain.HandlerFunc(crashWork)))
	require.NoError(t, sys.Start(context.Background()))
	t.Cleanup(func() { require.NoError(t, sys.Stop(context.Background())) })
	rec.waitFinished(t, unfinished.Total)

	completed, err := store.List(context.Background(), domain.Filter{Statuses: []domain.Status{domain.StatusCompleted}})
	require.NoError(t, err)
	require.Equal(t, crashJobs, completed.Total, "every job completed: none lost, none stuck")
	t.Log("jobs unfinished at the kill: " + strconv.Itoa(unfinished.Total))
}
