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

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/actors"
	"github.com/troupe-go/troupe/domain"
)

// claimedJob returns a running job as a claim hands it out, with its lease.
func claimedJob(t *testing.T, token string) actors.ClaimedJob {
	t.Helper()
	j := newTestJob(t, domain.StatusRunning)
	j.Type = "resize_image"
	return actors.ClaimedJob{Job: j, LeaseToken: token, LeaseExpiresAt: testTime.Add(time.Minute)}
}

func TestClaim(t *testing.T) {
	t.Parallel()

	t.Run("HandsOutLeasedJobs", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		var got actors.ClaimParams
		first, second := claimedJob(t, "tok-1"), claimedJob(t, "tok-1")
		b.svc.ClaimFunc = func(_ context.Context, p actors.ClaimParams) ([]actors.ClaimedJob, error) {
			got = p
			return []actors.ClaimedJob{first, second}, nil
		}
		rec := b.do(t, request{method: "POST", target: "/workers/claim",
			body: `{"types":["resize_image","transcode"],"queues":["media"],"max":10,"wait":"2s","worker":"host-1/pid-42","lease":"1m"}`})
		resp := requireJSON[ClaimResponse](t, rec, nethttp.StatusOK)
		require.Equal(t, actors.ClaimParams{Types: []domain.JobType{"resize_image", "transcode"}, Queues: []string{"media"},
			Max: 10, Wait: 2 * time.Second, Worker: "host-1/pid-42", Lease: time.Minute}, got)
		require.Len(t, resp.Jobs, 2)
		require.Equal(t, first.Job.ID, resp.Jobs[0].ID)
		require.Equal(t, domain.StatusRunning, resp.Jobs[0].Status)
		require.Equal(t, 1, resp.Jobs[0].Attempt)
		require.Equal(t, "tok-1", resp.Jobs[0].LeaseToken)
		require.True(t, resp.Jobs[0].LeaseExpiresAt.Equal(testTime.Add(time.Minute)))
		require.JSONEq(t, `{"to":"ada@example.com"}`, string(resp.Jobs[0].Payload))
	})

	t.Run("Defaults", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		var got actors.ClaimParams
		b.svc.ClaimFunc = func(_ context.Context, p actors.ClaimParams) ([]actors.ClaimedJob, error) {
			got = p
			return nil, nil
		}
		rec := b.do(t, request{method: "POST", target: "/workers/claim", body: `{"types":["resize_image"]}`})
		require.Equal(t, nethttp.StatusOK, rec.Code, rec.Body.String())
		// An empty claim is an empty array, never null.
		require.JSONEq(t, `{"jobs":[]}`, rec.Body.String())
		require.Equal(t, actors.ClaimParams{Types: []domain.JobType{"resize_image"}, Max: 1, Lease: actors.LeaseDefault}, got)
	})

	t.Run("Validation", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			name, body string
			fields     []string
		}{
			{"NoTypes", `{}`, []string{"types"}},
			{"EmptyTypes", `{"types":[]}`, []string{"types"}},
			{"TooManyTypes", `{"types":[` + strings.TrimSuffix(strings.Repeat(`"a",`, 101), ",") + `]}`, []string{"types"}},
			{"EmptyType", `{"types":[""]}`, []string{"types[0]"}},
			{"MaxZero", `{"types":["a"],"max":0}`, []string{"max"}},
			{"MaxTooLarge", `{"types":["a"],"max":101}`, []string{"max"}},
			{"WaitTooLong", `{"types":["a"],"wait":"61s"}`, []string{"wait"}},
			{"WaitNegative", `{"types":["a"],"wait":"-1s"}`, []string{"wait"}},
			{"WaitNotADuration", `{"types":["a"],"wait":"soon"}`, []string{"wait"}},
			{"LeaseTooShort", `{"types":["a"],"lease":"4s"}`, []string{"lease"}},
			{"LeaseTooLong", `{"types":["a"],"lease":"11m"}`, []string{"lease"}},
			{"WorkerTooLong", `{"types":["a"],"worker":"` + strings.Repeat("é", 128) + `"}`, []string{"worker"}},
			{"BadQueue", `{"types":["a"],"queues":["media","Media"]}`, []string{"queues[1]"}},
			{"Several", `{"types":["a"],"wait":"2m","lease":"1s"}`, []string{"wait", "lease"}},
			{"UnknownField", `{"types":["a"],"batch":5}`, []string{"batch"}},
			{"TypesNotArray", `{"types":"a"}`, []string{"types"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				b := setup(t, Config{})
				requireInvalidFields(t, b.do(t, request{method: "POST", target: "/workers/claim", body: tc.body}), tc.fields)
			})
		}
	})

	t.Run("EmptyBody", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		for _, target := range []string{"/workers/claim", "/workers/outcomes", jobsPath(uuid.New()) + "/heartbeat"} {
			rec := b.do(t, request{method: "POST", target: target, header: map[string]string{"Content-Type": "application/json"}})
			p := requireProblem(t, rec, nethttp.StatusBadRequest, ProblemTypeInvalidRequest)
			require.Contains(t, p.Detail, "the request body is empty", target)
			require.NotContains(t, p.Detail, `"type"`, "%s: the example is this route's", target)
		}
	})

	t.Run("TypeNotExternal", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		b.svc.ClaimFunc = func(context.Context, actors.ClaimParams) ([]actors.ClaimedJob, error) {
			return nil, fmt.Errorf("claim: %w", &actors.FieldError{Field: "types",
				Err: fmt.Errorf("%w: send_email is not an external type; external types: resize_image", domain.ErrInvalid)})
		}
		p := requireProblem(t, b.do(t, request{method: "POST", target: "/workers/claim", body: `{"types":["send_email"]}`}),
			nethttp.StatusBadRequest, ProblemTypeValidation)
		require.Equal(t, []FieldError{{Field: "types", Message: "send_email is not an external type; external types: resize_image"}}, p.Errors)
	})

	t.Run("NotRunning", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		b.svc.ClaimFunc = func(context.Context, actors.ClaimParams) ([]actors.ClaimedJob, error) {
			return nil, domain.ErrNotRunning
		}
		requireProblem(t, b.do(t, request{method: "POST", target: "/workers/claim", body: `{"types":["a"]}`}),
			nethttp.StatusServiceUnavailable, ProblemTypeUnavailable)
	})
}

// startServer serves b's server on a free loopback port and returns its
// base URL; the test's end stops it.
func startServer(t *testing.T, b *testBundle) string {
	t.Helper()
	require.NoError(t, b.server.Start(t.Context()))
	t.Cleanup(func() { _ = b.server.Stop(context.Background()) })
	return "http://" + b.server.Addr().String()
}

