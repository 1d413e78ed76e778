package http

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	nethttp "net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/actors"
	"github.com/troupe-go/troupe/domain"
)

// loadSpec loads and validates the embedded OpenAPI document.
func loadSpec(t *testing.T) (*openapi3.T, routers.Router) {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(OpenAPISpec())
	require.NoError(t, err)
	require.NoError(t, doc.Validate(loader.Context))
	router, err := gorillamux.NewRouter(doc)
	require.NoError(t, err)
	return doc, router
}

// requireBearer stands in for the server's check when the spec is asked to
// validate a request: a protected operation needs a bearer token, or for
// the event streams a token query parameter.
func requireBearer(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	req := in.RequestValidationInput.Request
	switch in.SecuritySchemeName {
	case "bearerAuth":
		if _, ok := bearerToken(req.Header.Get("Authorization")); !ok {
			return errors.New("no bearer token")
		}
	case "queryToken":
		if req.URL.Query().Get(QueryToken) == "" {
			return errors.New("no token parameter")
		}
	default:
		return fmt.Errorf("unexpected security scheme %q", in.SecuritySchemeName)
	}
	return nil
}

// conformanceCase is one real exchange with the server, checked against
// the spec.
type conformanceCase struct {
	name string
	// arrange prepares the fake service.
	arrange func(t *testing.T, svc *fakeService)
	req     request
	// anonymous leaves out the bearer token that requests carry otherwise.
	anonymous bool
	// requestValid is whether the spec accepts the request: the spec and
	// the server must agree on what a bad request is, where the spec can
	// say it (it cannot know the registered types or the queue's state).
	requestValid bool
	status       int
	// skipBody skips the body check, for media types the validator cannot
	// decode (HTML); the status, headers and content type are still checked.
	skipBody bool
	// stream marks an event stream that does not end by itself: the
	// request's context is done before the call, so that the handler sends
	// its first lines and returns.
	stream bool
}

const conformanceToken = "conformance-token"

