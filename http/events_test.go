package http

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	nethttp "net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/actors"
	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/persistence/memstore"
)

// streamTimeout bounds every read of a stream in these tests, so that a
// stream that never ends fails the test instead of hanging it.
const streamTimeout = 30 * time.Second

// liveBundle is a server over a real, started actors.System on memstore:
// only a real System publishes job events. It has one worker, and a "gate"
// job type whose jobs run until the test sends on release, or the test
// ends.
type liveBundle struct {
	sys     *actors.System
	server  *Server
	base    string
	release chan struct{}
	ended   chan struct{}
}

// setupLive starts a System and serves the API over it with httptest.
func setupLive(t *testing.T, cfg Config) *liveBundle {
	t.Helper()
	discard := slog.New(slog.DiscardHandler)
	sys, err := actors.New(memstore.New(), actors.WithWorkers(1), actors.WithLogger(discard))
	require.NoError(t, err)
	b := &liveBundle{sys: sys, release: make(chan struct{}), ended: make(chan struct{})}
	require.NoError(t, sys.Register("gate", domain.HandlerFunc(func(ctx context.Context, _ []byte) error {
		select {
		case <-b.release:
			return nil
		case <-b.ended:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})))
	require.NoError(t, sys.Register("noop", domain.HandlerFunc(func(context.Context, []byte) error { return nil })))
	require.NoError(t, sys.Start(t.Context()))
	t.Cleanup(func() {
		// The gate jobs finish, so that the stop has nothing to cancel.
		close(b.ended)
		ctx, cancel := context.WithTimeout(context.Background(), streamTimeout)
		defer cancel()
		require.NoError(t, sys.Stop(ctx))
		waitForActorsToSettle(t)
	})

	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	b.server, err = NewServer(cfg, Runtime(sys), WithLogger(discard), WithRegistry(NewRegistry()))
	require.NoError(t, err)
	ts := httptest.NewServer(b.server.Handler())
	t.Cleanup(ts.Close)
	b.base = ts.URL
	return b
}

// waitForActorsToSettle waits for the one-second timers that protoactor
// starts when it throttles dead-letter logs, which outlive a stopped actor
// system, so that the package's leak check does not count them.
func waitForActorsToSettle(t testing.TB) {
	t.Helper()
	require.Eventually(t, func() bool {
		buf := make([]byte, 1<<20)
		return !strings.Contains(string(buf[:runtime.Stack(buf, true)]), "protoactor-go/actor.NewThrottle")
	}, 10*time.Second, 20*time.Millisecond)
}

// submit submits a job of type typ to the System.
func (b *liveBundle) submit(t *testing.T, typ domain.JobType) *domain.Job {
	t.Helper()
	job, err := b.sys.Submit(t.Context(), actors.SubmitParams{Type: typ, Payload: []byte(`{}`)})
	require.NoError(t, err)
	return job
}

// waitStatus waits until the stored job has status.
func (b *liveBundle) waitStatus(t *testing.T, id uuid.UUID, status domain.Status) *domain.Job {
	t.Helper()
	var job *domain.Job
	require.Eventually(t, func() bool {
		var err error
		job, err = b.sys.Get(t.Context(), id)
		return err == nil && job.Status == status
	}, streamTimeout, 5*time.Millisecond)
	return job
}

// sseEvent is one event read from a stream.
type sseEvent struct {
	name string
	id   string
	data string
}

// job decodes the event's data as a job.
func (e sseEvent) job(t *testing.T) JobResponse {
	t.Helper()
	require.Equal(t, EventJob, e.name)
	var j JobResponse
	require.NoError(t, json.Unmarshal([]byte(e.data), &j))
	return j
}

// sseStream reads a Server-Sent Events response.
type sseStream struct {
	resp   *nethttp.Response
	r      *bufio.Reader
	cancel context.CancelFunc
	// retry is the last reconnection delay the server asked for.
	retry string
}

// openStream requests url with header; the stream is closed when the test
// ends. It fails the test unless the answer is 200 text/event-stream.
func openStream(t *testing.T, url string, header map[string]string) *sseStream {
	t.Helper()
	s, resp := requestStream(t, url, header) //nolint:bodyclose // requestStream closes it when the test ends
	require.Equal(t, nethttp.StatusOK, resp.StatusCode)
	require.Equal(t, EventStreamContentType, resp.Header.Get("Content-Type"))
	require.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
	return s
}

// requestStream requests url and returns the stream and the response,
// whatever its status.
func requestStream(t *testing.T, url string, header map[string]string) (*sseStream, *nethttp.Response) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), streamTimeout)
	req, err := nethttp.NewRequestWithContext(ctx, nethttp.MethodGet, url, nil)
	require.NoError(t, err)
	req.Header.Set("Accept", EventStreamContentType)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := nethttp.DefaultClient.Do(req)
	if err != nil {
		cancel()
		require.NoError(t, err)
	}
	s := &sseStream{resp: resp, r: bufio.NewReader(resp.Body), cancel: cancel}
	t.Cleanup(s.close)
	return s, resp
}

