package http

import (
	"context"
	"encoding/json"
	nethttp "net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
)

func TestRequestID(t *testing.T) {
	t.Parallel()

	t.Run("GeneratedWhenAbsent", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})

		first := b.do(t, request{method: "GET", target: "/health"}).Header().Get(HeaderRequestID)
		second := b.do(t, request{method: "GET", target: "/health"}).Header().Get(HeaderRequestID)

		_, err := uuid.Parse(first)
		require.NoError(t, err)
		require.NotEqual(t, first, second)
	})

	t.Run("EchoedWhenSane", func(t *testing.T) {
		t.Parallel()
		for _, id := range []string{"abc-123", "Root=1-67891233:abcdef/x+y", strings.Repeat("a", maxRequestIDLength)} {
			t.Run(id[:min(len(id), 16)], func(t *testing.T) {
				t.Parallel()
				b := setup(t, Config{})

				rec := b.do(t, request{method: "GET", target: "/health", header: map[string]string{HeaderRequestID: id}})

				require.Equal(t, id, rec.Header().Get(HeaderRequestID))
			})
		}
	})

	t.Run("ReplacedWhenNotSane", func(t *testing.T) {
		t.Parallel()
		tests := map[string]string{
			"TooLong":  strings.Repeat("a", maxRequestIDLength+1),
			"Spaces":   "a b",
			"Quotes":   `a"b`,
			"NonASCII": "idé",
			"Brackets": "<script>",
		}
		for name, id := range tests {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				b := setup(t, Config{})

				rec := b.do(t, request{method: "GET", target: "/health", header: map[string]string{HeaderRequestID: id}})

				got := rec.Header().Get(HeaderRequestID)
				require.NotEqual(t, id, got)
				_, err := uuid.Parse(got)
				require.NoError(t, err)
			})
		}
	})

	t.Run("OnEveryKindOfAnswer", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{APITokens: []string{"s3cret"}})
		for _, r := range []request{
			{method: "GET", target: "/nowhere"},
			{method: "PUT", target: "/jobs"},
			{method: "GET", target: "/jobs"},
			{method: "GET", target: "/openapi.yaml"},
			{method: "GET", target: "/jobs/42", header: map[string]string{"Authorization": "Bearer s3cret"}},
		} {
			rec := b.do(t, r)
			require.NotEmpty(t, rec.Header().Get(HeaderRequestID), "%s %s", r.method, r.target)
			require.Equal(t, "nosniff", rec.Header().Get("X-Content-Type-Options"))
		}
	})
}

// logLines decodes the JSON log lines with the given message.
func logLines(t *testing.T, logs, msg string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), line)
		if m["msg"] == msg {
			lines = append(lines, m)
		}
	}
	return lines
}

func TestRequestLog(t *testing.T) {
	t.Parallel()

	t.Run("InfoLine", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		b.svc.GetFunc = func(context.Context, uuid.UUID) (*domain.Job, error) { return nil, domain.ErrNotFound }
		id := uuid.New()

		b.do(t, request{method: "GET", target: jobsPath(id), header: map[string]string{HeaderRequestID: "log-1"}})

		lines := logLines(t, b.logs.String(), "http request")
		require.Len(t, lines, 1)
		line := lines[0]
		require.Equal(t, "INFO", line["level"])
		require.Equal(t, "GET", line["method"])
		require.Equal(t, jobsPath(id), line["path"])
		require.EqualValues(t, nethttp.StatusNotFound, line["status"])
		require.Equal(t, "log-1", line["requestID"])
		require.Contains(t, line, "latency")
	})

	t.Run("DebugForProbesAndScrapes", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})

		b.do(t, request{method: "GET", target: "/health"})
		b.do(t, request{method: "GET", target: "/metrics"})

		lines := logLines(t, b.logs.String(), "http request")
		require.Len(t, lines, 2)
		for _, line := range lines {
			require.Equal(t, "DEBUG", line["level"], line["path"])
		}
	})
}

func TestRecoverPanics(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	b.svc.GetFunc = func(context.Context, uuid.UUID) (*domain.Job, error) {
		panic("kaboom: secret internal state")
	}

	rec := b.do(t, request{method: "GET", target: jobsPath(uuid.New()), header: map[string]string{HeaderRequestID: "panic-1"}})

	p := requireProblem(t, rec, nethttp.StatusInternalServerError, ProblemTypeInternal)
	require.Contains(t, p.Detail, "panic-1")
	body := rec.Body.String()
	require.NotContains(t, body, "kaboom")
	require.NotContains(t, body, "goroutine")
	require.NotContains(t, body, ".go:")

	panics := logLines(t, b.logs.String(), "http: panic serving request")
	require.Len(t, panics, 1)
	require.Equal(t, "panic-1", panics[0]["requestID"])
	require.Equal(t, "kaboom: secret internal state", panics[0]["panic"])
	require.Contains(t, panics[0]["stack"], "goroutine")
	requests := logLines(t, b.logs.String(), "http request")
	require.Len(t, requests, 1)
	require.EqualValues(t, nethttp.StatusInternalServerError, requests[0]["status"], "the request log sees the 500")
}

