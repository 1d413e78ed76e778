package badgerstore

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
)

func TestMinFreeBytesFor(t *testing.T) {
	t.Parallel()
	const mib = 1 << 20
	// 2T + (M+T) + 5(M+T) + 2·10 MiB with T = 15% of M.
	m := MemTableSizeDefault
	tx := 15 * m / 100
	require.Equal(t, 2*tx+6*(m+tx)+20*mib, MinFreeBytesFor(m))
	require.InDelta(t, 481*mib, MinFreeBytesFor(m), mib)
	require.InDelta(t, 27.2*mib, MinFreeBytesFor(MemTableSizeMin), 0.1*mib)
}

func TestBadgerSizingMatchesTheFloor(t *testing.T) {
	t.Parallel()
	for _, m := range []int64{MemTableSizeMin, 8 << 20, MemTableSizeDefault} {
		bo := Options{Dir: "x", MemTableSize: m}.WithDefaults().badgerOptions()
		require.Equal(t, m, bo.MemTableSize)
		require.Equal(t, m, bo.ValueLogFileSize, "the collector rewrites at most half a file, within the new-jobs headroom")
		require.Less(t, bo.ValueLogFileSize/2, newJobHeadroom(m))
		require.Equal(t, baseNumLevelZeroTables, bo.NumLevelZeroTables)
		require.Equal(t, int64(baseLevelSize), bo.BaseLevelSize)
	}
}

func TestMemTableSizeFor(t *testing.T) {
	t.Parallel()
	for _, minFree := range []int64{MinFreeBytesFor(MemTableSizeMin), 32 << 20, 100 << 20, MinFreeBytesFor(MemTableSizeDefault) - 1} {
		t.Run(fmt.Sprint(minFree), func(t *testing.T) {
			m := MemTableSizeFor(minFree)
			require.GreaterOrEqual(t, m, MemTableSizeMin)
			require.LessOrEqual(t, MinFreeBytesFor(m), minFree, "the floor of the chosen memtable fits")
			require.Greater(t, MinFreeBytesFor(m+2<<10), minFree, "and it is about the largest that does")
		})
	}
	require.Equal(t, MemTableSizeDefault, MemTableSizeFor(1<<40), "never above the default")
	require.Zero(t, MemTableSizeFor(MinFreeBytesFor(MemTableSizeMin)-1), "nothing fits")
}

func TestOptionsDeriveTheFloorAndTheMemTable(t *testing.T) {
	t.Parallel()
	o := Options{Dir: "x"}.WithDefaults()
	require.Equal(t, MinFreeBytesFor(MemTableSizeDefault), o.MinFreeBytes)
	require.NoError(t, o.Validate())

	o = Options{Dir: "x", MinFreeBytes: 40 << 20}.WithDefaults()
	require.Equal(t, MemTableSizeFor(40<<20), o.MemTableSize)
	require.NoError(t, o.Validate())

	err := Options{Dir: "x", MinFreeBytes: 1 << 20}.WithDefaults().Validate()
	require.ErrorIs(t, err, domain.ErrInvalid)
	err = Options{Dir: "x", MemTableSize: 8 << 20, MinFreeBytes: 30 << 20}.WithDefaults().Validate()
	require.ErrorIs(t, err, domain.ErrInvalid)
	require.ErrorContains(t, err, fmt.Sprintf("at least %d", MinFreeBytesFor(8<<20)))
}

// fakeSpace replaces a store's measurement of free space.
func fakeSpace(t *testing.T, s *Store) *atomic.Int64 {
	t.Helper()
	var free atomic.Int64
	free.Store(1 << 40)
	s.space.free = func(string) (int64, bool, error) { return free.Load(), true, nil }
	// Before the store's own cleanup closes it, so that Close has room.
	t.Cleanup(func() { free.Store(1 << 40) })
	return &free
}

func TestSpaceGuardRefusesNewJobsThenEveryWrite(t *testing.T) {
	t.Parallel()
	s := openTest(t, Options{Dir: t.TempDir(), MemTableSize: MemTableSizeMin})
	free := fakeSpace(t, s)
	ctx := t.Context()
	floor, newJobs := s.space.floor, s.space.newJobs
	require.Equal(t, MinFreeBytesFor(MemTableSizeMin), floor)
	require.Equal(t, floor+2*(MemTableSizeMin+txnLimit(MemTableSizeMin)), newJobs)

	stored := testJob(t, 1)
	require.NoError(t, s.Create(ctx, stored))
	require.NoError(t, s.Ping(ctx))

	// Between the two thresholds: no new job, but a stored one moves on.
	free.Store(newJobs - 1)
	err := s.Create(ctx, testJob(t, 2))
	require.ErrorIs(t, err, domain.ErrStorageFull)
	require.ErrorContains(t, err, fmt.Sprintf("disk full (%d bytes free): new jobs need at least %d", newJobs-1, newJobs))
	require.NoError(t, stored.Start(testEpoch))
	require.NoError(t, s.Update(ctx, stored))
	err = s.Ping(ctx)
	require.ErrorIs(t, err, domain.ErrStorageFull)
	require.ErrorContains(t, err, fmt.Sprintf("disk full (%d bytes free)", newJobs-1))

	// Below the floor: nothing.
	free.Store(floor - 1)
	require.NoError(t, stored.Complete(testEpoch))
	err = s.Update(ctx, stored)
	require.ErrorIs(t, err, domain.ErrStorageFull)
	require.ErrorContains(t, err, fmt.Sprintf("every write needs at least %d", floor))
	require.ErrorIs(t, s.Delete(ctx, stored.ID), domain.ErrStorageFull)
	got, err := s.Get(ctx, stored.ID)
	require.NoError(t, err, "reads go on")
	require.Equal(t, domain.StatusRunning, got.Status, "the refused outcome changed nothing")

	// Space comes back: everything goes through again, no restart.
	free.Store(newJobs)
	require.NoError(t, s.Ping(ctx))
	require.NoError(t, s.Update(ctx, stored))
	require.NoError(t, s.Create(ctx, testJob(t, 3)))
}

