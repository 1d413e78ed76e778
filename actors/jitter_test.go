package actors

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestJitter(t *testing.T) {
	t.Parallel()

	t.Run("ZeroBackoffJittersFully", func(t *testing.T) {
		t.Parallel()
		b := Backoff{Base: time.Second, Max: time.Minute, Random: func() float64 { return 0.5 }}
		require.Equal(t, time.Second, b.Delay(2)) // 0.5 × 2s
	})

	t.Run("UnknownJitterIsRefused", func(t *testing.T) {
		t.Parallel()
		_, err := New(fakeStore(), WithRetryBackoff(time.Second, time.Minute, Jitter(7)))
		require.ErrorContains(t, err, "retry jitter")
	})
}
