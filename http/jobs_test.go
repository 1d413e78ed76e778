package http

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	nethttp "net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/actors"
	"github.com/troupe-go/troupe/domain"
)

// submitted makes SubmitFunc store what it was given and answer with a
// pending job built from it.
func submitted(t *testing.T, got *actors.SubmitParams) func(context.Context, actors.SubmitParams) (*domain.Job, error) {
	return func(_ context.Context, p actors.SubmitParams) (*domain.Job, error) {
		*got = p
		maxAttempts := p.MaxAttempts
		if maxAttempts == 0 {
			maxAttempts = 3
		}
		j, err := domain.NewJob(p.Type, p.Payload, maxAttempts, testTime)
		require.NoError(t, err)
		return j, nil
	}
}

func TestJobSubmit(t *testing.T) {
	t.Parallel()

	t.Run("CreatedWithLocation", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		var got actors.SubmitParams
		b.svc.SubmitFunc = submitted(t, &got)

		rec := b.do(t, request{method: "POST", target: "/jobs",
			body: `{"type":"send_email","payload":{"to": "ada@example.com", "n": [1, 2.5]},"maxAttempts":5}`})

		job := requireJSON[JobResponse](t, rec, nethttp.StatusCreated)
		require.Equal(t, "/jobs/"+job.ID.String(), rec.Header().Get("Location"))
		require.Equal(t, actors.SubmitParams{
			Type:        "send_email",
			Payload:     []byte(`{"to": "ada@example.com", "n": [1, 2.5]}`),
			MaxAttempts: 5,
		}, got)
		require.Equal(t, domain.JobType("send_email"), job.Type)
		require.JSONEq(t, `{"to":"ada@example.com","n":[1,2.5]}`, string(job.Payload))
		require.Empty(t, job.PayloadEncoding)
		require.Equal(t, domain.StatusPending, job.Status)
		require.Equal(t, 5, job.MaxAttempts)
		require.Equal(t, testTime, job.CreatedAt.Time)
		require.Equal(t, testTime, job.RunAt.Time)
		require.Equal(t, domain.DefaultQueue, job.Queue)
		require.Equal(t, domain.DefaultPriority, job.Priority)
	})

	t.Run("WireFormat", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		var got actors.SubmitParams
		b.svc.SubmitFunc = submitted(t, &got)

		rec := b.do(t, request{method: "POST", target: "/jobs", body: `{"type":"noop"}`})

		require.Equal(t, nethttp.StatusCreated, rec.Code)
		var raw map[string]any
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &raw))
		require.ElementsMatch(t,
			[]string{"id", "type", "payload", "status", "attempts", "maxAttempts", "lastError", "createdAt", "updatedAt", "runAt", "queue", "priority"},
			keys(raw), "camelCase members, and no startedAt, finishedAt, timeout or uniqueKey before they are set")
		require.Nil(t, raw["payload"])
		require.Equal(t, "2025-03-01T09:30:00.123456Z", raw["createdAt"])
	})

	t.Run("AbsentPayloadIsNull", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		var got actors.SubmitParams
		b.svc.SubmitFunc = submitted(t, &got)

		rec := b.do(t, request{method: "POST", target: "/jobs", body: `{"type":"noop"}`})

		job := requireJSON[JobResponse](t, rec, nethttp.StatusCreated)
		require.Equal(t, "null", string(got.Payload))
		require.Zero(t, got.MaxAttempts, "0 asks for the system's default")
		require.Equal(t, "null", string(job.Payload))
		require.Equal(t, 3, job.MaxAttempts)
	})

	t.Run("AnyJSONPayload", func(t *testing.T) {
		t.Parallel()
		for _, payload := range []string{`null`, `"text"`, `42`, `[1,"two",{}]`, `true`, `{}`} {
			t.Run(payload, func(t *testing.T) {
				t.Parallel()
				b := setup(t, Config{})
				var got actors.SubmitParams
				b.svc.SubmitFunc = submitted(t, &got)

				rec := b.do(t, request{method: "POST", target: "/jobs", body: `{"type":"noop","payload":` + payload + `}`})

				job := requireJSON[JobResponse](t, rec, nethttp.StatusCreated)
				require.Equal(t, payload, string(got.Payload))
				require.Equal(t, payload, string(job.Payload))
			})
		}
	})

	t.Run("MaxAttemptsBounds", func(t *testing.T) {
		t.Parallel()
		for _, n := range []int{1, MaxAttemptsLimit} {
			t.Run(fmt.Sprint(n), func(t *testing.T) {
				t.Parallel()
				b := setup(t, Config{})
				var got actors.SubmitParams
				b.svc.SubmitFunc = submitted(t, &got)

				rec := b.do(t, request{method: "POST", target: "/jobs", body: fmt.Sprintf(`{"type":"noop","maxAttempts":%d}`, n)})

				require.Equal(t, nethttp.StatusCreated, rec.Code, rec.Body.String())
				require.Equal(t, n, got.MaxAttempts)
			})
		}
	})

	t.Run("InvalidBodies", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			name   string
			body   string
			typ    string
			detail string
			fields []FieldError
		}{
			{"InvalidJSON", `{"type": }`, ProblemTypeInvalidRequest, "not valid JSON", nil},
			{"Truncated", `{"type": "noop"`, ProblemTypeInvalidRequest, "not valid JSON", nil},
			{"Empty", ``, ProblemTypeInvalidRequest, "empty", nil},
			{"TrailingData", `{"type":"noop"} {"type":"noop"}`, ProblemTypeInvalidRequest, "after the JSON object", nil},
			{"NotAnObject", `["noop"]`, ProblemTypeInvalidRequest, "must be a JSON object", nil},
			{"UnknownField", `{"type":"noop","urgency":1}`, ProblemTypeValidation, "urgency",
				[]FieldError{{Field: "urgency", Message: "is not a known field"}}},
			{"WrongType", `{"type":"noop","maxAttempts":"three"}`, ProblemTypeValidation, "maxAttempts",
				[]FieldError{{Field: "maxAttempts", Message: "must be an integer"}}},
			{"FractionalMaxAttempts", `{"type":"noop","maxAttempts":1.5}`, ProblemTypeValidation, "maxAttempts",
				[]FieldError{{Field: "maxAttempts", Message: "must be an integer"}}},
			{"TypeNotString", `{"type":7}`, ProblemTypeValidation, "type",
				[]FieldError{{Field: "type", Message: "must be a string"}}},
			{"MissingType", `{"payload":{}}`, ProblemTypeValidation, "type is required",
				[]FieldError{{Field: "type", Message: "is required"}}},
			{"TypeTooLong", `{"type":"` + strings.Repeat("x", domain.MaxJobTypeLength+1) + `"}`, ProblemTypeValidation, "type",
				[]FieldError{{Field: "type", Message: "must be at most 128 characters"}}},
			{"MaxAttemptsNegative", `{"type":"noop","maxAttempts":-1}`, ProblemTypeValidation, "maxAttempts",
				[]FieldError{{Field: "maxAttempts", Message: "must be at least 0"}}},
			{"MaxAttemptsTooMany", fmt.Sprintf(`{"type":"noop","maxAttempts":%d}`, MaxAttemptsLimit+1), ProblemTypeValidation, "maxAttempts",
				[]FieldError{{Field: "maxAttempts", Message: "must be at most 100"}}},
			{"SeveralFields", `{"maxAttempts":101}`, ProblemTypeValidation, "type is required",
				[]FieldError{{Field: "type", Message: "is required"}, {Field: "maxAttempts", Message: "must be at most 100"}}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				b := setup(t, Config{}) // SubmitFunc is nil: the service must not be called.

				rec := b.do(t, request{method: "POST", target: "/jobs", body: tt.body})

				p := requireProblem(t, rec, nethttp.StatusBadRequest, tt.typ)
				require.Contains(t, p.Detail, tt.detail)
				require.Equal(t, tt.fields, p.Errors)
			})
		}
	})

	t.Run("BodyTooLarge", func(t *testing.T) {
		t.Parallel()
		big := `{"type":"noop","payload":"` + strings.Repeat("x", 2048) + `"}`

		t.Run("DeclaredLength", func(t *testing.T) {
			t.Parallel()
			b := setup(t, Config{MaxBodyBytes: 1024})

			rec := b.do(t, request{method: "POST", target: "/jobs", body: big})

			p := requireProblem(t, rec, nethttp.StatusRequestEntityTooLarge, ProblemTypePayloadTooLarge)
			require.Contains(t, p.Detail, "1024 bytes")
		})

		t.Run("UnknownLength", func(t *testing.T) {
			t.Parallel()
			b := setup(t, Config{MaxBodyBytes: 1024})
			req := httptest.NewRequest("POST", "/jobs", strings.NewReader(big))
			req.ContentLength = -1 // as with chunked encoding: found only while reading
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()

			b.server.Handler().ServeHTTP(rec, req)

			requireProblem(t, rec, nethttp.StatusRequestEntityTooLarge, ProblemTypePayloadTooLarge)
		})

		t.Run("DefaultLimitIsOneMiB", func(t *testing.T) {
			t.Parallel()
			b := setup(t, Config{})
			body := `{"type":"noop","payload":"` + strings.Repeat("x", 1<<20) + `"}`

			rec := b.do(t, request{method: "POST", target: "/jobs", body: body})

			requireProblem(t, rec, nethttp.StatusRequestEntityTooLarge, ProblemTypePayloadTooLarge)
		})
	})

	t.Run("UnknownTypeNamesRegisteredTypes", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		b.svc.SubmitFunc = func(context.Context, actors.SubmitParams) (*domain.Job, error) {
			return nil, fmt.Errorf("submit: %w: send_mail", domain.ErrUnknownJobType)
		}
		b.svc.JobTypesFunc = func() []domain.JobType { return []domain.JobType{"generate_report", "noop", "send_email"} }

		rec := b.do(t, request{method: "POST", target: "/jobs", body: `{"type":"send_mail"}`})

		p := requireProblem(t, rec, nethttp.StatusBadRequest, ProblemTypeUnknownJobType)
		require.Equal(t, `job type "send_mail" is not registered; registered types: generate_report, noop, send_email`, p.Detail)
	})

	t.Run("UnknownTypeWithNoneRegistered", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		b.svc.SubmitFunc = func(context.Context, actors.SubmitParams) (*domain.Job, error) {
			return nil, domain.ErrUnknownJobType
		}
		b.svc.JobTypesFunc = func() []domain.JobType { return nil }

		rec := b.do(t, request{method: "POST", target: "/jobs", body: `{"type":"noop"}`})

		p := requireProblem(t, rec, nethttp.StatusBadRequest, ProblemTypeUnknownJobType)
		require.Contains(t, p.Detail, "registered types: none")
	})

	t.Run("ServiceErrors", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			name   string
			err    error
			status int
			typ    string
		}{
			{"Invalid", fmt.Errorf("submit: %w: maxAttempts must be at least 1", domain.ErrInvalid), nethttp.StatusBadRequest, ProblemTypeInvalidRequest},
			{"QueueFull", fmt.Errorf("submit: %w", domain.ErrQueueFull), nethttp.StatusServiceUnavailable, ProblemTypeQueueFull},
			{"NotRunning", fmt.Errorf("submit: %w", domain.ErrNotRunning), nethttp.StatusServiceUnavailable, ProblemTypeUnavailable},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				b := setup(t, Config{})
				b.svc.SubmitFunc = func(context.Context, actors.SubmitParams) (*domain.Job, error) { return nil, tt.err }

				rec := b.do(t, request{method: "POST", target: "/jobs", body: `{"type":"noop"}`})

				p := requireProblem(t, rec, tt.status, tt.typ)
				switch tt.typ {
				case ProblemTypeQueueFull:
					require.Equal(t, tt.err.Error(), p.Detail)
					require.Equal(t, "1", rec.Header().Get("Retry-After"))
				case ProblemTypeUnavailable:
					// Outages are told in Troupe's words (outage_test.go).
					require.Equal(t, "5", rec.Header().Get("Retry-After"))
				default:
					require.Equal(t, tt.err.Error(), p.Detail)
					require.Empty(t, rec.Header().Get("Retry-After"))
				}
				require.NotContains(t, b.logs.String(), "internal error", "expected outcomes are not logged as errors")
			})
		}
	})

	t.Run("InternalErrorIsHiddenAndLogged", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		b.svc.SubmitFunc = func(context.Context, actors.SubmitParams) (*domain.Job, error) {
			return nil, errors.New("badger: value log corrupted at offset 77")
		}

		rec := b.do(t, request{method: "POST", target: "/jobs", body: `{"type":"noop"}`,
			header: map[string]string{HeaderRequestID: "req-internal-1"}})

		p := requireProblem(t, rec, nethttp.StatusInternalServerError, ProblemTypeInternal)
		require.NotContains(t, rec.Body.String(), "badger")
		require.Contains(t, p.Detail, "req-internal-1")
		logs := b.logs.String()
		require.Contains(t, logs, `"msg":"http: internal error"`)
		require.Contains(t, logs, `"requestID":"req-internal-1"`)
		require.Contains(t, logs, "value log corrupted")
	})
}