// TestClaimLongPoll runs claims through a real server: the claim that
// waits longer than the server's read and write timeouts still gets its
// answer, and a client that hangs up ends the context the runtime waits
// with.
func TestClaimLongPoll(t *testing.T) {
	t.Parallel()

	t.Run("OutlivesServerTimeouts", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		// Shortened so that the test need not wait a minute: the claim
		// waits four times as long as either timeout.
		b.server.readTimeout, b.server.writeTimeout = 250*time.Millisecond, 250*time.Millisecond
		job := claimedJob(t, "tok")
		b.svc.ClaimFunc = func(ctx context.Context, p actors.ClaimParams) ([]actors.ClaimedJob, error) {
			// A runtime with nothing ready waits out p.Wait, then finds a job.
			select {
			case <-time.After(p.Wait):
				return []actors.ClaimedJob{job}, nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		base := startServer(t, b)
		resp, err := nethttp.Post(base+"/workers/claim", "application/json", strings.NewReader(`{"types":["resize_image"],"wait":"1s"}`))
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.Equal(t, nethttp.StatusOK, resp.StatusCode, string(body))
		var got ClaimResponse
		require.NoError(t, json.Unmarshal(body, &got))
		require.Len(t, got.Jobs, 1)
		require.Equal(t, job.Job.ID, got.Jobs[0].ID)
	})

	t.Run("ClientHangUpEndsTheClaim", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		waiting, ended := make(chan struct{}), make(chan error, 1)
		b.svc.ClaimFunc = func(ctx context.Context, p actors.ClaimParams) ([]actors.ClaimedJob, error) {
			close(waiting)
			select {
			case <-ctx.Done():
				ended <- ctx.Err()
				return nil, ctx.Err()
			case <-time.After(p.Wait):
				ended <- errors.New("the claim's context outlived its client")
				return nil, nil
			}
		}
		base := startServer(t, b)
		ctx, hangUp := context.WithCancel(t.Context())
		req, err := nethttp.NewRequestWithContext(ctx, "POST", base+"/workers/claim", strings.NewReader(`{"types":["resize_image"],"wait":"60s"}`))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		done := make(chan error, 1)
		go func() {
			resp, err := nethttp.DefaultClient.Do(req)
			if err == nil {
				resp.Body.Close()
			}
			done <- err
		}()
		<-waiting
		hangUp()
		require.ErrorIs(t, <-ended, context.Canceled)
		require.Error(t, <-done)
	})

	t.Run("ServerStopEndsTheClaim", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		waiting := make(chan struct{})
		b.svc.ClaimFunc = func(ctx context.Context, _ actors.ClaimParams) ([]actors.ClaimedJob, error) {
			close(waiting)
			<-ctx.Done()
			return nil, ctx.Err()
		}
		base := startServer(t, b)
		type answer struct {
			status int
			err    error
		}
		done := make(chan answer, 1)
		go func() {
			resp, err := nethttp.Post(base+"/workers/claim", "application/json", strings.NewReader(`{"types":["resize_image"],"wait":"60s"}`))
			if err != nil {
				done <- answer{err: err}
				return
			}
			resp.Body.Close()
			done <- answer{status: resp.StatusCode}
		}()
		<-waiting
		require.NoError(t, b.server.Stop(t.Context()))
		a := <-done
		require.NoError(t, a.err)
		require.Equal(t, nethttp.StatusServiceUnavailable, a.status)
	})
}

func TestHeartbeat(t *testing.T) {
	t.Parallel()
	id := uuid.New()
	path := jobsPath(id) + "/heartbeat"

	t.Run("ExtendsAndReportsProgress", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		var gotToken string
		var gotProgress *domain.Progress
		b.svc.HeartbeatFunc = func(_ context.Context, gotID uuid.UUID, token string, p *domain.Progress) (actors.LeaseState, error) {
			require.Equal(t, id, gotID)
			gotToken, gotProgress = token, p
			return actors.LeaseState{ExpiresAt: testTime.Add(time.Minute), CancelRequested: true}, nil
		}
		rec := b.do(t, request{method: "POST", target: path, body: `{"leaseToken":"tok","progress":{"percent":42.5,"message":"frame 17"}}`})
		resp := requireJSON[HeartbeatResponse](t, rec, nethttp.StatusOK)
		require.True(t, resp.CancelRequested)
		require.True(t, resp.LeaseExpiresAt.Equal(testTime.Add(time.Minute)))
		require.Equal(t, "tok", gotToken)
		require.NotNil(t, gotProgress)
		require.InDelta(t, 42.5, gotProgress.Percent, 0)
		require.Equal(t, "frame 17", gotProgress.Message)
		require.False(t, gotProgress.UpdatedAt.IsZero())

		rec = b.do(t, request{method: "POST", target: path, body: `{"leaseToken":"tok"}`})
		require.Equal(t, nethttp.StatusOK, rec.Code, rec.Body.String())
		require.Nil(t, gotProgress, "a heartbeat without progress records none")
		require.JSONEq(t, `{"leaseExpiresAt":"2025-03-01T09:31:00.123456Z","cancelRequested":true}`, rec.Body.String())
	})

	t.Run("Validation", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			name, body string
			fields     []string
		}{
			{"NoToken", `{}`, []string{"leaseToken"}},
			{"PercentMissing", `{"leaseToken":"t","progress":{"message":"x"}}`, []string{"progress.percent"}},
			{"PercentOver", `{"leaseToken":"t","progress":{"percent":101}}`, []string{"progress.percent"}},
			{"PercentUnder", `{"leaseToken":"t","progress":{"percent":-1}}`, []string{"progress.percent"}},
			{"MessageTooLong", `{"leaseToken":"t","progress":{"percent":1,"message":"` + strings.Repeat("x", 1025) + `"}}`, []string{"progress.message"}},
			{"TokenTooLong", `{"leaseToken":"` + strings.Repeat("t", MaxLeaseTokenBytes+1) + `"}`, []string{"leaseToken"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				b := setup(t, Config{})
				requireInvalidFields(t, b.do(t, request{method: "POST", target: path, body: tc.body}), tc.fields)
			})
		}
	})

	t.Run("Errors", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			name   string
			err    error
			status int
			typ    string
		}{
			{"LeaseLost", fmt.Errorf("job %s: %w", id, domain.ErrLeaseLost), nethttp.StatusConflict, ProblemTypeLeaseLost},
			{"NotFound", fmt.Errorf("job %s: %w", id, domain.ErrNotFound), nethttp.StatusNotFound, ProblemTypeNotFound},
			{"NotRunning", domain.ErrNotRunning, nethttp.StatusServiceUnavailable, ProblemTypeUnavailable},
			{"Internal", errors.New("boom"), nethttp.StatusInternalServerError, ProblemTypeInternal},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				b := setup(t, Config{})
				b.svc.HeartbeatFunc = func(context.Context, uuid.UUID, string, *domain.Progress) (actors.LeaseState, error) {
					return actors.LeaseState{}, tc.err
				}
				p := requireProblem(t, b.do(t, request{method: "POST", target: path, body: `{"leaseToken":"t"}`}), tc.status, tc.typ)
				if tc.typ == ProblemTypeLeaseLost {
					require.Equal(t, "Lease lost", p.Title)
					require.Contains(t, p.Detail, "do not retry this outcome")
				}
			})
		}
	})

	t.Run("MalformedID", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		for _, route := range []string{"heartbeat", "complete", "fail"} {
			requireProblem(t, b.do(t, request{method: "POST", target: "/jobs/42/" + route, body: `{"leaseToken":"t","error":"x"}`}),
				nethttp.StatusBadRequest, ProblemTypeInvalidRequest)
		}
	})
}

