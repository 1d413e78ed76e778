package actors

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestBackoff_Delay(t *testing.T) {
	t.Parallel()

	t.Run("DoublesFromBaseUpToMax", func(t *testing.T) {
		t.Parallel()
		b := Backoff{Base: time.Second, Max: 10 * time.Second, Jitter: NoJitter}
		want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}
		for i, w := range want {
			require.Equal(t, w, b.Delay(i+1), "attempt %d", i+1)
		}
	})

	t.Run("HugeAttemptStaysAtMax", func(t *testing.T) {
		t.Parallel()
		b := Backoff{Base: time.Second, Max: time.Hour, Jitter: NoJitter}
		for _, attempt := range []int{40, 62, 63, 64, 1000} {
			require.Equal(t, time.Hour, b.Delay(attempt), "attempt %d", attempt)
		}
	})

	t.Run("AttemptBelowOneCountsAsOne", func(t *testing.T) {
		t.Parallel()
		b := Backoff{Base: time.Second, Max: time.Hour, Jitter: NoJitter}
		require.Equal(t, time.Second, b.Delay(0))
	})

	t.Run("FullJitterScalesTheDelay", func(t *testing.T) {
		t.Parallel()
		b := Backoff{Base: time.Second, Max: time.Minute, Jitter: FullJitter, Random: func() float64 { return 0.25 }}
		require.Equal(t, time.Second, b.Delay(3)) // 0.25 × 4s
	})

	t.Run("JitterStaysWithinWindow", func(t *testing.T) {
		t.Parallel()
		b := Backoff{Base: 100 * time.Millisecond, Max: time.Second, Jitter: FullJitter}
		for attempt := 1; attempt < 10; attempt++ {
			d := b.Delay(attempt)
			require.GreaterOrEqual(t, d, time.Duration(0))
			require.LessOrEqual(t, d, time.Second)
		}
	})
}

func TestConfig(t *testing.T) {
	t.Parallel()

	t.Run("Defaults", func(t *testing.T) {
		t.Parallel()
		c := Config{}.WithDefaults()
		require.Equal(t, WorkersDefault(), c.Workers)
		require.Equal(t, 100_000, c.QueueSize)
		require.Equal(t, 3, c.MaxAttempts)
		require.Equal(t, time.Second, c.RetryBaseDelay)
		require.Equal(t, 5*time.Minute, c.RetryMaxDelay)
		require.Equal(t, FullJitter, c.RetryJitter)
		require.Equal(t, 5*time.Second, c.HandBackTimeout)
		require.Equal(t, 30*time.Second, c.ShutdownTimeout)
		require.NoError(t, c.Validate())
	})

	t.Run("ValidateNamesTheField", func(t *testing.T) {
		t.Parallel()
		cases := map[string]Config{
			"workers":          {Workers: -1},
			"queue size":       {QueueSize: -5},
			"max attempts":     {MaxAttempts: -1},
			"retry max delay":  {RetryBaseDelay: time.Minute, RetryMaxDelay: time.Second},
			"retry base delay": {RetryBaseDelay: -time.Second},
		}
		for field, cfg := range cases {
			err := cfg.WithDefaults().Validate()
			require.ErrorContains(t, err, field)
		}
	})

	t.Run("NewRejectsBadOptions", func(t *testing.T) {
		t.Parallel()
		_, err := New(nil)
		require.Error(t, err)
		_, err = New(fakeStore(), WithWorkers(-1))
		require.ErrorContains(t, err, "workers")
		_, err = New(fakeStore(), WithRetryBackoff(time.Minute, time.Second, FullJitter))
		require.ErrorContains(t, err, "retry max delay")
	})
}