func TestJobView(t *testing.T) {
	t.Parallel()

	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		want := newTestJob(t, domain.StatusFailed)
		want.RunAt = testTime.Add(3 * 1e9)
		want.Queue, want.Priority = "email", 2
		want.UniqueKey, want.UniqueFor, want.Timeout = "welcome:42", time.Hour, 90*time.Second
		want.Key = "customer:42"
		b.svc.GetFunc = func(_ context.Context, id uuid.UUID) (*domain.Job, error) {
			require.Equal(t, want.ID, id)
			return want, nil
		}

		rec := b.do(t, request{method: "GET", target: jobsPath(want.ID)})

		job := requireJSON[JobResponse](t, rec, nethttp.StatusOK)
		require.Equal(t, JobResponse{
			ID:          want.ID,
			Type:        want.Type,
			Payload:     json.RawMessage(`{"to":"ada@example.com"}`),
			Status:      domain.StatusFailed,
			Attempts:    1,
			MaxAttempts: 3,
			LastError:   "smtp: connection refused",
			CreatedAt:   Timestamp{want.CreatedAt},
			UpdatedAt:   Timestamp{want.UpdatedAt},
			RunAt:       Timestamp{want.RunAt},
			StartedAt:   Timestamp{want.StartedAt},
			FinishedAt:  Timestamp{want.FinishedAt},
			Queue:       "email",
			Priority:    2,
			UniqueKey:   "welcome:42",
			UniqueFor:   "1h0m0s",
			Timeout:     "1m30s",
			Key:         "customer:42",
		}, job)
		require.Contains(t, rec.Body.String(), `"finishedAt":"2025-03-01T09:30:02.123456Z"`)
		require.Contains(t, rec.Body.String(), `"timeout":"1m30s"`)
	})

	t.Run("PayloadThatIsNotJSONIsBase64", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		j := newTestJob(t, domain.StatusPending)
		j.Payload = []byte{0xff, 0x00, 'h', 'i'}
		b.svc.GetFunc = func(context.Context, uuid.UUID) (*domain.Job, error) { return j, nil }

		rec := b.do(t, request{method: "GET", target: jobsPath(j.ID)})

		job := requireJSON[JobResponse](t, rec, nethttp.StatusOK)
		require.Equal(t, PayloadEncodingBase64, job.PayloadEncoding)
		var encoded string
		require.NoError(t, json.Unmarshal(job.Payload, &encoded))
		decoded, err := base64.StdEncoding.DecodeString(encoded)
		require.NoError(t, err)
		require.Equal(t, j.Payload, decoded)
	})

	t.Run("EmptyPayloadIsNull", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		j := newTestJob(t, domain.StatusPending)
		j.Payload = nil
		b.svc.GetFunc = func(context.Context, uuid.UUID) (*domain.Job, error) { return j, nil }

		rec := b.do(t, request{method: "GET", target: jobsPath(j.ID)})

		job := requireJSON[JobResponse](t, rec, nethttp.StatusOK)
		require.Equal(t, "null", string(job.Payload))
		require.Empty(t, job.PayloadEncoding)
	})

	t.Run("NotFound", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		id := uuid.New()
		b.svc.GetFunc = func(context.Context, uuid.UUID) (*domain.Job, error) {
			return nil, fmt.Errorf("get job %s: %w", id, domain.ErrNotFound)
		}

		rec := b.do(t, request{method: "GET", target: jobsPath(id)})

		p := requireProblem(t, rec, nethttp.StatusNotFound, ProblemTypeNotFound)
		require.Contains(t, p.Detail, id.String())
	})

	t.Run("MalformedID", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{}) // GetFunc is nil: the service must not be called.

		rec := b.do(t, request{method: "GET", target: "/jobs/42"})

		p := requireProblem(t, rec, nethttp.StatusBadRequest, ProblemTypeInvalidRequest)
		require.Equal(t, `job ID "42" is not a UUID`, p.Detail)
	})
}