func TestSpaceGuardSortsOneBatch(t *testing.T) {
	t.Parallel()
	s := openTest(t, Options{Dir: t.TempDir(), MemTableSize: MemTableSizeMin})
	fakeSpace(t, s)
	ctx := t.Context()
	stored := testJob(t, 1)
	require.NoError(t, s.Create(ctx, stored))

	var calls atomic.Int32
	s.space.free = func(string) (int64, bool, error) {
		calls.Add(1)
		return s.space.newJobs - 1, true, nil
	}
	require.NoError(t, stored.Start(testEpoch))
	create, update := req(t, ctx, opCreate, testJob(t, 2)), req(t, ctx, opUpdate, stored)
	s.w.commit([]*request{create, update})
	require.ErrorIs(t, <-create.done, domain.ErrStorageFull)
	require.NoError(t, <-update.done)
	require.Equal(t, int32(1), calls.Load(), "measured once for the batch")
}

func TestSpaceGuardThatCannotMeasureRefuses(t *testing.T) {
	t.Parallel()
	s := openTest(t, Options{Dir: t.TempDir(), MemTableSize: MemTableSizeMin})
	fakeSpace(t, s)
	broken := errors.New("statfs broke")
	s.space.free = func(string) (int64, bool, error) { return 0, false, broken }
	err := s.Create(t.Context(), testJob(t, 1))
	require.ErrorIs(t, err, broken)
	require.ErrorIs(t, err, domain.ErrUnavailable)
	s.space.free = func(string) (int64, bool, error) { return 1 << 40, true, nil }
}

func TestSpaceGuardMeasuresBeforeEveryTransaction(t *testing.T) {
	t.Parallel()
	s := openTest(t, Options{Dir: t.TempDir(), MemTableSize: MemTableSizeMin})
	fakeSpace(t, s)
	var calls atomic.Int32
	// The disk fills while one large batch is written in several
	// transactions: the first goes in, the later ones are measured again
	// and refused.
	s.space.free = func(string) (int64, bool, error) {
		calls.Add(1)
		if s.w.snapshots.Load() == 0 {
			return 1 << 40, true, nil
		}
		return s.space.floor - 1, true, nil
	}
	ctx := t.Context()
	var batch []*request
	for range 40 {
		j, err := domain.NewJob("big", fmt.Appendf(nil, `{"pad":%q}`, strings.Repeat("x", 10_000)), 3, testEpoch)
		require.NoError(t, err)
		batch = append(batch, req(t, ctx, opCreate, j))
	}
	s.w.commit(batch)
	var stored, refused int
	for _, r := range batch {
		switch err := <-r.done; {
		case err == nil:
			stored++
		case errors.Is(err, domain.ErrStorageFull):
			refused++
		default:
			t.Fatalf("unexpected error: %v", err)
		}
	}
	require.Greater(t, int(calls.Load()), 2, "the batch outgrew one transaction, and each was measured")
	require.Positive(t, stored)
	require.Positive(t, refused)
	require.Equal(t, len(batch), stored+refused)
}

// Below the new-jobs threshold, Insert and new request records are
// refused like Create; promotions, pauses and the rest of the request log
// change what is stored and go on.
func TestSpaceGuardSortsTheNewWrites(t *testing.T) {
	t.Parallel()
	s := openTest(t, Options{Dir: t.TempDir(), MemTableSize: MemTableSizeMin})
	fakeSpace(t, s)
	ctx := t.Context()
	later := testJob(t, 1)
	later.ScheduleAt(testEpoch.Add(time.Minute), testEpoch)
	require.NoError(t, s.Create(ctx, later))
	rec := domain.RequestRecord{Scope: "ci", Key: "k", ExpiresAt: testEpoch.Add(time.Hour)}
	_, err := s.BeginRequest(ctx, testEpoch, rec)
	require.NoError(t, err)

	s.space.free = func(string) (int64, bool, error) { return s.space.newJobs - 1, true, nil }
	_, err = s.Insert(ctx, testEpoch, []*domain.Job{testJob(t, 2)})
	require.ErrorIs(t, err, domain.ErrStorageFull)
	_, err = s.BeginRequest(ctx, testEpoch, domain.RequestRecord{Scope: "ci", Key: "other", ExpiresAt: testEpoch.Add(time.Hour)})
	require.ErrorIs(t, err, domain.ErrStorageFull)

	promoted, err := s.PromoteDue(ctx, testEpoch.Add(time.Minute), 10)
	require.NoError(t, err)
	require.Len(t, promoted, 1)
	require.NoError(t, s.SetQueuePaused(ctx, "email", true))
	rec.Status = 201
	require.NoError(t, s.FinishRequest(ctx, rec))
	n, err := s.DeleteExpiredRequests(ctx, testEpoch.Add(2*time.Hour), 10)
	require.NoError(t, err)
	require.Equal(t, 1, n)

	s.space.free = func(string) (int64, bool, error) { return s.space.floor - 1, true, nil }
	require.ErrorIs(t, s.SetQueuePaused(ctx, "email", false), domain.ErrStorageFull)
	_, err = s.PromoteDue(ctx, testEpoch.Add(time.Hour), 10)
	require.ErrorIs(t, err, domain.ErrStorageFull)
	s.space.free = func(string) (int64, bool, error) { return 1 << 40, true, nil }
}
