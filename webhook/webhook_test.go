package webhook_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/actors"
	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/persistence/memstore"
	"github.com/troupe-go/troupe/webhook"
)

// received is one call as the endpoint saw it.
type received struct {
	header http.Header
	body   []byte
	method string
	path   string
	user   string
	pass   string
}

// endpoint is an httptest server whose answer the test chooses per call
// (attempt is 1-based), and which records every call.
type endpoint struct {
	*httptest.Server
	mu    sync.Mutex
	calls []received
	conns atomic.Int32
}

func newEndpoint(t *testing.T, answer func(w http.ResponseWriter, r *http.Request, call int)) *endpoint {
	t.Helper()
	e := &endpoint{}
	e.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		user, pass, _ := r.BasicAuth()
		e.mu.Lock()
		e.calls = append(e.calls, received{header: r.Header.Clone(), body: body, method: r.Method, path: r.URL.Path, user: user, pass: pass})
		n := len(e.calls)
		e.mu.Unlock()
		answer(w, r, n)
	}))
	e.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			e.conns.Add(1)
		}
	}
	e.Start()
	t.Cleanup(e.Close)
	return e
}

func (e *endpoint) received() []received {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]received(nil), e.calls...)
}

// startSystem runs a System on a memory store with cfg's webhook
// registered, backoff 1 ms.
func startSystem(t *testing.T, cfg webhook.Config, opts ...actors.Option) *actors.System {
	t.Helper()
	opts = append([]actors.Option{
		actors.WithLogger(slog.New(slog.DiscardHandler)),
		actors.WithRetryBackoff(time.Millisecond, time.Millisecond, actors.NoJitter),
	}, opts...)
	sys, err := actors.New(memstore.New(), opts...)
	require.NoError(t, err)
	require.NoError(t, webhook.Register(sys, cfg))
	require.NoError(t, sys.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, sys.Stop(ctx))
	})
	return sys
}

func submit(t *testing.T, sys *actors.System, typ domain.JobType, payload string, maxAttempts int) uuid.UUID {
	t.Helper()
	job, err := sys.Submit(context.Background(), actors.SubmitParams{Type: typ, Payload: []byte(payload), MaxAttempts: maxAttempts})
	require.NoError(t, err)
	return job.ID
}

