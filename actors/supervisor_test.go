package actors

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
)

// A passivated job actor runs the next job, and what a worker or a timer
// of its last job sends it late reaches nothing: a stale end of attempt,
// timeout or progress report leaves the next job running, on time and
// without progress.
func TestSupervisor_ReusedJobActorIgnoresItsLastJobsMessages(t *testing.T) {
	t.Parallel()
	type owner struct {
		pid *actor.PID
		gen uint64
	}
	var (
		mu      sync.Mutex
		owners  []owner
		release = make(chan struct{})
	)
	var sys *System
	handler := domain.HandlerFunc(func(ctx context.Context, payload []byte) error {
		r := ctx.Value(attemptKey{}).(*attemptReporter)
		mu.Lock()
		owners = append(owners, owner{pid: r.owner, gen: r.gen})
		first := owners[0]
		mu.Unlock()
		if string(payload) != `"second"` {
			return nil
		}
		// Sent from this goroutine, they reach the actor before the report
		// below does.
		root := sys.core.actors.Root
		root.Send(first.pid, &attemptDone{gen: first.gen, err: errors.New("stale end of attempt")})
		root.Send(first.pid, &attemptTimedOut{gen: first.gen})
		root.Send(first.pid, &stuckCheck{gen: first.gen})
		root.Send(first.pid, &progressReport{gen: first.gen, progress: domain.NewProgress(99, "stale", time.Now())})
		ReportProgress(ctx, 10, "fresh")
		select {
		case <-release:
			return ctx.Err()
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	b := setup(t, map[domain.JobType]domain.Handler{"p": handler}, WithWorkers(1))
	sys = b.sys
	ctx := context.Background()

	first, err := sys.Submit(ctx, SubmitParams{Type: "p", Payload: []byte(`"first"`)})
	require.NoError(t, err)
	b.finished.waitFinished(t, 1)
	waitFor(t, func() bool { return sys.Stats().JobActors == 0 })
	second, err := sys.Submit(ctx, SubmitParams{Type: "p", Payload: []byte(`"second"`), Timeout: time.Hour})
	require.NoError(t, err)
	waitFor(t, func() bool {
		p := storedProgress(t, sys, second.ID)
		return p != nil && p.Message == "fresh"
	})

	mu.Lock()
	require.Len(t, owners, 2)
	require.Equal(t, owners[0].pid.Id, owners[1].pid.Id, "the second job ran on the first job's actor")
	require.NotEqual(t, owners[0].gen, owners[1].gen)
	mu.Unlock()
	got, err := sys.Get(ctx, second.ID)
	require.NoError(t, err)
	require.Equal(t, domain.StatusRunning, got.Status, "a stale end of attempt does not end it")
	require.Equal(t, "fresh", got.Progress.Message)

	close(release)
	b.finished.waitFinished(t, 2)
	got, err = sys.Get(ctx, second.ID)
	require.NoError(t, err)
	require.Equal(t, domain.StatusCompleted, got.Status)
	require.Empty(t, got.LastError, "no stale timeout either")
	done, err := sys.Get(ctx, first.ID)
	require.NoError(t, err)
	require.Equal(t, domain.StatusCompleted, done.Status)
}
