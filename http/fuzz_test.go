package http

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	nethttp "net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/actors"
	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/internal/syncbuf"
	"github.com/troupe-go/troupe/persistence/memstore"
)

// FuzzAPI sends hostile requests to the real router over a real, started
// System on the memory store, and checks the promises every answer keeps,
// whatever the request:
//
//   - no 5xx but the two that tell a client to come back later: 503
//     queue-full and 507 insufficient-storage, each with Retry-After (the
//     fuzz System has a small queue so that the first is reached). Any
//     other 5xx, a panic included (the recovery answers 500), is a defect;
//   - a well-formed answer: an X-Request-ID; an error is a problem+json
//     whose status repeats the code; a success has a content type, is JSON
//     on the API's routes, and parses when it says it is JSON;
//   - no stuck job: once the request is answered, every stored job reaches
//     a terminal status. The only handler is noop, so nothing has a reason
//     to wait. Jobs stored without a 201 count too.
//
// What the answer should be for each input (400, 404, 413, 415…) is left
// to the tests of each route; this checks only what holds for all of them.
//
// The request goes through http.ReadRequest, the parser of net/http's
// server: what it refuses never reaches Troupe (the server answers 400
// itself), so such inputs are skipped. The body's framing (Content-Length,
// Transfer-Encoding) is the server's too and is set from the body.
//
// The seed corpus is testdata/fuzz/FuzzAPI plus the generated seeds below,
// too large to keep as files. `make fuzz` fuzzes for a bounded time.
func FuzzAPI(f *testing.F) {
	for _, s := range generatedFuzzSeeds() {
		f.Add(s.method, s.target, s.header, s.body)
	}
	api := newFuzzAPI(f)
	f.Fuzz(func(t *testing.T, method, target, header string, body []byte) {
		req, ok := fuzzRequest(method, target, header, body)
		if !ok {
			return
		}
		api.logs.Reset()
		rec := api.serve(t, req)
		requireWellFormedAnswer(t, req, rec, api.logs)
		api.requireNoStuckJobs(t)
		api.renewWhenFull(t, len(body))
	})
}

// fuzzRequestTimeout bounds one request; one that takes longer hangs.
// fuzzSettleTimeout bounds the wait for the stored jobs to finish. Both
// are far above what a request or a noop job takes, even with the race
// detector on a loaded machine.
const (
	fuzzRequestTimeout = 30 * time.Second
	fuzzSettleTimeout  = 30 * time.Second
)

// fuzzQueueSize is the fuzz System's ready queue: small, so that a big
// batch, or a few, fill it and 503 queue-full is part of what is fuzzed.
const fuzzQueueSize = 256

// fuzzRenewBytes is how many body bytes one System takes before the next
// input gets a fresh one: the memory store keeps every job, and a listing
// of a few big payloads is slow to encode and check under the race
// detector.
const fuzzRenewBytes = 4 << 20

// fuzzAPI is the server under fuzz: the router over a real System on the
// memory store with a noop handler.
type fuzzAPI struct {
	logs *syncbuf.Buffer
	sys  *actors.System
	api  *Server
	// taken counts the body bytes sent to this System.
	taken int
}

// newFuzzAPI starts the first System; the fuzz run's cleanup stops the
// last one.
func newFuzzAPI(tb testing.TB) *fuzzAPI {
	tb.Helper()
	a := &fuzzAPI{logs: &syncbuf.Buffer{}}
	a.start(tb)
	tb.Cleanup(func() {
		a.stop(tb)
		waitForActorsToSettle(tb)
	})
	return a
}

// start starts a System and the server over it. tb is the test in
// progress: a fuzz target must not fail through its F.
func (a *fuzzAPI) start(tb testing.TB) {
	tb.Helper()
	discard := slog.New(slog.DiscardHandler)
	sys, err := actors.New(memstore.New(), actors.WithWorkers(2), actors.WithQueueSize(fuzzQueueSize), actors.WithLogger(discard))
	require.NoError(tb, err)
	require.NoError(tb, sys.Register("noop", domain.HandlerFunc(func(context.Context, []byte) error { return nil })))
	require.NoError(tb, sys.Start(context.Background()))
	// The server's log says why an answer was a 5xx; the failure shows it.
	logger := slog.New(slog.NewJSONHandler(a.logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	api, err := NewServer(Config{Addr: "127.0.0.1:0"}, Runtime(sys), WithLogger(logger), WithRegistry(NewRegistry()))
	require.NoError(tb, err)
	a.sys, a.api, a.taken = sys, api, 0
}

func (a *fuzzAPI) stop(tb testing.TB) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), fuzzSettleTimeout)
	defer cancel()
	require.NoError(tb, a.sys.Stop(ctx))
}

