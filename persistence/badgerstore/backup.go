package badgerstore

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/dgraph-io/badger/v4"

	"github.com/troupe-go/troupe/domain"
)

// A backup file is Badger's own backup stream (what DB.Backup writes and
// DB.Load reads) between a header and a footer of ours:
//
//	header  "TROUPEBK" magic, format version (uint16, big endian)
//	stream  Badger's backup stream, unchanged
//	footer  "TROUPEND" magic, stream length (uint64), SHA-256 of the stream
//
// The header lets restore refuse a file that is not a Troupe backup before
// touching anything; the footer lets it refuse a backup that was cut short
// or damaged, which Badger's stream alone would load without a word when it
// ends on a record boundary.
const (
	backupMagic       = "TROUPEBK"
	backupFooterMagic = "TROUPEND"
	backupFormatV1    = 1
	backupHeaderSize  = len(backupMagic) + 2
	backupFooterSize  = len(backupFooterMagic) + 8 + sha256.Size
)

// maxBackupRecord bounds one record of Badger's stream on restore. Badger
// caps a batch at 100 MiB, give or take a buffer; a larger length can only
// be damage, and Load would allocate whatever the length says.
const maxBackupRecord = 512 << 20

// restoreMaxPending bounds the batches a restore has in flight; Badger's
// own restore tool uses the same.
const restoreMaxPending = 256

// ErrNotBackup means that a file given to Restore is not a Troupe backup.
var ErrNotBackup = errors.New("not a Troupe backup")

// ErrBackupDamaged means that a backup ends too soon or does not match its
// checksum: it was cut short while being written or copied, or damaged.
var ErrBackupDamaged = errors.New("the backup is incomplete or damaged")

// ErrDirNotEmpty means that Restore was given a directory that already
// holds files; it never mixes a backup into existing data.
var ErrDirNotEmpty = errors.New("directory is not empty")

// Backup writes a full backup of the store to w while it serves: every
// write acknowledged before the call is in it, and writes that land during
// it may or may not be. It reads one consistent snapshot, so a job and its
// index keys always agree. If ctx ends, it stops and returns ctx's error,
// and what was written to w is not a usable backup.
func (s *Store) Backup(ctx context.Context, w io.Writer) error {
	if err := s.enter(); err != nil {
		return fmt.Errorf("back up badger store: %w", err)
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("back up badger store: %w", err)
	}
	var header [backupHeaderSize]byte
	copy(header[:], backupMagic)
	binary.BigEndian.PutUint16(header[len(backupMagic):], backupFormatV1)
	if _, err := w.Write(header[:]); err != nil {
		return fmt.Errorf("back up badger store: write header: %w", err)
	}
	body := &summingWriter{w: ctxWriter{ctx: ctx, w: w}, sum: sha256.New()}
	stream := s.db.NewStream()
	stream.LogPrefix = "troupe backup"
	// Each of the stream's goroutines opens its own read transaction, at
	// its own moment; one goroutine means one transaction, so the backup
	// is a single snapshot and a job never disagrees with its index keys.
	stream.NumGo = 1
	if _, err := stream.Backup(body, 0); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return fmt.Errorf("back up badger store: %w", ctxErr)
		}
		return interpretError("back up badger store", err)
	}
	var footer [backupFooterSize]byte
	copy(footer[:], backupFooterMagic)
	binary.BigEndian.PutUint64(footer[len(backupFooterMagic):], body.n)
	copy(footer[len(backupFooterMagic)+8:], body.sum.Sum(nil))
	if _, err := w.Write(footer[:]); err != nil {
		return fmt.Errorf("back up badger store: write footer: %w", err)
	}
	return nil
}