func TestComplete(t *testing.T) {
	t.Parallel()
	id := uuid.New()
	path := jobsPath(id) + "/complete"
	completed := func(t *testing.T, result []byte) *domain.Job {
		j := newTestJob(t, domain.StatusCompleted)
		j.ID, j.Result = id, result
		return j
	}

	t.Run("WithResult", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		var got json.RawMessage
		b.svc.CompleteFunc = func(_ context.Context, gotID uuid.UUID, token string, result json.RawMessage) (*domain.Job, error) {
			require.Equal(t, id, gotID)
			require.Equal(t, "tok", token)
			got = result
			return completed(t, result), nil
		}
		rec := b.do(t, request{method: "POST", target: path, body: `{"leaseToken":"tok","result":{"width": 640, "tags":["a","<b>"]}}`})
		resp := requireJSON[JobResponse](t, rec, nethttp.StatusOK)
		require.JSONEq(t, `{"width":640,"tags":["a","<b>"]}`, string(got))
		require.JSONEq(t, `{"width":640,"tags":["a","<b>"]}`, string(resp.Result))
		require.Equal(t, domain.StatusCompleted, resp.Status)
	})

	t.Run("WithoutResult", func(t *testing.T) {
		t.Parallel()
		for _, body := range []string{`{"leaseToken":"tok"}`, `{"leaseToken":"tok","result":null}`} {
			b := setup(t, Config{})
			called := false
			b.svc.CompleteFunc = func(_ context.Context, _ uuid.UUID, _ string, result json.RawMessage) (*domain.Job, error) {
				called = true
				require.Nil(t, result, body)
				return completed(t, nil), nil
			}
			rec := b.do(t, request{method: "POST", target: path, body: body})
			require.Equal(t, nethttp.StatusOK, rec.Code, rec.Body.String())
			require.True(t, called)
			var raw map[string]any
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &raw))
			require.NotContains(t, raw, "result")
		}
	})

	t.Run("ResultTooLarge", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		b.svc.CompleteFunc = func(context.Context, uuid.UUID, string, json.RawMessage) (*domain.Job, error) {
			return nil, fmt.Errorf("job %s: %w", id, domain.ResultTooLarge(70000, 65536))
		}
		p := requireProblem(t, b.do(t, request{method: "POST", target: path, body: `{"leaseToken":"tok","result":"big"}`}),
			nethttp.StatusRequestEntityTooLarge, ProblemTypeResultTooLarge)
		require.Contains(t, p.Detail, "70000 bytes")
	})

	t.Run("LeaseLost", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		b.svc.CompleteFunc = func(context.Context, uuid.UUID, string, json.RawMessage) (*domain.Job, error) {
			return nil, fmt.Errorf("job %s: %w", id, domain.ErrLeaseLost)
		}
		requireProblem(t, b.do(t, request{method: "POST", target: path, body: `{"leaseToken":"tok"}`}), nethttp.StatusConflict, ProblemTypeLeaseLost)
	})

	t.Run("Validation", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		p := requireProblem(t, b.do(t, request{method: "POST", target: path, body: `{"result":` + strings.Repeat("[", 65) + strings.Repeat("]", 65) + `}`}),
			nethttp.StatusBadRequest, ProblemTypeValidation)
		require.Equal(t, "leaseToken", p.Errors[0].Field)
		requireProblem(t, b.do(t, request{method: "POST", target: path, body: `{"leaseToken":"t","result":` + strings.Repeat("[", 65) + strings.Repeat("]", 65) + `}`}),
			nethttp.StatusBadRequest, ProblemTypeValidation)
	})
}

func TestFail(t *testing.T) {
	t.Parallel()
	id := uuid.New()
	path := jobsPath(id) + "/fail"

	t.Run("Reports", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		var got actors.FailParams
		b.svc.FailFunc = func(_ context.Context, gotID uuid.UUID, token string, p actors.FailParams) (*domain.Job, error) {
			require.Equal(t, id, gotID)
			require.Equal(t, "tok", token)
			got = p
			j := newTestJob(t, domain.StatusFailed)
			j.ID = id
			return j, nil
		}
		rec := b.do(t, request{method: "POST", target: path, body: `{"leaseToken":"tok","error":"bad input","permanent":true,"retryIn":"90s"}`})
		resp := requireJSON[JobResponse](t, rec, nethttp.StatusOK)
		require.Equal(t, domain.StatusFailed, resp.Status)
		require.Equal(t, actors.FailParams{Error: "bad input", Permanent: true, RetryIn: 90 * time.Second}, got)
	})

	t.Run("Validation", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			name, body string
			fields     []string
		}{
			{"NoError", `{"leaseToken":"t"}`, []string{"error"}},
			{"EmptyError", `{"leaseToken":"t","error":""}`, []string{"error"}},
			{"NoToken", `{"error":"x"}`, []string{"leaseToken"}},
			{"RetryInNegative", `{"leaseToken":"t","error":"x","retryIn":"-1s"}`, []string{"retryIn"}},
			{"RetryInTooLong", `{"leaseToken":"t","error":"x","retryIn":"8785h"}`, []string{"retryIn"}},
			{"RetryInNotADuration", `{"leaseToken":"t","error":"x","retryIn":"10"}`, []string{"retryIn"}},
			{"PermanentNotBool", `{"leaseToken":"t","error":"x","permanent":"yes"}`, []string{"permanent"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				b := setup(t, Config{})
				requireInvalidFields(t, b.do(t, request{method: "POST", target: path, body: tc.body}), tc.fields)
			})
		}
	})

	t.Run("LeaseLostAndNotFound", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		err := domain.ErrLeaseLost
		b.svc.FailFunc = func(context.Context, uuid.UUID, string, actors.FailParams) (*domain.Job, error) { return nil, err }
		requireProblem(t, b.do(t, request{method: "POST", target: path, body: `{"leaseToken":"t","error":"x"}`}), nethttp.StatusConflict, ProblemTypeLeaseLost)
		err = domain.ErrNotFound
		requireProblem(t, b.do(t, request{method: "POST", target: path, body: `{"leaseToken":"t","error":"x"}`}), nethttp.StatusNotFound, ProblemTypeNotFound)
	})
}

func TestOutcomes(t *testing.T) {
	t.Parallel()

	t.Run("EachOnItsOwn", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		ids := []uuid.UUID{uuid.New(), uuid.New(), uuid.New(), uuid.New(), uuid.New()}
		var got []actors.Outcome
		b.svc.OutcomesFunc = func(_ context.Context, os []actors.Outcome) ([]actors.OutcomeResult, error) {
			got = os
			done := newTestJob(t, domain.StatusCompleted)
			retry := newTestJob(t, domain.StatusScheduled)
			return []actors.OutcomeResult{
				{Job: done},
				{Job: retry},
				{Err: fmt.Errorf("job %s: %w", ids[2], domain.ErrLeaseLost)},
				{Err: fmt.Errorf("job %s: %w", ids[3], domain.ErrNotFound)},
				{Err: errors.New("driver: connection to db.internal reset")},
			}, nil
		}
		body := fmt.Sprintf(`{"outcomes":[
			{"id":%q,"leaseToken":"a","result":{"n":1}},
			{"id":%q,"leaseToken":"a","error":"timeout","retryIn":"5s"},
			{"id":%q,"leaseToken":"b"},
			{"id":%q,"leaseToken":"b","error":"bad","permanent":true},
			{"id":%q,"leaseToken":"b"}]}`, ids[0], ids[1], ids[2], ids[3], ids[4])
		resp := requireJSON[OutcomesResponse](t, b.do(t, request{method: "POST", target: "/workers/outcomes", body: body}), nethttp.StatusOK)
		require.Equal(t, []actors.Outcome{
			{JobID: ids[0], LeaseToken: "a", Result: json.RawMessage(`{"n":1}`)},
			{JobID: ids[1], LeaseToken: "a", Failure: &actors.FailParams{Error: "timeout", RetryIn: 5 * time.Second}},
			{JobID: ids[2], LeaseToken: "b"},
			{JobID: ids[3], LeaseToken: "b", Failure: &actors.FailParams{Error: "bad", Permanent: true}},
			{JobID: ids[4], LeaseToken: "b"},
		}, got)
		require.Len(t, resp.Outcomes, 5)
		require.Equal(t, OutcomeResultResponse{ID: ids[0], Status: domain.StatusCompleted}, resp.Outcomes[0])
		require.Equal(t, OutcomeResultResponse{ID: ids[1], Status: domain.StatusScheduled}, resp.Outcomes[1])
		require.Equal(t, ProblemTypeLeaseLost, resp.Outcomes[2].Problem.Type)
		require.Equal(t, nethttp.StatusConflict, resp.Outcomes[2].Problem.Status)
		require.Equal(t, ProblemTypeNotFound, resp.Outcomes[3].Problem.Type)
		require.Equal(t, ProblemTypeInternal, resp.Outcomes[4].Problem.Type)
		require.NotContains(t, resp.Outcomes[4].Problem.Detail, "db.internal", "an internal error's text stays in the log")
		require.Contains(t, b.logs.String(), "db.internal")
	})

	t.Run("Validation", func(t *testing.T) {
		t.Parallel()
		id := uuid.NewString()
		many := `{"outcomes":[` + strings.TrimSuffix(strings.Repeat(`{"id":"`+id+`","leaseToken":"t"},`, MaxOutcomes+1), ",") + `]}`
		for _, tc := range []struct {
			name, body string
			fields     []string
		}{
			{"Missing", `{}`, []string{"outcomes"}},
			{"Empty", `{"outcomes":[]}`, []string{"outcomes"}},
			{"TooMany", many, []string{"outcomes"}},
			{"BadItems", `{"outcomes":[{"id":"` + id + `","leaseToken":"t"},{"id":"42","leaseToken":""},{"id":"` + id + `","leaseToken":"t","error":"x","result":1},{"leaseToken":"t","permanent":true},{"id":"` + id + `","leaseToken":"t","error":""},{"id":"` + id + `","leaseToken":"t","urgency":1}]}`,
				[]string{"outcomes[1].id", "outcomes[1].leaseToken", "outcomes[2].result", "outcomes[3].id", "outcomes[3].error", "outcomes[4].error", "outcomes[5].urgency"}},
			{"BadRetryIn", `{"outcomes":[{"id":"` + id + `","leaseToken":"t","error":"x","retryIn":"soon"}]}`, []string{"outcomes[0].retryIn"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				b := setup(t, Config{})
				requireInvalidFields(t, b.do(t, request{method: "POST", target: "/workers/outcomes", body: tc.body}), tc.fields)
			})
		}
	})

	t.Run("NotRunning", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		b.svc.OutcomesFunc = func(context.Context, []actors.Outcome) ([]actors.OutcomeResult, error) {
			return nil, domain.ErrNotRunning
		}
		requireProblem(t, b.do(t, request{method: "POST", target: "/workers/outcomes", body: `{"outcomes":[{"id":"` + uuid.NewString() + `","leaseToken":"t"}]}`}),
			nethttp.StatusServiceUnavailable, ProblemTypeUnavailable)
	})
}

