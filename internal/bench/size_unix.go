//go:build unix

package bench

import (
	"io/fs"
	"syscall"
)

// allocatedBytes is the disk space a file takes, as du counts it: Badger
// preallocates its value log and memtable files sparsely, so their length
// says little about the disk they use.
func allocatedBytes(info fs.FileInfo) int64 {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return int64(st.Blocks) * 512 // st_blocks counts 512-byte units
	}
	return info.Size()
}
