package http

import (
	"context"
	"encoding/json"
	"fmt"
	nethttp "net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/actors"
	"github.com/troupe-go/troupe/domain"
)

// The tests of the fields that say when, where and how a job runs, and of
// duplicates by unique key.

func TestSubmitScheduleFields(t *testing.T) {
	t.Parallel()

	t.Run("PassedToTheRuntime", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		var got actors.SubmitParams
		b.svc.SubmitFunc = submitted(t, &got)

		rec := b.do(t, request{method: "POST", target: "/jobs", body: `{"type":"noop",
			"runAt":"2030-01-02T03:04:05.5+01:00","priority":1,"queue":"email",
			"uniqueKey":"welcome:42","uniqueFor":"1h","timeout":"90s","key":"customer-42"}`})

		requireJSON[JobResponse](t, rec, nethttp.StatusCreated)
		require.Equal(t, actors.SubmitParams{
			Type: "noop", Payload: []byte("null"),
			RunAt:    time.Date(2030, 1, 2, 3, 4, 5, 5e8, time.FixedZone("", 3600)),
			Priority: 1, Queue: "email", UniqueKey: "welcome:42", UniqueFor: time.Hour, Timeout: 90 * time.Second,
			Key: "customer-42",
		}, got)
		require.True(t, got.RunAt.Equal(time.Date(2030, 1, 2, 2, 4, 5, 5e8, time.UTC)))
	})

	t.Run("DelayAndNoTimeout", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		var got actors.SubmitParams
		b.svc.SubmitFunc = submitted(t, &got)

		rec := b.do(t, request{method: "POST", target: "/jobs", body: `{"type":"noop","delay":"1h30m","timeout":"0s","priority":9}`})

		require.Equal(t, nethttp.StatusCreated, rec.Code, rec.Body.String())
		require.Equal(t, 90*time.Minute, got.Delay)
		require.Equal(t, actors.NoTimeout, got.Timeout, `"0s" means no timeout, not the default`)
		require.Equal(t, 9, got.Priority)
		require.True(t, got.RunAt.IsZero())
	})

	t.Run("AbsentFieldsLeaveTheDefaults", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		var got actors.SubmitParams
		b.svc.SubmitFunc = submitted(t, &got)

		rec := b.do(t, request{method: "POST", target: "/jobs", body: `{"type":"noop"}`})

		require.Equal(t, nethttp.StatusCreated, rec.Code)
		require.Equal(t, actors.SubmitParams{Type: "noop", Payload: []byte("null")}, got)
	})

	t.Run("ABatchJobToo", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		var got []actors.SubmitParams
		b.svc.SubmitBatchFunc = batchSubmitted(t, &got)

		rec := b.do(t, request{method: "POST", target: "/jobs/batch", body: `{"jobs":[{"type":"noop"},{"type":"noop","queue":"bulk","priority":7,"delay":"5m","key":"tenant:7"}]}`})

		require.Equal(t, nethttp.StatusCreated, rec.Code, rec.Body.String())
		require.Equal(t, actors.SubmitParams{Type: "noop", Payload: []byte("null")}, got[0])
		require.Equal(t, actors.SubmitParams{Type: "noop", Payload: []byte("null"), Queue: "bulk", Priority: 7, Delay: 5 * time.Minute, Key: "tenant:7"}, got[1])
	})
}

