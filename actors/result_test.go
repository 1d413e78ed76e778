package actors

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/persistence/memstore"
)

// A result set with SetResult is stored with the completed job, as JSON,
// and the final event carries it.
func TestResult_StoredOnCompletion(t *testing.T) {
	t.Parallel()
	h := domain.HandlerFunc(func(ctx context.Context, _ []byte) error {
		require.NoError(t, SetResult(ctx, map[string]any{"rows": 1}))
		// The last result replaces earlier ones.
		return SetResult(ctx, map[string]any{"rows": 42, "file": "r.csv"})
	})
	sys, rec := startOnWith(t, memstore.New(), "report", h)
	sub := sys.Subscribe(64)
	defer sub.Close()
	job, err := sys.Submit(context.Background(), SubmitParams{Type: "report"})
	require.NoError(t, err)
	rec.waitFinished(t, 1)

	got, err := sys.Get(context.Background(), job.ID)
	require.NoError(t, err)
	require.Equal(t, domain.StatusCompleted, got.Status)
	require.JSONEq(t, `{"rows":42,"file":"r.csv"}`, string(got.Result))
	for ev := range sub.C {
		if ev.Job.ID == job.ID && ev.Job.Status == domain.StatusCompleted {
			require.JSONEq(t, `{"rows":42,"file":"r.csv"}`, string(ev.Job.Result))
			break
		}
	}
}

// A failed attempt leaves no result, even when it set one: a result is the
// product of a completed job.
func TestResult_NotStoredOnFailure(t *testing.T) {
	t.Parallel()
	h := domain.HandlerFunc(func(ctx context.Context, _ []byte) error {
		require.NoError(t, SetResult(ctx, "partial"))
		return domain.Permanent(errors.New("broken"))
	})
	sys, rec := startOnWith(t, memstore.New(), "r", h)
	job, err := sys.Submit(context.Background(), SubmitParams{Type: "r"})
	require.NoError(t, err)
	rec.waitFinished(t, 1)
	got, err := sys.Get(context.Background(), job.ID)
	require.NoError(t, err)
	require.Equal(t, domain.StatusFailed, got.Status)
	require.Nil(t, got.Result)
}

// A result over MaxResultBytes makes SetResult fail with
// ErrResultTooLarge, and the attempt fails with it even though the handler
// returns nil; the job retries, and a smaller result then completes it.
func TestResult_TooLargeFailsTheAttemptAndRetries(t *testing.T) {
	t.Parallel()
	setErrs := make(chan error, 1)
	h := domain.HandlerFunc(func(ctx context.Context, _ []byte) error {
		if AttemptFromContext(ctx) == 1 {
			setErrs <- SetResult(ctx, strings.Repeat("x", 100))
			return nil
		}
		return SetResult(ctx, "ok")
	})
	sys, rec := startOnWith(t, memstore.New(), "big", h, WithMaxResultBytes(64))
	job, err := sys.Submit(context.Background(), SubmitParams{Type: "big", MaxAttempts: 2})
	require.NoError(t, err)
	rec.waitFinished(t, 1)

	setErr := <-setErrs
	require.ErrorIs(t, setErr, domain.ErrResultTooLarge)
	require.Contains(t, setErr.Error(), job.ID.String(), "the error names the job")
	got, err := sys.Get(context.Background(), job.ID)
	require.NoError(t, err)
	require.Equal(t, domain.StatusCompleted, got.Status)
	require.Equal(t, 2, got.Attempts)
	require.Equal(t, "job result too large: 102 bytes, more than the 64 allowed", got.LastError)
	require.JSONEq(t, `"ok"`, string(got.Result))
}

// With no attempt left, a too-large result fails the job, whatever the
// handler returned after SetResult refused it.
func TestResult_TooLargeFailsTheLastAttempt(t *testing.T) {
	t.Parallel()
	h := domain.HandlerFunc(func(ctx context.Context, _ []byte) error {
		_ = SetResult(ctx, strings.Repeat("x", 100))
		_ = SetResult(ctx, "small") // too late: the handler was told
		return nil
	})
	sys, rec := startOnWith(t, memstore.New(), "big", h, WithMaxResultBytes(64))
	job, err := sys.Submit(context.Background(), SubmitParams{Type: "big", MaxAttempts: 1})
	require.NoError(t, err)
	rec.waitFinished(t, 1)
	got, err := sys.Get(context.Background(), job.ID)
	require.NoError(t, err)
	require.Equal(t, domain.StatusFailed, got.Status)
	require.Contains(t, got.LastError, "job result too large")
	require.Nil(t, got.Result)
}