func TestOpenAPIConformance(t *testing.T) {
	t.Parallel()
	doc, router := loadSpec(t)

	id := uuid.MustParse("0195a3c4-7b1e-7c3a-9f1d-2b8e4a6c0d11")
	jobAs := func(t *testing.T, status domain.Status) *domain.Job {
		j := newTestJob(t, status)
		j.ID = id
		return j
	}
	submitOK := func(t *testing.T, svc *fakeService) {
		svc.SubmitFunc = func(_ context.Context, p actors.SubmitParams) (*domain.Job, error) {
			return domain.NewJob(p.Type, p.Payload, max(p.MaxAttempts, 3), testTime)
		}
	}
	submitErr := func(err error) func(*testing.T, *fakeService) {
		return func(_ *testing.T, svc *fakeService) {
			svc.SubmitFunc = func(context.Context, actors.SubmitParams) (*domain.Job, error) { return nil, err }
		}
	}
	submitBatchOK := func(t *testing.T, svc *fakeService) {
		var got []actors.SubmitParams
		svc.SubmitBatchFunc = batchSubmitted(t, &got)
	}
	submitBatchErr := func(err error) func(*testing.T, *fakeService) {
		return func(_ *testing.T, svc *fakeService) {
			svc.SubmitBatchFunc = func(context.Context, []actors.SubmitParams) ([]actors.SubmitResult, error) { return nil, err }
		}
	}
	getJob := func(j func(t *testing.T) *domain.Job, err error) func(*testing.T, *fakeService) {
		return func(t *testing.T, svc *fakeService) {
			svc.GetFunc = func(context.Context, uuid.UUID) (*domain.Job, error) {
				if err != nil {
					return nil, err
				}
				return j(t), nil
			}
		}
	}
	cancelJob := func(status domain.Status, err error) func(*testing.T, *fakeService) {
		return func(t *testing.T, svc *fakeService) {
			svc.CancelFunc = func(context.Context, uuid.UUID) (*domain.Job, error) {
				if err != nil {
					return nil, err
				}
				j := jobAs(t, domain.StatusPending)
				require.NoError(t, j.Cancel(testTime.Add(time.Minute)))
				j.Status = status
				return j, nil
			}
		}
	}
	listJobs := func(err error, jobs ...domain.Status) func(*testing.T, *fakeService) {
		return func(t *testing.T, svc *fakeService) {
			svc.ListFunc = func(context.Context, domain.Filter) (domain.Page, error) {
				page := domain.Page{Jobs: []*domain.Job{}}
				for _, s := range jobs {
					page.Jobs = append(page.Jobs, newTestJob(t, s))
				}
				page.Total = len(page.Jobs)
				return page, err
			}
		}
	}
	health := func(h actors.Health) func(*testing.T, *fakeService) {
		return func(_ *testing.T, svc *fakeService) {
			svc.HealthFunc = func(context.Context) actors.Health { return h }
		}
	}
	internal := errors.New("something broke")
	payloadTooLarge := fmt.Errorf("%w: the payload is 9 bytes, over the limit of 8 bytes", domain.ErrPayloadTooLarge)
	backupWith := func(fn func(context.Context, io.Writer) error) func(*testing.T, *fakeService) {
		return func(_ *testing.T, svc *fakeService) { svc.BackupFunc = fn }
	}
	jobPath := jobsPath(id)
	both := func(arrange ...func(*testing.T, *fakeService)) func(*testing.T, *fakeService) {
		return func(t *testing.T, svc *fakeService) {
			for _, a := range arrange {
				a(t, svc)
			}
		}
	}
	jobIn := func(status domain.Status) func(*testing.T, *fakeService) {
		return getJob(func(t *testing.T) *domain.Job { return jobAs(t, status) }, nil)
	}
	countJobs := func(err error) func(*testing.T, *fakeService) {
		return func(_ *testing.T, svc *fakeService) {
			svc.ListFunc = func(context.Context, domain.Filter) (domain.Page, error) {
				return domain.Page{Jobs: []*domain.Job{}, Total: 2}, err
			}
		}
	}
	completedEventID := jobEventID(newTestJob(t, domain.StatusCompleted))
	submitDuplicate := func(t *testing.T, svc *fakeService) {
		svc.SubmitFunc = func(_ context.Context, p actors.SubmitParams) (*domain.Job, error) {
			j := jobAs(t, domain.StatusRunning)
			j.UniqueKey, j.UniqueFor, j.Timeout = p.UniqueKey, 24*time.Hour, 30*time.Minute
			return j, fmt.Errorf("submit: %w", actors.ErrDuplicate)
		}
	}
	submitScheduled := func(t *testing.T, svc *fakeService) {
		svc.SubmitFunc = func(_ context.Context, p actors.SubmitParams) (*domain.Job, error) {
			j, err := domain.NewJob(p.Type, p.Payload, 3, testTime)
			require.NoError(t, err)
			j.ScheduleAt(testTime.Add(p.Delay), testTime)
			j.Queue, j.Priority, j.Timeout, j.UniqueKey = p.Queue, p.Priority, p.Timeout, p.UniqueKey
			return j, nil
		}
	}
	batchDuplicates := func(t *testing.T, svc *fakeService) {
		svc.SubmitBatchFunc = func(_ context.Context, ps []actors.SubmitParams) ([]actors.SubmitResult, error) {
			rs := make([]actors.SubmitResult, len(ps))
			for i := range rs {
				rs[i] = actors.SubmitResult{Job: jobAs(t, domain.StatusPending)}
			}
			return rs, nil
		}
	}
	// keyTaken records an Idempotency-Key for the conformance token: in
	// flight for the same request, or answered for another one.
	keyTaken := func(path, body string, done bool) func(*testing.T, *fakeService) {
		return func(t *testing.T, svc *fakeService) {
			fingerprint := requestFingerprint("POST", path, []byte(body))
			if done {
				fingerprint = "another request"
			}
			now := time.Now()
			rec := domain.RequestRecord{Scope: tokenScope(conformanceToken), Key: "k-1", Fingerprint: fingerprint, ExpiresAt: now.Add(time.Minute)}
			_, err := svc.requests.BeginRequest(t.Context(), now, rec)
			require.NoError(t, err)
			if done {
				rec.Status, rec.Body = 201, []byte(`{}`)
				require.NoError(t, svc.requests.FinishRequest(t.Context(), rec))
			}
		}
	}
	withKey := map[string]string{HeaderIdempotencyKey: "k-1"}
	answered := func(path, body string, status int, answer func(t *testing.T) any) func(*testing.T, *fakeService) {
		return func(t *testing.T, svc *fakeService) {
			data, err := json.Marshal(answer(t))
			require.NoError(t, err)
			now := time.Now()
			rec := domain.RequestRecord{Scope: tokenScope(conformanceToken), Key: "k-1",
				Fingerprint: requestFingerprint("POST", path, []byte(body)), ExpiresAt: now.Add(time.Minute)}
			_, err = svc.requests.BeginRequest(t.Context(), now, rec)
			require.NoError(t, err)
			rec.Status, rec.Body, rec.ExpiresAt = status, data, now.Add(time.Hour)
			require.NoError(t, svc.requests.FinishRequest(t.Context(), rec))
		}
	}
	queues := func(err error) func(*testing.T, *fakeService) {
		return func(_ *testing.T, svc *fakeService) {
			svc.QueuesFunc = func(ctx context.Context) ([]actors.QueueInfo, error) {
				if err != nil {
					return nil, err
				}
				return twoQueues(ctx)
			}
		}
	}
	pause := func(err error) func(*testing.T, *fakeService) {
		return func(_ *testing.T, svc *fakeService) {
			svc.PauseFunc = func(_ context.Context, name string, paused bool) (actors.QueueInfo, error) {
				return actors.QueueInfo{QueueInfo: domain.QueueInfo{Name: name, Paused: paused, Pending: 3}, Limit: 2}, err
			}
		}
	}

	cases := []conformanceCase{
		// POST /jobs
		{name: "SubmitCreated", arrange: submitOK, requestValid: true, status: 201,
			req: request{method: "POST", target: "/jobs", body: `{"type":"send_email","payload":{"to":"ada@example.com"},"maxAttempts":5}`}},
		{name: "SubmitWithoutPayload", arrange: submitOK, requestValid: true, status: 201,
			req: request{method: "POST", target: "/jobs", body: `{"type":"noop"}`}},
		{name: "SubmitScalarPayload", arrange: submitOK, requestValid: true, status: 201,
			req: request{method: "POST", target: "/jobs", body: `{"type":"noop","payload":"text"}`}},
		{name: "SubmitNullPayload", arrange: submitOK, requestValid: true, status: 201,
			req: request{method: "POST", target: "/jobs", body: `{"type":"noop","payload":null}`}},
		{name: "SubmitScheduled", arrange: submitScheduled, requestValid: true, status: 201,
			req: request{method: "POST", target: "/jobs", body: `{"type":"generate_report","delay":"1h","queue":"reports","priority":1,"timeout":"10m","uniqueKey":"report:2025-02","uniqueFor":"24h"}`}},
		{name: "SubmitAt", arrange: submitOK, requestValid: true, status: 201,
			req: request{method: "POST", target: "/jobs", body: `{"type":"noop","runAt":"2030-01-01T00:00:00Z","timeout":"0s"}`}},
		{name: "SubmitDuplicate", arrange: submitDuplicate, requestValid: true, status: 200,
			req: request{method: "POST", target: "/jobs", body: `{"type":"send_email","uniqueKey":"welcome:ada"}`}},
		{name: "SubmitIdempotent", arrange: submitOK, requestValid: true, status: 201,
			req: request{method: "POST", target: "/jobs", body: `{"type":"noop"}`, header: withKey}},
		{name: "SubmitReplayed", requestValid: true, status: 201,
			arrange: answered("/jobs", `{"type":"noop"}`, 201, func(t *testing.T) any { return newJobResponse(jobAs(t, domain.StatusPending)) }),
			req:     request{method: "POST", target: "/jobs", body: `{"type":"noop"}`, header: withKey}},
		{name: "BatchReplayed", requestValid: true, status: 201,
			arrange: answered("/jobs/batch", `{"jobs":[{"type":"noop"}]}`, 201, func(t *testing.T) any {
				return BatchSubmitResponse{Jobs: []JobResponse{newJobResponse(jobAs(t, domain.StatusPending))}, Results: []BatchResult{{Created: true}}}
			}),
			req: request{method: "POST", target: "/jobs/batch", body: `{"jobs":[{"type":"noop"}]}`, header: withKey}},
		{name: "SubmitIdempotencyKeyInUse", arrange: keyTaken("/jobs", `{"type":"noop"}`, false), requestValid: true, status: 409,
			req: request{method: "POST", target: "/jobs", body: `{"type":"noop"}`, header: withKey}},
		{name: "SubmitIdempotencyKeyReused", arrange: keyTaken("/jobs", `{"type":"noop"}`, true), requestValid: true, status: 422,
			req: request{method: "POST", target: "/jobs", body: `{"type":"noop"}`, header: withKey}},
		{name: "TriggerReplayed", requestValid: true, status: 201,
			arrange: answered("/schedules/digest/trigger", "", 201, func(t *testing.T) any { return newJobResponse(jobAs(t, domain.StatusPending)) }),
			req:     request{method: "POST", target: "/schedules/digest/trigger", header: withKey}},
		{name: "TriggerIdempotencyKeyInUse", arrange: keyTaken("/schedules/digest/trigger", "", false), requestValid: true, status: 409,
			req: request{method: "POST", target: "/schedules/digest/trigger", header: withKey}},
		{name: "TriggerIdempotencyKeyReused", arrange: keyTaken("/schedules/digest/trigger", "", true), requestValid: true, status: 422,
			req: request{method: "POST", target: "/schedules/digest/trigger", header: withKey}},
		{name: "SubmitIdempotencyKeyNotASCII", requestValid: false, status: 400,
			req: request{method: "POST", target: "/jobs", body: `{"type":"noop"}`, header: map[string]string{HeaderIdempotencyKey: "clé"}}},
		{name: "SubmitPriorityZero", requestValid: false, status: 400,
			req: request{method: "POST", target: "/jobs", body: `{"type":"noop","priority":0}`}},
		{name: "SubmitBadQueue", requestValid: false, status: 400,
			req: request{method: "POST", target: "/jobs", body: `{"type":"noop","queue":"Bulk"}`}},
		{name: "SubmitRunAtAndDelay", requestValid: true, status: 400,
			req: request{method: "POST", target: "/jobs", body: `{"type":"noop","runAt":"2030-01-01T00:00:00Z","delay":"5m"}`}},
		{name: "SubmitInvalidJSON", requestValid: false, status: 400,
			req: request{method: "POST", target: "/jobs", body: `{"type":`}},
		{name: "SubmitUnknownField", requestValid: false, status: 400,
			req: request{method: "POST", target: "/jobs", body: `{"type":"noop","urgency":1}`}},
		{name: "SubmitMissingType", requestValid: false, status: 400,
			req: request{method: "POST", target: "/jobs", body: `{"payload":{}}`}},
		{name: "SubmitTooManyAttempts", requestValid: false, status: 400,
			req: request{method: "POST", target: "/jobs", body: `{"type":"noop","maxAttempts":101}`}},
		{name: "SubmitNegativeAttempts", requestValid: false, status: 400,
			req: request{method: "POST", target: "/jobs", body: `{"type":"noop","maxAttempts":-1}`}},
		{name: "SubmitUnknownType", arrange: submitErr(domain.ErrUnknownJobType), requestValid: true, status: 400,
			req: request{method: "POST", target: "/jobs", body: `{"type":"send_mail"}`}},
		{name: "SubmitUnauthorized", anonymous: true, requestValid: false, status: 401,
			req: request{method: "POST", target: "/jobs", body: `{"type":"noop"}`}},
		{name: "SubmitTooLarge", requestValid: true, status: 413,
			req: request{method: "POST", target: "/jobs", body: `{"type":"noop","payload":"` + strings.Repeat("x", 1<<20) + `"}`}},
		{name: "SubmitPayloadOverRuntimeLimit", arrange: submitErr(payloadTooLarge), requestValid: true, status: 413,
			req: request{method: "POST", target: "/jobs", body: `{"type":"noop","payload":"1234567"}`}},
		{name: "SubmitPayloadTooDeep", requestValid: true, status: 400,
			req: request{method: "POST", target: "/jobs", body: `{"type":"noop","payload":` + strings.Repeat("[", 65) + strings.Repeat("]", 65) + `}`}},
		{name: "SubmitTextPlain", requestValid: false, status: 415,
			req: request{method: "POST", target: "/jobs", body: `{"type":"noop"}`, header: map[string]string{"Content-Type": "text/plain"}}},
		{name: "SubmitBrotli", requestValid: true, status: 415,
			req: request{method: "POST", target: "/jobs", body: `{"type":"noop"}`, header: map[string]string{"Content-Encoding": "br"}}},
		{name: "SubmitInternal", arrange: submitErr(internal), requestValid: true, status: 500,
			req: request{method: "POST", target: "/jobs", body: `{"type":"noop"}`}},
		{name: "SubmitOutage", arrange: submitErr(fmt.Errorf("%w (failed to connect to `host=db.internal user=admin`)", domain.ErrUnavailable)), requestValid: true, status: 503,
			req: request{method: "POST", target: "/jobs", body: `{"type":"noop"}`}},
		{name: "SubmitQueueFull", arrange: submitErr(domain.ErrQueueFull), requestValid: true, status: 503,
			req: request{method: "POST", target: "/jobs", body: `{"type":"noop"}`}},
		{name: "SubmitNotRunning", arrange: submitErr(domain.ErrNotRunning), requestValid: true, status: 503,
			req: request{method: "POST", target: "/jobs", body: `{"type":"noop"}`}},
		{name: "SubmitStorageFull", arrange: submitErr(domain.ErrStorageFull), requestValid: true, status: 507,
			req: request{method: "POST", target: "/jobs", body: `{"type":"noop"}`}},

		// POST /jobs/batch
		{name: "BatchCreated", arrange: submitBatchOK, requestValid: true, status: 201,
			req: request{method: "POST", target: "/jobs/batch", body: `{"jobs":[{"type":"send_email","payload":{"to":"ada@example.com"},"maxAttempts":5},{"type":"noop"}]}`}},
		{name: "BatchFull", arrange: submitBatchOK, requestValid: true, status: 201,
			req: request{method: "POST", target: "/jobs/batch", body: batchBody(MaxBatchJobs, "noop")}},
		{name: "BatchDuplicates", arrange: batchDuplicates, requestValid: true, status: 200,
			req: request{method: "POST", target: "/jobs/batch", body: `{"jobs":[{"type":"noop","uniqueKey":"k"},{"type":"noop","uniqueKey":"k"}]}`}},
		{name: "BatchScheduled", arrange: submitBatchOK, requestValid: true, status: 201,
			req: request{method: "POST", target: "/jobs/batch", body: `{"jobs":[{"type":"noop","delay":"90s","queue":"bulk","priority":9}]}`, header: withKey}},
		{name: "BatchIdempotencyKeyInUse", arrange: keyTaken("/jobs/batch", `{"jobs":[{"type":"noop"}]}`, false), requestValid: true, status: 409,
			req: request{method: "POST", target: "/jobs/batch", body: `{"jobs":[{"type":"noop"}]}`, header: withKey}},
		{name: "BatchIdempotencyKeyReused", arrange: keyTaken("/jobs/batch", `{"jobs":[{"type":"noop"}]}`, true), requestValid: true, status: 422,
			req: request{method: "POST", target: "/jobs/batch", body: `{"jobs":[{"type":"noop"}]}`, header: withKey}},
		{name: "BatchEmpty", requestValid: false, status: 400,
			req: request{method: "POST", target: "/jobs/batch", body: `{"jobs":[]}`}},
		{name: "BatchTooMany", requestValid: false, status: 400,
			req: request{method: "POST", target: "/jobs/batch", body: batchBody(MaxBatchJobs+1, "noop")}},
		{name: "BatchInvalidJob", requestValid: false, status: 400,
			req: request{method: "POST", target: "/jobs/batch", body: `{"jobs":[{"type":"noop"},{"type":"noop","maxAttempts":101}]}`}},
		{name: "BatchUnknownField", requestValid: false, status: 400,
			req: request{method: "POST", target: "/jobs/batch", body: `{"jobs":[{"type":"noop","urgency":1}]}`}},
		{name: "BatchUnknownType", requestValid: true, status: 400,
			req: request{method: "POST", target: "/jobs/batch", body: `{"jobs":[{"type":"noop"},{"type":"send_mail"}]}`}},
		{name: "BatchUnauthorized", anonymous: true, requestValid: false, status: 401,
			req: request{method: "POST", target: "/jobs/batch", body: `{"jobs":[{"type":"noop"}]}`}},
		{name: "BatchTooLarge", requestValid: true, status: 413,
			req: request{method: "POST", target: "/jobs/batch", body: `{"jobs":[{"type":"noop","payload":"` + strings.Repeat("x", 16<<20) + `"}]}`}},
		{name: "BatchPayloadTooLarge", requestValid: true, status: 413,
			req: request{method: "POST", target: "/jobs/batch", body: `{"jobs":[{"type":"noop"},{"type":"noop","payload":"` + strings.Repeat("x", 2<<20) + `"}]}`}},
		{name: "BatchForm", requestValid: false, status: 415,
			req: request{method: "POST", target: "/jobs/batch", body: `jobs=noop`, header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}}},
		{name: "BatchInternal", arrange: submitBatchErr(internal), requestValid: true, status: 500,
			req: request{method: "POST", target: "/jobs/batch", body: `{"jobs":[{"type":"noop"}]}`}},
		{name: "BatchQueueFull", arrange: submitBatchErr(domain.ErrQueueFull), requestValid: true, status: 503,
			req: request{method: "POST", target: "/jobs/batch", body: `{"jobs":[{"type":"noop"},{"type":"noop"}]}`}},
		{name: "BatchNotRunning", arrange: submitBatchErr(domain.ErrNotRunning), requestValid: true, status: 503,
			req: request{method: "POST", target: "/jobs/batch", body: `{"jobs":[{"type":"noop"}]}`}},
		{name: "BatchStorageFull", arrange: submitBatchErr(domain.ErrStorageFull), requestValid: true, status: 507,
			req: request{method: "POST", target: "/jobs/batch", body: `{"jobs":[{"type":"noop"}]}`}},

		// GET /jobs
		{name: "List", arrange: listJobs(nil, domain.StatusPending, domain.StatusRunning, domain.StatusCompleted), requestValid: true, status: 200,
			req: request{method: "GET", target: "/jobs?status=pending&status=running&status=completed&type=send_email&limit=10&offset=0"}},
		{name: "ListScheduledInQueue", arrange: listJobs(nil, domain.StatusScheduled), requestValid: true, status: 200,
			req: request{method: "GET", target: "/jobs?status=scheduled&queue=email"}},
		{name: "ListBadQueue", requestValid: false, status: 400,
			req: request{method: "GET", target: "/jobs?queue=E-mail"}},
		{name: "ListEmpty", arrange: listJobs(nil), requestValid: true, status: 200,
			req: request{method: "GET", target: "/jobs"}},
		{name: "ListBadStatus", requestValid: false, status: 400,
			req: request{method: "GET", target: "/jobs?status=done"}},
		{name: "ListLimitZero", requestValid: false, status: 400,
			req: request{method: "GET", target: "/jobs?limit=0"}},
		{name: "ListLimitTooLarge", requestValid: false, status: 400,
			req: request{method: "GET", target: "/jobs?limit=1001"}},
		{name: "ListLimitNotANumber", requestValid: false, status: 400,
			req: request{method: "GET", target: "/jobs?limit=ten"}},
		{name: "ListNegativeOffset", requestValid: false, status: 400,
			req: request{method: "GET", target: "/jobs?offset=-5"}},
		{name: "ListUnauthorized", anonymous: true, requestValid: false, status: 401,
			req: request{method: "GET", target: "/jobs"}},
		{name: "ListInternal", arrange: listJobs(internal), requestValid: true, status: 500,
			req: request{method: "GET", target: "/jobs"}},
		{name: "ListNotRunning", arrange: listJobs(domain.ErrNotRunning), requestValid: true, status: 503,
			req: request{method: "GET", target: "/jobs"}},

		// GET /jobs/{id}
		{name: "GetPending", arrange: getJob(func(t *testing.T) *domain.Job { return jobAs(t, domain.StatusPending) }, nil), requestValid: true, status: 200,
			req: request{method: "GET", target: jobPath, header: map[string]string{HeaderRequestID: "conformance-1"}}},
		{name: "GetRetrying", requestValid: true, status: 200,
			arrange: getJob(func(t *testing.T) *domain.Job {
				j := jobAs(t, domain.StatusRunning)
				require.NoError(t, j.Retry(errors.New("smtp: connection refused"), testTime.Add(time.Minute), testTime.Add(time.Second)))
				return j
			}, nil),
			req: request{method: "GET", target: jobPath}},
		{name: "GetFailed", arrange: getJob(func(t *testing.T) *domain.Job { return jobAs(t, domain.StatusFailed) }, nil), requestValid: true, status: 200,
			req: request{method: "GET", target: jobPath}},
		{name: "GetBinaryPayload", requestValid: true, status: 200,
			arrange: getJob(func(t *testing.T) *domain.Job {
				j := jobAs(t, domain.StatusPending)
				j.Payload = []byte{0xff, 0xfe}
				return j
			}, nil),
			req: request{method: "GET", target: jobPath}},
		{name: "GetMalformedID", requestValid: false, status: 400,
			req: request{method: "GET", target: "/jobs/42"}},
		{name: "GetUnauthorized", anonymous: true, requestValid: false, status: 401,
			req: request{method: "GET", target: jobPath}},
		{name: "GetNotFound", arrange: getJob(nil, domain.ErrNotFound), requestValid: true, status: 404,
			req: request{method: "GET", target: jobPath}},
		{name: "GetInternal", arrange: getJob(nil, internal), requestValid: true, status: 500,
			req: request{method: "GET", target: jobPath}},
		{name: "GetNotRunning", arrange: getJob(nil, domain.ErrNotRunning), requestValid: true, status: 503,
			req: request{method: "GET", target: jobPath}},

		// DELETE /jobs/{id}
		{name: "CancelCanceled", arrange: cancelJob(domain.StatusCanceled, nil), requestValid: true, status: 200,
			req: request{method: "DELETE", target: jobPath}},
		{name: "CancelStillRunning", arrange: cancelJob(domain.StatusRunning, nil), requestValid: true, status: 200,
			req: request{method: "DELETE", target: jobPath}},
		{name: "CancelMalformedID", requestValid: false, status: 400,
			req: request{method: "DELETE", target: "/jobs/not-a-uuid"}},
		{name: "CancelUnauthorized", anonymous: true, requestValid: false, status: 401,
			req: request{method: "DELETE", target: jobPath}},
		{name: "CancelNotFound", arrange: cancelJob("", domain.ErrNotFound), requestValid: true, status: 404,
			req: request{method: "DELETE", target: jobPath}},
		{name: "CancelCompleted", arrange: cancelJob("", fmt.Errorf("job %s is completed: %w", id, domain.ErrNotCancelable)), requestValid: true, status: 409,
			req: request{method: "DELETE", target: jobPath}},
		{name: "CancelInternal", arrange: cancelJob("", internal), requestValid: true, status: 500,
			req: request{method: "DELETE", target: jobPath}},
		{name: "CancelNotRunning", arrange: cancelJob("", domain.ErrNotRunning), requestValid: true, status: 503,
			req: request{method: "DELETE", target: jobPath}},

		// Operations
		{name: "HealthOK", anonymous: true, requestValid: true, status: 200,
			arrange: health(actors.Health{Stats: actors.Stats{Workers: actors.WorkerStats{Size: 4, Busy: 1}, QueueDepth: 3, Running: true}}),
			req:     request{method: "GET", target: "/health"}},
		{name: "HealthDown", requestValid: true, status: 503,
			arrange: health(actors.Health{Stats: actors.Stats{Running: true}, Store: errors.New("ping: timeout")}),
			req:     request{method: "GET", target: "/health"}},
		{name: "HealthDownAnonymous", anonymous: true, requestValid: true, status: 503,
			arrange: health(actors.Health{Store: errors.New("ping: timeout")}),
			req:     request{method: "GET", target: "/health"}},
		{name: "Metrics", requestValid: true, status: 200,
			req: request{method: "GET", target: "/metrics"}},
		{name: "MetricsUnauthorized", anonymous: true, requestValid: false, status: 401,
			req: request{method: "GET", target: "/metrics"}},
		{name: "OpenAPI", anonymous: true, requestValid: true, status: 200,
			req: request{method: "GET", target: "/openapi.yaml"}},
		{name: "Docs", anonymous: true, requestValid: true, status: 200, skipBody: true,
			req: request{method: "GET", target: "/docs"}},
		{name: "Dashboard", anonymous: true, requestValid: true, status: 200, skipBody: true,
			req: request{method: "GET", target: "/"}},
		{name: "Stats", arrange: countJobs(nil), requestValid: true, status: 200,
			req: request{method: "GET", target: "/stats"}},
		{name: "StatsUnauthorized", anonymous: true, requestValid: false, status: 401,
			req: request{method: "GET", target: "/stats"}},
		{name: "StatsInternal", arrange: countJobs(internal), requestValid: true, status: 500,
			req: request{method: "GET", target: "/stats"}},
		{name: "StatsNotRunning", arrange: countJobs(domain.ErrClosed), requestValid: true, status: 503,
			req: request{method: "GET", target: "/stats"}},

		// /queues
		{name: "Queues", arrange: queues(nil), requestValid: true, status: 200,
			req: request{method: "GET", target: "/queues"}},
		{name: "QueuesNone", requestValid: true, status: 200,
			req: request{method: "GET", target: "/queues"}},
		{name: "QueuesUnauthorized", anonymous: true, requestValid: false, status: 401,
			req: request{method: "GET", target: "/queues"}},
		{name: "QueuesInternal", arrange: queues(internal), requestValid: true, status: 500,
			req: request{method: "GET", target: "/queues"}},
		{name: "QueuesUnavailable", arrange: queues(domain.ErrUnavailable), requestValid: true, status: 503,
			req: request{method: "GET", target: "/queues"}},
		{name: "Pause", arrange: pause(nil), requestValid: true, status: 200,
			req: request{method: "POST", target: "/queues/email/pause"}},
		{name: "PauseBadName", requestValid: false, status: 400,
			req: request{method: "POST", target: "/queues/E-mail/pause"}},
		{name: "PauseUnauthorized", anonymous: true, requestValid: false, status: 401,
			req: request{method: "POST", target: "/queues/email/pause"}},
		{name: "PauseInternal", arrange: pause(internal), requestValid: true, status: 500,
			req: request{method: "POST", target: "/queues/email/pause"}},
		{name: "PauseUnavailable", arrange: pause(domain.ErrClosed), requestValid: true, status: 503,
			req: request{method: "POST", target: "/queues/email/pause"}},
		{name: "Resume", arrange: pause(nil), requestValid: true, status: 200,
			req: request{method: "POST", target: "/queues/email/resume"}},
		{name: "ResumeBadName", requestValid: false, status: 400,
			req: request{method: "POST", target: "/queues/_x/resume"}},
		{name: "ResumeUnauthorized", anonymous: true, requestValid: false, status: 401,
			req: request{method: "POST", target: "/queues/email/resume"}},
		{name: "ResumeInternal", arrange: pause(internal), requestValid: true, status: 500,
			req: request{method: "POST", target: "/queues/email/resume"}},
		{name: "ResumeUnavailable", arrange: pause(domain.ErrNotRunning), requestValid: true, status: 503,
			req: request{method: "POST", target: "/queues/email/resume"}},
		{name: "StatsWithQueues", arrange: both(countJobs(nil), queues(nil)), requestValid: true, status: 200,
			req: request{method: "GET", target: "/stats"}},

		// GET /job-types
		{name: "JobTypes", requestValid: true, status: 200,
			req: request{method: "GET", target: "/job-types"}},
		{name: "JobTypesUnauthorized", anonymous: true, requestValid: false, status: 401,
			req: request{method: "GET", target: "/job-types"}},

		// POST /jobs/{id}/retry
		{name: "RetryFailed", arrange: both(jobIn(domain.StatusFailed), submitOK), requestValid: true, status: 201,
			req: request{method: "POST", target: jobPath + "/retry"}},
		{name: "RetryCanceled", arrange: both(jobIn(domain.StatusCanceled), submitOK), requestValid: true, status: 201,
			req: request{method: "POST", target: jobPath + "/retry"}},
		{name: "RetryMalformedID", requestValid: false, status: 400,
			req: request{method: "POST", target: "/jobs/42/retry"}},
		{name: "RetryUnknownType", arrange: both(jobIn(domain.StatusFailed), submitErr(domain.ErrUnknownJobType)), requestValid: true, status: 400,
			req: request{method: "POST", target: jobPath + "/retry"}},
		{name: "RetryUnauthorized", anonymous: true, requestValid: false, status: 401,
			req: request{method: "POST", target: jobPath + "/retry"}},
		{name: "RetryNotFound", arrange: getJob(nil, domain.ErrNotFound), requestValid: true, status: 404,
			req: request{method: "POST", target: jobPath + "/retry"}},
		{name: "RetryRunning", arrange: jobIn(domain.StatusRunning), requestValid: true, status: 409,
			req: request{method: "POST", target: jobPath + "/retry"}},
		{name: "RetryCompleted", arrange: jobIn(domain.StatusCompleted), requestValid: true, status: 409,
			req: request{method: "POST", target: jobPath + "/retry"}},
		{name: "RetryInternal", arrange: getJob(nil, internal), requestValid: true, status: 500,
			req: request{method: "POST", target: jobPath + "/retry"}},
		{name: "RetryPayloadTooLarge", arrange: both(jobIn(domain.StatusFailed), submitErr(payloadTooLarge)), requestValid: true, status: 413,
			req: request{method: "POST", target: jobPath + "/retry"}},
		{name: "RetryQueueFull", arrange: both(jobIn(domain.StatusFailed), submitErr(domain.ErrQueueFull)), requestValid: true, status: 503,
			req: request{method: "POST", target: jobPath + "/retry"}},

		// GET /events
		{name: "Events", arrange: countJobs(nil), stream: true, requestValid: true, status: 200, skipBody: true,
			req: request{method: "GET", target: "/events"}},
		{name: "EventsQueryToken", arrange: countJobs(nil), stream: true, anonymous: true, requestValid: true, status: 200, skipBody: true,
			req: request{method: "GET", target: "/events?token=" + conformanceToken}},
		{name: "EventsUnauthorized", anonymous: true, requestValid: false, status: 401,
			req: request{method: "GET", target: "/events"}},

		// GET /jobs/{id}/events
		{name: "JobEvents", arrange: jobIn(domain.StatusCompleted), requestValid: true, status: 200, skipBody: true,
			req: request{method: "GET", target: jobPath + "/events"}},
		{name: "JobEventsQueryToken", arrange: jobIn(domain.StatusFailed), anonymous: true, requestValid: true, status: 200, skipBody: true,
			req: request{method: "GET", target: jobPath + "/events?token=" + conformanceToken}},
		{name: "JobEventsAlreadySeen", arrange: jobIn(domain.StatusCompleted), requestValid: true, status: 204,
			req: request{method: "GET", target: jobPath + "/events", header: map[string]string{"Last-Event-ID": completedEventID}}},
		{name: "JobEventsMalformedID", requestValid: false, status: 400,
			req: request{method: "GET", target: "/jobs/42/events"}},
		{name: "JobEventsUnauthorized", anonymous: true, requestValid: false, status: 401,
			req: request{method: "GET", target: jobPath + "/events"}},
		{name: "JobEventsNotFound", arrange: getJob(nil, domain.ErrNotFound), requestValid: true, status: 404,
			req: request{method: "GET", target: jobPath + "/events"}},
		{name: "JobEventsInternal", arrange: getJob(nil, internal), requestValid: true, status: 500,
			req: request{method: "GET", target: jobPath + "/events"}},
		{name: "JobEventsNotRunning", arrange: getJob(nil, domain.ErrNotRunning), requestValid: true, status: 503,
			req: request{method: "GET", target: jobPath + "/events"}},

		{name: "Backup", arrange: backupWith(func(_ context.Context, w io.Writer) error {
			_, err := w.Write([]byte("TROUPEBK\x00\x01 a backup"))
			return err
		}), requestValid: true, status: 200, req: request{method: "GET", target: BackupPath}},
		{name: "BackupUnauthorized", anonymous: true, status: 401, req: request{method: "GET", target: BackupPath}},
		{name: "BackupUnsupported", requestValid: true, status: 409, req: request{method: "GET", target: BackupPath}},
		{name: "BackupInternal", arrange: backupWith(func(context.Context, io.Writer) error { return internal }),
			requestValid: true, status: 500, req: request{method: "GET", target: BackupPath}},
		{name: "BackupStoreClosed", arrange: backupWith(func(context.Context, io.Writer) error { return domain.ErrClosed }),
			requestValid: true, status: 503, req: request{method: "GET", target: BackupPath}},
	}
	cases = append(cases, scheduleConformanceCases()...)
	cases = append(cases, flowConformanceCases()...)
	cases = append(cases, workerConformanceCases()...)
	cases = append(cases, forbiddenConformanceCases(cases)...)

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			checkExchange(t, router, tc)
		})
	}

	// Each exchange checks that its status really happens; together they
	// must cover every documented response, so that the spec documents
	// nothing the server never says.
	t.Run("EveryDocumentedResponseIsExercised", func(t *testing.T) {
		t.Parallel()
		covered := map[string]bool{}
		for _, tc := range cases {
			route, _, err := router.FindRoute(httptest.NewRequest(tc.req.method, tc.req.target, nil))
			require.NoError(t, err)
			covered[fmt.Sprintf("%s %s %d", route.Method, route.Path, tc.status)] = true
		}
		for path, item := range doc.Paths.Map() {
			for method, op := range item.Operations() {
				for status := range op.Responses.Map() {
					key := fmt.Sprintf("%s %s %s", method, path, status)
					require.True(t, covered[key], "no exchange exercises %s", key)
				}
			}
		}
	})
}

