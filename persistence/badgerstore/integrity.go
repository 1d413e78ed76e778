package badgerstore

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/dgraph-io/badger/v4/table"
	"github.com/dgraph-io/ristretto/v2/z"

	"github.com/troupe-go/troupe/domain"
)

// Badger "repairs" some damage at open by throwing data away: with no
// MANIFEST it starts an empty store and deletes every table; it truncates
// a memtable log at its first bad entry. inspectDir looks at the directory
// before Badger does, and refuses what would lose acknowledged writes,
// changing nothing. It also verifies every table's checksums, so that a
// damaged table is found at start instead of as missing jobs later.

// recoverHint ends every refusal: what an operator can do about it.
const recoverHint = "check it with `troupe verify --data-dir DIR` and restore the latest backup with `troupe restore --in FILE --data-dir DIR` (see \"A locked or damaged data directory\" in the runbook)"

// corruptDirError builds the error of a directory refused before Badger
// opened it; the caller names the directory.
func corruptDirError(what string) error {
	return fmt.Errorf("%w: %s; nothing in the directory was changed; %s", domain.ErrCorrupt, what, recoverHint)
}

// corruptOpenError builds the error of damage that Badger found while it
// opened the directory.
func corruptOpenError(err error) error {
	return fmt.Errorf("%w: %w; %s", domain.ErrCorrupt, err, recoverHint)
}

// dirFiles is what a data directory holds, by kind.
type dirFiles struct {
	manifest bool
	tables   map[uint64]string // table ID → path
	memLogs  []string
	valueLog []string
}

func (f dirFiles) hasData() bool {
	return len(f.tables) > 0 || len(f.memLogs) > 0 || len(f.valueLog) > 0
}

// describe counts the data files, for messages.
func (f dirFiles) describe() string {
	var parts []string
	for _, c := range []struct {
		n    int
		what string
	}{{len(f.tables), "table"}, {len(f.memLogs), "memtable log"}, {len(f.valueLog), "value log"}} {
		switch {
		case c.n == 1:
			parts = append(parts, "1 "+c.what)
		case c.n > 1:
			parts = append(parts, fmt.Sprintf("%d %ss", c.n, c.what))
		}
	}
	return strings.Join(parts, ", ")
}

func listDir(dir string) (dirFiles, error) {
	f := dirFiles{tables: map[uint64]string{}}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return f, fmt.Errorf("read data directory %s: %w", dir, err)
	}
	for _, e := range entries {
		name := e.Name()
		switch {
		case e.IsDir():
		case name == badger.ManifestFilename:
			f.manifest = true
		case strings.HasSuffix(name, ".sst"):
			if id, ok := table.ParseFileID(name); ok {
				f.tables[id] = filepath.Join(dir, name)
			}
		case strings.HasSuffix(name, ".mem"):
			f.memLogs = append(f.memLogs, filepath.Join(dir, name))
		case strings.HasSuffix(name, ".vlog"):
			f.valueLog = append(f.valueLog, filepath.Join(dir, name))
		}
	}
	slices.Sort(f.memLogs)
	return f, nil
}

// inspection is what inspectDir found in a directory it accepts.
type inspection struct {
	tables  int
	memLogs []memLogScan
}