func TestJobCancel(t *testing.T) {
	t.Parallel()

	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		// The service decides; the handler answers 200 with whatever it got,
		// including a running job whose handler is still winding down.
		tests := []struct {
			name string
			from domain.Status
			to   domain.Status
		}{
			{"PendingBecomesCanceled", domain.StatusPending, domain.StatusCanceled},
			{"RunningMayStillBeRunning", domain.StatusRunning, domain.StatusRunning},
			{"CanceledStaysCanceled", domain.StatusCanceled, domain.StatusCanceled},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				b := setup(t, Config{})
				j := newTestJob(t, tt.from)
				b.svc.CancelFunc = func(_ context.Context, id uuid.UUID) (*domain.Job, error) {
					require.Equal(t, j.ID, id)
					j.Status = tt.to
					return j, nil
				}

				rec := b.do(t, request{method: "DELETE", target: jobsPath(j.ID)})

				job := requireJSON[JobResponse](t, rec, nethttp.StatusOK)
				require.Equal(t, tt.to, job.Status)
				require.Equal(t, j.ID, job.ID)
			})
		}
	})

	t.Run("NotCancelable", func(t *testing.T) {
		t.Parallel()
		for _, status := range []domain.Status{domain.StatusCompleted, domain.StatusFailed} {
			t.Run(string(status), func(t *testing.T) {
				t.Parallel()
				b := setup(t, Config{})
				j := newTestJob(t, status)
				b.svc.CancelFunc = func(context.Context, uuid.UUID) (*domain.Job, error) {
					return nil, j.Cancel(testTime)
				}

				rec := b.do(t, request{method: "DELETE", target: jobsPath(j.ID)})

				p := requireProblem(t, rec, nethttp.StatusConflict, ProblemTypeNotCancelable)
				require.Contains(t, p.Detail, string(status))
			})
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		b.svc.CancelFunc = func(context.Context, uuid.UUID) (*domain.Job, error) {
			return nil, fmt.Errorf("cancel: %w", domain.ErrNotFound)
		}

		rec := b.do(t, request{method: "DELETE", target: jobsPath(uuid.New())})

		requireProblem(t, rec, nethttp.StatusNotFound, ProblemTypeNotFound)
	})

	t.Run("MalformedID", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})

		rec := b.do(t, request{method: "DELETE", target: "/jobs/not-a-uuid"})

		requireProblem(t, rec, nethttp.StatusBadRequest, ProblemTypeInvalidRequest)
	})

	t.Run("NotRunning", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		b.svc.CancelFunc = func(context.Context, uuid.UUID) (*domain.Job, error) {
			return nil, fmt.Errorf("cancel: %w", domain.ErrNotRunning)
		}

		rec := b.do(t, request{method: "DELETE", target: jobsPath(uuid.New())})

		requireProblem(t, rec, nethttp.StatusServiceUnavailable, ProblemTypeUnavailable)
	})
}

