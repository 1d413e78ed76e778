package bench

import (
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestHelpers covers the arithmetic of the summary and the progress
// display.
func TestHelpers(t *testing.T) {
	t.Parallel()
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	require.Equal(t, &Latency{P50Ms: 50, P90Ms: 90, P99Ms: 99, MaxMs: 100}, summarizeLatency(ds))
	require.Equal(t, &Latency{P50Ms: 7, P90Ms: 7, P99Ms: 7, MaxMs: 7}, summarizeLatency([]time.Duration{7 * time.Millisecond}))
	require.Nil(t, summarizeLatency(nil))

	require.Equal(t, "["+strings.Repeat(".", progressBarWidth)+"]   0%", progressBar(-1))
	require.Equal(t, "["+strings.Repeat("#", progressBarWidth/2)+strings.Repeat(".", progressBarWidth/2)+"]  50%", progressBar(0.5))
	require.Equal(t, "["+strings.Repeat("#", progressBarWidth)+"] 100%", progressBar(2))
	require.False(t, isTerminal(&strings.Builder{}))

	stop := startProgress(&strings.Builder{}, func() (string, float64) { return "", 0 })
	stop()
	stop() // twice is harmless
}

// TestSummarySaysWhatWasMeasured covers the machine and store fields of
// the summary, in JSON and in the table.
func TestSummarySaysWhatWasMeasured(t *testing.T) {
	t.Parallel()
	pg := describe(&Summary{Mode: "burndown", Store: "postgres", Workers: 4, Errors: map[string]int64{}}, 2,
		storeFacts{synchronousCommit: "off", serverVersion: "17.2"}, DoneOutcomeCommitted, map[string]int64{"b": 3, "a": 7})
	var out strings.Builder
	require.NoError(t, pg.Write(&out, true))
	var got map[string]any
	require.NoError(t, json.Unmarshal([]byte(out.String()), &got))
	require.EqualValues(t, runtime.NumCPU(), got["cpus"])
	require.EqualValues(t, runtime.GOMAXPROCS(0), got["gomaxprocs"])
	require.EqualValues(t, 2, got["nodes"])
	require.Equal(t, "off", got["synchronousCommit"])
	require.Equal(t, "17.2", got["serverVersion"])
	require.Equal(t, "outcome committed", got["doneWhen"])
	require.Equal(t, map[string]any{"a": 7.0, "b": 3.0}, got["completedByNode"])
	require.NotContains(t, got, "durability")

	out.Reset()
	require.NoError(t, pg.Write(&out, false))
	for _, row := range []string{
		"store      postgres, PostgreSQL 17.2, synchronous_commit off\n",
		"nodes      2 (completed: a 7, b 3)\n",
		fmt.Sprintf("cpus       %d (GOMAXPROCS %d)\n", runtime.NumCPU(), runtime.GOMAXPROCS(0)),
		"done when  outcome committed\n",
	} {
		require.Contains(t, out.String(), row)
	}

	badger := describe(&Summary{Mode: "steady", Store: "badger"}, 1, storeFacts{durability: "sync-all"}, DoneOutcomeCommitted, nil)
	out.Reset()
	require.NoError(t, badger.Write(&out, false))
	require.Contains(t, out.String(), "store          badger, durability sync-all\n")
	require.Contains(t, out.String(), "nodes          1\n")
}
