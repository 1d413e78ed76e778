package main

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	env "github.com/knadh/koanf/providers/env/v2"

	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/providers/posflag"
	"github.com/knadh/koanf/v2"
	"github.com/spf13/pflag"

	"github.com/troupe-go/troupe/actors"
	"github.com/troupe-go/troupe/http"
	"github.com/troupe-go/troupe/persistence/badgerstore"
	"github.com/troupe-go/troupe/persistence/pgstore"
)

// The stores that `troupe serve` can run on.
const (
	// StoreBadger keeps jobs in Badger under the data directory: embedded,
	// durable, no infrastructure. The default.
	StoreBadger = "badger"
	// StoreMemory keeps jobs in memory: everything is lost on exit.
	StoreMemory = "memory"
	// StorePostgres keeps jobs in PostgreSQL at Config.DatabaseURL.
	StorePostgres = "postgres"
)

// Stores lists the valid values of Config.Store.
func Stores() []string { return []string{StoreBadger, StoreMemory, StorePostgres} }

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
	// SyncWrites makes Badger fsync every write batch, so that an
	// acknowledged job survives a power cut, not only a crash of the
	// process. Defaults to false.
	SyncWrites bool `koanf:"sync_writes" usage:"fsync every badger write batch (survives power loss, costs throughput)"`
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
	// Demo registers the sample and demo handlers (send_email,
	// generate_report, process_file, noop, sleep, flaky, panic). Defaults
	// to true.
	Demo bool `koanf:"demo" usage:"register the sample and demo job handlers"`
}

// DefaultConfig returns the configuration used when nothing is set: an
// embedded server on loopback that needs no configuration at all.
func DefaultConfig() Config {
	return Config{
		HTTPAddr:        http.AddrDefault,
		Store:           StoreBadger,
		DataDir:         "./data",
		DatabaseSchema:  pgstore.SchemaDefault,
		LeaseDuration:   actors.LeaseDurationDefault,
		RescueInterval:  actors.RescueIntervalDefault,
		PollInterval:    actors.PollIntervalDefault,
		Workers:         actors.WorkersDefault(),
		QueueSize:       actors.QueueSizeDefault,
		MaxAttempts:     actors.MaxAttemptsDefault,
		RetryBaseDelay:  actors.RetryBaseDelayDefault,
		RetryMaxDelay:   actors.RetryMaxDelayDefault,
		RetryJitter:     true,
		ShutdownTimeout: actors.ShutdownTimeoutDefault,
		LogLevel:        "info",
		LogFormat:       LogFormatJSON,
		MaxBodyBytes:    http.MaxBodyBytesDefault,
		MaxPayloadBytes: actors.MaxPayloadBytesDefault,
		Demo:            true,
	}
}

// ActorsConfig returns the runtime's share of the configuration.
func (c Config) ActorsConfig() actors.Config {
	return actors.Config{
		Workers:         c.Workers,
		QueueSize:       c.QueueSize,
		MaxAttempts:     c.MaxAttempts,
		RetryBaseDelay:  c.RetryBaseDelay,
		RetryMaxDelay:   c.RetryMaxDelay,
		RetryJitter:     jitter(c.RetryJitter),
		ShutdownTimeout: c.ShutdownTimeout,
		Node:            c.Node,
		LeaseDuration:   c.LeaseDuration,
		RescueInterval:  c.RescueInterval,
		PollInterval:    c.PollInterval,
		MaxPayloadBytes: c.MaxPayloadBytes,
	}.WithDefaults()
}

// jitter maps the retry_jitter switch to the runtime's setting.
func jitter(on bool) actors.Jitter {
	if on {
		return actors.FullJitter
	}
	return actors.NoJitter
}

// HTTPConfig returns the API's share of the configuration. Requests in
// flight get the shutdown timeout too, but no more than the API's own
// default: they are short, and the jobs behind them matter more.
func (c Config) HTTPConfig() http.Config {
	return http.Config{
		Addr:            c.HTTPAddr,
		APITokens:       slices.Clone(c.APITokens),
		Insecure:        c.Insecure,
		MaxBodyBytes:    c.MaxBodyBytes,
		MaxPayloadBytes: c.MaxPayloadBytes,
		ShutdownTimeout: min(c.ShutdownTimeout, http.ShutdownTimeoutDefault),
	}.WithDefaults()
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
	for i, f := range configFields() {
		val := v.Field(i).Interface()
		if d, ok := val.(time.Duration); ok {
			val = d.String()
		}
		if f.secret {
			val = "(none)"
			if v.Field(i).Len() > 0 {
				val = "(set)"
			}
		}
		attrs = append(attrs, slog.Any(f.key, val))
	}
	return slog.GroupValue(attrs...)
}