// Restore creates a store in opts.Dir from the backup that r reads. The
// directory must be empty or missing (a lost+found of a fresh file system
// is allowed); Restore never mixes a backup into existing data and fails
// with ErrDirNotEmpty otherwise. A file that is not a Troupe backup fails
// with ErrNotBackup before anything is written; one that is cut short or
// damaged fails with ErrBackupDamaged. On any failure Restore removes what
// it wrote, leaving the directory as it found it. On success the data is
// synced and the store closed, ready for Open.
func Restore(ctx context.Context, r io.Reader, opts Options) (err error) {
	opts = opts.WithDefaults()
	if opts.InMemory {
		return fmt.Errorf("restore: %w: a backup is restored into a directory, not in memory", domain.ErrInvalid)
	}
	if err := opts.Validate(); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	br := bufio.NewReader(ctxReader{ctx: ctx, r: r})
	if err := readBackupHeader(br); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	created, err := prepareRestoreDir(opts.Dir)
	if err != nil {
		return fmt.Errorf("restore into %s: %w", opts.Dir, err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, cleanRestoreDir(opts.Dir, created))
		}
	}()

	db, err := badger.Open(opts.badgerOptions())
	if err != nil {
		if isDirLocked(err) {
			return fmt.Errorf("restore into %s: %w: %w", opts.Dir, ErrDirInUse, err)
		}
		return fmt.Errorf("restore into %s: open: %w", opts.Dir, err)
	}
	body := &footerReader{r: br, sum: sha256.New()}
	loadErr := db.Load(&framingGuard{r: body}, restoreMaxPending)
	if loadErr == nil {
		loadErr = body.check()
	}
	if loadErr != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			loadErr = ctxErr
		} else if !errors.Is(loadErr, ErrBackupDamaged) {
			loadErr = fmt.Errorf("%w: %w", ErrBackupDamaged, loadErr)
		}
		return errors.Join(fmt.Errorf("restore into %s: %w", opts.Dir, loadErr), db.Close())
	}
	if err := requireLayout(db); err != nil {
		return errors.Join(fmt.Errorf("restore into %s: %w", opts.Dir, err), db.Close())
	}
	if err := db.Sync(); err != nil {
		return errors.Join(fmt.Errorf("restore into %s: sync: %w", opts.Dir, err), db.Close())
	}
	if err := db.Close(); err != nil {
		return fmt.Errorf("restore into %s: close: %w", opts.Dir, err)
	}
	return nil
}

// readBackupHeader consumes the header and checks its magic and version.
func readBackupHeader(r io.Reader) error {
	var header [backupHeaderSize]byte
	n, err := io.ReadFull(r, header[:])
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read backup header: %w", err)
	}
	if n < backupHeaderSize || string(header[:len(backupMagic)]) != backupMagic {
		return fmt.Errorf("%w: the file does not start with a Troupe backup header", ErrNotBackup)
	}
	if v := binary.BigEndian.Uint16(header[len(backupMagic):]); v != backupFormatV1 {
		return fmt.Errorf("%w: backup format %d, this build reads format %d", ErrNotBackup, v, backupFormatV1)
	}
	return nil
}

// requireLayout checks that the restored data carries the key layout this
// build reads: a backup of some other Badger database has no layout key.
func requireLayout(db *badger.DB) error {
	return db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(layoutKey)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return fmt.Errorf("%w: the backup holds no Troupe key layout", ErrNotBackup)
		}
		if err != nil {
			return fmt.Errorf("read layout version: %w", err)
		}
		return item.Value(func(v []byte) error {
			// Open upgrades a store of an older layout.
			if !knownLayout(v) {
				return fmt.Errorf("the backup is in key layout %v, this build reads layouts %d to %d", v, layoutV1, layoutCurrent)
			}
			return nil
		})
	})
}

// lostAndFound is what mkfs leaves at the root of a new ext file system;
// a directory holding only it counts as empty.
const lostAndFound = "lost+found"

// prepareRestoreDir creates dir if it is missing, or checks that it is
// empty, and reports whether it created it.
func prepareRestoreDir(dir string) (created bool, err error) {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return false, err
		}
		return true, nil
	case err != nil:
		return false, err
	}
	for _, e := range entries {
		if e.Name() != lostAndFound {
			return false, fmt.Errorf("%w: it holds %s; restore into a new or empty directory", ErrDirNotEmpty, e.Name())
		}
	}
	return false, nil
}

// cleanRestoreDir removes what a failed restore wrote: the directory
// itself if it created it, else everything in it but lost+found.
func cleanRestoreDir(dir string, created bool) error {
	if created {
		return os.RemoveAll(dir)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if e.Name() != lostAndFound {
			errs = append(errs, os.RemoveAll(filepath.Join(dir, e.Name())))
		}
	}
	return errors.Join(errs...)
}

