package badgerstore_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/persistence/badgerstore"
)

// backupOf takes a backup of s into memory.
func backupOf(t testing.TB, s *badgerstore.Store) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, s.Backup(t.Context(), &buf))
	return buf.Bytes()
}

// restore restores backup into dir.
func restore(t testing.TB, backup []byte, dir string) error {
	t.Helper()
	return badgerstore.Restore(t.Context(), bytes.NewReader(backup), badgerstore.Options{Dir: dir, Logger: quietLogger()})
}

// requireDirEntries checks the names in dir.
func requireDirEntries(t testing.TB, dir string, want ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	got := []string{}
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if want == nil {
		want = []string{}
	}
	require.Equal(t, want, got)
}

func TestBackupRestoresEveryJobAndIndex(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := mustOpen(t, badgerstore.Options{Dir: t.TempDir()})
	jobs, deleted, filters := storeMixedJobs(t, s)

	backup := backupOf(t, s)
	dir := filepath.Join(t.TempDir(), "restored")
	require.NoError(t, restore(t, backup, dir))

	restored := mustOpen(t, badgerstore.Options{Dir: dir})
	for _, j := range jobs {
		got, err := restored.Get(ctx, j.ID)
		require.NoError(t, err)
		require.Equal(t, j, got)
	}
	_, err := restored.Get(ctx, deleted.ID)
	require.ErrorIs(t, err, domain.ErrNotFound)
	for _, f := range filters {
		require.Equal(t, listAll(t, s, f), listAll(t, restored, f), "list %+v", f)
	}
	requireSameState(t, stateOf(t, s), restored)
	requireMixedFlow(t, restored)
	_, err = restored.Insert(ctx, epoch, []*domain.Job{})
	require.NoError(t, err)
	dup := newJobAt(t, "type_0", 2000)
	dup.UniqueKey = "key-11"
	existing, err := restored.Insert(ctx, epoch, []*domain.Job{dup})
	require.NoError(t, err)
	require.NotNil(t, existing[0], "unique keys are restored")
	// The restored store takes writes: its transaction clock went past
	// the versions it loaded.
	j := newJobAt(t, "type_0", 1000)
	require.NoError(t, restored.Create(ctx, j))
	require.NoError(t, j.Start(epoch.Add(2*time.Hour)))
	require.NoError(t, restored.Update(ctx, j))
	got, err := restored.Get(ctx, j.ID)
	require.NoError(t, err)
	require.Equal(t, j, got)
}

func TestBackupOfAnEmptyStoreRestores(t *testing.T) {
	t.Parallel()
	s := mustOpen(t, badgerstore.Options{Dir: t.TempDir()})
	dir := t.TempDir()
	require.NoError(t, restore(t, backupOf(t, s), dir))
	restored := mustOpen(t, badgerstore.Options{Dir: dir})
	require.Equal(t, 0, listAll(t, restored, domain.Filter{}).Total)
}

