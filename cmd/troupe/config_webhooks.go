package main

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/webhook"
)

// fileWebhookKey is the YAML key of the webhooks list.
const fileWebhookKey = "webhooks"

// webhookKeys are the keys of an entry of the webhooks list, spelled like
// the schedules' (camelCase), since neither is an option.
var webhookKeys = []string{"type", "url", "timeout", "headers", "secret", "secretEnv"}

// The bounds of a webhook's call timeout.
const (
	webhookTimeoutDefault = webhook.DefaultTimeout
	webhookTimeoutMax     = webhook.MaxTimeout
)

// WebhookSpec is one entry of the webhooks list of the YAML file: a job
// type whose jobs are handled by POSTing them to URL (package webhook).
type WebhookSpec struct {
	// Type is the job type the endpoint handles.
	Type string
	// URL is the endpoint, http or https.
	URL string
	// Timeout bounds one call. Defaults to 30s, at most 1h.
	Timeout time.Duration
	// Headers are sent with every call; their values may be secrets
	// (Authorization) and are never logged.
	Headers map[string]string
	// Secret signs each call (Troupe-Signature): the file's secret, or the
	// value of the environment variable SecretEnv, read at start.
	Secret string
	// SecretEnv names the environment variable the secret came from, if
	// it came from one.
	SecretEnv string
}

// webhookConfig is the webhook package's configuration of the entry.
func (w WebhookSpec) webhookConfig() webhook.Config {
	return webhook.Config{
		Type:    domain.JobType(w.Type),
		URL:     w.URL,
		Timeout: w.Timeout,
		Headers: maps.Clone(w.Headers),
		Secret:  w.Secret,
	}
}

// logValue describes the webhook for the log: no secret, no header value,
// no password in the URL.
func (w WebhookSpec) logValue() map[string]any {
	secret := "(none)"
	if w.Secret != "" {
		secret = "(set)"
	}
	v := map[string]any{
		"type":    w.Type,
		"url":     redactURL(w.URL),
		"timeout": w.Timeout.String(),
		"headers": slices.Sorted(maps.Keys(w.Headers)),
		"secret":  secret,
	}
	if w.SecretEnv != "" {
		v["secretEnv"] = w.SecretEnv
	}
	return v
}

