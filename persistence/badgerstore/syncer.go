package badgerstore

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"

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
	log     *slog.Logger
}

// syncerQueue bounds the committed batches waiting for an fsync: beyond
// it the writer waits, which pushes back on writers while the disk is slow.
const syncerQueue = 64

func newSyncer(sync func() error, log *slog.Logger) *syncer {
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

// logSyncer is the sync of a store in dir: it fsyncs Badger's memtable
// logs and the value logs written since its last round, through file
// descriptors of its own. Badger's own Sync would do for the newest logs,
// but it holds the lock that every commit takes for the whole fsync, which
// would stop the writer; and it misses a memtable or value log that Badger
// left for a new one between the commit and the fsync, which the writer no
// longer rules out. On Linux an fsync reaches the pages Badger wrote
// through its memory mappings.
type logSyncer struct {
	dir string
	// vlogFloor is the newest value log file the last round saw: the
	// older ones were finished by then, and fsynced by that round or an
	// earlier one. Only the syncer goroutine uses it.
	vlogFloor int
}

// sync makes durable every write committed before it was called.
func (l *logSyncer) sync() error {
	entries, err := os.ReadDir(l.dir)
	if err != nil {
		return fmt.Errorf("list %s: %w", l.dir, err)
	}
	var errs []error
	newest := l.vlogFloor
	for _, e := range entries {
		name := e.Name()
		// The memtable logs are a handful at most: Badger deletes each once
		// its memtable is flushed to a table, which it syncs first.
		_, mem := logFileID(name, ".mem")
		fid, vlog := logFileID(name, ".vlog")
		if !mem && (!vlog || fid < l.vlogFloor) {
			continue
		}
		errs = append(errs, fsyncFile(filepath.Join(l.dir, name)))
		if vlog {
			newest = max(newest, fid)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	l.vlogFloor = newest
	return nil
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
