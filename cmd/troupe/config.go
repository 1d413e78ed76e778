package main

import (
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/troupe-go/troupe/actors"
	"github.com/troupe-go/troupe/http"
	"github.com/troupe-go/troupe/internal/storeopen"
	"github.com/troupe-go/troupe/persistence/badgerstore"
	"github.com/troupe-go/troupe/persistence/pgstore"
)

// The stores that `troupe serve` can run on.
const (
	// StoreBadger keeps jobs in Badger under the data directory: embedded,
	// durable, no infrastructure. The default.
	StoreBadger = storeopen.Badger
	// StoreMemory keeps jobs in memory: everything is lost on exit.
	StoreMemory = storeopen.Memory
	// StorePostgres keeps jobs in PostgreSQL at Config.DatabaseURL.
	StorePostgres = storeopen.Postgres
)

// Stores lists the valid values of Config.Store.
func Stores() []string { return storeopen.Kinds() }

// The log formats and levels that Config accepts.
const (
	LogFormatJSON = "json"
	LogFormatText = "text"
)

// LogLevels lists the valid values of Config.LogLevel, quietest last.
func LogLevels() []string { return []string{"debug", "info", "warn", "error"} }

// LogFormats lists the valid values of Config.LogFormat.
func LogFormats() []string { return []string{LogFormatJSON, LogFormatText} }

// EnvPrefix starts the name of every environment variable that configures
// the server; the rest is the option's key in upper case.
const EnvPrefix = "TROUPE_"

// envConfigFile names the config file when --config is not given.
const envConfigFile = EnvPrefix + "CONFIG"

// flagConfig is the flag that names the YAML config file.
const flagConfig = "config"

