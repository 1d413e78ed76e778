package http

import (
	"context"
	"fmt"
	nethttp "net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/actors"
	"github.com/troupe-go/troupe/domain"
)

// The tests of what the API accepts as input beyond the schema's shapes:
// exact member names, UTF-8, and payloads every reader can read back.

func TestBatchNamesEveryBadJob(t *testing.T) {
	t.Parallel()

	t.Run("ValidationAndUnknownTypesTogether", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{}) // nothing may reach the service

		rec := b.do(t, request{method: "POST", target: "/jobs/batch", body: `{"jobs":[
			{"type":"noop"},
			{"type":"nope"},
			{"type":"noop","maxAttempts":101},
			{"type":"gone","maxAttempts":101}]}`})

		p := requireProblem(t, rec, nethttp.StatusBadRequest, ProblemTypeValidation)
		require.Equal(t, []FieldError{
			{Field: "jobs[1].type", Message: "is not a registered job type"},
			{Field: "jobs[2].maxAttempts", Message: "must be at most 100"},
			{Field: "jobs[3].maxAttempts", Message: "must be at most 100"},
			{Field: "jobs[3].type", Message: "is not a registered job type"},
		}, p.Errors)
		require.Contains(t, p.Detail, "jobs[1].type is not a registered job type")
		require.Contains(t, p.Detail, "jobs[2].maxAttempts must be at most 100")
		require.Contains(t, p.Detail, "registered types: noop, send_email")
	})

	t.Run("BoundedWithANote", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		jobs := make([]string, 150)
		for i := range jobs {
			jobs[i] = `{"type":"noop","maxAttempts":101,"urgency":1}`
			if i%2 == 1 {
				jobs[i] = `{"type":"nope"}`
			}
		}

		rec := b.do(t, request{method: "POST", target: "/jobs/batch", body: `{"jobs":[` + strings.Join(jobs, ",") + `]}`})

		p := requireProblem(t, rec, nethttp.StatusBadRequest, ProblemTypeValidation)
		require.Len(t, p.Errors, maxFieldErrors)
		require.Equal(t, FieldError{Field: "jobs[0].urgency", Message: "is not a known field"}, p.Errors[0])
		require.Equal(t, FieldError{Field: "jobs[99].type", Message: "is not a registered job type"}, p.Errors[99])
		require.Contains(t, p.Detail, "50 more errors are left out of this answer, which lists the first 100")
	})

	t.Run("OnlyUnknownTypesBounded", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})

		rec := b.do(t, request{method: "POST", target: "/jobs/batch", body: batchBody(120, "nope")})

		p := requireProblem(t, rec, nethttp.StatusBadRequest, ProblemTypeUnknownJobType)
		require.Len(t, p.Errors, maxFieldErrors)
		require.Contains(t, p.Detail, `jobs[99]: job type "nope" is not registered`)
		require.NotContains(t, p.Detail, `jobs[100]:`)
		require.Contains(t, p.Detail, "20 more errors are left out")
	})
}

func TestMemberNamesAreExact(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, target, body string
		fields             []FieldError
	}{
		{"TypeCapitalized", "/jobs", `{"Type":"noop"}`,
			[]FieldError{{Field: "Type", Message: "is not a known field"}}},
		{"MaxAttemptsUpperCase", "/jobs", `{"type":"noop","MAXATTEMPTS":3}`,
			[]FieldError{{Field: "MAXATTEMPTS", Message: "is not a known field"}}},
		{"TwoOfThem", "/jobs", `{"TYPE":"noop","Payload":{}}`,
			[]FieldError{{Field: "TYPE", Message: "is not a known field"}, {Field: "Payload", Message: "is not a known field"}}},
		{"WithAnUnknownField", "/jobs", `{"Type":"noop","urgency":1,"maxAttempts":2}`,
			[]FieldError{{Field: "Type", Message: "is not a known field"}, {Field: "urgency", Message: "is not a known field"}}},
		{"Duplicate", "/jobs", `{"type":"noop","type":"send_email"}`,
			[]FieldError{{Field: "type", Message: "appears more than once"}}},
		{"BatchJobs", "/jobs/batch", `{"Jobs":[{"type":"noop"}]}`,
			[]FieldError{{Field: "Jobs", Message: "is not a known field"}}},
		{"BatchJob", "/jobs/batch", `{"jobs":[{"type":"noop"},{"type":"noop","maxattempts":3}]}`,
			[]FieldError{{Field: "jobs[1].maxattempts", Message: "is not a known field"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, Config{}) // nothing may reach the service

			rec := b.do(t, request{method: "POST", target: tt.target, body: tt.body})

			p := requireProblem(t, rec, nethttp.StatusBadRequest, ProblemTypeValidation)
			require.Equal(t, tt.fields, p.Errors)
		})
	}
}

