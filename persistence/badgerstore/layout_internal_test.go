package badgerstore

import (
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
)

// writeLayoutOneStore writes, with Badger alone, what a store of key
// layout 1 held: the snapshots of versionOneSnapshots, their status and
// type keys, and the layout key. It returns the jobs as this build reads
// them.
func writeLayoutOneStore(t *testing.T, dir string) []*domain.Job {
	t.Helper()
	opts := Options{Dir: dir, Logger: slog.New(slog.DiscardHandler)}.WithDefaults()
	db, err := badger.Open(opts.badgerOptions())
	require.NoError(t, err)
	var jobs []*domain.Job
	require.NoError(t, db.Update(func(txn *badger.Txn) error {
		for _, v1 := range versionOneSnapshots {
			b, err := hex.DecodeString(v1.hex)
			require.NoError(t, err)
			j, err := decode(b)
			require.NoError(t, err)
			jobs = append(jobs, j)
			e := indexOf(j)
			require.NoError(t, txn.Set(jobKey(j.ID), b))
			require.NoError(t, txn.Set(appendStatusKey(nil, j.ID, e), []byte(j.Type)))
			require.NoError(t, txn.Set(appendTypeKey(nil, j.ID, e), nil))
		}
		return txn.Set(layoutKey, []byte{layoutV1})
	}))
	require.NoError(t, db.Close())
	return jobs
}

