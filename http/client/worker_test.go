package client_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/http/client"
)

// runWorker runs w until the test ends, and fails the test if Run fails.
func runWorker(t *testing.T, w *client.Worker) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(30 * time.Second):
			t.Fatal("Worker.Run did not return after its context ended")
		}
	}
	t.Cleanup(stop)
	return stop
}

func newTestClient(t *testing.T, url string) *client.Client {
	t.Helper()
	c, err := client.New(url)
	require.NoError(t, err)
	return c
}

func TestWorkerAgainstFakeServer(t *testing.T) {
	t.Parallel()

	t.Run("jobs complete with results and progress, claims and reports in batches", func(t *testing.T) {
		t.Parallel()
		f, srv := newFakeWorkers(t)
		var ids []uuid.UUID
		for i := range 120 {
			ids = append(ids, f.add("resize", fmt.Sprintf(`{"n":%d}`, i)))
		}
		slow := f.add("resize", `{"n":-1}`)
		w := client.NewWorker(newTestClient(t, srv.URL), client.WorkerOptions{Batch: 50, Lease: 5 * time.Second})
		w.Handle("resize", domain.HandlerFunc(func(ctx context.Context, payload []byte) error {
			if string(payload) == `{"n":-1}` {
				domain.ReportProgress(ctx, 40, "halfway")
				// The first report goes at once, on a heartbeat.
				f.waitFor("the progress", func() bool { return f.jobs[slow].progress != nil })
			}
			return domain.SetResult(ctx, map[string]string{"echo": string(payload)})
		}))
		runWorker(t, w)
		f.waitFor("every job completed", func() bool {
			for _, j := range f.jobs {
				if j.status != domain.StatusCompleted {
					return false
				}
			}
			return true
		})
		require.JSONEq(t, `{"echo":"{\"n\":7}"}`, string(f.job(ids[7]).result))
		p := f.job(slow).progress
		require.Equal(t, 40.0, p.Percent)
		require.Equal(t, "halfway", p.Message)
		f.mu.Lock()
		defer f.mu.Unlock()
		total := 0
		for _, n := range f.reports {
			require.LessOrEqual(t, n, 50, "an outcome report carries at most Batch outcomes")
			total += n
		}
		require.Equal(t, 121, total, "one outcome per job")
		for _, n := range f.claims {
			require.LessOrEqual(t, n, 50)
		}
		require.Less(t, len(f.reports), 121, "outcomes share reports")
	})

	t.Run("permanent errors and retry delays are reported as such", func(t *testing.T) {
		t.Parallel()
		f, srv := newFakeWorkers(t)
		bad := f.add("parse", `"bad"`)
		later := f.add("parse", `"later"`)
		panics := f.add("parse", `"panic"`)
		w := client.NewWorker(newTestClient(t, srv.URL), client.WorkerOptions{})
		w.Handle("parse", domain.HandlerFunc(func(_ context.Context, payload []byte) error {
			switch string(payload) {
			case `"bad"`:
				return domain.Permanent(errors.New("cannot parse"))
			case `"later"`:
				return domain.RetryAfter(errors.New("busy"), 90*time.Second)
			}
			panic("boom")
		}))
		runWorker(t, w)
		f.waitFor("the three outcomes", func() bool {
			return f.jobs[bad].status == domain.StatusFailed && f.jobs[later].status == domain.StatusScheduled &&
				f.jobs[panics].status == domain.StatusScheduled
		})
		require.True(t, f.job(bad).permanent)
		require.Equal(t, "cannot parse", f.job(bad).lastError)
		require.Equal(t, "1m30s", f.job(later).retryIn)
		require.Contains(t, f.job(panics).lastError, "handler panicked: boom")
	})

	t.Run("a cancel reaches the handler through the heartbeat, and the job is canceled", func(t *testing.T) {
		t.Parallel()
		f, srv := newFakeWorkers(t)
		id := f.add("long", `{}`)
		started := make(chan struct{})
		cause := make(chan error, 1)
		w := client.NewWorker(newTestClient(t, srv.URL), client.WorkerOptions{Lease: 5 * time.Second})
		w.Handle("long", domain.HandlerFunc(func(ctx context.Context, _ []byte) error {
			close(started)
			<-ctx.Done()
			cause <- context.Cause(ctx)
			return ctx.Err()
		}))
		runWorker(t, w)
		<-started
		f.update(id, func(j *fakeJob) { j.cancelRequested = true })
		select {
		case err := <-cause:
			require.ErrorIs(t, err, client.ErrCanceled)
		case <-time.After(20 * time.Second):
			t.Fatal("the handler's context was not canceled")
		}
		f.waitFor("the job canceled", func() bool { return f.jobs[id].status == domain.StatusCanceled })
	})

	t.Run("a lost lease cancels the handler and reports nothing", func(t *testing.T) {
		t.Parallel()
		f, srv := newFakeWorkers(t)
		id := f.add("long", `{}`)
		started := make(chan struct{})
		cause := make(chan error, 1)
		var reported atomic.Int64
		w := client.NewWorker(newTestClient(t, srv.URL), client.WorkerOptions{
			Lease:      5 * time.Second,
			OnReported: func(uuid.UUID, domain.Status, error) { reported.Add(1) },
		})
		w.Handle("long", domain.HandlerFunc(func(ctx context.Context, _ []byte) error {
			close(started)
			<-ctx.Done()
			cause <- context.Cause(ctx)
			return ctx.Err()
		}))
		stop := runWorker(t, w)
		<-started
		// Another worker holds the job now.
		f.update(id, func(j *fakeJob) { j.token = "someone-else" })
		select {
		case err := <-cause:
			require.ErrorIs(t, err, domain.ErrLeaseLost)
		case <-time.After(20 * time.Second):
			t.Fatal("the handler's context was not canceled")
		}
		stop()
		require.Zero(t, reported.Load(), "no outcome for a lost lease")
		f.mu.Lock()
		defer f.mu.Unlock()
		require.Empty(t, f.reports)
		require.Equal(t, domain.StatusRunning, f.jobs[id].status)
	})

	t.Run("a stop lets running handlers finish and reports them", func(t *testing.T) {
		t.Parallel()
		f, srv := newFakeWorkers(t)
		id := f.add("slow", `{}`)
		started, release := make(chan struct{}), make(chan struct{})
		w := client.NewWorker(newTestClient(t, srv.URL), client.WorkerOptions{})
		w.Handle("slow", domain.HandlerFunc(func(ctx context.Context, _ []byte) error {
			close(started)
			<-release
			return ctx.Err() // still nil: the stop does not cancel it
		}))
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- w.Run(ctx) }()
		<-started
		cancel()
		select {
		case err := <-done:
			t.Fatalf("Run returned (%v) while a handler was running", err)
		case <-time.After(50 * time.Millisecond):
		}
		close(release)
		require.NoError(t, <-done)
		require.Equal(t, domain.StatusCompleted, f.job(id).status, "reported before Run returned")
	})

	t.Run("a claim the server refuses ends Run with the problem", func(t *testing.T) {
		t.Parallel()
		_, srv := newFakeWorkers(t)
		w := client.NewWorker(newTestClient(t, srv.URL+"/nowhere"), client.WorkerOptions{})
		w.Handle("x", domain.HandlerFunc(func(context.Context, []byte) error { return nil }))
		err := w.Run(t.Context())
		require.True(t, client.IsNotFound(err), "%v", err)
		require.Error(t, client.NewWorker(newTestClient(t, srv.URL), client.WorkerOptions{}).Run(t.Context()), "no handlers")
	})
}