// TestWorkerTokens checks every combination of token and route: worker
// tokens open the worker routes only, API tokens open everything.
func TestWorkerTokens(t *testing.T) {
	t.Parallel()
	const apiToken, workerToken = "api-token", "worker-token"
	id := uuid.New()
	arrange := func(t *testing.T, svc *fakeService) {
		svc.ClaimFunc = func(context.Context, actors.ClaimParams) ([]actors.ClaimedJob, error) { return nil, nil }
		svc.HeartbeatFunc = func(context.Context, uuid.UUID, string, *domain.Progress) (actors.LeaseState, error) {
			return actors.LeaseState{ExpiresAt: testTime}, nil
		}
		job := newTestJob(t, domain.StatusCompleted)
		job.ID = id
		svc.CompleteFunc = func(context.Context, uuid.UUID, string, json.RawMessage) (*domain.Job, error) { return job, nil }
		svc.FailFunc = func(context.Context, uuid.UUID, string, actors.FailParams) (*domain.Job, error) { return job, nil }
		svc.OutcomesFunc = func(context.Context, []actors.Outcome) ([]actors.OutcomeResult, error) {
			return []actors.OutcomeResult{{Job: job}}, nil
		}
		svc.holdOnly(job)
		svc.SubmitFunc = func(context.Context, actors.SubmitParams) (*domain.Job, error) { return job, nil }
		svc.CancelFunc = func(context.Context, uuid.UUID) (*domain.Job, error) { return job, nil }
	}
	workerRoutes := []request{
		{method: "POST", target: "/workers/claim", body: `{"types":["a"]}`},
		{method: "POST", target: jobsPath(id) + "/heartbeat", body: `{"leaseToken":"t"}`},
		{method: "POST", target: jobsPath(id) + "/complete", body: `{"leaseToken":"t"}`},
		{method: "POST", target: jobsPath(id) + "/fail", body: `{"leaseToken":"t","error":"x"}`},
		{method: "POST", target: "/workers/outcomes", body: `{"outcomes":[{"id":"` + id.String() + `","leaseToken":"t"}]}`},
	}
	otherRoutes := []request{
		{method: "POST", target: "/jobs", body: `{"type":"noop"}`},
		{method: "GET", target: "/jobs"},
		{method: "GET", target: jobsPath(id)},
		{method: "DELETE", target: jobsPath(id)},
		{method: "GET", target: "/stats"},
		{method: "GET", target: "/job-types"},
		{method: "GET", target: "/metrics"},
		{method: "GET", target: "/queues"},
		{method: "GET", target: jobsPath(id) + "/events"},
	}
	bearer := func(token string) map[string]string {
		if token == "" {
			return nil
		}
		return map[string]string{"Authorization": "Bearer " + token}
	}
	with := func(r request, token string) request {
		r.header = bearer(token)
		return r
	}

	for _, tc := range []struct {
		name string
		cfg  Config
		// token → status on worker routes and on the others.
		worker, other map[string]int
	}{
		{name: "BothKinds", cfg: Config{APITokens: []string{apiToken}, WorkerTokens: []string{workerToken}},
			worker: map[string]int{apiToken: 200, workerToken: 200, "": 401, "wrong": 401},
			other:  map[string]int{apiToken: 200, workerToken: 403, "": 401, "wrong": 401}},
		{name: "WorkerTokensOnly", cfg: Config{WorkerTokens: []string{workerToken}},
			worker: map[string]int{workerToken: 200, "": 401, "wrong": 401},
			// The rest of the API stays open (on loopback), but not to a
			// worker token.
			other: map[string]int{workerToken: 403, "": 200}},
		{name: "APITokensOnly", cfg: Config{APITokens: []string{apiToken}},
			worker: map[string]int{apiToken: 200, "": 401, workerToken: 401},
			other:  map[string]int{apiToken: 200, "": 401}},
		{name: "NoTokens", cfg: Config{},
			worker: map[string]int{"": 200},
			other:  map[string]int{"": 200}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, tc.cfg)
			arrange(t, b.svc)
			check := func(routes []request, want map[string]int) {
				for token, status := range want {
					for _, r := range routes {
						rec := b.do(t, with(r, token))
						name := fmt.Sprintf("%s %s with token %q", r.method, r.target, token)
						status := status
						if r.target == "/jobs" && r.method == "POST" && status == 200 {
							status = 201
						}
						require.Equal(t, status, rec.Code, "%s: %s", name, rec.Body.String())
						switch status {
						case 401:
							requireProblem(t, rec, 401, ProblemTypeUnauthorized)
							require.NotEmpty(t, rec.Header().Get("WWW-Authenticate"), name)
						case 403:
							p := requireProblem(t, rec, 403, ProblemTypeForbidden)
							require.Contains(t, p.Detail, "a worker token may only claim and report jobs", name)
						}
					}
				}
			}
			check(workerRoutes, tc.worker)
			check(otherRoutes, tc.other)
		})
	}

	t.Run("StreamQueryToken", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{APITokens: []string{apiToken}, WorkerTokens: []string{workerToken}})
		arrange(t, b.svc)
		requireProblem(t, b.do(t, request{method: "GET", target: "/events?token=" + workerToken}), 403, ProblemTypeForbidden)
		requireProblem(t, b.do(t, request{method: "GET", target: jobsPath(id) + "/events?token=" + workerToken}), 403, ProblemTypeForbidden)
		rec := b.do(t, request{method: "GET", target: jobsPath(id) + "/events?token=" + apiToken})
		require.Equal(t, 200, rec.Code)
	})

	t.Run("OpenRoutesStayOpen", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{APITokens: []string{apiToken}, WorkerTokens: []string{workerToken}})
		for _, target := range []string{"/health", "/openapi.yaml"} {
			rec := b.do(t, request{method: "GET", target: target, header: bearer(workerToken)})
			require.Equal(t, 200, rec.Code, target)
		}
	})
}

