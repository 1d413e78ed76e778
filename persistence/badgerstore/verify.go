package badgerstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/google/uuid"

	"github.com/troupe-go/troupe/domain"
)

// VerifyReport is what Verify found.
type VerifyReport struct {
	// Jobs counts the job snapshots read and decoded.
	Jobs int
	// Keys counts every key read.
	Keys int
	// Tables counts the tables whose checksums were verified.
	Tables int
	// Damage lists what is damaged, one line each; empty if nothing is.
	Damage []string
}

// maxDamageLines bounds VerifyReport.Damage: beyond it, one line counts
// the rest.
const maxDamageLines = 100

func (r *VerifyReport) damaged(format string, args ...any) {
	switch {
	case len(r.Damage) < maxDamageLines:
		r.Damage = append(r.Damage, fmt.Sprintf(format, args...))
	case len(r.Damage) == maxDamageLines:
		r.Damage = append(r.Damage, "(more damage not listed)")
	}
}

// Verify checks the data directory dir without changing it: the checks
// Open makes before opening, every table's checksums, then every key and
// value, each job snapshot decoded and each index key matched with its
// job. It returns an error only when it could not check (the directory is
// in use, unreadable); damage is in the report. If a server holds the
// directory, the error wraps ErrDirInUse.
//
// Badger refuses to open read-only a directory whose memtable log it would
// have to truncate (after a kill or a crash); Verify then checks a scratch
// copy in a temporary directory instead (tables are linked, not copied,
// where the file system allows).
func Verify(ctx context.Context, dir string, log *slog.Logger) (VerifyReport, error) {
	var r VerifyReport
	if log == nil {
		log = slog.Default()
	}
	if _, err := os.Stat(dir); err != nil {
		return r, fmt.Errorf("verify %s: %w", dir, err)
	}
	// A shared lock, as Badger's read-only mode takes: a server (which
	// locks exclusively) cannot start while the directory is checked.
	release, err := lockDir(dir, false)
	if err != nil {
		return r, fmt.Errorf("verify %s: %w (stop the server first, or check a copy)", dir, err)
	}
	defer release()
	in, err := inspectDir(dir, log)
	if err != nil {
		if !errors.Is(err, domain.ErrCorrupt) {
			return r, fmt.Errorf("verify %s: %w", dir, err)
		}
		r.damaged("data directory %s: %v", dir, err)
		return r, nil
	}
	r.Tables = in.tables

	opts := Options{Dir: dir, Logger: log}.WithDefaults()
	dbDir := dir
	if needsReplay(in.memLogs) {
		scratch, cleanup, err := scratchCopy(dir)
		if err != nil {
			return r, fmt.Errorf("verify %s: copy it to replay its memtable log: %w", dir, err)
		}
		defer cleanup()
		dbDir = scratch
	}
	bo := opts.badgerOptions().WithDir(dbDir).WithValueDir(dbDir).
		WithChecksumVerificationMode(options.OnTableAndBlockRead).WithCompactL0OnClose(false)
	if dbDir == dir {
		bo = bo.WithReadOnly(true)
	}
	db, err := badger.Open(bo)
	if err != nil {
		if strings.Contains(err.Error(), "Cannot acquire directory lock") {
			return r, fmt.Errorf("verify %s: %w: %w", dir, ErrDirInUse, err)
		}
		if isCorruption(err) {
			r.damaged("open: %v", err)
			return r, nil
		}
		return r, fmt.Errorf("verify %s: %w", dir, err)
	}
	defer db.Close()
	if err := verifyTables(db); err != nil {
		r.damaged("tables: %v", err)
	}
	if err := readEverything(ctx, db, &r); err != nil {
		return r, fmt.Errorf("verify %s: %w", dir, err)
	}
	return r, nil
}

