package badgerstore

import (
	"bytes"
	"log/slog"
	"os"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"github.com/stretchr/testify/require"
)

// A backup in our format of a Badger database that is not a Troupe store
// (no layout key) is refused after loading, and the directory cleaned.
func TestRestoreRefusesABadgerDatabaseThatIsNotATroupeStore(t *testing.T) {
	t.Parallel()
	opts := Options{Dir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)}.WithDefaults()
	db, err := badger.Open(opts.badgerOptions())
	require.NoError(t, err)
	require.NoError(t, db.Update(func(txn *badger.Txn) error { return txn.Set([]byte("hello"), []byte("world")) }))
	var buf bytes.Buffer
	require.NoError(t, (&Store{db: db}).Backup(t.Context(), &buf))
	require.NoError(t, db.Close())

	dir := t.TempDir()
	err = Restore(t.Context(), &buf, Options{Dir: dir, Logger: slog.New(slog.DiscardHandler)})
	require.ErrorIs(t, err, ErrNotBackup)
	require.ErrorContains(t, err, "holds no Troupe key layout")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, entries)
}
