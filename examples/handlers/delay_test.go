package handlers

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSampleDelay(t *testing.T) {
	t.Parallel()

	t.Run("default is jittered around DefaultSampleDelay, the same for one payload", func(t *testing.T) {
		t.Parallel()
		c := newSampleConfig(nil)
		seen := map[time.Duration]bool{}
		for i := range 50 {
			payload := fmt.Appendf(nil, `{"n":%d}`, i)
			d := c.delayFor(payload)
			require.GreaterOrEqual(t, d, DefaultSampleDelay*3/4)
			require.LessOrEqual(t, d, DefaultSampleDelay*5/4)
			require.Equal(t, d, c.delayFor(payload), "one payload, one delay")
			seen[d] = true
		}
		require.Greater(t, len(seen), 1, "different payloads should get different delays")
	})

	t.Run("WithDelay is exact", func(t *testing.T) {
		t.Parallel()
		c := newSampleConfig([]SampleOption{WithDelay(42 * time.Millisecond)})
		require.Equal(t, 42*time.Millisecond, c.delayFor([]byte(`{"a":1}`)))
		require.Equal(t, 42*time.Millisecond, c.delayFor([]byte(`{"b":2}`)))
	})

	t.Run("WithDelay of zero or less means no work", func(t *testing.T) {
		t.Parallel()
		require.Zero(t, newSampleConfig([]SampleOption{WithDelay(0)}).delayFor([]byte(`{}`)))
		require.Zero(t, newSampleConfig([]SampleOption{WithDelay(-time.Second)}).delayFor([]byte(`{}`)))
	})
}
