package http

import (
	"context"
	"fmt"
	nethttp "net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
)

// TestClientGone hangs up while the handler waits on the service: the
// access line says 499 at info, nothing is logged as an error, and the
// request is not counted as a 5xx.
func TestClientGone(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	entered := make(chan struct{})
	b.svc.GetFunc = func(ctx context.Context, id uuid.UUID) (*domain.Job, error) {
		close(entered)
		<-ctx.Done()
		return nil, fmt.Errorf("get job %s: %w", id, ctx.Err())
	}
	srv := httptest.NewServer(b.server.Handler())
	t.Cleanup(srv.Close)

	ctx, hangUp := context.WithCancel(t.Context())
	req, err := nethttp.NewRequestWithContext(ctx, "GET", srv.URL+jobsPath(uuid.New()), nil)
	require.NoError(t, err)
	req.Header.Set(HeaderRequestID, "gone-1")
	answered := make(chan error, 1)
	go func() {
		resp, err := srv.Client().Do(req)
		if err == nil {
			resp.Body.Close()
		}
		answered <- err
	}()
	<-entered
	hangUp()
	require.Error(t, <-answered)

	// The server notices the hang-up on its own time; wait for the line.
	require.Eventually(t, func() bool {
		return strings.Contains(b.logs.String(), `"msg":"http request"`)
	}, 10*time.Second, 10*time.Millisecond)
	lines := logLines(t, b.logs.String(), "http request")
	require.Len(t, lines, 1)
	line := lines[0]
	require.EqualValues(t, StatusClientClosedRequest, line["status"])
	require.Equal(t, "INFO", line["level"])
	require.Equal(t, "gone-1", line["requestID"])
	require.NotContains(t, b.logs.String(), `"level":"ERROR"`)

	metrics := b.do(t, request{method: "GET", target: "/metrics"}).Body.String()
	require.Contains(t, metrics, `troupe_http_requests_total{code="499",route="/jobs/:id"} 1`)
	require.NotContains(t, metrics, `code="500"`)
}

// TestClientGoneServerFault is the other side: a fault of the server
// while the client is still there stays a 500, logged at error with the
// request ID.
func TestClientGoneServerFault(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	b.svc.GetFunc = func(context.Context, uuid.UUID) (*domain.Job, error) {
		return nil, fmt.Errorf("get job: %w", context.Canceled) // a canceled context of the runtime's own
	}

	rec := b.do(t, request{method: "GET", target: jobsPath(uuid.New()), header: map[string]string{HeaderRequestID: "fault-1"}})

	requireProblem(t, rec, nethttp.StatusInternalServerError, ProblemTypeInternal)
	errs := logLines(t, b.logs.String(), "http: internal error")
	require.Len(t, errs, 1)
	require.Equal(t, "ERROR", errs[0]["level"])
	require.Equal(t, "fault-1", errs[0]["requestID"])
	access := logLines(t, b.logs.String(), "http request")
	require.Len(t, access, 1)
	require.EqualValues(t, nethttp.StatusInternalServerError, access[0]["status"])
}