func TestOpenUpgradesALayoutOneStore(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	jobs := writeLayoutOneStore(t, dir)
	ctx := t.Context()

	s, err := Open(Options{Dir: dir, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	for _, j := range jobs {
		got, err := s.Get(ctx, j.ID)
		require.NoError(t, err)
		require.Equal(t, j, got)
		require.Equal(t, domain.DefaultQueue, got.Queue)
		require.Equal(t, domain.DefaultPriority, got.Priority)
	}
	queues, err := s.Queues(ctx)
	require.NoError(t, err)
	require.Equal(t, []domain.QueueInfo{{Name: domain.DefaultQueue, Pending: 1}}, queues, "counted at the upgrade")
	page, err := s.List(ctx, domain.Filter{Queue: domain.DefaultQueue})
	require.NoError(t, err)
	require.Equal(t, 2, page.Total)

	// The old pending job goes on with its life; its snapshot is rewritten
	// in version 2.
	pending := jobs[0]
	require.NoError(t, pending.Start(pending.CreatedAt.Add(time.Second)))
	require.NoError(t, s.Update(ctx, pending))
	queues, err = s.Queues(ctx)
	require.NoError(t, err)
	require.Equal(t, []domain.QueueInfo{{Name: domain.DefaultQueue, Running: 1}}, queues)
	require.NoError(t, s.Close())

	report, err := Verify(ctx, dir, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	require.Empty(t, report.Damage)

	// Upgraded on to layout 3: the old failed job is in the finished
	// index, so retention finds it.
	s, err = Open(Options{Dir: dir, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	n, err := s.DeleteFinished(ctx, time.Now(), domain.StatusFailed, time.Now(), 10)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	_, err = s.Get(ctx, jobs[1].ID)
	require.ErrorIs(t, err, domain.ErrNotFound)
	require.NoError(t, s.Close())

	report, err = Verify(ctx, dir, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	require.Empty(t, report.Damage)

	// The layout is the current one now: a second open does not count again.
	db, err := badger.Open(Options{Dir: dir, Logger: slog.New(slog.DiscardHandler)}.WithDefaults().badgerOptions().WithReadOnly(true))
	require.NoError(t, err)
	require.NoError(t, db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(layoutKey)
		require.NoError(t, err)
		v, err := item.ValueCopy(nil)
		require.Equal(t, []byte{layoutCurrent}, v)
		return err
	}))
	require.NoError(t, db.Close())
}

func TestOpenRefusesAnUnknownLayout(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	opts := Options{Dir: dir, Logger: slog.New(slog.DiscardHandler)}.WithDefaults()
	db, err := badger.Open(opts.badgerOptions())
	require.NoError(t, err)
	require.NoError(t, db.Update(func(txn *badger.Txn) error { return txn.Set(layoutKey, []byte{layoutCurrent + 1}) }))
	require.NoError(t, db.Close())
	_, err = Open(opts)
	require.ErrorContains(t, err, fmt.Sprintf("key layout [%d]", layoutCurrent+1))
}

// Verify recounts the queues and checks the scheduled index against the
// snapshots.
func TestVerifyFindsAWrongCountAndAMissingScheduledKey(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := t.Context()
	s, err := Open(Options{Dir: dir, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	later := testJob(t, 1)
	later.ScheduleAt(testEpoch.Add(time.Hour), testEpoch)
	require.NoError(t, s.Create(ctx, testJob(t, 0), later))
	require.NoError(t, s.Close())

	report, err := Verify(ctx, dir, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	require.Empty(t, report.Damage)

	db, err := badger.Open(Options{Dir: dir, Logger: slog.New(slog.DiscardHandler)}.WithDefaults().badgerOptions())
	require.NoError(t, err)
	require.NoError(t, db.Update(func(txn *badger.Txn) error {
		k := countKey{status: 1, queue: domain.DefaultQueue}
		return errors.Join(
			txn.Set(k.key(), []byte{5}),
			txn.Delete(appendScheduledKey(nil, later.ID, micros(later.RunAt))),
		)
	}))
	require.NoError(t, db.Close())

	report, err = Verify(ctx, dir, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	require.Len(t, report.Damage, 2, "%q", report.Damage)
	require.Contains(t, report.Damage, `queue "default" holds 1 jobs pending, its count says 5`)
	require.Contains(t, report.Damage, "scheduled job "+later.ID.String()+" is missing from the scheduled index")
}

// requireLayoutVersion fails unless the store in dir records layout want.
func requireLayoutVersion(t *testing.T, dir string, want byte) {
	t.Helper()
	db, err := badger.Open(Options{Dir: dir, Logger: slog.New(slog.DiscardHandler)}.WithDefaults().badgerOptions().WithReadOnly(true))
	require.NoError(t, err)
	defer func() { require.NoError(t, db.Close()) }()
	require.NoError(t, db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(layoutKey)
		require.NoError(t, err)
		v, err := item.ValueCopy(nil)
		require.Equal(t, []byte{want}, v)
		return err
	}))
}

// A layout 2 store is a layout 3 one without finished keys: this build
// writes one, strips the finished keys and records layout 2, and Open
// must write them back.
func TestOpenUpgradesALayoutTwoStore(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := t.Context()
	logger := slog.New(slog.DiscardHandler)
	s, err := Open(Options{Dir: dir, Logger: logger})
	require.NoError(t, err)
	finishedAt := testEpoch.Add(time.Hour)
	completed := testJob(t, 0)
	completed.Status, completed.FinishedAt = domain.StatusCompleted, finishedAt
	canceled := testJob(t, 1)
	canceled.Status, canceled.FinishedAt = domain.StatusCanceled, finishedAt.Add(time.Second)
	held := testJob(t, 2)
	held.Status, held.FinishedAt = domain.StatusCompleted, finishedAt.Add(2*time.Second)
	held.UniqueKey, held.UniqueFor = "report:q1", 24*time.Hour
	pending := testJob(t, 3)
	require.NoError(t, s.Create(ctx, completed, canceled, held, pending))
	require.NoError(t, s.Close())

	db, err := badger.Open(Options{Dir: dir, Logger: logger}.WithDefaults().badgerOptions())
	require.NoError(t, err)
	stripped := 0
	require.NoError(t, db.Update(func(txn *badger.Txn) error {
		err := eachKey(txn, []byte{prefixFinished}, func(key []byte) error {
			stripped++
			return txn.Delete(append([]byte(nil), key...))
		})
		if err != nil {
			return err
		}
		return txn.Set(layoutKey, []byte{layoutV2})
	}))
	require.NoError(t, db.Close())
	require.Equal(t, 3, stripped, "fixture: one finished key per finished job")
	report, err := Verify(ctx, dir, logger)
	require.NoError(t, err)
	require.Len(t, report.Damage, 3, "without its keys, a layout 3 store is damaged: %q", report.Damage)

	s, err = Open(Options{Dir: dir, Logger: logger})
	require.NoError(t, err)
	// Before the hold of held ends, and after it.
	now := finishedAt.Add(time.Hour)
	n, err := s.DeleteFinished(ctx, now, domain.StatusCompleted, now, 10)
	require.NoError(t, err)
	require.Equal(t, 1, n, "the completed job, not the one holding its key")
	_, err = s.Get(ctx, completed.ID)
	require.ErrorIs(t, err, domain.ErrNotFound)
	n, err = s.DeleteFinished(ctx, now.Add(24*time.Hour), domain.StatusCompleted, now, 10)
	require.NoError(t, err)
	require.Equal(t, 1, n, "the held job, once its hold passed")
	require.NoError(t, s.Close())

	requireLayoutVersion(t, dir, layoutCurrent)
	report, err = Verify(ctx, dir, logger)
	require.NoError(t, err)
	require.Empty(t, report.Damage)

	s, err = Open(Options{Dir: dir, Logger: logger})
	require.NoError(t, err)
	n, err = s.DeleteFinished(ctx, now, domain.StatusCanceled, now, 10)
	require.NoError(t, err)
	require.Equal(t, 1, n, "the canceled job's key was written too")
	_, err = s.Get(ctx, pending.ID)
	require.NoError(t, err)
	require.NoError(t, s.Close())
}

// Verify checks the finished index against the snapshots both ways.
func TestVerifyFindsAMissingAndAStrayFinishedKey(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := t.Context()
	logger := slog.New(slog.DiscardHandler)
	s, err := Open(Options{Dir: dir, Logger: logger})
	require.NoError(t, err)
	done := testJob(t, 0)
	done.Status, done.FinishedAt = domain.StatusCompleted, testEpoch.Add(time.Minute)
	running := testJob(t, 1)
	running.Status = domain.StatusRunning
	require.NoError(t, s.Create(ctx, done, running))
	require.NoError(t, s.Close())

	db, err := badger.Open(Options{Dir: dir, Logger: logger}.WithDefaults().badgerOptions())
	require.NoError(t, err)
	require.NoError(t, db.Update(func(txn *badger.Txn) error {
		stray := indexOf(running)
		stray.status, stray.finishedAt = 3, micros(testEpoch)
		return errors.Join(
			txn.Delete(appendFinishedKey(nil, done.ID, indexOf(done))),
			txn.Set(appendFinishedKey(nil, running.ID, stray), nil),
		)
	}))
	require.NoError(t, db.Close())

	report, err := Verify(ctx, dir, logger)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{
		"finished job " + done.ID.String() + " is missing from the finished index",
		"job " + running.ID.String() + " is in the finished index but not finished",
	}, report.Damage)
}

// A layout 3 store is a layout 4 one whose snapshots hold no result or
// progress: Open records layout 4 and reads its jobs as they were.
func TestOpenUpgradesALayoutThreeStore(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := t.Context()
	logger := slog.New(slog.DiscardHandler)
	s, err := Open(Options{Dir: dir, Logger: logger})
	require.NoError(t, err)
	job := testJob(t, 0)
	require.NoError(t, s.Create(ctx, job))
	require.NoError(t, s.Close())

	db, err := badger.Open(Options{Dir: dir, Logger: logger}.WithDefaults().badgerOptions())
	require.NoError(t, err)
	require.NoError(t, db.Update(func(txn *badger.Txn) error { return txn.Set(layoutKey, []byte{layoutV3}) }))
	require.NoError(t, db.Close())

	s, err = Open(Options{Dir: dir, Logger: logger})
	require.NoError(t, err)
	got, err := s.Get(ctx, job.ID)
	require.NoError(t, err)
	require.Equal(t, job, got)
	require.Nil(t, got.Result)
	require.Nil(t, got.Progress)
	got.Status, got.Result = domain.StatusCompleted, []byte(`{"ok":true}`)
	got.Progress = &domain.Progress{Percent: 100, Message: "done", UpdatedAt: testEpoch}
	require.NoError(t, s.Update(ctx, got))
	require.NoError(t, s.Close())
	requireLayoutVersion(t, dir, layoutCurrent)

	report, err := Verify(ctx, dir, logger)
	require.NoError(t, err)
	require.Empty(t, report.Damage)
}
