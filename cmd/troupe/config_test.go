package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/actors"
	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/http"
)

// loadConfig parses args as serve's flags and loads the configuration
// with the environment environ.
func loadConfig(t *testing.T, args []string, environ ...string) (Config, error) {
	t.Helper()
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	AddServeFlags(fs, DefaultConfig())
	require.NoError(t, fs.Parse(args))
	return LoadConfig(fs, environ)
}

// writeFile writes a YAML config file and returns its path.
func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "troupe.yaml")
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}

func TestConfigDefaults(t *testing.T) {
	t.Parallel()

	t.Run("DefaultConfig is the table of DESIGN.md", func(t *testing.T) {
		t.Parallel()
		cfg := DefaultConfig()
		require.Equal(t, "127.0.0.1:8080", cfg.HTTPAddr)
		require.Equal(t, StoreBadger, cfg.Store)
		require.Equal(t, "./data", cfg.DataDir)
		require.Empty(t, cfg.DatabaseURL)
		require.Equal(t, "public", cfg.DatabaseSchema)
		require.Zero(t, cfg.DatabaseMaxConns)
		require.Empty(t, cfg.Node, "hostname-pid, filled in by the runtime")
		require.Equal(t, 30*time.Second, cfg.LeaseDuration)
		require.Equal(t, 10*time.Second, cfg.RescueInterval)
		require.Equal(t, time.Second, cfg.PollInterval)
		require.Equal(t, "full", cfg.Durability)
		require.Equal(t, actors.WorkersDefault(), cfg.Workers)
		require.Equal(t, 100_000, cfg.QueueSize)
		require.Equal(t, 3, cfg.MaxAttempts)
		require.Equal(t, time.Second, cfg.RetryBaseDelay)
		require.Equal(t, 5*time.Minute, cfg.RetryMaxDelay)
		require.True(t, cfg.RetryJitter)
		require.Equal(t, 30*time.Second, cfg.ShutdownTimeout)
		require.Equal(t, "info", cfg.LogLevel)
		require.Equal(t, "json", cfg.LogFormat)
		require.Empty(t, cfg.APITokens)
		require.False(t, cfg.Insecure)
		require.Equal(t, int64(1<<20), cfg.MaxBodyBytes)
		require.Equal(t, int64(1<<20), cfg.MaxPayloadBytes)
		require.True(t, cfg.Demo)
		require.Empty(t, cfg.QueueLimits)
		require.Equal(t, 30*time.Minute, cfg.JobTimeout)
		require.Equal(t, 24*time.Hour, cfg.IdempotencyTTL)
		require.Equal(t, 24*time.Hour, cfg.RetentionCompleted)
		require.Equal(t, 168*time.Hour, cfg.RetentionFailed)
		require.Equal(t, 168*time.Hour, cfg.RetentionCanceled)
		require.Empty(t, cfg.Schedules)
		require.NoError(t, cfg.Validate())
	})

	t.Run("nothing set loads the defaults", func(t *testing.T) {
		t.Parallel()
		cfg, err := loadConfig(t, nil)
		require.NoError(t, err)
		require.Equal(t, DefaultConfig(), cfg)
	})

	t.Run("variables that are not options are ignored", func(t *testing.T) {
		t.Parallel()
		cfg, err := loadConfig(t, nil, "TROUPE_API_TOKEN=client-side", "TROUPE_NOPE=1", "HOME=/root", "WORKERS=7")
		require.NoError(t, err)
		require.Equal(t, DefaultConfig(), cfg)
	})

	t.Run("an empty variable is unset", func(t *testing.T) {
		t.Parallel()
		cfg, err := loadConfig(t, nil, "TROUPE_WORKERS=", "TROUPE_STORE=")
		require.NoError(t, err)
		require.Equal(t, DefaultConfig(), cfg)
	})

	t.Run("sync_writes, replaced by durability, is refused with the way over", func(t *testing.T) {
		t.Parallel()
		_, err := loadConfig(t, nil, "TROUPE_SYNC_WRITES=true")
		require.ErrorContains(t, err, "TROUPE_SYNC_WRITES=true: replaced by durability (TROUPE_DURABILITY)")
		require.ErrorContains(t, err, "sync-all fsyncs every write (the old true)")
		_, err = loadConfig(t, []string{"--config", writeFile(t, "sync_writes: false\n")})
		require.ErrorContains(t, err, `key "sync_writes": replaced by durability`)
	})
}