// Config is the configuration of `troupe serve`. Each field is one option,
// named by its koanf key: the YAML key is the key itself (`http_addr`), the
// flag is the key with dashes (`--http-addr`) and the environment variable
// is the key in upper case after EnvPrefix (`TROUPE_HTTP_ADDR`). A value
// comes from, in decreasing precedence: a flag given on the command line,
// the environment, the YAML file, DefaultConfig. Fields tagged secret are
// never logged or echoed in errors.
type Config struct {
	// HTTPAddr is the API's listen address, host:port; port 0 picks a free
	// one. Defaults to 127.0.0.1:8080.
	HTTPAddr string `koanf:"http_addr" usage:"listen address of the HTTP API, host:port (port 0 picks a free one)"`
	// Store selects the persistence backend: badger, memory or postgres.
	// Defaults to badger.
	Store string `koanf:"store" usage:"job store: badger (embedded, on disk), memory (lost on exit) or postgres (at --database-url)"`
	// DataDir is Badger's directory, created if missing. Defaults to ./data.
	DataDir string `koanf:"data_dir" usage:"directory of the badger store"`
	// DatabaseURL is the PostgreSQL connection string; required when Store
	// is postgres.
	DatabaseURL string `koanf:"database_url" secret:"true" usage:"PostgreSQL connection string, required with --store=postgres"`
	// DatabaseSchema is the PostgreSQL schema of Troupe's tables, created
	// if missing; nodes that share a queue use the same one. Defaults to
	// public.
	DatabaseSchema string `koanf:"database_schema" usage:"PostgreSQL schema of the job tables; nodes sharing a queue use the same one"`
	// DatabaseMaxConns caps each node's PostgreSQL connection pool; 0 lets
	// pgx choose (the larger of 4 and the number of CPUs). Defaults to 0.
	DatabaseMaxConns int `koanf:"database_max_conns" usage:"PostgreSQL connections per node; 0 lets the driver choose (4, or the CPU count if larger)"`
	// Node names this process among the nodes sharing a PostgreSQL queue.
	// Defaults to hostname-pid.
	Node string `koanf:"node" usage:"name of this node among those sharing a PostgreSQL queue (default hostname-pid)"`
	// LeaseDuration is how long a node owns a running job without renewing
	// it; a dead node's jobs run again after it expires. Defaults to 30s.
	LeaseDuration time.Duration `koanf:"lease_duration" usage:"with postgres: how long a node owns a running job without renewing its lease"`
	// RescueInterval is how often a node looks for expired leases.
	// Defaults to 10s.
	RescueInterval time.Duration `koanf:"rescue_interval" usage:"with postgres: how often each node returns jobs with expired leases to the queue"`
	// PollInterval is how often an idle node claims without a
	// notification, in case one was lost. Defaults to 1s.
	PollInterval time.Duration `koanf:"poll_interval" usage:"with postgres: how often an idle node looks for work without being notified"`
	// Durability says which Badger writes wait for fsync: full (the
	// writes a client is told are stored, with group commit), sync-all or
	// none. Defaults to full.
	Durability string `koanf:"durability" usage:"badger: which writes wait for fsync: full (acknowledged submissions survive a power cut), sync-all or none"`
	// MinFreeBytes is the free disk space below which the Badger store
	// refuses every write (new jobs somewhat earlier), so that a
	// full disk answers 507 instead of crashing the process; Badger's
	// memtable is sized to fit it. 0 derives it from the default memtable
	// (about 481 MiB). Defaults to 0.
	MinFreeBytes int64 `koanf:"min_free_bytes" usage:"with badger: free disk bytes below which every write is refused (new jobs earlier); 0 derives it from the memtable size"`
	// Workers is the size of the worker pool. Defaults to the number of
	// CPUs × 4.
	Workers int `koanf:"workers" usage:"size of the worker pool, the jobs that run at once; the default is 4 per CPU"`
	// QueueSize bounds the ready queue; submissions beyond it get 503.
	// Defaults to 100000.
	QueueSize int `koanf:"queue_size" usage:"bound of the ready queue; submissions beyond it get 503 queue full"`
	// QueueLimits caps, per queue, how many of its jobs run at once on this
	// node ("email=2,reports=1", or a YAML mapping); queues without a cap
	// share the pool. Defaults to none.
	QueueLimits QueueLimits `koanf:"queue_limits" usage:"per queue, how many of its jobs run at once on this node, such as email=2,reports=1; queues without a cap share the pool"`
	// MaxAttempts is the attempts of a job submitted without maxAttempts.
	// Defaults to 3.
	MaxAttempts int `koanf:"max_attempts" usage:"attempts of a job submitted without maxAttempts"`
	// RetryBaseDelay is the backoff before the second attempt; it doubles
	// with each attempt. Defaults to 1s.
	RetryBaseDelay time.Duration `koanf:"retry_base_delay" usage:"backoff before the second attempt, doubled for each further one"`
	// RetryMaxDelay caps the backoff. Defaults to 5m.
	RetryMaxDelay time.Duration `koanf:"retry_max_delay" usage:"cap of the retry backoff"`
	// RetryJitter randomizes each backoff (full jitter) so that jobs that
	// failed together do not retry together. Defaults to true.
	RetryJitter bool `koanf:"retry_jitter" usage:"randomize retry backoffs (full jitter)"`
	// JobTimeout ends each attempt of a job whose submission and type set
	// no timeout after this long; 0 means none. Defaults to 30m.
	JobTimeout time.Duration `koanf:"job_timeout" usage:"timeout of each attempt of a job whose submission and type set none; 0 means none"`
	// RetentionCompleted is how long a completed job is kept after it
	// finished; the pruner deletes it then. 0 keeps completed jobs for
	// ever. In the YAML file also retention.completed. Defaults to 24h.
	RetentionCompleted time.Duration `koanf:"retention_completed" usage:"how long a completed job is kept after it finished, then deleted; 0 keeps completed jobs for ever"`
	// RetentionFailed is the same for failed jobs, which people come back
	// to inspect. Defaults to 168h.
	RetentionFailed time.Duration `koanf:"retention_failed" usage:"how long a failed job is kept after it finished, then deleted; 0 keeps failed jobs for ever"`
	// RetentionCanceled is the same for canceled jobs. Defaults to 168h.
	RetentionCanceled time.Duration `koanf:"retention_canceled" usage:"how long a canceled job is kept after it finished, then deleted; 0 keeps canceled jobs for ever"`
	// ShutdownTimeout is how long running jobs get to finish on SIGINT or
	// SIGTERM before they are handed back to the queue. Defaults to 30s.
	ShutdownTimeout time.Duration `koanf:"shutdown_timeout" usage:"on SIGINT/SIGTERM, how long running jobs get to finish before they are handed back"`
	// LogLevel is debug, info, warn or error. Defaults to info.
	LogLevel string `koanf:"log_level" usage:"log level: debug, info, warn or error"`
	// LogFormat is json or text. Defaults to json.
	LogFormat string `koanf:"log_format" usage:"log format: json or text"`
	// APITokens are the bearer tokens the API accepts (comma-separated in
	// the environment). Without any the API is open, which is allowed only
	// on a loopback address unless Insecure is set. Defaults to none.
	APITokens []string `koanf:"api_tokens" secret:"true" usage:"bearer tokens the API accepts, comma-separated; none leaves the API open (loopback only, unless --insecure)"`
	// WorkerTokens are bearer tokens that may only claim jobs and report
	// on them (the worker protocol), for external workers that should not
	// submit, list or cancel. Defaults to none.
	WorkerTokens []string `koanf:"worker_tokens" secret:"true" usage:"bearer tokens that may only claim and report jobs (POST /workers/claim, /workers/outcomes, /jobs/{id}/heartbeat|complete|fail), comma-separated"`
	// Insecure allows an open API on an address that is not loopback.
	// Defaults to false.
	Insecure bool `koanf:"insecure" usage:"allow an API without tokens on a non-loopback address"`
	// MaxBodyBytes bounds a request body; larger ones get 413. Defaults to
	// 1 MiB.
	MaxBodyBytes int64 `koanf:"max_body_bytes" usage:"largest request body in bytes; larger ones get 413"`
	// MaxPayloadBytes bounds the payload of each job, on every path: POST
	// /jobs, each job of POST /jobs/batch (whose body may be larger), and
	// the runtime's Submit. Larger ones get 413. Defaults to 1 MiB.
	MaxPayloadBytes int64 `koanf:"max_payload_bytes" usage:"largest job payload in bytes, in a single or a batch submission; larger ones get 413"`
	// MaxResultBytes bounds a job's result (JSON), however it is set: a Go
	// handler's SetResult, an external worker's complete, a webhook's
	// answer. A larger one fails the attempt, or gets 413 from complete.
	// Defaults to 64 KiB.
	MaxResultBytes int `koanf:"max_result_bytes" usage:"largest job result in bytes (JSON); a larger one fails the attempt (413 to an external worker)"`
	// IdempotencyTTL is how long the answer to a submission with an
	// Idempotency-Key is kept, so that a retry with the key gets it again.
	// Defaults to 24h.
	IdempotencyTTL time.Duration `koanf:"idempotency_ttl" usage:"how long the answer to a submission with an Idempotency-Key is kept for its retries"`
	// Demo registers the sample and demo handlers (send_email,
	// generate_report, process_file, noop, sleep, flaky, panic). Defaults
	// to true.
	Demo bool `koanf:"demo" usage:"register the sample and demo job handlers"`
	// ExternalTypes are the job types that external workers run through
	// the worker protocol (POST /workers/claim ...): declared, so that a
	// submission with a typo is still refused. In the YAML file also
	// externalTypes. Defaults to none.
	ExternalTypes []string `koanf:"external_types" usage:"job types run by external workers over HTTP (POST /workers/claim), comma-separated"`

	// Schedules are the periodic jobs declared under schedules: in the
	// YAML file, the only place they can be declared (a list has no
	// sensible flag or variable). Start creates or replaces each, owned by
	// the file: the API may not change them. It has no koanf tag, so it is
	// no option of its own.
	Schedules []actors.ScheduleParams
	// Webhooks are the job types handled by an HTTP endpoint, declared
	// under webhooks: in the YAML file only, like Schedules.
	Webhooks []WebhookSpec
	// Queues are the queues' flow settings declared under queues: in the
	// YAML file only, like Schedules. Start stores them, durably, before
	// the runtime starts; a queue not listed keeps its stored settings.
	Queues []QueueSpec
}