// waitJob polls the job until cond holds (a hang fails the test after a
// generous bound; it measures nothing).
func waitJob(t *testing.T, sys *actors.System, id uuid.UUID, cond func(*domain.Job) bool) *domain.Job {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		job, err := sys.Get(context.Background(), id)
		require.NoError(t, err)
		if cond(job) {
			return job
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s stayed %s (attempts %d, last error %q)", id, job.Status, job.Attempts, job.LastError)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func finished(j *domain.Job) bool { return j.Status.IsTerminal() }

func TestRequest_BodyHeadersAndSignature(t *testing.T) {
	t.Parallel()
	e := newEndpoint(t, func(w http.ResponseWriter, _ *http.Request, _ int) { w.WriteHeader(http.StatusNoContent) })
	secret := "s3cret"
	sys := startSystem(t, webhook.Config{Type: "resize", URL: e.URL + "/jobs", Secret: secret,
		Headers: map[string]string{"X-Api-Key": "k1", "authorization": "Bearer abc"}})
	id := submit(t, sys, "resize", `{"w": 640}`, 1)
	job := waitJob(t, sys, id, finished)
	require.Equal(t, domain.StatusCompleted, job.Status)
	require.Nil(t, job.Result, "an empty answer is no result")

	calls := e.received()
	require.Len(t, calls, 1)
	c := calls[0]
	require.Equal(t, http.MethodPost, c.method)
	require.Equal(t, "/jobs", c.path)
	require.Equal(t, "application/json", c.header.Get("Content-Type"))
	require.Equal(t, "troupe-webhook", c.header.Get("User-Agent"))
	require.Equal(t, id.String()+":1", c.header.Get("Idempotency-Key"))
	require.Equal(t, "k1", c.header.Get("X-Api-Key"))
	require.Equal(t, "Bearer abc", c.header.Get("Authorization"))
	require.JSONEq(t, `{"id":"`+id.String()+`","type":"resize","attempt":1,"payload":{"w":640}}`, string(c.body))
	require.NoError(t, webhook.Verify([]byte(secret), c.header.Get(webhook.SignatureHeader), c.body, time.Now(), time.Minute))
	require.ErrorIs(t, webhook.Verify([]byte("other"), c.header.Get(webhook.SignatureHeader), c.body, time.Now(), time.Minute),
		webhook.ErrInvalidSignature)
}

// Without a secret there is no signature; a payload that is not JSON goes
// as base64.
func TestRequest_UnsignedAndBinaryPayload(t *testing.T) {
	t.Parallel()
	e := newEndpoint(t, func(w http.ResponseWriter, _ *http.Request, _ int) {})
	sys := startSystem(t, webhook.Config{Type: "bin", URL: e.URL})
	id := submit(t, sys, "bin", "\x00\xffnot json", 1)
	require.Equal(t, domain.StatusCompleted, waitJob(t, sys, id, finished).Status)
	c := e.received()[0]
	require.Empty(t, c.header.Get(webhook.SignatureHeader))
	var body struct {
		Payload         string `json:"payload"`
		PayloadEncoding string `json:"payloadEncoding"`
	}
	require.NoError(t, json.Unmarshal(c.body, &body))
	require.Equal(t, "base64", body.PayloadEncoding)
	raw, err := base64.StdEncoding.DecodeString(body.Payload)
	require.NoError(t, err)
	require.Equal(t, "\x00\xffnot json", string(raw))
}

// Each attempt has its own Idempotency-Key; the job's ID stays.
func TestRequest_IdempotencyKeyPerAttempt(t *testing.T) {
	t.Parallel()
	e := newEndpoint(t, func(w http.ResponseWriter, _ *http.Request, call int) {
		if call == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	sys := startSystem(t, webhook.Config{Type: "t", URL: e.URL})
	id := submit(t, sys, "t", `{}`, 2)
	require.Equal(t, domain.StatusCompleted, waitJob(t, sys, id, finished).Status)
	calls := e.received()
	require.Len(t, calls, 2)
	require.Equal(t, id.String()+":1", calls[0].header.Get("Idempotency-Key"))
	require.Equal(t, id.String()+":2", calls[1].header.Get("Idempotency-Key"))
	require.Contains(t, string(calls[1].body), `"attempt":2`)
}

func TestAnswer_2xx(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, contentType, body string
		status                  int
		result                  string // "" for none
	}{
		{"JSONBecomesTheResult", "application/json", `{"url": "s3://x/y.png", "bytes": 1234}`, 200, `{"url":"s3://x/y.png","bytes":1234}`},
		{"JSONWithoutContentType", "text/plain", `[1,2,3]`, 201, `[1,2,3]`},
		{"TextIsNoResult", "text/plain", `thanks!`, 200, ""},
		{"EmptyIsNoResult", "", ``, 202, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEndpoint(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
				if tc.contentType != "" {
					w.Header().Set("Content-Type", tc.contentType)
				}
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body)
			})
			sys := startSystem(t, webhook.Config{Type: "t", URL: e.URL})
			job := waitJob(t, sys, submit(t, sys, "t", `{}`, 1), finished)
			require.Equal(t, domain.StatusCompleted, job.Status)
			if tc.result == "" {
				require.Nil(t, job.Result)
			} else {
				require.JSONEq(t, tc.result, string(job.Result))
			}
		})
	}
}

