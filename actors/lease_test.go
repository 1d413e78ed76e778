package actors

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/internal/pgtest"
	"github.com/troupe-go/troupe/persistence/pgstore"
)

// hookedQueue is a PostgreSQL shared queue whose tests step in around lease
// renewals and owned writes, to order them against one another.
type hookedQueue struct {
	*pgstore.Store
	url, schema string
	beforeRenew func(ids []uuid.UUID)
	afterRenew  func(lost []uuid.UUID)
	afterOwned  func(job *domain.Job, err error)
}

func (q *hookedQueue) RenewLeases(ctx context.Context, node string, ids []uuid.UUID, lease time.Duration) ([]uuid.UUID, error) {
	if q.beforeRenew != nil {
		q.beforeRenew(ids)
	}
	lost, err := q.Store.RenewLeases(ctx, node, ids, lease)
	if q.afterRenew != nil {
		q.afterRenew(lost)
	}
	return lost, err
}

func (q *hookedQueue) UpdateOwned(ctx context.Context, node string, job *domain.Job) error {
	err := q.Store.UpdateOwned(ctx, node, job)
	if q.afterOwned != nil {
		q.afterOwned(job, err)
	}
	return err
}

// warnings records the messages logged at warning level or above.
type warnings struct {
	slog.Handler
	mu   *sync.Mutex
	msgs *[]string
}

func newWarnings(t *testing.T) warnings {
	return warnings{Handler: testLogger(t).Handler(), mu: &sync.Mutex{}, msgs: &[]string{}}
}

func (w warnings) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		w.mu.Lock()
		*w.msgs = append(*w.msgs, r.Message)
		w.mu.Unlock()
	}
	return w.Handler.Handle(ctx, r)
}

func (w warnings) WithAttrs(attrs []slog.Attr) slog.Handler {
	return warnings{Handler: w.Handler.WithAttrs(attrs), mu: w.mu, msgs: w.msgs}
}

func (w warnings) WithGroup(name string) slog.Handler {
	return warnings{Handler: w.Handler.WithGroup(name), mu: w.mu, msgs: w.msgs}
}

func (w warnings) logged() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(*w.msgs)
}

const leaseLostWarning = "lost the lease of a running job; dropping its attempt"

// startHookedNode starts one node on a fresh schema through q, which it
// fills in with the store; hooks must be set before it starts.
func startHookedNode(t *testing.T, q *hookedQueue, log warnings, typ domain.JobType, h domain.Handler) *System {
	t.Helper()
	url := pgtest.URL(t)
	schema := pgtest.RandomSchema(t)
	pgtest.DropSchemaOnCleanup(t, url, schema)
	store, err := pgstore.Open(context.Background(), pgstore.Options{URL: url, Schema: schema, MaxConns: 8, Logger: testLogger(t)})
	require.NoError(t, err)
	q.Store, q.url, q.schema = store, url, schema
	sys, err := New(store,
		WithConfig(Config{Node: "node-1", PollInterval: 50 * time.Millisecond, LeaseDuration: 1500 * time.Millisecond, RescueInterval: 100 * time.Millisecond}),
		WithSharedQueue(q), WithLogger(slog.New(log)), WithWorkers(2),
		WithRetryBackoff(10*time.Millisecond, 10*time.Millisecond, NoJitter))
	require.NoError(t, err)
	require.NoError(t, sys.Register(typ, h))
	require.NoError(t, sys.Start(context.Background()))
	t.Cleanup(func() {
		require.NoError(t, sys.Stop(context.Background()))
		require.NoError(t, store.Close())
	})
	return sys
}

// await waits for ch in a hook, which must not block the node for ever.
func await(ch <-chan struct{}) {
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
	}
}

// A job whose outcome commits while a renewal of its lease runs is not
// renewed, because it no longer runs; it completed here and must not be
// reported as a lease lost.
func TestShared_OutcomeDuringRenewalIsNoLostLease(t *testing.T) {
	t.Parallel()
	var (
		release       = make(chan struct{})
		committed     = make(chan struct{})
		secondRenewal = make(chan struct{})
		renewals      int
		once          sync.Once
	)
	q := &hookedQueue{
		beforeRenew: func(ids []uuid.UUID) {
			renewals++ // the dispatcher runs one renewal at a time
			switch renewals {
			case 1:
				// The attempt ends, and its outcome commits, while this
				// renewal is on its way to the store.
				close(release)
				await(committed)
			case 2:
				close(secondRenewal)
			}
		},
		afterOwned: func(job *domain.Job, err error) {
			if err == nil && job.Status == domain.StatusCompleted {
				once.Do(func() { close(committed) })
				// The job's actor reports its end only after the dispatcher
				// has handled the renewal's result: the next renewal starts
				// only then.
				await(secondRenewal)
			}
		},
	}
	log := newWarnings(t)
	sys := startHookedNode(t, q, log, "block", domain.HandlerFunc(func(ctx context.Context, _ []byte) error {
		<-release
		return nil
	}))
	job, err := sys.Submit(context.Background(), SubmitParams{Type: "block"})
	require.NoError(t, err)
	waitForStatus(t, q.Store, domain.StatusCompleted, 1)
	<-secondRenewal // the dispatcher has handled the first renewal's result
	// and the job's actor, once gone, whatever the dispatcher passed on.
	waitFor(t, func() bool { return sys.Stats().JobActors == 0 })

	got, err := sys.Get(context.Background(), job.ID)
	require.NoError(t, err)
	require.Equal(t, 1, got.Attempts)
	require.NotContains(t, log.logged(), leaseLostWarning)
}