// checkExchange sends tc's request to a server with auth on, and checks the
// request and the response against the spec.
func checkExchange(t *testing.T, router routers.Router, tc conformanceCase) {
	t.Helper()
	b := setup(t, Config{APITokens: []string{conformanceToken}, WorkerTokens: []string{conformanceWorkerToken}})
	if tc.arrange != nil {
		tc.arrange(t, b.svc)
	}
	newRequest := func() *nethttp.Request {
		var body io.Reader
		if tc.req.body != "" {
			body = strings.NewReader(tc.req.body)
		}
		r := httptest.NewRequest(tc.req.method, tc.req.target, body)
		if tc.req.body != "" {
			r.Header.Set("Content-Type", "application/json")
		}
		for k, v := range tc.req.header {
			r.Header.Set(k, v)
		}
		if !tc.anonymous {
			r.Header.Set("Authorization", "Bearer "+conformanceToken)
		}
		if tc.stream {
			ctx, cancel := context.WithCancel(r.Context())
			cancel()
			r = r.WithContext(ctx)
		}
		return r
	}

	req := newRequest()
	route, pathParams, err := router.FindRoute(req)
	require.NoError(t, err, "the spec has no route for %s %s", tc.req.method, tc.req.target)
	input := &openapi3filter.RequestValidationInput{
		Request:    req,
		PathParams: pathParams,
		Route:      route,
		Options:    &openapi3filter.Options{AuthenticationFunc: requireBearer, MultiError: true},
	}
	err = openapi3filter.ValidateRequest(t.Context(), input)
	if tc.requestValid {
		require.NoError(t, err, "the spec rejects a request the server accepts as well-formed")
	} else {
		require.Error(t, err, "the spec accepts a request the server rejects")
	}

	rec := httptest.NewRecorder()
	b.server.Handler().ServeHTTP(rec, newRequest())
	require.Equal(t, tc.status, rec.Code, "body: %s", rec.Body.String())

	err = openapi3filter.ValidateResponse(t.Context(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: input,
		Status:                 rec.Code,
		Header:                 rec.Header(),
		Body:                   io.NopCloser(bytes.NewReader(rec.Body.Bytes())),
		Options: &openapi3filter.Options{
			IncludeResponseStatus: true,
			ExcludeResponseBody:   tc.skipBody,
			MultiError:            true,
		},
	})
	require.NoError(t, err, "response: %s", rec.Body.String())
	if tc.skipBody {
		ct := rec.Header().Get("Content-Type")
		require.NotNil(t, route.Operation.Responses.Status(tc.status).Value.Content.Get(ct), "content type %s is not documented", ct)
	}
}