// TestJobResultAndProgress checks the job's result and progress on every
// route that renders a job, and their absence when the job has none.
func TestJobResultAndProgress(t *testing.T) {
	t.Parallel()
	running := newTestJob(t, domain.StatusRunning)
	p := domain.NewProgress(37.5, "resizing <large> image", testTime.Add(3*time.Second))
	running.Progress = &p
	done := newTestJob(t, domain.StatusCompleted)
	done.Result = []byte(`{"url":"https://cdn.example.com/a.png","size":[640,480]}`)
	plain := newTestJob(t, domain.StatusPending)

	members := func(t *testing.T, body []byte) map[string]json.RawMessage {
		var m map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(body, &m), string(body))
		return m
	}

	t.Run("Get", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		jobs := map[uuid.UUID]*domain.Job{running.ID: running, done.ID: done, plain.ID: plain}
		b.svc.GetFunc = func(_ context.Context, id uuid.UUID) (*domain.Job, error) { return jobs[id], nil }

		m := members(t, b.do(t, request{method: "GET", target: jobsPath(running.ID)}).Body.Bytes())
		require.JSONEq(t, `{"percent":37.5,"message":"resizing <large> image","updatedAt":"2025-03-01T09:30:03.123456Z"}`, string(m["progress"]))
		require.NotContains(t, m, "result")

		m = members(t, b.do(t, request{method: "GET", target: jobsPath(done.ID)}).Body.Bytes())
		require.JSONEq(t, string(done.Result), string(m["result"]))
		require.NotContains(t, m, "progress")

		m = members(t, b.do(t, request{method: "GET", target: jobsPath(plain.ID)}).Body.Bytes())
		require.NotContains(t, m, "result")
		require.NotContains(t, m, "progress")
	})

	t.Run("List", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		b.svc.ListFunc = func(context.Context, domain.Filter) (domain.Page, error) {
			return domain.Page{Jobs: []*domain.Job{running, done}, Total: 2}, nil
		}
		resp := requireJSON[ListResponse](t, b.do(t, request{method: "GET", target: "/jobs"}), nethttp.StatusOK)
		require.NotNil(t, resp.Jobs[0].Progress)
		require.InDelta(t, 37.5, resp.Jobs[0].Progress.Percent, 0)
		require.JSONEq(t, string(done.Result), string(resp.Jobs[1].Result))
	})

	t.Run("JobEventsFinalEventCarriesTheResult", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		b.svc.holdOnly(done)
		rec := b.do(t, request{method: "GET", target: jobsPath(done.ID) + "/events"})
		require.Equal(t, nethttp.StatusOK, rec.Code)
		data := lastEventData(t, rec.Body.String())
		require.JSONEq(t, string(done.Result), string(members(t, data)["result"]))
	})

	t.Run("EventsCarryProgress", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		b.svc.ListFunc = func(context.Context, domain.Filter) (domain.Page, error) { return domain.Page{}, nil }
		sub := &scriptedSubscription{ch: make(chan actors.Event, 1)}
		sub.ch <- actors.Event{Job: running}
		b.svc.SubscribeFunc = func(int) Subscription { return sub }
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		pr, pw := io.Pipe()
		go func() {
			req := newStreamRequest(ctx, "/events")
			b.server.Handler().ServeHTTP(&pipeRecorder{header: nethttp.Header{}, w: pw}, req)
			pw.Close()
		}()
		data := readEvent(t, pr, EventJob)
		cancel()
		require.JSONEq(t, `{"percent":37.5,"message":"resizing <large> image","updatedAt":"2025-03-01T09:30:03.123456Z"}`, string(members(t, data)["progress"]))
	})
}

// lastEventData returns the data of the last event of a stream's text.
func lastEventData(t *testing.T, stream string) []byte {
	t.Helper()
	var last string
	for _, line := range strings.Split(stream, "\n") {
		if d, ok := strings.CutPrefix(line, "data: "); ok {
			last = d
		}
	}
	require.NotEmpty(t, last, "no event in %q", stream)
	return []byte(last)
}

// readEvent reads a stream until an event named name and returns its data.
func readEvent(t *testing.T, r io.Reader, name string) []byte {
	t.Helper()
	var buf bytes.Buffer
	chunk := make([]byte, 4096)
	for {
		n, err := r.Read(chunk)
		buf.Write(chunk[:n])
		for _, ev := range strings.Split(buf.String(), "\n\n") {
			if strings.HasPrefix(ev, "event: "+name+"\n") {
				return lastEventData(t, ev)
			}
		}
		require.NoError(t, err, "the stream ended before a %s event: %q", name, buf.String())
	}
}

// scriptedSubscription delivers the events put on ch.
type scriptedSubscription struct {
	ch chan actors.Event
}

func (s *scriptedSubscription) Events() <-chan actors.Event { return s.ch }
func (s *scriptedSubscription) Dropped() int64              { return 0 }
func (s *scriptedSubscription) Close()                      {}

// newStreamRequest is a GET of a stream that ends with ctx.
func newStreamRequest(ctx context.Context, target string) *nethttp.Request {
	req, _ := nethttp.NewRequestWithContext(ctx, "GET", "http://troupe.test"+target, nil)
	return req
}

// pipeRecorder is a ResponseWriter that writes the body into a pipe, so
// that a test reads a stream while it is served.
type pipeRecorder struct {
	header nethttp.Header
	w      *io.PipeWriter
	status int
}

func (p *pipeRecorder) Header() nethttp.Header { return p.header }
func (p *pipeRecorder) WriteHeader(status int) { p.status = status }
func (p *pipeRecorder) Write(b []byte) (int, error) {
	return p.w.Write(b)
}
func (p *pipeRecorder) Flush() {}

func TestJobTypesRunBy(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	b.svc.JobTypesFunc = func() []domain.JobType { return []domain.JobType{"resize_image", "notify", "send_email"} }
	b.svc.JobTypeInfoFunc = func() []actors.JobTypeInfo {
		return []actors.JobTypeInfo{
			{Type: "send_email", RunBy: actors.RunByGo},
			{Type: "resize_image", RunBy: actors.RunByExternal},
			{Type: "notify", RunBy: actors.RunByWebhook},
		}
	}
	rec := b.do(t, request{method: "GET", target: "/job-types"})
	require.Equal(t, nethttp.StatusOK, rec.Code)
	require.JSONEq(t, `{"types":["notify","resize_image","send_email"],"jobTypes":[
		{"type":"notify","runBy":"webhook"},{"type":"resize_image","runBy":"external"},{"type":"send_email","runBy":"go"}]}`, rec.Body.String())
}

// conformanceWorkerToken is the worker token of the conformance server.
const conformanceWorkerToken = "conformance-worker-token"