// close disconnects, as a client that goes away.
func (s *sseStream) close() {
	s.cancel()
	_ = s.resp.Body.Close()
}

// next returns the next event, skipping comments; io.EOF when the server
// ended the stream.
func (s *sseStream) next() (sseEvent, error) {
	var ev sseEvent
	var data []string
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			return sseEvent{}, err
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			if ev.name == "" && len(data) == 0 {
				continue // the end of a retry or comment block
			}
			ev.data = strings.Join(data, "\n")
			return ev, nil
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "":
			// A comment: a heartbeat.
		case "event":
			ev.name = value
		case "id":
			ev.id = value
		case "data":
			data = append(data, value)
		case "retry":
			s.retry = value
		}
	}
}

// mustNext is next that fails the test on an error.
func (s *sseStream) mustNext(t *testing.T) sseEvent {
	t.Helper()
	ev, err := s.next()
	require.NoError(t, err)
	return ev
}

// nextJob returns the next job event about id, skipping the others.
func (s *sseStream) nextJob(t *testing.T, id uuid.UUID) JobResponse {
	t.Helper()
	for {
		ev := s.mustNext(t)
		if ev.name != EventJob {
			continue
		}
		if j := ev.job(t); j.ID == id {
			return j
		}
	}
}

// requireEnd checks that the server ends the stream.
func (s *sseStream) requireEnd(t *testing.T) {
	t.Helper()
	ev, err := s.next()
	require.ErrorIs(t, err, io.EOF, "expected the end of the stream, got %+v", ev)
}

func TestJobEvents(t *testing.T) {
	t.Parallel()

	t.Run("FollowsAJobToItsTerminalStatusThenEnds", func(t *testing.T) {
		t.Parallel()
		b := setupLive(t, Config{})
		// The one worker is busy with the first gate job, so the second
		// waits: its stream starts while it is pending.
		b.submit(t, "gate")
		job := b.submit(t, "gate")
		stream := openStream(t, b.base+jobsPath(job.ID)+"/events", nil)

		first := stream.mustNext(t)
		require.Equal(t, "2000", stream.retry, "the client is told to reconnect after 2 s")
		require.Equal(t, domain.StatusPending, first.job(t).Status)
		require.Equal(t, jobEventID(job), first.id)

		b.release <- struct{}{} // the first gate job completes
		b.release <- struct{}{} // the second one, once it runs
		var statuses []domain.Status
		for range 2 {
			statuses = append(statuses, stream.mustNext(t).job(t).Status)
		}
		require.Equal(t, []domain.Status{domain.StatusRunning, domain.StatusCompleted}, statuses)
		stream.requireEnd(t)
	})

	t.Run("OfATerminalJobSendsItAndEnds", func(t *testing.T) {
		t.Parallel()
		b := setupLive(t, Config{})
		job := b.submit(t, "noop")
		done := b.waitStatus(t, job.ID, domain.StatusCompleted)

		stream := openStream(t, b.base+jobsPath(job.ID)+"/events", nil)
		ev := stream.mustNext(t)
		got := ev.job(t)
		require.Equal(t, domain.StatusCompleted, got.Status)
		require.Equal(t, job.ID, got.ID)
		require.Equal(t, jobEventID(done), ev.id)
		stream.requireEnd(t)

		// An EventSource reconnects when a stream ends; with the ID of the
		// terminal state it already has, it is told to stop.
		_, resp := requestStream(t, b.base+jobsPath(job.ID)+"/events", map[string]string{"Last-Event-ID": ev.id}) //nolint:bodyclose // requestStream closes it when the test ends
		require.Equal(t, nethttp.StatusNoContent, resp.StatusCode)
	})

	t.Run("OfAnUnknownJobIs404", func(t *testing.T) {
		t.Parallel()
		b := setupLive(t, Config{})
		_, resp := requestStream(t, b.base+jobsPath(uuid.New())+"/events", nil) //nolint:bodyclose // requestStream closes it when the test ends
		require.Equal(t, nethttp.StatusNotFound, resp.StatusCode)
		require.Equal(t, ProblemContentType, resp.Header.Get("Content-Type"))
		require.Zero(t, b.server.streams.open.Load(), "the subscription is closed")
	})

	t.Run("ReadsTheJobAgainWhenNoEventComes", func(t *testing.T) {
		t.Parallel()
		// The fake's subscriptions receive nothing, like a stream whose
		// events were dropped or a job running on another node: the
		// terminal state still arrives, from reading the job again.
		b := setup(t, Config{})
		job := newTestJob(t, domain.StatusRunning)
		var reads atomic.Int32
		b.svc.GetFunc = func(context.Context, uuid.UUID) (*domain.Job, error) {
			if reads.Add(1) == 1 {
				return job.Clone(), nil
			}
			done := newTestJob(t, domain.StatusCompleted)
			done.ID = job.ID
			done.UpdatedAt = job.UpdatedAt.Add(time.Second)
			return done, nil
		}
		ts := httptest.NewServer(b.server.Handler())
		t.Cleanup(ts.Close)

		stream := openStream(t, ts.URL+jobsPath(job.ID)+"/events", nil)
		require.Equal(t, domain.StatusRunning, stream.mustNext(t).job(t).Status)
		require.Equal(t, domain.StatusCompleted, stream.mustNext(t).job(t).Status)
		stream.requireEnd(t)
	})
}

