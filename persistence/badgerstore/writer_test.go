package badgerstore

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
)

// The writer tests build batches by hand and hand them to writer.commit,
// the step that the writer's loop repeats. Nothing else writes meanwhile
// (the loop waits on an empty queue), so each test knows exactly what one
// batch held. commit answers every request before it returns.

// openTest opens an in-memory store unless opts says otherwise.
func openTest(t testing.TB, opts Options) *Store {
	t.Helper()
	if opts.Dir == "" {
		opts.InMemory = true
	}
	if opts.MemTableSize == 0 {
		opts.MemTableSize = 8 << 20
	}
	opts.Logger = cmp.Or(opts.Logger, slog.New(slog.DiscardHandler))
	s, err := Open(opts)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

var testEpoch = time.Date(2025, 5, 1, 8, 0, 0, 0, time.UTC)

// testJob returns a pending job created n seconds after testEpoch.
func testJob(t testing.TB, n int) *domain.Job {
	t.Helper()
	j, err := domain.NewJob("send_email", fmt.Appendf(nil, `{"n":%d}`, n), 3, testEpoch.Add(time.Duration(n)*time.Second))
	require.NoError(t, err)
	return j
}

// req builds a create or update request the way Create and Update do.
func req(t testing.TB, ctx context.Context, op op, jobs ...*domain.Job) *request {
	t.Helper()
	r, err := newWriteRequest(ctx, op, jobs)
	require.NoError(t, err)
	return r
}

// del builds a delete request the way Delete does.
func del(ctx context.Context, id uuid.UUID) *request {
	return &request{ctx: ctx, op: opDelete, id: id, done: make(chan error, 1)}
}

// answer returns the answer commit gave r.
func answer(t testing.TB, r *request) error {
	t.Helper()
	select {
	case err := <-r.done:
		return err
	default:
		t.Fatalf("%s: not answered", r.label())
		return nil
	}
}

// indexKeysOf returns every index key that names id.
func indexKeysOf(t testing.TB, s *Store, id uuid.UUID) [][]byte {
	t.Helper()
	var keys [][]byte
	err := s.db.View(func(txn *badger.Txn) error {
		for _, prefix := range []byte{prefixStatus, prefixType, prefixScheduled, prefixFinished} {
			opts := badger.DefaultIteratorOptions
			opts.PrefetchValues = false
			opts.Prefix = []byte{prefix}
			it := txn.NewIterator(opts)
			for it.Rewind(); it.Valid(); it.Next() {
				if got, ok := idOfIndexKey(it.Item().Key()); ok && got == id {
					keys = append(keys, it.Item().KeyCopy(nil))
				}
			}
			it.Close()
		}
		return nil
	})
	require.NoError(t, err)
	return keys
}

// requireIndexedAs fails unless id has exactly the index keys of j.
func requireIndexedAs(t testing.TB, s *Store, j *domain.Job) {
	t.Helper()
	e := indexOf(j)
	want := [][]byte{appendStatusKey(nil, j.ID, e), appendTypeKey(nil, j.ID, e)}
	if j.Status == domain.StatusScheduled {
		want = append(want, appendScheduledKey(nil, j.ID, e.runAt))
	}
	if j.Status.IsTerminal() {
		want = append(want, appendFinishedKey(nil, j.ID, e))
	}
	got, err := s.Get(t.Context(), j.ID)
	require.NoError(t, err)
	require.Equal(t, j, got)
	require.ElementsMatch(t, want, indexKeysOf(t, s, j.ID), "index keys of job %s", j.ID)
}

// versionsOf counts the versions of a job's snapshot still in the
// memtable: one per transaction that wrote it.
func versionsOf(t testing.TB, s *Store, id uuid.UUID) int {
	t.Helper()
	n := 0
	err := s.db.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.AllVersions = true
		opts.PrefetchValues = false
		it := txn.NewKeyIterator(jobKey(id), opts)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			n++
		}
		return nil
	})
	require.NoError(t, err)
	return n
}