// renewWhenFull replaces the System once it has taken fuzzRenewBytes.
func (a *fuzzAPI) renewWhenFull(t *testing.T, bodyLen int) {
	t.Helper()
	a.taken += bodyLen
	if a.taken < fuzzRenewBytes {
		return
	}
	a.stop(t)
	a.start(t)
}

// serve answers req with the router, as the server would. An event
// stream never ends by itself: its context is canceled once it has
// started to answer, as a client that hangs up would.
func (a *fuzzAPI) serve(t *testing.T, req *nethttp.Request) *httptest.ResponseRecorder {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), fuzzRequestTimeout)
	defer cancel()
	rec := &streamRecorder{ResponseRecorder: httptest.NewRecorder(), hangUp: cancel}
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.api.Handler().ServeHTTP(rec, req.WithContext(ctx))
	}()
	select {
	case <-done:
	case <-time.After(fuzzRequestTimeout + 5*time.Second):
		t.Fatalf("%s %s is not answered after %s", req.Method, req.RequestURI, fuzzRequestTimeout)
	}
	if !rec.streaming && ctx.Err() != nil {
		t.Fatalf("%s %s took longer than %s", req.Method, req.RequestURI, fuzzRequestTimeout)
	}
	return rec.ResponseRecorder
}

// requireNoStuckJobs waits until no stored job is pending or running.
func (a *fuzzAPI) requireNoStuckJobs(t *testing.T) {
	t.Helper()
	unfinished := domain.Filter{Statuses: []domain.Status{domain.StatusPending, domain.StatusRunning}, Limit: 10}
	deadline := time.Now().Add(fuzzSettleTimeout)
	for {
		page, err := a.sys.List(t.Context(), unfinished)
		require.NoError(t, err)
		if len(page.Jobs) == 0 {
			return
		}
		if time.Now().After(deadline) {
			var stuck []string
			for _, j := range page.Jobs {
				stuck = append(stuck, fmt.Sprintf("%s %s (attempts %d, runAt %v)", j.ID, j.Status, j.Attempts, j.RunAt))
			}
			stats := a.sys.Stats()
			t.Fatalf("jobs still unfinished %s after the request, with a noop handler: %s; queue depth %d, job actors %d",
				fuzzSettleTimeout, strings.Join(stuck, ", "), stats.QueueDepth, stats.JobActors)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// fuzzRequest builds the request net/http's server would hand Troupe for
// these bytes, or reports false when the server would refuse them itself.
// header holds "Name: value" lines.
func fuzzRequest(method, target, header string, body []byte) (*nethttp.Request, bool) {
	var raw bytes.Buffer
	fmt.Fprintf(&raw, "%s %s HTTP/1.1\r\nHost: troupe.test\r\n", method, target)
	for line := range strings.SplitSeq(header, "\n") {
		name, value, ok := strings.Cut(strings.TrimSuffix(line, "\r"), ":")
		if !ok || !validFieldValue(value) {
			continue
		}
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "host", "content-length", "transfer-encoding":
			continue // the framing is set below, from the body
		}
		fmt.Fprintf(&raw, "%s:%s\r\n", name, value)
	}
	fmt.Fprintf(&raw, "Content-Length: %d\r\n\r\n", len(body))
	raw.Write(body)
	req, err := nethttp.ReadRequest(bufio.NewReader(&raw))
	if err != nil {
		return nil, false
	}
	req.RemoteAddr = "192.0.2.1:50000"
	return req, true
}

// validFieldValue is net/http's server's check of a header value: no
// control characters but tab. The server answers 400 to anything else.
func validFieldValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if b := v[i]; (b < ' ' && b != '\t') || b == 0x7f {
			return false
		}
	}
	return true
}

// requireWellFormedAnswer checks the promises of the comment of FuzzAPI
// that hold for any single answer.
func requireWellFormedAnswer(t *testing.T, req *nethttp.Request, rec *httptest.ResponseRecorder, logs fmt.Stringer) {
	t.Helper()
	what := fmt.Sprintf("%s %s answered %d %q: %.2000s\nserver log: %.4000s", req.Method, req.RequestURI, rec.Code, rec.Header(), rec.Body.String(), logs.String())
	require.Truef(t, rec.Code < 500 || legitimate5xx(rec), "a 5xx that is not a come-back-later: %s", what)
	require.NotEmpty(t, rec.Header().Get(HeaderRequestID), "no request ID: %s", what)
	if req.Method == nethttp.MethodHead {
		return // the server sends no body to HEAD
	}
	contentType := rec.Header().Get("Content-Type")
	switch {
	case rec.Code >= 400:
		require.Equal(t, ProblemContentType, contentType, "an error that is not a problem: %s", what)
		var p Problem
		dec := json.NewDecoder(bytes.NewReader(rec.Body.Bytes()))
		dec.DisallowUnknownFields()
		require.NoError(t, dec.Decode(&p), "a problem that does not decode: %s", what)
		require.Equal(t, rec.Code, p.Status, "the problem's status: %s", what)
		require.True(t, strings.HasPrefix(p.Type, "urn:troupe:problem:"), "the problem's type: %s", what)
		require.NotEmpty(t, p.Title, "the problem's title: %s", what)
		require.NotEmpty(t, p.Detail, "the problem's detail: %s", what)
	case rec.Code >= 300:
		require.NotEmpty(t, rec.Header().Get("Location"), "a redirect without Location: %s", what)
	default:
		require.NotEmpty(t, contentType, "a success without a content type: %s", what)
		if apiRoute(req.URL.Path) && contentType != EventStreamContentType {
			require.Equal(t, "application/json; charset=utf-8", contentType, "an API answer that is not JSON: %s", what)
		}
		if strings.Contains(contentType, "json") {
			require.True(t, json.Valid(rec.Body.Bytes()), "a JSON answer that does not parse: %s", what)
		}
	}
}