// A JSON answer over the result limit fails the attempt, which retries.
func TestAnswer_ResultTooLarge(t *testing.T) {
	t.Parallel()
	e := newEndpoint(t, func(w http.ResponseWriter, _ *http.Request, call int) {
		if call == 1 {
			_, _ = io.WriteString(w, `"`+strings.Repeat("x", 200_000)+`"`)
			return
		}
		_, _ = io.WriteString(w, `"small"`)
	})
	sys := startSystem(t, webhook.Config{Type: "t", URL: e.URL}, actors.WithMaxResultBytes(1000))
	job := waitJob(t, sys, submit(t, sys, "t", `{}`, 2), finished)
	require.Equal(t, domain.StatusCompleted, job.Status)
	require.Equal(t, 2, job.Attempts)
	require.Equal(t, "webhook answered 200 OK with job result too large: more than the 1000 bytes allowed", job.LastError)
	require.JSONEq(t, `"small"`, string(job.Result))
}

// 408, 429 and 5xx fail the attempt, which retries; the error quotes the
// status and the start of the body.
func TestAnswer_Retryable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status int
		want   string
	}{
		{408, "webhook answered 408 Request Timeout: try again"},
		{429, "webhook answered 429 Too Many Requests: try again"},
		{500, "webhook answered 500 Internal Server Error: try again"},
		{503, "webhook answered 503 Service Unavailable: try again"},
	} {
		t.Run(http.StatusText(tc.status), func(t *testing.T) {
			t.Parallel()
			e := newEndpoint(t, func(w http.ResponseWriter, _ *http.Request, call int) {
				if call == 1 {
					w.WriteHeader(tc.status)
					_, _ = io.WriteString(w, "  try again\n")
				}
			})
			sys := startSystem(t, webhook.Config{Type: "t", URL: e.URL})
			job := waitJob(t, sys, submit(t, sys, "t", `{}`, 2), finished)
			require.Equal(t, domain.StatusCompleted, job.Status)
			require.Equal(t, 2, job.Attempts)
			require.Equal(t, tc.want, job.LastError)
		})
	}
}

// Retry-After, in seconds or as a date, sets the wait before the next
// attempt, capped at an hour.
func TestAnswer_RetryAfter(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		value func() string
		want  time.Duration
		slack time.Duration
	}{
		{"Seconds", func() string { return "120" }, 120 * time.Second, 0},
		{"SecondsCapped", func() string { return "86400" }, time.Hour, 0},
		{"Date", func() string { return time.Now().Add(10 * time.Minute).UTC().Format(http.TimeFormat) }, 10 * time.Minute, 3 * time.Second},
		{"DateCapped", func() string { return time.Now().Add(48 * time.Hour).UTC().Format(http.TimeFormat) }, time.Hour, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEndpoint(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
				w.Header().Set("Retry-After", tc.value())
				w.WriteHeader(http.StatusTooManyRequests)
			})
			sys := startSystem(t, webhook.Config{Type: "t", URL: e.URL})
			job := waitJob(t, sys, submit(t, sys, "t", `{}`, 2), func(j *domain.Job) bool { return j.Status == domain.StatusScheduled })
			require.Equal(t, "webhook answered 429 Too Many Requests", job.LastError)
			require.InDelta(t, float64(tc.want), float64(job.RunAt.Sub(job.UpdatedAt)), float64(tc.slack))
		})
	}
}

// A redirect is not followed: the job fails for good.
func TestAnswer_RedirectIsPermanent(t *testing.T) {
	t.Parallel()
	var followed atomic.Bool
	target := newEndpoint(t, func(http.ResponseWriter, *http.Request, int) { followed.Store(true) })
	e := newEndpoint(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		http.Redirect(w, r, target.URL, http.StatusTemporaryRedirect)
	})
	sys := startSystem(t, webhook.Config{Type: "t", URL: e.URL})
	job := waitJob(t, sys, submit(t, sys, "t", `{}`, 3), finished)
	require.Equal(t, domain.StatusFailed, job.Status)
	require.Equal(t, 1, job.Attempts)
	require.Equal(t, "webhook answered 307 Temporary Redirect: redirects are not followed", job.LastError)
	require.False(t, followed.Load())
}