func TestConfigEveryOptionHasAFlagAnEnvAndAKey(t *testing.T) {
	t.Parallel()
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	AddServeFlags(fs, DefaultConfig())
	require.NotNil(t, fs.Lookup("config"))
	fields := configFields()
	require.Len(t, fields, 35)
	for _, f := range fields {
		require.NotEmpty(t, f.key)
		require.Equal(t, strings.ToLower(f.key), f.key, "keys are snake_case")
		flag := fs.Lookup(flagName(f.key))
		require.NotNil(t, flag, "option %s has no flag", f.key)
		require.Contains(t, flag.Usage, "(env "+envName(f.key)+")")
	}
}

func TestConfigSources(t *testing.T) {
	t.Parallel()

	// every sets each option away from its default, in each source's syntax.
	want := Config{
		HTTPAddr:           "127.0.0.1:9999",
		Store:              StorePostgres,
		DataDir:            "/var/lib/troupe",
		DatabaseURL:        "postgres://troupe@db/troupe",
		DatabaseSchema:     "jobs",
		DatabaseMaxConns:   12,
		Node:               "node-a",
		LeaseDuration:      20 * time.Second,
		RescueInterval:     5 * time.Second,
		PollInterval:       500 * time.Millisecond,
		Durability:         "sync-all",
		MinFreeBytes:       64 << 20,
		Workers:            7,
		QueueSize:          42,
		QueueLimits:        QueueLimits{"email": 2, "reports": 1},
		MaxAttempts:        9,
		RetryBaseDelay:     250 * time.Millisecond,
		RetryMaxDelay:      time.Minute,
		RetryJitter:        false,
		JobTimeout:         5 * time.Minute,
		RetentionCompleted: 30 * time.Second,
		RetentionFailed:    0,
		RetentionCanceled:  72 * time.Hour,
		ShutdownTimeout:    90 * time.Second,
		LogLevel:           "debug",
		LogFormat:          "text",
		APITokens:          []string{"alpha", "beta"},
		WorkerTokens:       []string{"gamma"},
		Insecure:           true,
		MaxBodyBytes:       2048,
		MaxPayloadBytes:    512,
		MaxResultBytes:     4096,
		IdempotencyTTL:     time.Hour,
		Demo:               false,
		ExternalTypes:      []string{"resize_image", "transcode"},
	}

	t.Run("file", func(t *testing.T) {
		t.Parallel()
		path := writeFile(t, `
http_addr: 127.0.0.1:9999
store: postgres
data_dir: /var/lib/troupe
database_url: postgres://troupe@db/troupe
database_schema: jobs
database_max_conns: 12
node: node-a
lease_duration: 20s
rescue_interval: 5s
poll_interval: 500ms
durability: sync-all
min_free_bytes: 67108864
workers: 7
queue_size: 42
queue_limits:
  email: 2
  reports: 1
max_attempts: 9
retry_base_delay: 250ms
retry_max_delay: 1m
retry_jitter: false
job_timeout: 5m
retention:
  completed: 30s
  failed: 0
  canceled: 72h
shutdown_timeout: 90s
log_level: debug
log_format: text
api_tokens: [alpha, beta]
worker_tokens: [gamma]
insecure: true
max_body_bytes: 2048
max_payload_bytes: 512
max_result_bytes: 4096
idempotency_ttl: 1h
demo: false
external_types: [resize_image, transcode]
`)
		cfg, err := loadConfig(t, []string{"--config", path})
		require.NoError(t, err)
		require.Equal(t, want, cfg)
	})

	t.Run("queue limits as one string in the file", func(t *testing.T) {
		t.Parallel()
		path := writeFile(t, "queue_limits: email=2,reports=1\n")
		cfg, err := loadConfig(t, []string{"--config", path})
		require.NoError(t, err)
		require.Equal(t, QueueLimits{"email": 2, "reports": 1}, cfg.QueueLimits)
		require.Equal(t, "email=2,reports=1", cfg.QueueLimits.String())
	})

	t.Run("file named by TROUPE_CONFIG, tokens as one string", func(t *testing.T) {
		t.Parallel()
		path := writeFile(t, "workers: 7\napi_tokens: alpha, beta\n")
		cfg, err := loadConfig(t, nil, "TROUPE_CONFIG="+path)
		require.NoError(t, err)
		require.Equal(t, 7, cfg.Workers)
		require.Equal(t, []string{"alpha", "beta"}, cfg.APITokens)
	})

	t.Run("environment", func(t *testing.T) {
		t.Parallel()
		cfg, err := loadConfig(t, nil,
			"TROUPE_HTTP_ADDR=127.0.0.1:9999",
			"TROUPE_STORE=postgres",
			"TROUPE_DATA_DIR=/var/lib/troupe",
			"TROUPE_DATABASE_URL=postgres://troupe@db/troupe",
			"TROUPE_DATABASE_SCHEMA=jobs",
			"TROUPE_DATABASE_MAX_CONNS=12",
			"TROUPE_NODE=node-a",
			"TROUPE_LEASE_DURATION=20s",
			"TROUPE_RESCUE_INTERVAL=5s",
			"TROUPE_POLL_INTERVAL=500ms",
			"TROUPE_DURABILITY=sync-all",
			"TROUPE_MIN_FREE_BYTES=67108864",
			"TROUPE_WORKERS=7",
			"TROUPE_QUEUE_SIZE=42",
			"TROUPE_QUEUE_LIMITS=email=2, reports=1,",
			"TROUPE_MAX_ATTEMPTS=9",
			"TROUPE_RETRY_BASE_DELAY=250ms",
			"TROUPE_RETRY_MAX_DELAY=1m",
			"TROUPE_RETRY_JITTER=false",
			"TROUPE_JOB_TIMEOUT=5m",
			"TROUPE_RETENTION_COMPLETED=30s",
			"TROUPE_RETENTION_FAILED=0",
			"TROUPE_RETENTION_CANCELED=72h",
			"TROUPE_SHUTDOWN_TIMEOUT=90s",
			"TROUPE_LOG_LEVEL=debug",
			"TROUPE_LOG_FORMAT=text",
			"TROUPE_API_TOKENS=alpha, beta,",
			"TROUPE_INSECURE=true",
			"TROUPE_MAX_BODY_BYTES=2048",
			"TROUPE_MAX_PAYLOAD_BYTES=512",
			"TROUPE_IDEMPOTENCY_TTL=1h",
			"TROUPE_DEMO=false",
			"TROUPE_WORKER_TOKENS=gamma",
			"TROUPE_MAX_RESULT_BYTES=4096",
			"TROUPE_EXTERNAL_TYPES=resize_image,transcode",
		)
		require.NoError(t, err)
		require.Equal(t, want, cfg)
	})

	t.Run("flags", func(t *testing.T) {
		t.Parallel()
		cfg, err := loadConfig(t, []string{
			"--http-addr", "127.0.0.1:9999",
			"--store", "postgres",
			"--data-dir", "/var/lib/troupe",
			"--database-url", "postgres://troupe@db/troupe",
			"--database-schema", "jobs",
			"--database-max-conns", "12",
			"--node", "node-a",
			"--lease-duration", "20s",
			"--rescue-interval", "5s",
			"--poll-interval", "500ms",
			"--durability=sync-all",
			"--min-free-bytes", "67108864",
			"--workers", "7",
			"--queue-size", "42",
			"--queue-limits", "email=2,reports=1",
			"--max-attempts", "9",
			"--retry-base-delay", "250ms",
			"--retry-max-delay", "1m",
			"--retry-jitter=false",
			"--job-timeout", "5m",
			"--retention-completed", "30s",
			"--retention-failed", "0",
			"--retention-canceled", "72h",
			"--shutdown-timeout", "90s",
			"--log-level", "debug",
			"--log-format", "text",
			"--api-tokens", "alpha", "--api-tokens", "beta",
			"--insecure",
			"--max-body-bytes", "2048",
			"--max-payload-bytes", "512",
			"--idempotency-ttl", "1h",
			"--demo=false",
			"--worker-tokens", "gamma",
			"--max-result-bytes", "4096",
			"--external-types", "resize_image,transcode",
		})
		require.NoError(t, err)
		require.Equal(t, want, cfg)
	})
}

