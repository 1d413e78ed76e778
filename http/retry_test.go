package http

import (
	"context"
	"errors"
	"fmt"
	nethttp "net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/actors"
	"github.com/troupe-go/troupe/domain"
)

func TestJobRetry(t *testing.T) {
	t.Parallel()

	// arrange makes the fake hold orig and record what is submitted.
	arrange := func(t *testing.T, b *testBundle, orig *domain.Job) *[]actors.SubmitParams {
		var submitted []actors.SubmitParams
		b.svc.GetFunc = func(_ context.Context, id uuid.UUID) (*domain.Job, error) {
			if id != orig.ID {
				return nil, fmt.Errorf("job %s: %w", id, domain.ErrNotFound)
			}
			return orig.Clone(), nil
		}
		b.svc.SubmitFunc = func(_ context.Context, p actors.SubmitParams) (*domain.Job, error) {
			submitted = append(submitted, p)
			return domain.NewJob(p.Type, p.Payload, p.MaxAttempts, testTime)
		}
		return &submitted
	}

	for _, status := range []domain.Status{domain.StatusFailed, domain.StatusCanceled} {
		t.Run("Copies"+statusLabel(status)+"Job", func(t *testing.T) {
			t.Parallel()
			b := setup(t, Config{})
			orig := newTestJob(t, status)
			orig.MaxAttempts = 7
			orig.Queue, orig.Priority, orig.Timeout = "email", 2, time.Minute
			orig.UniqueKey, orig.UniqueFor = "welcome:42", time.Hour
			orig.Key = "customer:42"
			submitted := arrange(t, b, orig)

			rec := b.do(t, request{method: "POST", target: jobsPath(orig.ID) + "/retry"})
			got := requireJSON[RetryResponse](t, rec, nethttp.StatusCreated)
			require.Equal(t, orig.ID, got.RetryOf)
			require.NotEqual(t, orig.ID, got.ID)
			require.Equal(t, jobsPath(got.ID), rec.Header().Get("Location"))
			require.Equal(t, domain.StatusPending, got.Status)
			require.Equal(t, orig.Type, got.Type)
			require.JSONEq(t, string(orig.Payload), string(got.Payload))
			require.Equal(t, 7, got.MaxAttempts)
			require.Equal(t, []actors.SubmitParams{{Type: orig.Type, Payload: orig.Payload, MaxAttempts: 7,
				Queue: "email", Priority: 2, Timeout: time.Minute, Key: "customer:42"}}, *submitted, "the same queue, priority, timeout and key; no unique key")
		})
	}

	for _, status := range []domain.Status{domain.StatusPending, domain.StatusRunning, domain.StatusCompleted} {
		t.Run("Refuses"+statusLabel(status)+"Job", func(t *testing.T) {
			t.Parallel()
			b := setup(t, Config{})
			orig := newTestJob(t, status)
			submitted := arrange(t, b, orig)

			rec := b.do(t, request{method: "POST", target: jobsPath(orig.ID) + "/retry"})
			p := requireProblem(t, rec, nethttp.StatusConflict, ProblemTypeConflict)
			require.Contains(t, p.Detail, string(status))
			require.Empty(t, *submitted, "nothing is submitted")
		})
	}

	t.Run("KeepsABinaryPayload", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		orig := newTestJob(t, domain.StatusFailed)
		orig.Payload = []byte{0xff, 0x00, 0xfe}
		submitted := arrange(t, b, orig)

		rec := b.do(t, request{method: "POST", target: jobsPath(orig.ID) + "/retry"})
		got := requireJSON[RetryResponse](t, rec, nethttp.StatusCreated)
		require.Equal(t, PayloadEncodingBase64, got.PayloadEncoding)
		require.Equal(t, orig.Payload, (*submitted)[0].Payload)
	})

	t.Run("UnknownJobIs404", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		arrange(t, b, newTestJob(t, domain.StatusFailed))
		rec := b.do(t, request{method: "POST", target: jobsPath(uuid.New()) + "/retry"})
		requireProblem(t, rec, nethttp.StatusNotFound, ProblemTypeNotFound)
	})

	t.Run("MalformedIDIs400", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		rec := b.do(t, request{method: "POST", target: "/jobs/42/retry"})
		requireProblem(t, rec, nethttp.StatusBadRequest, ProblemTypeInvalidRequest)
	})

	t.Run("TypeNoLongerRegisteredIs400", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		orig := newTestJob(t, domain.StatusFailed)
		arrange(t, b, orig)
		b.svc.SubmitFunc = func(context.Context, actors.SubmitParams) (*domain.Job, error) {
			return nil, fmt.Errorf("submit: %w", domain.ErrUnknownJobType)
		}
		rec := b.do(t, request{method: "POST", target: jobsPath(orig.ID) + "/retry"})
		p := requireProblem(t, rec, nethttp.StatusBadRequest, ProblemTypeUnknownJobType)
		require.Contains(t, p.Detail, `"send_email"`)
		require.Contains(t, p.Detail, "noop, send_email")
	})

	t.Run("QueueFullIs503", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		orig := newTestJob(t, domain.StatusCanceled)
		arrange(t, b, orig)
		b.svc.SubmitFunc = func(context.Context, actors.SubmitParams) (*domain.Job, error) {
			return nil, errors.Join(errors.New("submit"), domain.ErrQueueFull)
		}
		rec := b.do(t, request{method: "POST", target: jobsPath(orig.ID) + "/retry"})
		requireProblem(t, rec, nethttp.StatusServiceUnavailable, ProblemTypeQueueFull)
		require.Equal(t, queueFullRetryAfter, rec.Header().Get("Retry-After"))
	})

	t.Run("NeedsAToken", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{APITokens: []string{"secret"}})
		rec := b.do(t, request{method: "POST", target: jobsPath(uuid.New()) + "/retry"})
		requireProblem(t, rec, nethttp.StatusUnauthorized, ProblemTypeUnauthorized)
	})
}

// statusLabel capitalises a status for a subtest name.
func statusLabel(s domain.Status) string {
	return string(s[0]-'a'+'A') + string(s[1:])
}
