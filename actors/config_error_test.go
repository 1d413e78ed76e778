package actors

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestConfigValidateReportsEveryFieldByName(t *testing.T) {
	t.Parallel()
	cfg := Config{}.WithDefaults()
	cfg.Workers, cfg.RetryBaseDelay, cfg.RetryMaxDelay, cfg.Node = 0, time.Minute, time.Second, ""

	err := cfg.Validate()

	var fields []*ConfigError
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var ce *ConfigError
		require.True(t, errors.As(e, &ce), "%v is a *ConfigError", e)
		fields = append(fields, ce)
	}
	require.Equal(t, []*ConfigError{
		{Field: "Workers", Value: 0, Reason: "must be at least 1"},
		{Field: "RetryMaxDelay", Value: time.Second, Reason: "must not be below", Than: "RetryBaseDelay", ThanValue: time.Minute},
		{Field: "Node", Value: "", Reason: "must not be empty"},
	}, fields)
	require.EqualError(t, fields[1], "retry max delay must not be below retry base delay (1m0s), got 1s")
	require.EqualError(t, fields[2], `node must not be empty, got ""`)
}
