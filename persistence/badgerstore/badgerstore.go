// Package badgerstore is Troupe's embedded default domain.Store: job
// snapshots in Badger, a key-value store on local disk, inside the
// process. Nothing to install, nothing to run beside it.
//
// Every write (Create, Insert, Update, Delete, PromoteDue, SetQueuePaused,
// DeleteFinished, the schedules' and the request log's) goes through one
// group-commit writer: callers
// from any number of goroutines queue their snapshots and wait, and the
// writer stores everything that is waiting in one Badger transaction, then
// tells each caller how its own request went. Durability then costs one
// write per batch, not one per transition, and a request that breaks a
// rule (a duplicate ID, a missing job) fails alone. Because the writer
// alone writes, a unique key is checked and taken in the transaction that
// stores its job, and no two callers can both take it.
//
// Secondary index keys make listing by status or by type a range scan over
// keys, oldest first, finding due scheduled jobs a range scan in RunAt
// order, and finding expired finished jobs a range scan in FinishedAt
// order; see keys.go for the layout and codec.go for the snapshot
// encoding.
//
// Badger appears in this package only: the rest of Troupe sees a
// domain.Store.
package badgerstore

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/google/uuid"

	"github.com/troupe-go/troupe/domain"
)

// Defaults and bounds of Options.
const (
	// MaxBatchDefault is the default of Options.MaxBatch. Badger's own
	// transaction limit (15% of the memtable) holds several times more, and
	// beyond a few thousand snapshots a batch gains little throughput but
	// makes its callers wait longer.
	MaxBatchDefault = 2048
	// MemTableSizeDefault is the default of Options.MemTableSize, Badger's.
	MemTableSizeDefault int64 = 64 << 20
	// MemTableSizeMin is the smallest Options.MemTableSize accepted.
	MemTableSizeMin int64 = 1 << 20
)

// maxInlineValue is the largest snapshot kept in the LSM tree beside its
// key; larger ones go to Badger's value log. Badger's default.
const maxInlineValue = 1 << 20

// ErrDirInUse means that another process (or another Store in this one)
// holds the data directory. Badger takes an exclusive lock on it, because
// two writers would corrupt it.
var ErrDirInUse = errors.New("data directory is in use by another troupe process")

// Options configures Open. The zero value is not enough: set Dir, or
// InMemory for tests.
type Options struct {
	// Dir is the directory holding the data; it is created if missing.
	// Required unless InMemory is set, and must then be empty.
	Dir string
	// InMemory keeps everything in memory, so that nothing survives Close:
	// for tests and demos. Defaults to false.
	InMemory bool
	// Durability says which writes wait for fsync before they are
	// acknowledged (see Durability). Flush and Close sync either way.
	// Defaults to DurabilityFull.
	Durability Durability
	// Logger receives the store's messages and Badger's warnings and
	// errors; Badger's info and debug lines are dropped. Defaults to
	// slog.Default().
	Logger *slog.Logger
	// MaxBatch caps how many snapshots one group commit writes. A larger
	// batch spreads a commit over more writes; a smaller one bounds how long
	// its callers wait. Defaults to MaxBatchDefault.
	MaxBatch int
	// MemTableSize is the size of Badger's in-memory table, which Badger
	// keeps up to five of: the main memory cost of the store. It also caps
	// one transaction (at 15% of it), so a smaller table means smaller
	// group commits. At least MemTableSizeMin. Defaults to
	// MemTableSizeDefault, or to MemTableSizeFor(MinFreeBytes) when only
	// MinFreeBytes is set.
	MemTableSize int64
	// MinFreeBytes is the free space, on the data directory's file system,
	// below which the store refuses every write with domain.ErrStorageFull;
	// new jobs are refused below MinFreeBytes plus twice a memtable flush
	// (2.3 × MemTableSize), so that the jobs already stored can record
	// their outcomes. Open refuses to start below it. It must cover what
	// Badger may still write on its own (see space.go), which
	// MinFreeBytesFor(MemTableSize) computes: the default, and the least
	// accepted. Ignored when InMemory is set.
	MinFreeBytes int64
}

