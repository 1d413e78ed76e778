package main

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRun(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), &out))
	require.Equal(t, `greet: completed after 1 attempt(s)
greet: completed after 1 attempt(s)
flaky: completed after 2 attempt(s) (last error: connection reset)
`, out.String())
}