func TestEvents(t *testing.T) {
	t.Parallel()

	t.Run("StreamsStatsAndEveryChangeInOrder", func(t *testing.T) {
		t.Parallel()
		b := setupLive(t, Config{})
		stream := openStream(t, b.base+"/events", nil)

		first := stream.mustNext(t)
		require.Equal(t, "2000", stream.retry)
		require.Equal(t, EventStats, first.name, "the stats come at once")
		var stats StatsResponse
		require.NoError(t, json.Unmarshal([]byte(first.data), &stats))
		require.Equal(t, 1, stats.Workers.Size)

		job := b.submit(t, "gate")
		require.Equal(t, domain.StatusPending, stream.nextJob(t, job.ID).Status)
		require.Equal(t, domain.StatusRunning, stream.nextJob(t, job.ID).Status)
		b.release <- struct{}{}
		completed := stream.nextJob(t, job.ID)
		require.Equal(t, domain.StatusCompleted, completed.Status)
		require.Equal(t, 1, completed.Attempts)
		require.False(t, completed.FinishedAt.IsZero())
	})

	t.Run("EndsWhenTheClientLeaves", func(t *testing.T) {
		t.Parallel()
		b := setupLive(t, Config{})
		pending := b.submit(t, "gate") // runs, blocking the worker
		queued := b.submit(t, "gate")  // stays pending
		streams := []*sseStream{
			openStream(t, b.base+"/events", nil),
			openStream(t, b.base+jobsPath(pending.ID)+"/events", nil),
			openStream(t, b.base+jobsPath(queued.ID)+"/events", nil),
		}
		for _, s := range streams {
			s.mustNext(t)
		}
		require.EqualValues(t, 3, b.server.streams.open.Load())
		for _, s := range streams {
			s.close()
		}
		// Each handler returns and closes its subscription; the package's
		// leak check then finds none of their goroutines.
		require.Eventually(t, func() bool { return b.server.streams.open.Load() == 0 }, streamTimeout, 5*time.Millisecond)
	})

	t.Run("EndWhenTheServerStops", func(t *testing.T) {
		t.Parallel()
		b := setupLive(t, Config{})
		// A shutdown timeout far longer than the test: Stop returns without
		// error only if the streams ended by themselves.
		s, err := NewServer(Config{Addr: "127.0.0.1:0", ShutdownTimeout: 10 * time.Minute}, Runtime(b.sys),
			WithLogger(slog.New(slog.DiscardHandler)), WithRegistry(NewRegistry()))
		require.NoError(t, err)
		require.NoError(t, s.Start(t.Context()))
		base := "http://" + s.Addr().String()
		job := b.submit(t, "gate")
		streams := []*sseStream{
			openStream(t, base+"/events", nil),
			openStream(t, base+jobsPath(job.ID)+"/events", nil),
		}
		for _, st := range streams {
			st.mustNext(t)
		}

		require.NoError(t, s.Stop(t.Context()))
		for _, st := range streams {
			st.requireEnd(t)
		}
		require.Zero(t, s.streams.open.Load())

		// Started again, the server streams again.
		require.NoError(t, s.Start(t.Context()))
		t.Cleanup(func() { require.NoError(t, s.Stop(context.Background())) })
		again := openStream(t, "http://"+s.Addr().String()+"/events", nil)
		require.Equal(t, EventStats, again.mustNext(t).name)
		again.close()
	})
}