// WithDefaults returns a copy of o with every unset field at its default.
func (o Options) WithDefaults() Options {
	o.Logger = cmp.Or(o.Logger, slog.Default())
	o.MaxBatch = cmp.Or(o.MaxBatch, MaxBatchDefault)
	o.Durability = cmp.Or(o.Durability, DurabilityFull)
	if o.MemTableSize == 0 && o.MinFreeBytes > 0 {
		// 0 when even the smallest memtable needs more: validate says so.
		o.MemTableSize = MemTableSizeFor(o.MinFreeBytes)
		if o.MemTableSize == 0 {
			o.MemTableSize = MemTableSizeMin
		}
	}
	o.MemTableSize = cmp.Or(o.MemTableSize, MemTableSizeDefault)
	o.MinFreeBytes = cmp.Or(o.MinFreeBytes, MinFreeBytesFor(o.MemTableSize))
	return o
}

// Validate reports the first field out of bounds as an *OptionsError,
// which wraps domain.ErrInvalid. It expects options filled by
// WithDefaults; Open and Restore call it.
func (o Options) Validate() error {
	bad := func(field string, value any, reason string, args ...any) error {
		return &OptionsError{Field: field, Value: value, Reason: fmt.Sprintf(reason, args...)}
	}
	switch {
	case o.InMemory && o.Dir != "":
		return bad("Dir", o.Dir, "must be empty when InMemory is set")
	case !o.InMemory && o.Dir == "":
		return bad("Dir", nil, "is required unless InMemory is set")
	case o.Durability.Valid() != nil:
		return bad("Durability", string(o.Durability), "must be full, sync-all or none")
	case o.MaxBatch < 1:
		return bad("MaxBatch", o.MaxBatch, "must be at least 1")
	case o.MemTableSize < MemTableSizeMin:
		return bad("MemTableSize", o.MemTableSize, "must be at least %d", MemTableSizeMin)
	case !o.InMemory && o.MinFreeBytes < MinFreeBytesFor(o.MemTableSize):
		return bad("MinFreeBytes", o.MinFreeBytes, "must be at least %d for a memtable of %d bytes (less risks a crash on a full disk)",
			MinFreeBytesFor(o.MemTableSize), o.MemTableSize)
	}
	return nil
}

// OptionsError is a field of Options out of bounds, as Options.Validate
// reports it. It names the Go field, so that a program that builds Options
// from options of its own can name its own option instead.
type OptionsError struct {
	// Field is the name of the Options field, such as "MinFreeBytes".
	Field string
	// Value is the field's value, or nil when it is missing.
	Value any
	// Reason says what the value must be.
	Reason string
}

// Error names the field, what it must be and what it is.
func (e *OptionsError) Error() string {
	msg := fmt.Sprintf("badger store: %v: %s %s", domain.ErrInvalid, e.Field, e.Reason)
	if s, ok := e.Value.(string); ok {
		return fmt.Sprintf("%s, got %q", msg, s)
	}
	if e.Value != nil {
		return fmt.Sprintf("%s, got %v", msg, e.Value)
	}
	return msg
}

// Unwrap makes an OptionsError a domain.ErrInvalid.
func (e *OptionsError) Unwrap() error { return domain.ErrInvalid }

// badgerOptions translates o, already defaulted, into Badger's options.
func (o Options) badgerOptions() badger.Options {
	bo := badger.DefaultOptions(o.Dir).
		WithInMemory(o.InMemory).
		WithSyncWrites(o.Durability == DurabilitySyncAll).
		WithLogger(badgerLogger{log: o.Logger}).
		WithLoggingLevel(badger.WARNING).
		// The writer is the only goroutine that writes, so there is
		// nothing for Badger to detect, and tracking reads costs memory.
		WithDetectConflicts(false).
		WithMemTableSize(o.MemTableSize).
		// The free-space floor is computed from these (space.go).
		WithNumLevelZeroTables(baseNumLevelZeroTables).
		WithBaseLevelSize(baseLevelSize).
		WithValueLogFileSize(valueLogFileSize(o.MemTableSize)).
		// Badger refuses a value threshold above its transaction limit.
		WithValueThreshold(min(maxInlineValue, 15*o.MemTableSize/100)).
		// Every block is checked against its checksum when it is loaded
		// from disk (not on block-cache hits): a CRC over a few KB per
		// disk read. Whole tables are verified once at open by inspectDir,
		// so Badger's OnTableRead would only read them a second time.
		WithChecksumVerificationMode(options.OnBlockRead).
		// Snapshots too large for the tree live in the value log; check
		// them as they are read too (a CRC per large value).
		WithVerifyValueChecksum(true)
	if o.InMemory {
		bo = bo.WithDir("").WithValueDir("")
	}
	return bo
}

