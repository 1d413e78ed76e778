//go:build unix

package badgerstore

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// lockDir takes the lock Badger takes on a data directory (flock on the
// directory itself: exclusive for a writer, shared for a reader), so that
// the checks made before Badger opens it never read files that a running
// server is changing. It returns an error wrapping ErrDirInUse if another
// process holds it.
func lockDir(dir string, exclusive bool) (release func(), err error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	how := unix.LOCK_SH
	if exclusive {
		how = unix.LOCK_EX
	}
	if err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("%w: Cannot acquire directory lock on %q: %w", ErrDirInUse, dir, err)
	}
	return func() { _ = f.Close() }, nil
}

// copyFile copies src to dst, a new file, skipping holes: Badger's logs are
// preallocated sparse files of up to 2 GB.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	fd := int(in.Fd())
	for off := int64(0); off < fi.Size(); {
		data, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break // only a hole is left
		}
		if err != nil {
			return errors.Join(err, out.Close())
		}
		hole, err := unix.Seek(fd, data, unix.SEEK_HOLE)
		if err != nil {
			return errors.Join(err, out.Close())
		}
		if _, err := io.Copy(io.NewOffsetWriter(out, data), io.NewSectionReader(in, data, hole-data)); err != nil {
			return errors.Join(err, out.Close())
		}
		off = hole
	}
	if err := out.Truncate(fi.Size()); err != nil {
		return errors.Join(err, out.Close())
	}
	return out.Close()
}
