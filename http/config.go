package http

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/troupe-go/troupe/actors"
)

// Defaults and bounds of Config.
const (
	// AddrDefault listens on loopback only, so an unconfigured server is
	// never reachable from the network.
	AddrDefault = "127.0.0.1:8080"
	// MaxBodyBytesDefault bounds a request body to 1 MiB.
	MaxBodyBytesDefault int64 = 1 << 20
	// BatchBodyFactor sizes the default body limit of POST /jobs/batch: a
	// batch may hold many jobs, so it gets this many times MaxBodyBytes
	// (8 MiB with the defaults) unless BatchMaxBodyBytes says otherwise.
	// A batch is stored in one write, and 8 MiB of jobs fits one write of
	// the Badger store with its default memory table (about 9.6 MiB).
	BatchBodyFactor = 8
	// MaxPayloadBytesDefault bounds a job's payload to 1 MiB, as the
	// runtime does by default (actors.MaxPayloadBytesDefault).
	MaxPayloadBytesDefault int64 = actors.MaxPayloadBytesDefault
	// ShutdownTimeoutDefault is how long Stop waits for requests in flight.
	ShutdownTimeoutDefault = 10 * time.Second
)

// ErrInsecureAddr is returned by Config.Validate (and so by NewServer) for
// an API without tokens on an address that is not loopback.
var ErrInsecureAddr = errors.New("refusing to serve the API without tokens on a non-loopback address")

// Config is the HTTP server's configuration. The zero value listens on
// 127.0.0.1:8080 without authentication.
type Config struct {
	// Addr is the TCP address to listen on, host:port. A port of 0 picks a
	// free one (see Server.Addr). Defaults to 127.0.0.1:8080.
	Addr string
	// APITokens are the bearer tokens that the API accepts. When empty, the
	// API is open, which is allowed only on a loopback address unless
	// Insecure is set. Defaults to none.
	APITokens []string
	// WorkerTokens are bearer tokens that only external workers use: they
	// are accepted on the worker protocol's routes (POST /workers/claim,
	// /workers/outcomes and /jobs/{id}/heartbeat, /complete, /fail) and
	// refused with 403 everywhere else. API tokens work on those routes
	// too. Worker tokens do not close the rest of the API: without
	// APITokens it stays open, on loopback only unless Insecure is set.
	// Defaults to none.
	WorkerTokens []string
	// Insecure allows an open API (no APITokens) on a non-loopback address.
	// Defaults to false.
	Insecure bool
	// MaxBodyBytes bounds a request body; a larger one gets 413. Defaults
	// to 1 MiB.
	MaxBodyBytes int64
	// BatchMaxBodyBytes bounds the body of POST /jobs/batch, which carries
	// up to MaxBatchJobs jobs; a larger one gets 413. Defaults to
	// BatchBodyFactor × MaxBodyBytes (8 MiB when MaxBodyBytes is 1 MiB), so
	// that raising MaxBodyBytes raises it too.
	BatchMaxBodyBytes int64
	// MaxPayloadBytes bounds the payload of each job, in POST /jobs and in
	// every job of POST /jobs/batch, whose body limit alone would let one
	// job take all of it; a larger payload gets 413 naming the job. Set it
	// to the runtime's limit (actors.Config.MaxPayloadBytes), which the
	// runtime enforces again. Defaults to 1 MiB.
	MaxPayloadBytes int64
	// ShutdownTimeout bounds how long Stop waits for requests in flight
	// before closing their connections. Defaults to 10s.
	ShutdownTimeout time.Duration
	// IdempotencyTTL is how long the answer to a request with an
	// Idempotency-Key is kept, and so how long a retry with the key gets it
	// again. Defaults to 24h.
	IdempotencyTTL time.Duration
}