// Another 4xx fails the job for good, with the status and the first 1 KB
// of the body.
func TestAnswer_ClientErrorIsPermanent(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", 5000) // 2 bytes a rune: the cut keeps runes whole
	e := newEndpoint(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
		w.WriteHeader(http.StatusUnprocessableEntity)
		_, _ = io.WriteString(w, long)
	})
	sys := startSystem(t, webhook.Config{Type: "t", URL: e.URL})
	job := waitJob(t, sys, submit(t, sys, "t", `{}`, 3), finished)
	require.Equal(t, domain.StatusFailed, job.Status)
	require.Equal(t, 1, job.Attempts)
	require.Equal(t, "webhook answered 422 Unprocessable Entity: "+strings.Repeat("é", 512), job.LastError)
}

// A call that outlasts the timeout is abandoned and retried.
func TestCall_Timeout(t *testing.T) {
	t.Parallel()
	e := newEndpoint(t, func(w http.ResponseWriter, r *http.Request, call int) {
		if call == 1 {
			<-r.Context().Done() // the client gave up
		}
	})
	sys := startSystem(t, webhook.Config{Type: "t", URL: e.URL, Timeout: 200 * time.Millisecond})
	job := waitJob(t, sys, submit(t, sys, "t", `{}`, 2), finished)
	require.Equal(t, domain.StatusCompleted, job.Status)
	require.Equal(t, 2, job.Attempts)
	require.Equal(t, "webhook timed out after 200ms", job.LastError)
}

// A refused connection is retryable, and the error shows the URL without
// its password.
func TestCall_ConnectionError(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	sys := startSystem(t, webhook.Config{Type: "t", URL: "http://bob:hunter2@" + addr + "/hook"})
	job := waitJob(t, sys, submit(t, sys, "t", `{}`, 2), finished)
	require.Equal(t, domain.StatusFailed, job.Status)
	require.Equal(t, 2, job.Attempts, "retried")
	require.Contains(t, job.LastError, "webhook call to http://bob:xxxxx@"+addr+"/hook failed:")
	require.NotContains(t, job.LastError, "hunter2")
}

// User info in the URL is sent as basic auth.
func TestCall_BasicAuthFromURL(t *testing.T) {
	t.Parallel()
	e := newEndpoint(t, func(http.ResponseWriter, *http.Request, int) {})
	sys := startSystem(t, webhook.Config{Type: "t", URL: strings.Replace(e.URL, "http://", "http://bob:hunter2@", 1)})
	require.Equal(t, domain.StatusCompleted, waitJob(t, sys, submit(t, sys, "t", `{}`, 1), finished).Status)
	c := e.received()[0]
	require.Equal(t, "bob", c.user)
	require.Equal(t, "hunter2", c.pass)
}

// Calls reuse connections: 100 jobs on 4 workers open no more connections
// than there are workers, even when answers carry bodies longer than what
// is kept of them.
func TestCall_ConnectionReuse(t *testing.T) {
	t.Parallel()
	e := newEndpoint(t, func(w http.ResponseWriter, _ *http.Request, call int) {
		if call%2 == 0 {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, strings.Repeat("x", 8<<10))
			return
		}
		_, _ = io.WriteString(w, `{"ok":true}`)
	})
	const workers, jobs = 4, 100
	sys := startSystem(t, webhook.Config{Type: "t", URL: e.URL}, actors.WithWorkers(workers))
	ids := make([]uuid.UUID, jobs)
	for i := range ids {
		ids[i] = submit(t, sys, "t", `{}`, 1)
	}
	for _, id := range ids {
		waitJob(t, sys, id, finished)
	}
	require.Len(t, e.received(), jobs)
	require.LessOrEqual(t, int(e.conns.Load()), workers, "connections opened for %d calls", jobs)
}