// inspectDir checks dir before Badger opens it and returns an error
// wrapping domain.ErrCorrupt for a directory Badger would open by
// discarding data. It reads only. A memtable log whose tail a crash tore
// is accepted and logged at error level, since the replay drops it.
func inspectDir(dir string, log *slog.Logger) (inspection, error) {
	var in inspection
	files, err := listDir(dir)
	if err != nil {
		return in, err
	}
	if !files.manifest {
		if files.hasData() {
			return in, corruptDirError(fmt.Sprintf(
				"the MANIFEST file is missing but the directory holds data (%s); opening it would start an empty store and delete them",
				files.describe()))
		}
		return in, nil // a new store
	}

	manifest, err := readManifest(dir, log)
	if err != nil {
		return in, corruptDirError(fmt.Sprintf("the MANIFEST file cannot be read (%v)", err))
	}
	var missing []uint64
	for id := range manifest.Tables {
		if _, ok := files.tables[id]; !ok {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return in, corruptDirError(fmt.Sprintf("the MANIFEST lists tables that are not on disk (%d: %s)",
			len(missing), tableNames(missing)))
	}
	var orphans []uint64
	for id := range files.tables {
		if _, ok := manifest.Tables[id]; !ok {
			orphans = append(orphans, id)
		}
	}
	if len(orphans) > 0 {
		// A table is written, then recorded in the MANIFEST. A crash in
		// between (during a flush or a compaction) leaves a table that
		// nothing refers to and whose entries are still in the memtable
		// log or in the compaction's input tables; Badger deletes it.
		slices.Sort(orphans)
		if manifest.Creations == 0 && len(orphans) > 1 {
			// A MANIFEST that never recorded a table had no compaction
			// and at most one flush in flight (Badger flushes one
			// memtable at a time): it is not the MANIFEST these tables
			// were written with.
			return in, corruptDirError(fmt.Sprintf(
				"the MANIFEST records no table but the directory holds %d (%s); opening it would delete them",
				len(orphans), tableNames(orphans)))
		}
		log.Warn("badger store: removing tables the MANIFEST does not list, left by an interrupted flush or compaction",
			"dir", dir, "tables", tableNames(orphans))
	}

	for id, tm := range manifest.Tables {
		if err := verifyTable(files.tables[id], tm.Compression); err != nil {
			return in, corruptDirError(fmt.Sprintf("table %s is damaged (%v)", table.IDToFilename(id), err))
		}
	}
	in.tables = len(manifest.Tables)

	for _, path := range files.memLogs {
		scan, err := scanMemLog(path)
		if err != nil {
			return in, err
		}
		in.memLogs = append(in.memLogs, scan)
		switch {
		case scan.damaged():
			return in, corruptDirError(fmt.Sprintf(
				"%s: %s; acknowledged writes after byte %d are lost. To start anyway with what the log still holds, cut it there: truncate -s %d %s",
				scan.describe(), scan.why, scan.validEnd, scan.validEnd, path))
		case scan.torn:
			log.Error("badger store: the memtable log ends in a write torn by a crash; replay drops it (it was never acknowledged)",
				"file", path, "keptEntries", scan.committed, "validEnd", scan.validEnd,
				"droppedBytes", scan.dropped(), "droppedEntries", scan.droppedEntries)
		}
	}
	return in, nil
}

// inspectBeforeOpen runs inspectDir on an existing directory under its
// lock, released just before Badger takes it again.
func inspectBeforeOpen(dir string, log *slog.Logger) error {
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return nil // a new store
	}
	release, err := lockDir(dir, true)
	if err != nil {
		return err
	}
	defer release()
	_, err = inspectDir(dir, log)
	return err
}

func tableNames(ids []uint64) string {
	const most = 10
	names := make([]string, 0, min(len(ids), most))
	for _, id := range ids[:min(len(ids), most)] {
		names = append(names, table.IDToFilename(id))
	}
	if len(ids) > most {
		names = append(names, fmt.Sprintf("and %d more", len(ids)-most))
	}
	return strings.Join(names, ", ")
}

// readManifest replays the MANIFEST read-only, as Badger does at open.
func readManifest(dir string, log *slog.Logger) (badger.Manifest, error) {
	fp, err := os.Open(filepath.Join(dir, badger.ManifestFilename))
	if err != nil {
		return badger.Manifest{}, err
	}
	defer fp.Close()
	opt := badger.DefaultOptions(dir).WithLogger(badgerLogger{log: log}).WithLoggingLevel(badger.WARNING)
	m, _, err := badger.ReplayManifestFile(fp, opt.ExternalMagicVersion, opt)
	return m, err
}

// verifyTable checks every checksum of the table at path, read-only.
func verifyTable(path string, compression options.CompressionType) (err error) {
	mf, err := z.OpenMmapFile(path, os.O_RDONLY, 0)
	if err != nil {
		return err
	}
	defer func() {
		// Badger's table code indexes into what it reads; damage that the
		// checksums do not catch first can make it panic.
		if p := recover(); p != nil {
			err = fmt.Errorf("unreadable table: %v", p)
		}
	}()
	t, err := table.OpenTable(mf, table.Options{
		ChkMode:     options.OnTableRead,
		Compression: compression,
		BlockSize:   badger.DefaultOptions("").BlockSize,
	})
	if err != nil {
		// OpenTable unmapped the file on most of its failures; a second
		// unmap is worse than a mapping left until the process exits.
		return err
	}
	// Close(-1) unmaps without truncating; the table's own DecrRef would
	// delete the file.
	return t.MmapFile.Close(-1)
}
