package http

import (
	"context"
	"encoding/json"
	"net"
	nethttp "net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// newClient returns an HTTP client whose idle connections are closed when
// the test ends, so that no goroutine outlives it.
func newClient(t *testing.T) *nethttp.Client {
	t.Helper()
	transport := &nethttp.Transport{}
	t.Cleanup(transport.CloseIdleConnections)
	return &nethttp.Client{Transport: transport}
}

func getHealth(t *testing.T, client *nethttp.Client, addr net.Addr) HealthResponse {
	t.Helper()
	req, err := nethttp.NewRequestWithContext(t.Context(), "GET", "http://"+addr.String()+"/health", nil)
	require.NoError(t, err)
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, nethttp.StatusOK, resp.StatusCode)
	require.NotEmpty(t, resp.Header.Get(HeaderRequestID))
	var h HealthResponse
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&h))
	return h
}

func TestServerStartStop(t *testing.T) {
	t.Parallel()

	t.Run("ServesOnPortZero", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{Addr: "127.0.0.1:0"})
		require.Nil(t, b.server.Addr(), "no address before Start")

		require.NoError(t, b.server.Start(t.Context()))
		addr := b.server.Addr()
		require.NotNil(t, addr)
		require.NotZero(t, addr.(*net.TCPAddr).Port)

		h := getHealth(t, newClient(t), addr)
		require.Equal(t, "ok", h.Status)

		require.NoError(t, b.server.Stop(context.Background()))
		require.Nil(t, b.server.Addr())
		require.Contains(t, b.logs.String(), `"msg":"http: listening"`)
	})

	t.Run("StartTwiceFails", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		require.NoError(t, b.server.Start(t.Context()))
		t.Cleanup(func() { require.NoError(t, b.server.Stop(context.Background())) })

		require.ErrorContains(t, b.server.Start(t.Context()), "already started")
	})

	t.Run("AddressInUseIsAStartError", func(t *testing.T) {
		t.Parallel()
		first := setup(t, Config{})
		require.NoError(t, first.server.Start(t.Context()))
		t.Cleanup(func() { require.NoError(t, first.server.Stop(context.Background())) })

		second := setup(t, Config{Addr: first.server.Addr().String()})
		err := second.server.Start(t.Context())

		require.ErrorContains(t, err, "listen on "+first.server.Addr().String())
		require.Nil(t, second.server.Addr())
	})

	t.Run("StopWithoutStartDoesNothing", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})

		require.NoError(t, b.server.Stop(context.Background()))
	})

	t.Run("RestartAfterStop", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		client := newClient(t)

		for range 2 {
			require.NoError(t, b.server.Start(t.Context()))
			getHealth(t, client, b.server.Addr())
			client.CloseIdleConnections()
			require.NoError(t, b.server.Stop(context.Background()))
		}
	})

	t.Run("StopWaitsForKeepAliveConnections", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		require.NoError(t, b.server.Start(t.Context()))
		client := newClient(t)
		getHealth(t, client, b.server.Addr()) // leaves an idle keep-alive connection

		require.NoError(t, b.server.Stop(context.Background()), "idle connections are closed, not waited for")
	})
}