func TestConfigPrecedence(t *testing.T) {
	t.Parallel()
	path := writeFile(t, "workers: 2\nqueue_size: 20\nmax_attempts: 5\nlog_format: text\n")

	cfg, err := loadConfig(t,
		[]string{"--config", path, "--workers", "4"},
		"TROUPE_WORKERS=3", "TROUPE_QUEUE_SIZE=30")
	require.NoError(t, err)
	require.Equal(t, 4, cfg.Workers, "a flag beats the environment and the file")
	require.Equal(t, 30, cfg.QueueSize, "the environment beats the file")
	require.Equal(t, 5, cfg.MaxAttempts, "the file beats the default")
	require.Equal(t, "text", cfg.LogFormat, "the file beats the default")
	require.Equal(t, actors.RetryBaseDelayDefault, cfg.RetryBaseDelay, "the default when nothing is set")

	cfg, err = loadConfig(t, []string{"--config", path}, "TROUPE_WORKERS=3")
	require.NoError(t, err)
	require.Equal(t, 3, cfg.Workers, "a flag's default does not beat the environment")

	cfg, err = loadConfig(t, []string{"--config", path})
	require.NoError(t, err)
	require.Equal(t, 2, cfg.Workers, "a flag's default does not beat the file")

	cfg, err = loadConfig(t, []string{"--workers", "6"}, "TROUPE_CONFIG="+path)
	require.NoError(t, err)
	require.Equal(t, 6, cfg.Workers)
	require.Equal(t, 20, cfg.QueueSize)

	other := writeFile(t, "workers: 9\n")
	cfg, err = loadConfig(t, []string{"--config", other}, "TROUPE_CONFIG="+path)
	require.NoError(t, err)
	require.Equal(t, 9, cfg.Workers, "--config beats TROUPE_CONFIG")
	require.Equal(t, actors.QueueSizeDefault, cfg.QueueSize)

	cfg, err = loadConfig(t, []string{"--demo=true"}, "TROUPE_DEMO=false")
	require.NoError(t, err)
	require.True(t, cfg.Demo, "a flag set to its default still wins")
}

