//go:build !unix

package bench

import "io/fs"

// allocatedBytes is a file's length where its allocated blocks are not
// known.
func allocatedBytes(info fs.FileInfo) int64 { return info.Size() }
