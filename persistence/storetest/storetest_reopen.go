package storetest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
)

func testReopen(t *testing.T, open ReopenFactory, cfg config) {
	store, reopen := open(t)
	ctx := t.Context()
	scheduledLate := NewJob(t, "a", JobCreatedAt(at(0)), JobQueue("email"), JobRunAt(at(600)), JobUniqueKey("late", 0))
	scheduledEarly := NewJob(t, "a", JobCreatedAt(at(1)), JobQueue("email"), JobRunAt(at(300)), JobPriority(1))
	pending := NewJob(t, "a", JobCreatedAt(at(2)), JobUniqueKey("pending", 0))
	done := NewJob(t, "a", JobCreatedAt(at(3)), JobUniqueKey("done", time.Hour), JobFinished(domain.StatusCompleted, at(100)))
	done.Result = []byte(`{"sent": 3}`)
	done.Progress = &domain.Progress{Percent: 100, Message: "sent 3 of 3", UpdatedAt: domain.Timestamp(at(99))}
	mustCreate(t, store, scheduledLate, scheduledEarly, pending, done)
	running := NewJob(t, "b", JobCreatedAt(at(4)))
	mustCreate(t, store, running)
	require.NoError(t, running.Start(at(5)))
	running.Progress = &domain.Progress{Percent: 12.5, Message: "step 1", UpdatedAt: domain.Timestamp(at(6))}
	require.NoError(t, store.Update(ctx, running))
	require.NoError(t, store.SetQueuePaused(ctx, "email", true))
	require.NoError(t, store.SetQueuePaused(ctx, "idle", true))
	requests, isLog := store.(domain.RequestLog)
	rec := domain.RequestRecord{Scope: "ci", Key: "k", Fingerprint: "f", Status: 201, Body: []byte(`{"id":1}`), ExpiresAt: at(86_400)}
	if isLog {
		_, err := requests.BeginRequest(ctx, at(0), rec)
		require.NoError(t, err)
		require.NoError(t, requests.FinishRequest(ctx, rec))
	}

	store = reopen(t)
	for _, j := range []*domain.Job{scheduledLate, scheduledEarly, pending, done, running} {
		requireStored(t, store, j)
	}
	requireQueues(t, store, []domain.QueueInfo{
		{Name: domain.DefaultQueue, Pending: 1, Running: 1},
		{Name: "email", Paused: true, Scheduled: 2},
		{Name: "idle", Paused: true},
	})
	requireNextRunAt(t, store, at(300))

	dups := []*domain.Job{
		NewJob(t, "a", JobCreatedAt(at(10)), JobUniqueKey("late", 0)),
		NewJob(t, "a", JobCreatedAt(at(11)), JobUniqueKey("pending", 0)),
	}
	holders := []*domain.Job{scheduledLate, pending}
	if !cfg.ownClock {
		// Held until 100+3600 by the time the test drives.
		dups = append(dups, NewJob(t, "a", JobCreatedAt(at(12)), JobUniqueKey("done", 0)))
		holders = append(holders, done)
	}
	existing, err := store.Insert(ctx, at(200), dups)
	require.NoError(t, err)
	require.Equal(t, holders, existing, "unique keys are held after a reopen")

	if isLog {
		got, err := store.(domain.RequestLog).BeginRequest(ctx, at(1), domain.RequestRecord{Scope: "ci", Key: "k", ExpiresAt: at(60)})
		require.NoError(t, err)
		rec.Done = true
		require.Equal(t, &rec, got, "the recorded response survives")
	}

	promoted, err := store.PromoteDue(ctx, at(600), 10)
	require.NoError(t, err)
	require.Equal(t, ids([]*domain.Job{scheduledEarly, scheduledLate}), ids(promoted))

	// The promotions survive too, and leave nothing scheduled.
	store = reopen(t)
	requireNextRunAt(t, store, time.Time{})
	requireQueues(t, store, []domain.QueueInfo{
		{Name: domain.DefaultQueue, Pending: 1, Running: 1},
		{Name: "email", Paused: true, Pending: 2},
		{Name: "idle", Paused: true},
	})
	require.NoError(t, store.SetQueuePaused(ctx, "idle", false))
	store = reopen(t)
	requireQueues(t, store, []domain.QueueInfo{
		{Name: domain.DefaultQueue, Pending: 1, Running: 1},
		{Name: "email", Paused: true, Pending: 2},
	})
}
