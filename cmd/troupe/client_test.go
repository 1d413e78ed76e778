package main

import (
	"encoding/json"
	"net"
	nethttp "net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// runClient runs a client command in-process and returns its exit status,
// stdout and stderr.
func runClient(t *testing.T, environ []string, args ...string) (int, string, string) {
	t.Helper()
	env, stdout, stderr, _ := testEnv(environ...)
	code := run(t.Context(), args, env)
	return code, stdout.String(), stderr.String()
}

// decodeJob decodes a command's output as a job.
func decodeJob(t *testing.T, out string) jobJSON {
	t.Helper()
	var job jobJSON
	require.NoError(t, json.Unmarshal([]byte(out), &job), out)
	return job
}

func TestClientCommands(t *testing.T) {
	t.Parallel()

	t.Run("submit, get, list and cancel print the JSON answers", func(t *testing.T) {
		t.Parallel()
		m := startMain(t, memoryConfig())
		server := "--server=" + m.Addr()

		code, out, errOut := runClient(t, nil, "submit", server, "--type", "noop")
		require.Equal(t, 0, code, errOut)
		require.Empty(t, errOut)
		require.True(t, json.Valid([]byte(out)))
		noop := decodeJob(t, out)
		require.Equal(t, "noop", noop.Type)
		require.Equal(t, 3, noop.MaxAttempts, "the server's default")
		require.Equal(t, "null", string(noop.Payload), "no --payload stores null, as the API does")

		code, out, errOut = runClient(t, nil, "submit", server, "--type", "sleep", "--payload", `{"ms": 60000}`, "--max-attempts", "2")
		require.Equal(t, 0, code, errOut)
		sleeper := decodeJob(t, out)
		require.Equal(t, 2, sleeper.MaxAttempts)
		require.JSONEq(t, `{"ms": 60000}`, string(sleeper.Payload))

		api := newAPIClient(t, "http://"+m.Addr())
		api.waitStatus(noop.ID, "completed")
		code, out, errOut = runClient(t, nil, "get", server, noop.ID)
		require.Equal(t, 0, code, errOut)
		require.Equal(t, "completed", decodeJob(t, out).Status)

		code, out, errOut = runClient(t, nil, "list", server, "--status", "completed", "--type", "noop", "--limit", "5")
		require.Equal(t, 0, code, errOut)
		var page listJSON
		require.NoError(t, json.Unmarshal([]byte(out), &page))
		require.Equal(t, 1, page.Total)
		require.Equal(t, 5, page.Limit)
		require.Equal(t, noop.ID, page.Jobs[0].ID)

		code, out, errOut = runClient(t, nil, "list", server, "--status", "pending,running", "--offset", "1")
		require.Equal(t, 0, code, errOut)
		require.NoError(t, json.Unmarshal([]byte(out), &page))
		require.Equal(t, 1, page.Total)
		require.Equal(t, 1, page.Offset)
		require.Empty(t, page.Jobs)

		code, out, errOut = runClient(t, nil, "cancel", server, sleeper.ID)
		require.Equal(t, 0, code, errOut)
		require.Equal(t, sleeper.ID, decodeJob(t, out).ID)
		api.waitStatus(sleeper.ID, "canceled")

		code, out, errOut = runClient(t, nil, "retry", server, sleeper.ID)
		require.Equal(t, 0, code, errOut)
		var copied struct {
			jobJSON
			RetryOf string `json:"retryOf"`
		}
		require.NoError(t, json.Unmarshal([]byte(out), &copied), out)
		require.Equal(t, sleeper.ID, copied.RetryOf)
		require.NotEqual(t, sleeper.ID, copied.ID)
		require.Equal(t, "sleep", copied.Type)
		require.JSONEq(t, `{"ms": 60000}`, string(copied.Payload))
		code, _, errOut = runClient(t, nil, "cancel", server, copied.ID)
		require.Equal(t, 0, code, errOut)
		api.waitStatus(copied.ID, "canceled")
	})

	t.Run("an error answer prints its detail and exits 1", func(t *testing.T) {
		t.Parallel()
		m := startMain(t, memoryConfig())
		server := "--server=http://" + m.Addr() + "/"

		code, out, errOut := runClient(t, nil, "get", server, uuid.NewString())
		require.Equal(t, 1, code)
		require.Empty(t, out)
		require.True(t, strings.HasPrefix(errOut, "troupe: "), errOut)
		require.Contains(t, errOut, "not found")
		require.Contains(t, errOut, "(404 Not found)")
		require.Equal(t, 1, strings.Count(errOut, "\n"))

		code, _, errOut = runClient(t, nil, "submit", server, "--type", "nope")
		require.Equal(t, 1, code)
		require.Contains(t, errOut, `job type "nope" is not registered`)

		code, _, errOut = runClient(t, nil, "get", server, "not-a-uuid")
		require.Equal(t, 1, code)
		require.Contains(t, errOut, "400")

		code, out, errOut = runClient(t, nil, "submit", "--server="+m.Addr(), "--type", "noop")
		require.Equal(t, 0, code, errOut)
		job := decodeJob(t, out)
		newAPIClient(t, "http://"+m.Addr()).waitStatus(job.ID, "completed")
		code, _, errOut = runClient(t, nil, "cancel", "--server="+m.Addr(), job.ID)
		require.Equal(t, 1, code)
		require.Contains(t, errOut, "(409 ")
		code, _, errOut = runClient(t, nil, "retry", "--server="+m.Addr(), job.ID)
		require.Equal(t, 1, code)
		require.Contains(t, errOut, "only failed or canceled jobs can be retried")

		code, _, errOut = runClient(t, nil, "list", server, "--status", "sleepy")
		require.Equal(t, 1, code)
		require.Contains(t, errOut, "status")
	})

	t.Run("tokens come from the flag or the environment", func(t *testing.T) {
		t.Parallel()
		cfg := memoryConfig()
		cfg.APITokens = []string{"s3cret"}
		m := startMain(t, cfg)

		code, _, errOut := runClient(t, nil, "list", "--server", m.Addr())
		require.Equal(t, 1, code)
		require.Contains(t, errOut, "(401 Unauthorized)")

		code, _, errOut = runClient(t, nil, "list", "--server", m.Addr(), "--token", "s3cret")
		require.Equal(t, 0, code, errOut)
		code, _, errOut = runClient(t, []string{"TROUPE_HTTP_ADDR=" + m.Addr(), "TROUPE_API_TOKEN=s3cret"}, "list")
		require.Equal(t, 0, code, errOut)
		code, _, errOut = runClient(t, []string{"TROUPE_HTTP_ADDR=" + m.Addr(), "TROUPE_API_TOKENS=s3cret,other"}, "list")
		require.Equal(t, 0, code, errOut)

		env, stdout, _, _ := testEnv("TROUPE_API_TOKEN=s3cret")
		require.Equal(t, 0, run(t.Context(), []string{"list", "--help"}, env))
		require.NotContains(t, stdout.String(), "s3cret", "help does not show the token")
	})

	t.Run("a server that cannot be reached is an error", func(t *testing.T) {
		t.Parallel()
		var lc net.ListenConfig
		ln, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := ln.Addr().String()
		require.NoError(t, ln.Close())
		code, _, errOut := runClient(t, nil, "get", "--server", addr, uuid.NewString())
		require.Equal(t, 1, code)
		require.Contains(t, errOut, "cannot reach the server at http://"+addr)
	})

	t.Run("an answer that is not a problem is shown as it is", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, _ *nethttp.Request) {
			nethttp.Error(w, "upstream gone", nethttp.StatusBadGateway)
		}))
		t.Cleanup(srv.Close)
		code, _, errOut := runClient(t, nil, "get", "--server", srv.URL, uuid.NewString())
		require.Equal(t, 1, code)
		require.Contains(t, errOut, "the server answered 502 Bad Gateway: upstream gone")
	})

	t.Run("requests are what the API expects", func(t *testing.T) {
		t.Parallel()
		var got *nethttp.Request
		var body map[string]any
		srv := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
			got = r
			body = nil
			_ = json.NewDecoder(r.Body).Decode(&body)
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"ok":true}`))
		}))
		t.Cleanup(srv.Close)

		payload := filepath.Join(t.TempDir(), "payload.json")
		require.NoError(t, os.WriteFile(payload, []byte(`{"to": "ada@example.com"}`+"\n"), 0o600))
		code, out, errOut := runClient(t, nil, "submit", "--server", srv.URL, "--token", "tok", "--type", "send_email", "--payload", "@"+payload, "--max-attempts", "4")
		require.Equal(t, 0, code, errOut)
		require.Equal(t, "{\n  \"ok\": true\n}\n", out)
		require.Equal(t, nethttp.MethodPost, got.Method)
		require.Equal(t, "/jobs", got.URL.Path)
		require.Equal(t, "Bearer tok", got.Header.Get("Authorization"))
		require.Equal(t, map[string]any{"type": "send_email", "payload": map[string]any{"to": "ada@example.com"}, "maxAttempts": float64(4)}, body)

		code, _, errOut = runClient(t, nil, "list", "--server", srv.URL, "--status", "failed", "--status", "canceled", "--type", "sleep", "--limit", "3", "--offset", "6")
		require.Equal(t, 0, code, errOut)
		require.Equal(t, "/jobs", got.URL.Path)
		require.Equal(t, []string{"failed", "canceled"}, got.URL.Query()["status"])
		require.Equal(t, "sleep", got.URL.Query().Get("type"))
		require.Equal(t, "3", got.URL.Query().Get("limit"))
		require.Equal(t, "6", got.URL.Query().Get("offset"))

		code, _, errOut = runClient(t, nil, "cancel", "--server", srv.URL, "abc")
		require.Equal(t, 0, code, errOut)
		require.Equal(t, nethttp.MethodDelete, got.Method)
		require.Equal(t, "/jobs/abc", got.URL.Path)

		code, _, errOut = runClient(t, nil, "retry", "--server", srv.URL, "abc")
		require.Equal(t, 0, code, errOut)
		require.Equal(t, nethttp.MethodPost, got.Method)
		require.Equal(t, "/jobs/abc/retry", got.URL.Path)
		require.Zero(t, got.ContentLength, "a retry sends no body")

		code, _, errOut = runClient(t, nil, "submit", "--server", srv.URL, "--type", "noop")
		require.Equal(t, 0, code, errOut)
		require.Equal(t, map[string]any{"type": "noop"}, body, "no --payload sends none")
	})

	t.Run("mistakes are caught before any request", func(t *testing.T) {
		t.Parallel()
		for _, tt := range []struct {
			args []string
			want string
		}{
			{args: []string{"submit", "--payload", "{}"}, want: `required flag(s) "type" not set`},
			{args: []string{"submit", "--type", "noop", "--payload", "{nope"}, want: "--payload is not valid JSON"},
			{args: []string{"submit", "--type", "noop", "--payload", "@/nonexistent.json"}, want: "read --payload"},
			{args: []string{"submit", "--type", "noop", "--payload", ""}, want: "--payload is not valid JSON"},
			{args: []string{"get"}, want: "accepts 1 arg(s), received 0"},
			{args: []string{"retry"}, want: "accepts 1 arg(s), received 0"},
			{args: []string{"get", "--server", "ftp://x", "id"}, want: "want an http or https URL"},
		} {
			code, out, errOut := runClient(t, nil, tt.args...)
			require.Equal(t, 1, code, tt.args)
			require.Empty(t, out)
			require.Contains(t, errOut, tt.want)
		}
	})
}

func TestServerURL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"127.0.0.1:8080":          "http://127.0.0.1:8080",
		"0.0.0.0:8080":            "http://127.0.0.1:8080",
		":8080":                   "http://127.0.0.1:8080",
		"[::]:8080":               "http://[::1]:8080",
		"https://troupe.example/": "https://troupe.example",
		"http://h:1/api/":         "http://h:1/api",
	} {
		u, err := serverURL(in)
		require.NoError(t, err, in)
		require.Equal(t, want, u.String(), in)
	}
}