func TestConfigErrorsNameTheOption(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name    string
		args    []string
		env     []string
		file    string
		wantErr string
	}{
		{name: "min free bytes too small", env: []string{"TROUPE_MIN_FREE_BYTES=1048576"}, wantErr: `invalid TROUPE_MIN_FREE_BYTES 1048576: must be 0 (derived) or at least 28521264`},
		{name: "workers not a number", env: []string{"TROUPE_WORKERS=abc"}, wantErr: `invalid TROUPE_WORKERS "abc": want a whole number`},
		{name: "workers zero", env: []string{"TROUPE_WORKERS=0"}, wantErr: `invalid TROUPE_WORKERS 0: must be at least 1`},
		{name: "workers zero from a flag", args: []string{"--workers", "0"}, wantErr: `invalid --workers 0: must be at least 1`},
		{name: "workers from the file", file: "workers: abc\n", wantErr: `invalid workers (in `},
		{name: "store unknown", env: []string{"TROUPE_STORE=x"}, wantErr: `invalid TROUPE_STORE "x": must be one of badger, memory, postgres`},
		{name: "postgres without a URL", env: []string{"TROUPE_STORE=postgres"}, wantErr: `TROUPE_DATABASE_URL is required when TROUPE_STORE=postgres`},
		{name: "postgres without a URL, by flag", args: []string{"--store", "postgres"}, wantErr: `TROUPE_DATABASE_URL is required when --store=postgres`},
		{name: "badger without a directory", args: []string{"--data-dir", " "}, wantErr: `--data-dir must not be empty when TROUPE_STORE=badger`},
		{name: "queue size", env: []string{"TROUPE_QUEUE_SIZE=-1"}, wantErr: `invalid TROUPE_QUEUE_SIZE -1: must be at least 1`},
		{name: "max attempts zero", env: []string{"TROUPE_MAX_ATTEMPTS=0"}, wantErr: `invalid TROUPE_MAX_ATTEMPTS 0: must be from 1 to 1000`},
		{name: "max attempts too many", env: []string{"TROUPE_MAX_ATTEMPTS=1001"}, wantErr: `invalid TROUPE_MAX_ATTEMPTS 1001`},
		{name: "duration without a unit", env: []string{"TROUPE_RETRY_BASE_DELAY=10"}, wantErr: `invalid TROUPE_RETRY_BASE_DELAY "10": want a duration with a unit`},
		{name: "duration as a bare number in the file", file: "retry_base_delay: 10\n", wantErr: `invalid retry_base_delay (in `},
		{name: "base delay zero", env: []string{"TROUPE_RETRY_BASE_DELAY=0s"}, wantErr: `invalid TROUPE_RETRY_BASE_DELAY 0s: must be positive`},
		{name: "max delay below base", env: []string{"TROUPE_RETRY_BASE_DELAY=10s", "TROUPE_RETRY_MAX_DELAY=1s"}, wantErr: `invalid TROUPE_RETRY_MAX_DELAY 1s: must not be below TROUPE_RETRY_BASE_DELAY (10s)`},
		{name: "jitter not a bool", env: []string{"TROUPE_RETRY_JITTER=maybe"}, wantErr: `invalid TROUPE_RETRY_JITTER "maybe": want true or false`},
		{name: "demo not a bool", env: []string{"TROUPE_DEMO=2"}, wantErr: `invalid TROUPE_DEMO "2": want true or false`},
		{name: "insecure not a bool", env: []string{"TROUPE_INSECURE=on"}, wantErr: `invalid TROUPE_INSECURE "on": want true or false`},
		{name: "shutdown timeout", env: []string{"TROUPE_SHUTDOWN_TIMEOUT=-1s"}, wantErr: `invalid TROUPE_SHUTDOWN_TIMEOUT -1s: must be positive`},
		{name: "log level", env: []string{"TROUPE_LOG_LEVEL=verbose"}, wantErr: `invalid TROUPE_LOG_LEVEL "verbose": must be one of debug, info, warn, error`},
		{name: "log format", env: []string{"TROUPE_LOG_FORMAT=xml"}, wantErr: `invalid TROUPE_LOG_FORMAT "xml": must be one of json, text`},
		{name: "body limit", env: []string{"TROUPE_MAX_BODY_BYTES=0"}, wantErr: `invalid TROUPE_MAX_BODY_BYTES 0: must be at least 1`},
		{name: "payload limit", env: []string{"TROUPE_MAX_PAYLOAD_BYTES=0"}, wantErr: `invalid TROUPE_MAX_PAYLOAD_BYTES 0: must be at least 1`},
		{name: "address without a port", env: []string{"TROUPE_HTTP_ADDR=localhost"}, wantErr: `invalid TROUPE_HTTP_ADDR "localhost": want host:port`},
		{name: "address with a bad port", env: []string{"TROUPE_HTTP_ADDR=127.0.0.1:http"}, wantErr: `invalid TROUPE_HTTP_ADDR "127.0.0.1:http": port "http" is not a number`},
		{name: "open API on the network", env: []string{"TROUPE_HTTP_ADDR=0.0.0.0:8080"}, wantErr: "TROUPE_API_TOKENS"},
		{name: "queue limits without =", env: []string{"TROUPE_QUEUE_LIMITS=email:2"}, wantErr: `invalid TROUPE_QUEUE_LIMITS "email:2": "email:2" has no =; want name=limit pairs separated by commas, such as email=2,reports=1`},
		{name: "queue limit not a number", args: []string{"--queue-limits", "email=two"}, wantErr: `invalid --queue-limits "email=two": the limit of queue "email" is not a whole number`},
		{name: "queue limit zero", env: []string{"TROUPE_QUEUE_LIMITS=email=0"}, wantErr: `invalid TROUPE_QUEUE_LIMITS "email=0": must be at least 1`},
		{name: "queue limit bad name", env: []string{"TROUPE_QUEUE_LIMITS=E-mail=1"}, wantErr: `invalid TROUPE_QUEUE_LIMITS "E-mail": names no valid queue`},
		{name: "queue limits twice", env: []string{"TROUPE_QUEUE_LIMITS=a=1,a=2"}, wantErr: `queue "a" appears twice`},
		{name: "queue limit in the file", file: "queue_limits:\n  email: many\n", wantErr: `invalid queue_limits (in `},
		{name: "job timeout negative", env: []string{"TROUPE_JOB_TIMEOUT=-1s"}, wantErr: `invalid TROUPE_JOB_TIMEOUT -1s: must be 0 (none) or more`},
		{name: "job timeout without a unit", env: []string{"TROUPE_JOB_TIMEOUT=30"}, wantErr: `invalid TROUPE_JOB_TIMEOUT "30": want a duration with a unit`},
		{name: "idempotency TTL too short", env: []string{"TROUPE_IDEMPOTENCY_TTL=1s"}, wantErr: `invalid TROUPE_IDEMPOTENCY_TTL 1s: must be at least 1m`},
		{name: "retention negative", env: []string{"TROUPE_RETENTION_FAILED=-1h"}, wantErr: `invalid TROUPE_RETENTION_FAILED -1h0m0s: must be 0 (keep for ever) or more`},
		{name: "retention without a unit", env: []string{"TROUPE_RETENTION_COMPLETED=30"}, wantErr: `invalid TROUPE_RETENTION_COMPLETED "30": want a duration with a unit`},
		{name: "retention in the file, nested", file: "retention:\n  canceled: -1s\n", wantErr: `invalid retention.canceled (in `},
		{name: "retention twice in the file", file: "retention:\n  failed: 1h\nretention_failed: 2h\n", wantErr: `both retention.failed and retention_failed are set`},
		{name: "retention of an unknown status", file: "retention:\n  running: 1h\n", wantErr: `unknown key "retention.running"`},
		{name: "unknown key in the file", file: "workers: 2\nworkerz: 3\n", wantErr: `unknown key "workerz"`},
		{name: "nested key in the file", file: "http:\n  addr: 127.0.0.1:1\n", wantErr: `unknown key "http.addr"`},
		{name: "malformed file", file: "workers: [\n", wantErr: "config file "},
		{name: "missing file", args: []string{"--config", "/nonexistent/troupe.yaml"}, wantErr: "config file /nonexistent/troupe.yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			args := tt.args
			if tt.file != "" {
				args = append(args, "--config", writeFile(t, tt.file))
			}
			_, err := loadConfig(t, args, tt.env...)
			require.ErrorContains(t, err, tt.wantErr)
		})
	}

	t.Run("several errors are all reported", func(t *testing.T) {
		t.Parallel()
		_, err := loadConfig(t, nil, "TROUPE_WORKERS=0", "TROUPE_LOG_FORMAT=xml")
		require.ErrorContains(t, err, "TROUPE_WORKERS")
		require.ErrorContains(t, err, "TROUPE_LOG_FORMAT")
	})

	t.Run("secrets are not echoed", func(t *testing.T) {
		t.Parallel()
		_, err := loadConfig(t, nil, "TROUPE_API_TOKENS=good,has space")
		require.ErrorContains(t, err, "invalid TROUPE_API_TOKENS: token 2")
		require.NotContains(t, err.Error(), "has space")
		_, err = loadConfig(t, []string{"--config", writeFile(t, "database_url: {user: secret}\n")})
		require.ErrorContains(t, err, "database_url")
		_, err = loadConfig(t, []string{"--config", writeFile(t, "database_url: [secret]\n")})
		require.ErrorContains(t, err, "(value hidden)")
		require.NotContains(t, err.Error(), "secret]")
	})

	t.Run("an open API on the network is allowed with --insecure", func(t *testing.T) {
		t.Parallel()
		_, err := loadConfig(t, []string{"--insecure"}, "TROUPE_HTTP_ADDR=0.0.0.0:8080")
		require.NoError(t, err)
		_, err = loadConfig(t, nil, "TROUPE_HTTP_ADDR=0.0.0.0:8080", "TROUPE_API_TOKENS=s3cret")
		require.NoError(t, err)
	})
}