// Store is the Badger domain.Store. It is safe for concurrent use. Open
// one per data directory; Close it to release the directory.
type Store struct {
	db    *badger.DB
	w     *writer
	integ *integrity
	// space is nil for an in-memory store.
	space *spaceGuard
	log   *slog.Logger

	// mu guards closed. Every call registers in inflight while the store
	// is open, so Close can wait for calls in progress and then stop the
	// writer knowing that nobody will queue behind it.
	mu       sync.RWMutex
	closed   bool
	inflight sync.WaitGroup

	closeOnce sync.Once
	closeErr  error

	// gcStop ends the value-log collector; gcDone closes when it has.
	gcStop, gcDone chan struct{}
	// gcKick asks the collector to run now, after a large prune; pruned
	// counts the jobs DeleteFinished deleted since the last kick.
	gcKick chan struct{}
	pruned atomic.Int64
}

var _ domain.Store = (*Store)(nil)

// Open opens (or creates) the store described by opts and starts its
// writer. If another process holds the directory it returns an error
// wrapping ErrDirInUse and Badger's own.
func Open(opts Options) (*Store, error) {
	opts = opts.WithDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	var space *spaceGuard
	if !opts.InMemory {
		// Read-only checks first: a damaged directory is refused whatever
		// the free space.
		if err := inspectBeforeOpen(opts.Dir, opts.Logger); err != nil {
			return nil, fmt.Errorf("open badger store in %s: %w", opts.Dir, err)
		}
		var err error
		if space, err = checkSpaceToOpen(opts); err != nil {
			return nil, err
		}
	}
	db, err := badger.Open(opts.badgerOptions())
	if err != nil {
		// Badger formats the lock error with %v, so its text is all there
		// is to recognise it by; TestOpenFailsWhenTheDirIsInUse pins it.
		if strings.Contains(err.Error(), "Cannot acquire directory lock") {
			return nil, fmt.Errorf("open badger store in %s: %w: %w", opts.Dir, ErrDirInUse, err)
		}
		if isCorruption(err) {
			return nil, fmt.Errorf("open badger store in %s: %w", opts.Dir, corruptOpenError(err))
		}
		return nil, fmt.Errorf("open badger store in %s: %w", opts.Dir, err)
	}
	if err := checkLayout(db); err != nil {
		if isCorruption(err) {
			err = corruptOpenError(err)
		}
		return nil, errors.Join(fmt.Errorf("open badger store in %s: %w", opts.Dir, err), db.Close())
	}
	counts, err := loadCounts(db)
	if err != nil {
		if isCorruption(err) {
			err = corruptOpenError(err)
		}
		return nil, errors.Join(fmt.Errorf("open badger store in %s: read the queue counts: %w", opts.Dir, err), db.Close())
	}
	s := &Store{db: db, w: newWriter(db, opts.Logger, opts.MaxBatch, counts), space: space, log: opts.Logger,
		integ:  &integrity{db: db, log: opts.Logger},
		gcStop: make(chan struct{}), gcDone: make(chan struct{}), gcKick: make(chan struct{}, 1)}
	s.w.space = space
	if opts.Durability == DurabilityFull && !opts.InMemory {
		s.w.syncer = newSyncer((&logSyncer{dir: opts.Dir}).sync, opts.Logger)
	}
	s.w.confirmMiss = s.integ.confirmMiss
	go s.w.run()
	go s.collectValueLog(opts)
	return s, nil
}

// checkSpaceToOpen refuses to open a store whose disk is below the
// floor: opening creates a memtable log and a value log and writes their
// first page through a memory mapping, and replaying old logs flushes
// them, so on a full disk Open itself would die of SIGBUS.
func checkSpaceToOpen(opts Options) (*spaceGuard, error) {
	// Badger would create it; creating it first lets its file system be
	// measured.
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("open badger store in %s: %w", opts.Dir, err)
	}
	g := newSpaceGuard(opts.Dir, opts.MinFreeBytes, opts.MemTableSize)
	free, level, err := g.measure()
	if err != nil {
		return nil, fmt.Errorf("open badger store in %s: %w", opts.Dir, err)
	}
	if level == spaceNoWrite {
		return nil, fmt.Errorf("open badger store in %s: %w", opts.Dir, g.fullError(free, "the store needs", g.floor))
	}
	if level == spaceLow {
		opts.Logger.Error("badger store: disk nearly full at start; new jobs are refused until space is freed",
			slog.String("dir", opts.Dir), slog.Int64("freeBytes", free), slog.Int64("newJobsNeedBytes", g.newJobs))
	}
	return g, nil
}