func TestInvalidUTF8IsRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, target, body string
		field              string
	}{
		{"PayloadString", "/jobs", "{\"type\":\"noop\",\"payload\":\"caf\xe9\"}", "payload"},
		{"InsidePayload", "/jobs", "{\"type\":\"noop\",\"payload\":{\"to\":[\"\xff\xfe\"]}}", "payload"},
		{"MemberNameInPayload", "/jobs", "{\"type\":\"noop\",\"payload\":{\"\xc3\":1}}", "payload"},
		{"Type", "/jobs", "{\"type\":\"noop\xc0\"}", "type"},
		{"BatchPayload", "/jobs/batch", "{\"jobs\":[{\"type\":\"noop\"},{\"type\":\"noop\"},{\"type\":\"noop\"},{\"type\":\"noop\",\"payload\":{\"a\":\"\xed\xa0\x80\"}}]}", "jobs[3].payload"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, Config{}) // nothing may reach the service

			rec := b.do(t, request{method: "POST", target: tt.target, body: tt.body})

			p := requireProblem(t, rec, nethttp.StatusBadRequest, ProblemTypeValidation)
			require.Equal(t, []FieldError{{Field: tt.field, Message: "is not valid UTF-8"}}, p.Errors)
		})
	}
}

func TestPayloadLimit(t *testing.T) {
	t.Parallel()
	payload := func(n int) string { return `"` + strings.Repeat("x", n-2) + `"` } // n bytes of JSON

	t.Run("Single", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{MaxPayloadBytes: 100})
		submitted := 0
		b.svc.SubmitFunc = func(_ context.Context, p actors.SubmitParams) (*domain.Job, error) {
			submitted++
			return domain.NewJob(p.Type, p.Payload, 3, testTime)
		}

		rec := b.do(t, request{method: "POST", target: "/jobs", body: `{"type":"noop","payload":` + payload(100) + `}`})
		require.Equal(t, nethttp.StatusCreated, rec.Code, "exactly the limit is allowed: %s", rec.Body.String())

		rec = b.do(t, request{method: "POST", target: "/jobs", body: `{"type":"noop","payload":` + payload(101) + `}`})
		p := requireProblem(t, rec, nethttp.StatusRequestEntityTooLarge, ProblemTypePayloadTooLarge)
		require.Equal(t, []FieldError{{Field: "payload", Message: "is 101 bytes, over the limit of 100 bytes"}}, p.Errors)
		require.Equal(t, 1, submitted)
	})

	t.Run("BatchNamesEveryBadJob", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{MaxPayloadBytes: 100}) // nothing may reach the service

		rec := b.do(t, request{method: "POST", target: "/jobs/batch", body: `{"jobs":[
			{"type":"noop","payload":` + payload(100) + `},
			{"type":"noop","payload":` + payload(101) + `},
			{"type":"noop","maxAttempts":101},
			{"type":"nope","payload":` + payload(5000) + `}]}`})

		p := requireProblem(t, rec, nethttp.StatusRequestEntityTooLarge, ProblemTypePayloadTooLarge)
		require.Equal(t, []FieldError{
			{Field: "jobs[1].payload", Message: "is 101 bytes, over the limit of 100 bytes"},
			{Field: "jobs[2].maxAttempts", Message: "must be at most 100"},
			{Field: "jobs[3].payload", Message: "is 5000 bytes, over the limit of 100 bytes"},
			{Field: "jobs[3].type", Message: "is not a registered job type"},
		}, p.Errors)
	})

	t.Run("BatchDefaultIsOneMiBAJob", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{}) // nothing may reach the service
		big := payload(5 << 20)

		rec := b.do(t, request{method: "POST", target: "/jobs/batch", body: `{"jobs":[{"type":"noop","payload":` + big + `}]}`})

		p := requireProblem(t, rec, nethttp.StatusRequestEntityTooLarge, ProblemTypePayloadTooLarge)
		require.Equal(t, []FieldError{{Field: "jobs[0].payload", Message: fmt.Sprintf("is %d bytes, over the limit of %d bytes", 5<<20, 1<<20)}}, p.Errors)
	})

	t.Run("RuntimeLimit", func(t *testing.T) {
		t.Parallel()
		tooLarge := fmt.Errorf("%w: the payload is 9 bytes, over the limit of 8 bytes", domain.ErrPayloadTooLarge)
		b := setup(t, Config{})
		b.svc.SubmitFunc = func(context.Context, actors.SubmitParams) (*domain.Job, error) { return nil, tooLarge }
		b.svc.SubmitBatchFunc = func(context.Context, []actors.SubmitParams) ([]actors.SubmitResult, error) {
			return nil, &actors.BatchJobError{Index: 1, Err: tooLarge}
		}

		rec := b.do(t, request{method: "POST", target: "/jobs", body: `{"type":"noop","payload":"1234567"}`})
		p := requireProblem(t, rec, nethttp.StatusRequestEntityTooLarge, ProblemTypePayloadTooLarge)
		require.Contains(t, p.Detail, "over the limit of 8 bytes")

		rec = b.do(t, request{method: "POST", target: "/jobs/batch", body: `{"jobs":[{"type":"noop"},{"type":"noop","payload":"1234567"}]}`})
		p = requireProblem(t, rec, nethttp.StatusRequestEntityTooLarge, ProblemTypePayloadTooLarge)
		require.Equal(t, []FieldError{{Field: "jobs[1].payload", Message: "is over the payload limit"}}, p.Errors)
		require.Contains(t, p.Detail, "over the limit of 8 bytes")
	})

	t.Run("BodiesOfBodilessRequestsAreIgnored", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{MaxBodyBytes: 10})
		b.svc.ListFunc = func(context.Context, domain.Filter) (domain.Page, error) { return domain.Page{}, nil }
		job := newTestJob(t, domain.StatusCanceled)
		b.svc.CancelFunc = func(context.Context, uuid.UUID) (*domain.Job, error) { return job, nil }
		body := strings.Repeat("x", 100)

		rec := b.do(t, request{method: "GET", target: "/jobs", body: body})
		require.Equal(t, nethttp.StatusOK, rec.Code, rec.Body.String())
		rec = b.do(t, request{method: "DELETE", target: jobsPath(job.ID), body: body})
		require.Equal(t, nethttp.StatusOK, rec.Code, rec.Body.String())
	})
}

