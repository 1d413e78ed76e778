package http

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestTimestamp(t *testing.T) {
	t.Parallel()

	t.Run("UTCWithMicroseconds", func(t *testing.T) {
		t.Parallel()
		tests := map[string]time.Time{
			`"2025-03-01T09:30:00.123456Z"`: time.Date(2025, 3, 1, 9, 30, 0, 123456000, time.UTC),
			`"2025-03-01T09:30:00.000000Z"`: time.Date(2025, 3, 1, 9, 30, 0, 0, time.UTC),
			`"2025-03-01T08:30:00.500000Z"`: time.Date(2025, 3, 1, 9, 30, 0, 500000000, time.FixedZone("CET", 3600)),
		}
		for want, in := range tests {
			b, err := json.Marshal(Timestamp{in})
			require.NoError(t, err)
			require.Equal(t, want, string(b))

			var back Timestamp
			require.NoError(t, json.Unmarshal(b, &back))
			require.True(t, in.Equal(back.Time))
		}
	})

	t.Run("RejectsNonTimes", func(t *testing.T) {
		t.Parallel()
		var ts Timestamp
		require.Error(t, json.Unmarshal([]byte(`"yesterday"`), &ts))
		require.Error(t, json.Unmarshal([]byte(`12`), &ts))
	})

	t.Run("OmittedWhenZero", func(t *testing.T) {
		t.Parallel()
		b, err := json.Marshal(struct {
			At Timestamp `json:"at,omitzero"`
		}{})
		require.NoError(t, err)
		require.JSONEq(t, `{}`, string(b))
	})
}
