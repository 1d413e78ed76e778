package badgerstore_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/persistence/badgerstore"
)

// hashDir returns the SHA-256 of every file in dir, by name.
func hashDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	sums := map[string]string{}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		f, err := os.Open(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		h := sha256.New()
		_, err = io.Copy(h, f)
		require.NoError(t, err)
		require.NoError(t, f.Close())
		sums[e.Name()] = hex.EncodeToString(h.Sum(nil))
	}
	return sums
}

// storedJobs writes n jobs with payloads of a few hundred bytes into a new
// store in dir, and closes it, which writes them to tables.
func storedJobs(t *testing.T, dir string, n int) []*domain.Job {
	t.Helper()
	s, err := badgerstore.Open(badgerstore.Options{Dir: dir, Logger: quietLogger(), MemTableSize: badgerstore.MemTableSizeMin})
	require.NoError(t, err)
	jobs := make([]*domain.Job, n)
	pad := strings.Repeat("x", 300)
	for i := range jobs {
		j, err := domain.NewJob("send", []byte(`{"pad":"`+pad+`"}`), 3, epoch)
		require.NoError(t, err)
		jobs[i] = j
	}
	for chunk := range sliceChunks(jobs, 100) {
		require.NoError(t, s.Create(t.Context(), chunk...))
	}
	require.NoError(t, s.Close())
	return jobs
}

func sliceChunks[T any](s []T, n int) func(func([]T) bool) {
	return func(yield func([]T) bool) {
		for len(s) > 0 {
			k := min(n, len(s))
			if !yield(s[:k]) {
				return
			}
			s = s[k:]
		}
	}
}

// filesWith returns the files of dir whose names end with suffix.
func filesWith(t *testing.T, dir, suffix string) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*"+suffix))
	require.NoError(t, err)
	return paths
}

// largest returns the largest of paths.
func largest(t *testing.T, paths []string) string {
	t.Helper()
	require.NotEmpty(t, paths)
	best, size := "", int64(-1)
	for _, p := range paths {
		fi, err := os.Stat(p)
		require.NoError(t, err)
		if fi.Size() > size {
			best, size = p, fi.Size()
		}
	}
	return best
}

// damageMiddle overwrites 4 KB in the middle of the file at path with
// random bytes.
func damageMiddle(t *testing.T, path string) {
	t.Helper()
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Greater(t, fi.Size(), int64(16<<10), "the table must span many blocks")
	junk := make([]byte, 4096)
	_, _ = rand.Read(junk)
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteAt(junk, fi.Size()/2)
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

func TestOpenRefusesADirWithoutManifest(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	storedJobs(t, dir, 2000)
	require.NotEmpty(t, filesWith(t, dir, ".sst"))
	require.NoError(t, os.Remove(filepath.Join(dir, "MANIFEST")))
	before := hashDir(t, dir)

	_, err := badgerstore.Open(badgerstore.Options{Dir: dir, Logger: quietLogger()})
	require.ErrorIs(t, err, domain.ErrCorrupt)
	require.ErrorContains(t, err, "MANIFEST file is missing")
	require.ErrorContains(t, err, "troupe restore")
	require.Equal(t, before, hashDir(t, dir), "nothing in the directory changes")
}

func TestOpenRefusesAManifestListingMissingTables(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	storedJobs(t, dir, 2000)
	require.NoError(t, os.Remove(largest(t, filesWith(t, dir, ".sst"))))
	before := hashDir(t, dir)

	_, err := badgerstore.Open(badgerstore.Options{Dir: dir, Logger: quietLogger()})
	require.ErrorIs(t, err, domain.ErrCorrupt)
	require.ErrorContains(t, err, "not on disk")
	require.Equal(t, before, hashDir(t, dir), "nothing in the directory changes")
}

func TestOpenRefusesAnEmptyManifest(t *testing.T) {
	t.Parallel()
	dir, empty := t.TempDir(), t.TempDir()
	storedJobs(t, dir, 4000)
	require.Greater(t, len(filesWith(t, dir, ".sst")), 1)
	// The MANIFEST of a store that never wrote a table.
	db, err := badger.Open(badger.DefaultOptions(empty).WithLogger(nil))
	require.NoError(t, err)
	require.NoError(t, db.Close())
	fresh, err := os.ReadFile(filepath.Join(empty, "MANIFEST"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "MANIFEST"), fresh, 0o600))
	before := hashDir(t, dir)

	_, err = badgerstore.Open(badgerstore.Options{Dir: dir, Logger: quietLogger()})
	require.ErrorIs(t, err, domain.ErrCorrupt)
	require.ErrorContains(t, err, "the MANIFEST records no table")
	require.Equal(t, before, hashDir(t, dir), "nothing in the directory changes")
}