// Validate checks every option and returns an error naming each one that
// is wrong by its environment variable, with the bad value.
func (c Config) Validate() error { return c.validate(envName) }

// validate checks every option; name turns a key into what the user wrote
// (a flag, an environment variable, a key of the config file).
func (c Config) validate(name func(key string) string) error {
	var errs []error
	bad := func(key string, value any, format string, args ...any) {
		errs = append(errs, fmt.Errorf("invalid %s %s: %s", name(key), quote(value), fmt.Sprintf(format, args...)))
	}
	if _, port, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		bad("http_addr", c.HTTPAddr, "want host:port, such as %s", http.AddrDefault)
	} else if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		bad("http_addr", c.HTTPAddr, "port %q is not a number from 0 to 65535", port)
	}
	switch c.Store {
	case StoreBadger:
		if strings.TrimSpace(c.DataDir) == "" {
			errs = append(errs, fmt.Errorf("%s must not be empty when %s=%s", name("data_dir"), name("store"), StoreBadger))
		}
		if least := badgerstore.MinFreeBytesFor(badgerstore.MemTableSizeMin); c.MinFreeBytes != 0 && c.MinFreeBytes < least {
			bad("min_free_bytes", c.MinFreeBytes, "must be 0 (derived) or at least %d, what the smallest memtable needs", least)
		}
	case StorePostgres:
		if strings.TrimSpace(c.DatabaseURL) == "" {
			errs = append(errs, fmt.Errorf("%s is required when %s=%s", name("database_url"), name("store"), StorePostgres))
		}
		if strings.TrimSpace(c.DatabaseSchema) == "" {
			errs = append(errs, fmt.Errorf("%s must not be empty when %s=%s", name("database_schema"), name("store"), StorePostgres))
		}
	case StoreMemory:
	default:
		bad("store", c.Store, "must be one of %s", strings.Join(Stores(), ", "))
	}
	if c.Workers < 1 {
		bad("workers", c.Workers, "must be at least 1")
	}
	if c.QueueSize < 1 {
		bad("queue_size", c.QueueSize, "must be at least 1")
	}
	if c.MaxAttempts < 1 || c.MaxAttempts > actors.MaxAttemptsLimit {
		bad("max_attempts", c.MaxAttempts, "must be from 1 to %d", actors.MaxAttemptsLimit)
	}
	if c.RetryBaseDelay <= 0 {
		bad("retry_base_delay", c.RetryBaseDelay, "must be positive")
	}
	if c.RetryMaxDelay <= 0 {
		bad("retry_max_delay", c.RetryMaxDelay, "must be positive")
	} else if c.RetryMaxDelay < c.RetryBaseDelay {
		bad("retry_max_delay", c.RetryMaxDelay, "must not be below %s (%s)", name("retry_base_delay"), c.RetryBaseDelay)
	}
	if c.ShutdownTimeout <= 0 {
		bad("shutdown_timeout", c.ShutdownTimeout, "must be positive")
	}
	if c.DatabaseMaxConns < 0 || c.DatabaseMaxConns > math.MaxInt32 {
		bad("database_max_conns", c.DatabaseMaxConns, "must be from 0 to %d", math.MaxInt32)
	}
	if len(c.Node) > 200 {
		bad("node", c.Node, "must be at most 200 bytes")
	}
	if c.LeaseDuration < 100*time.Millisecond {
		bad("lease_duration", c.LeaseDuration, "must be at least 100ms")
	}
	if c.RescueInterval <= 0 {
		bad("rescue_interval", c.RescueInterval, "must be positive")
	}
	if c.PollInterval <= 0 {
		bad("poll_interval", c.PollInterval, "must be positive")
	}
	if !slices.Contains(LogLevels(), c.LogLevel) {
		bad("log_level", c.LogLevel, "must be one of %s", strings.Join(LogLevels(), ", "))
	}
	if !slices.Contains(LogFormats(), c.LogFormat) {
		bad("log_format", c.LogFormat, "must be one of %s", strings.Join(LogFormats(), ", "))
	}
	for i, tok := range c.APITokens {
		if tok == "" || strings.ContainsFunc(tok, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
			errs = append(errs, fmt.Errorf("invalid %s: token %d is empty or contains white space or control characters", name("api_tokens"), i+1))
		}
	}
	if c.MaxBodyBytes < 1 {
		bad("max_body_bytes", c.MaxBodyBytes, "must be at least 1")
	}
	if c.MaxPayloadBytes < 1 {
		bad("max_payload_bytes", c.MaxPayloadBytes, "must be at least 1")
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	// The options are sound one by one; the libraries check how they
	// combine (an open API on a public address, for one).
	if err := c.ActorsConfig().Validate(); err != nil {
		return err
	}
	if err := c.HTTPConfig().Validate(); err != nil {
		return err
	}
	return nil
}

