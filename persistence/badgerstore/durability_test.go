package badgerstore

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
)

// waitAnswer waits for the answer of r, which the syncer may give after
// commit returned.
func waitAnswer(t testing.TB, r *request) error {
	t.Helper()
	select {
	case err := <-r.done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: not answered", r.label())
		return nil
	}
}

// TestDurabilityFullSyncsWhatClientsAreToldIsStored shows, write kind by
// write kind, which commits wait for fsync under the default durability:
// a power cut may lose only writes that make a job run again.
func TestDurabilityFullSyncsWhatClientsAreToldIsStored(t *testing.T) {
	t.Parallel()
	s := openTest(t, Options{Dir: t.TempDir()})
	require.NotNil(t, s.w.syncer, "full is the default")
	ctx := t.Context()
	synced := func(name string, want bool, write func() error) {
		t.Helper()
		before := s.w.syncer.syncs.Load()
		require.NoError(t, write(), name)
		if want {
			require.Equal(t, before+1, s.w.syncer.syncs.Load(), "%s waits for fsync", name)
			return
		}
		require.Equal(t, before, s.w.syncer.syncs.Load(), "%s is acknowledged once committed", name)
	}

	j, k := testJob(t, 0), testJob(t, 1)
	synced("create", true, func() error { return s.Create(ctx, j) })
	synced("insert", true, func() error { _, err := s.Insert(ctx, time.Now(), []*domain.Job{k}); return err })
	synced("the running mark", false, func() error {
		require.NoError(t, j.Start(testEpoch.Add(time.Second)))
		return s.Update(ctx, j)
	})
	synced("an attempt's outcome", false, func() error {
		require.NoError(t, j.Complete(testEpoch.Add(2*time.Second)))
		return s.Update(ctx, j)
	})
	synced("a cancel", true, func() error {
		require.NoError(t, k.Cancel(testEpoch.Add(time.Second)))
		return s.Update(ctx, k)
	})
	synced("a delete", true, func() error { return s.Delete(ctx, j.ID) })
	synced("a pause", true, func() error { return s.SetQueuePaused(ctx, "default", true) })
	synced("retention", false, func() error {
		_, err := s.DeleteFinished(ctx, time.Now(), domain.StatusCanceled, time.Now().Add(time.Hour), 10)
		return err
	})
}

// TestDurabilityFullSharesOneSyncPerCommit: every create of one commit is
// answered after one fsync.
func TestDurabilityFullSharesOneSyncPerCommit(t *testing.T) {
	t.Parallel()
	s := openTest(t, Options{Dir: t.TempDir()})
	ctx := t.Context()
	var batch []*request
	for i := range 20 {
		batch = append(batch, req(t, ctx, opCreate, testJob(t, i)))
	}
	before := s.w.syncer.syncs.Load()
	s.w.commit(batch)
	for _, r := range batch {
		require.NoError(t, waitAnswer(t, r))
	}
	require.Equal(t, before+1, s.w.syncer.syncs.Load())
}

// TestDurabilityFullCommitsOnDuringAnFsync: while an fsync runs, the writer
// commits and answers the writes that need none, and an Insert's trace
// hears of its commit before the fsync ends.
func TestDurabilityFullCommitsOnDuringAnFsync(t *testing.T) {
	t.Parallel()
	s := openTest(t, Options{Dir: t.TempDir()})
	ctx := t.Context()
	k := testJob(t, 1)
	require.NoError(t, s.Create(ctx, k))

	inSync, release := make(chan struct{}), make(chan struct{})
	sync := s.w.syncer.sync
	s.w.syncer.sync = func() error {
		close(inSync)
		<-release
		return sync()
	}
	j := testJob(t, 0)
	committed := make(chan []*domain.Job, 1)
	inserted := make(chan error, 1)
	go func() {
		trace := &domain.InsertTrace{Committed: func(existing []*domain.Job) { committed <- existing }}
		_, err := s.Insert(domain.WithInsertTrace(ctx, trace), time.Now(), []*domain.Job{j})
		inserted <- err
	}()
	<-inSync
	require.Equal(t, []*domain.Job{nil}, <-committed, "told of the commit before the fsync ends")
	got, err := s.Get(ctx, j.ID)
	require.NoError(t, err, "readable once committed")
	require.Equal(t, j.ID, got.ID)
	require.NoError(t, k.Start(testEpoch.Add(time.Second)))
	require.NoError(t, s.Update(ctx, k), "a start commits while the fsync runs")
	select {
	case err := <-inserted:
		t.Fatalf("Insert returned before its fsync: %v", err)
	default:
	}
	close(release)
	require.NoError(t, <-inserted)
}

