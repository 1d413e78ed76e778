package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestBenchExternal(t *testing.T) {
	t.Parallel()

	t.Run("works the jobs off through the protocol, on badger by default", func(t *testing.T) {
		t.Parallel()
		dir := filepath.Join(t.TempDir(), "data")
		summary := benchJSON(t, "external", "-n", "600", "--clients", "3", "--batch", "20", "--round-trips", "20", "--data-dir", dir,
			"--durability", "sync-all")
		require.Equal(t, "external", summary["mode"])
		require.Equal(t, "badger", summary["store"])
		require.Equal(t, "sync-all", summary["durability"])
		requireMeasured(t, summary, 1)
		require.EqualValues(t, 600, summary["jobs"])
		require.EqualValues(t, 600, summary["completed"], "every outcome committed")
		require.EqualValues(t, 3, summary["externalWorkers"])
		require.EqualValues(t, 20, summary["batch"])
		require.EqualValues(t, 20, summary["roundTrips"])
		require.Greater(t, summary["jobsPerSecond"], 0.0)
		require.Greater(t, summary["cpuSeconds"], 0.0)
		requireLatency(t, summary, "latency")
		entries, err := os.ReadDir(dir)
		require.NoError(t, err)
		require.NotEmpty(t, entries, "the store was in --data-dir")
	})

	t.Run("on memory, without round trips", func(t *testing.T) {
		t.Parallel()
		summary := benchJSON(t, "external", "--store", "memory", "-n", "100", "--round-trips", "0")
		require.Equal(t, "memory", summary["store"])
		require.EqualValues(t, 100, summary["completed"])
		require.NotContains(t, summary, "durability")
		require.NotContains(t, summary, "latency")
	})

	t.Run("bad flags are refused", func(t *testing.T) {
		t.Parallel()
		for _, tt := range []struct {
			args []string
			want string
		}{
			{[]string{"-n", "0"}, "invalid --jobs 0"},
			{[]string{"--clients", "0"}, "invalid --clients 0"},
			{[]string{"--batch", "101"}, "invalid --batch 101: must be from 1 to 100"},
			{[]string{"--round-trips", "-1"}, "invalid --round-trips -1"},
			{[]string{"--store", "postgres", "--database-url", "postgres://x/y"}, "bench external runs on badger or memory"},
			{[]string{"--durability", "fast"}, `invalid --durability "fast"`},
			{[]string{"--store", "memory", "--durability", "none"}, "--durability applies to --store badger, not memory"},
			{[]string{"--nodes", "2"}, "--nodes 2 needs --store postgres, not badger"},
		} {
			code, _, stderr := runBench(t, nil, append([]string{"external"}, tt.args...)...)
			require.Equal(t, 1, code, tt.args)
			require.Contains(t, stderr, tt.want, tt.args)
		}
	})
}