// checkLayout records the key layout in a new store, upgrades a store of
// layout 1 to 4 and refuses a store written in a layout this build does
// not know.
func checkLayout(db *badger.DB) error {
	var version byte
	err := db.Update(func(txn *badger.Txn) error {
		item, err := txn.Get(layoutKey)
		if errors.Is(err, badger.ErrKeyNotFound) {
			version = layoutCurrent
			return txn.Set(layoutKey, []byte{layoutCurrent})
		}
		if err != nil {
			return fmt.Errorf("read layout version: %w", err)
		}
		err = item.Value(func(v []byte) error {
			if !knownLayout(v) {
				return fmt.Errorf("data written in key layout %v, this build reads layouts %d to %d", v, layoutV1, layoutCurrent)
			}
			version = v[0]
			return nil
		})
		switch {
		case err != nil:
			return err
		case version == layoutV1:
			version = layoutV2
			return upgradeLayout(txn)
		case version == layoutV3, version == layoutV4:
			// Layouts 4 and 5 have no key a store of layout 3 or 4 needs:
			// recording the version is the upgrade.
			version = layoutCurrent
			return txn.Set(layoutKey, []byte{layoutCurrent})
		}
		return nil
	})
	if err != nil || version == layoutCurrent {
		return err
	}
	return upgradeFinished(db)
}

// upgradeLayout turns a layout 1 store into a layout 2 one, in txn: every
// job of layout 1 is in the default queue and none is scheduled, so the
// queue counts are the pending and running keys of the status index,
// counted keys only.
func upgradeLayout(txn *badger.Txn) error {
	for _, code := range []byte{1, 2} { // pending, running
		var n uint64
		err := eachKey(txn, statusPrefix(code), func([]byte) error {
			n++
			return nil
		})
		if err != nil {
			return fmt.Errorf("upgrade key layout: %w", err)
		}
		if n == 0 {
			continue
		}
		k := countKey{status: code, queue: domain.DefaultQueue}
		if err := txn.Set(k.key(), binary.AppendUvarint(nil, n)); err != nil {
			return fmt.Errorf("upgrade key layout: %w", err)
		}
	}
	return txn.Set(layoutKey, []byte{layoutV2})
}

// upgradeFinished turns a layout 2 store into a layout 5 one (3, 4 and 5
// differ from 2 only by the finished keys, and in what snapshots and
// queues may hold): it writes the finished key of every finished
// job, found through the status index, then records the layout. The keys go in as many transactions as they
// need (a store may hold millions of finished jobs), before the writer
// starts; if the process dies halfway, the layout is still 2 and the next
// Open writes them all again, which changes nothing for those written.
func upgradeFinished(db *badger.DB) error {
	wb := db.NewWriteBatch()
	defer wb.Cancel()
	err := db.View(func(txn *badger.Txn) (err error) {
		defer recoverDamage(&err)
		for _, st := range []domain.Status{domain.StatusCompleted, domain.StatusFailed, domain.StatusCanceled} {
			code, _ := statusCode(st)
			err := eachKey(txn, statusPrefix(code), func(key []byte) error {
				id, ok := idOfIndexKey(key)
				if !ok {
					return fmt.Errorf("status index key %x: %w", key, errCorrupt)
				}
				item, err := txn.Get(jobKey(id))
				if err != nil {
					return fmt.Errorf("job %s: %w", id, err)
				}
				var e indexEntry
				err = item.Value(func(v []byte) error {
					_, e, err = decodeIndex(v)
					return err
				})
				if err != nil {
					return fmt.Errorf("job %s: %w", id, err)
				}
				return wb.Set(appendFinishedKey(nil, id, e), finishedValue(nil, e))
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("upgrade key layout: %w", err)
	}
	if err := wb.Flush(); err != nil {
		return fmt.Errorf("upgrade key layout: %w", err)
	}
	return db.Update(func(txn *badger.Txn) error { return txn.Set(layoutKey, []byte{layoutCurrent}) })
}

// loadCounts reads the queue counts for the writer.
func loadCounts(db *badger.DB) (counts map[countKey]int64, err error) {
	err = db.View(func(txn *badger.Txn) (err error) {
		defer recoverDamage(&err)
		counts, err = readCounts(txn)
		return err
	})
	return counts, err
}

// enter registers a call, or returns ErrClosed once Close has begun.
// Every successful enter is paired with a leave.
func (s *Store) enter() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return domain.ErrClosed
	}
	s.inflight.Add(1)
	return nil
}

func (s *Store) leave() { s.inflight.Done() }

// Create implements domain.Store. The jobs are written in one transaction
// with whatever else is waiting; a job whose ID is already stored (or
// appears twice in jobs) fails this call alone with ErrAlreadyExists, and
// one whose unique key is held at the time of the call (see Insert) with
// ErrDuplicate. If
// ctx ends while the call waits, it returns ctx's error, and the write may
// or may not have happened.
func (s *Store) Create(ctx context.Context, jobs ...*domain.Job) error {
	return s.write(ctx, opCreate, jobs)
}

// Update implements domain.Store, with the same batching and ctx rules as
// Create. A job that is not stored fails this call alone with ErrNotFound.
func (s *Store) Update(ctx context.Context, jobs ...*domain.Job) error {
	return s.write(ctx, opUpdate, jobs)
}

// write encodes jobs here, in the caller's goroutine, so that the writer
// only writes, and queues them.
func (s *Store) write(ctx context.Context, op op, jobs []*domain.Job) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	req, err := newWriteRequest(ctx, op, jobs)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", req.label(), err)
	}
	if len(jobs) == 0 {
		return nil
	}
	return s.latchDamage(req.label(), s.w.submit(ctx, req))
}

