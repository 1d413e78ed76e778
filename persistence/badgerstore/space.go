package badgerstore

import (
	"fmt"
	"sync/atomic"

	"github.com/troupe-go/troupe/domain"
)

// Why a guard on free space: Badger writes its memtable log (*.mem), its
// value log (*.vlog) and every table it flushes or compacts (*.sst)
// through memory mappings of files it first sizes with ftruncate. Those
// files are sparse, so sizing them succeeds on a full disk; the page that
// the disk cannot supply is found only when Badger copies into it, and
// the kernel answers with SIGBUS, which kills the process. There is no
// error to catch. The store therefore refuses writes while enough space is
// still free for everything Badger may still write on its own.
//
// What Badger may write after the store admits one more transaction (the
// writer measures the free space before each one it commits), with M the
// memtable size and T = 15% of M Badger's largest transaction:
//
//   - the transaction itself, in the memtable log and, for values above
//     the value threshold, in the value log: 2T;
//   - the memtable it may fill, flushed to a level-0 table before its log
//     is deleted: M + T (a memtable is full once it holds M; the
//     transaction that crosses M is written whole);
//   - the level-0 compaction that flush may start: Badger merges level 0
//     into the base level once level 0 holds baseNumLevelZeroTables
//     tables, writing the merged tables before it deletes the old ones:
//     baseNumLevelZeroTables·(M + T) plus the base level it overlaps, at
//     most twice baseLevelSize.
//
// That sum is the floor (Options.MinFreeBytes): below it every write is
// refused. New jobs are refused earlier, below the floor plus
// newJobHeadroom, so that the jobs already stored can still record their
// outcomes: a full disk stops intake, not the work in progress.
//
// The value-log collector writes outside the writer: it copies the live
// entries of a value-log file at least half garbage, at most half a file,
// before it deletes the file. Value-log files are one memtable in size
// (valueLogFileSize) instead of Badger's 1 GiB, and the collector runs
// only above the new-jobs threshold, whose headroom covers that half. Deleting
// data frees space only after compaction, so nothing else is exempt.
//
// The floor counts only what Troupe's own writes set off. Another program
// filling the same disk can still take the last page; keep the data
// directory on a file system of its own.
const (
	// baseNumLevelZeroTables and baseLevelSize are Badger's defaults, which
	// Options.badgerOptions sets explicitly so that they cannot drift from
	// the arithmetic above.
	baseNumLevelZeroTables = 5
	baseLevelSize          = 10 << 20
)

// valueLogFileSize is the size of Badger's value-log files for a memtable
// of m bytes: m, within the bounds Badger accepts.
func valueLogFileSize(m int64) int64 { return min(max(m, 1<<20), 1<<30-1) }

// txnLimit is Badger's largest transaction for a memtable of m bytes.
func txnLimit(m int64) int64 { return 15 * m / 100 }

// MinFreeBytesFor returns the default Options.MinFreeBytes for a memtable
// of memTableSize bytes: the space Badger may still need on its own (see
// the comment at the top of space.go). About 481 MiB for the default
// 64 MiB memtable, 27 MiB for the smallest.
func MinFreeBytesFor(memTableSize int64) int64 {
	t := txnLimit(memTableSize)
	return 2*t + (memTableSize + t) + baseNumLevelZeroTables*(memTableSize+t) + 2*baseLevelSize
}

// MemTableSizeFor returns the largest memtable, at most
// MemTableSizeDefault, whose floor fits within minFree: the memtable size
// Open picks when only MinFreeBytes is set. It returns 0 when even
// MemTableSizeMin needs more than minFree.
func MemTableSizeFor(minFree int64) int64 {
	if MinFreeBytesFor(MemTableSizeMin) > minFree {
		return 0
	}
	// The floor grows with the memtable: search for the largest that fits.
	lo, hi := MemTableSizeMin, MemTableSizeDefault
	for lo < hi {
		mid := lo + (hi-lo+1)/2
		if MinFreeBytesFor(mid) <= minFree {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo
}

// newJobHeadroom is how much free space beyond the floor new jobs leave
// for the outcomes of the jobs already stored: twice a flush (M + T).
// While Badger flushes a memtable, the new table and the old log are both
// on disk, so free space dips by up to a flush and comes back when the log
// is deleted; the headroom keeps that dip, at the moment new jobs stop,
// above the floor, so that outcomes still go in.
func newJobHeadroom(memTableSize int64) int64 {
	return 2 * (memTableSize + txnLimit(memTableSize))
}

// spaceGuard decides, from the free space of the data directory's file
// system, which writes the store admits.
type spaceGuard struct {
	dir string
	// free measures the bytes free for an unprivileged writer; a test
	// replaces it. ok is false where it cannot be measured, and the guard
	// then admits everything.
	free func(dir string) (free int64, ok bool, err error)
	// floor refuses every write; newJobs refuses new jobs.
	floor, newJobs int64
	// lastFree is the latest measurement, for Ping's message; -1 before
	// the first.
	lastFree atomic.Int64
}

func newSpaceGuard(dir string, floor, memTableSize int64) *spaceGuard {
	g := &spaceGuard{dir: dir, free: freeBytes, floor: floor, newJobs: floor + newJobHeadroom(memTableSize)}
	g.lastFree.Store(-1)
	return g
}

// spaceLevel is what the free space allows.
type spaceLevel uint8

const (
	spaceAmple   spaceLevel = iota // every write
	spaceLow                       // updates and deletes, no new jobs
	spaceNoWrite                   // nothing
)

// measure returns the free bytes and what they allow. An error measuring
// is reported, and allows nothing: guessing wrong costs the process.
func (g *spaceGuard) measure() (int64, spaceLevel, error) {
	free, ok, err := g.free(g.dir)
	if err != nil {
		return 0, spaceNoWrite, fmt.Errorf("measure free space in %s: %w", g.dir, err)
	}
	if !ok {
		return -1, spaceAmple, nil
	}
	g.lastFree.Store(free)
	switch {
	case free < g.floor:
		return free, spaceNoWrite, nil
	case free < g.newJobs:
		return free, spaceLow, nil
	}
	return free, spaceAmple, nil
}

// refusal is the error of a write at level l with free bytes free, or
// nil if l admits it. A write that adds data (new jobs, new request
// records) is refused below the new-jobs threshold; any other (a stored
// job's change, a promotion, a pause) only below the floor.
func (g *spaceGuard) refusal(addsData bool, free int64, l spaceLevel) error {
	switch {
	case l == spaceNoWrite:
		return g.fullError(free, "every write needs", g.floor)
	case l == spaceLow && addsData:
		return g.fullError(free, "new jobs need", g.newJobs)
	}
	return nil
}

// fullError is the error of a refused write. It starts with "disk full
// (N bytes free)", which /health shows as the store's state. It leaves the
// directory out, and is marked public: clients read it in 507 answers and
// on /health.
func (g *spaceGuard) fullError(free int64, what string, need int64) error {
	return domain.Public(fmt.Errorf("disk full (%d bytes free): %s at least %d free: %w", free, what, need, domain.ErrStorageFull))
}

// health returns an error while the store refuses new jobs.
func (g *spaceGuard) health() error {
	free, l, err := g.measure()
	if err != nil {
		return err
	}
	if l == spaceAmple {
		return nil
	}
	return g.fullError(free, "new jobs need", g.newJobs)
}