func TestAuth(t *testing.T) {
	t.Parallel()

	okList := func(b *testBundle) {
		b.svc.ListFunc = func(context.Context, domain.Filter) (domain.Page, error) {
			return domain.Page{Jobs: []*domain.Job{}}, nil
		}
	}

	t.Run("OffWithoutTokens", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		okList(b)

		rec := b.do(t, request{method: "GET", target: "/jobs"})

		require.Equal(t, nethttp.StatusOK, rec.Code)
	})

	t.Run("MissingToken", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{APITokens: []string{"s3cret"}})

		for _, r := range []request{
			{method: "GET", target: "/jobs"},
			{method: "POST", target: "/jobs", body: `{"type":"noop"}`},
			{method: "GET", target: jobsPath(uuid.New())},
			{method: "DELETE", target: jobsPath(uuid.New())},
			{method: "GET", target: "/metrics"},
			{method: "GET", target: "/jobs", header: map[string]string{"Authorization": "Basic czNjcmV0"}},
			{method: "GET", target: "/jobs", header: map[string]string{"Authorization": "Bearer"}},
		} {
			rec := b.do(t, r)

			p := requireProblem(t, rec, nethttp.StatusUnauthorized, ProblemTypeUnauthorized)
			require.Equal(t, `Bearer realm="troupe"`, rec.Header().Get("WWW-Authenticate"))
			require.Contains(t, p.Detail, "Authorization: Bearer")
		}
	})

	t.Run("WrongToken", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{APITokens: []string{"s3cret", "other"}})

		for _, token := range []string{"s3cre", "s3cret2", "S3CRET", "s3cret other", "x"} {
			rec := b.do(t, request{method: "GET", target: "/jobs", header: map[string]string{"Authorization": "Bearer " + token}})

			requireProblem(t, rec, nethttp.StatusUnauthorized, ProblemTypeUnauthorized)
			require.Equal(t, `Bearer realm="troupe", error="invalid_token"`, rec.Header().Get("WWW-Authenticate"))
		}
	})

	t.Run("AnyConfiguredTokenWorks", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{APITokens: []string{"first-token", "second-token", "third-token"}})
		okList(b)

		for _, header := range []string{"Bearer first-token", "Bearer second-token", "Bearer third-token", "bearer third-token", "BEARER  first-token"} {
			rec := b.do(t, request{method: "GET", target: "/jobs", header: map[string]string{"Authorization": header}})

			require.Equal(t, nethttp.StatusOK, rec.Code, header)
		}
	})

	t.Run("OpenRoutes", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{APITokens: []string{"s3cret"}})

		for _, path := range []string{"/health", "/openapi.yaml", "/docs", "/docs/", "/docs/swagger-ui.css"} {
			rec := b.do(t, request{method: "GET", target: path})

			require.Equal(t, nethttp.StatusOK, rec.Code, path)
		}
	})
}

func TestTokenSet(t *testing.T) {
	t.Parallel()
	set := newTokenSet([]string{"alpha-token", "beta", "gamma-token-that-is-long"})
	tests := []struct {
		token string
		want  bool
	}{
		{"alpha-token", true},
		{"beta", true},
		{"gamma-token-that-is-long", true}, // the last one: every token is compared
		{"", false},
		{"alpha", false},         // a prefix
		{"alpha-token-x", false}, // longer
		{"Alpha-token", false},   // case matters
		{"gamma-token-that", false},
	}
	for _, tt := range tests {
		t.Run(tt.token, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, set.contains(tt.token))
		})
	}

	t.Run("Empty", func(t *testing.T) {
		t.Parallel()
		empty := newTokenSet(nil)
		require.False(t, empty.enabled())
		require.False(t, empty.contains(""))
	})
}

func TestUnknownRoutes(t *testing.T) {
	t.Parallel()

	t.Run("NotFound", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		for _, path := range []string{"/nowhere", "/jobs/", "/jobs/x/y", "/docs/missing.js", "/health/"} {
			rec := b.do(t, request{method: "GET", target: path})

			p := requireProblem(t, rec, nethttp.StatusNotFound, ProblemTypeNotFound)
			require.Contains(t, p.Detail, path)
			require.Empty(t, rec.Header().Get("Location"), "no redirects")
		}
	})

	t.Run("MethodNotAllowed", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		tests := []struct {
			method, path, allow string
		}{
			{"PUT", "/jobs", "GET, HEAD, POST"},
			{"PATCH", jobsPath(uuid.New()), "GET, HEAD, DELETE"},
			{"POST", "/health", "GET, HEAD"},
			{"HEAD", jobsPath(uuid.New()) + "/retry", "POST"},
		}
		for _, tt := range tests {
			rec := b.do(t, request{method: tt.method, target: tt.path})

			p := requireProblem(t, rec, nethttp.StatusMethodNotAllowed, ProblemTypeMethodNotAllowed)
			require.ElementsMatch(t, strings.Split(tt.allow, ", "), strings.Split(rec.Header().Get("Allow"), ", "))
			require.Contains(t, p.Detail, tt.method)
		}
	})
}
