package main

import (
	"maps"
	"slices"
	"time"

	"github.com/troupe-go/troupe/actors"
	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/http"
)

// ActorsConfig returns the runtime's share of the configuration.
func (c Config) ActorsConfig() actors.Config { return c.actorsOptions().WithDefaults() }

// actorsOptions maps the options onto the runtime's config, before its
// defaults fill the fields that no option sets.
func (c Config) actorsOptions() actors.Config {
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
		MaxResultBytes:  c.MaxResultBytes,
		ExternalTypes:   jobTypes(c.ExternalTypes),
		JobTimeout:      jobTimeout(c.JobTimeout),
		QueueLimits:     maps.Clone(map[string]int(c.QueueLimits)),
		Retention: actors.Retention{
			Completed: retention(c.RetentionCompleted),
			Failed:    retention(c.RetentionFailed),
			Canceled:  retention(c.RetentionCanceled),
		},
	}
}

// retention maps a retention option, where 0 keeps for ever, to the
// runtime's setting, where 0 means the default.
func retention(d time.Duration) time.Duration {
	if d == 0 {
		return actors.KeepForever
	}
	return d
}

// jobTimeout maps job_timeout, where 0 means none, to the runtime's
// setting, where 0 means the default.
func jobTimeout(d time.Duration) time.Duration {
	if d == 0 {
		return actors.NoTimeout
	}
	return d
}

// HTTPConfig returns the API's share of the configuration. Requests in
// flight get the shutdown timeout too, but no more than the API's own
// default: they are short, and the jobs behind them matter more.
func (c Config) HTTPConfig() http.Config { return c.httpOptions().WithDefaults() }

// httpOptions maps the options onto the API's config, before its defaults
// fill the fields that no option sets.
func (c Config) httpOptions() http.Config {
	return http.Config{
		Addr:            c.HTTPAddr,
		APITokens:       slices.Clone(c.APITokens),
		WorkerTokens:    slices.Clone(c.WorkerTokens),
		Insecure:        c.Insecure,
		MaxBodyBytes:    c.MaxBodyBytes,
		MaxPayloadBytes: c.MaxPayloadBytes,
		ShutdownTimeout: min(c.ShutdownTimeout, http.ShutdownTimeoutDefault),
		IdempotencyTTL:  c.IdempotencyTTL,
	}
}

// actorsOptionKeys names the option behind each field of actors.Config
// that an option sets, so that the runtime's errors name the option.
var actorsOptionKeys = map[string]string{
	"Workers":         "workers",
	"QueueSize":       "queue_size",
	"MaxAttempts":     "max_attempts",
	"RetryBaseDelay":  "retry_base_delay",
	"RetryMaxDelay":   "retry_max_delay",
	"ShutdownTimeout": "shutdown_timeout",
	"Node":            "node",
	"LeaseDuration":   "lease_duration",
	"RescueInterval":  "rescue_interval",
	"PollInterval":    "poll_interval",
	"MaxPayloadBytes": "max_payload_bytes",
	"MaxResultBytes":  "max_result_bytes",
	"ExternalTypes":   "external_types",
	"JobTimeout":      "job_timeout",
	"QueueLimits":     "queue_limits",
	// The runtime names a retention by its path in Config.
	"Retention.Completed": "retention_completed",
	"Retention.Failed":    "retention_failed",
	"Retention.Canceled":  "retention_canceled",
}

// httpOptionKeys names the option behind each field of http.Config, so
// that the API's errors name the option. The batch body limit follows
// max_body_bytes.
var httpOptionKeys = map[string]string{
	"Addr":              "http_addr",
	"APITokens":         "api_tokens",
	"WorkerTokens":      "worker_tokens",
	"Insecure":          "insecure",
	"MaxBodyBytes":      "max_body_bytes",
	"BatchMaxBodyBytes": "max_body_bytes",
	"MaxPayloadBytes":   "max_payload_bytes",
	"ShutdownTimeout":   "shutdown_timeout",
	"IdempotencyTTL":    "idempotency_ttl",
}

// jobTypes maps a list of type names onto job types; none is nil.
func jobTypes(names []string) []domain.JobType {
	if len(names) == 0 {
		return nil
	}
	out := make([]domain.JobType, len(names))
	for i, n := range names {
		out[i] = domain.JobType(n)
	}
	return out
}

// jitter maps the retry_jitter switch to the runtime's setting.
func jitter(on bool) actors.Jitter {
	if on {
		return actors.FullJitter
	}
	return actors.NoJitter
}
