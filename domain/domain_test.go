package domain_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
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

// TestTransitions checks every ordered pair of the six statuses and an
// invalid one: exactly nine edges are allowed.
func TestTransitions(t *testing.T) {
	t.Parallel()
	allowed := map[[2]domain.Status]bool{
		{domain.StatusScheduled, domain.StatusPending}:  true,
		{domain.StatusScheduled, domain.StatusCanceled}: true,
		{domain.StatusPending, domain.StatusRunning}:    true,
		{domain.StatusPending, domain.StatusCanceled}:   true,
		{domain.StatusRunning, domain.StatusCompleted}:  true,
		{domain.StatusRunning, domain.StatusFailed}:     true,
		{domain.StatusRunning, domain.StatusCanceled}:   true,
		{domain.StatusRunning, domain.StatusPending}:    true,
		{domain.StatusRunning, domain.StatusScheduled}:  true,
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
	require.Equal(t, 49, pairs)
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
	require.Equal(t, job.CreatedAt, job.RunAt, "due at once")
	require.Equal(t, domain.DefaultQueue, job.Queue)
	require.Equal(t, domain.DefaultPriority, job.Priority)
	require.Empty(t, job.UniqueKey)
	require.Zero(t, job.Timeout)

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

	t.Run("StartCountsTheAttemptAndKeepsRunAt", func(t *testing.T) {
		t.Parallel()
		job := newJob(t, 2)
		runAt := job.RunAt
		later := now.Add(time.Second)
		require.NoError(t, job.Start(later))
		require.Equal(t, domain.StatusRunning, job.Status)
		require.Equal(t, 1, job.Attempts)
		require.Equal(t, runAt, job.RunAt, "RunAt says when the attempt fell due")
		require.Equal(t, domain.Timestamp(later), job.StartedAt)
		require.Equal(t, domain.Timestamp(later), job.UpdatedAt)
		require.ErrorIs(t, job.Start(now), domain.ErrInvalidTransition)
	})

	t.Run("RetryWithABackoffIsScheduled", func(t *testing.T) {
		t.Parallel()
		job := newJob(t, 3)
		require.NoError(t, job.Start(now))
		boom := errors.New("boom")
		require.True(t, job.IsRetryable(boom))
		runAt := now.Add(time.Minute)
		require.NoError(t, job.Retry(boom, runAt, now))
		require.Equal(t, domain.StatusScheduled, job.Status)
		require.Equal(t, 1, job.Attempts)
		require.Equal(t, "boom", job.LastError)
		require.Equal(t, domain.Timestamp(runAt), job.RunAt)
		require.Equal(t, domain.Timestamp(now), job.UpdatedAt)
	})

	t.Run("RetryWithoutABackoffIsPending", func(t *testing.T) {
		t.Parallel()
		for name, runAt := range map[string]time.Time{"zero": {}, "past": now.Add(-time.Minute), "now": now} {
			job := newJob(t, 3)
			require.NoError(t, job.Start(now))
			require.NoError(t, job.Retry(errors.New("boom"), runAt, now.Add(time.Second)), name)
			require.Equal(t, domain.StatusPending, job.Status, name)
			require.Equal(t, domain.Timestamp(now.Add(time.Second)), job.RunAt, "%s: due at the retry", name)
		}
	})

	t.Run("ScheduleAtAndPromote", func(t *testing.T) {
		t.Parallel()
		job := newJob(t, 1)
		later := now.Add(time.Hour)
		job.ScheduleAt(later, now)
		require.Equal(t, domain.StatusScheduled, job.Status)
		require.Equal(t, domain.Timestamp(later), job.RunAt)
		require.ErrorIs(t, job.Start(now), domain.ErrInvalidTransition, "a scheduled job does not start")

		require.NoError(t, job.Promote(later))
		require.Equal(t, domain.StatusPending, job.Status)
		require.Equal(t, domain.Timestamp(later), job.RunAt, "promotion keeps the job's place")
		require.Equal(t, domain.Timestamp(later), job.UpdatedAt)
		require.ErrorIs(t, job.Promote(later), domain.ErrInvalidTransition, "pending is not promoted again")

		past := newJob(t, 1)
		past.ScheduleAt(now.Add(-time.Hour), now)
		require.Equal(t, domain.StatusPending, past.Status, "a time in the past is now")
		require.Equal(t, domain.Timestamp(now), past.RunAt)
	})

	t.Run("CancelScheduled", func(t *testing.T) {
		t.Parallel()
		job := newJob(t, 1)
		job.ScheduleAt(now.Add(time.Hour), now)
		require.NoError(t, job.Cancel(now))
		require.Equal(t, domain.StatusCanceled, job.Status)
		require.Equal(t, domain.Timestamp(now), job.FinishedAt)
	})

	t.Run("Validate", func(t *testing.T) {
		t.Parallel()
		require.NoError(t, newJob(t, 1).Validate(), "NewJob's defaults are valid")
		ok := newJob(t, 1)
		ok.Queue, ok.Priority, ok.UniqueKey, ok.UniqueFor, ok.Timeout = "a-b_9", 1, "k", time.Hour, time.Minute
		require.NoError(t, ok.Validate())
		ok.Priority = 9
		ok.UniqueKey = string(make([]byte, domain.MaxUniqueKeyLength))
		require.NoError(t, ok.Validate())

		bad := map[string]func(j *domain.Job){
			"empty queue":           func(j *domain.Job) { j.Queue = "" },
			"upper-case queue":      func(j *domain.Job) { j.Queue = "Email" },
			"queue starting with -": func(j *domain.Job) { j.Queue = "-x" },
			"queue too long":        func(j *domain.Job) { j.Queue = "q" + string(make([]byte, 64)) },
			"priority 0":            func(j *domain.Job) { j.Priority = 0 },
			"priority 10":           func(j *domain.Job) { j.Priority = 10 },
			"key too long":          func(j *domain.Job) { j.UniqueKey = string(make([]byte, domain.MaxUniqueKeyLength+1)) },
			"negative uniqueFor":    func(j *domain.Job) { j.UniqueKey, j.UniqueFor = "k", -time.Second },
			"uniqueFor without key": func(j *domain.Job) { j.UniqueFor = time.Second },
			"negative timeout":      func(j *domain.Job) { j.Timeout = -time.Second },
		}
		for name, edit := range bad {
			j := newJob(t, 1)
			edit(j)
			require.ErrorIs(t, j.Validate(), domain.ErrInvalid, name)
		}
		require.NoError(t, domain.ValidateQueueName(strings.Repeat("q", 64)))
		require.ErrorIs(t, domain.ValidateQueueName(strings.Repeat("q", 65)), domain.ErrInvalid)
	})

	t.Run("HoldsUniqueKey", func(t *testing.T) {
		t.Parallel()
		plain := newJob(t, 1)
		require.False(t, plain.HoldsUniqueKey(now), "no key, nothing held")

		job := newJob(t, 1)
		job.UniqueKey, job.UniqueFor = "k", time.Minute
		for _, s := range domain.Unfinished() {
			job.Status = s
			require.True(t, job.HoldsUniqueKey(now.Add(24*time.Hour)), "%s holds its key however long", s)
		}
		job.Status = domain.StatusRunning
		require.NoError(t, job.Complete(now))
		require.True(t, job.HoldsUniqueKey(now))
		require.True(t, job.HoldsUniqueKey(now.Add(time.Minute-time.Microsecond)))
		require.False(t, job.HoldsUniqueKey(now.Add(time.Minute)), "free once UniqueFor has passed")

		job.UniqueFor = 0
		require.False(t, job.HoldsUniqueKey(job.FinishedAt), "without UniqueFor a finished job frees its key")
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
		require.Equal(t, domain.Timestamp(now), job.RunAt, "the job keeps its place")
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
	require.True(t, domain.Filter{Queue: domain.DefaultQueue}.Matches(a))
	require.False(t, domain.Filter{Queue: "email"}.Matches(a))
}

func TestHandlerFunc(t *testing.T) {
	t.Parallel()
	var got []byte
	h := domain.HandlerFunc(func(_ context.Context, p []byte) error { got = p; return nil })
	require.NoError(t, h.Execute(context.Background(), []byte("x")))
	require.Equal(t, "x", string(got))
}

// QueueTally lists a queue with unfinished jobs or a pause, counts only
// unfinished jobs, and orders the queues by name.
func TestQueueTally(t *testing.T) {
	t.Parallel()
	var tally domain.QueueTally
	tally.Count("mail", domain.StatusPending, 2)
	tally.Count("mail", domain.StatusRunning, 1)
	tally.Count("bulk", domain.StatusScheduled, 3)
	tally.Count("done", domain.StatusCompleted, 5)
	tally.Count("empty", domain.StatusPending, 0)
	tally.Pause("held")
	tally.Pause("mail")
	require.Equal(t, []domain.QueueInfo{
		{Name: "bulk", Scheduled: 3},
		{Name: "held", Paused: true},
		{Name: "mail", Paused: true, Pending: 2, Running: 1},
	}, tally.Queues())
	require.Empty(t, (&domain.QueueTally{}).Queues())
}