func TestPayloadShape(t *testing.T) {
	t.Parallel()
	nested := func(depth int) string { return strings.Repeat("[", depth) + strings.Repeat("]", depth) }
	number := func(n int) string { return "1" + strings.Repeat("0", n-1) }
	tests := []struct {
		name, payload string
		message       string // empty: accepted
	}{
		{"DepthAtLimit", nested(MaxPayloadDepth), ""},
		{"TooDeep", nested(MaxPayloadDepth + 1), "nests arrays and objects 65 levels deep, more than the limit of 64"},
		{"VeryDeep", `{"a":` + nested(9990) + `}`, "nests arrays and objects 9991 levels deep, more than the limit of 64"},
		{"BracketsInStrings", `["` + nested(200) + `","\"[[["]`, ""},
		{"NumberAtLimit", `{"n":` + number(MaxPayloadNumberLength) + `}`, ""},
		{"LongNumber", `{"n":[` + number(100000) + `]}`, "holds a number of 100000 characters, more than the limit of 100"},
		{"LongFraction", `-0.` + strings.Repeat("1", 98) + `e5`, "holds a number of 103 characters, more than the limit of 100"},
		{"DigitsInStrings", `"` + number(1000) + `"`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, Config{})
			b.svc.SubmitFunc = func(_ context.Context, p actors.SubmitParams) (*domain.Job, error) {
				return domain.NewJob(p.Type, p.Payload, 3, testTime)
			}
			var got []actors.SubmitParams
			b.svc.SubmitBatchFunc = batchSubmitted(t, &got)

			single := b.do(t, request{method: "POST", target: "/jobs", body: `{"type":"noop","payload":` + tt.payload + `}`})
			batch := b.do(t, request{method: "POST", target: "/jobs/batch", body: `{"jobs":[{"type":"noop"},{"type":"noop","payload":` + tt.payload + `}]}`})

			if tt.message == "" {
				require.Equal(t, nethttp.StatusCreated, single.Code, single.Body.String())
				require.Equal(t, nethttp.StatusCreated, batch.Code, batch.Body.String())
				return
			}
			p := requireProblem(t, single, nethttp.StatusBadRequest, ProblemTypeValidation)
			require.Equal(t, []FieldError{{Field: "payload", Message: tt.message}}, p.Errors)
			p = requireProblem(t, batch, nethttp.StatusBadRequest, ProblemTypeValidation)
			require.Equal(t, []FieldError{{Field: "jobs[1].payload", Message: tt.message}}, p.Errors)
		})
	}
}
