// Package smallfs gives tests a small file system of their own, so that
// they can fill a disk without filling the machine's: a tmpfs of a chosen
// size mounted on a temporary directory and unmounted when the test ends.
//
// Mounting needs root on Linux. Without it the test is skipped on a
// developer's machine and fails in CI (CI set), where the storage-fault
// tests must run.
package smallfs

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// Mount mounts a tmpfs of size bytes on a new temporary directory and
// returns its path. It is unmounted in t.Cleanup.
func Mount(t testing.TB, size int64) string {
	t.Helper()
	if runtime.GOOS != "linux" || os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatalf("mounting a small file system needs root on Linux, which CI must provide (GOOS %s, euid %d)", runtime.GOOS, os.Geteuid())
		}
		t.Skipf("mounting a small file system needs root on Linux (GOOS %s, euid %d)", runtime.GOOS, os.Geteuid())
	}
	dir := filepath.Join(t.TempDir(), "fs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := mountTmpfs(dir, size); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("mount a tmpfs on %s: %v", dir, err)
		}
		t.Skipf("cannot mount a tmpfs on %s: %v", dir, err)
	}
	// Registered after t.TempDir, so it runs before the directory is removed.
	t.Cleanup(func() {
		if err := unmount(dir); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// Fill writes a file named "filler" in dir that leaves about keep bytes
// free on the file system holding dir, and returns its path: deleting it
// gives the space back.
func Fill(t testing.TB, dir string, keep int64) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	size := Free(t, dir) - keep
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// Written, not truncated: a sparse file would take no space.
	chunk := make([]byte, 1<<20)
	for size > 0 {
		n := min(size, int64(len(chunk)))
		if _, err := f.Write(chunk[:n]); err != nil {
			t.Fatalf("fill %s: %v", path, err)
		}
		size -= n
	}
	return path
}

// Free returns the bytes free for an unprivileged writer on the file
// system holding dir.
func Free(t testing.TB, dir string) int64 {
	t.Helper()
	free, err := freeBytes(dir)
	if err != nil {
		t.Fatalf("free space of %s: %v", dir, err)
	}
	return free
}
