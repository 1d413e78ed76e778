package main

import (
	"bytes"
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/actors"
	"github.com/troupe-go/troupe/domain"
	troupehttp "github.com/troupe-go/troupe/http"
	"github.com/troupe-go/troupe/persistence/memstore"
)

// startServer starts a real API server over the runtime on the memory
// store, with an "echo" handler whose result is its payload and a "nope"
// handler that fails for good.
func startServer(t *testing.T) string {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	store := memstore.New()
	sys, err := actors.New(store, actors.WithWorkers(2), actors.WithLogger(logger))
	require.NoError(t, err)
	require.NoError(t, sys.Register("echo", domain.HandlerFunc(func(ctx context.Context, payload []byte) error {
		time.Sleep(50 * time.Millisecond) // long enough to be waited for
		return domain.SetResult(ctx, map[string]any{"echo": string(payload)})
	})))
	require.NoError(t, sys.Register("nope", domain.HandlerFunc(func(context.Context, []byte) error {
		return domain.Permanent(context.Canceled)
	})))
	require.NoError(t, sys.Start(t.Context()))
	srv, err := troupehttp.NewServer(troupehttp.Config{Addr: "127.0.0.1:0"}, troupehttp.Runtime(sys), troupehttp.WithLogger(logger))
	require.NoError(t, err)
	require.NoError(t, srv.Start(t.Context()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, srv.Stop(ctx))
		require.NoError(t, sys.Stop(ctx))
	})
	return "http://" + srv.Addr().String()
}

func TestExampleSubmitsAndWaits(t *testing.T) {
	t.Parallel()
	url := startServer(t)

	var out bytes.Buffer
	require.NoError(t, run(t.Context(), []string{"-server", url, "-type", "echo", "-payload", `{"hello":"world"}`}, &out))
	require.Regexp(t, `(?s)^submitted job [0-9a-f-]{36} \(echo\)\njob [0-9a-f-]{36} completed after 1 attempt\(s\)\nresult: \{"echo":"\{\\"hello\\":\\"world\\"\}"\}\n$`, out.String())

	out.Reset()
	err := run(t.Context(), []string{"-server", url, "-type", "nope"}, &out)
	require.ErrorContains(t, err, "ended failed")
	require.Contains(t, out.String(), "last error: ")

	err = run(t.Context(), []string{"-server", url, "-type", "typo"}, &out)
	require.ErrorContains(t, err, `the server has no handler for "typo"`)
	require.ErrorContains(t, run(t.Context(), []string{"-server", url, "-payload", "{nope"}, &out), "not valid JSON")
}

func TestExampleSubmitsWithAQueueAndAKey(t *testing.T) {
	t.Parallel()
	url := startServer(t)
	var out bytes.Buffer
	require.NoError(t, run(t.Context(), []string{"-server", url, "-type", "echo", "-queue", "sync", "-key", "customer-42"}, &out))
	require.Contains(t, out.String(), "completed after 1 attempt(s)")
	err := run(t.Context(), []string{"-server", url, "-type", "echo", "-queue", "Not A Queue"}, &out)
	require.ErrorContains(t, err, "submit: ")
}