func TestNew_Validation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cfg  webhook.Config
		want string
	}{
		{"NoType", webhook.Config{URL: "http://x"}, "type is required"},
		{"NotHTTP", webhook.Config{Type: "t", URL: "ftp://x/y"}, "url must be http or https"},
		{"NoHost", webhook.Config{Type: "t", URL: "http:///path"}, "url must name a host"},
		{"Relative", webhook.Config{Type: "t", URL: "/jobs"}, "url must be http or https"},
		{"NegativeTimeout", webhook.Config{Type: "t", URL: "http://x", Timeout: -time.Second}, "timeout must be between"},
		{"LongTimeout", webhook.Config{Type: "t", URL: "http://x", Timeout: 2 * time.Hour}, "timeout must be between"},
		{"ReservedHeader", webhook.Config{Type: "t", URL: "http://x", Headers: map[string]string{"idempotency-key": "x"}}, "cannot set Idempotency-Key"},
		{"BadHeaderName", webhook.Config{Type: "t", URL: "http://x", Headers: map[string]string{"X Y": "x"}}, "is not a valid header name"},
		{"BadHeaderValue", webhook.Config{Type: "t", URL: "http://x", Headers: map[string]string{"X-Y": "a\r\nB: c"}}, "line break"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := webhook.New(tc.cfg)
			require.ErrorIs(t, err, domain.ErrInvalid)
			require.ErrorContains(t, err, tc.want)
		})
	}
	_, err := webhook.New(webhook.Config{Type: "t", URL: "ftp://bob:hunter2@x/"})
	require.Error(t, err)
	require.NotContains(t, err.Error(), "hunter2", "no secrets in errors")

	h, err := webhook.New(webhook.Config{Type: "t", URL: "https://x.example/jobs"})
	require.NoError(t, err)
	require.NotNil(t, h)
}

func TestRegister(t *testing.T) {
	t.Parallel()
	sys, err := actors.New(memstore.New(), actors.WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)
	require.NoError(t, webhook.Register(sys, webhook.Config{Type: "hooked", URL: "http://127.0.0.1:1/"}))
	require.Contains(t, sys.JobTypes(), domain.JobType("hooked"))
	err = webhook.Register(sys, webhook.Config{Type: "hooked", URL: "http://127.0.0.1:1/"})
	require.ErrorIs(t, err, domain.ErrDuplicateHandler)
	require.Error(t, webhook.Register(sys, webhook.Config{Type: "bad", URL: "mailto:x@y"}))
}

// Outside a running attempt there is no job to call about.
func TestExecute_OutsideAnAttempt(t *testing.T) {
	t.Parallel()
	h, err := webhook.New(webhook.Config{Type: "t", URL: "http://127.0.0.1:1/"})
	require.NoError(t, err)
	err = h.Execute(context.Background(), []byte(`{}`))
	require.ErrorIs(t, err, domain.ErrNoAttempt)
	require.True(t, domain.IsPermanent(err))
	require.False(t, errors.Is(err, domain.ErrInvalid))
}

// An endless answer is read no further than the result limit and a
// bounded drain: the call ends, the endpoint's writes fail once the
// connection is dropped, and the attempt fails as too large.
func TestAnswer_EndlessBodyIsNotRead(t *testing.T) {
	t.Parallel()
	var written atomic.Int64
	e := newEndpoint(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
		chunk := []byte(strings.Repeat("x", 32<<10))
		for written.Load() < 1<<30 {
			n, err := w.Write(chunk)
			written.Add(int64(n))
			if err != nil {
				return
			}
		}
	})
	sys := startSystem(t, webhook.Config{Type: "t", URL: e.URL}, actors.WithMaxResultBytes(1000))
	job := waitJob(t, sys, submit(t, sys, "t", `{}`, 1), finished)
	require.Equal(t, domain.StatusFailed, job.Status)
	require.Contains(t, job.LastError, "job result too large")
	// What the endpoint wrote before its writes failed: what was read,
	// plus what the socket buffers held; far from the gigabyte it offered.
	require.Less(t, written.Load(), int64(64<<20))
}