// WithDefaults returns a copy of c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	c.Addr = cmp.Or(c.Addr, AddrDefault)
	c.MaxBodyBytes = cmp.Or(c.MaxBodyBytes, MaxBodyBytesDefault)
	if c.BatchMaxBodyBytes == 0 {
		c.BatchMaxBodyBytes = math.MaxInt64
		if c.MaxBodyBytes <= math.MaxInt64/BatchBodyFactor {
			c.BatchMaxBodyBytes = c.MaxBodyBytes * BatchBodyFactor
		}
	}
	c.MaxPayloadBytes = cmp.Or(c.MaxPayloadBytes, MaxPayloadBytesDefault)
	c.ShutdownTimeout = cmp.Or(c.ShutdownTimeout, ShutdownTimeoutDefault)
	c.IdempotencyTTL = cmp.Or(c.IdempotencyTTL, IdempotencyTTLDefault)
	return c
}

// Validate reports every field that is out of bounds: the *ConfigError of
// each, joined. It expects a config filled by WithDefaults. An open API on
// an address that is not loopback gives an error wrapping ErrInsecureAddr.
func (c Config) Validate() error {
	var errs []error
	bad := func(field string, value any, reason string, args ...any) {
		errs = append(errs, &ConfigError{Field: field, Index: -1, Value: value, Reason: fmt.Sprintf(reason, args...)})
	}
	host, port, err := net.SplitHostPort(c.Addr)
	if err != nil {
		bad("Addr", c.Addr, "want host:port, such as %s", AddrDefault)
	} else if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		bad("Addr", c.Addr, "port %q is not a number from 0 to 65535", port)
	}
	if c.MaxBodyBytes < 1 {
		bad("MaxBodyBytes", c.MaxBodyBytes, "must be at least 1")
	}
	if c.BatchMaxBodyBytes < 1 {
		bad("BatchMaxBodyBytes", c.BatchMaxBodyBytes, "must be at least 1")
	}
	if c.MaxPayloadBytes < 1 {
		bad("MaxPayloadBytes", c.MaxPayloadBytes, "must be at least 1")
	}
	if c.ShutdownTimeout < 0 {
		bad("ShutdownTimeout", c.ShutdownTimeout, "must be 0 (the default) or more")
	}
	if c.IdempotencyTTL < time.Minute {
		bad("IdempotencyTTL", c.IdempotencyTTL, "must be at least 1m, longer than a request may run")
	}
	errs = append(errs, tokenErrors("APITokens", c.APITokens)...)
	errs = append(errs, tokenErrors("WorkerTokens", c.WorkerTokens)...)
	for i, tok := range c.WorkerTokens {
		// One token with two meanings would make a worker token an API one.
		if tok != "" && slices.Contains(c.APITokens, tok) {
			errs = append(errs, &ConfigError{Field: "WorkerTokens", Index: i, Reason: "is also an API token; a worker token must differ from every API token"})
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if len(c.APITokens) == 0 && !c.Insecure && !IsLoopback(host) {
		return fmt.Errorf("http: %w: %q is reachable from other machines, and without tokens anyone who can reach it could submit and cancel jobs; "+
			"set APITokens, listen on a loopback address such as %s, or set Insecure to accept the risk", ErrInsecureAddr, c.Addr, AddrDefault)
	}
	return nil
}

// tokenErrors checks bearer tokens: none empty, none with characters that
// a header cannot carry. A token is a secret: its value stays out of the
// error.
func tokenErrors(field string, tokens []string) []error {
	var errs []error
	for i, tok := range tokens {
		if tok == "" {
			errs = append(errs, &ConfigError{Field: field, Index: i, Reason: "is empty"})
		} else if strings.ContainsFunc(tok, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
			errs = append(errs, &ConfigError{Field: field, Index: i, Reason: "contains white space or control characters, which cannot be sent in a header"})
		}
	}
	return errs
}

// IsLoopback reports whether host (the host part of an address) names the
// loopback interface: localhost, 127.0.0.0/8 or ::1. An empty host means
// every interface, so it is not loopback.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	return ip != nil && ip.IsLoopback()
}