// Writers keep creating and updating jobs while the backup runs; every job
// acknowledged before it began is restored, and the restored indexes agree
// with the snapshots they point to.
func TestBackupWhileWritingHoldsEveryAcknowledgedJob(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := mustOpen(t, badgerstore.Options{Dir: t.TempDir()})

	var (
		mu    sync.Mutex
		acked = map[uuid.UUID]bool{}
		stop  = make(chan struct{})
		wg    sync.WaitGroup
	)
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				j := newJobAt(t, domain.JobType(fmt.Sprintf("type_%d", w)), i)
				if err := s.Create(ctx, j); err != nil {
					t.Errorf("create: %v", err)
					return
				}
				if i%2 == 0 {
					if err := j.Start(epoch.Add(time.Hour)); err != nil {
						t.Errorf("start: %v", err)
						return
					}
					if err := s.Update(ctx, j); err != nil {
						t.Errorf("update: %v", err)
						return
					}
				}
				mu.Lock()
				acked[j.ID] = true
				mu.Unlock()
			}
		})
	}
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) >= 500
	}, time.Minute, time.Millisecond)

	mu.Lock()
	before := make([]uuid.UUID, 0, len(acked))
	for id := range acked {
		before = append(before, id)
	}
	mu.Unlock()
	backup := backupOf(t, s)
	close(stop)
	wg.Wait()

	dir := t.TempDir()
	require.NoError(t, restore(t, backup, dir))
	restored := mustOpen(t, badgerstore.Options{Dir: dir})
	for _, id := range before {
		_, err := restored.Get(ctx, id)
		require.NoError(t, err, "job %s was acknowledged before the backup", id)
	}
	all := listAll(t, restored, domain.Filter{Limit: 1 << 20})
	require.GreaterOrEqual(t, all.Total, len(before))
	require.Len(t, all.Jobs, all.Total)
	byStatus := 0
	for _, st := range []domain.Status{domain.StatusPending, domain.StatusRunning} {
		page := listAll(t, restored, domain.Filter{Statuses: []domain.Status{st}, Limit: 1 << 20})
		for _, j := range page.Jobs {
			require.Equal(t, st, j.Status, "the index agrees with the snapshot of job %s", j.ID)
		}
		byStatus += page.Total
	}
	require.Equal(t, all.Total, byStatus)
}

func TestRestoreRefusesANonEmptyDir(t *testing.T) {
	t.Parallel()
	s := mustOpen(t, badgerstore.Options{Dir: t.TempDir()})
	require.NoError(t, s.Create(t.Context(), newJobAt(t, "noop", 1)))
	backup := backupOf(t, s)

	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "keep.txt"), []byte("mine"), 0o600))
	err := restore(t, backup, dir)
	require.ErrorIs(t, err, badgerstore.ErrDirNotEmpty)
	require.ErrorContains(t, err, "keep.txt")
	requireDirEntries(t, dir, "keep.txt")
	b, err := os.ReadFile(filepath.Join(dir, "keep.txt"))
	require.NoError(t, err)
	require.Equal(t, "mine", string(b))

	// Nor over a live store.
	live := t.TempDir()
	mustOpen(t, badgerstore.Options{Dir: live})
	require.ErrorIs(t, restore(t, backup, live), badgerstore.ErrDirNotEmpty)

	// lost+found, as on a fresh file system, does not count.
	fresh := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(fresh, "lost+found"), 0o700))
	require.NoError(t, restore(t, backup, fresh))
}

func TestRestoreRefusesAFileThatIsNotABackup(t *testing.T) {
	t.Parallel()
	// Badger's own stream without our header is refused as well.
	raw := backupOf(t, mustOpen(t, badgerstore.Options{Dir: t.TempDir()}))[10:]
	for name, content := range map[string][]byte{
		"empty":        nil,
		"short":        []byte("TROUP"),
		"text":         []byte("# a runbook, not a backup\n"),
		"badgerStream": raw,
		"newerFormat":  append([]byte("TROUPEBK\x00\x02"), raw...),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			parent := t.TempDir()
			dir := filepath.Join(parent, "data")
			err := restore(t, content, dir)
			require.ErrorIs(t, err, badgerstore.ErrNotBackup)
			require.ErrorContains(t, err, "not a Troupe backup")
			requireDirEntries(t, parent)
		})
	}
}