func TestWriterCoalescesSnapshotsOfOneJob(t *testing.T) {
	t.Parallel()
	s := openTest(t, Options{})
	ctx := t.Context()
	j := testJob(t, 0)
	require.NoError(t, s.Create(ctx, j))
	batchesBefore := s.w.batches.Load()

	// One batch carries five transitions of j, and the creation and first
	// transition of k.
	var batch []*request
	snap := func(step func() error) {
		require.NoError(t, step())
		batch = append(batch, req(t, ctx, opUpdate, j.Clone()))
	}
	snap(func() error { return j.Start(testEpoch.Add(time.Minute)) })
	snap(func() error {
		return j.Retry(errors.New("busy"), testEpoch.Add(time.Hour), testEpoch.Add(2*time.Minute))
	})
	snap(func() error { return j.Promote(testEpoch.Add(time.Hour)) })
	snap(func() error { return j.Start(testEpoch.Add(time.Hour)) })
	snap(func() error { return j.Complete(testEpoch.Add(time.Hour + time.Second)) })
	k := testJob(t, 1)
	batch = append(batch, req(t, ctx, opCreate, k.Clone()))
	require.NoError(t, k.Start(testEpoch.Add(time.Minute)))
	batch = append(batch, req(t, ctx, opUpdate, k.Clone()))

	s.w.commit(batch)
	for _, r := range batch {
		require.NoError(t, answer(t, r))
	}
	require.Equal(t, batchesBefore+1, s.w.batches.Load(), "one batch, one commit")

	for _, want := range []*domain.Job{j, k} {
		got, err := s.Get(ctx, want.ID)
		require.NoError(t, err)
		require.Equal(t, want, got, "the last snapshot wins")
		requireIndexedAs(t, s, want)
	}
	require.Equal(t, 2, versionsOf(t, s, j.ID), "j written once by Create and once by the batch")
	require.Equal(t, 1, versionsOf(t, s, k.ID), "k written once")
	for _, st := range domain.Statuses() {
		page, err := s.List(ctx, domain.Filter{Statuses: []domain.Status{st}})
		require.NoError(t, err)
		want := 0
		if st == domain.StatusCompleted || st == domain.StatusRunning {
			want = 1
		}
		require.Equal(t, want, page.Total, st)
	}
}

func TestWriterFailsABadRequestAlone(t *testing.T) {
	t.Parallel()
	s := openTest(t, Options{})
	ctx := t.Context()
	stored := testJob(t, 0)
	require.NoError(t, s.Create(ctx, stored))

	a, b, c := testJob(t, 1), testJob(t, 2), testJob(t, 3)
	missing := testJob(t, 4)
	aLater := a.Clone()
	require.NoError(t, aLater.Start(testEpoch.Add(time.Minute)))
	storedTwin := stored.Clone()
	storedTwin.Status = domain.StatusCanceled

	cases := []struct {
		name string
		r    *request
		want error
	}{
		{"create a", req(t, ctx, opCreate, a), nil},
		{"create a stored ID", req(t, ctx, opCreate, storedTwin), domain.ErrAlreadyExists},
		{"update a missing job", req(t, ctx, opUpdate, missing), domain.ErrNotFound},
		{"update a job created earlier in the batch", req(t, ctx, opUpdate, aLater), nil},
		{"create a job created earlier in the batch", req(t, ctx, opCreate, a), domain.ErrAlreadyExists},
		{"delete a missing job", del(ctx, missing.ID), domain.ErrNotFound},
		{"create b with a stored ID", req(t, ctx, opCreate, b, storedTwin), domain.ErrAlreadyExists},
		{"update stored with a missing job", req(t, ctx, opUpdate, storedTwin, missing), domain.ErrNotFound},
		{"create c", req(t, ctx, opCreate, c), nil},
	}
	batch := make([]*request, len(cases))
	for i, tc := range cases {
		batch[i] = tc.r
	}
	s.w.commit(batch)
	for _, tc := range cases {
		err := answer(t, tc.r)
		if tc.want == nil {
			require.NoError(t, err, tc.name)
		} else {
			require.ErrorIs(t, err, tc.want, tc.name)
		}
	}

	for _, want := range []*domain.Job{stored, aLater, c} {
		got, err := s.Get(ctx, want.ID)
		require.NoError(t, err)
		require.Equal(t, want, got)
		requireIndexedAs(t, s, want)
	}
	for _, id := range []uuid.UUID{b.ID, missing.ID} {
		_, err := s.Get(ctx, id)
		require.ErrorIs(t, err, domain.ErrNotFound)
		require.Empty(t, indexKeysOf(t, s, id))
	}
	page, err := s.List(ctx, domain.Filter{})
	require.NoError(t, err)
	require.Equal(t, 3, page.Total)
}

