package smallfs

import (
	"fmt"

	"golang.org/x/sys/unix"
)

func mountTmpfs(dir string, size int64) error {
	return unix.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0755", size))
}

// unmount detaches at once even if a file is still open: a server the
// test killed may not have let go yet.
func unmount(dir string) error { return unix.Unmount(dir, unix.MNT_DETACH) }
