package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/persistence/badgerstore"
)

// validBackup returns a backup of an empty store.
func validBackup(t *testing.T) []byte {
	t.Helper()
	s, err := badgerstore.Open(badgerstore.Options{Dir: t.TempDir()})
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, s.Backup(t.Context(), &buf))
	require.NoError(t, s.Close())
	return buf.Bytes()
}

// An interrupted backup (the stream fails, or ends early without an error,
// as a connection closed at a chunk boundary would) never leaves a file
// under the final name, nor replaces an earlier backup there, nor leaves
// its temporary file behind.
func TestWriteBackupFileIsAtomic(t *testing.T) {
	t.Parallel()
	backup := validBackup(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "nightly.backup")
	require.NoError(t, os.WriteFile(out, []byte("yesterday"), 0o600))

	_, err := writeBackupFile(t.Context(), out, func(w io.Writer) error {
		_, _ = w.Write(backup[:len(backup)/2])
		return errors.New("connection reset")
	})
	require.ErrorContains(t, err, "connection reset")
	_, err = writeBackupFile(t.Context(), out, func(w io.Writer) error {
		_, err := w.Write(backup[:len(backup)-1])
		return err
	})
	require.ErrorIs(t, err, badgerstore.ErrBackupDamaged)
	requireEntries(t, dir, "nightly.backup")
	got, err := os.ReadFile(out)
	require.NoError(t, err)
	require.Equal(t, "yesterday", string(got))

	n, err := writeBackupFile(t.Context(), out, func(w io.Writer) error {
		_, err := w.Write(backup)
		return err
	})
	require.NoError(t, err)
	require.Equal(t, int64(len(backup)), n)
	requireEntries(t, dir, "nightly.backup")
	got, err = os.ReadFile(out)
	require.NoError(t, err)
	require.Equal(t, backup, got)
	info, err := os.Stat(out)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm(), "a backup holds every payload: owner only")
}

func TestWriteBackupFileStopsWithItsContext(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx, cancel := context.WithCancelCause(t.Context())
	_, err := writeBackupFile(ctx, filepath.Join(dir, "x.backup"), func(io.Writer) error {
		cancel(errSignal)
		return context.Canceled
	})
	require.ErrorIs(t, err, errSignal)
	requireEntries(t, dir)
}

func TestBackupCommandRefusesMixedModes(t *testing.T) {
	t.Parallel()
	env, _, stderr, _ := testEnv()
	dir := t.TempDir()
	code := run(t.Context(), []string{"backup", "--data-dir", dir, "--server", "127.0.0.1:1", "--out", filepath.Join(dir, "x.backup")}, env)
	require.Equal(t, 1, code)
	require.Contains(t, stderr.String(), "give one or the other")
	requireEntries(t, dir)
}

// An offline backup never creates a store where there was none.
func TestBackupCommandRefusesADirWithoutAStore(t *testing.T) {
	t.Parallel()
	parent := t.TempDir()
	empty := filepath.Join(parent, "empty")
	require.NoError(t, os.Mkdir(empty, 0o700))
	missing := filepath.Join(parent, "missing")
	for dir, want := range map[string]string{
		empty:   "the directory is empty",
		missing: "no such file or directory",
	} {
		env, _, stderr, _ := testEnv()
		code := run(t.Context(), []string{"backup", "--data-dir", dir, "--out", filepath.Join(parent, "x.backup")}, env)
		require.Equal(t, 1, code)
		require.Contains(t, stderr.String(), want)
	}
	requireEntries(t, parent, "empty")
	requireEntries(t, empty)
}