// DefaultConfig returns the configuration used when nothing is set: an
// embedded server on loopback that needs no configuration at all.
func DefaultConfig() Config {
	return Config{
		HTTPAddr:           http.AddrDefault,
		Store:              StoreBadger,
		DataDir:            "./data",
		DatabaseSchema:     pgstore.SchemaDefault,
		LeaseDuration:      actors.LeaseDurationDefault,
		RescueInterval:     actors.RescueIntervalDefault,
		PollInterval:       actors.PollIntervalDefault,
		Durability:         string(badgerstore.DurabilityFull),
		Workers:            actors.WorkersDefault(),
		QueueSize:          actors.QueueSizeDefault,
		MaxAttempts:        actors.MaxAttemptsDefault,
		RetryBaseDelay:     actors.RetryBaseDelayDefault,
		RetryMaxDelay:      actors.RetryMaxDelayDefault,
		RetryJitter:        true,
		JobTimeout:         actors.JobTimeoutDefault,
		RetentionCompleted: actors.RetainCompletedDefault,
		RetentionFailed:    actors.RetainFailedDefault,
		RetentionCanceled:  actors.RetainCanceledDefault,
		ShutdownTimeout:    actors.ShutdownTimeoutDefault,
		LogLevel:           "info",
		LogFormat:          LogFormatJSON,
		MaxBodyBytes:       http.MaxBodyBytesDefault,
		MaxPayloadBytes:    actors.MaxPayloadBytesDefault,
		MaxResultBytes:     actors.MaxResultBytesDefault,
		IdempotencyTTL:     http.IdempotencyTTLDefault,
		Demo:               true,
	}
}