// workerConformanceCases are the worker protocol's exchanges, and jobs
// with a result and progress, for TestOpenAPIConformance.
func workerConformanceCases() []conformanceCase {
	id := uuid.MustParse("0195a3c4-7b1e-7c3a-9f1d-2b8e4a6c0d11")
	internal := errors.New("something broke")
	leaseLost := fmt.Errorf("job %s: %w", id, domain.ErrLeaseLost)
	notFound := fmt.Errorf("job %s: %w", id, domain.ErrNotFound)
	withProgress := func(t *testing.T, status domain.Status) *domain.Job {
		j := newTestJob(t, status)
		j.ID = id
		p := domain.NewProgress(40, "frame 160 of 400", testTime.Add(3*time.Second))
		j.Progress = &p
		if status == domain.StatusCompleted {
			j.Result = []byte(`{"url":"https://cdn.example.com/a.png","size":[640,480]}`)
		}
		return j
	}
	claim := func(n int, err error) func(*testing.T, *fakeService) {
		return func(t *testing.T, svc *fakeService) {
			svc.ClaimFunc = func(context.Context, actors.ClaimParams) ([]actors.ClaimedJob, error) {
				var jobs []actors.ClaimedJob
				for range n {
					jobs = append(jobs, actors.ClaimedJob{Job: withProgress(t, domain.StatusRunning), LeaseToken: "tok.30000", LeaseExpiresAt: testTime.Add(time.Minute)})
				}
				return jobs, err
			}
		}
	}
	heartbeat := func(err error) func(*testing.T, *fakeService) {
		return func(_ *testing.T, svc *fakeService) {
			svc.HeartbeatFunc = func(context.Context, uuid.UUID, string, *domain.Progress) (actors.LeaseState, error) {
				return actors.LeaseState{ExpiresAt: testTime.Add(time.Minute), CancelRequested: err == nil}, err
			}
		}
	}
	complete := func(err error) func(*testing.T, *fakeService) {
		return func(t *testing.T, svc *fakeService) {
			svc.CompleteFunc = func(context.Context, uuid.UUID, string, json.RawMessage) (*domain.Job, error) {
				if err != nil {
					return nil, err
				}
				return withProgress(t, domain.StatusCompleted), nil
			}
		}
	}
	fail := func(err error) func(*testing.T, *fakeService) {
		return func(t *testing.T, svc *fakeService) {
			svc.FailFunc = func(context.Context, uuid.UUID, string, actors.FailParams) (*domain.Job, error) {
				if err != nil {
					return nil, err
				}
				j := withProgress(t, domain.StatusScheduled)
				j.LastError = "upstream answered 503"
				return j, nil
			}
		}
	}
	outcomes := func(err error) func(*testing.T, *fakeService) {
		return func(t *testing.T, svc *fakeService) {
			svc.OutcomesFunc = func(_ context.Context, os []actors.Outcome) ([]actors.OutcomeResult, error) {
				if err != nil {
					return nil, err
				}
				rs := make([]actors.OutcomeResult, len(os))
				for i := range rs {
					switch i % 3 {
					case 0:
						rs[i].Job = withProgress(t, domain.StatusCompleted)
					case 1:
						rs[i].Err = leaseLost
					default:
						rs[i].Err = internal
					}
				}
				return rs, nil
			}
		}
	}
	getJob := func(status domain.Status) func(*testing.T, *fakeService) {
		return func(t *testing.T, svc *fakeService) { svc.holdOnly(withProgress(t, status)) }
	}
	jobPath := jobsPath(id)
	hb, done, failed := jobPath+"/heartbeat", jobPath+"/complete", jobPath+"/fail"
	outcomesBody := `{"outcomes":[{"id":"` + id.String() + `","leaseToken":"t","result":{"n":1}},{"id":"` + id.String() + `","leaseToken":"t","error":"x","permanent":true,"retryIn":"5s"},{"id":"` + id.String() + `","leaseToken":"t"}]}`
	workerAuth := map[string]string{"Authorization": "Bearer " + conformanceWorkerToken}
	return []conformanceCase{
		{name: "GetRunningWithProgress", arrange: getJob(domain.StatusRunning), requestValid: true, status: 200,
			req: request{method: "GET", target: jobPath}},
		{name: "GetCompletedWithResult", arrange: getJob(domain.StatusCompleted), requestValid: true, status: 200,
			req: request{method: "GET", target: jobPath}},
		{name: "ListWithResultAndProgress", requestValid: true, status: 200,
			arrange: func(t *testing.T, svc *fakeService) {
				svc.ListFunc = func(context.Context, domain.Filter) (domain.Page, error) {
					return domain.Page{Jobs: []*domain.Job{withProgress(t, domain.StatusRunning), withProgress(t, domain.StatusCompleted)}, Total: 2}, nil
				}
			},
			req: request{method: "GET", target: "/jobs"}},
		{name: "JobTypesRunBy", requestValid: true, status: 200,
			arrange: func(_ *testing.T, svc *fakeService) {
				svc.JobTypeInfoFunc = func() []actors.JobTypeInfo {
					return []actors.JobTypeInfo{{Type: "noop", RunBy: actors.RunByGo}, {Type: "send_email", RunBy: actors.RunByWebhook}, {Type: "resize_image", RunBy: actors.RunByExternal}}
				}
			},
			req: request{method: "GET", target: "/job-types"}},

		// POST /workers/claim
		{name: "Claim", arrange: claim(2, nil), requestValid: true, status: 200,
			req: request{method: "POST", target: "/workers/claim", body: `{"types":["resize_image"],"queues":["media"],"max":10,"wait":"0s","worker":"host-1/pid-42","lease":"1m"}`}},
		{name: "ClaimEmpty", arrange: claim(0, nil), requestValid: true, status: 200,
			req: request{method: "POST", target: "/workers/claim", body: `{"types":["resize_image"]}`}},
		{name: "ClaimWorkerToken", arrange: claim(1, nil), anonymous: true, requestValid: true, status: 200,
			req: request{method: "POST", target: "/workers/claim", body: `{"types":["resize_image"]}`, header: workerAuth}},
		{name: "ClaimNoTypes", requestValid: false, status: 400,
			req: request{method: "POST", target: "/workers/claim", body: `{"types":[]}`}},
		{name: "ClaimMaxTooLarge", requestValid: false, status: 400,
			req: request{method: "POST", target: "/workers/claim", body: `{"types":["a"],"max":101}`}},
		{name: "ClaimWaitTooLong", requestValid: true, status: 400,
			req: request{method: "POST", target: "/workers/claim", body: `{"types":["a"],"wait":"2m"}`}},
		{name: "ClaimTypeNotExternal", requestValid: true, status: 400,
			arrange: claim(0, &actors.FieldError{Field: "types", Err: fmt.Errorf("%w: send_email is not an external type", domain.ErrInvalid)}),
			req:     request{method: "POST", target: "/workers/claim", body: `{"types":["send_email"]}`}},
		{name: "ClaimUnauthorized", anonymous: true, requestValid: false, status: 401,
			req: request{method: "POST", target: "/workers/claim", body: `{"types":["a"]}`}},
		{name: "ClaimTextPlain", requestValid: false, status: 415,
			req: request{method: "POST", target: "/workers/claim", body: `{"types":["a"]}`, header: map[string]string{"Content-Type": "text/plain"}}},
		{name: "ClaimInternal", arrange: claim(0, internal), requestValid: true, status: 500,
			req: request{method: "POST", target: "/workers/claim", body: `{"types":["a"]}`}},
		{name: "ClaimNotRunning", arrange: claim(0, domain.ErrNotRunning), requestValid: true, status: 503,
			req: request{method: "POST", target: "/workers/claim", body: `{"types":["a"]}`}},

		// POST /jobs/{id}/heartbeat
		{name: "Heartbeat", arrange: heartbeat(nil), requestValid: true, status: 200,
			req: request{method: "POST", target: hb, body: `{"leaseToken":"t","progress":{"percent":42.5,"message":"frame 170"}}`}},
		{name: "HeartbeatWorkerToken", arrange: heartbeat(nil), anonymous: true, requestValid: true, status: 200,
			req: request{method: "POST", target: hb, body: `{"leaseToken":"t"}`, header: workerAuth}},
		{name: "HeartbeatPercentOver", requestValid: false, status: 400,
			req: request{method: "POST", target: hb, body: `{"leaseToken":"t","progress":{"percent":101}}`}},
		{name: "HeartbeatMalformedID", requestValid: false, status: 400,
			req: request{method: "POST", target: "/jobs/42/heartbeat", body: `{"leaseToken":"t"}`}},
		{name: "HeartbeatUnauthorized", anonymous: true, requestValid: false, status: 401,
			req: request{method: "POST", target: hb, body: `{"leaseToken":"t"}`}},
		{name: "HeartbeatNotFound", arrange: heartbeat(notFound), requestValid: true, status: 404,
			req: request{method: "POST", target: hb, body: `{"leaseToken":"t"}`}},
		{name: "HeartbeatLeaseLost", arrange: heartbeat(leaseLost), requestValid: true, status: 409,
			req: request{method: "POST", target: hb, body: `{"leaseToken":"t"}`}},
		{name: "HeartbeatTextPlain", requestValid: false, status: 415,
			req: request{method: "POST", target: hb, body: `{"leaseToken":"t"}`, header: map[string]string{"Content-Type": "text/plain"}}},
		{name: "HeartbeatInternal", arrange: heartbeat(internal), requestValid: true, status: 500,
			req: request{method: "POST", target: hb, body: `{"leaseToken":"t"}`}},
		{name: "HeartbeatNotRunning", arrange: heartbeat(domain.ErrNotRunning), requestValid: true, status: 503,
			req: request{method: "POST", target: hb, body: `{"leaseToken":"t"}`}},

		// POST /jobs/{id}/complete
		{name: "Complete", arrange: complete(nil), requestValid: true, status: 200,
			req: request{method: "POST", target: done, body: `{"leaseToken":"t","result":{"url":"https://cdn.example.com/a.png"}}`}},
		{name: "CompleteNullResult", arrange: complete(nil), requestValid: true, status: 200,
			req: request{method: "POST", target: done, body: `{"leaseToken":"t","result":null}`, header: workerAuth}},
		{name: "CompleteNoToken", requestValid: false, status: 400,
			req: request{method: "POST", target: done, body: `{"result":1}`}},
		{name: "CompleteUnauthorized", anonymous: true, requestValid: false, status: 401,
			req: request{method: "POST", target: done, body: `{"leaseToken":"t"}`}},
		{name: "CompleteNotFound", arrange: complete(notFound), requestValid: true, status: 404,
			req: request{method: "POST", target: done, body: `{"leaseToken":"t"}`}},
		{name: "CompleteLeaseLost", arrange: complete(leaseLost), requestValid: true, status: 409,
			req: request{method: "POST", target: done, body: `{"leaseToken":"t"}`}},
		{name: "CompleteResultTooLarge", arrange: complete(fmt.Errorf("job %s: %w", id, domain.ResultTooLarge(70000, 65536))), requestValid: true, status: 413,
			req: request{method: "POST", target: done, body: `{"leaseToken":"t","result":"` + strings.Repeat("x", 70000) + `"}`}},
		{name: "CompleteTextPlain", requestValid: false, status: 415,
			req: request{method: "POST", target: done, body: `{"leaseToken":"t"}`, header: map[string]string{"Content-Type": "text/plain"}}},
		{name: "CompleteInternal", arrange: complete(internal), requestValid: true, status: 500,
			req: request{method: "POST", target: done, body: `{"leaseToken":"t"}`}},
		{name: "CompleteNotRunning", arrange: complete(domain.ErrNotRunning), requestValid: true, status: 503,
			req: request{method: "POST", target: done, body: `{"leaseToken":"t"}`}},

		// POST /jobs/{id}/fail
		{name: "Fail", arrange: fail(nil), requestValid: true, status: 200,
			req: request{method: "POST", target: failed, body: `{"leaseToken":"t","error":"upstream answered 503","retryIn":"30s"}`}},
		{name: "FailPermanent", arrange: fail(nil), requestValid: true, status: 200,
			req: request{method: "POST", target: failed, body: `{"leaseToken":"t","error":"bad input","permanent":true}`, header: workerAuth}},
		{name: "FailNoError", requestValid: false, status: 400,
			req: request{method: "POST", target: failed, body: `{"leaseToken":"t"}`}},
		{name: "FailBadRetryIn", requestValid: true, status: 400,
			req: request{method: "POST", target: failed, body: `{"leaseToken":"t","error":"x","retryIn":"-5s"}`}},
		{name: "FailUnauthorized", anonymous: true, requestValid: false, status: 401,
			req: request{method: "POST", target: failed, body: `{"leaseToken":"t","error":"x"}`}},
		{name: "FailNotFound", arrange: fail(notFound), requestValid: true, status: 404,
			req: request{method: "POST", target: failed, body: `{"leaseToken":"t","error":"x"}`}},
		{name: "FailLeaseLost", arrange: fail(leaseLost), requestValid: true, status: 409,
			req: request{method: "POST", target: failed, body: `{"leaseToken":"t","error":"x"}`}},
		{name: "FailTextPlain", requestValid: false, status: 415,
			req: request{method: "POST", target: failed, body: `{"leaseToken":"t","error":"x"}`, header: map[string]string{"Content-Type": "text/plain"}}},
		{name: "FailInternal", arrange: fail(internal), requestValid: true, status: 500,
			req: request{method: "POST", target: failed, body: `{"leaseToken":"t","error":"x"}`}},
		{name: "FailNotRunning", arrange: fail(domain.ErrNotRunning), requestValid: true, status: 503,
			req: request{method: "POST", target: failed, body: `{"leaseToken":"t","error":"x"}`}},

		// POST /workers/outcomes
		{name: "Outcomes", arrange: outcomes(nil), requestValid: true, status: 200,
			req: request{method: "POST", target: "/workers/outcomes", body: outcomesBody}},
		{name: "OutcomesWorkerToken", arrange: outcomes(nil), anonymous: true, requestValid: true, status: 200,
			req: request{method: "POST", target: "/workers/outcomes", body: outcomesBody, header: workerAuth}},
		{name: "OutcomesEmpty", requestValid: false, status: 400,
			req: request{method: "POST", target: "/workers/outcomes", body: `{"outcomes":[]}`}},
		{name: "OutcomesBadID", requestValid: false, status: 400,
			req: request{method: "POST", target: "/workers/outcomes", body: `{"outcomes":[{"id":"42","leaseToken":"t"}]}`}},
		{name: "OutcomesUnauthorized", anonymous: true, requestValid: false, status: 401,
			req: request{method: "POST", target: "/workers/outcomes", body: outcomesBody}},
		{name: "OutcomesTooLarge", requestValid: true, status: 413,
			req: request{method: "POST", target: "/workers/outcomes", body: `{"outcomes":[{"id":"` + id.String() + `","leaseToken":"t","result":"` + strings.Repeat("x", 9<<20) + `"}]}`}},
		{name: "OutcomesTextPlain", requestValid: false, status: 415,
			req: request{method: "POST", target: "/workers/outcomes", body: outcomesBody, header: map[string]string{"Content-Type": "text/plain"}}},
		{name: "OutcomesInternal", arrange: outcomes(internal), requestValid: true, status: 500,
			req: request{method: "POST", target: "/workers/outcomes", body: outcomesBody}},
		{name: "OutcomesNotRunning", arrange: outcomes(domain.ErrNotRunning), requestValid: true, status: 503,
			req: request{method: "POST", target: "/workers/outcomes", body: outcomesBody}},
	}
}