func TestSubmitScheduleFieldsRefused(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("k", domain.MaxUniqueKeyLength+1)
	tests := []struct {
		name, fields string
		want         []FieldError
	}{
		{"RunAtNotRFC3339", `"runAt":"tomorrow"`, []FieldError{{"runAt", "must be an RFC 3339 time such as 2025-03-01T09:30:00Z"}}},
		{"RunAtWithoutZone", `"runAt":"2030-01-02T03:04:05"`, []FieldError{{"runAt", "must be an RFC 3339 time such as 2025-03-01T09:30:00Z"}}},
		{"RunAtWithDelay", `"runAt":"2030-01-02T03:04:05Z","delay":"5m"`, []FieldError{{"runAt", "must not be given together with delay"}}},
		{"DelayUnparsable", `"delay":"5 minutes"`, []FieldError{{"delay", `must be a Go duration such as "90s" or "1h30m"`}}},
		{"DelayBareNumber", `"delay":"300"`, []FieldError{{"delay", `must be a Go duration such as "90s" or "1h30m"`}}},
		{"DelayNegative", `"delay":"-1s"`, []FieldError{{"delay", "must not be negative"}}},
		{"DelayOverAYear", `"delay":"8785h"`, []FieldError{{"delay", "must be at most a year (8784h0m0s)"}}},
		{"PriorityZero", `"priority":0`, []FieldError{{"priority", "must be from 1 (first) to 9 (last)"}}},
		{"PriorityTen", `"priority":10`, []FieldError{{"priority", "must be from 1 (first) to 9 (last)"}}},
		{"PriorityText", `"priority":"high"`, []FieldError{{"priority", "must be an integer"}}},
		{"QueueUpperCase", `"queue":"Email"`, []FieldError{{"queue", queueNameRule}}},
		{"QueueEmpty", `"queue":""`, []FieldError{{"queue", queueNameRule}}},
		{"QueueLeadingDash", `"queue":"-x"`, []FieldError{{"queue", queueNameRule}}},
		{"QueueTooLong", `"queue":"` + strings.Repeat("q", 65) + `"`, []FieldError{{"queue", queueNameRule}}},
		{"UniqueKeyEmpty", `"uniqueKey":""`, []FieldError{{"uniqueKey", "must not be empty"}}},
		{"UniqueKeyTooLong", `"uniqueKey":"` + long + `"`, []FieldError{{"uniqueKey", "is 256 bytes, more than 255"}}},
		{"UniqueForWithoutKey", `"uniqueFor":"1h"`, []FieldError{{"uniqueFor", "needs a uniqueKey"}}},
		{"UniqueForNegative", `"uniqueKey":"k","uniqueFor":"-1h"`, []FieldError{{"uniqueFor", "must not be negative"}}},
		{"UniqueForUnparsable", `"uniqueKey":"k","uniqueFor":"a day"`, []FieldError{{"uniqueFor", `must be a Go duration such as "90s" or "1h30m"`}}},
		{"TimeoutUnparsable", `"timeout":"soon"`, []FieldError{{"timeout", `must be a Go duration such as "90s" or "1h30m", or "0s" for none`}}},
		{"TimeoutNegative", `"timeout":"-30s"`, []FieldError{{"timeout", "must not be negative"}}},
		{"KeyEmpty", `"key":""`, []FieldError{{"key", "must not be empty"}}},
		{"KeyTooLong", `"key":"` + strings.Repeat("k", domain.MaxKeyLength+1) + `"`, []FieldError{{"key", "is 256 bytes, more than 255"}}},
		{"KeyWithNUL", `"key":"a\u0000b"`, []FieldError{{"key", "must not contain NUL"}}},
		{"KeyNotAString", `"key":42`, []FieldError{{"key", "must be a string"}}},
		{"Several", `"priority":0,"queue":"A","timeout":"-1s"`, []FieldError{
			{"priority", "must be from 1 (first) to 9 (last)"}, {"queue", queueNameRule}, {"timeout", "must not be negative"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, Config{}) // nothing may reach the service

			rec := b.do(t, request{method: "POST", target: "/jobs", body: `{"type":"noop",` + tt.fields + `}`})
			p := requireProblem(t, rec, nethttp.StatusBadRequest, ProblemTypeValidation)
			require.Equal(t, tt.want, p.Errors)

			rec = b.do(t, request{method: "POST", target: "/jobs/batch", body: `{"jobs":[{"type":"noop"},{"type":"noop",` + tt.fields + `}]}`})
			p = requireProblem(t, rec, nethttp.StatusBadRequest, ProblemTypeValidation)
			want := make([]FieldError, len(tt.want))
			for i, f := range tt.want {
				want[i] = FieldError{Field: "jobs[1]." + f.Field, Message: f.Message}
			}
			require.Equal(t, want, p.Errors)
		})
	}
}

