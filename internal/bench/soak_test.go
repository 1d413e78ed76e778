package bench

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/internal/pgtest"
)

func TestDirSize(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "a"), make([]byte, 10_000), 0o600))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "sub"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "sub", "b"), []byte("hello"), 0o600))
	// A sparse file, as Badger preallocates: long, but hardly on disk.
	f, err := os.Create(filepath.Join(dir, "sparse"))
	require.NoError(t, err)
	require.NoError(t, f.Truncate(64<<20))
	require.NoError(t, f.Close())

	allocated, length, err := dirSize(dir)
	require.NoError(t, err)
	require.Equal(t, int64(10_000+5+64<<20), length, "the lengths of every file, in subdirectories too")
	require.GreaterOrEqual(t, allocated, int64(10_000+5), "the written bytes take at least their length")
	require.Less(t, allocated, int64(64<<20), "the sparse file's hole takes no disk")

	_, _, err = dirSize(filepath.Join(dir, "missing"))
	require.NoError(t, err, "a directory that vanished measures nothing")
}

func TestSoakSampleText(t *testing.T) {
	t.Parallel()
	require.Equal(t, "512 B", humanBytes(512))
	require.Equal(t, "1.5 KiB", humanBytes(1536))
	require.Equal(t, "3.0 MiB", humanBytes(3<<20))
	require.Equal(t, "2.0 GiB", humanBytes(2<<30))

	n, m := int64(3<<20), int64(256<<20)
	line := SoakSample{ElapsedSeconds: 30, Submitted: 60_000, Completed: 59_990, Finished: 10_000, DirBytes: &n, DirFileBytes: &m}.String()
	require.Equal(t, "soak:     30s  submitted 60000  completed 59990  kept 10000  data dir 3.0 MiB on disk (3145728 bytes), files 256.0 MiB", line)
	rows, size := int64(42), int64(8192)
	line = SoakSample{ElapsedSeconds: 60, Completed: 7, Rows: &rows, TableBytes: &size}.String()
	require.True(t, strings.HasSuffix(line, "completed 7  kept 0  troupe_jobs 42 rows, 8.0 KiB (8192 bytes)"), line)

	ptr := func(v int64) *int64 { return &v }
	samples := []SoakSample{{DirBytes: ptr(100)}, {DirBytes: ptr(4000)}, {DirBytes: ptr(50)}, {}, {DirBytes: ptr(3000)}}
	get := func(s SoakSample) *int64 { return s.DirBytes }
	require.Equal(t, "first 100 B, min 50 B, max 3.9 KiB, last 2.9 KiB", band(samples, get, humanBytes))
	require.Empty(t, band(samples, func(s SoakSample) *int64 { return s.Rows }, humanBytes), "no sample has rows")
}

func TestPgMeasure(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	schema := pgtest.RandomSchema(t)
	pgtest.DropSchemaOnCleanup(t, url, schema)
	conn, err := pgx.Connect(t.Context(), url)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(t.Context()) })
	table := pgx.Identifier{schema, "troupe_jobs"}.Sanitize()
	_, err = conn.Exec(t.Context(), "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()+"; CREATE TABLE "+table+" (id int PRIMARY KEY, body text)")
	require.NoError(t, err)

	measure := pgMeasure(conn, schema)
	var empty SoakSample
	require.NoError(t, measure(t.Context(), &empty))
	require.Equal(t, int64(0), *empty.Rows)

	_, err = conn.Exec(t.Context(), "INSERT INTO "+table+" SELECT g, repeat('x', 200) FROM generate_series(1, 500) g")
	require.NoError(t, err)
	var full SoakSample
	require.NoError(t, measure(t.Context(), &full))
	require.Equal(t, int64(500), *full.Rows)
	require.Greater(t, *full.TableBytes, *empty.TableBytes, "the table grew on disk")
	require.Nil(t, full.DirBytes)
}
