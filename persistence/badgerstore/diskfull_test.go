package badgerstore_test

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/internal/smallfs"
	"github.com/troupe-go/troupe/persistence/badgerstore"
)

// bigJob returns a pending job with a payload of about 10 KB that does
// not compress.
func bigJob(t testing.TB, n int) *domain.Job {
	t.Helper()
	// Random, so that compression does not shrink what reaches the disk.
	pad := make([]byte, 5_000)
	_, _ = rand.Read(pad)
	payload := fmt.Appendf(nil, `{"n":%d,"pad":"%x"}`, n, pad)
	j, err := domain.NewJob("fill", payload, 3, epoch)
	require.NoError(t, err)
	return j
}

// The tests below fill a real, small file system. Badger writes its logs
// and tables through memory mappings of sparse files, so a write that
// finds the disk full kills the process with SIGBUS unless the store
// refuses it first: before the guard, the first of them died that way
// (in a compaction copying a table into its mapping).

func TestFullDiskRefusesWritesInsteadOfCrashing(t *testing.T) {
	fs := smallfs.Mount(t, 64<<20)
	dir := filepath.Join(fs, "data")
	// Some of the disk taken by something else, given back later.
	filler := smallfs.Fill(t, fs, 40<<20)
	s := mustOpen(t, badgerstore.Options{Dir: dir, MemTableSize: badgerstore.MemTableSizeMin})
	ctx := t.Context()

	// Until the store refuses new jobs and reports it. A flush that ends
	// meanwhile deletes a memtable log and gives some space back, so one
	// refusal can be followed by a few more acceptances.
	var stored []*domain.Job
	var err, pingErr error
	for i := 0; pingErr == nil; i++ {
		require.Less(t, i, 10_000, "the store never refused a job")
		j := bigJob(t, i)
		if err = s.Create(ctx, j); err == nil {
			stored = append(stored, j)
			continue
		}
		require.ErrorIs(t, err, domain.ErrStorageFull)
		pingErr = s.Ping(ctx)
	}
	require.NotEmpty(t, stored)
	t.Logf("stored %d jobs of 10 KB, then: %v", len(stored), err)
	require.ErrorIs(t, pingErr, domain.ErrStorageFull)
	require.Regexp(t, `^disk full \(\d+ bytes free\)`, pingErr.Error())

	// The stored jobs still record their outcomes, until the floor. A
	// flush in progress can dip below it for a moment; a refused outcome
	// is tried again, as the job actor does, until the refusal lasts.
	updated := 0
	for _, j := range stored {
		require.NoError(t, j.Start(epoch))
		if err = updatePatiently(t, s, j); err != nil {
			break
		}
		updated++
	}
	require.Positive(t, updated, "outcomes of stored jobs fit above the floor")
	if updated < len(stored) {
		require.ErrorIs(t, err, domain.ErrStorageFull)
		require.ErrorContains(t, err, "every write needs at least")
		t.Logf("updated %d of them, then: %v", updated, err)
	}
	for _, j := range stored[:updated] {
		got, err := s.Get(ctx, j.ID)
		require.NoError(t, err)
		require.Equal(t, domain.StatusRunning, got.Status)
	}

	// Space comes back: writes go through again without a restart.
	require.NoError(t, os.Remove(filler))
	require.NoError(t, s.Ping(ctx))
	for i := range 100 {
		require.NoError(t, s.Create(ctx, bigJob(t, 20_000+i)))
	}
	require.NoError(t, s.Close())

	reopened := mustOpen(t, badgerstore.Options{Dir: dir, MemTableSize: badgerstore.MemTableSizeMin})
	for i, j := range stored {
		got, err := reopened.Get(ctx, j.ID)
		require.NoError(t, err)
		if i < updated {
			require.Equal(t, domain.StatusRunning, got.Status)
		}
	}
}

func TestOpenOnAFullDiskFailsWithoutTouchingTheData(t *testing.T) {
	fs := smallfs.Mount(t, 48<<20)
	dir := filepath.Join(fs, "data")
	opts := badgerstore.Options{Dir: dir, MemTableSize: badgerstore.MemTableSizeMin, Logger: quietLogger()}
	s, err := badgerstore.Open(opts)
	require.NoError(t, err)
	jobs := []*domain.Job{bigJob(t, 1), bigJob(t, 2)}
	require.NoError(t, s.Create(t.Context(), jobs...))
	require.NoError(t, s.Close())

	before := listDir(t, dir)
	// A page left: enough for Badger's lock file, not for its logs.
	filler := smallfs.Fill(t, fs, 4<<10)
	_, err = badgerstore.Open(opts)
	require.ErrorIs(t, err, domain.ErrStorageFull)
	require.Regexp(t, `disk full \(\d+ bytes free\): the store needs at least \d+ free`, err.Error())
	require.Equal(t, before, listDir(t, dir), "nothing in the directory changed")

	require.NoError(t, os.Remove(filler))
	reopened := mustOpen(t, opts)
	for _, j := range jobs {
		_, err := reopened.Get(t.Context(), j.ID)
		require.NoError(t, err)
	}
}

// updatePatiently updates j, trying again for a while as long as the
// store refuses it for lack of space.
func updatePatiently(t *testing.T, s *badgerstore.Store, j *domain.Job) error {
	t.Helper()
	var err error
	for range 50 {
		if err = s.Update(t.Context(), j); !errors.Is(err, domain.ErrStorageFull) {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
	return err
}

// listDir returns the names and sizes of the files in dir.
func listDir(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	files := make(map[string]int64, len(entries))
	for _, e := range entries {
		info, err := e.Info()
		require.NoError(t, err)
		files[e.Name()] = info.Size()
	}
	return files
}
