package http

import (
	"context"
	nethttp "net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/actors"
	"github.com/troupe-go/troupe/domain"
)

// countingSubmit makes the fake create a new job per call, and counts them.
func countingSubmit(t *testing.T, svc *fakeService) *atomic.Int32 {
	var calls atomic.Int32
	svc.SubmitFunc = func(_ context.Context, p actors.SubmitParams) (*domain.Job, error) {
		calls.Add(1)
		return domain.NewJob(p.Type, p.Payload, 3, testTime)
	}
	return &calls
}

func withKey(key string, r request) request {
	r.header = map[string]string{HeaderIdempotencyKey: key}
	return r
}

func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	submit := request{method: "POST", target: "/jobs", body: `{"type":"noop","payload":{"n":1}}`}

	t.Run("RetryGetsTheFirstAnswer", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		calls := countingSubmit(t, b.svc)

		first := b.do(t, withKey("order-1", submit))
		again := b.do(t, withKey("order-1", submit))

		require.Equal(t, nethttp.StatusCreated, first.Code, first.Body.String())
		require.Empty(t, first.Header().Get(HeaderIdempotentReplayed))
		require.Equal(t, nethttp.StatusCreated, again.Code)
		require.Equal(t, first.Body.String(), again.Body.String(), "same body, same job ID")
		require.Equal(t, "true", again.Header().Get(HeaderIdempotentReplayed))
		require.Equal(t, first.Header().Get("Location"), again.Header().Get("Location"))
		require.Equal(t, "application/json; charset=utf-8", again.Header().Get("Content-Type"))
		require.Equal(t, int32(1), calls.Load(), "the retry created nothing")

		other := b.do(t, withKey("order-2", submit))
		require.Equal(t, nethttp.StatusCreated, other.Code)
		require.NotEqual(t, first.Body.String(), other.Body.String())
		require.Equal(t, int32(2), calls.Load(), "another key is another request")
	})

	t.Run("WithoutAKeyEveryRequestCounts", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		calls := countingSubmit(t, b.svc)

		b.do(t, submit)
		b.do(t, submit)

		require.Equal(t, int32(2), calls.Load())
	})

	t.Run("BatchReplaysTheSameJobs", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		var got []actors.SubmitParams
		var calls atomic.Int32
		created := batchSubmitted(t, &got)
		b.svc.SubmitBatchFunc = func(ctx context.Context, ps []actors.SubmitParams) ([]actors.SubmitResult, error) {
			calls.Add(1)
			return created(ctx, ps)
		}
		batch := withKey("batch-1", request{method: "POST", target: "/jobs/batch", body: batchBody(3, "noop")})

		first := b.do(t, batch)
		again := b.do(t, batch)

		require.Equal(t, nethttp.StatusCreated, first.Code)
		require.Equal(t, nethttp.StatusCreated, again.Code)
		require.Equal(t, first.Body.String(), again.Body.String())
		require.Equal(t, "true", again.Header().Get(HeaderIdempotentReplayed))
		require.Empty(t, again.Header().Get("Location"))
		require.Equal(t, int32(1), calls.Load())
	})

	t.Run("DifferentBodyIs422", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		calls := countingSubmit(t, b.svc)

		b.do(t, withKey("k", submit))
		rec := b.do(t, withKey("k", request{method: "POST", target: "/jobs", body: `{"type":"noop","payload":{"n":2}}`}))

		requireProblem(t, rec, nethttp.StatusUnprocessableEntity, ProblemTypeIdempotencyKeyReused)
		require.Equal(t, int32(1), calls.Load())

		// The same body on the other route is another request too.
		rec = b.do(t, withKey("k", request{method: "POST", target: "/jobs/batch", body: `{"type":"noop","payload":{"n":1}}`}))
		requireProblem(t, rec, nethttp.StatusUnprocessableEntity, ProblemTypeIdempotencyKeyReused)
	})

	t.Run("InFlightIs409", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		entered, release := make(chan struct{}), make(chan struct{})
		b.svc.SubmitFunc = func(_ context.Context, p actors.SubmitParams) (*domain.Job, error) {
			close(entered)
			<-release
			return domain.NewJob(p.Type, p.Payload, 3, testTime)
		}
		done := make(chan int)
		go func() { done <- b.do(t, withKey("slow", submit)).Code }()
		<-entered

		rec := b.do(t, withKey("slow", submit))

		requireProblem(t, rec, nethttp.StatusConflict, ProblemTypeIdempotencyKeyInUse)
		require.Equal(t, "1", rec.Header().Get("Retry-After"))
		close(release)
		require.Equal(t, nethttp.StatusCreated, <-done)
		require.Equal(t, "true", b.do(t, withKey("slow", submit)).Header().Get(HeaderIdempotentReplayed))
	})

	t.Run("ClientErrorsAreKept", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		unknown := request{method: "POST", target: "/jobs", body: `{"type":"noop","priority":0}`}

		first := b.do(t, withKey("bad", unknown))
		again := b.do(t, withKey("bad", unknown))

		requireProblem(t, first, nethttp.StatusBadRequest, ProblemTypeValidation)
		requireProblem(t, again, nethttp.StatusBadRequest, ProblemTypeValidation)
		require.Equal(t, first.Body.String(), again.Body.String())
		require.Equal(t, "true", again.Header().Get(HeaderIdempotentReplayed))
	})

	t.Run("ServerErrorsFreeTheKey", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		var calls atomic.Int32
		b.svc.SubmitFunc = func(_ context.Context, p actors.SubmitParams) (*domain.Job, error) {
			if calls.Add(1) == 1 {
				return nil, domain.ErrQueueFull
			}
			return domain.NewJob(p.Type, p.Payload, 3, testTime)
		}

		requireProblem(t, b.do(t, withKey("busy", submit)), nethttp.StatusServiceUnavailable, ProblemTypeQueueFull)
		rec := b.do(t, withKey("busy", submit))

		require.Equal(t, nethttp.StatusCreated, rec.Code, "the retry ran: %s", rec.Body.String())
		require.Empty(t, rec.Header().Get(HeaderIdempotentReplayed))
	})

	t.Run("APanicFreesTheKey", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		var calls atomic.Int32
		b.svc.SubmitFunc = func(_ context.Context, p actors.SubmitParams) (*domain.Job, error) {
			if calls.Add(1) == 1 {
				panic("handler bug")
			}
			return domain.NewJob(p.Type, p.Payload, 3, testTime)
		}

		requireProblem(t, b.do(t, withKey("p", submit)), nethttp.StatusInternalServerError, ProblemTypeInternal)
		require.Equal(t, nethttp.StatusCreated, b.do(t, withKey("p", submit)).Code)
	})

	t.Run("ScopedPerToken", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{APITokens: []string{"alice-token", "bob-token"}})
		calls := countingSubmit(t, b.svc)
		as := func(token string) request {
			r := withKey("same", submit)
			r.header["Authorization"] = "Bearer " + token
			return r
		}

		alice := b.do(t, as("alice-token"))
		bob := b.do(t, as("bob-token"))
		aliceAgain := b.do(t, as("alice-token"))

		require.Equal(t, nethttp.StatusCreated, alice.Code)
		require.Equal(t, nethttp.StatusCreated, bob.Code)
		require.NotEqual(t, alice.Body.String(), bob.Body.String(), "bob's key is his own")
		require.Empty(t, bob.Header().Get(HeaderIdempotentReplayed))
		require.Equal(t, alice.Body.String(), aliceAgain.Body.String())
		require.Equal(t, int32(2), calls.Load())
	})

	t.Run("AnAbandonedRequestExpires", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		calls := countingSubmit(t, b.svc)
		// A server died during this request a while ago.
		long := time.Now().Add(-2 * idempotencyInFlightTTL)
		existing, err := b.svc.requests.BeginRequest(t.Context(), long, domain.RequestRecord{
			Scope: openScope, Key: "crashed",
			Fingerprint: requestFingerprint("POST", "/jobs", []byte(submit.body)),
			ExpiresAt:   long.Add(idempotencyInFlightTTL),
		})
		require.NoError(t, err)
		require.Nil(t, existing)

		rec := b.do(t, withKey("crashed", submit))

		require.Equal(t, nethttp.StatusCreated, rec.Code, rec.Body.String())
		require.Equal(t, int32(1), calls.Load())
	})

	t.Run("BadKeys", func(t *testing.T) {
		t.Parallel()
		for name, key := range map[string]string{
			"Empty":    "",
			"TooLong":  strings.Repeat("k", MaxIdempotencyKeyLength+1),
			"NonASCII": "clé",
			"Control":  "a\tb",
		} {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				b := setup(t, Config{}) // nothing may reach the service

				rec := b.do(t, withKey(key, submit))

				p := requireProblem(t, rec, nethttp.StatusBadRequest, ProblemTypeValidation)
				require.Len(t, p.Errors, 1)
				require.Equal(t, HeaderIdempotencyKey, p.Errors[0].Field)
			})
		}
	})

	t.Run("LongestKey", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		countingSubmit(t, b.svc)

		rec := b.do(t, withKey(strings.Repeat("~", MaxIdempotencyKeyLength), submit))

		require.Equal(t, nethttp.StatusCreated, rec.Code)
	})

	t.Run("StoreDownIs503", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		require.NoError(t, b.svc.requests.Close())

		rec := b.do(t, withKey("k", submit))

		require.GreaterOrEqual(t, rec.Code, 500, rec.Body.String())
	})

	t.Run("KeptForTheTTL", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{IdempotencyTTL: 2 * time.Hour})
		countingSubmit(t, b.svc)

		before := time.Now()
		b.do(t, withKey("ttl", submit))

		// A record still live at TTL - 1m; forgotten at TTL + 1m.
		rec, err := b.svc.requests.BeginRequest(t.Context(), before.Add(2*time.Hour-time.Minute), domain.RequestRecord{Scope: openScope, Key: "ttl"})
		require.NoError(t, err)
		require.NotNil(t, rec)
		require.True(t, rec.Done)
		require.Equal(t, nethttp.StatusCreated, rec.Status)
		n, err := b.svc.requests.DeleteExpiredRequests(t.Context(), before.Add(2*time.Hour+time.Minute), 10)
		require.NoError(t, err)
		require.Equal(t, 1, n)
	})
}
