package domain_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
)

func TestStatus(t *testing.T) {
	t.Parallel()
	for _, s := range domain.Statuses() {
		require.True(t, s.IsValid(), s)
		require.Equal(t, string(s), s.String())
	}
	require.False(t, domain.Status("bogus").IsValid())
	require.False(t, domain.Status("").IsValid())

	terminal := map[domain.Status]bool{domain.StatusCompleted: true, domain.StatusFailed: true, domain.StatusCanceled: true}
	for _, s := range domain.Statuses() {
		require.Equal(t, terminal[s], s.IsTerminal(), s)
	}

	got, err := domain.ParseStatus("running")
	require.NoError(t, err)
	require.Equal(t, domain.StatusRunning, got)
	_, err = domain.ParseStatus("runing")
	require.ErrorIs(t, err, domain.ErrInvalid)
	require.ErrorContains(t, err, "pending")
}

// TestTransitions checks every ordered pair of the five statuses and an
// invalid one: exactly six edges are allowed.
func TestTransitions(t *testing.T) {
	t.Parallel()
	allowed := map[[2]domain.Status]bool{
		{domain.StatusPending, domain.StatusRunning}:   true,
		{domain.StatusPending, domain.StatusCanceled}:  true,
		{domain.StatusRunning, domain.StatusCompleted}: true,
		{domain.StatusRunning, domain.StatusFailed}:    true,
		{domain.StatusRunning, domain.StatusCanceled}:  true,
		{domain.StatusRunning, domain.StatusPending}:   true,
	}
	all := append(domain.Statuses(), domain.Status("bogus"))
	pairs := 0
	for _, from := range all {
		for _, to := range all {
			pairs++
			t.Run(fmt.Sprintf("%s→%s", from, to), func(t *testing.T) {
				t.Parallel()
				want := allowed[[2]domain.Status{from, to}]
				require.Equal(t, want, domain.CanTransition(from, to))

				job := &domain.Job{Status: from}
				err := job.TransitionTo(to)
				if want {
					require.NoError(t, err)
					require.Equal(t, to, job.Status)
					return
				}
				require.ErrorIs(t, err, domain.ErrInvalidTransition)
				require.Equal(t, from, job.Status, "a rejected transition changes nothing")
			})
		}
	}
	require.Equal(t, 36, pairs)
}

func TestNewJob(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.FixedZone("x", 3600))

	job, err := domain.NewJob("email", []byte(`{"a":1}`), 3, now)
	require.NoError(t, err)
	require.NotZero(t, job.ID)
	require.EqualValues(t, 7, job.ID.Version(), "UUIDv7")
	require.Equal(t, domain.StatusPending, job.Status)
	require.Equal(t, 0, job.Attempts)
	require.Equal(t, 3, job.MaxAttempts)
	require.Equal(t, time.UTC, job.CreatedAt.Location())
	require.Equal(t, 123456000, job.CreatedAt.Nanosecond(), "microsecond precision")
	require.Equal(t, job.CreatedAt, job.UpdatedAt)

	_, err = domain.NewJob("", nil, 3, now)
	require.ErrorIs(t, err, domain.ErrInvalid)
	_, err = domain.NewJob("x", nil, 0, now)
	require.ErrorIs(t, err, domain.ErrInvalid)
	_, err = domain.NewJob(domain.JobType(make([]byte, domain.MaxJobTypeLength+1)), nil, 1, now)
	require.ErrorIs(t, err, domain.ErrInvalid)

	other, err := domain.NewJob("email", nil, 1, now)
	require.NoError(t, err)
	require.NotEqual(t, job.ID, other.ID)
}

