package http

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	nethttp "net/http"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/actors"
	"github.com/troupe-go/troupe/domain"
)

// batchSubmitted makes SubmitBatchFunc record what it was given and answer
// with pending jobs built from it, in order.
func batchSubmitted(t *testing.T, got *[]actors.SubmitParams) func(context.Context, []actors.SubmitParams) ([]actors.SubmitResult, error) {
	return func(_ context.Context, ps []actors.SubmitParams) ([]actors.SubmitResult, error) {
		*got = ps
		jobs := make([]actors.SubmitResult, len(ps))
		for i, p := range ps {
			j, err := domain.NewJob(p.Type, p.Payload, max(p.MaxAttempts, 3), testTime)
			require.NoError(t, err)
			jobs[i] = actors.SubmitResult{Job: j, Created: true}
		}
		return jobs, nil
	}
}

// batchBody returns a batch of n jobs of type typ.
func batchBody(n int, typ string) string {
	jobs := make([]string, n)
	for i := range jobs {
		jobs[i] = fmt.Sprintf(`{"type":%q,"payload":{"n":%d}}`, typ, i)
	}
	return `{"jobs":[` + strings.Join(jobs, ",") + `]}`
}

func TestJobSubmitBatch(t *testing.T) {
	t.Parallel()

	t.Run("CreatedInOrder", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		var got []actors.SubmitParams
		b.svc.SubmitBatchFunc = batchSubmitted(t, &got)

		rec := b.do(t, request{method: "POST", target: "/jobs/batch", body: `{"jobs":[
			{"type":"send_email","payload":{"to":"ada@example.com"},"maxAttempts":5},
			{"type":"noop"},
			{"type":"noop","payload":[1,2]}]}`})

		resp := requireJSON[BatchSubmitResponse](t, rec, nethttp.StatusCreated)
		require.Equal(t, []actors.SubmitParams{
			{Type: "send_email", Payload: []byte(`{"to":"ada@example.com"}`), MaxAttempts: 5},
			{Type: "noop", Payload: []byte("null")},
			{Type: "noop", Payload: []byte("[1,2]")},
		}, got)
		require.Len(t, resp.Jobs, 3)
		require.Equal(t, []domain.JobType{"send_email", "noop", "noop"},
			[]domain.JobType{resp.Jobs[0].Type, resp.Jobs[1].Type, resp.Jobs[2].Type})
		require.JSONEq(t, `{"to":"ada@example.com"}`, string(resp.Jobs[0].Payload))
		require.Equal(t, "null", string(resp.Jobs[1].Payload))
		require.Equal(t, 5, resp.Jobs[0].MaxAttempts)
		require.Equal(t, domain.StatusPending, resp.Jobs[2].Status)
		require.Empty(t, rec.Header().Get("Location"), "several jobs have no single location")
	})

	t.Run("IDsInSubmissionOrder", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		var got []actors.SubmitParams
		b.svc.SubmitBatchFunc = batchSubmitted(t, &got)

		rec := b.do(t, request{method: "POST", target: "/jobs/batch", body: batchBody(MaxBatchJobs, "noop")})

		resp := requireJSON[BatchSubmitResponse](t, rec, nethttp.StatusCreated)
		require.Len(t, resp.Jobs, MaxBatchJobs, "exactly the limit is allowed")
		ids := make([]string, len(resp.Jobs))
		for i, j := range resp.Jobs {
			require.JSONEq(t, fmt.Sprintf(`{"n":%d}`, i), string(j.Payload), "job %d", i)
			require.JSONEq(t, string(got[i].Payload), string(j.Payload))
			ids[i] = j.ID.String()
		}
		require.True(t, slices.IsSorted(ids), "UUIDv7 IDs made in order sort in order")
	})

	t.Run("InvalidBatchesStoreNothing", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			name   string
			body   string
			typ    string
			fields []FieldError
		}{
			{"InvalidJSON", `{"jobs":[`, ProblemTypeInvalidRequest, nil},
			{"Empty", ``, ProblemTypeInvalidRequest, nil},
			{"NotAnObject", `[{"type":"noop"}]`, ProblemTypeInvalidRequest, nil},
			{"JobsMissing", `{}`, ProblemTypeValidation,
				[]FieldError{{Field: "jobs", Message: "is required"}}},
			{"JobsNull", `{"jobs":null}`, ProblemTypeValidation,
				[]FieldError{{Field: "jobs", Message: "is required"}}},
			{"NoJobs", `{"jobs":[]}`, ProblemTypeValidation,
				[]FieldError{{Field: "jobs", Message: "must hold at least 1 job"}}},
			{"JobsNotAnArray", `{"jobs":{"type":"noop"}}`, ProblemTypeValidation,
				[]FieldError{{Field: "jobs", Message: "must be an array"}}},
			{"UnknownMember", `{"jobs":[{"type":"noop"}],"atomic":true}`, ProblemTypeValidation,
				[]FieldError{{Field: "atomic", Message: "is not a known field"}}},
			{"OneBadJob", `{"jobs":[{"type":"noop"},{"type":"noop"},{"type":"noop"},{"payload":{}}]}`, ProblemTypeValidation,
				[]FieldError{{Field: "jobs[3].type", Message: "is required"}}},
			{"EveryBadJobIsNamed", `{"jobs":[{"type":"noop","maxAttempts":101},{"type":"noop"},{"type":"noop","urgency":1},7,{"type":"noop","maxAttempts":"three"}]}`, ProblemTypeValidation,
				[]FieldError{
					{Field: "jobs[0].maxAttempts", Message: "must be at most 100"},
					{Field: "jobs[2].urgency", Message: "is not a known field"},
					{Field: "jobs[3]", Message: "must be a JSON object, not number"},
					{Field: "jobs[4].maxAttempts", Message: "must be an integer"},
				}},
			{"TypeTooLong", `{"jobs":[{"type":"` + strings.Repeat("x", domain.MaxJobTypeLength+1) + `"}]}`, ProblemTypeValidation,
				[]FieldError{{Field: "jobs[0].type", Message: "must be at most 128 characters"}}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				b := setup(t, Config{}) // SubmitBatchFunc is nil: nothing may reach the service.

				rec := b.do(t, request{method: "POST", target: "/jobs/batch", body: tt.body})

				p := requireProblem(t, rec, nethttp.StatusBadRequest, tt.typ)
				require.Equal(t, tt.fields, p.Errors)
				for _, f := range tt.fields {
					require.Contains(t, p.Detail, f.Field+" "+f.Message)
				}
			})
		}
	})

	t.Run("EmptyBodyShowsABatch", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})

		rec := b.do(t, request{method: "POST", target: "/jobs/batch"})

		p := requireProblem(t, rec, nethttp.StatusBadRequest, ProblemTypeInvalidRequest)
		require.Contains(t, p.Detail, `{"jobs": [{"type": "noop"}]}`)
	})

	t.Run("TooManyJobs", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})

		rec := b.do(t, request{method: "POST", target: "/jobs/batch", body: batchBody(MaxBatchJobs+1, "noop")})

		p := requireProblem(t, rec, nethttp.StatusBadRequest, ProblemTypeValidation)
		require.Equal(t, []FieldError{{Field: "jobs", Message: "must hold at most 1000 jobs, got more"}}, p.Errors)
	})

	t.Run("UnknownTypesAreNamedByIndex", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})

		rec := b.do(t, request{method: "POST", target: "/jobs/batch",
			body: `{"jobs":[{"type":"noop"},{"type":"send_mail"},{"type":"noop"},{"type":"nope"}]}`})

		p := requireProblem(t, rec, nethttp.StatusBadRequest, ProblemTypeUnknownJobType)
		require.Equal(t, []FieldError{
			{Field: "jobs[1].type", Message: "is not a registered job type"},
			{Field: "jobs[3].type", Message: "is not a registered job type"},
		}, p.Errors)
		require.Equal(t, `jobs[1]: job type "send_mail" is not registered; jobs[3]: job type "nope" is not registered; registered types: noop, send_email`, p.Detail)
	})

	t.Run("RuntimeErrorsAreNamedByIndex", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			name   string
			body   string
			err    error
			typ    string
			detail string
			fields []FieldError
		}{
			{"UnknownType", batchBody(3, "noop"), &actors.BatchJobError{Index: 2, Err: fmt.Errorf(`%w "noop" (registered: )`, domain.ErrUnknownJobType)},
				ProblemTypeUnknownJobType, `jobs[2]: job type "noop" is not registered`,
				[]FieldError{{Field: "jobs[2].type", Message: "is not a registered job type"}}},
			{"UnknownTypeAlone", batchBody(1, "noop"), fmt.Errorf(`%w "noop" (registered: )`, domain.ErrUnknownJobType),
				ProblemTypeUnknownJobType, `jobs[0]: job type "noop" is not registered`,
				[]FieldError{{Field: "jobs[0].type", Message: "is not a registered job type"}}},
			{"Invalid", batchBody(3, "noop"), &actors.BatchJobError{Index: 1, Err: fmt.Errorf("%w: maxAttempts must be between 1 and 1000, got 5000", domain.ErrInvalid)},
				ProblemTypeInvalidRequest, "jobs[1]: invalid input: maxAttempts must be between 1 and 1000, got 5000", nil},
			{"InvalidWithoutIndex", batchBody(3, "noop"), fmt.Errorf("submit: %w", domain.ErrInvalid),
				ProblemTypeInvalidRequest, "submit: invalid input", nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				b := setup(t, Config{})
				b.svc.SubmitBatchFunc = func(context.Context, []actors.SubmitParams) ([]actors.SubmitResult, error) { return nil, tt.err }

				rec := b.do(t, request{method: "POST", target: "/jobs/batch", body: tt.body})

				p := requireProblem(t, rec, nethttp.StatusBadRequest, tt.typ)
				require.True(t, strings.HasPrefix(p.Detail, tt.detail), p.Detail)
				require.Equal(t, tt.fields, p.Errors)
			})
		}
	})

	t.Run("Unavailable", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			name       string
			err        error
			typ        string
			retryAfter string
		}{
			{"QueueFull", fmt.Errorf("submit: %w (100000 jobs waiting)", domain.ErrQueueFull), ProblemTypeQueueFull, "1"},
			{"NotRunning", fmt.Errorf("submit: %w", domain.ErrNotRunning), ProblemTypeUnavailable, "5"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				b := setup(t, Config{})
				b.svc.SubmitBatchFunc = func(context.Context, []actors.SubmitParams) ([]actors.SubmitResult, error) { return nil, tt.err }

				rec := b.do(t, request{method: "POST", target: "/jobs/batch", body: batchBody(2, "noop")})

				requireProblem(t, rec, nethttp.StatusServiceUnavailable, tt.typ)
				require.Equal(t, tt.retryAfter, rec.Header().Get("Retry-After"))
			})
		}
	})

	t.Run("BodyLimit", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{MaxBodyBytes: 1024})
		var got []actors.SubmitParams
		b.svc.SubmitBatchFunc = batchSubmitted(t, &got)
		payload := strings.Repeat("x", 4000)
		body := `{"jobs":[{"type":"noop","payload":"` + payload + `"}]}`

		rec := b.do(t, request{method: "POST", target: "/jobs/batch", body: body})
		require.Equal(t, nethttp.StatusCreated, rec.Code, "a batch may be larger than MaxBodyBytes: %s", rec.Body.String())

		rec = b.do(t, request{method: "POST", target: "/jobs", body: `{"type":"noop","payload":"` + payload + `"}`})
		requireProblem(t, rec, nethttp.StatusRequestEntityTooLarge, ProblemTypePayloadTooLarge)

		big := `{"jobs":[{"type":"noop","payload":"` + strings.Repeat("x", 8*1024) + `"}]}`
		rec = b.do(t, request{method: "POST", target: "/jobs/batch", body: big})
		p := requireProblem(t, rec, nethttp.StatusRequestEntityTooLarge, ProblemTypePayloadTooLarge)
		require.Contains(t, p.Detail, "8192 bytes", "8 × MaxBodyBytes")
	})

	t.Run("BodyLimitOfItsOwn", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{BatchMaxBodyBytes: 100})

		rec := b.do(t, request{method: "POST", target: "/jobs/batch", body: batchBody(10, "noop")})

		p := requireProblem(t, rec, nethttp.StatusRequestEntityTooLarge, ProblemTypePayloadTooLarge)
		require.Contains(t, p.Detail, "100 bytes")
	})

	t.Run("WireFormat", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		var got []actors.SubmitParams
		b.svc.SubmitBatchFunc = batchSubmitted(t, &got)

		rec := b.do(t, request{method: "POST", target: "/jobs/batch", body: batchBody(1, "noop")})

		require.Equal(t, nethttp.StatusCreated, rec.Code)
		var raw map[string]any
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &raw))
		require.ElementsMatch(t, []string{"jobs", "results"}, keys(raw))
		require.Equal(t, []any{map[string]any{"created": true}}, raw["results"])
		jobs, ok := raw["jobs"].([]any)
		require.True(t, ok)
		require.Len(t, jobs, 1)
		job, ok := jobs[0].(map[string]any)
		require.True(t, ok)
		require.ElementsMatch(t,
			[]string{"id", "type", "payload", "status", "attempts", "maxAttempts", "lastError", "createdAt", "updatedAt", "runAt", "queue", "priority"},
			keys(job), "each job as POST /jobs answers it")
	})
}

func TestConfigBatchMaxBodyBytes(t *testing.T) {
	t.Parallel()
	require.Equal(t, int64(8_000), Config{MaxBodyBytes: 1000}.WithDefaults().BatchMaxBodyBytes, "follows MaxBodyBytes")
	require.Equal(t, int64(7), Config{MaxBodyBytes: 1000, BatchMaxBodyBytes: 7}.WithDefaults().BatchMaxBodyBytes)
	require.Equal(t, int64(math.MaxInt64), Config{MaxBodyBytes: math.MaxInt64 / 2}.WithDefaults().BatchMaxBodyBytes, "no overflow")
}
