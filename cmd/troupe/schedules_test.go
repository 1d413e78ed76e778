package main

import (
	"encoding/json"
	"io"
	nethttp "net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// recordedRequest is what a fake server saw of one request.
type recordedRequest struct {
	method, path, auth string
	body               map[string]any
}

// fakeScheduleServer answers every request with answer (status and body)
// and records the last request.
type fakeScheduleServer struct {
	mu     sync.Mutex
	last   recordedRequest
	status int
	answer string
}

func (f *fakeScheduleServer) ServeHTTP(w nethttp.ResponseWriter, r *nethttp.Request) {
	data, _ := io.ReadAll(r.Body)
	var body map[string]any
	if len(data) > 0 {
		_ = json.Unmarshal(data, &body)
	}
	f.mu.Lock()
	f.last = recordedRequest{method: r.Method, path: r.URL.EscapedPath(), auth: r.Header.Get("Authorization"), body: body}
	status, answer := f.status, f.answer
	f.mu.Unlock()
	if answer != "" {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, answer)
}

func (f *fakeScheduleServer) set(status int, answer string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status, f.answer = status, answer
}

func (f *fakeScheduleServer) request() recordedRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last
}

func TestSchedulesCommand(t *testing.T) {
	t.Parallel()

	t.Run("each command sends what the API expects", func(t *testing.T) {
		t.Parallel()
		fake := &fakeScheduleServer{}
		srv := httptest.NewServer(fake)
		t.Cleanup(srv.Close)

		for _, tt := range []struct {
			args         []string
			status       int
			method, path string
		}{
			{[]string{"schedules", "get", "nightly"}, nethttp.StatusOK, nethttp.MethodGet, "/schedules/nightly"},
			{[]string{"schedules", "delete", "nightly"}, nethttp.StatusNoContent, nethttp.MethodDelete, "/schedules/nightly"},
			{[]string{"schedules", "pause", "nightly"}, nethttp.StatusOK, nethttp.MethodPost, "/schedules/nightly/pause"},
			{[]string{"schedules", "resume", "nightly"}, nethttp.StatusOK, nethttp.MethodPost, "/schedules/nightly/resume"},
			{[]string{"schedules", "trigger", "nightly"}, nethttp.StatusCreated, nethttp.MethodPost, "/schedules/nightly/trigger"},
			{[]string{"schedules", "--json"}, nethttp.StatusOK, nethttp.MethodGet, "/schedules"},
			{[]string{"schedules", "list", "--json"}, nethttp.StatusOK, nethttp.MethodGet, "/schedules"},
		} {
			answer := `{"name":"nightly"}`
			if tt.status == nethttp.StatusNoContent {
				answer = ""
			}
			fake.set(tt.status, answer)
			code, out, errOut := runClient(t, nil, append(tt.args, "--server", srv.URL, "--token", "tok")...)
			require.Equal(t, 0, code, "%v: %s", tt.args, errOut)
			got := fake.request()
			require.Equal(t, tt.method, got.method, tt.args)
			require.Equal(t, tt.path, got.path, tt.args)
			require.Equal(t, "Bearer tok", got.auth, tt.args)
			require.Nil(t, got.body, "%v sends no body", tt.args)
			if answer == "" {
				require.Empty(t, out, "%v: a 204 prints nothing", tt.args)
			} else {
				require.Equal(t, "{\n  \"name\": \"nightly\"\n}\n", out, tt.args)
			}
		}
	})

	t.Run("put sends the file's schedule, from YAML or JSON", func(t *testing.T) {
		t.Parallel()
		fake := &fakeScheduleServer{}
		fake.set(nethttp.StatusCreated, `{"name":"nightly-report"}`)
		srv := httptest.NewServer(fake)
		t.Cleanup(srv.Close)
		dir := t.TempDir()
		want := map[string]any{
			"name": "nightly-report", "cron": "0 3 * * *", "timezone": "Europe/Paris", "catchUp": "one",
			"job": map[string]any{
				"type": "generate_report", "payload": map[string]any{"day": "yesterday"},
				"queue": "reports", "priority": float64(3), "maxAttempts": float64(5), "timeout": "10m",
			},
		}

		yamlFile := filepath.Join(dir, "nightly.yaml")
		require.NoError(t, os.WriteFile(yamlFile, []byte(`
name: nightly-report
cron: "0 3 * * *"
timezone: Europe/Paris
catchUp: one
job: {type: generate_report, payload: {day: yesterday}, queue: reports, priority: 3, maxAttempts: 5, timeout: 10m}
`), 0o600))
		code, out, errOut := runClient(t, nil, "schedules", "put", "--file", yamlFile, "--server", srv.URL)
		require.Equal(t, 0, code, errOut)
		require.Contains(t, out, `"name": "nightly-report"`)
		got := fake.request()
		require.Equal(t, nethttp.MethodPut, got.method)
		require.Equal(t, "/schedules/nightly-report", got.path)
		require.Equal(t, want, got.body)

		// What get prints can be put back: the server's members are dropped.
		jsonFile := filepath.Join(dir, "nightly.json")
		require.NoError(t, os.WriteFile(jsonFile, []byte(`{"name":"nightly-report","cron":"0 3 * * *","timezone":"Europe/Paris",
			"catchUp":"one","paused":false,"source":"api","description":"at 03:00","nextRunAt":"2025-03-02T02:00:00Z",
			"lastRunAt":"2025-03-01T02:00:00Z","lastJobId":"x","lastJobStatus":"completed","createdAt":"2025-01-01T00:00:00Z","updatedAt":"2025-01-01T00:00:00Z",
			"job":{"type":"generate_report","payload":{"day":"yesterday"},"queue":"reports","priority":3,"maxAttempts":5,"timeout":"10m"}}`), 0o600))
		code, _, errOut = runClient(t, nil, "schedules", "put", "-f", jsonFile, "--server", srv.URL)
		require.Equal(t, 0, code, errOut)
		want["paused"] = false
		require.Equal(t, want, fake.request().body)
	})

	t.Run("the list is a table", func(t *testing.T) {
		t.Parallel()
		next := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
		fake := &fakeScheduleServer{}
		fake.set(nethttp.StatusOK, `{"schedules":[
			{"name":"heartbeat","cron":"@every 30s","description":"every 30 seconds","timezone":"UTC","paused":true,"source":"config"},
			{"name":"nightly-report","cron":"0 3 * * *","description":"at 03:00","timezone":"Europe/Paris","source":"api",
			 "nextRunAt":"`+next.Format(time.RFC3339)+`","lastRunAt":"2025-03-01T02:00:00Z","lastJobId":"j1","lastJobStatus":"completed"}]}`)
		srv := httptest.NewServer(fake)
		t.Cleanup(srv.Close)

		for _, args := range [][]string{{"schedules"}, {"schedules", "list"}} {
			code, out, errOut := runClient(t, nil, append(args, "--server", srv.URL)...)
			require.Equal(t, 0, code, errOut)
			lines := strings.Split(strings.TrimSpace(out), "\n")
			require.Len(t, lines, 3, out)
			require.Equal(t, []string{"NAME", "SCHEDULE", "TIMEZONE", "NEXT", "RUN", "LAST", "RUN", "LAST", "STATUS", "PAUSED", "SOURCE"}, strings.Fields(lines[0]))
			require.Equal(t, []string{"heartbeat", "every", "30", "seconds", "UTC", "-", "-", "-", "true", "config"}, strings.Fields(lines[1]))
			require.True(t, strings.HasPrefix(lines[2], "nightly-report"), lines[2])
			for _, want := range []string{"at 03:00", "Europe/Paris", next.Format("2006-01-02 15:04:05Z") + " (in ", "2025-03-01 02:00:00Z (", " ago)", "completed", "false", "api"} {
				require.Contains(t, lines[2], want)
			}
			require.Equal(t, nethttp.MethodGet, fake.request().method)
			require.Equal(t, "/schedules", fake.request().path)
		}

		fake.set(nethttp.StatusOK, `{"schedules":[]}`)
		code, out, _ := runClient(t, nil, "schedules", "--server", srv.URL)
		require.Equal(t, 0, code)
		require.Equal(t, "no schedules\n", out)
	})

	t.Run("every command against the real API", func(t *testing.T) {
		t.Parallel()
		m := startMain(t, memoryConfig())
		server := "--server=" + m.Addr()
		file := filepath.Join(t.TempDir(), "cli-demo.yaml")
		require.NoError(t, os.WriteFile(file, []byte("name: cli-demo\ncron: '0 3 * * *'\ntimezone: Europe/Paris\njob: {type: noop, payload: {from: cli}}\n"), 0o600))

		code, out, errOut := runClient(t, nil, "schedules", "put", "--file", file, server)
		require.Equal(t, 0, code, errOut)
		var put scheduleJSON
		require.NoError(t, json.Unmarshal([]byte(out), &put), out)
		require.Equal(t, "cli-demo", put.Name)
		require.Equal(t, "api", put.Source)
		require.Equal(t, "Europe/Paris", put.Timezone)
		require.NotEmpty(t, put.Description)
		require.False(t, put.NextRunAt.IsZero())

		code, out, errOut = runClient(t, nil, "schedules", "pause", "cli-demo", server)
		require.Equal(t, 0, code, errOut)
		require.Contains(t, out, `"paused": true`)
		code, out, errOut = runClient(t, nil, "schedules", server)
		require.Equal(t, 0, code, errOut)
		row := strings.Fields(strings.Split(strings.TrimSpace(out), "\n")[1])
		require.Equal(t, "cli-demo", row[0])
		require.Equal(t, []string{"true", "api"}, row[len(row)-2:], "paused, source: %s", out)

		code, out, errOut = runClient(t, nil, "schedules", "trigger", "cli-demo", server)
		require.Equal(t, 0, code, errOut)
		var job slotJobJSON
		require.NoError(t, json.Unmarshal([]byte(out), &job), out)
		require.Equal(t, "cli-demo", job.Schedule, "a paused schedule can be triggered")
		require.JSONEq(t, `{"from":"cli"}`, string(job.Payload))
		newAPIClient(t, "http://"+m.Addr()).waitStatus(job.ID, "completed")

		code, out, errOut = runClient(t, nil, "schedules", "resume", "cli-demo", server)
		require.Equal(t, 0, code, errOut)
		require.Contains(t, out, `"paused": false`)
		code, out, errOut = runClient(t, nil, "schedules", "get", "cli-demo", server)
		require.Equal(t, 0, code, errOut)
		var got scheduleJSON
		require.NoError(t, json.Unmarshal([]byte(out), &got), out)
		require.Equal(t, job.ID, got.LastJobID)
		require.Equal(t, "completed", got.LastJobStatus)
		code, out, errOut = runClient(t, nil, "schedules", "list", "--json", server)
		require.Equal(t, 0, code, errOut)
		var list schedulesJSON
		require.NoError(t, json.Unmarshal([]byte(out), &list), out)
		require.Len(t, list.Schedules, 1)

		code, out, errOut = runClient(t, nil, "schedules", "delete", "cli-demo", server)
		require.Equal(t, 0, code, errOut)
		require.Empty(t, out)
		code, _, errOut = runClient(t, nil, "schedules", "get", "cli-demo", server)
		require.Equal(t, 1, code)
		require.Contains(t, errOut, "(404 ")
	})

	t.Run("an error answer is reported", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, _ *nethttp.Request) {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(nethttp.StatusConflict)
			_, _ = io.WriteString(w, `{"title":"Conflict","status":409,"detail":"schedule \"nightly\" is declared in the config file"}`)
		}))
		t.Cleanup(srv.Close)
		code, out, errOut := runClient(t, nil, "schedules", "delete", "nightly", "--server", srv.URL)
		require.Equal(t, 1, code)
		require.Empty(t, out)
		require.Contains(t, errOut, `schedule "nightly" is declared in the config file (409 Conflict)`)
	})

	t.Run("mistakes are caught before any request", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		noName := filepath.Join(dir, "noname.yaml")
		require.NoError(t, os.WriteFile(noName, []byte("cron: '@daily'\njob: {type: noop}\n"), 0o600))
		bad := filepath.Join(dir, "bad.yaml")
		require.NoError(t, os.WriteFile(bad, []byte("name: [\n"), 0o600))
		empty := filepath.Join(dir, "empty.yaml")
		require.NoError(t, os.WriteFile(empty, nil, 0o600))
		for _, tt := range []struct {
			args []string
			want string
		}{
			{[]string{"schedules", "put"}, `required flag(s) "file" not set`},
			{[]string{"schedules", "put", "--file", noName}, "has no name"},
			{[]string{"schedules", "put", "--file", bad}, "is neither JSON nor YAML"},
			{[]string{"schedules", "put", "--file", empty}, "is empty"},
			{[]string{"schedules", "put", "--file", filepath.Join(dir, "missing.yaml")}, "read --file"},
			{[]string{"schedules", "get"}, "accepts 1 arg(s), received 0"},
			{[]string{"schedules", "pause", "a", "b"}, "accepts 1 arg(s), received 2"},
		} {
			code, out, errOut := runClient(t, nil, append(tt.args, "--server", "127.0.0.1:1")...)
			require.Equal(t, 1, code, tt.args)
			require.Empty(t, out)
			require.Contains(t, errOut, tt.want, tt.args)
		}
	})
}