// A renewal that finds a job gone because its attempt ended in a retry must
// not touch the retry's attempt, which this node claimed meanwhile under a
// lease of its own.
func TestShared_StaleRenewalSparesTheNextAttempt(t *testing.T) {
	t.Parallel()
	var (
		release1      = make(chan struct{})
		retryStored   = make(chan struct{})
		started2      = make(chan struct{})
		secondRenewal = make(chan struct{})
		release2      = make(chan struct{})
		renewals      int
		onceStored    sync.Once
		onceStarted   sync.Once
	)
	q := &hookedQueue{
		beforeRenew: func(ids []uuid.UUID) {
			renewals++
			switch renewals {
			case 1:
				close(release1)
				await(retryStored)
			case 2:
				close(secondRenewal)
			}
		},
		afterRenew: func([]uuid.UUID) {
			if renewals == 1 {
				// The first renewal, which found the job pending, answers
				// only once the retry runs here again.
				await(started2)
			}
		},
		afterOwned: func(job *domain.Job, err error) {
			// The retry waits out its backoff scheduled, or pending
			// when there is none.
			if err == nil && (job.Status == domain.StatusScheduled || job.Status == domain.StatusPending) {
				onceStored.Do(func() { close(retryStored) })
			}
		},
	}
	log := newWarnings(t)
	sys := startHookedNode(t, q, log, "flaky", domain.HandlerFunc(func(ctx context.Context, _ []byte) error {
		if AttemptFromContext(ctx) == 1 {
			<-release1
			return errors.New("not yet")
		}
		onceStarted.Do(func() { close(started2) })
		select {
		case <-release2:
			return nil
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}))
	job, err := sys.Submit(context.Background(), SubmitParams{Type: "flaky", MaxAttempts: 5})
	require.NoError(t, err)
	<-secondRenewal // the dispatcher has handled the first renewal's result
	close(release2)
	waitForStatus(t, q.Store, domain.StatusCompleted, 1)
	waitFor(t, func() bool { return sys.Stats().JobActors == 0 })

	got, err := sys.Get(context.Background(), job.ID)
	require.NoError(t, err)
	require.Equal(t, 2, got.Attempts, "the second attempt ran to its end")
	require.NotContains(t, log.logged(), leaseLostWarning)
}

// A job another node took over is still reported, and its attempt here
// stops without writing anything.
func TestShared_LeaseTakenByAnotherNodeDropsTheAttempt(t *testing.T) {
	t.Parallel()
	var (
		started = make(chan uuid.UUID, 1)
		ended   = make(chan error, 1)
		taken   sync.Once
	)
	q := &hookedQueue{}
	q.beforeRenew = func(ids []uuid.UUID) {
		taken.Do(func() {
			// Another node's rescue and claim, in one step.
			conn, err := pgx.Connect(context.Background(), q.url)
			if err != nil {
				t.Errorf("connect: %v", err)
				return
			}
			defer conn.Close(context.Background())
			_, err = conn.Exec(context.Background(),
				`UPDATE `+pgx.Identifier{q.schema, "troupe_jobs"}.Sanitize()+` SET owner_node = 'node-2', attempts = attempts + 1 WHERE id = ANY($1)`, ids)
			if err != nil {
				t.Errorf("take the jobs over: %v", err)
			}
		})
	}
	log := newWarnings(t)
	sys := startHookedNode(t, q, log, "block", domain.HandlerFunc(func(ctx context.Context, _ []byte) error {
		id, _ := JobIDFromContext(ctx)
		started <- id
		<-ctx.Done()
		ended <- context.Cause(ctx)
		return context.Cause(ctx)
	}))
	job, err := sys.Submit(context.Background(), SubmitParams{Type: "block"})
	require.NoError(t, err)
	require.Equal(t, job.ID, <-started)
	require.ErrorIs(t, <-ended, domain.ErrLeaseLost)
	waitFor(t, func() bool { return sys.Stats().JobActors == 0 })

	require.Contains(t, log.logged(), leaseLostWarning)
	got, err := sys.Get(context.Background(), job.ID)
	require.NoError(t, err)
	require.Equal(t, domain.StatusRunning, got.Status, "the other node's job is left to it")
	require.Equal(t, 2, got.Attempts)
}
