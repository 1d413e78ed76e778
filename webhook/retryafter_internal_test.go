package webhook

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestRetryAfterHeader(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		value string
		want  time.Duration
		ok    bool
	}{
		{"", 0, false},
		{"0", 0, true},
		{" 30 ", 30 * time.Second, true},
		{"3600", time.Hour, true},
		{"3601", time.Hour, true},
		{"99999999999999999", time.Hour, true},
		{"-5", 0, false},
		{"soon", 0, false},
		{"1.5", 0, false},
		{"Fri, 01 May 2026 12:02:00 GMT", 2 * time.Minute, true},
		{"Fri, 01 May 2026 11:00:00 GMT", 0, true}, // past: at once
		{"Sat, 02 May 2026 12:00:00 GMT", time.Hour, true},
		{"Friday, 01-May-26 12:00:30 GMT", 30 * time.Second, true}, // RFC 850, still valid HTTP
	} {
		got, ok := retryAfter(tc.value, now)
		require.Equal(t, tc.ok, ok, tc.value)
		require.Equal(t, tc.want, got, tc.value)
	}
}

func TestSnippet(t *testing.T) {
	t.Parallel()
	require.Empty(t, snippet(nil))
	require.Empty(t, snippet([]byte(" \n")))
	require.Equal(t, ": bad \uFFFD", snippet([]byte("bad \xff")))
	long := make([]byte, 3000)
	for i := range long {
		long[i] = 'a'
	}
	require.Len(t, snippet(long), 2+MaxErrorBody)
}