func TestOpenRefusesADamagedTable(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	storedJobs(t, dir, 3000)
	sst := largest(t, filesWith(t, dir, ".sst"))
	damageMiddle(t, sst)
	before := hashDir(t, dir)

	_, err := badgerstore.Open(badgerstore.Options{Dir: dir, Logger: quietLogger()})
	require.ErrorIs(t, err, domain.ErrCorrupt)
	require.ErrorContains(t, err, filepath.Base(sst)+" is damaged")
	require.Equal(t, before, hashDir(t, dir), "nothing in the directory changes")

	report, err := badgerstore.Verify(t.Context(), dir, quietLogger())
	require.NoError(t, err)
	require.NotEmpty(t, report.Damage)
	require.Equal(t, before, hashDir(t, dir), "verify changes nothing")
}

func TestDamageFoundWhileRunningIsNeverANotFound(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	jobs := storedJobs(t, dir, 3000)
	s := mustOpen(t, badgerstore.Options{Dir: dir})
	require.NoError(t, s.Ping(t.Context()))
	// Damage a table under the running store: its blocks are not cached
	// yet, so reads load them from the damaged file.
	for _, sst := range filesWith(t, dir, ".sst") {
		damageMiddle(t, sst)
	}

	corrupt := 0
	for _, j := range jobs {
		got, err := s.Get(t.Context(), j.ID)
		switch {
		case err == nil:
			require.Equal(t, j.ID, got.ID)
		case errors.Is(err, domain.ErrCorrupt):
			require.NotErrorIs(t, err, domain.ErrNotFound)
			require.ErrorContains(t, err, j.ID.String(), "the error names the job")
			corrupt++
			// A write of the job cannot find it either: not a "not found".
			err = s.Update(t.Context(), j)
			require.ErrorIs(t, err, domain.ErrCorrupt)
			require.NotErrorIs(t, err, domain.ErrNotFound)
		default:
			t.Fatalf("get %s: %v", j.ID, err)
		}
	}
	require.Positive(t, corrupt, "some jobs sit in the damaged blocks")
	err := s.Ping(t.Context())
	require.ErrorIs(t, err, domain.ErrCorrupt)
	require.ErrorContains(t, err, "store: corrupt")
}

// crashCopy writes n jobs into a store with a large memtable, syncs, and
// copies its directory while it is still open, as a kill -9 would leave
// it: the jobs are in the memtable log only.
func crashCopy(t *testing.T, n int) (string, []*domain.Job) {
	t.Helper()
	live, crashed := t.TempDir(), t.TempDir()
	s, err := badgerstore.Open(badgerstore.Options{Dir: live, Logger: quietLogger(), MemTableSize: 8 << 20})
	require.NoError(t, err)
	jobs := make([]*domain.Job, n)
	for i := range jobs {
		jobs[i] = newJobAt(t, "send", i)
		require.NoError(t, s.Create(t.Context(), jobs[i]))
	}
	require.NoError(t, s.Flush(t.Context()))
	entries, err := os.ReadDir(live)
	require.NoError(t, err)
	for _, e := range entries {
		if e.Name() == "LOCK" {
			continue
		}
		require.NoError(t, badgerstore.CopySparse(filepath.Join(live, e.Name()), filepath.Join(crashed, e.Name())))
		if strings.HasSuffix(e.Name(), ".vlog") {
			// The open value log is preallocated to 2 GB, and holds only
			// its 20-byte header here (every snapshot is small enough for
			// the tree): keep what Badger itself leaves after a close.
			require.NoError(t, os.Truncate(filepath.Join(crashed, e.Name()), 20))
		}
	}
	require.NoError(t, s.Close())
	require.Empty(t, filesWith(t, crashed, ".sst"), "every job is in the memtable log only")
	return crashed, jobs
}

// memLog returns the memtable log of dir holding data, and its written
// length (up to its last non-zero byte).
func memLog(t *testing.T, dir string) (string, int64) {
	t.Helper()
	for _, p := range filesWith(t, dir, ".mem") {
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		n := len(bytes.TrimRight(b, "\x00"))
		if n > 20 {
			return p, int64(n)
		}
	}
	t.Fatal("no memtable log holds data")
	return "", 0
}