func TestSubmitDuplicate(t *testing.T) {
	t.Parallel()

	t.Run("OKWithTheExistingJob", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		existing := newTestJob(t, domain.StatusRunning)
		existing.UniqueKey = "welcome:42"
		b.svc.SubmitFunc = func(_ context.Context, p actors.SubmitParams) (*domain.Job, error) {
			require.Equal(t, "welcome:42", p.UniqueKey)
			return existing, fmt.Errorf("submit: job %s holds unique key %q: %w", existing.ID, p.UniqueKey, actors.ErrDuplicate)
		}

		rec := b.do(t, request{method: "POST", target: "/jobs", body: `{"type":"send_email","uniqueKey":"welcome:42"}`})

		job := requireJSON[JobResponse](t, rec, nethttp.StatusOK)
		require.Equal(t, existing.ID, job.ID)
		require.Equal(t, domain.StatusRunning, job.Status)
		require.Equal(t, "welcome:42", job.UniqueKey)
		require.Equal(t, jobsPath(existing.ID), rec.Header().Get("Location"))
	})

	t.Run("BatchSaysWhichWereCreated", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		existing := newTestJob(t, domain.StatusPending)
		var got []actors.SubmitParams
		created := batchSubmitted(t, &got)
		b.svc.SubmitBatchFunc = func(ctx context.Context, ps []actors.SubmitParams) ([]actors.SubmitResult, error) {
			rs, err := created(ctx, ps)
			rs[1] = actors.SubmitResult{Job: existing}
			return rs, err
		}

		rec := b.do(t, request{method: "POST", target: "/jobs/batch", body: `{"jobs":[{"type":"noop"},{"type":"noop","uniqueKey":"k"},{"type":"noop"}]}`})

		out := requireJSON[BatchSubmitResponse](t, rec, nethttp.StatusCreated)
		require.Equal(t, []BatchResult{{Created: true}, {Created: false}, {Created: true}}, out.Results)
		require.Equal(t, existing.ID, out.Jobs[1].ID)
		require.NotEqual(t, existing.ID, out.Jobs[0].ID)
	})

	t.Run("BatchOfDuplicatesOnlyIsOK", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		existing := newTestJob(t, domain.StatusScheduled)
		b.svc.SubmitBatchFunc = func(_ context.Context, ps []actors.SubmitParams) ([]actors.SubmitResult, error) {
			rs := make([]actors.SubmitResult, len(ps))
			for i := range rs {
				rs[i] = actors.SubmitResult{Job: existing}
			}
			return rs, nil
		}

		rec := b.do(t, request{method: "POST", target: "/jobs/batch", body: `{"jobs":[{"type":"noop","uniqueKey":"k"},{"type":"noop","uniqueKey":"k"}]}`})

		out := requireJSON[BatchSubmitResponse](t, rec, nethttp.StatusOK)
		require.Equal(t, []BatchResult{{Created: false}, {Created: false}}, out.Results)
	})
}

func TestScheduledJobOnTheWire(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	j := newTestJob(t, domain.StatusPending)
	j.ScheduleAt(testTime.Add(time.Hour), testTime)
	j.Queue, j.Priority, j.Timeout = "reports", 3, 30*time.Minute
	b.svc.holdOnly(j)

	rec := b.do(t, request{method: "GET", target: jobsPath(j.ID)})

	require.Equal(t, nethttp.StatusOK, rec.Code)
	var raw map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &raw))
	require.Equal(t, "scheduled", raw["status"])
	require.Equal(t, "2025-03-01T10:30:00.123456Z", raw["runAt"])
	require.Equal(t, "reports", raw["queue"])
	require.InDelta(t, 3, raw["priority"], 0)
	require.Equal(t, "30m0s", raw["timeout"])
	require.NotContains(t, raw, "uniqueKey")
}

func TestListByQueueAndScheduled(t *testing.T) {
	t.Parallel()

	t.Run("Filter", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		var got domain.Filter
		b.svc.ListFunc = func(_ context.Context, f domain.Filter) (domain.Page, error) {
			got = f
			return domain.Page{}, nil
		}

		rec := b.do(t, request{method: "GET", target: "/jobs?status=scheduled&queue=email"})

		require.Equal(t, nethttp.StatusOK, rec.Code, rec.Body.String())
		require.Equal(t, []domain.Status{domain.StatusScheduled}, got.Statuses)
		require.Equal(t, "email", got.Queue)
	})

	t.Run("BadQueue", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})

		rec := b.do(t, request{method: "GET", target: "/jobs?queue=No+Such"})

		p := requireProblem(t, rec, nethttp.StatusBadRequest, ProblemTypeValidation)
		require.Equal(t, []FieldError{{Field: "queue", Message: queueNameRule}}, p.Errors)
	})
}