func TestWriterCreatesAndDeletesInOneBatch(t *testing.T) {
	t.Parallel()
	s := openTest(t, Options{})
	ctx := t.Context()
	gone, kept := testJob(t, 0), testJob(t, 1)
	require.NoError(t, s.Create(ctx, kept))
	batch := []*request{
		req(t, ctx, opCreate, gone),
		del(ctx, gone.ID),
		del(ctx, kept.ID),
		req(t, ctx, opCreate, kept),
	}
	s.w.commit(batch)
	for _, r := range batch {
		require.NoError(t, answer(t, r))
	}
	_, err := s.Get(ctx, gone.ID)
	require.ErrorIs(t, err, domain.ErrNotFound)
	require.Empty(t, indexKeysOf(t, s, gone.ID))
	requireIndexedAs(t, s, kept)
	got, err := s.Get(ctx, kept.ID)
	require.NoError(t, err)
	require.Equal(t, kept, got)
}

func TestWriterSkipsARequestWhoseCallerGaveUp(t *testing.T) {
	t.Parallel()
	s := openTest(t, Options{})
	gaveUp, cancel := context.WithCancel(t.Context())
	cancel()
	abandoned, wanted := testJob(t, 0), testJob(t, 1)
	batch := []*request{req(t, gaveUp, opCreate, abandoned), req(t, t.Context(), opCreate, wanted)}
	s.w.commit(batch)
	require.ErrorIs(t, answer(t, batch[0]), context.Canceled)
	require.NoError(t, answer(t, batch[1]))
	_, err := s.Get(t.Context(), abandoned.ID)
	require.ErrorIs(t, err, domain.ErrNotFound)
	_, err = s.Get(t.Context(), wanted.ID)
	require.NoError(t, err)
}

// bulky returns n jobs whose snapshots are about size bytes each.
func bulky(t testing.TB, first, n, size int) []*domain.Job {
	t.Helper()
	jobs := make([]*domain.Job, n)
	for i := range jobs {
		jobs[i] = testJob(t, first+i)
		jobs[i].Payload = bytes.Repeat([]byte{'x'}, size)
	}
	return jobs
}

func TestWriterSplitsABatchTooBigForOneTransaction(t *testing.T) {
	t.Parallel()
	// The smallest memtable caps a transaction near 150 KiB: 400 requests
	// of 1 KiB each need several.
	s := openTest(t, Options{MemTableSize: MemTableSizeMin})
	ctx := t.Context()
	jobs := bulky(t, 0, 400, 1024)
	batch := make([]*request, len(jobs))
	for i, j := range jobs {
		batch[i] = req(t, ctx, opCreate, j)
	}
	// A request that depends on one in the other half still sees it.
	later := jobs[0].Clone()
	require.NoError(t, later.Start(testEpoch.Add(time.Hour)))
	batch = append(batch, req(t, ctx, opUpdate, later))
	jobs[0] = later

	s.w.commit(batch)
	for _, r := range batch {
		require.NoError(t, answer(t, r))
	}
	require.Greater(t, s.w.batches.Load(), int64(1), "the batch was split")
	for _, j := range jobs {
		got, err := s.Get(ctx, j.ID)
		require.NoError(t, err)
		require.Equal(t, j, got)
	}
	page, err := s.List(ctx, domain.Filter{Limit: 1})
	require.NoError(t, err)
	require.Equal(t, len(jobs), page.Total)
}

func TestWriterFailsAloneARequestTooBigForOneTransaction(t *testing.T) {
	t.Parallel()
	s := openTest(t, Options{MemTableSize: MemTableSizeMin})
	ctx := t.Context()
	before, after := testJob(t, 0), testJob(t, 1)
	huge := bulky(t, 2, 300, 1024) // about 300 KiB in one all-or-none call
	batch := []*request{req(t, ctx, opCreate, before), req(t, ctx, opCreate, huge...), req(t, ctx, opCreate, after)}

	s.w.commit(batch)
	require.NoError(t, answer(t, batch[0]))
	err := answer(t, batch[1])
	require.ErrorIs(t, err, domain.ErrInvalid)
	require.ErrorIs(t, err, badger.ErrTxnTooBig)
	require.ErrorContains(t, err, huge[0].ID.String())
	require.NoError(t, answer(t, batch[2]))

	page, err := s.List(ctx, domain.Filter{})
	require.NoError(t, err)
	require.Equal(t, []uuid.UUID{before.ID, after.ID}, []uuid.UUID{page.Jobs[0].ID, page.Jobs[1].ID})
	require.Equal(t, 2, page.Total, "nothing of the huge request is stored")
}