// legitimate5xx reports whether a 5xx tells the client to try again later
// for a reason that is not a fault: a full queue or a full disk.
func legitimate5xx(rec *httptest.ResponseRecorder) bool {
	if rec.Header().Get("Retry-After") == "" {
		return false
	}
	var p Problem
	if json.Unmarshal(rec.Body.Bytes(), &p) != nil {
		return false
	}
	switch rec.Code {
	case nethttp.StatusServiceUnavailable:
		return p.Type == ProblemTypeQueueFull
	case nethttp.StatusInsufficientStorage:
		return p.Type == ProblemTypeInsufficientStorage
	}
	return false
}

// apiRoute reports whether path is one of the API's JSON routes, rather
// than the dashboard, the documentation or the metrics.
func apiRoute(path string) bool {
	switch path {
	case "/health", "/stats", "/job-types", "/jobs", batchPath:
		return true
	}
	return strings.HasPrefix(path, "/jobs/")
}

// streamRecorder records an answer, and hangs up (cancels the request's
// context) once the answer turns out to be an event stream.
type streamRecorder struct {
	*httptest.ResponseRecorder
	hangUp    context.CancelFunc
	mu        sync.Mutex
	streaming bool
}

func (r *streamRecorder) WriteHeader(code int) {
	r.mu.Lock()
	if strings.HasPrefix(r.Header().Get("Content-Type"), EventStreamContentType) {
		r.streaming = true
		r.hangUp()
	}
	r.mu.Unlock()
	r.ResponseRecorder.WriteHeader(code)
}

func (r *streamRecorder) Write(p []byte) (int, error) {
	r.WriteHeader(nethttp.StatusOK) // a no-op after the first; as net/http does
	return r.ResponseRecorder.Write(p)
}

// Unwrap lets http.ResponseController reach the recorder's Flush.
func (r *streamRecorder) Unwrap() nethttp.ResponseWriter { return r.ResponseRecorder }

// fuzzSeed is one input of FuzzAPI.
type fuzzSeed struct {
	method, target, header string
	body                   []byte
}

// generatedFuzzSeeds are the seeds too large to keep in
// testdata/fuzz/FuzzAPI: the extremes of the hostile inputs.
func generatedFuzzSeeds() []fuzzSeed {
	const jsonHeader = "Content-Type: application/json"
	deep := strings.Repeat("[", 9990) + strings.Repeat("]", 9990)
	hugeNumber := "1" + strings.Repeat("0", 100_000)
	bigPayload := `"` + strings.Repeat("x", 5<<20) + `"`
	jobs := make([]string, MaxBatchJobs)
	for i := range jobs {
		jobs[i] = `{"type":"noop","payload":{"i":` + fmt.Sprint(i) + `}}`
	}
	return []fuzzSeed{
		{"POST", "/jobs", jsonHeader, []byte(`{"type":"noop","payload":` + deep + `}`)},
		{"POST", "/jobs", jsonHeader, []byte(`{"type":"noop","payload":{"n":` + hugeNumber + `}}`)},
		{"POST", "/jobs/batch", jsonHeader, []byte(`{"jobs":[{"type":"noop","payload":` + bigPayload + `},{"type":"noop"}]}`)},
		{"POST", "/jobs/batch", jsonHeader, []byte(`{"jobs":[` + strings.Join(jobs, ",") + `]}`)},
		{"POST", "/jobs", jsonHeader, []byte(`{"type":"noop","payload":"` + strings.Repeat("x", 1<<20) + `"}`)},
		{"PUT", "/schedules/deep", jsonHeader, []byte(`{"cron":"@daily","job":{"type":"noop","payload":` + deep + `}}`)},
		{"PUT", "/schedules/huge", jsonHeader, []byte(`{"cron":"@daily","job":{"type":"noop","payload":{"n":` + hugeNumber + `}}}`)},
		{"PUT", "/schedules/big", jsonHeader, []byte(`{"cron":"@daily","job":{"type":"noop","payload":` + bigPayload + `}}`)},
	}
}