// latchDamage records damage that the writer met (reading a stored
// snapshot), so that Ping reports it too.
func (s *Store) latchDamage(what string, err error) error {
	if errors.Is(err, domain.ErrCorrupt) && s.integ.corrupt() == nil {
		s.integ.latch(what, err)
	}
	return err
}

// Delete implements domain.Store. It goes through the writer too, so that
// a job's index keys are only ever changed by one goroutine.
func (s *Store) Delete(ctx context.Context, id uuid.UUID) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	req := &request{ctx: ctx, op: opDelete, id: id, done: make(chan error, 1)}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", req.label(), err)
	}
	return s.latchDamage(req.label(), s.w.submit(ctx, req))
}

// Get implements domain.Store.
func (s *Store) Get(ctx context.Context, id uuid.UUID) (*domain.Job, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.leave()
	what := "get job " + id.String()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	var job *domain.Job
	err := s.db.View(func(txn *badger.Txn) (err error) {
		defer recoverDamage(&err)
		job, err = getJob(txn, id)
		return err
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		// A key in a damaged block reads as missing too.
		if err := s.integ.confirmMiss(what); err != nil {
			return nil, err
		}
	}
	if err != nil {
		return nil, s.integ.check(what, err)
	}
	return job, nil
}

// getJob reads and decodes one snapshot.
func getJob(txn *badger.Txn, id uuid.UUID) (*domain.Job, error) {
	item, err := txn.Get(jobKey(id))
	if err != nil {
		return nil, err
	}
	var job *domain.Job
	err = item.Value(func(v []byte) error {
		job, err = decode(v)
		return err
	})
	return job, err
}

// Ping implements domain.Store: the disk has room for new jobs (else an
// error wrapping domain.ErrStorageFull that starts "disk full (N bytes
// free)"), the latest group commit did not fail (a failing disk shows here
// before callers pile up errors), and the database answers a read.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("ping badger store: %w", err)
	}
	if err := s.integ.corrupt(); err != nil {
		// Health shows this text: "store: corrupt" leads.
		return fmt.Errorf("store: corrupt: %w", err)
	}
	if s.space != nil {
		// Unwrapped, so that /health reads "disk full (N bytes free)".
		if err := s.space.health(); err != nil {
			return err
		}
	}
	if err := s.w.lastFailure(); err != nil {
		return interpretError("ping badger store: the latest write failed", err)
	}
	err := s.db.View(func(txn *badger.Txn) (err error) {
		defer recoverDamage(&err)
		_, err = txn.Get(layoutKey)
		return err
	})
	return s.integ.check("ping badger store", err)
}

// Flush implements domain.Store: it syncs Badger's write-ahead log to
// stable storage, so that acknowledged writes survive a machine crash even
// without SyncWrites.
func (s *Store) Flush(ctx context.Context) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("flush badger store: %w", err)
	}
	return interpretError("flush badger store", s.db.Sync())
}