func TestStoreConcurrentDuplicatesFailAlone(t *testing.T) {
	t.Parallel()
	s := openTest(t, Options{})
	ctx := t.Context()
	shared := testJob(t, 0)
	require.NoError(t, s.Create(ctx, shared))

	// However the writer happens to batch them, every duplicate fails and
	// every new job is stored.
	const goroutines, each = 8, 50
	errs := make([][]error, goroutines)
	dupErrs := make([][]error, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				errs[g] = append(errs[g], s.Create(ctx, testJob(t, 1+g*each+i)))
				dupErrs[g] = append(dupErrs[g], s.Create(ctx, shared.Clone()))
			}
		})
	}
	wg.Wait()
	for g := range goroutines {
		require.NoError(t, errors.Join(errs[g]...))
		for _, err := range dupErrs[g] {
			require.ErrorIs(t, err, domain.ErrAlreadyExists)
		}
	}
	page, err := s.List(ctx, domain.Filter{Limit: 1})
	require.NoError(t, err)
	require.Equal(t, 1+goroutines*each, page.Total)
}

func TestBadgerLogKeepsWarningsAndErrors(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	l := badgerLogger{log: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	l.Infof("compaction %d done\n", 3)
	l.Debugf("noise")
	l.Warningf("value log %s is big\n", "000001.vlog")
	l.Errorf("cannot sync: %v", errors.New("disk full"))

	out := buf.String()
	require.NotContains(t, out, "compaction")
	require.NotContains(t, out, "noise")
	require.Contains(t, out, `level=WARN msg="value log 000001.vlog is big" component=badger`)
	require.Contains(t, out, `level=ERROR msg="cannot sync: disk full" component=badger`)
}

func TestWriterRemembersOnlyUnfinishedJobs(t *testing.T) {
	t.Parallel()
	s := openTest(t, Options{})
	ctx := t.Context()
	j, k := testJob(t, 0), testJob(t, 1)
	require.NoError(t, s.Create(ctx, j, k))
	require.Len(t, s.w.unfinished, 2, "pending jobs are remembered")

	// Written from memory, the index keys still move right.
	require.NoError(t, j.Start(testEpoch.Add(time.Minute)))
	require.NoError(t, s.Update(ctx, j))
	requireIndexedAs(t, s, j)
	require.NoError(t, j.Complete(testEpoch.Add(2*time.Minute)))
	require.NoError(t, s.Update(ctx, j))
	requireIndexedAs(t, s, j)
	require.NotContains(t, s.w.unfinished, j.ID, "a finished job is forgotten")

	require.NoError(t, s.Delete(ctx, k.ID))
	require.Empty(t, s.w.unfinished, "a deleted job is forgotten")

	// A job the writer does not remember (finished, or stored before a
	// restart) is read back as before.
	require.NoError(t, s.Update(ctx, j))
	requireIndexedAs(t, s, j)
	require.ErrorIs(t, s.Update(ctx, k), domain.ErrNotFound)
}

// insertReq is an Insert of jobs judged at now, built by hand for a batch.
func insertReq(t *testing.T, ctx context.Context, now time.Time, jobs ...*domain.Job) *request {
	t.Helper()
	r := req(t, ctx, opInsert, jobs...)
	r.now = now
	return r
}

// Within one group commit, a unique key taken by an earlier request is
// held for the later ones, and one freed by an earlier request is free.
func TestWriterJudgesUniqueKeysInBatchOrder(t *testing.T) {
	t.Parallel()
	s := openTest(t, Options{})
	ctx := t.Context()
	now := testEpoch.Add(time.Hour)
	held := testJob(t, 0)
	held.UniqueKey = "held"
	freed := testJob(t, 1)
	freed.UniqueKey = "freed"
	require.NoError(t, s.Create(ctx, held, freed))

	first, second := testJob(t, 2), testJob(t, 3)
	first.UniqueKey, second.UniqueKey = "new", "new"
	third := testJob(t, 4)
	third.UniqueKey = "held"
	require.NoError(t, freed.Start(now))
	require.NoError(t, freed.Complete(now))
	fourth := testJob(t, 5)
	fourth.UniqueKey = "freed"
	batch := []*request{
		insertReq(t, ctx, now, first),
		insertReq(t, ctx, now, second, third),
		req(t, ctx, opUpdate, freed),
		insertReq(t, ctx, now, fourth),
	}
	s.w.commit(batch)
	for _, r := range batch {
		require.NoError(t, <-r.done)
	}
	require.Equal(t, []*domain.Job{nil}, batch[0].existing)
	require.Equal(t, []*domain.Job{first, held}, batch[1].existing, "the holder from the batch, and the stored one")
	require.Equal(t, []*domain.Job{nil}, batch[3].existing, "freed by the update before it")
	requireIndexedAs(t, s, first)
	requireIndexedAs(t, s, fourth)
	_, err := s.Get(ctx, second.ID)
	require.ErrorIs(t, err, domain.ErrNotFound)
}

// A promotion in a batch sees the jobs the batch scheduled, cancelled or
// rescheduled before it.
func TestWriterPromotesAsTheBatchLeftTheJobs(t *testing.T) {
	t.Parallel()
	s := openTest(t, Options{})
	ctx := t.Context()
	at := func(m int) time.Time { return testEpoch.Add(time.Duration(m) * time.Minute) }
	canceled, moved, kept := testJob(t, 0), testJob(t, 1), testJob(t, 2)
	for _, j := range []*domain.Job{canceled, moved, kept} {
		j.ScheduleAt(at(10), testEpoch)
	}
	require.NoError(t, s.Create(ctx, canceled, moved, kept))

	fresh := testJob(t, 3)
	fresh.ScheduleAt(at(5), testEpoch)
	require.NoError(t, canceled.Cancel(at(1)))
	moved.RunAt = domain.Timestamp(at(60))
	promote := newRequest(ctx, opPromote, at(30), requestExtra{limit: 10})
	batch := []*request{req(t, ctx, opCreate, fresh), req(t, ctx, opUpdate, canceled, moved), promote}
	s.w.commit(batch)
	for _, r := range batch {
		require.NoError(t, <-r.done)
	}
	require.Equal(t, []uuid.UUID{fresh.ID, kept.ID}, []uuid.UUID{promote.extra.promoted[0].ID, promote.extra.promoted[1].ID})
	require.Len(t, promote.extra.promoted, 2)
	for _, j := range promote.extra.promoted {
		requireIndexedAs(t, s, j)
	}
	next, err := s.NextRunAt(ctx)
	require.NoError(t, err)
	require.Equal(t, at(60), next)
	require.NotContains(t, s.w.unfinished, moved.ID, "a scheduled job is not remembered")
	require.Contains(t, s.w.unfinished, kept.ID, "a promoted one is")
}

// A DeleteFinished in a batch sees the jobs the batch finished before it,
// and the requests after it see the jobs it deleted gone and their unique
// keys free.
func TestWriterDeletesFinishedJobsAsTheBatchLeftThem(t *testing.T) {
	t.Parallel()
	s := openTest(t, Options{})
	ctx := t.Context()
	at := func(m int) time.Time { return testEpoch.Add(time.Duration(m) * time.Minute) }
	done, running, keyed, recent := testJob(t, 0), testJob(t, 1), testJob(t, 2), testJob(t, 3)
	done.Status, done.FinishedAt = domain.StatusCompleted, at(1)
	running.Status = domain.StatusRunning
	keyed.Status, keyed.FinishedAt, keyed.UniqueKey = domain.StatusCompleted, at(2), "report:q1"
	recent.Status, recent.FinishedAt = domain.StatusCompleted, at(60)
	require.NoError(t, s.Create(ctx, done, running, keyed, recent))
	requireIndexedAs(t, s, done)
	requireIndexedAs(t, s, running)

	require.NoError(t, running.Complete(at(3)))
	again := testJob(t, 4)
	again.UniqueKey = keyed.UniqueKey
	completed, _ := statusCode(domain.StatusCompleted)
	prune := newRequest(ctx, opDeleteFinished, at(100), requestExtra{limit: 10, status: completed, before: micros(at(50))})
	late := req(t, ctx, opUpdate, done)
	batch := []*request{req(t, ctx, opUpdate, running), prune, req(t, ctx, opCreate, again), late}
	s.w.commit(batch)
	require.NoError(t, answer(t, batch[0]))
	require.NoError(t, answer(t, prune))
	require.NoError(t, answer(t, batch[2]), "the deleted job's unique key is free")
	require.ErrorIs(t, answer(t, late), domain.ErrNotFound, "the deleted job is gone")
	require.Equal(t, 3, prune.extra.deleted)

	for _, j := range []*domain.Job{done, running, keyed} {
		_, err := s.Get(ctx, j.ID)
		require.ErrorIs(t, err, domain.ErrNotFound)
		require.Empty(t, indexKeysOf(t, s, j.ID), "job %s keeps no index key", j.ID)
	}
	requireIndexedAs(t, s, recent)
	requireIndexedAs(t, s, again)
}

// Large prunes ask the value-log collector to run; an in-memory store has
// no collector, so the request stays queued where the test can see it.
func TestDeleteFinishedKicksTheValueLogCollector(t *testing.T) {
	t.Parallel()
	s := openTest(t, Options{MemTableSize: 64 << 20})
	ctx := t.Context()
	finishedAt := testEpoch.Add(time.Minute)
	create := func(n int) {
		jobs := make([]*domain.Job, n)
		for i := range jobs {
			jobs[i] = testJob(t, i)
			jobs[i].Status, jobs[i].FinishedAt = domain.StatusCompleted, finishedAt
		}
		require.NoError(t, s.Create(ctx, jobs...))
	}
	prune := func(limit int) int {
		n, err := s.DeleteFinished(ctx, finishedAt.Add(time.Hour), domain.StatusCompleted, finishedAt.Add(time.Second), limit)
		require.NoError(t, err)
		return n
	}
	for range gcAfterDeletes / 1000 {
		create(1000)
	}
	for range gcAfterDeletes/1000 - 1 {
		require.Equal(t, 1000, prune(1000))
	}
	require.Empty(t, s.gcKick, "not yet %d deletes", gcAfterDeletes)
	require.Equal(t, 999, prune(999))
	require.Empty(t, s.gcKick, "one short of %d deletes", gcAfterDeletes)
	require.Equal(t, 1, prune(1000))
	require.Len(t, s.gcKick, 1)
	require.Zero(t, s.pruned.Load(), "counting starts again")
}

// One DeleteFinished stays within one transaction however large its
// limit: a small memtable bounds it below its limit.
func TestDeleteFinishedFitsInOneTransaction(t *testing.T) {
	t.Parallel()
	s := openTest(t, Options{MemTableSize: MemTableSizeMin})
	ctx := t.Context()
	finishedAt := testEpoch.Add(time.Minute)
	var jobs []*domain.Job
	for i := range 3 * s.w.maxDeletes {
		j := testJob(t, i)
		j.Status, j.FinishedAt = domain.StatusCompleted, finishedAt
		j.Type = domain.JobType(strings.Repeat("t", domain.MaxJobTypeLength))
		j.UniqueKey = fmt.Sprintf("%0200d", i)
		jobs = append(jobs, j)
	}
	for chunk := range slices.Chunk(jobs, 50) {
		require.NoError(t, s.Create(ctx, chunk...))
	}
	total := 0
	for {
		n, err := s.DeleteFinished(ctx, finishedAt.Add(time.Hour), domain.StatusCompleted, finishedAt.Add(time.Second), 1_000_000)
		require.NoError(t, err)
		require.LessOrEqual(t, n, s.w.maxDeletes)
		if n == 0 {
			break
		}
		total += n
	}
	require.Equal(t, len(jobs), total)
}

// DeleteFinished seeks past the keys it deleted before (the writer's
// floor), and a finished key written below the floor since, by a create
// or an update, is still found.
func TestDeleteFinishedFindsKeysWrittenBelowItsFloor(t *testing.T) {
	t.Parallel()
	s := openTest(t, Options{})
	ctx := t.Context()
	at := func(m int) time.Time { return testEpoch.Add(time.Duration(m) * time.Minute) }
	n := 0
	finished := func(m int, key string) *domain.Job {
		n++
		j := testJob(t, n)
		j.Status, j.FinishedAt = domain.StatusCompleted, at(m)
		if key != "" {
			j.UniqueKey, j.UniqueFor = key, time.Hour
		}
		return j
	}
	prune := func(now, before int, want ...*domain.Job) {
		t.Helper()
		got, err := s.DeleteFinished(ctx, at(now), domain.StatusCompleted, at(before), 100)
		require.NoError(t, err)
		require.Equal(t, len(want), got)
		for _, j := range want {
			_, err := s.Get(ctx, j.ID)
			require.ErrorIs(t, err, domain.ErrNotFound, "job finished at %s", j.FinishedAt)
		}
	}
	completed, _ := statusCode(domain.StatusCompleted)
	floor := func() finishedPos { return s.w.floors[completed] }

	j10, j20, j30 := finished(10, ""), finished(20, ""), finished(30, "")
	require.NoError(t, s.Create(ctx, j10, j20, j30))
	prune(1000, 25, j10, j20)
	require.Equal(t, finishedPos{set: true, at: micros(at(30)), id: j30.ID}, floor(), "the first past the cutoff")

	// Created below the floor.
	j5 := finished(5, "")
	require.NoError(t, s.Create(ctx, j5))
	require.Equal(t, micros(at(5)), floor().at, "lowered by the write")
	prune(1000, 25, j5)

	// A held job stops the floor; a job updated to finish below it is found.
	held, j50 := finished(40, "slot"), finished(50, "")
	running := testJob(t, 100)
	running.Status = domain.StatusRunning
	require.NoError(t, s.Create(ctx, held, j50, running))
	prune(41+30, 100, j30, j50)
	require.Equal(t, finishedPos{set: true, at: micros(at(50)), id: j50.ID}, floor(), "past the held job, remembered")
	require.Contains(t, s.w.held[completed], held.ID)
	prune(1000, 45, held)
	require.Empty(t, s.w.held[completed], "taken from memory")
	held = finished(40, "slot")
	require.NoError(t, s.Create(ctx, held))
	running.Status, running.FinishedAt = domain.StatusCompleted, at(1)
	require.NoError(t, s.Update(ctx, running))
	prune(41+30, 100, running)
	prune(40+60, 100, held)
	prune(1000, 1000)

	// Remembered held jobs deleted or unfinished since are left alone.
	gone, reopened := finished(200, "k1"), finished(201, "k2")
	require.NoError(t, s.Create(ctx, gone, reopened))
	prune(210, 300)
	require.Len(t, s.w.held[completed], 2)
	require.NoError(t, s.Delete(ctx, gone.ID))
	reopened.Status, reopened.FinishedAt = domain.StatusRunning, time.Time{}
	require.NoError(t, s.Update(ctx, reopened))
	prune(1000, 300)
	require.Empty(t, s.w.held[completed])
	got, err := s.Get(ctx, reopened.ID)
	require.NoError(t, err)
	require.Equal(t, reopened, got)
}

// Held jobs beyond what the writer remembers stop its floor instead, and
// every one is deleted once its hold has ended.
func TestDeleteFinishedRemembersBoundedHeldJobs(t *testing.T) {
	t.Parallel()
	s := openTest(t, Options{})
	ctx := t.Context()
	at := func(sec int) time.Time { return testEpoch.Add(time.Duration(sec) * time.Second) }
	var jobs []*domain.Job
	for i := range maxHeldRemembered + 2 {
		j := testJob(t, i)
		j.Status, j.FinishedAt = domain.StatusCompleted, at(i)
		j.UniqueKey, j.UniqueFor = fmt.Sprintf("slot-%d", i), 24*time.Hour
		jobs = append(jobs, j)
	}
	plain := testJob(t, len(jobs))
	plain.Status, plain.FinishedAt = domain.StatusCompleted, at(len(jobs))
	jobs = append(jobs, plain)
	for chunk := range slices.Chunk(jobs, 500) {
		require.NoError(t, s.Create(ctx, chunk...))
	}
	completed, _ := statusCode(domain.StatusCompleted)
	cutoff := at(len(jobs) + 1)

	n, err := s.DeleteFinished(ctx, at(len(jobs)+60), domain.StatusCompleted, cutoff, 1000)
	require.NoError(t, err)
	require.Equal(t, 1, n, "only the job without a key")
	require.Len(t, s.w.held[completed], maxHeldRemembered)
	over := jobs[maxHeldRemembered]
	require.Equal(t, finishedPos{set: true, at: micros(over.FinishedAt), id: over.ID}, s.w.floors[completed],
		"stopped at the first held job it could not remember")

	total := 0
	for {
		n, err := s.DeleteFinished(ctx, at(len(jobs)).Add(25*time.Hour), domain.StatusCompleted, cutoff, 1000)
		require.NoError(t, err)
		if n == 0 {
			break
		}
		total += n
	}
	require.Equal(t, maxHeldRemembered+2, total)
	require.Empty(t, s.w.held[completed])
	page, err := s.List(ctx, domain.Filter{})
	require.NoError(t, err)
	require.Zero(t, page.Total)
}