// redactURL hides a URL's password.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// toWebhooks reads the webhooks list of the YAML file, resolving each
// secretEnv in environ. Every error names the entry and the field; no
// error shows a secret or a header's value.
func toWebhooks(raw any, environ []string) ([]WebhookSpec, error) {
	if raw == nil {
		return nil, nil
	}
	items, ok := raw.([]any)
	if !ok {
		return nil, fmt.Errorf("%s: want a list of webhooks, got %T", fileWebhookKey, raw)
	}
	var (
		out  []WebhookSpec
		errs []error
		seen = map[string]int{}
	)
	for i, item := range items {
		w, err := toWebhook(item, environ)
		where := fmt.Sprintf("%s[%d]", fileWebhookKey, i)
		if w.Type != "" {
			where += fmt.Sprintf(" (%q)", w.Type)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
			continue
		}
		if first, dup := seen[w.Type]; dup {
			errs = append(errs, fmt.Errorf("%s: type %q is already handled by %s[%d]", where, w.Type, fileWebhookKey, first))
			continue
		}
		seen[w.Type] = i
		out = append(out, w)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// toWebhook reads one entry of the webhooks list. The type is returned
// even with an error, so that the error can name the entry.
func toWebhook(raw any, environ []string) (WebhookSpec, error) {
	w := WebhookSpec{Timeout: webhookTimeoutDefault}
	m, ok := raw.(map[string]any)
	if !ok {
		return w, fmt.Errorf("want a mapping with the keys %s, got %T", strings.Join(webhookKeys, ", "), raw)
	}
	var err error
	if v, ok := m["type"]; ok {
		if w.Type, err = toString(v); err != nil {
			return w, fmt.Errorf("type: %w", err)
		}
		w.Type = strings.TrimSpace(w.Type)
	}
	if _, err := toMap(raw, webhookKeys); err != nil {
		return w, err
	}
	switch {
	case w.Type == "":
		return w, errors.New("type is required")
	case len(w.Type) > domain.MaxJobTypeLength:
		return w, fmt.Errorf("type must be 1 to %d bytes", domain.MaxJobTypeLength)
	}

	if v, ok := m["url"]; ok {
		if w.URL, err = toString(v); err != nil {
			return w, fmt.Errorf("url: %w", err)
		}
	}
	if err := checkWebhookURL(strings.TrimSpace(w.URL)); err != nil {
		return w, err
	}
	w.URL = strings.TrimSpace(w.URL)

	if v, ok := m["timeout"]; ok {
		if w.Timeout, err = toDuration(v); err != nil {
			return w, fmt.Errorf("timeout: %w", err)
		}
		if w.Timeout <= 0 || w.Timeout > webhookTimeoutMax {
			return w, fmt.Errorf("timeout %s must be more than 0 and at most %s", w.Timeout, webhookTimeoutMax)
		}
	}

	if v, ok := m["headers"]; ok && v != nil {
		if w.Headers, err = toWebhookHeaders(v); err != nil {
			return w, fmt.Errorf("headers: %w", err)
		}
	}

	_, hasSecret := m["secret"]
	_, hasSecretEnv := m["secretEnv"]
	switch {
	case hasSecret && hasSecretEnv:
		return w, errors.New("set secret or secretEnv, not both")
	case hasSecret:
		if w.Secret, err = toString(m["secret"]); err != nil {
			return w, errors.New("secret: want text")
		}
		if w.Secret == "" {
			return w, errors.New("secret is empty; remove it to send unsigned calls")
		}
	case hasSecretEnv:
		if w.SecretEnv, err = toString(m["secretEnv"]); err != nil {
			return w, fmt.Errorf("secretEnv: %w", err)
		}
		if w.SecretEnv = strings.TrimSpace(w.SecretEnv); w.SecretEnv == "" {
			return w, errors.New("secretEnv is empty; name the environment variable that holds the secret")
		}
		if w.Secret = lookupEnv(environ, w.SecretEnv); w.Secret == "" {
			return w, fmt.Errorf("secretEnv names the environment variable %s, which is not set or empty", w.SecretEnv)
		}
	}
	return w, nil
}

// checkWebhookURL checks that raw is an http or https URL with a host.
// A bad URL is shown without its password.
func checkWebhookURL(raw string) error {
	if raw == "" {
		return errors.New(`url is required, such as "http://imgsvc:9000/jobs"`)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("url is not a valid URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("url %q must be http or https", u.Redacted())
	}
	if u.Host == "" || u.Hostname() == "" {
		return fmt.Errorf("url %q has no host", u.Redacted())
	}
	return nil
}

// toWebhookHeaders reads the headers mapping: valid header names, each
// once whatever its case, none of those Troupe sets, and values without
// line breaks. Errors name the header, never show its value.
func toWebhookHeaders(raw any) (map[string]string, error) {
	m, ok := raw.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("want a mapping of header names to values, got %T", raw)
	}
	out := make(map[string]string, len(m))
	canonical := map[string]string{}
	for _, name := range slices.Sorted(maps.Keys(m)) {
		if other, dup := canonical[strings.ToLower(name)]; dup {
			return nil, fmt.Errorf("%s and %s are the same header", other, name)
		}
		canonical[strings.ToLower(name)] = name
		value, err := toString(m[name])
		if err != nil {
			return nil, fmt.Errorf("%s: want text", name)
		}
		// The rules of package webhook, checked here so that a bad header
		// is refused with the file's other mistakes, naming its entry.
		if err := webhook.CheckHeader(name, value); err != nil {
			return nil, err
		}
		out[name] = value
	}
	return out, nil
}

// checkHandlerTypes checks that each job type has one kind of handler: an
// external type is no demo handler, a webhook type neither a demo handler
// nor an external type, and an external type is declared once. demo lists
// the demo handlers' types when they are registered.
func (c Config) checkHandlerTypes(name func(key string) string, demo []domain.JobType) []error {
	var errs []error
	isDemo := func(t string) bool { return slices.Contains(demo, domain.JobType(t)) }
	seen := map[string]bool{}
	for _, t := range c.ExternalTypes {
		switch {
		case seen[t]:
			errs = append(errs, invalidOption(name("external_types"), t, "is listed twice"))
		case isDemo(t):
			errs = append(errs, invalidOption(name("external_types"), t,
				fmt.Sprintf("is a demo handler's type; rename it, or turn the demo handlers off with %s=false", name("demo"))))
		}
		seen[t] = true
	}
	for i, w := range c.Webhooks {
		where := fmt.Sprintf("%s[%d] (%q)", fileWebhookKey, i, w.Type)
		switch {
		case seen[w.Type]:
			errs = append(errs, fmt.Errorf("%s: type %q is also in %s: a job type is run by external workers or by a webhook, not both",
				where, w.Type, name("external_types")))
		case isDemo(w.Type):
			errs = append(errs, fmt.Errorf("%s: type %q is a demo handler's type; rename it, or turn the demo handlers off with %s=false",
				where, w.Type, name("demo")))
		}
	}
	return errs
}
