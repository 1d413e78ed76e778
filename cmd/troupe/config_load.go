package main

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"math"
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
)

// AddServeFlags defines a flag for every option of Config, with the
// defaults of defaults, plus --config. Each flag's help names its
// environment variable.
func AddServeFlags(fs *pflag.FlagSet, defaults Config) {
	fs.String(flagConfig, "", "YAML config file; its keys are the options' names in snake_case, such as http_addr (env "+envConfigFile+")")
	v := reflect.ValueOf(defaults)
	for _, f := range configFields() {
		name, usage := flagName(f.key), f.usage+" (env "+envName(f.key)+")"
		switch def := v.Field(f.index).Interface().(type) {
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
		case QueueLimits:
			fs.Var(&queueLimitsFlag{text: def.String()}, name, usage)
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
	if v := lookupEnv(environ, EnvPrefix+strings.ToUpper(retiredSyncWrites)); v != "" {
		return Config{}, fmt.Errorf("%s%s=%s: %s", EnvPrefix, strings.ToUpper(retiredSyncWrites), v, syncWritesRetired)
	}
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
	var (
		schedules []actors.ScheduleParams
		webhooks  []WebhookSpec
		queues    []QueueSpec
		// nested spells, by option, a key the file wrote as a mapping.
		nested map[string]string
	)
	if path != "" {
		if err := fileK.Load(file.Provider(path), yaml.Parser()); err != nil {
			return Config{}, fmt.Errorf("config file %s: %w", path, err)
		}
		if nested, err = flattenRetention(fileK); err != nil {
			return Config{}, fmt.Errorf("config file %s: %w", path, err)
		}
		if err := unalias(fileK, nested); err != nil {
			return Config{}, fmt.Errorf("config file %s: %w", path, err)
		}
		if fileK.Exists(fileScheduleKey) {
			if schedules, err = toSchedules(fileK.Get(fileScheduleKey)); err != nil {
				return Config{}, fmt.Errorf("config file %s: %w", path, err)
			}
			fileK.Delete(fileScheduleKey)
		}
		if fileK.Exists(fileWebhookKey) {
			if webhooks, err = toWebhooks(fileK.Get(fileWebhookKey), environ); err != nil {
				return Config{}, fmt.Errorf("config file %s: %w", path, err)
			}
			fileK.Delete(fileWebhookKey)
		}
		if fileK.Exists(fileQueueKey) {
			if queues, err = toQueues(fileK.Get(fileQueueKey)); err != nil {
				return Config{}, fmt.Errorf("config file %s: %w", path, err)
			}
			fileK.Delete(fileQueueKey)
		}
		for _, key := range fileK.Keys() {
			// A mapping's entries are keys of their own: queue_limits.email.
			if parent, _, ok := strings.Cut(key, "."); ok && parent == "queue_limits" {
				continue
			}
			if key == retiredSyncWrites {
				return Config{}, fmt.Errorf("config file %s: key %q: %s", path, key, syncWritesRetired)
			}
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
			return fmt.Sprintf("%s (in %s)", cmp.Or(nested[key], key), path)
		}
		return envName(key)
	}
	var cfg Config
	v := reflect.ValueOf(&cfg).Elem()
	for _, f := range configFields() {
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
		v.Field(f.index).Set(val)
	}
	cfg.Schedules = schedules
	cfg.Webhooks = webhooks
	cfg.Queues = queues
	if err := cfg.validate(name); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// retentionStatuses are the keys of the retention mapping of the YAML
// file: retention.completed is the option retention_completed.
var retentionStatuses = []string{"completed", "failed", "canceled"}

// flattenRetention turns the file's retention mapping into the options
// retention_completed and so on, and returns how the file spelled each.
// Its other keys are left for the check of unknown keys.
func flattenRetention(k *koanf.Koanf) (map[string]string, error) {
	nested := map[string]string{}
	for _, status := range retentionStatuses {
		from, to := "retention."+status, "retention_"+status
		if !k.Exists(from) {
			continue
		}
		if k.Exists(to) {
			return nil, fmt.Errorf("both %s and %s are set; keep one", from, to)
		}
		if err := k.Set(to, k.Get(from)); err != nil {
			return nil, fmt.Errorf("%s: %w", from, err)
		}
		k.Delete(from)
		nested[to] = from
	}
	return nested, nil
}

// fileAliases are other spellings of options in the YAML file: the API's
// camelCase, as the worker protocol's documentation writes it.
var fileAliases = map[string]string{"externalTypes": "external_types"}

// unalias renames the file's aliases to their options' keys, and records
// the file's spelling in nested for errors.
func unalias(k *koanf.Koanf, nested map[string]string) error {
	for _, from := range slices.Sorted(maps.Keys(fileAliases)) {
		to := fileAliases[from]
		if !k.Exists(from) {
			continue
		}
		if k.Exists(to) {
			return fmt.Errorf("both %s and %s are set; keep one", from, to)
		}
		if err := k.Set(to, k.Get(from)); err != nil {
			return fmt.Errorf("%s: %w", from, err)
		}
		k.Delete(from)
		nested[to] = from
	}
	return nil
}

// retiredSyncWrites is the option durability replaced. Ignoring it, as
// unknown variables are, would quietly change what a deployment that set
// it survives.
const (
	retiredSyncWrites = "sync_writes"
	syncWritesRetired = "replaced by durability (TROUPE_DURABILITY): full, the default, fsyncs what clients are told is stored; sync-all fsyncs every write (the old true); none fsyncs nothing (the old false)"
)

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
	case QueueLimits:
		out, err = toQueueLimits(raw)
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
	case int, int64, uint64, float64:
		// A bare 0 is no ambiguity: YAML reads "0" as a number, and it
		// means none or for ever where it is allowed.
		if fmt.Sprint(v) == "0" {
			return 0, nil
		}
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

// queueLimitsHint says how queue limits are written.
const queueLimitsHint = "want name=limit pairs separated by commas, such as email=2,reports=1"

// toQueueLimits reads queue limits from text ("email=2,reports=1") or from
// a YAML mapping. The names and limits are checked by the runtime.
func toQueueLimits(raw any) (QueueLimits, error) {
	out := QueueLimits{}
	add := func(name string, limit any) error {
		name = strings.TrimSpace(name)
		if _, dup := out[name]; dup {
			return fmt.Errorf("queue %q appears twice", name)
		}
		n, err := toInt(limit)
		if err != nil || n < math.MinInt32 || n > math.MaxInt32 {
			return fmt.Errorf("the limit of queue %q is not a whole number; %s", name, queueLimitsHint)
		}
		out[name] = int(n)
		return nil
	}
	switch v := raw.(type) {
	case QueueLimits:
		return v, nil
	case string:
		for item := range strings.SplitSeq(v, ",") {
			if strings.TrimSpace(item) == "" {
				continue
			}
			name, limit, ok := strings.Cut(item, "=")
			if !ok {
				return nil, fmt.Errorf("%q has no =; %s", strings.TrimSpace(item), queueLimitsHint)
			}
			if err := add(name, limit); err != nil {
				return nil, err
			}
		}
	case map[string]any:
		for name, limit := range v {
			if err := add(name, limit); err != nil {
				return nil, err
			}
		}
	default:
		return nil, fmt.Errorf("%s, or a mapping of names to limits; got %T", queueLimitsHint, raw)
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}