func TestOpenRefusesATruncatedMemtableLog(t *testing.T) {
	t.Parallel()
	dir, jobs := crashCopy(t, 400)
	path, written := memLog(t, dir)
	require.NoError(t, os.Truncate(path, written/2))
	before := hashDir(t, dir)

	_, openErr := badgerstore.Open(badgerstore.Options{Dir: dir, Logger: quietLogger()})
	require.ErrorIs(t, openErr, domain.ErrCorrupt)
	require.ErrorContains(t, openErr, "cut short")
	require.ErrorContains(t, openErr, "truncate -s")
	require.Equal(t, before, hashDir(t, dir), "nothing in the directory changes")

	report, err := badgerstore.Verify(t.Context(), dir, quietLogger())
	require.NoError(t, err)
	require.NotEmpty(t, report.Damage)

	// The way out the message gives: cut the log at its valid end.
	msg := openErr.Error()
	var validEnd int64
	_, scanErr := fmtSscan(msg[strings.Index(msg, "truncate -s ")+len("truncate -s "):], &validEnd)
	require.NoError(t, scanErr)
	require.NoError(t, os.Truncate(path, validEnd))
	s := mustOpen(t, badgerstore.Options{Dir: dir})
	page := listAll(t, s, domain.Filter{})
	require.Less(t, page.Total, len(jobs))
	require.Positive(t, page.Total)
}

func TestOpenRefusesAMemtableLogDamagedInItsMiddle(t *testing.T) {
	t.Parallel()
	dir, _ := crashCopy(t, 400)
	path, written := memLog(t, dir)
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteAt([]byte("damage"), written/2)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	before := hashDir(t, dir)

	_, err = badgerstore.Open(badgerstore.Options{Dir: dir, Logger: quietLogger()})
	require.ErrorIs(t, err, domain.ErrCorrupt)
	require.ErrorContains(t, err, "written bytes follow it")
	require.Equal(t, before, hashDir(t, dir), "nothing in the directory changes")
}

// recordingHandler keeps every record at error level.
type recordingHandler struct {
	mu      sync.Mutex
	records []slog.Record
}

func (h *recordingHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelError }
func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, r)
	return nil
}
func (h *recordingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordingHandler) WithGroup(string) slog.Handler      { return h }

func TestOpenReportsATornMemtableLogTail(t *testing.T) {
	t.Parallel()
	dir, jobs := crashCopy(t, 400)
	path, written := memLog(t, dir)
	// A crash in the middle of the last write: its last bytes never
	// reached the file.
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteAt(make([]byte, 6), written-6)
	require.NoError(t, err)
	require.NoError(t, f.Close())

	rec := &recordingHandler{}
	s := mustOpen(t, badgerstore.Options{Dir: dir, Logger: slog.New(rec)})
	page := listAll(t, s, domain.Filter{})
	require.Equal(t, len(jobs)-1, page.Total, "only the torn write is dropped")

	rec.mu.Lock()
	defer rec.mu.Unlock()
	var found bool
	for _, r := range rec.records {
		if strings.Contains(r.Message, "torn by a crash") {
			found = true
			r.Attrs(func(a slog.Attr) bool {
				if a.Key == "droppedBytes" {
					require.Positive(t, a.Value.Int64())
				}
				return true
			})
		}
	}
	require.True(t, found, "the dropped tail is logged at error level")
}

func TestVerifyAGoodDirectory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	storedJobs(t, dir, 2000)
	before := hashDir(t, dir)
	report, err := badgerstore.Verify(t.Context(), dir, quietLogger())
	require.NoError(t, err)
	require.Empty(t, report.Damage)
	require.Equal(t, 2000, report.Jobs)
	require.Equal(t, before, hashDir(t, dir))

	crashed, jobs := crashCopy(t, 100)
	before = hashDir(t, crashed)
	report, err = badgerstore.Verify(t.Context(), crashed, quietLogger())
	require.NoError(t, err)
	require.Empty(t, report.Damage)
	require.Equal(t, len(jobs), report.Jobs, "the memtable log is read too")
	require.Equal(t, before, hashDir(t, crashed))
}

func TestVerifyRefusesADirInUse(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	mustOpen(t, badgerstore.Options{Dir: dir})
	_, err := badgerstore.Verify(t.Context(), dir, quietLogger())
	require.ErrorIs(t, err, badgerstore.ErrDirInUse)
}

func fmtSscan(s string, v *int64) (int, error) { return fmt.Sscan(s, v) }