func TestConfigSchedules(t *testing.T) {
	t.Parallel()

	t.Run("the file's schedules become the runtime's", func(t *testing.T) {
		t.Parallel()
		path := writeFile(t, `
workers: 2
schedules:
  - name: nightly-report
    cron: "0 3 * * *"
    timezone: Europe/Paris
    catchUp: one
    job: {type: report, payload: {day: yesterday, n: 3}, queue: reports, priority: 3, maxAttempts: 5, timeout: 10m}
  - name: heartbeat
    cron: "@every 30s"
    paused: true
    job:
      type: noop
`)
		cfg, err := loadConfig(t, []string{"--config", path})
		require.NoError(t, err)
		require.Equal(t, 2, cfg.Workers, "the other options are read as before")
		require.Len(t, cfg.Schedules, 2)
		nightly := cfg.Schedules[0]
		require.JSONEq(t, `{"day":"yesterday","n":3}`, string(nightly.Job.Payload))
		nightly.Job.Payload = nil
		require.Equal(t, actors.ScheduleParams{
			Name: "nightly-report", Cron: "0 3 * * *", Timezone: "Europe/Paris", CatchUp: domain.CatchUpOne,
			Job: domain.ScheduledJob{Type: "report", Queue: "reports", Priority: 3, MaxAttempts: 5, Timeout: 10 * time.Minute},
		}, nightly)
		require.Equal(t, actors.ScheduleParams{
			Name: "heartbeat", Cron: "@every 30s", Paused: true, Job: domain.ScheduledJob{Type: "noop"},
		}, cfg.Schedules[1], "unset fields are left to the runtime's defaults; no payload is none")

		params := cfg.scheduleParams()
		require.Equal(t, cfg.Schedules[1], params[1])
		params[0].Job.Payload[0] = '['
		require.Equal(t, byte('{'), cfg.Schedules[0].Job.Payload[0], "the copies share no payload")
	})

	t.Run("none in the file, or no file, is none", func(t *testing.T) {
		t.Parallel()
		cfg, err := loadConfig(t, []string{"--config", writeFile(t, "workers: 2\nschedules: []\n")})
		require.NoError(t, err)
		require.Empty(t, cfg.Schedules)
		cfg, err = loadConfig(t, nil, "TROUPE_SCHEDULES=whatever")
		require.NoError(t, err)
		require.Empty(t, cfg.Schedules, "schedules have no environment variable")
	})

	for _, tt := range []struct {
		name, file, wantErr string
	}{
		{"not a list", "schedules: nightly\n", "schedules: want a list of schedules"},
		{"an entry that is no mapping", "schedules: [nightly]\n", "schedules[0]: want a mapping"},
		{"no name", "schedules:\n  - cron: '@daily'\n    job: {type: noop}\n", "schedules[0]: name is required"},
		{"a bad name", "schedules:\n  - name: Nightly\n    cron: '@daily'\n    job: {type: noop}\n", `schedules[0] ("Nightly"): name "Nightly" must match`},
		{"no cron", "schedules:\n  - name: a\n    job: {type: noop}\n", `schedules[0] ("a"): cron is required`},
		{"no job", "schedules:\n  - name: a\n    cron: '@daily'\n", `schedules[0] ("a"): job is required`},
		{"no job type", "schedules:\n  - name: a\n    cron: '@daily'\n    job: {queue: q}\n", `schedules[0] ("a"): job.type is required`},
		{"a bad catch-up", "schedules:\n  - name: a\n    cron: '@daily'\n    catchUp: all\n    job: {type: noop}\n", `schedules[0] ("a"): catchUp "all" must be skip or one`},
		{"a timeout without a unit", "schedules:\n  - name: a\n    cron: '@daily'\n    job: {type: noop, timeout: 30}\n", `schedules[0] ("a"): job.timeout 30: want a duration with a unit`},
		{"a priority that is no number", "schedules:\n  - name: a\n    cron: '@daily'\n    job: {type: noop, priority: high}\n", `schedules[0] ("a"): job.priority high: want a whole number`},
		{"paused that is no bool", "schedules:\n  - name: a\n    cron: '@daily'\n    paused: maybe\n    job: {type: noop}\n", `schedules[0] ("a"): paused: want true or false`},
		{"an unknown key", "schedules:\n  - name: a\n    cron: '@daily'\n    every: 5m\n    job: {type: noop}\n", `schedules[0] ("a"): unknown key "every"`},
		{"an unknown job key", "schedules:\n  - name: a\n    cron: '@daily'\n    job: {type: noop, retries: 3}\n", `schedules[0] ("a"): job: unknown key "retries"`},
		{"a name twice", "schedules:\n  - name: a\n    cron: '@daily'\n    job: {type: noop}\n  - name: a\n    cron: '@hourly'\n    job: {type: noop}\n", `schedules[1] ("a"): name "a" is already the name of schedules[0]`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := writeFile(t, tt.file)
			_, err := loadConfig(t, []string{"--config", path})
			require.ErrorContains(t, err, "config file "+path+": ")
			require.ErrorContains(t, err, tt.wantErr)
		})
	}

	t.Run("every bad entry is reported", func(t *testing.T) {
		t.Parallel()
		_, err := loadConfig(t, []string{"--config", writeFile(t, "schedules:\n  - name: a\n  - name: b\n    cron: '@daily'\n")})
		require.ErrorContains(t, err, `schedules[0] ("a"): cron is required`)
		require.ErrorContains(t, err, `schedules[1] ("b"): job is required`)
	})
}

