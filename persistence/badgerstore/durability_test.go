package badgerstore

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
)

// TestDurabilityFullSyncsWhatClientsAreToldIsStored shows, write kind by
// write kind, which commits wait for fsync under the default durability:
// a power cut may lose only writes that make a job run again.
func TestDurabilityFullSyncsWhatClientsAreToldIsStored(t *testing.T) {
	t.Parallel()
	s := openTest(t, Options{Dir: t.TempDir()})
	require.NotNil(t, s.w.syncAcknowledged, "full is the default")
	ctx := t.Context()
	synced := func(name string, want bool, write func() error) {
		t.Helper()
		before := s.w.syncs.Load()
		require.NoError(t, write(), name)
		if want {
			require.Equal(t, before+1, s.w.syncs.Load(), "%s waits for fsync", name)
			return
		}
		require.Equal(t, before, s.w.syncs.Load(), "%s is acknowledged once committed", name)
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

// TestDurabilityFullSharesOneSyncPerCommit: every create queued while a
// commit runs is answered after one fsync of the next commit.
func TestDurabilityFullSharesOneSyncPerCommit(t *testing.T) {
	t.Parallel()
	s := openTest(t, Options{Dir: t.TempDir()})
	ctx := t.Context()
	var batch []*request
	for i := range 20 {
		batch = append(batch, req(t, ctx, opCreate, testJob(t, i)))
	}
	before := s.w.syncs.Load()
	s.w.commit(batch)
	for _, r := range batch {
		require.NoError(t, answer(t, r))
	}
	require.Equal(t, before+1, s.w.syncs.Load())
}

// TestDurabilityFullReportsAFailedSync: a create whose fsync failed is not
// acknowledged, and health says why until a later commit succeeds.
func TestDurabilityFullReportsAFailedSync(t *testing.T) {
	t.Parallel()
	s := openTest(t, Options{Dir: t.TempDir()})
	ctx := t.Context()
	k := testJob(t, 1)
	require.NoError(t, s.Create(ctx, k))
	bad := errors.New("input/output error")
	s.w.syncAcknowledged = func() error { return bad }

	// One commit: j's create waits for the failing fsync, k's start does
	// not.
	j := testJob(t, 0)
	require.NoError(t, k.Start(testEpoch.Add(time.Second)))
	create, start := req(t, ctx, opCreate, j.Clone()), req(t, ctx, opUpdate, k.Clone())
	s.w.commit([]*request{create, start})
	err := answer(t, create)
	require.ErrorIs(t, err, domain.ErrUnavailable)
	require.ErrorIs(t, err, bad)
	require.ErrorContains(t, err, j.ID.String())
	require.NoError(t, answer(t, start), "a start does not wait for fsync")
	require.ErrorIs(t, s.Ping(ctx), bad)

	// Committed all the same, and the writer knows it: j can be written
	// on, not created again.
	got, err := s.Get(ctx, j.ID)
	require.NoError(t, err)
	require.Equal(t, j, got)
	require.ErrorIs(t, s.Create(ctx, j.Clone()), domain.ErrAlreadyExists)
	require.NoError(t, k.Complete(testEpoch.Add(2*time.Second)))
	require.NoError(t, s.Update(ctx, k))

	s.w.syncAcknowledged = s.db.Sync
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
		require.Nil(t, s.w.syncAcknowledged, name)
		require.NoError(t, s.Create(t.Context(), testJob(t, 0)), name)
		require.Zero(t, s.w.syncs.Load(), name)
	}
	syncAll := openTest(t, Options{Dir: t.TempDir(), Durability: DurabilitySyncAll})
	require.Nil(t, syncAll.w.syncAcknowledged)
	require.True(t, syncAll.db.Opts().SyncWrites)
}