func TestEventsAuth(t *testing.T) {
	t.Parallel()
	const token = "stream-token"

	cases := []struct {
		name   string
		target string
		header map[string]string
		status int
		// invalid is whether the 401 says that a token was wrong.
		invalid bool
	}{
		{name: "QueryToken", target: "/events?token=" + token, status: 200},
		{name: "HeaderToken", target: "/events", header: map[string]string{"Authorization": "Bearer " + token}, status: 200},
		{name: "JobStreamQueryToken", target: "/jobs/0195a3c4-7b1e-7c3a-9f1d-2b8e4a6c0d11/events?token=" + token, status: 200},
		{name: "NoToken", target: "/events", status: 401},
		{name: "WrongQueryToken", target: "/events?token=nope", status: 401, invalid: true},
		{name: "WrongHeaderToken", target: "/events", header: map[string]string{"Authorization": "Bearer nope"}, status: 401, invalid: true},
		// Only the streams take the query parameter: URLs end up in
		// histories and logs, so the rest of the API wants the header.
		{name: "QueryTokenElsewhere", target: "/jobs?token=" + token, status: 401},
		{name: "QueryTokenOnStats", target: "/stats?token=" + token, status: 401},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, Config{APITokens: []string{token}})
			b.svc.ListFunc = func(context.Context, domain.Filter) (domain.Page, error) {
				return domain.Page{Jobs: []*domain.Job{}}, nil
			}
			b.svc.GetFunc = func(context.Context, uuid.UUID) (*domain.Job, error) {
				return newTestJob(t, domain.StatusCompleted), nil
			}
			// The request's context is already done, so that a stream
			// ends after its first lines.
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			req := httptest.NewRequestWithContext(ctx, nethttp.MethodGet, tc.target, nil)
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			b.server.Handler().ServeHTTP(rec, req)
			if tc.status == 200 {
				require.Equal(t, 200, rec.Code, rec.Body.String())
				require.Equal(t, EventStreamContentType, rec.Header().Get("Content-Type"))
				require.True(t, strings.HasPrefix(rec.Body.String(), "retry: 2000\n\n"), rec.Body.String())
				return
			}
			p := requireProblem(t, rec, tc.status, ProblemTypeUnauthorized)
			require.NotContains(t, p.Detail, "nope", "a token is never echoed")
			challenge := rec.Header().Get("WWW-Authenticate")
			require.True(t, strings.HasPrefix(challenge, bearerRealm), challenge)
			require.Equal(t, tc.invalid, strings.Contains(challenge, "invalid_token"), challenge)
			require.NotContains(t, b.logs.String(), token, "the request log leaves the query out")
		})
	}
}

func TestNewerState(t *testing.T) {
	t.Parallel()
	at := func(status domain.Status, offset time.Duration) *domain.Job {
		return &domain.Job{Status: status, UpdatedAt: testTime.Add(offset)}
	}
	require.True(t, newerState(at(domain.StatusPending, 0), at(domain.StatusRunning, time.Millisecond)))
	require.False(t, newerState(at(domain.StatusRunning, time.Millisecond), at(domain.StatusPending, 0)), "never back in time")
	require.False(t, newerState(at(domain.StatusRunning, 0), at(domain.StatusRunning, 0)), "never twice")
	require.True(t, newerState(at(domain.StatusRunning, 0), at(domain.StatusCompleted, 0)), "terminal wins a tie")
	require.False(t, newerState(at(domain.StatusCompleted, 0), at(domain.StatusRunning, 0)))

	withProgress := func(offset time.Duration) *domain.Job {
		j := at(domain.StatusRunning, 0)
		p := domain.NewProgress(50, "", testTime.Add(offset))
		j.Progress = &p
		return j
	}
	require.True(t, newerState(at(domain.StatusRunning, 0), withProgress(0)), "a first progress report is news")
	require.True(t, newerState(withProgress(0), withProgress(time.Millisecond)), "so is a later one")
	require.False(t, newerState(withProgress(time.Millisecond), withProgress(0)))
	require.False(t, newerState(withProgress(0), withProgress(0)))
}

// Compile-time check that the real runtime serves the streams.
var _ JobService = runtimeService{}