func TestConfigMapping(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()
	cfg.Workers, cfg.QueueSize, cfg.MaxAttempts = 5, 50, 7
	cfg.RetryBaseDelay, cfg.RetryMaxDelay, cfg.RetryJitter = time.Millisecond, time.Second, false
	cfg.ShutdownTimeout = 3 * time.Second
	cfg.HTTPAddr, cfg.APITokens, cfg.Insecure, cfg.MaxBodyBytes = "0.0.0.0:1", []string{"t"}, true, 99
	cfg.MaxPayloadBytes = 77
	cfg.QueueLimits, cfg.JobTimeout, cfg.IdempotencyTTL = QueueLimits{"email": 2}, time.Minute, 2*time.Hour

	cfg.RetentionCompleted, cfg.RetentionFailed, cfg.RetentionCanceled = time.Minute, 0, time.Hour

	a := cfg.ActorsConfig()
	require.Equal(t, actors.Retention{Completed: time.Minute, Failed: actors.KeepForever, Canceled: time.Hour}, a.Retention,
		"0 keeps for ever, not the runtime's default")
	require.Equal(t, actors.Retention{Completed: actors.RetainCompletedDefault, Failed: actors.RetainFailedDefault, Canceled: actors.RetainCanceledDefault},
		DefaultConfig().ActorsConfig().Retention)
	require.Equal(t, map[string]int{"email": 2}, a.QueueLimits)
	require.Equal(t, time.Minute, a.JobTimeout)
	cfg.JobTimeout = 0
	require.Equal(t, actors.NoTimeout, cfg.ActorsConfig().JobTimeout, "0 means none, not the runtime's default")
	require.Equal(t, actors.JobTimeoutDefault, DefaultConfig().ActorsConfig().JobTimeout)
	require.Equal(t, 5, a.Workers)
	require.Equal(t, 50, a.QueueSize)
	require.Equal(t, 7, a.MaxAttempts)
	require.Equal(t, time.Millisecond, a.RetryBaseDelay)
	require.Equal(t, time.Second, a.RetryMaxDelay)
	require.Equal(t, actors.NoJitter, a.RetryJitter)
	require.Equal(t, 3*time.Second, a.ShutdownTimeout)
	require.Equal(t, actors.HandBackTimeoutDefault, a.HandBackTimeout)
	require.Equal(t, int64(77), a.MaxPayloadBytes)
	require.NoError(t, a.Validate())

	h := cfg.HTTPConfig()
	require.Equal(t, "0.0.0.0:1", h.Addr)
	require.Equal(t, []string{"t"}, h.APITokens)
	require.True(t, h.Insecure)
	require.Equal(t, int64(99), h.MaxBodyBytes)
	require.Equal(t, int64(77), h.MaxPayloadBytes)
	require.Equal(t, 2*time.Hour, h.IdempotencyTTL)
	require.Equal(t, 3*time.Second, h.ShutdownTimeout, "the API gets the shutdown timeout when it is short")
	require.Equal(t, http.ShutdownTimeoutDefault, DefaultConfig().HTTPConfig().ShutdownTimeout, "and its own default when it is long")

	require.Greater(t, StopTimeout(DefaultConfig()), DefaultConfig().ShutdownTimeout+actors.HandBackTimeoutDefault)
}