// forbiddenConformanceCases turns each 401 exchange of a route outside the
// worker protocol into the same request with a worker token: 403.
func forbiddenConformanceCases(cases []conformanceCase) []conformanceCase {
	var out []conformanceCase
	for _, tc := range cases {
		if tc.status != nethttp.StatusUnauthorized || strings.HasPrefix(tc.req.target, "/workers/") ||
			strings.HasSuffix(tc.req.target, "/heartbeat") || strings.HasSuffix(tc.req.target, "/complete") || strings.HasSuffix(tc.req.target, "/fail") {
			continue
		}
		tc.name = strings.TrimSuffix(tc.name, "Unauthorized") + "WorkerTokenForbidden"
		tc.anonymous, tc.requestValid, tc.status, tc.arrange = true, true, nethttp.StatusForbidden, nil
		header := map[string]string{}
		for k, v := range tc.req.header {
			header[k] = v
		}
		header["Authorization"] = "Bearer " + conformanceWorkerToken
		tc.req.header = header
		out = append(out, tc)
	}
	return out
}

// TestWorkerMetrics counts claimed jobs and outcomes by what became of
// them.
func TestWorkerMetrics(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	b.svc.ClaimFunc = func(context.Context, actors.ClaimParams) ([]actors.ClaimedJob, error) {
		return []actors.ClaimedJob{claimedJob(t, "a"), claimedJob(t, "a"), claimedJob(t, "a")}, nil
	}
	b.svc.CompleteFunc = func(context.Context, uuid.UUID, string, json.RawMessage) (*domain.Job, error) {
		return newTestJob(t, domain.StatusCompleted), nil
	}
	b.svc.FailFunc = func(context.Context, uuid.UUID, string, actors.FailParams) (*domain.Job, error) {
		return nil, domain.ErrLeaseLost
	}
	b.svc.OutcomesFunc = func(context.Context, []actors.Outcome) ([]actors.OutcomeResult, error) {
		return []actors.OutcomeResult{
			{Job: newTestJob(t, domain.StatusScheduled)},
			{Job: newTestJob(t, domain.StatusFailed)},
			{Job: newTestJob(t, domain.StatusCanceled)},
			{Err: domain.ErrNotFound},
		}, nil
	}
	id := uuid.NewString()
	require.Equal(t, 200, b.do(t, request{method: "POST", target: "/workers/claim", body: `{"types":["a"]}`}).Code)
	require.Equal(t, 200, b.do(t, request{method: "POST", target: "/jobs/" + id + "/complete", body: `{"leaseToken":"a"}`}).Code)
	require.Equal(t, 409, b.do(t, request{method: "POST", target: "/jobs/" + id + "/fail", body: `{"leaseToken":"a","error":"x"}`}).Code)
	require.Equal(t, 200, b.do(t, request{method: "POST", target: "/workers/outcomes", body: `{"outcomes":[` +
		strings.TrimSuffix(strings.Repeat(`{"id":"`+id+`","leaseToken":"a"},`, 4), ",") + `]}`}).Code)

	body := b.do(t, request{method: "GET", target: "/metrics"}).Body.String()
	for _, line := range []string{
		`troupe_worker_claimed_jobs_total 3`,
		`troupe_worker_outcomes_total{result="completed"} 1`,
		`troupe_worker_outcomes_total{result="lease_lost"} 1`,
		`troupe_worker_outcomes_total{result="retry"} 1`,
		`troupe_worker_outcomes_total{result="failed"} 1`,
		`troupe_worker_outcomes_total{result="canceled"} 1`,
		`troupe_worker_outcomes_total{result="rejected"} 1`,
	} {
		require.Contains(t, body, line+"\n")
	}
}

