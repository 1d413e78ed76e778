package main

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/troupe-go/troupe/actors"
	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/http"
	"github.com/troupe-go/troupe/persistence/badgerstore"
	"github.com/troupe-go/troupe/persistence/pgstore"
)

// Validate checks every option and returns an error naming each one that
// is wrong by its environment variable, with the bad value.
func (c Config) Validate() error { return c.validate(envName) }

// validate checks every option; name turns a key into what the user wrote
// (a flag, an environment variable, a key of the config file). The options
// that configure a library are checked by that library, whose errors name
// its fields; validate names the options behind them instead.
func (c Config) validate(name func(key string) string) error {
	var errs optionErrors
	errs.add("", checkStore(storeOptions{
		store:        c.Store,
		dataDir:      c.DataDir,
		minFreeBytes: c.MinFreeBytes,
		databaseURL:  c.DatabaseURL,
		schema:       c.DatabaseSchema,
		maxConns:     c.DatabaseMaxConns,
	}, name, func(store string) string { return fmt.Sprintf("when %s=%s", name("store"), store) })...)
	bad := func(key string, value any, format string, args ...any) {
		errs.add(key, invalidOption(name(key), value, fmt.Sprintf(format, args...)))
	}
	if c.DatabaseMaxConns < 0 || c.DatabaseMaxConns > math.MaxInt32 {
		bad("database_max_conns", c.DatabaseMaxConns, "must be from 0 to %d", math.MaxInt32)
	}
	if c.JobTimeout < 0 {
		bad("job_timeout", c.JobTimeout, "must be 0 (none) or more")
	}
	for _, r := range []struct {
		key string
		d   time.Duration
	}{
		{"retention_completed", c.RetentionCompleted},
		{"retention_failed", c.RetentionFailed},
		{"retention_canceled", c.RetentionCanceled},
	} {
		if r.d < 0 {
			bad(r.key, r.d, "must be 0 (keep for ever) or more")
		}
	}
	if !slices.Contains(LogLevels(), c.LogLevel) {
		bad("log_level", c.LogLevel, "must be one of %s", strings.Join(LogLevels(), ", "))
	}
	if !slices.Contains(LogFormats(), c.LogFormat) {
		bad("log_format", c.LogFormat, "must be one of %s", strings.Join(LogFormats(), ", "))
	}

	var demo []domain.JobType
	if c.Demo {
		demo = demoTypes()
	}
	errs.add("", c.checkHandlerTypes(name, demo)...)

	// In the binary an option's zero is a value the user gave (the flags
	// carry the defaults), so the libraries check the options as given;
	// only what no option sets, and the node's name (empty means
	// hostname-pid), takes the library's default.
	a := c.actorsOptions()
	filled := a.WithDefaults()
	a.Node, a.HandBackTimeout = filled.Node, filled.HandBackTimeout
	errs.addKeyed(actorsErrors(a.Validate(), name)...)
	h := c.httpOptions()
	h.BatchMaxBodyBytes = h.WithDefaults().BatchMaxBodyBytes
	errs.addKeyed(c.httpErrors(h.Validate(), name)...)
	return errs.join()
}

// optionError is an error about one option, by its key ("" when it is
// about no single option).
type optionError struct {
	key string
	err error
}

// optionErrors collects the errors of a validation, one per option: the
// runtime and the API share some options (max_payload_bytes), and each
// would report it.
type optionErrors []optionError

func (o *optionErrors) add(key string, errs ...error) {
	for _, err := range errs {
		o.addKeyed(optionError{key: key, err: err})
	}
}

func (o *optionErrors) addKeyed(errs ...optionError) {
	for _, e := range errs {
		if e.key != "" && slices.ContainsFunc(*o, func(have optionError) bool { return have.key == e.key }) {
			continue
		}
		*o = append(*o, e)
	}
}

func (o optionErrors) join() error {
	errs := make([]error, len(o))
	for i, e := range o {
		errs[i] = e.err
	}
	return errors.Join(errs...)
}

// invalidOption says that the option the user wrote as name has a bad
// value, and why.
func invalidOption(name string, value any, reason string) error {
	return fmt.Errorf("invalid %s %s: %s", name, quote(value), reason)
}

// actorsErrors turns the errors of actors.Config.Validate into errors
// about the options behind the fields; name spells an option's key as the
// user wrote it.
func actorsErrors(err error, name func(key string) string) []optionError {
	var out []optionError
	for _, e := range unjoin(err) {
		var ce *actors.ConfigError
		key := ""
		if errors.As(e, &ce) {
			key = actorsOptionKeys[ce.Field]
		}
		if key == "" {
			out = append(out, optionError{err: e})
			continue
		}
		reason := ce.Reason
		if than := actorsOptionKeys[ce.Than]; than != "" {
			reason = fmt.Sprintf("%s %s (%s)", reason, name(than), quote(ce.ThanValue))
		}
		out = append(out, optionError{key: key, err: invalidOption(name(key), ce.Value, reason)})
	}
	return out
}