func TestConfigLogValueHidesSecrets(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()
	cfg.DatabaseURL = "postgres://user:hunter2@db/troupe"
	cfg.APITokens = []string{"s3cret"}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", slog.Any("config", cfg))
	require.NotContains(t, buf.String(), "hunter2")
	require.NotContains(t, buf.String(), "s3cret")
	require.Contains(t, buf.String(), `"retry_base_delay":"1s"`)
	require.Contains(t, buf.String(), `"api_tokens":"(set)"`)
}

func TestNewLogger(t *testing.T) {
	t.Parallel()

	t.Run("JSON at info by default", func(t *testing.T) {
		t.Parallel()
		var buf bytes.Buffer
		logger := NewLogger(&buf, DefaultConfig())
		logger.Debug("hidden")
		logger.Info("shown", slog.Int("n", 1))
		var rec map[string]any
		require.NoError(t, json.Unmarshal(buf.Bytes(), &rec))
		require.Equal(t, "shown", rec["msg"])
	})

	t.Run("text at the configured level", func(t *testing.T) {
		t.Parallel()
		var buf bytes.Buffer
		cfg := DefaultConfig()
		cfg.LogFormat, cfg.LogLevel = LogFormatText, "warn"
		logger := NewLogger(&buf, cfg)
		logger.Info("hidden")
		logger.Warn("shown")
		require.Equal(t, 1, strings.Count(buf.String(), "\n"))
		require.Contains(t, buf.String(), "level=WARN msg=shown")
	})

	t.Run("every level", func(t *testing.T) {
		t.Parallel()
		for level, want := range map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError} {
			cfg := DefaultConfig()
			cfg.LogLevel = level
			require.Equal(t, want, cfg.SlogLevel())
		}
	})
}