// readEverything reads every key and value in one view, and checks the
// keys that stand for something else against it: every index key has its
// job, every scheduled job its scheduled key, every finished job its
// finished key (and nothing else one), and the queue counts are the
// jobs' own.
func readEverything(ctx context.Context, db *badger.DB, r *VerifyReport) error {
	jobs := map[uuid.UUID]bool{}
	var indexed []uuid.UUID
	scheduledKeys := map[uuid.UUID]int64{}
	scheduledJobs := map[uuid.UUID]int64{}
	// The finished keys as found, and as the finished jobs' snapshots say
	// they must be.
	finishedKeys := map[uuid.UUID]string{}
	finishedJobs := map[uuid.UUID]string{}
	counted := map[countKey]int64{}  // from the snapshots
	recorded := map[countKey]int64{} // the c keys
	err := db.View(func(txn *badger.Txn) (err error) {
		defer recoverDamage(&err)
		it := txn.NewIterator(badger.DefaultIteratorOptions)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if r.Keys%ctxCheckEvery == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			r.Keys++
			item := it.Item()
			key := item.KeyCopy(nil)
			err := item.Value(func(v []byte) error {
				switch key[0] {
				case prefixJob:
					if len(key) != 17 {
						return fmt.Errorf("job key %x has the wrong length: %w", key, errCorrupt)
					}
					id := uuid.UUID(key[1:])
					job, err := decode(v)
					if err != nil {
						return fmt.Errorf("job %s: %w", id, err)
					}
					if job.ID != id {
						return fmt.Errorf("job %s: snapshot holds job %s: %w", id, job.ID, errCorrupt)
					}
					jobs[id] = true
					r.Jobs++
					e := indexOf(job)
					if !finished(e.status) {
						counted[countKey{status: e.status, queue: e.queue}]++
					}
					if e.status == codeScheduled {
						scheduledJobs[id] = e.runAt
					}
					if terminalCode(e.status) {
						finishedJobs[id] = string(appendFinishedKey(nil, id, e)) + string(finishedValue(nil, e))
					}
				case prefixStatus, prefixType:
					id, ok := idOfIndexKey(key)
					if !ok {
						return fmt.Errorf("index key %x is too short: %w", key, errCorrupt)
					}
					indexed = append(indexed, id)
				case prefixScheduled:
					if len(key) != scheduledKeyLen {
						return fmt.Errorf("scheduled index key %x has the wrong length: %w", key, errCorrupt)
					}
					id := uuid.UUID(key[9:])
					indexed = append(indexed, id)
					scheduledKeys[id] = timeOfKey(key[1:])
				case prefixUnique:
					// The entry of a job since deleted is dropped with it; one
					// whose job has finished stays until another takes it.
					if len(v) != 16 {
						return fmt.Errorf("unique key %q holds %d bytes, not a job ID: %w", key[1:], len(v), errCorrupt)
					}
				case prefixCount:
					n, w := binary.Uvarint(v)
					if len(key) < 2 || w <= 0 || w != len(v) {
						return fmt.Errorf("queue count %x holds %x: %w", key, v, errCorrupt)
					}
					recorded[countKey{status: key[1], queue: string(key[2:])}] = int64(n)
				case prefixRequest:
					scope, k, ok := splitRequestID(key[1:])
					if !ok {
						return fmt.Errorf("request record key %x: %w", key, errCorrupt)
					}
					if _, err := decodeRecord(scope, k, v); err != nil {
						return err
					}
				case prefixExpiry:
					if _, _, ok := splitRequestID(key[min(len(key), 9):]); len(key) < 9 || !ok {
						return fmt.Errorf("request expiry key %x: %w", key, errCorrupt)
					}
				case prefixFinished:
					if len(key) != finishedKeyLen || !terminalCode(key[1]) {
						return fmt.Errorf("finished index key %x is malformed: %w", key, errCorrupt)
					}
					if len(v) != 0 && len(v) != 8 {
						return fmt.Errorf("finished index key %x holds %x: %w", key, v, errCorrupt)
					}
					id := uuid.UUID(key[10:])
					indexed = append(indexed, id)
					finishedKeys[id] = string(key) + string(v)
				case prefixSchedule:
					if _, err := decodeSchedule(string(key[1:]), v); err != nil {
						return err
					}
				case prefixSettings:
					if _, err := decodeSettings(string(key[1:]), v); err != nil {
						return err
					}
				case prefixPaused, prefixMeta:
				default:
					return fmt.Errorf("key %x belongs to no known range: %w", key, errCorrupt)
				}
				return nil
			})
			if err != nil {
				if !isCorruption(err) {
					return err
				}
				r.damaged("%v", err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, id := range indexed {
		if !jobs[id] {
			r.damaged("job %s is indexed but has no snapshot", id)
		}
	}
	for id, runAt := range scheduledJobs {
		if at, ok := scheduledKeys[id]; !ok || at != runAt {
			r.damaged("scheduled job %s is missing from the scheduled index", id)
		}
	}
	for id := range scheduledKeys {
		if _, ok := scheduledJobs[id]; !ok && jobs[id] {
			r.damaged("job %s is in the scheduled index but not scheduled", id)
		}
	}
	for id, want := range finishedJobs {
		if got, ok := finishedKeys[id]; !ok || got != want {
			r.damaged("finished job %s is missing from the finished index", id)
		}
	}
	for id := range finishedKeys {
		if _, ok := finishedJobs[id]; !ok && jobs[id] {
			r.damaged("job %s is in the finished index but not finished", id)
		}
	}
	for k, n := range counted {
		if recorded[k] != n {
			r.damaged("queue %q holds %d jobs %s, its count says %d", k.queue, n, statusName(k.status), recorded[k])
		}
	}
	for k, n := range recorded {
		if _, ok := counted[k]; !ok {
			r.damaged("queue %q holds no job %s, its count says %d", k.queue, statusName(k.status), n)
		}
	}
	return nil
}

// statusName names a status code in a message.
func statusName(code byte) string {
	if s, ok := statusOf(code); ok {
		return string(s)
	}
	return fmt.Sprintf("of status code %d", code)
}

// needsReplay reports memtable logs that Badger must truncate after
// replaying them, which it refuses to do read-only: a log still being
// written when the server stopped (killed, or crashed) keeps its
// preallocated tail.
func needsReplay(logs []memLogScan) bool {
	for _, l := range logs {
		if l.size > l.validEnd {
			return true
		}
	}
	return false
}

// scratchCopy copies dir into a new temporary directory, linking tables
// (which Badger never changes, only deletes) where it can, and returns a
// function that removes the copy.
func scratchCopy(dir string) (string, func(), error) {
	scratch, err := os.MkdirTemp("", "troupe-verify-")
	if err != nil {
		return "", nil, err
	}
	cleanup := func() { _ = os.RemoveAll(scratch) }
	entries, err := os.ReadDir(dir)
	if err != nil {
		cleanup()
		return "", nil, err
	}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || name == "LOCK" {
			continue
		}
		src, dst := filepath.Join(dir, name), filepath.Join(scratch, name)
		if strings.HasSuffix(name, ".sst") && os.Link(src, dst) == nil {
			continue
		}
		if err := copyFile(src, dst); err != nil {
			cleanup()
			return "", nil, err
		}
	}
	return scratch, cleanup, nil
}
