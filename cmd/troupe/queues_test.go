package main

import (
	"encoding/json"
	nethttp "net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// queueJSON is a queue of GET /queues as the tests read it.
type queueJSON struct {
	Name   string `json:"name"`
	Paused bool   `json:"paused"`
	Limit  int    `json:"limit"`
	Rate   *struct {
		Count int    `json:"count"`
		Per   string `json:"per"`
		Burst int    `json:"burst"`
	} `json:"rate"`
	PerKey *struct {
		Limit int `json:"limit"`
	} `json:"perKey"`
	Ordered   bool           `json:"ordered"`
	Fair      bool           `json:"fair"`
	NodeLimit int            `json:"nodeLimit"`
	Scheduled int            `json:"scheduled"`
	Pending   int            `json:"pending"`
	Running   int            `json:"running"`
	Waiting   map[string]int `json:"waiting"`
}

// queueNamed returns the queue of a GET /queues answer, failing the test
// if it is not there.
func queueNamed(t *testing.T, answer []byte, name string) queueJSON {
	t.Helper()
	var out struct {
		Queues []queueJSON `json:"queues"`
	}
	require.NoError(t, json.Unmarshal(answer, &out), "%s", answer)
	for _, q := range out.Queues {
		if q.Name == name {
			return q
		}
	}
	require.Failf(t, "no such queue", "queue %s is not in %s", name, answer)
	return queueJSON{}
}

// withoutWaiting is q without its waiting counts, all zero for a queue
// without flow settings, so that it compares with a literal.
func withoutWaiting(q queueJSON) queueJSON {
	for _, n := range q.Waiting {
		if n != 0 {
			return q
		}
	}
	q.Waiting = nil
	return q
}

func TestQueuesSetCommand(t *testing.T) {
	t.Parallel()

	t.Run("the request replaces every setting", func(t *testing.T) {
		t.Parallel()
		var (
			method, path string
			body         map[string]any
		)
		srv := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
			method, path, body = r.Method, r.URL.EscapedPath(), nil
			_ = json.NewDecoder(r.Body).Decode(&body)
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"name":"email","limit":10}`))
		}))
		t.Cleanup(srv.Close)

		code, out, errOut := runClient(t, nil, "queues", "set", "email", "--server", srv.URL,
			"--limit", "10", "--rate", "20/1s", "--burst", "40", "--key-limit", "1", "--key-rate", "5/m", "--key-burst", "2", "--ordered", "--fair")
		require.Equal(t, 0, code, errOut)
		require.Equal(t, nethttp.MethodPut, method)
		require.Equal(t, "/queues/email", path)
		require.Equal(t, map[string]any{
			"limit":   float64(10),
			"rate":    map[string]any{"count": float64(20), "per": "1s", "burst": float64(40)},
			"perKey":  map[string]any{"limit": float64(1), "rate": map[string]any{"count": float64(5), "per": "1m0s", "burst": float64(2)}},
			"ordered": true,
			"fair":    true,
		}, body)
		require.Equal(t, "{\n  \"name\": \"email\",\n  \"limit\": 10\n}\n", out, "the answer is printed as sent")

		code, _, errOut = runClient(t, nil, "queues", "set", "email", "--server", srv.URL, "--rate", "100/1h30m")
		require.Equal(t, 0, code, errOut)
		require.Equal(t, map[string]any{"rate": map[string]any{"count": float64(100), "per": "1h30m0s"}}, body)

		code, _, errOut = runClient(t, nil, "queues", "set", "email", "--server", srv.URL, "--key-rate", "3/500ms")
		require.Equal(t, 0, code, errOut)
		require.Equal(t, map[string]any{"perKey": map[string]any{"rate": map[string]any{"count": float64(3), "per": "500ms"}}}, body)

		code, _, errOut = runClient(t, nil, "queues", "set", "email", "--server", srv.URL)
		require.Equal(t, 0, code, errOut)
		require.Empty(t, body, "no flag clears every setting")
	})

	t.Run("mistakes name their flag before any request", func(t *testing.T) {
		t.Parallel()
		for _, tt := range []struct {
			args []string
			want string
		}{
			{[]string{"--rate", "10/x"}, `invalid --rate "10/x": the period "x" is not a duration; want COUNT/PERIOD`},
			{[]string{"--rate", "10"}, `invalid --rate "10": want COUNT/PERIOD`},
			{[]string{"--rate", "ten/1s"}, `invalid --rate "ten/1s": the count "ten" is not a whole number`},
			{[]string{"--key-rate", "5/"}, `invalid --key-rate "5/": the period "" is not a duration`},
			{[]string{"--rate", "0/1s"}, "invalid --rate: must be between 1 and"},
			{[]string{"--rate", "5/0s"}, "invalid --rate: must be a duration between 1ms and 24h0m0s, got 0s"},
			{[]string{"--burst", "5"}, "--burst needs --rate"},
			{[]string{"--key-burst", "5"}, "--key-burst needs --key-rate"},
			{[]string{"--rate", "5/s", "--burst", "-1"}, "invalid --burst: must be between 0 (the count) and"},
			{[]string{"--limit", "-1"}, "invalid --limit: must be between 0 and"},
			{[]string{"--key-limit", "-2"}, "invalid --key-limit: must be between 0 and"},
			{[]string{"--ordered"}, "invalid --ordered: needs --key-limit 1"},
			{[]string{"--ordered", "--key-limit", "2"}, "invalid --ordered: needs --key-limit 1"},
			{[]string{"--key-limit", "0"}, "invalid --key-limit or --key-rate: needs a limit or a rate"},
		} {
			args := append([]string{"queues", "set", "email", "--server", "127.0.0.1:1"}, tt.args...)
			code, out, errOut := runClient(t, nil, args...)
			require.Equal(t, 1, code, tt.args)
			require.Empty(t, out)
			require.Contains(t, errOut, tt.want, tt.args)
			require.NotContains(t, errOut, "cannot reach", "no request was sent for %v", tt.args)
		}
		code, _, errOut := runClient(t, nil, "queues", "set", "--server", "127.0.0.1:1")
		require.Equal(t, 1, code)
		require.Contains(t, errOut, "accepts 1 arg(s), received 0")
	})

	t.Run("submit and list send the key", func(t *testing.T) {
		t.Parallel()
		var got *nethttp.Request
		var body map[string]any
		srv := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
			got, body = r, nil
			_ = json.NewDecoder(r.Body).Decode(&body)
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{}`))
		}))
		t.Cleanup(srv.Close)
		code, _, errOut := runClient(t, nil, "submit", "--server", srv.URL, "--type", "sync", "--key", "customer-42")
		require.Equal(t, 0, code, errOut)
		require.Equal(t, map[string]any{"type": "sync", "key": "customer-42"}, body)
		code, _, errOut = runClient(t, nil, "list", "--server", srv.URL, "--key", "customer-42", "--status", "pending")
		require.Equal(t, 0, code, errOut)
		require.Equal(t, "customer-42", got.URL.Query().Get("key"))

		for _, bad := range []string{"", strings.Repeat("k", 256), "a\x00b"} {
			code, _, errOut = runClient(t, nil, "submit", "--server", "127.0.0.1:1", "--type", "sync", "--key", bad)
			require.Equal(t, 1, code)
			require.Contains(t, errOut, "invalid --key")
			require.Contains(t, errOut, "want 1 to 255 bytes")
		}
	})
}