// Close implements domain.Store. It refuses new calls, waits for those in
// progress (a Scan for its fn, so fn must not call Close), lets the writer
// finish everything queued, syncs and closes Badger. Later calls return
// ErrClosed; a second Close returns what the first did.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.inflight.Wait()
		// Nobody can queue now: every writer entered before closed was set
		// and has been answered, or gave up on its ctx.
		s.w.stop()
		close(s.gcStop)
		<-s.gcDone
		if err := s.roomToClose(); err != nil {
			s.closeErr = err
			return
		}
		var errs []error
		if err := s.db.Sync(); err != nil {
			errs = append(errs, fmt.Errorf("sync: %w", err))
		}
		if err := s.db.Close(); err != nil {
			errs = append(errs, err)
		}
		if err := errors.Join(errs...); err != nil {
			s.closeErr = fmt.Errorf("close badger store: %w", err)
		}
	})
	return s.closeErr
}

// roomToClose checks that Badger can flush its memtable as it closes: the
// flush writes a table through a memory mapping, so on a disk that
// another program filled it would die of SIGBUS. Without the room, it
// syncs the memtable log instead and leaves Badger open: the log is
// replayed at the next start, so nothing acknowledged is lost, and the
// process ends without a crash. The directory stays locked until then.
func (s *Store) roomToClose() error {
	if s.space == nil {
		return nil
	}
	free, ok, err := s.space.free(s.space.dir)
	if err != nil || !ok {
		return nil
	}
	m := s.db.Opts().MemTableSize
	need := m + txnLimit(m)
	if free >= need {
		return nil
	}
	syncErr := s.db.Sync()
	s.log.Error("badger store: disk full at close; the memtable log is kept for replay at the next start instead of being flushed",
		slog.String("dir", s.space.dir), slog.Int64("freeBytes", free), slog.Int64("flushNeedsBytes", need), slog.Any("syncError", syncErr))
	return errors.Join(fmt.Errorf("close badger store: %w", s.space.fullError(free, "closing needs", need)), syncErr)
}

// valueLogGCInterval is how often the store reclaims value-log space.
// Snapshots too large to sit in the LSM tree go to Badger's value log,
// and every transition rewrites them, so without collection the log grows
// with every version ever written.
const valueLogGCInterval = 5 * time.Minute

// collectValueLog rewrites value-log files that are at least half garbage,
// on a timer and after large prunes (gcKick), one collection at a time,
// until Close. In-memory stores have no value log.
func (s *Store) collectValueLog(opts Options) {
	defer close(s.gcDone)
	if opts.InMemory {
		return
	}
	t := time.NewTicker(valueLogGCInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-s.gcKick:
		case <-s.gcStop:
			return
		}
		if !s.runValueLogGC() {
			return
		}
	}
}

// runValueLogGC runs Badger's value-log collection until it finds no file
// worth rewriting, and reports false if Close stopped it.
func (s *Store) runValueLogGC() bool {
	if s.space != nil {
		// A rewrite writes before it frees, outside the writer: only
		// with the headroom above the floor that covers it (space.go).
		if _, level, _ := s.space.measure(); level != spaceAmple {
			return true
		}
	}
	// Each successful call rewrites one file; go on while it finds more.
	// It returns ErrNoRewrite when none is worth it, and ErrRejected if a
	// collection is already running or the database is closed.
	for s.db.RunValueLogGC(0.5) == nil {
		select {
		case <-s.gcStop:
			return false
		default:
		}
	}
	return true
}

// interpretError is the one place where Badger's errors become the
// domain's, so that callers only ever test with errors.Is against domain
// sentinels. what names the operation and its job ("get job <id>").
func interpretError(what string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, badger.ErrKeyNotFound):
		return fmt.Errorf("%s: %w", what, domain.ErrNotFound)
	case errors.Is(err, badger.ErrDBClosed), errors.Is(err, badger.ErrBlockedWrites):
		return fmt.Errorf("%s: %w: %w", what, domain.ErrClosed, err)
	case isCorruption(err):
		return corruptError(what, err)
	case errors.Is(err, badger.ErrTxnTooBig):
		return fmt.Errorf("%s: %w: larger than one transaction can hold: %w", what, domain.ErrInvalid, err)
	default:
		return fmt.Errorf("%s: %w", what, err)
	}
}