// TestDurabilityFullReportsAFailedSync: a create whose fsync failed is not
// acknowledged, and health says why until a later fsync succeeds.
func TestDurabilityFullReportsAFailedSync(t *testing.T) {
	t.Parallel()
	s := openTest(t, Options{Dir: t.TempDir()})
	ctx := t.Context()
	k := testJob(t, 1)
	require.NoError(t, s.Create(ctx, k))
	bad := errors.New("input/output error")
	sync := s.w.syncer.sync
	s.w.syncer.sync = func() error { return bad }

	// One commit: j's create waits for the failing fsync, k's start does
	// not.
	j := testJob(t, 0)
	require.NoError(t, k.Start(testEpoch.Add(time.Second)))
	create, start := req(t, ctx, opCreate, j.Clone()), req(t, ctx, opUpdate, k.Clone())
	s.w.commit([]*request{create, start})
	require.NoError(t, answer(t, start), "a start does not wait for fsync")
	err := waitAnswer(t, create)
	require.ErrorIs(t, err, domain.ErrUnavailable)
	require.ErrorIs(t, err, bad)
	require.ErrorContains(t, err, j.ID.String())
	require.ErrorIs(t, s.Ping(ctx), bad)

	// Committed all the same, and the writer knows it: j can be written
	// on, not created again.
	got, err := s.Get(ctx, j.ID)
	require.NoError(t, err)
	require.Equal(t, j, got)
	require.ErrorIs(t, s.Create(ctx, j.Clone()), domain.ErrAlreadyExists)
	require.NoError(t, k.Complete(testEpoch.Add(2*time.Second)))
	require.NoError(t, s.Update(ctx, k))
	require.ErrorIs(t, s.Ping(ctx), bad, "only an fsync clears it")

	s.w.syncer.sync = sync
	require.NoError(t, s.Create(ctx, testJob(t, 2)))
	require.NoError(t, s.Ping(ctx))
}

// TestDurabilityNoneAndInMemoryNeverSync: none leaves fsync to Badger's
// own pace, and an in-memory store has nothing to sync; sync-all is
// Badger's SyncWrites.
func TestDurabilityNoneAndInMemoryNeverSync(t *testing.T) {
	t.Parallel()
	for name, opts := range map[string]Options{
		"none":      {Dir: t.TempDir(), Durability: DurabilityNone},
		"in memory": {},
	} {
		s := openTest(t, opts)
		require.Nil(t, s.w.syncer, name)
		called := false
		trace := &domain.InsertTrace{Committed: func([]*domain.Job) { called = true }}
		_, err := s.Insert(domain.WithInsertTrace(t.Context(), trace), time.Now(), []*domain.Job{testJob(t, 0)})
		require.NoError(t, err, name)
		require.False(t, called, "%s: durable when committed, nothing to tell early", name)
	}
	syncAll := openTest(t, Options{Dir: t.TempDir(), Durability: DurabilitySyncAll})
	require.Nil(t, syncAll.w.syncer)
	require.True(t, syncAll.db.Opts().SyncWrites)
}

// TestLogSyncerReachesRotatedLogs: a round fsyncs every memtable log and the
// value logs written since the last round, tolerates logs that vanish
// (flushed or collected), and reports a log it cannot open.
func TestLogSyncerReachesRotatedLogs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	openTest(t, Options{Dir: dir}) // Badger's own logs, beside the ones below
	l := &logSyncer{dir: dir}
	require.NoError(t, l.sync())
	first := l.vlogFloor

	// Value logs and memtable logs that Badger started since.
	for _, name := range []string{"099998.vlog", "099999.vlog", "99998.mem", "99999.mem"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), nil, 0o600))
		t.Cleanup(func() { _ = os.Remove(filepath.Join(dir, name)) })
	}
	require.NoError(t, l.sync())
	require.Equal(t, 99999, l.vlogFloor, "the next round starts from the newest value log")
	require.Greater(t, l.vlogFloor, first)

	// A vanished log is fine; one that cannot be opened is reported.
	require.NoError(t, os.Remove(filepath.Join(dir, "99998.mem")))
	loop := filepath.Join(dir, "099999.vlog")
	require.NoError(t, os.Remove(loop))
	require.NoError(t, os.Symlink(loop, loop))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "100000.vlog"), nil, 0o600))
	t.Cleanup(func() { _ = os.Remove(filepath.Join(dir, "100000.vlog")) })
	require.Error(t, l.sync(), "a log that cannot be read is an error")
	require.Equal(t, 99999, l.vlogFloor, "a failed round starts again from the same floor")

	for name, want := range map[string]int{"00007.mem": 7, "000012.vlog": 12, "x.mem": -1, "-3.mem": -1, "7.sst": -1} {
		ext := ".mem"
		if filepath.Ext(name) == ".vlog" {
			ext = ".vlog"
		}
		fid, ok := logFileID(name, ext)
		if want < 0 {
			require.False(t, ok, name)
			continue
		}
		require.True(t, ok, name)
		require.Equal(t, want, fid, name)
	}
}