// SlogLevel returns the log level; an invalid LogLevel gives info, but
// Validate rejects it first.
func (c Config) SlogLevel() slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return slog.LevelInfo
	}
	return l
}

// LogValue lists the options for the log, secrets masked.
func (c Config) LogValue() slog.Value {
	var attrs []slog.Attr
	v := reflect.ValueOf(c)
	for _, f := range configFields() {
		val := v.Field(f.index).Interface()
		switch typed := val.(type) {
		case time.Duration:
			val = typed.String()
		case QueueLimits:
			val = typed.String()
		}
		if f.secret {
			val = "(none)"
			if v.Field(f.index).Len() > 0 {
				val = "(set)"
			}
		}
		attrs = append(attrs, slog.Any(f.key, val))
	}
	names := make([]string, len(c.Schedules))
	for i, s := range c.Schedules {
		names[i] = s.Name
	}
	attrs = append(attrs, slog.Any("schedules", names))
	hooks := make([]any, len(c.Webhooks))
	for i, w := range c.Webhooks {
		hooks[i] = w.logValue()
	}
	attrs = append(attrs, slog.Any("webhooks", hooks))
	queues := make([]any, len(c.Queues))
	for i, q := range c.Queues {
		queues[i] = q.logValue()
	}
	attrs = append(attrs, slog.Any("queues", queues))
	return slog.GroupValue(attrs...)
}

// envName is an option's environment variable.
func envName(key string) string { return EnvPrefix + strings.ToUpper(key) }

// flagName is an option's flag, without the dashes.
func flagName(key string) string { return strings.ReplaceAll(key, "_", "-") }

// keyOfFlag is the option of a flag, or "" for a flag that is not one.
func keyOfFlag(name string) string {
	key := strings.ReplaceAll(name, "-", "_")
	if _, ok := fieldByKey(key); ok {
		return key
	}
	return ""
}

// configField describes one option of Config.
type configField struct {
	// index is the option's field in Config.
	index  int
	key    string
	usage  string
	secret bool
	typ    reflect.Type
}

// configFields lists Config's options in field order: the fields with a
// koanf tag (Schedules, which only the file sets, has none).
func configFields() []configField {
	t := reflect.TypeFor[Config]()
	fields := make([]configField, 0, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		key := f.Tag.Get("koanf")
		if key == "" {
			continue
		}
		fields = append(fields, configField{
			index:  i,
			key:    key,
			usage:  f.Tag.Get("usage"),
			secret: f.Tag.Get("secret") == "true",
			typ:    f.Type,
		})
	}
	return fields
}

// fieldByKey returns the index of the option with the key.
func fieldByKey(key string) (int, bool) {
	i := slices.IndexFunc(configFields(), func(f configField) bool { return f.key == key })
	return i, i >= 0
}

// QueueLimits caps, per queue, how many of its jobs run at once on a node.
// As text it is "name=limit" pairs separated by commas, sorted by name.
type QueueLimits map[string]int

// String returns the limits as text: "email=2,reports=1".
func (q QueueLimits) String() string {
	parts := make([]string, 0, len(q))
	for _, name := range slices.Sorted(maps.Keys(q)) {
		parts = append(parts, fmt.Sprintf("%s=%d", name, q[name]))
	}
	return strings.Join(parts, ",")
}

// queueLimitsFlag is the flag of queue_limits; the loader parses its text
// like the environment variable's.
type queueLimitsFlag struct{ text string }

// String implements pflag.Value.
func (f *queueLimitsFlag) String() string { return f.text }

// Set implements pflag.Value.
func (f *queueLimitsFlag) Set(v string) error {
	f.text = v
	return nil
}

// Type implements pflag.Value; help shows it as the value's name.
func (f *queueLimitsFlag) Type() string { return "name=n,..." }
