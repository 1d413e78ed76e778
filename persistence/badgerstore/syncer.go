package badgerstore

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/dgraph-io/badger/v4"

	"github.com/troupe-go/troupe/domain"
)

// syncer makes committed writes durable for DurabilityFull, beside the
// writer: the writer commits a batch, hands the requests that must be on
// stable storage to the syncer and commits the next batch meanwhile. The
// requests queued during one fsync share the next, so an fsync costs the
// writer nothing and a burst of submissions one fsync per round.
type syncer struct {
	// sync makes durable every write committed before it was called.
	sync func() error
	in   chan []*request
	done chan struct{}

	// syncs counts the fsync rounds, for tests and benchmarks.
	syncs atomic.Int64
	// failure holds the latest round's error if it failed, for Ping.
	failure atomic.Pointer[error]
	log     failureLogger
}

// failureLogger is the part of slog.Logger the syncer uses.
type failureLogger interface {
	Error(msg string, args ...any)
}

// syncerQueue bounds the committed batches waiting for an fsync: beyond
// it the writer waits, which pushes back on writers while the disk is slow.
const syncerQueue = 64

func newSyncer(sync func() error, log failureLogger) *syncer {
	return &syncer{sync: sync, in: make(chan []*request, syncerQueue), done: make(chan struct{}), log: log}
}

// run answers the handed requests after an fsync, round after round, until
// in is closed and drained.
func (s *syncer) run() {
	defer close(s.done)
	var waiting []*request
	for reqs := range s.in {
		waiting = append(waiting[:0], reqs...)
	gather:
		for {
			select {
			case more, ok := <-s.in:
				if !ok {
					break gather
				}
				waiting = append(waiting, more...)
			default:
				break gather
			}
		}
		s.round(waiting)
		clear(waiting)
	}
}

// round fsyncs once and answers reqs.
func (s *syncer) round(reqs []*request) {
	s.syncs.Add(1)
	var err error
	if serr := s.sync(); serr != nil {
		// Committed, maybe not on disk: the callers learn it was not
		// acknowledged; a retry finds the job (ErrAlreadyExists) or
		// writes it again.
		err = fmt.Errorf("%w: sync to stable storage: %w", domain.ErrUnavailable, serr)
		failed := err
		s.failure.Store(&failed)
		s.log.Error("badger store: fsync failed", "requests", len(reqs), "error", serr)
	} else if s.failure.Load() != nil {
		s.failure.Store(nil)
	}
	answerAll(reqs, err)
}

// stop waits for the requests handed so far to be answered. The writer
// calls it once it hands no more.
func (s *syncer) stop() {
	close(s.in)
	<-s.done
}

// lastFailure returns the latest round's error if it failed.
func (s *syncer) lastFailure() error {
	if p := s.failure.Load(); p != nil {
		return *p
	}
	return nil
}

// logSyncer is the sync of a store in dir: what Badger's Sync reaches
// (the current memtable's log and value log file) and the files Badger
// left behind unsynced when it moved on to new ones since the last round.
// Badger's Sync alone would miss a commit whose memtable was rotated
// between the commit and the fsync: the writer does not wait for the
// fsync, so such a rotation can come between.
type logSyncer struct {
	db  *badger.DB
	dir string
	// vlogFloor is the newest value log file seen by the last round: the
	// older ones were finished by then, and fsynced by that round or
	// before. Only the syncer goroutine uses it.
	vlogFloor int
}

// sync makes durable every write committed before it was called.
func (l *logSyncer) sync() error {
	if err := l.db.Sync(); err != nil {
		return err
	}
	entries, err := os.ReadDir(l.dir)
	if err != nil {
		return fmt.Errorf("list %s: %w", l.dir, err)
	}
	// A memtable log is deleted once its memtable is flushed to a table,
	// which Badger syncs first; there are a handful at most.
	var mems, vlogs []logFile
	for _, e := range entries {
		name := e.Name()
		if fid, ok := logFileID(name, ".mem"); ok {
			mems = append(mems, logFile{fid, name})
		} else if fid, ok := logFileID(name, ".vlog"); ok && fid >= l.vlogFloor {
			vlogs = append(vlogs, logFile{fid, name})
		}
	}
	var errs []error
	// The newest of each was reached by Badger's Sync above, unless a
	// rotation came after it, which wrote only later commits there.
	for _, f := range allButNewest(mems) {
		errs = append(errs, fsyncFile(filepath.Join(l.dir, f.name)))
	}
	for _, f := range allButNewest(vlogs) {
		errs = append(errs, fsyncFile(filepath.Join(l.dir, f.name)))
	}
	if len(vlogs) > 0 {
		l.vlogFloor = slices.MaxFunc(vlogs, byID).fid
	}
	return errors.Join(errs...)
}

// logFile is one of Badger's numbered log files.
type logFile struct {
	fid  int
	name string
}

func byID(a, b logFile) int { return cmp.Compare(a.fid, b.fid) }

// allButNewest returns files without the one of the largest ID.
func allButNewest(files []logFile) []logFile {
	if len(files) == 0 {
		return nil
	}
	slices.SortFunc(files, byID)
	return files[:len(files)-1]
}

// logFileID parses Badger's numbered log file names ("00007.mem",
// "000003.vlog").
func logFileID(name, ext string) (int, bool) {
	digits, ok := strings.CutSuffix(name, ext)
	if !ok {
		return 0, false
	}
	fid, err := strconv.Atoi(digits)
	return fid, err == nil && fid >= 0
}

// fsyncFile fsyncs the file at path; one deleted meanwhile was flushed or
// collected, and its data is in a synced table or rewritten.
func fsyncFile(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return errors.Join(f.Sync(), f.Close())
}
