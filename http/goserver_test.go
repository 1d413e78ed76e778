package http

import (
	"bufio"
	"context"
	"io"
	"net"
	nethttp "net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestAnsweredByGoServer pins the answers that Go's HTTP server gives
// before Troupe sees the request, as README.md lists them: plain text,
// without X-Request-ID. If a Go release changes them, the README must
// follow.
func TestAnsweredByGoServer(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	require.NoError(t, b.server.Start(t.Context()))
	t.Cleanup(func() { require.NoError(t, b.server.Stop(context.Background())) })
	addr := b.server.Addr().String()

	tests := []struct {
		name    string
		request string
		status  int
	}{
		{"MalformedRequestLine", "GARBAGE\r\n\r\n", nethttp.StatusBadRequest},
		{"TLSOnThePlainPort", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", nethttp.StatusBadRequest},
		{"NoHost", "GET /health HTTP/1.1\r\n\r\n", nethttp.StatusBadRequest},
		{"MalformedHost", "GET /health HTTP/1.1\r\nHost: a b\r\n\r\n", nethttp.StatusBadRequest},
		{"InvalidHeaderName", "GET /health HTTP/1.1\r\nHost: x\r\nBad Name: 1\r\n\r\n", nethttp.StatusBadRequest},
		{"HeadersTooLarge", "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 1<<20+8192) + "\r\n\r\n", nethttp.StatusRequestHeaderFieldsTooLarge},
		{"UnknownTransferEncoding", "POST /jobs HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", nethttp.StatusNotImplemented},
		{"UnsupportedVersion", "GET /health HTTP/3.0\r\nHost: x\r\n\r\n", nethttp.StatusHTTPVersionNotSupported},
		{"UnknownExpectation", "GET /health HTTP/1.1\r\nHost: x\r\nExpect: something\r\n\r\n", nethttp.StatusExpectationFailed},
		{"OptionsStar", "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", nethttp.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var d net.Dialer
			conn, err := d.DialContext(t.Context(), "tcp", addr)
			require.NoError(t, err)
			defer conn.Close()
			require.NoError(t, conn.SetDeadline(time.Now().Add(30*time.Second)))
			// Written beside the read: the server may answer before it has
			// read a large request.
			go func() { _, _ = io.WriteString(conn, tt.request) }()

			resp, err := nethttp.ReadResponse(bufio.NewReader(conn), nil)
			require.NoError(t, err)
			defer resp.Body.Close()

			require.Equal(t, tt.status, resp.StatusCode)
			require.Empty(t, resp.Header.Get(HeaderRequestID), "Troupe did not see the request")
			if ct := resp.Header.Get("Content-Type"); ct != "" {
				require.Equal(t, "text/plain; charset=utf-8", ct)
			}
		})
	}
}
