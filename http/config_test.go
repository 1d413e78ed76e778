package http

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestConfig(t *testing.T) {
	t.Parallel()

	t.Run("Defaults", func(t *testing.T) {
		t.Parallel()
		cfg := Config{}.WithDefaults()

		require.Equal(t, "127.0.0.1:8080", cfg.Addr)
		require.Equal(t, int64(1<<20), cfg.MaxBodyBytes)
		require.Equal(t, int64(8<<20), cfg.BatchMaxBodyBytes)
		require.Equal(t, int64(1<<20), cfg.MaxPayloadBytes)
		require.Equal(t, 10*time.Second, cfg.ShutdownTimeout)
		require.Equal(t, 24*time.Hour, cfg.IdempotencyTTL)
		require.Empty(t, cfg.APITokens)
		require.False(t, cfg.Insecure)
		require.NoError(t, cfg.Validate(), "the defaults are valid")
	})

	t.Run("DefaultsKeepSetFields", func(t *testing.T) {
		t.Parallel()
		in := Config{Addr: "127.0.0.1:9", APITokens: []string{"t"}, Insecure: true, MaxBodyBytes: 10, BatchMaxBodyBytes: 20, MaxPayloadBytes: 5, ShutdownTimeout: time.Second, IdempotencyTTL: time.Hour}

		require.Equal(t, in, in.WithDefaults())
	})

	t.Run("Valid", func(t *testing.T) {
		t.Parallel()
		tests := map[string]Config{
			"IPv4Loopback":          {Addr: "127.0.0.1:8080"},
			"OtherIPv4Loopback":     {Addr: "127.1.2.3:8080"},
			"IPv6Loopback":          {Addr: "[::1]:8080"},
			"Localhost":             {Addr: "localhost:8080"},
			"LocalhostUpperCase":    {Addr: "LOCALHOST:8080"},
			"PortZero":              {Addr: "127.0.0.1:0"},
			"AllInterfacesTokens":   {Addr: ":8080", APITokens: []string{"s3cret"}},
			"PublicWithTokens":      {Addr: "0.0.0.0:8080", APITokens: []string{"a", "b"}},
			"PublicInsecure":        {Addr: "0.0.0.0:8080", Insecure: true},
			"AllInterfacesInsecure": {Addr: ":8080", Insecure: true},
		}
		for name, cfg := range tests {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				require.NoError(t, cfg.WithDefaults().Validate())
			})
		}
	})

	t.Run("OpenOnNonLoopbackIsRefused", func(t *testing.T) {
		t.Parallel()
		for _, addr := range []string{":8080", "0.0.0.0:8080", "[::]:8080", "192.168.1.10:8080", "example.com:80", "127.0.0.1.example.com:80"} {
			t.Run(addr, func(t *testing.T) {
				t.Parallel()
				err := Config{Addr: addr}.WithDefaults().Validate()

				require.ErrorIs(t, err, ErrInsecureAddr)
				require.Contains(t, err.Error(), addr)
				require.Contains(t, err.Error(), "APITokens")
				require.Contains(t, err.Error(), "Insecure")
				require.NotContains(t, err.Error(), "TROUPE_", "the library names its own fields, not a program's options")
			})
		}
	})

	t.Run("Invalid", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			name string
			cfg  Config
			want string
		}{
			{"NoPort", Config{Addr: "127.0.0.1"}, "Addr"},
			{"PortNotANumber", Config{Addr: "127.0.0.1:http"}, `invalid Addr "127.0.0.1:http": port "http" is not a number`},
			{"NegativeBody", Config{MaxBodyBytes: -1}, "MaxBodyBytes"},
			{"NegativeBatchBody", Config{BatchMaxBodyBytes: -1}, "BatchMaxBodyBytes"},
			{"NegativePayload", Config{MaxPayloadBytes: -1}, "MaxPayloadBytes"},
			{"NegativeShutdown", Config{ShutdownTimeout: -time.Second}, "ShutdownTimeout"},
			{"ShortIdempotencyTTL", Config{IdempotencyTTL: time.Second}, "IdempotencyTTL"},
			{"EmptyToken", Config{APITokens: []string{"ok", ""}}, "APITokens[1]"},
			{"TokenWithSpace", Config{APITokens: []string{"a b"}}, "APITokens[0]"},
			{"TokenWithNewline", Config{APITokens: []string{"a\n"}}, "APITokens[0]"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				err := tt.cfg.WithDefaults().Validate()

				require.Error(t, err)
				require.Contains(t, err.Error(), tt.want)
			})
		}
	})

	t.Run("EveryFieldIsReportedByName", func(t *testing.T) {
		t.Parallel()
		err := Config{Addr: "localhost", MaxPayloadBytes: -1, APITokens: []string{"ok", "has space"}}.WithDefaults().Validate()

		var fields []*ConfigError
		for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
			var ce *ConfigError
			require.ErrorAs(t, e, &ce)
			fields = append(fields, ce)
		}
		require.Equal(t, []*ConfigError{
			{Field: "Addr", Index: -1, Value: "localhost", Reason: "want host:port, such as 127.0.0.1:8080"},
			{Field: "MaxPayloadBytes", Index: -1, Value: int64(-1), Reason: "must be at least 1"},
			{Field: "APITokens", Index: 1, Reason: "contains white space or control characters, which cannot be sent in a header"},
		}, fields)
		require.NotContains(t, err.Error(), "has space", "tokens are secrets")
	})

	t.Run("NewServerValidates", func(t *testing.T) {
		t.Parallel()
		_, err := NewServer(Config{Addr: "0.0.0.0:8080"}, &fakeService{t: t})

		require.ErrorIs(t, err, ErrInsecureAddr)
	})
}

func TestIsLoopback(t *testing.T) {
	t.Parallel()
	tests := map[string]bool{
		"localhost":       true,
		"127.0.0.1":       true,
		"127.255.255.254": true,
		"::1":             true,
		"[::1]":           true,
		"":                false,
		"0.0.0.0":         false,
		"::":              false,
		"10.0.0.1":        false,
		"128.0.0.1":       false,
		"localhost.":      false,
		"my-host":         false,
	}
	for host, want := range tests {
		t.Run(host, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, want, IsLoopback(host))
		})
	}
}