// TestWorkerTokensConfig checks that worker tokens are validated like API
// tokens, and do not stand in for them.
func TestWorkerTokensConfig(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		cfg    Config
		reason string
	}{
		"Empty":        {Config{WorkerTokens: []string{"w", ""}}, "is empty"},
		"WhiteSpace":   {Config{WorkerTokens: []string{"w x"}}, "white space"},
		"Control":      {Config{WorkerTokens: []string{"w\x00"}}, "control characters"},
		"AlsoAnAPIOne": {Config{APITokens: []string{"same"}, WorkerTokens: []string{"same"}}, "also an API token"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			err := tc.cfg.WithDefaults().Validate()
			var ce *ConfigError
			require.ErrorAs(t, err, &ce)
			require.Equal(t, "WorkerTokens", ce.Field)
			require.Contains(t, err.Error(), tc.reason)
			require.NotContains(t, err.Error(), "same", "a token stays out of the error")
		})
	}
	// Worker tokens alone leave the rest of the API open, so it must stay
	// on loopback.
	err := Config{Addr: "0.0.0.0:8080", WorkerTokens: []string{"w"}}.WithDefaults().Validate()
	require.ErrorIs(t, err, ErrInsecureAddr)
	require.NoError(t, Config{Addr: "0.0.0.0:8080", APITokens: []string{"a"}, WorkerTokens: []string{"w"}}.WithDefaults().Validate())
}

// TestWorkerRequestLog logs the worker protocol's successful calls at
// debug level, and its refusals at info.
func TestWorkerRequestLog(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	b.svc.ClaimFunc = func(context.Context, actors.ClaimParams) ([]actors.ClaimedJob, error) { return nil, nil }
	b.svc.HeartbeatFunc = func(context.Context, uuid.UUID, string, *domain.Progress) (actors.LeaseState, error) {
		return actors.LeaseState{}, domain.ErrLeaseLost
	}
	b.do(t, request{method: "POST", target: "/workers/claim", body: `{"types":["a"]}`})
	b.do(t, request{method: "POST", target: jobsPath(uuid.New()) + "/heartbeat", body: `{"leaseToken":"t"}`})

	lines := logLines(t, b.logs.String(), "http request")
	require.Len(t, lines, 2)
	require.Equal(t, "DEBUG", lines[0]["level"], lines[0]["path"])
	require.Equal(t, "INFO", lines[1]["level"], lines[1]["path"])
}

// BenchmarkWorkerRoutes measures the HTTP layer's own cost of the worker
// protocol's calls (a fake runtime that answers at once), through the
// handler without a network.
func BenchmarkWorkerRoutes(b *testing.B) {
	bundle := setup(b, Config{})
	job := newTestJob(b, domain.StatusRunning)
	done := newTestJob(b, domain.StatusCompleted)
	bundle.svc.ClaimFunc = func(_ context.Context, p actors.ClaimParams) ([]actors.ClaimedJob, error) {
		out := make([]actors.ClaimedJob, p.Max)
		for i := range out {
			out[i] = actors.ClaimedJob{Job: job, LeaseToken: "q3J5dGhpcy1pcy1ub3QtYS1yZWFsLXRva2Vu.30000", LeaseExpiresAt: testTime}
		}
		return out, nil
	}
	bundle.svc.CompleteFunc = func(context.Context, uuid.UUID, string, json.RawMessage) (*domain.Job, error) { return done, nil }
	bundle.svc.OutcomesFunc = func(_ context.Context, os []actors.Outcome) ([]actors.OutcomeResult, error) {
		rs := make([]actors.OutcomeResult, len(os))
		for i := range rs {
			rs[i].Job = done
		}
		return rs, nil
	}
	h := bundle.server.Handler()
	serve := func(b *testing.B, method, target, body string) {
		for b.Loop() {
			req := httptest.NewRequest(method, target, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != nethttp.StatusOK {
				b.Fatalf("%s %s: %d %s", method, target, rec.Code, rec.Body.String())
			}
		}
	}
	id := uuid.NewString()
	b.Run("Claim1", func(b *testing.B) { serve(b, "POST", "/workers/claim", `{"types":["a"]}`) })
	b.Run("Claim50", func(b *testing.B) { serve(b, "POST", "/workers/claim", `{"types":["a"],"max":50}`) })
	b.Run("Complete", func(b *testing.B) {
		serve(b, "POST", "/jobs/"+id+"/complete", `{"leaseToken":"q3J5dGhpcy1pcy1ub3QtYS1yZWFsLXRva2Vu.30000","result":{"n":1}}`)
	})
	outcomes := `{"outcomes":[` + strings.TrimSuffix(strings.Repeat(`{"id":"`+id+`","leaseToken":"q3J5dGhpcy1pcy1ub3QtYS1yZWFsLXRva2Vu.30000","result":{"n":1}},`, 50), ",") + `]}`
	b.Run("Outcomes50", func(b *testing.B) { serve(b, "POST", "/workers/outcomes", outcomes) })
}
