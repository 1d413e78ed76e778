package bench

import (
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
