//go:build !unix

package badgerstore

import (
	"errors"
	"io"
	"os"
)

// lockDir does nothing where flock does not exist; Badger's own lock
// still refuses a second writer when it opens.
func lockDir(string, bool) (func(), error) { return func() {}, nil }

// copyFile copies src to dst, a new file.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		return errors.Join(err, out.Close())
	}
	return out.Close()
}