func TestParseRate(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]struct {
		count int
		per   time.Duration
	}{
		"20/1s":   {20, time.Second},
		"20/s":    {20, time.Second},
		"100/m":   {100, time.Minute},
		" 7 / 2h": {7, 2 * time.Hour},
		"1/1h30m": {1, 90 * time.Minute},
		"3/.5s":   {3, 500 * time.Millisecond},
	} {
		count, per, err := parseRate(in)
		require.NoError(t, err, in)
		require.Equal(t, want.count, count, in)
		require.Equal(t, want.per, per, in)
	}
	for _, bad := range []string{"", "10", "10/x", "/1s", "x/1s", "10/1", "10/s/s"} {
		_, _, err := parseRate(bad)
		require.Error(t, err, bad)
	}
}

// TestQueuesSetAgainstAServer sets a queue's settings with the CLI and
// reads them back with troupe queues, with the waiting counts.
func TestQueuesSetAgainstAServer(t *testing.T) {
	t.Parallel()
	m := startMain(t, memoryConfig())
	server := "--server=" + m.Addr()

	code, out, errOut := runClient(t, nil, "queues", "set", "cli-flow", server, "--limit", "1", "--rate", "50/1m", "--key-limit", "1", "--ordered")
	require.Equal(t, 0, code, errOut)
	var q queueJSON
	require.NoError(t, json.Unmarshal([]byte(out), &q), out)
	require.Equal(t, "cli-flow", q.Name)
	require.Equal(t, 1, q.Limit)
	require.NotNil(t, q.Rate)
	require.Equal(t, 50, q.Rate.Count)
	require.Equal(t, "1m0s", q.Rate.Per)
	require.Zero(t, q.Rate.Burst, "no burst is the default, the count")
	require.NotNil(t, q.PerKey)
	require.Equal(t, 1, q.PerKey.Limit)
	require.True(t, q.Ordered)

	// Two sleepers: one runs, the other waits for the queue's limit.
	var ids []string
	for _, key := range []string{"a", "b"} {
		code, out, errOut = runClient(t, nil, "submit", server, "--type", "sleep", "--payload", `{"ms": 60000}`, "--queue", "cli-flow", "--key", key)
		require.Equal(t, 0, code, errOut)
		ids = append(ids, decodeJob(t, out).ID)
	}
	api := newAPIClient(t, "http://"+m.Addr())
	waitFor(t, waitTimeout, "one job running and one waiting for the queue limit", func() (bool, error) {
		code, out, errOut := runClient(t, nil, "queues", server)
		if code != 0 {
			return false, errorString(errOut)
		}
		q := queueNamed(t, []byte(out), "cli-flow")
		return q.Running == 1 && q.Pending == 1 && q.Waiting["queue limit"] == 1, errorString(out)
	})
	code, out, errOut = runClient(t, nil, "list", server, "--queue", "cli-flow", "--key", "b")
	require.Equal(t, 0, code, errOut)
	var page struct {
		Jobs []struct {
			ID         string `json:"id"`
			Key        string `json:"key"`
			Status     string `json:"status"`
			WaitingFor string `json:"waitingFor"`
		} `json:"jobs"`
		Total int `json:"total"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &page), out)
	require.Equal(t, 1, page.Total)
	require.Equal(t, "b", page.Jobs[0].Key)
	require.Equal(t, "pending", page.Jobs[0].Status)
	require.Equal(t, "queue limit", page.Jobs[0].WaitingFor)

	// No flag clears the settings: the waiting job starts.
	code, out, errOut = runClient(t, nil, "queues", "set", "cli-flow", server)
	require.Equal(t, 0, code, errOut)
	var cleared queueJSON
	require.NoError(t, json.Unmarshal([]byte(out), &cleared), out)
	require.Zero(t, cleared.Limit)
	require.Nil(t, cleared.Rate)
	require.Nil(t, cleared.PerKey)
	require.False(t, cleared.Ordered)
	api.waitStatus(page.Jobs[0].ID, "running")
	for _, id := range ids {
		code, _, errOut = runClient(t, nil, "cancel", server, id)
		require.Equal(t, 0, code, errOut)
		api.waitStatus(id, "canceled")
	}

	code, _, errOut = runClient(t, nil, "queues", "set", "Not-A-Queue", server, "--limit", "1")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "name must match")
}

// errorString is a condition's reason to wait, shown if it times out.
type errorString string

func (e errorString) Error() string { return string(e) }
