package http

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/actors"
	"github.com/troupe-go/troupe/domain"
)

// TestJSONEndsWithNewline checks that JSON and problem bodies end their
// line, so that a body printed or appended to a file does not run into
// the next one.
func TestJSONEndsWithNewline(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	job := newTestJob(t, domain.StatusFailed)
	b.svc.holdOnly(job)
	b.svc.SubmitFunc = func(context.Context, actors.SubmitParams) (*domain.Job, error) { return job, nil }
	b.svc.SubmitBatchFunc = func(context.Context, []actors.SubmitParams) ([]actors.SubmitResult, error) {
		return []actors.SubmitResult{{Job: job, Created: true}}, nil
	}
	b.svc.CancelFunc = func(context.Context, uuid.UUID) (*domain.Job, error) { return job, nil }

	for _, r := range []request{
		{method: "GET", target: "/health"},
		{method: "GET", target: "/jobs"},
		{method: "GET", target: jobsPath(job.ID)},
		{method: "POST", target: "/jobs", body: `{"type":"noop"}`},
		{method: "POST", target: "/jobs/batch", body: `{"jobs":[{"type":"noop"}]}`},
		{method: "DELETE", target: jobsPath(job.ID)},
		{method: "POST", target: jobsPath(job.ID) + "/retry"},
		{method: "GET", target: "/stats"},
		{method: "GET", target: "/job-types"},
		// Problems
		{method: "GET", target: jobsPath(uuid.New())},
		{method: "GET", target: "/nowhere"},
		{method: "PUT", target: "/jobs"},
		{method: "POST", target: "/jobs", body: `{`},
	} {
		rec := b.do(t, r)
		ct := rec.Header().Get("Content-Type")
		require.True(t, strings.Contains(ct, "json"), "%s %s: %s", r.method, r.target, ct)
		body := rec.Body.String()
		require.True(t, strings.HasSuffix(body, "}\n"), "%s %s answered %d without a final newline: %q", r.method, r.target, rec.Code, body)
		require.Equal(t, 1, strings.Count(body, "\n"), "%s %s: one line", r.method, r.target)
	}
}

// TestNoGinJSONRender keeps gin's JSON renders out of the package: they
// end a body without a newline; writeJSON and writeProblem are the ways to
// answer JSON.
func TestNoGinJSONRender(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	ginJSON := regexp.MustCompile(`\bc\.(JSON|AbortWithStatusJSON|IndentedJSON|PureJSON|SecureJSON|AsciiJSON)\(`)
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		require.NoError(t, err)
		require.Nil(t, ginJSON.Find(src), "%s uses gin's JSON render; use writeJSON", name)
	}
}
