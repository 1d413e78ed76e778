package main

import (
	"net"
	nethttp "net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// healthServer serves GET /health with status and body. The func it
// returns gives the Authorization header of the last request.
func healthServer(t *testing.T, status int, body string) (*httptest.Server, func() string) {
	t.Helper()
	var (
		mu   sync.Mutex
		auth string
	)
	srv := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		if r.URL.Path != "/health" || r.Method != nethttp.MethodGet {
			nethttp.NotFound(w, r)
			return
		}
		mu.Lock()
		auth = r.Header.Get("Authorization")
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv, func() string {
		mu.Lock()
		defer mu.Unlock()
		return auth
	}
}

// closedAddr returns a loopback address where nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// requireOneErrorLine checks that stderr is one line starting with
// "troupe: " and containing each of wants.
func requireOneErrorLine(t *testing.T, stderr string, wants ...string) {
	t.Helper()
	require.True(t, strings.HasPrefix(stderr, "troupe: "), stderr)
	require.Equal(t, 1, strings.Count(stderr, "\n"), stderr)
	for _, want := range wants {
		require.Contains(t, stderr, want)
	}
}

func TestHealthcheck(t *testing.T) {
	t.Parallel()

	t.Run("exits 0 and prints nothing when /health answers 200", func(t *testing.T) {
		t.Parallel()
		srv, _ := healthServer(t, nethttp.StatusOK, `{"status":"ok","dispatcher":"up","store":"up"}`)
		code, out, errOut := runClient(t, nil, "healthcheck", "--server", srv.URL)
		require.Equal(t, 0, code, errOut)
		require.Empty(t, out)
		require.Empty(t, errOut)
	})

	t.Run("exits 1 naming the status and the parts down on 503", func(t *testing.T) {
		t.Parallel()
		srv, _ := healthServer(t, nethttp.StatusServiceUnavailable,
			`{"status":"unavailable","dispatcher":"up","store":"down: connection refused"}`)
		code, out, errOut := runClient(t, nil, "healthcheck", "--server", srv.URL)
		require.Equal(t, 1, code)
		require.Empty(t, out)
		requireOneErrorLine(t, errOut, "unhealthy", srv.URL+"/health", "503 Service Unavailable", "(store down: connection refused)")
	})

	t.Run("exits 1 on any other status, even a success", func(t *testing.T) {
		t.Parallel()
		srv, _ := healthServer(t, nethttp.StatusNoContent, "")
		code, _, errOut := runClient(t, nil, "healthcheck", "--server", srv.URL)
		require.Equal(t, 1, code)
		requireOneErrorLine(t, errOut, "answered 204 No Content")
	})

	t.Run("exits 1 when nothing listens", func(t *testing.T) {
		t.Parallel()
		addr := closedAddr(t)
		code, out, errOut := runClient(t, nil, "healthcheck", "--server", addr)
		require.Equal(t, 1, code)
		require.Empty(t, out)
		requireOneErrorLine(t, errOut, "unhealthy: cannot reach http://"+addr+"/health", "refused")
	})

	t.Run("exits 1 when the answer does not come within --timeout", func(t *testing.T) {
		t.Parallel()
		// The handler waits for the client to give up, which only the
		// timeout makes it do.
		srv := httptest.NewServer(nethttp.HandlerFunc(func(_ nethttp.ResponseWriter, r *nethttp.Request) {
			<-r.Context().Done()
		}))
		t.Cleanup(srv.Close)
		code, _, errOut := runClient(t, nil, "healthcheck", "--server", srv.URL, "--timeout", "50ms")
		require.Equal(t, 1, code)
		requireOneErrorLine(t, errOut, "did not answer within 50ms")
	})

	t.Run("the address defaults to TROUPE_HTTP_ADDR, reached on loopback", func(t *testing.T) {
		t.Parallel()
		srv, _ := healthServer(t, nethttp.StatusOK, `{"status":"ok"}`)
		_, port, err := net.SplitHostPort(srv.Listener.Addr().String())
		require.NoError(t, err)
		code, _, errOut := runClient(t, []string{"TROUPE_HTTP_ADDR=0.0.0.0:" + port}, "healthcheck")
		require.Equal(t, 0, code, errOut)

		addr := closedAddr(t)
		code, _, errOut = runClient(t, []string{"TROUPE_HTTP_ADDR=" + addr}, "healthcheck")
		require.Equal(t, 1, code)
		requireOneErrorLine(t, errOut, addr)
	})

	t.Run("sends the token of the environment, so the server can say why", func(t *testing.T) {
		t.Parallel()
		srv, auth := healthServer(t, nethttp.StatusOK, `{"status":"ok"}`)
		code, _, errOut := runClient(t, []string{"TROUPE_API_TOKENS=first,second"}, "healthcheck", "--server", srv.URL)
		require.Equal(t, 0, code, errOut)
		require.Equal(t, "Bearer first", auth())
	})

	t.Run("refuses a timeout that is not positive", func(t *testing.T) {
		t.Parallel()
		code, _, errOut := runClient(t, nil, "healthcheck", "--timeout", "0s")
		require.Equal(t, 1, code)
		requireOneErrorLine(t, errOut, "invalid --timeout 0s")
	})

	t.Run("a running troupe server is healthy", func(t *testing.T) {
		t.Parallel()
		m := startMain(t, memoryConfig())
		code, _, errOut := runClient(t, nil, "healthcheck", "--server", m.Addr())
		require.Equal(t, 0, code, errOut)
	})
}

func TestDescribeHealth(t *testing.T) {
	t.Parallel()
	for body, want := range map[string]string{
		`{"status":"unavailable","dispatcher":"down","store":"down"}`: " (dispatcher down, store down)",
		`{"status":"unavailable","dispatcher":"up","store":"up"}`:     " (status unavailable)",
		`not json`:  "",
		`{"a": 1}`:  "",
		``:          "",
		`{"status"`: "",
	} {
		require.Equal(t, want, describeHealth([]byte(body)), body)
	}
}