// httpErrors turns the errors of http.Config.Validate into errors about
// the options behind the fields.
func (c Config) httpErrors(err error, name func(key string) string) []optionError {
	var out []optionError
	for _, e := range unjoin(err) {
		var ce *http.ConfigError
		switch {
		case errors.Is(e, http.ErrInsecureAddr):
			out = append(out, optionError{key: "insecure", err: fmt.Errorf(
				"%w: %s %s is reachable from other machines, and without tokens anyone who can reach it could submit and cancel jobs; "+
					"set %s, listen on a loopback address such as %s, or pass --insecure (%s=true) to accept the risk",
				http.ErrInsecureAddr, name("http_addr"), quote(c.HTTPAddr), name("api_tokens"), http.AddrDefault, envName("insecure"))})
		case errors.As(e, &ce) && httpOptionKeys[ce.Field] != "":
			key := httpOptionKeys[ce.Field]
			if ce.Index >= 0 {
				// A token is a secret: it is named by its place, not shown.
				out = append(out, optionError{key: key, err: fmt.Errorf("invalid %s: token %d %s", name(key), ce.Index+1, ce.Reason)})
				continue
			}
			out = append(out, optionError{key: key, err: invalidOption(name(key), ce.Value, ce.Reason)})
		default:
			out = append(out, optionError{err: e})
		}
	}
	return out
}

// unjoin lists the errors that errors.Join joined, or err alone.
func unjoin(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// storeOptions are the options that choose the store and say where it is.
type storeOptions struct {
	store string
	// dataDir is Badger's directory; it is required unless
	// dataDirOptional.
	dataDir         string
	dataDirOptional bool
	minFreeBytes    int64
	databaseURL     string
	schema          string
	maxConns        int
}

// checkStore checks the options that choose and locate the store, for
// serve and bench alike: which store, and what that store needs, are the
// binary's rules; the stores check their own options, and checkStore names
// the option behind a field. name spells an option's key as the user wrote
// it and when spells the condition "the store is s", as in "is required
// when --store=postgres".
func checkStore(o storeOptions, name func(key string) string, when func(store string) string) []error {
	switch o.store {
	case StoreBadger:
		if o.dataDirOptional {
			return nil
		}
		err := badgerstore.Options{Dir: strings.TrimSpace(o.dataDir), MinFreeBytes: o.minFreeBytes}.WithDefaults().Validate()
		var oe *badgerstore.OptionsError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &oe) && oe.Field == "Dir":
			return []error{fmt.Errorf("%s must not be empty %s", name("data_dir"), when(StoreBadger))}
		case errors.As(err, &oe) && oe.Field == "MinFreeBytes":
			// The memtable is sized from the floor, so the least floor is
			// the smallest memtable's.
			return []error{invalidOption(name("min_free_bytes"), o.minFreeBytes,
				fmt.Sprintf("must be 0 (derived) or at least %d, what the smallest memtable needs", badgerstore.MinFreeBytesFor(badgerstore.MemTableSizeMin)))}
		}
		return []error{err}
	case StorePostgres:
		var errs []error
		if strings.TrimSpace(o.schema) == "" {
			// The store would take its default; the binary's default is
			// explicit, so an empty one is a mistake.
			errs = append(errs, fmt.Errorf("%s must not be empty %s", name("database_schema"), when(StorePostgres)))
		}
		maxConns := int32(0)
		if o.maxConns > 0 && o.maxConns <= math.MaxInt32 {
			maxConns = int32(o.maxConns) // the range is the option's own rule
		}
		err := pgstore.Options{URL: strings.TrimSpace(o.databaseURL), Schema: o.schema, MaxConns: maxConns}.WithDefaults().Validate()
		var oe *pgstore.OptionsError
		switch {
		case err == nil:
		case errors.As(err, &oe) && oe.Field == "URL":
			errs = append([]error{fmt.Errorf("%s is required %s", name("database_url"), when(StorePostgres))}, errs...)
		case errors.As(err, &oe) && oe.Field == "Schema":
			errs = append(errs, invalidOption(name("database_schema"), o.schema, oe.Reason))
		default:
			errs = append(errs, err)
		}
		return errs
	case StoreMemory:
		return nil
	}
	return []error{invalidOption(name("store"), o.store, "must be one of "+strings.Join(Stores(), ", "))}
}

// quote shows a value in an error message: strings quoted, the rest as Go
// prints them.
func quote(v any) string {
	if s, ok := v.(string); ok {
		return strconv.Quote(s)
	}
	return fmt.Sprint(v)
}
