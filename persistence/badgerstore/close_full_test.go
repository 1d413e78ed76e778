package badgerstore

import (
	"crypto/rand"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/internal/smallfs"
)

// TestCloseOnADiskFilledByAnotherProgram fills the disk under an open
// store, as another program would: Badger's Close flushes the memtable
// into a table through a memory mapping, which died of SIGBUS. Close now
// keeps the memtable log instead, and the next Open replays it.
func TestCloseOnADiskFilledByAnotherProgram(t *testing.T) {
	fs := smallfs.Mount(t, 48<<20)
	dir := filepath.Join(fs, "data")
	opts := Options{Dir: dir, MemTableSize: MemTableSizeMin, Logger: slog.New(slog.DiscardHandler)}
	s, err := Open(opts)
	require.NoError(t, err)
	var jobs []*domain.Job
	for i := range 20 {
		pad := make([]byte, 5_000)
		_, _ = rand.Read(pad)
		j, err := domain.NewJob("fill", fmt.Appendf(nil, `{"pad":"%x"}`, pad), 3, testEpoch)
		require.NoError(t, err)
		require.NoError(t, s.Create(t.Context(), j), "job %d", i)
		jobs = append(jobs, j)
	}

	filler := smallfs.Fill(t, fs, 0)
	err = s.Close()
	require.ErrorIs(t, err, domain.ErrStorageFull)
	require.ErrorContains(t, err, "closing needs at least")
	require.ErrorIs(t, s.Create(t.Context(), jobs[0]), domain.ErrClosed, "closed for callers all the same")

	// Space back: release what Close left open, as the end of the process
	// would, and start again.
	require.NoError(t, os.Remove(filler))
	require.NoError(t, s.db.Close())
	again, err := Open(opts)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, again.Close()) })
	for _, j := range jobs {
		got, err := again.Get(t.Context(), j.ID)
		require.NoError(t, err)
		require.Equal(t, j.Payload, got.Payload)
	}
}
