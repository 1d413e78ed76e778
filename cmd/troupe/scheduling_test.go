package main

import (
	"encoding/json"
	"io"
	nethttp "net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/http"
)

// post sends a JSON body with the headers and returns the answer's status,
// headers and body.
func post(t *testing.T, url, body string, header map[string]string) (int, nethttp.Header, string) {
	t.Helper()
	req, err := nethttp.NewRequestWithContext(t.Context(), nethttp.MethodPost, url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := nethttp.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, string(data)
}

// TestServerSchedulingWiring runs the server in-process, as serve wires
// it, and checks what the API adds over the runtime: the Idempotency-Key
// record kept in the store, duplicates answered 200, queues paused and
// resumed through the API, and a job submitted for later.
func TestServerSchedulingWiring(t *testing.T) {
	t.Parallel()
	m := startMain(t, memoryConfig())
	base := "http://" + m.Addr()

	t.Run("IdempotencyKeyGoesThroughTheStore", func(t *testing.T) {
		t.Parallel()
		key := map[string]string{http.HeaderIdempotencyKey: "wiring-1"}
		body := `{"type":"sleep","payload":{"ms":1},"delay":"1h"}`

		status, _, first := post(t, base+"/jobs", body, key)
		require.Equal(t, nethttp.StatusCreated, status, first)
		status, header, again := post(t, base+"/jobs", body, key)
		require.Equal(t, nethttp.StatusCreated, status)
		require.Equal(t, first, again)
		require.Equal(t, "true", header.Get(http.HeaderIdempotentReplayed))

		status, _, other := post(t, base+"/jobs", `{"type":"noop"}`, key)
		require.Equal(t, nethttp.StatusUnprocessableEntity, status, other)
	})

	t.Run("DuplicateIsOK", func(t *testing.T) {
		t.Parallel()
		body := `{"type":"sleep","payload":{"ms":1},"delay":"1h","uniqueKey":"wiring-unique"}`

		status, _, first := post(t, base+"/jobs", body, nil)
		require.Equal(t, nethttp.StatusCreated, status, first)
		status, header, again := post(t, base+"/jobs", body, nil)
		require.Equal(t, nethttp.StatusOK, status, again)
		var a, b jobJSON
		require.NoError(t, json.Unmarshal([]byte(first), &a))
		require.NoError(t, json.Unmarshal([]byte(again), &b))
		require.Equal(t, a.ID, b.ID)
		require.Equal(t, "/jobs/"+a.ID, header.Get("Location"))
	})

	t.Run("PauseAndResume", func(t *testing.T) {
		t.Parallel()
		status, _, out := post(t, base+"/queues/wiring/pause", "", nil)
		require.Equal(t, nethttp.StatusOK, status, out)
		var paused queueJSON
		require.NoError(t, json.Unmarshal([]byte(out), &paused), out)
		require.Equal(t, queueJSON{Name: "wiring", Paused: true}, withoutWaiting(paused), out)

		api := newAPIClient(t, base)
		q := queueNamed(t, api.mustCall(nethttp.MethodGet, "/queues", "", nethttp.StatusOK), "wiring")
		require.Equal(t, queueJSON{Name: "wiring", Paused: true}, withoutWaiting(q))

		status, _, out = post(t, base+"/queues/wiring/resume", "", nil)
		require.Equal(t, nethttp.StatusOK, status, out)
		require.Contains(t, out, `"paused":false`)
	})

	t.Run("ScheduledForLater", func(t *testing.T) {
		t.Parallel()
		before := time.Now()
		status, _, out := post(t, base+"/jobs", `{"type":"noop","delay":"2h","queue":"later","priority":2,"timeout":"1m"}`, nil)
		require.Equal(t, nethttp.StatusCreated, status, out)
		var job struct {
			jobJSON
			RunAt    time.Time `json:"runAt"`
			Queue    string    `json:"queue"`
			Priority int       `json:"priority"`
			Timeout  string    `json:"timeout"`
		}
		require.NoError(t, json.Unmarshal([]byte(out), &job))
		require.Equal(t, "scheduled", job.Status)
		require.WithinRange(t, job.RunAt, before.Add(2*time.Hour-time.Second), time.Now().Add(2*time.Hour))
		require.Equal(t, "later", job.Queue)
		require.Equal(t, 2, job.Priority)
		require.Equal(t, "1m0s", job.Timeout)
	})
}

func TestClientScheduling(t *testing.T) {
	t.Parallel()

	t.Run("SubmitSendsTheFlags", func(t *testing.T) {
		t.Parallel()
		var got map[string]any
		var gotKey string
		srv := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
			gotKey, got = r.Header.Get(http.HeaderIdempotencyKey), nil
			require.NoError(t, json.NewDecoder(r.Body).Decode(&got))
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(nethttp.StatusCreated)
			_, _ = w.Write([]byte(`{"id":"x"}`))
		}))
		t.Cleanup(srv.Close)

		code, _, errOut := runClient(t, nil, "submit", "--server", srv.URL, "--type", "noop",
			"--queue", "reports", "--priority", "1", "--in", "5m", "--unique-key", "k", "--unique-for", "1h",
			"--timeout", "0s", "--idempotency-key", "retry-me")
		require.Equal(t, 0, code, errOut)
		require.Equal(t, map[string]any{"type": "noop", "queue": "reports", "priority": float64(1), "delay": "5m",
			"uniqueKey": "k", "uniqueFor": "1h", "timeout": "0s"}, got)
		require.Equal(t, "retry-me", gotKey)

		code, _, errOut = runClient(t, nil, "submit", "--server", srv.URL, "--type", "noop", "--at", "2030-01-02T03:04:05Z")
		require.Equal(t, 0, code, errOut)
		require.Equal(t, map[string]any{"type": "noop", "runAt": "2030-01-02T03:04:05Z"}, got, "unset flags send nothing")
		require.Empty(t, gotKey)
	})

	t.Run("SubmitChecksTheFlags", func(t *testing.T) {
		t.Parallel()
		for _, tt := range []struct {
			args []string
			want string
		}{
			{[]string{"--in", "5"}, `invalid --in "5": want a duration with a unit`},
			{[]string{"--at", "tomorrow"}, `invalid --at "tomorrow": want an RFC 3339 time`},
			{[]string{"--in", "5m", "--at", "2030-01-02T03:04:05Z"}, "[at in] were all set"},
			{[]string{"--timeout", "soon"}, `invalid --timeout "soon"`},
			{[]string{"--unique-for", "a day"}, `invalid --unique-for "a day"`},
		} {
			args := append([]string{"submit", "--server", "127.0.0.1:1", "--type", "noop"}, tt.args...)
			code, _, errOut := runClient(t, nil, args...)
			require.Equal(t, 1, code, tt.args)
			require.Contains(t, errOut, tt.want)
		}
	})

	t.Run("AgainstAServer", func(t *testing.T) {
		t.Parallel()
		m := startMain(t, memoryConfig())
		server := "--server=" + m.Addr()

		code, out, errOut := runClient(t, nil, "submit", server, "--type", "noop", "--queue", "cli", "--priority", "3", "--in", "1h", "--unique-key", "cli-1")
		require.Equal(t, 0, code, errOut)
		job := decodeJob(t, out)
		require.Equal(t, "scheduled", job.Status)
		code, out, errOut = runClient(t, nil, "submit", server, "--type", "noop", "--unique-key", "cli-1")
		require.Equal(t, 0, code, errOut)
		require.Equal(t, job.ID, decodeJob(t, out).ID, "the duplicate prints the job that holds the key")

		code, out, errOut = runClient(t, nil, "list", server, "--status", "scheduled", "--queue", "cli")
		require.Equal(t, 0, code, errOut)
		var page listJSON
		require.NoError(t, json.Unmarshal([]byte(out), &page))
		require.Equal(t, 1, page.Total)

		code, out, errOut = runClient(t, nil, "queues", "pause", server, "cli")
		require.Equal(t, 0, code, errOut)
		var q http.QueueResponse
		require.NoError(t, json.Unmarshal([]byte(out), &q), out)
		require.True(t, q.Paused)
		require.Equal(t, "cli", q.Name)

		code, out, errOut = runClient(t, nil, "queues", server)
		require.Equal(t, 0, code, errOut)
		require.Equal(t, queueJSON{Name: "cli", Paused: true, Scheduled: 1}, withoutWaiting(queueNamed(t, []byte(out), "cli")))

		code, out, errOut = runClient(t, nil, "queues", "resume", server, "cli")
		require.Equal(t, 0, code, errOut)
		require.Contains(t, out, `"paused": false`)

		code, _, errOut = runClient(t, nil, "queues", "pause", server, "Not-A-Queue")
		require.Equal(t, 1, code)
		require.Contains(t, errOut, "name must match")
	})
}