func TestJobLife(t *testing.T) {
	t.Parallel()
	now := time.Now()
	newJob := func(t *testing.T, maxAttempts int) *domain.Job {
		job, err := domain.NewJob("t", nil, maxAttempts, now)
		require.NoError(t, err)
		return job
	}

	t.Run("StartCountsTheAttempt", func(t *testing.T) {
		t.Parallel()
		job := newJob(t, 2)
		job.RunAt = now
		require.NoError(t, job.Start(now))
		require.Equal(t, domain.StatusRunning, job.Status)
		require.Equal(t, 1, job.Attempts)
		require.True(t, job.RunAt.IsZero())
		require.False(t, job.StartedAt.IsZero())
		require.ErrorIs(t, job.Start(now), domain.ErrInvalidTransition)
	})

	t.Run("RetryKeepsAttemptsAndError", func(t *testing.T) {
		t.Parallel()
		job := newJob(t, 3)
		require.NoError(t, job.Start(now))
		boom := errors.New("boom")
		require.True(t, job.IsRetryable(boom))
		runAt := now.Add(time.Minute)
		require.NoError(t, job.Retry(boom, runAt, now))
		require.Equal(t, domain.StatusPending, job.Status)
		require.Equal(t, 1, job.Attempts)
		require.Equal(t, "boom", job.LastError)
		require.Equal(t, domain.Timestamp(runAt), job.RunAt)
	})

	t.Run("ShouldRetryAndIsRetryable", func(t *testing.T) {
		t.Parallel()
		job := newJob(t, 2)
		require.True(t, job.ShouldRetry())
		job.IncrementAttempts()
		require.True(t, job.ShouldRetry())
		job.IncrementAttempts()
		require.False(t, job.ShouldRetry())
		require.False(t, job.IsRetryable(errors.New("x")), "attempts used up")

		fresh := newJob(t, 5)
		require.False(t, fresh.IsRetryable(domain.Permanent(errors.New("x"))), "permanent")
		fresh.Status = domain.StatusCompleted
		require.False(t, fresh.IsRetryable(errors.New("x")), "terminal")
	})

	t.Run("FailAndCompleteFinish", func(t *testing.T) {
		t.Parallel()
		job := newJob(t, 1)
		require.NoError(t, job.Start(now))
		require.NoError(t, job.Fail(errors.New("bad"), now))
		require.Equal(t, domain.StatusFailed, job.Status)
		require.Equal(t, "bad", job.LastError)
		require.False(t, job.FinishedAt.IsZero())

		ok := newJob(t, 1)
		require.ErrorIs(t, ok.Complete(now), domain.ErrInvalidTransition, "pending cannot complete")
		require.NoError(t, ok.Start(now))
		require.NoError(t, ok.Complete(now))
		require.Equal(t, domain.StatusCompleted, ok.Status)
	})

	t.Run("Cancel", func(t *testing.T) {
		t.Parallel()
		job := newJob(t, 1)
		require.NoError(t, job.Cancel(now))
		require.Equal(t, domain.StatusCanceled, job.Status)
		finished := job.FinishedAt
		require.NoError(t, job.Cancel(now.Add(time.Hour)), "twice is a no-op")
		require.Equal(t, finished, job.FinishedAt)

		done := newJob(t, 1)
		require.NoError(t, done.Start(now))
		require.NoError(t, done.Complete(now))
		require.ErrorIs(t, done.Cancel(now), domain.ErrNotCancelable)
		require.ErrorContains(t, done.Cancel(now), done.ID.String())
	})

	t.Run("RecoverCountsTheInterruptedAttempt", func(t *testing.T) {
		t.Parallel()
		job := newJob(t, 2)
		require.NoError(t, job.Start(now))
		require.NoError(t, job.Recover(now))
		require.Equal(t, domain.StatusPending, job.Status)
		require.Equal(t, 1, job.Attempts)
		require.Equal(t, domain.ErrInterrupted.Error(), job.LastError)

		require.NoError(t, job.Start(now))
		require.NoError(t, job.Recover(now))
		require.Equal(t, domain.StatusFailed, job.Status, "out of attempts")

		pending := newJob(t, 1)
		require.NoError(t, pending.Recover(now))
		require.Equal(t, domain.StatusPending, pending.Status, "only running jobs change")
	})

	t.Run("HandBackReturnsTheAttempt", func(t *testing.T) {
		t.Parallel()
		job := newJob(t, 1)
		require.NoError(t, job.Start(now))
		require.NoError(t, job.HandBack(now))
		require.Equal(t, domain.StatusPending, job.Status)
		require.Equal(t, 0, job.Attempts)
		require.Empty(t, job.LastError, "a handed-back job did not fail")
	})

	t.Run("HandBackKeepsThePreviousError", func(t *testing.T) {
		t.Parallel()
		job := newJob(t, 3)
		require.NoError(t, job.Start(now))
		require.NoError(t, job.Retry(errors.New("earlier failure"), now, now))
		require.NoError(t, job.Start(now))
		require.NoError(t, job.HandBack(now))
		require.Equal(t, domain.StatusPending, job.Status)
		require.Equal(t, 1, job.Attempts, "only the failed attempt counts")
		require.Equal(t, "earlier failure", job.LastError)
		require.True(t, job.RunAt.IsZero(), "ready at the next start")
	})

	t.Run("SetError", func(t *testing.T) {
		t.Parallel()
		job := newJob(t, 1)
		job.SetError(errors.New("x"))
		require.Equal(t, "x", job.LastError)
		job.SetError(nil)
		require.Empty(t, job.LastError)
	})
}

func TestJobClone(t *testing.T) {
	t.Parallel()
	job, err := domain.NewJob("t", []byte("abc"), 1, time.Now())
	require.NoError(t, err)
	c := job.Clone()
	require.Equal(t, job, c)
	c.Payload[0] = 'X'
	c.Status = domain.StatusFailed
	require.Equal(t, "abc", string(job.Payload))
	require.Equal(t, domain.StatusPending, job.Status)
	require.Nil(t, (*domain.Job)(nil).Clone())
}

func TestPermanent(t *testing.T) {
	t.Parallel()
	base := errors.New("bad input")
	p := domain.Permanent(base)
	require.True(t, domain.IsPermanent(p))
	require.True(t, domain.IsPermanent(fmt.Errorf("wrapped: %w", p)))
	require.ErrorIs(t, p, base)
	require.Equal(t, "bad input", p.Error())
	require.False(t, domain.IsPermanent(base))
	require.NoError(t, domain.Permanent(nil))
}

func TestFilterMatchesAndCompare(t *testing.T) {
	t.Parallel()
	now := time.Now()
	a, _ := domain.NewJob("a", nil, 1, now)
	b, _ := domain.NewJob("b", nil, 1, now.Add(time.Second))
	require.Negative(t, domain.Compare(a, b))
	require.Positive(t, domain.Compare(b, a))

	require.True(t, domain.Filter{}.Matches(a))
	require.True(t, domain.Filter{Type: "a"}.Matches(a))
	require.False(t, domain.Filter{Type: "b"}.Matches(a))
	require.True(t, domain.Filter{Statuses: []domain.Status{domain.StatusRunning, domain.StatusPending}}.Matches(a))
	require.False(t, domain.Filter{Statuses: []domain.Status{domain.StatusRunning}}.Matches(a))
}

func TestHandlerFunc(t *testing.T) {
	t.Parallel()
	var got []byte
	h := domain.HandlerFunc(func(_ context.Context, p []byte) error { got = p; return nil })
	require.NoError(t, h.Execute(context.Background(), []byte("x")))
	require.Equal(t, "x", string(got))
}