// A backup cut short (a copy interrupted, a disk that filled) or damaged is
// refused, also when the cut falls on a boundary of Badger's stream, and
// the directory is left as it was.
func TestRestoreRefusesADamagedBackup(t *testing.T) {
	t.Parallel()
	s := mustOpen(t, badgerstore.Options{Dir: t.TempDir()})
	var jobs []*domain.Job
	for i := range 2000 {
		jobs = append(jobs, newJobAt(t, "noop", i))
	}
	require.NoError(t, s.Create(t.Context(), jobs...))
	backup := backupOf(t, s)
	flipped := bytes.Clone(backup)
	flipped[len(flipped)/2] ^= 0xff
	// A damaged length must not make the restore allocate what it says.
	hugeRecord := bytes.Clone(backup)
	copy(hugeRecord[10:18], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f})

	for name, content := range map[string][]byte{
		"headerOnly":   backup[:10],
		"noFooter":     backup[:len(backup)-48],
		"halfFooter":   backup[:len(backup)-20],
		"half":         backup[:len(backup)/2],
		"flippedByte":  flipped,
		"hugeRecord":   hugeRecord,
		"trailingData": append(bytes.Clone(backup), "more"...),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			err := restore(t, content, dir)
			require.ErrorIs(t, err, badgerstore.ErrBackupDamaged)
			requireDirEntries(t, dir)
		})
	}
}

func TestBackupOfAClosedStoreFails(t *testing.T) {
	t.Parallel()
	s, err := badgerstore.Open(badgerstore.Options{Dir: t.TempDir(), Logger: quietLogger()})
	require.NoError(t, err)
	require.NoError(t, s.Close())
	require.ErrorIs(t, s.Backup(t.Context(), &bytes.Buffer{}), domain.ErrClosed)
}

func TestBackupStopsWhenTheContextEnds(t *testing.T) {
	t.Parallel()
	s := mustOpen(t, badgerstore.Options{Dir: t.TempDir()})
	require.NoError(t, s.Create(t.Context(), newJobAt(t, "noop", 1)))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	require.ErrorIs(t, s.Backup(ctx, &bytes.Buffer{}), context.Canceled)
}

// Schedules, Job.Schedule and the finished index are part of a backup:
// the restored store lists the same schedules and prunes the same jobs.
func TestBackupRestoresSchedulesAndTheFinishedIndex(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := mustOpen(t, badgerstore.Options{Dir: t.TempDir()})
	sc := &domain.Schedule{Name: "nightly", Cron: "0 3 * * *", Timezone: "Europe/Paris",
		Job:       domain.ScheduledJob{Type: "report", Payload: []byte(`{"day":"yesterday"}`), Queue: "reports", Timeout: time.Minute},
		CatchUp:   domain.CatchUpOne,
		Source:    domain.SourceConfig,
		CreatedAt: epoch, UpdatedAt: epoch}
	created, err := s.PutSchedule(ctx, sc)
	require.NoError(t, err)
	require.True(t, created)
	var done []*domain.Job
	for i := range 3 {
		j := newJobAt(t, "report", i)
		j.Schedule = sc.Name
		require.NoError(t, j.Start(epoch.Add(time.Minute)))
		require.NoError(t, j.Complete(epoch.Add(time.Duration(2+i)*time.Minute)))
		done = append(done, j)
	}
	require.NoError(t, s.Create(ctx, done...))
	require.NoError(t, s.RecordScheduleRun(ctx, sc.Name, domain.ScheduleRun{Slot: epoch, At: epoch, JobID: done[2].ID}))
	want, err := s.ListSchedules(ctx)
	require.NoError(t, err)

	dir := filepath.Join(t.TempDir(), "restored")
	require.NoError(t, restore(t, backupOf(t, s), dir))
	restored := mustOpen(t, badgerstore.Options{Dir: dir})
	got, err := restored.ListSchedules(ctx)
	require.NoError(t, err)
	require.Equal(t, want, got)
	page, err := restored.List(ctx, domain.Filter{Schedule: sc.Name})
	require.NoError(t, err)
	require.Equal(t, 3, page.Total)
	n, err := restored.DeleteFinished(ctx, epoch.Add(time.Hour), domain.StatusCompleted, epoch.Add(4*time.Minute), 10)
	require.NoError(t, err)
	require.Equal(t, 2, n, "the two finished before the cutoff")
	require.NoError(t, restored.Close())

	report, err := badgerstore.Verify(ctx, dir, quietLogger())
	require.NoError(t, err)
	require.Empty(t, report.Damage)
}