// A value JSON cannot encode is the handler's error to handle: SetResult
// says so, and the attempt is not failed for it.
func TestResult_UnmarshalableValue(t *testing.T) {
	t.Parallel()
	setErrs := make(chan error, 1)
	h := domain.HandlerFunc(func(ctx context.Context, _ []byte) error {
		setErrs <- SetResult(ctx, make(chan int))
		return nil
	})
	sys, rec := startOnWith(t, memstore.New(), "r", h)
	job, err := sys.Submit(context.Background(), SubmitParams{Type: "r"})
	require.NoError(t, err)
	rec.waitFinished(t, 1)
	setErr := <-setErrs
	require.Error(t, setErr)
	require.NotErrorIs(t, setErr, domain.ErrResultTooLarge)
	got, err := sys.Get(context.Background(), job.ID)
	require.NoError(t, err)
	require.Equal(t, domain.StatusCompleted, got.Status)
	require.Nil(t, got.Result)
}

// Outside a handler, or with the context of an attempt that ended,
// SetResult gives ErrNoAttempt and ReportProgress does nothing.
func TestResult_OutsideAnAttempt(t *testing.T) {
	t.Parallel()
	require.ErrorIs(t, SetResult(context.Background(), 1), domain.ErrNoAttempt)
	ReportProgress(context.Background(), 50, "nobody listens") // no panic

	kept := make(chan context.Context, 1)
	h := domain.HandlerFunc(func(ctx context.Context, _ []byte) error {
		kept <- ctx
		return nil
	})
	sys, rec := startOnWith(t, memstore.New(), "r", h)
	job, err := sys.Submit(context.Background(), SubmitParams{Type: "r"})
	require.NoError(t, err)
	rec.waitFinished(t, 1)
	ctx := <-kept
	require.ErrorIs(t, SetResult(ctx, 1), domain.ErrNoAttempt)
	ReportProgress(ctx, 50, "late")
	r := ctx.Value(attemptKey{}).(*attemptReporter)
	r.mu.Lock()
	require.Nil(t, r.slot, "a late report is dropped, no message sent")
	r.mu.Unlock()
	got, err := sys.Get(context.Background(), job.ID)
	require.NoError(t, err)
	require.Nil(t, got.Result)
	require.Nil(t, got.Progress)
}

// domain.RetryAfter sets the wait before the next attempt, instead of the
// backoff.
func TestResult_RetryAfterDelaysTheRetry(t *testing.T) {
	t.Parallel()
	clock := newManualClock()
	h := domain.HandlerFunc(func(ctx context.Context, _ []byte) error {
		if AttemptFromContext(ctx) == 1 {
			return domain.RetryAfter(errors.New("busy"), 42*time.Second)
		}
		return nil
	})
	sys, rec := startOnWith(t, memstore.New(), "r", h, WithClock(clock))
	job, err := sys.Submit(context.Background(), SubmitParams{Type: "r", MaxAttempts: 2})
	require.NoError(t, err)
	waitFor(t, func() bool { return rec.retries() == 1 && sys.Stats().JobActors == 0 })
	got, err := sys.Get(context.Background(), job.ID)
	require.NoError(t, err)
	require.Equal(t, domain.StatusScheduled, got.Status)
	require.Equal(t, 42*time.Second, got.RunAt.Sub(clock.Now()), "the attempt's delay, not the 1 ms backoff")
	require.Equal(t, "busy", got.LastError)
	clock.advance(42 * time.Second)
	rec.waitFinished(t, 1)
	got, err = sys.Get(context.Background(), job.ID)
	require.NoError(t, err)
	require.Equal(t, domain.StatusCompleted, got.Status)
	require.Equal(t, 2, got.Attempts)
}