// summingWriter counts and hashes what it passes on, for the footer.
type summingWriter struct {
	w   io.Writer
	sum hash.Hash
	n   uint64
}

func (s *summingWriter) Write(p []byte) (int, error) {
	n, err := s.w.Write(p)
	s.sum.Write(p[:n])
	s.n += uint64(n)
	return n, err
}

// footerReader passes on everything r reads but the last backupFooterSize
// bytes, which it keeps as the footer, hashing what it passes on.
type footerReader struct {
	r    io.Reader
	sum  hash.Hash
	n    uint64
	tail []byte // read from r, not yet passed on; the footer once r ends
	buf  []byte
	eof  bool
}

func (f *footerReader) Read(p []byte) (int, error) {
	for !f.eof && len(f.tail) <= backupFooterSize {
		if f.buf == nil {
			f.buf = make([]byte, 32<<10)
		}
		n, err := f.r.Read(f.buf)
		f.tail = append(f.tail, f.buf[:n]...)
		if errors.Is(err, io.EOF) {
			f.eof = true
		} else if err != nil {
			return 0, err
		}
	}
	avail := len(f.tail) - backupFooterSize
	if avail <= 0 {
		return 0, io.EOF
	}
	n := copy(p, f.tail[:avail])
	f.sum.Write(f.tail[:n])
	f.n += uint64(n)
	f.tail = f.tail[n:]
	return n, nil
}

// check reads what is left and compares the footer with the stream that
// was passed on.
func (f *footerReader) check() error {
	if _, err := io.Copy(io.Discard, f); err != nil {
		return err
	}
	footer := f.tail
	if len(footer) != backupFooterSize || string(footer[:len(backupFooterMagic)]) != backupFooterMagic {
		return fmt.Errorf("%w: it has no end marker (cut short?)", ErrBackupDamaged)
	}
	if n := binary.BigEndian.Uint64(footer[len(backupFooterMagic):]); n != f.n {
		return fmt.Errorf("%w: it should hold %d bytes of data, it holds %d", ErrBackupDamaged, n, f.n)
	}
	if !bytes.Equal(footer[len(backupFooterMagic)+8:], f.sum.Sum(nil)) {
		return fmt.Errorf("%w: its checksum does not match", ErrBackupDamaged)
	}
	return nil
}

// isDirLocked reports Badger's error for a directory another process
// holds. Badger formats it with %v, so its text is all there is to
// recognise it by, as in Open.
func isDirLocked(err error) bool {
	return strings.Contains(err.Error(), "Cannot acquire directory lock")
}

// framingGuard follows the framing of Badger's stream (a little-endian
// uint64 length, then that many bytes) and fails on a length no backup
// holds, before Load reads it.
type framingGuard struct {
	r         io.Reader
	length    [8]byte
	lengthN   int
	remaining uint64
}

func (g *framingGuard) Read(p []byte) (int, error) {
	n, err := g.r.Read(p)
	for i := 0; i < n; {
		if g.remaining > 0 {
			k := int(min(g.remaining, uint64(n-i)))
			i += k
			g.remaining -= uint64(k)
			continue
		}
		g.length[g.lengthN] = p[i]
		g.lengthN++
		i++
		if g.lengthN == len(g.length) {
			g.lengthN = 0
			g.remaining = binary.LittleEndian.Uint64(g.length[:])
			if g.remaining > maxBackupRecord {
				return 0, fmt.Errorf("%w: a record claims %d bytes", ErrBackupDamaged, g.remaining)
			}
		}
	}
	return n, err
}

// ctxWriter fails its writes once ctx ends, which stops a backup stream.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}

// ctxReader fails its reads once ctx ends, which stops a restore.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// CheckBackup reads a backup to its end and checks its header and its
// checksum, without restoring it: ErrNotBackup or ErrBackupDamaged say
// what is wrong. A backup that passes restores unless the disk fails.
func CheckBackup(ctx context.Context, r io.Reader) error {
	br := bufio.NewReader(ctxReader{ctx: ctx, r: r})
	if err := readBackupHeader(br); err != nil {
		return err
	}
	body := &footerReader{r: br, sum: sha256.New()}
	return body.check()
}
