package http

import (
	"context"
	"io"
	nethttp "net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
)

// TestHead walks the router: every GET route also answers HEAD, with the
// status and headers of GET and no body (RFC 9110, section 9.3.2). A GET
// route added without HEAD fails here.
func TestHead(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	job := newTestJob(t, domain.StatusRunning)
	b.svc.holdOnly(job)
	srv := httptest.NewServer(b.server.Handler())
	t.Cleanup(srv.Close)
	t.Cleanup(func() { b.server.streams.end() })

	routes := b.server.engine.Routes()
	var heads []string
	for _, r := range routes {
		if r.Method == nethttp.MethodHead {
			heads = append(heads, r.Path)
		}
	}
	var gets int
	for _, r := range routes {
		if r.Method != nethttp.MethodGet {
			continue
		}
		gets++
		require.Contains(t, heads, r.Path, "GET %s has no HEAD route", r.Path)
		for _, path := range concretePaths(r.Path, job.ID) {
			t.Run(path, func(t *testing.T) {
				get, getBody := call(t, srv, nethttp.MethodGet, path)    //nolint:bodyclose // call closed it
				head, headBody := call(t, srv, nethttp.MethodHead, path) //nolint:bodyclose // call closed it

				require.Equal(t, get.StatusCode, head.StatusCode)
				require.Empty(t, headBody, "HEAD answers no body")
				ignore := []string{"Date", HeaderRequestID}
				if path == "/metrics" {
					// The counters move between the two calls.
					ignore = append(ignore, "Content-Length")
				}
				require.Equal(t, headersWithout(get.Header, ignore), headersWithout(head.Header, ignore))
				if get.Header.Get("Content-Type") != EventStreamContentType && path != "/metrics" {
					require.NotEmpty(t, getBody, "GET %s has a body", path)
					require.Equal(t, get.ContentLength, head.ContentLength)
				}
			})
		}
	}
	require.Greater(t, gets, 10, "the walk found the routes")
}

// concretePaths turns a route pattern into paths that reach its handler.
func concretePaths(pattern string, id uuid.UUID) []string {
	path := strings.ReplaceAll(pattern, ":id", id.String())
	if prefix, ok := strings.CutSuffix(path, "*path"); ok {
		// The dashboard's pages and its files.
		return []string{prefix + "jobs/" + id.String(), prefix + "assets/app.js", prefix + "assets/app.css"}
	}
	return []string{path}
}

// call makes one request and returns the answer with its body; an event
// stream's body is not waited for.
func call(t *testing.T, srv *httptest.Server, method, path string) (*nethttp.Response, []byte) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	req, err := nethttp.NewRequestWithContext(ctx, method, srv.URL+path, nil)
	require.NoError(t, err)
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	if resp.Header.Get("Content-Type") == EventStreamContentType && method == nethttp.MethodGet {
		return resp, nil
	}
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, body
}

func headersWithout(h nethttp.Header, names []string) nethttp.Header {
	out := h.Clone()
	for name := range out {
		if slices.ContainsFunc(names, func(n string) bool { return nethttp.CanonicalHeaderKey(n) == name }) {
			delete(out, name)
		}
	}
	return out
}