func TestJobList(t *testing.T) {
	t.Parallel()

	t.Run("Filters", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			name   string
			query  string
			filter domain.Filter
		}{
			{"Defaults", "", domain.Filter{Limit: ListLimitDefault}},
			{"EmptyParametersAreAbsent", "?status=&type=&limit=&offset=", domain.Filter{Limit: ListLimitDefault}},
			{"All", "?status=pending&status=running&type=send_email&limit=10&offset=20",
				domain.Filter{Statuses: []domain.Status{domain.StatusPending, domain.StatusRunning}, Type: "send_email", Limit: 10, Offset: 20}},
			{"LimitBounds", "?limit=1000", domain.Filter{Limit: ListLimitMax}},
			{"UnknownParametersAreIgnored", "?sort=desc", domain.Filter{Limit: ListLimitDefault}},
			{"Key", "?key=customer%3A42&queue=email", domain.Filter{Key: "customer:42", Queue: "email", Limit: ListLimitDefault}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				b := setup(t, Config{})
				jobs := []*domain.Job{newTestJob(t, domain.StatusPending), newTestJob(t, domain.StatusRunning)}
				b.svc.ListFunc = func(_ context.Context, f domain.Filter) (domain.Page, error) {
					require.Equal(t, tt.filter, f)
					return domain.Page{Jobs: jobs, Total: 77}, nil
				}

				rec := b.do(t, request{method: "GET", target: "/jobs" + tt.query})

				list := requireJSON[ListResponse](t, rec, nethttp.StatusOK)
				require.Equal(t, 77, list.Total)
				require.Equal(t, tt.filter.Limit, list.Limit)
				require.Equal(t, tt.filter.Offset, list.Offset)
				require.Len(t, list.Jobs, 2)
				require.Equal(t, jobs[0].ID, list.Jobs[0].ID, "the service's order, oldest first, is kept")
				require.Equal(t, jobs[1].ID, list.Jobs[1].ID)
			})
		}
	})

	t.Run("EmptyIsAnEmptyArray", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		b.svc.ListFunc = func(context.Context, domain.Filter) (domain.Page, error) {
			return domain.Page{Jobs: []*domain.Job{}}, nil
		}

		rec := b.do(t, request{method: "GET", target: "/jobs"})

		require.Equal(t, nethttp.StatusOK, rec.Code)
		require.JSONEq(t, `{"jobs":[],"total":0,"limit":50,"offset":0}`, rec.Body.String())
	})

	t.Run("InvalidQuery", func(t *testing.T) {
		t.Parallel()
		statusMsg := "must be one of: scheduled, pending, running, completed, failed, canceled"
		tests := []struct {
			name   string
			query  string
			typ    string
			fields []FieldError
		}{
			{"BadStatus", "?status=done", ProblemTypeValidation, []FieldError{{Field: "status[0]", Message: statusMsg}}},
			{"SecondStatusBad", "?status=pending&status=Running", ProblemTypeValidation, []FieldError{{Field: "status[1]", Message: statusMsg}}},
			{"LimitZero", "?limit=0", ProblemTypeValidation, []FieldError{{Field: "limit", Message: "must be at least 1"}}},
			{"LimitTooLarge", "?limit=1001", ProblemTypeValidation, []FieldError{{Field: "limit", Message: "must be at most 1000"}}},
			{"LimitNotANumber", "?limit=ten", ProblemTypeValidation, []FieldError{{Field: "limit", Message: "must be an integer"}}},
			{"OffsetNegative", "?offset=-1", ProblemTypeValidation, []FieldError{{Field: "offset", Message: "must be at least 0"}}},
			{"BothNotNumbers", "?limit=x&offset=y", ProblemTypeValidation,
				[]FieldError{{Field: "limit", Message: "must be an integer"}, {Field: "offset", Message: "must be an integer"}}},
			{"TypeTooLong", "?type=" + strings.Repeat("t", 129), ProblemTypeValidation,
				[]FieldError{{Field: "type", Message: "must be at most 128 characters"}}},
			{"KeyTooLong", "?key=" + strings.Repeat("k", domain.MaxKeyLength+1), ProblemTypeValidation,
				[]FieldError{{Field: "key", Message: "is 256 bytes, more than 255"}}},
			{"KeyWithNUL", "?key=a%00b", ProblemTypeValidation, []FieldError{{Field: "key", Message: "must not contain NUL"}}},
			{"KeyNotUTF8", "?key=%ff", ProblemTypeValidation, []FieldError{{Field: "key", Message: "is not valid UTF-8"}}},
			{"MalformedQuery", "?limit=%zz", ProblemTypeInvalidRequest, nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				b := setup(t, Config{}) // ListFunc is nil: the service must not be called.

				rec := b.do(t, request{method: "GET", target: "/jobs" + tt.query})

				p := requireProblem(t, rec, nethttp.StatusBadRequest, tt.typ)
				require.Equal(t, tt.fields, p.Errors)
			})
		}
	})

	t.Run("NotRunning", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		b.svc.ListFunc = func(context.Context, domain.Filter) (domain.Page, error) {
			return domain.Page{}, fmt.Errorf("list: %w", domain.ErrNotRunning)
		}

		rec := b.do(t, request{method: "GET", target: "/jobs"})

		requireProblem(t, rec, nethttp.StatusServiceUnavailable, ProblemTypeUnavailable)
	})
}

func keys(m map[string]any) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}