// quote shows a value in an error message: strings quoted, the rest as Go
// prints them.
func quote(v any) string {
	if s, ok := v.(string); ok {
		return strconv.Quote(s)
	}
	return fmt.Sprint(v)
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
	key    string
	usage  string
	secret bool
	typ    reflect.Type
}

// configFields lists Config's options in field order.
func configFields() []configField {
	t := reflect.TypeFor[Config]()
	fields := make([]configField, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		fields[i] = configField{
			key:    f.Tag.Get("koanf"),
			usage:  f.Tag.Get("usage"),
			secret: f.Tag.Get("secret") == "true",
			typ:    f.Type,
		}
	}
	return fields
}

// fieldByKey returns the index of the option with the key.
func fieldByKey(key string) (int, bool) {
	i := slices.IndexFunc(configFields(), func(f configField) bool { return f.key == key })
	return i, i >= 0
}

// AddServeFlags defines a flag for every option of Config, with the
// defaults of defaults, plus --config. Each flag's help names its
// environment variable.
func AddServeFlags(fs *pflag.FlagSet, defaults Config) {
	fs.String(flagConfig, "", "YAML config file; its keys are the options' names in snake_case, such as http_addr (env "+envConfigFile+")")
	v := reflect.ValueOf(defaults)
	for i, f := range configFields() {
		name, usage := flagName(f.key), f.usage+" (env "+envName(f.key)+")"
		switch def := v.Field(i).Interface().(type) {
		case string:
			fs.String(name, def, usage)
		case int:
			fs.Int(name, def, usage)
		case int64:
			fs.Int64(name, def, usage)
		case bool:
			fs.Bool(name, def, usage)
		case time.Duration:
			fs.Duration(name, def, usage)
		case []string:
			fs.Var(&commaList{values: def}, name, usage)
		default:
			panic(fmt.Sprintf("config: option %s has unsupported type %T", f.key, def))
		}
	}
}

// commaList is a flag of comma-separated values that may be given several
// times. Unlike pflag's string slice it parses no CSV, so setting it never
// fails, and a secret's value never shows up in a parse error; the loader
// splits and checks the text like an environment variable's.
type commaList struct {
	values []string
	set    bool
}

// String implements pflag.Value: the values joined by commas.
func (l *commaList) String() string { return strings.Join(l.values, ",") }

// Set implements pflag.Value; the first Set replaces the default.
func (l *commaList) Set(v string) error {
	if !l.set {
		l.values, l.set = nil, true
	}
	l.values = append(l.values, v)
	return nil
}

// Type implements pflag.Value; help shows it as the value's name.
func (l *commaList) Type() string { return "strings" }

