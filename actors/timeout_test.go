package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/internal/syncbuf"
	"github.com/troupe-go/troupe/persistence/memstore"
)

const stuckLog = "attempt still running past its timeout"

// An attempt's context ends at its timeout with a cause that says so; the
// attempt fails with "timeout after 30s" and follows the retry policy, and
// each timed-out attempt is counted.
func TestTimeout_EndsTheAttemptAndFollowsTheRetryPolicy(t *testing.T) {
	t.Parallel()
	clock := newManualClock()
	m := newCountingMetrics()
	deadlines := make(chan time.Time, 2)
	causes := make(chan error, 2)
	h := domain.HandlerFunc(func(ctx context.Context, _ []byte) error {
		d, _ := ctx.Deadline()
		deadlines <- d
		<-ctx.Done()
		causes <- context.Cause(ctx)
		if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("context ended with %w, not a deadline", ctx.Err())
		}
		return ctx.Err()
	})
	b := setup(t, nil, WithClock(clock), WithMetrics(m), WithRetryBackoff(time.Second, time.Second, NoJitter))
	require.NoError(t, b.sys.Register("slow", h, WithTimeout(30*time.Second)))
	job, err := b.sys.Submit(context.Background(), SubmitParams{Type: "slow", MaxAttempts: 2})
	require.NoError(t, err)
	require.Equal(t, 30*time.Second, job.Timeout, "the type's default")

	require.Equal(t, clock.Now().Add(30*time.Second), <-deadlines, "the context carries the deadline")
	clock.advance(30*time.Second - time.Microsecond)
	time.Sleep(10 * time.Millisecond)
	require.Equal(t, domain.StatusRunning, b.get(t, job.ID).Status, "not before the timeout")
	clock.advance(time.Microsecond)
	cause := <-causes
	require.ErrorIs(t, cause, context.DeadlineExceeded)
	require.Equal(t, "timeout after 30s", cause.Error())

	waitFor(t, func() bool { return b.get(t, job.ID).Status == domain.StatusScheduled })
	got := b.get(t, job.ID)
	require.Equal(t, "timeout after 30s", got.LastError)
	require.Equal(t, 1, got.Attempts)
	_, _, timedOut := m.counts()
	require.Equal(t, 1, timedOut)

	clock.advance(time.Second) // the backoff
	<-deadlines
	clock.advance(30 * time.Second)
	m.waitFinished(t, 1)
	got = b.get(t, job.ID)
	require.Equal(t, domain.StatusFailed, got.Status)
	require.True(t, strings.HasPrefix(got.LastError, "timeout after 30s"), got.LastError)
	_, attempts, timedOut := m.counts()
	require.Equal(t, 2, timedOut)
	require.Equal(t, 2, attempts)
	require.Zero(t, b.sys.Stats().Stuck)
}

// A handler that ignores its context keeps its worker; the attempt counts
// as stuck from its timeout until it returns, and is logged at warn once a
// minute with its job and how long it has run. Its error then begins with
// the timeout.
func TestTimeout_StuckAttemptIsReportedOnceAMinute(t *testing.T) {
	t.Parallel()
	clock := newManualClock()
	m := newCountingMetrics()
	var logs syncbuf.Buffer
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	h := domain.HandlerFunc(func(context.Context, []byte) error {
		started <- struct{}{}
		<-release
		return errGaveUp
	})
	sys, err := New(memstore.New(), WithClock(clock), WithMetrics(m), WithMaxAttempts(1),
		WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	require.NoError(t, err)
	require.NoError(t, sys.Register("stubborn", h))
	require.NoError(t, sys.Start(context.Background()))
	t.Cleanup(func() { require.NoError(t, sys.Stop(context.Background())) })
	job, err := sys.Submit(context.Background(), SubmitParams{Type: "stubborn", Timeout: 10 * time.Second})
	require.NoError(t, err)
	<-started

	clock.advance(10 * time.Second)
	waitFor(t, func() bool { return sys.Stats().Stuck == 1 })
	_, _, timedOut := m.counts()
	require.Equal(t, 1, timedOut)
	require.Zero(t, strings.Count(logs.String(), stuckLog), "a minute passes before the first report")

	clock.advance(time.Minute)
	waitFor(t, func() bool { return strings.Count(logs.String(), stuckLog) == 1 })
	require.Contains(t, logs.String(), "jobID="+job.ID.String())
	require.Contains(t, logs.String(), "elapsed=1m10s")
	clock.advance(30 * time.Second)
	time.Sleep(10 * time.Millisecond)
	require.Equal(t, 1, strings.Count(logs.String(), stuckLog), "once a minute")
	clock.advance(30 * time.Second)
	waitFor(t, func() bool { return strings.Count(logs.String(), stuckLog) == 2 })
	require.Contains(t, logs.String(), "elapsed=2m10s")
	require.Equal(t, 1, sys.Stats().Workers.Busy, "the handler keeps its worker")

	close(release)
	m.waitFinished(t, 1)
	got, err := sys.Get(context.Background(), job.ID)
	require.NoError(t, err)
	require.Equal(t, domain.StatusFailed, got.Status)
	require.Equal(t, "timeout after 10s: gave up", got.LastError)
	require.Zero(t, sys.Stats().Stuck)
	_, _, timedOut = m.counts()
	require.Equal(t, 1, timedOut, "counted once")
}

// No timeout leaves the attempt's context without a deadline.
func TestTimeout_NoneMeansNoDeadline(t *testing.T) {
	t.Parallel()
	hasDeadline := make(chan bool, 1)
	b := setup(t, map[domain.JobType]domain.Handler{"plain": domain.HandlerFunc(func(ctx context.Context, _ []byte) error {
		_, ok := ctx.Deadline()
		hasDeadline <- ok
		return nil
	})}, WithJobTimeout(NoTimeout))
	job, err := b.sys.Submit(context.Background(), SubmitParams{Type: "plain"})
	require.NoError(t, err)
	require.Zero(t, job.Timeout)
	require.False(t, <-hasDeadline)
	b.finished.waitFinished(t, 1)
}