// LoadConfig builds the configuration from, in decreasing precedence, the
// flags of fs that were set on the command line, the environment environ
// (KEY=value strings, as os.Environ returns), the YAML file named by
// --config or TROUPE_CONFIG, and the defaults of fs's flags (see
// AddServeFlags). It validates the result; an error names the option as
// the user wrote it and the bad value. A key of the YAML file that is no
// option is an error; environment variables that are no option are
// ignored. An empty environment variable counts as unset.
func LoadConfig(fs *pflag.FlagSet, environ []string) (Config, error) {
	envK := koanf.New(".")
	err := envK.Load(env.Provider(".", env.Opt{
		Prefix:      EnvPrefix,
		EnvironFunc: func() []string { return environ },
		TransformFunc: func(k, v string) (string, any) {
			key := strings.ToLower(strings.TrimPrefix(k, EnvPrefix))
			if _, ok := fieldByKey(key); !ok || v == "" {
				return "", nil
			}
			return key, v
		},
	}), nil)
	if err != nil {
		return Config{}, fmt.Errorf("read environment: %w", err)
	}

	path, _ := fs.GetString(flagConfig)
	if !fs.Changed(flagConfig) {
		path = lookupEnv(environ, envConfigFile)
	}
	fileK := koanf.New(".")
	if path != "" {
		if err := fileK.Load(file.Provider(path), yaml.Parser()); err != nil {
			return Config{}, fmt.Errorf("config file %s: %w", path, err)
		}
		for _, key := range fileK.Keys() {
			if _, ok := fieldByKey(key); !ok {
				return Config{}, fmt.Errorf("config file %s: unknown key %q (the keys are the options' names in snake_case, such as http_addr; see troupe serve --help)", path, key)
			}
		}
	}

	k := koanf.New(".")
	if err := k.Merge(fileK); err != nil {
		return Config{}, fmt.Errorf("merge config file: %w", err)
	}
	if err := k.Merge(envK); err != nil {
		return Config{}, fmt.Errorf("merge environment: %w", err)
	}
	// With k given, posflag takes a flag's default only for an option that
	// no other source set, and a flag given on the command line always.
	err = k.Load(posflag.ProviderWithFlag(fs, ".", k, func(f *pflag.Flag) (string, any) {
		key := keyOfFlag(f.Name)
		if key == "" {
			return "", nil
		}
		return key, posflag.FlagVal(fs, f)
	}), nil)
	if err != nil {
		return Config{}, fmt.Errorf("read flags: %w", err)
	}

	name := func(key string) string {
		switch {
		case fs.Changed(flagName(key)):
			return "--" + flagName(key)
		case envK.Exists(key):
			return envName(key)
		case fileK.Exists(key):
			return fmt.Sprintf("%s (in %s)", key, path)
		}
		return envName(key)
	}
	var cfg Config
	v := reflect.ValueOf(&cfg).Elem()
	for i, f := range configFields() {
		raw := k.Get(f.key)
		val, err := convert(raw, f.typ)
		if err != nil {
			shown := quote(fmt.Sprint(raw))
			if s, ok := raw.(string); ok {
				shown = quote(s)
			}
			if f.secret {
				shown = "(value hidden)"
			}
			return Config{}, fmt.Errorf("invalid %s %s: %w", name(f.key), shown, err)
		}
		v.Field(i).Set(val)
	}
	if err := cfg.validate(name); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// lookupEnv returns the value of the variable key in environ, or "".
func lookupEnv(environ []string, key string) string {
	for _, kv := range slices.Backward(environ) {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}

// convert turns a value read from a flag, an environment variable or the
// YAML file into an option's type. Text is parsed; YAML's own types are
// taken as they are when they fit.
func convert(raw any, typ reflect.Type) (reflect.Value, error) {
	if raw == nil {
		return reflect.Zero(typ), nil
	}
	var out any
	var err error
	switch reflect.Zero(typ).Interface().(type) {
	case string:
		out, err = toString(raw)
	case int:
		var n int64
		n, err = toInt(raw)
		if err == nil && (n < math.MinInt || n > math.MaxInt) {
			err = errors.New("want a whole number in range")
		}
		out = int(n)
	case int64:
		out, err = toInt(raw)
	case bool:
		out, err = toBool(raw)
	case time.Duration:
		out, err = toDuration(raw)
	case []string:
		out, err = toStrings(raw)
	default:
		err = fmt.Errorf("unsupported option type %s", typ)
	}
	if err != nil {
		return reflect.Value{}, err
	}
	return reflect.ValueOf(out), nil
}

func toString(raw any) (string, error) {
	switch v := raw.(type) {
	case string:
		return v, nil
	case int, int64, uint64, float64, bool:
		return fmt.Sprint(v), nil
	}
	return "", fmt.Errorf("want text, got %T", raw)
}

func toInt(raw any) (int64, error) {
	switch v := raw.(type) {
	case int:
		return int64(v), nil
	case int64:
		return v, nil
	case uint64:
		if v > math.MaxInt64 {
			return 0, errors.New("want a whole number in range")
		}
		return int64(v), nil
	case float64:
		if v != math.Trunc(v) || math.Abs(v) > math.MaxInt64 {
			return 0, errors.New("want a whole number")
		}
		return int64(v), nil
	case string:
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return 0, errors.New("want a whole number")
		}
		return n, nil
	}
	return 0, fmt.Errorf("want a whole number, got %T", raw)
}

func toBool(raw any) (bool, error) {
	switch v := raw.(type) {
	case bool:
		return v, nil
	case string:
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return false, errors.New("want true or false")
		}
		return b, nil
	}
	return false, fmt.Errorf("want true or false, got %T", raw)
}

func toDuration(raw any) (time.Duration, error) {
	switch v := raw.(type) {
	case time.Duration:
		return v, nil
	case string:
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil {
			return 0, errors.New("want a duration with a unit, such as 500ms, 30s or 5m")
		}
		return d, nil
	}
	// A bare number is ambiguous (seconds? nanoseconds?), so it is refused.
	return 0, errors.New("want a duration with a unit, such as 500ms, 30s or 5m")
}

func toStrings(raw any) ([]string, error) {
	var items []string
	switch v := raw.(type) {
	case []string:
		items = v
	case string:
		items = strings.Split(v, ",")
	case []any:
		for _, item := range v {
			s, ok := item.(string)
			if !ok {
				return nil, fmt.Errorf("want a list of text, got an item of type %T", item)
			}
			items = append(items, s)
		}
	default:
		return nil, fmt.Errorf("want a comma-separated list, got %T", raw)
	}
	// Empty items are dropped, so that "a,,b" and a trailing comma are
	// harmless; no items at all is nil, the same as unset.
	var out []string
	for _, s := range items {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out, nil
}
