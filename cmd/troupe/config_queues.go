package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"

	"github.com/troupe-go/troupe/domain"
)

// fileQueueKey is the YAML key of the queues list.
const fileQueueKey = "queues"

// The keys of a queue in the YAML file, of its rates and of its perKey,
// spelled as PUT /queues/{name} spells them, so that one document fits
// both.
var (
	queueKeys  = []string{"name", "limit", "rate", "perKey", "ordered", "fair"}
	rateKeys   = []string{"count", "per", "burst"}
	perKeyKeys = []string{"limit", "rate"}
)

// QueueSpec is one entry of the queues list of the YAML file: a queue's
// flow settings, stored at start and shared by every node. An entry
// replaces all the queue's settings (one with a name only clears them);
// a queue the file does not list keeps the settings it has.
type QueueSpec struct {
	Name     string
	Settings domain.QueueSettings
}

// logValue describes the queue for the log.
func (q QueueSpec) logValue() map[string]any {
	v := map[string]any{"name": q.Name}
	s := q.Settings
	if s.Limit > 0 {
		v["limit"] = s.Limit
	}
	rate := func(r *domain.Rate) string {
		return fmt.Sprintf("%d/%s burst %d", r.Count, r.Per, r.BurstSize())
	}
	if s.Rate != nil {
		v["rate"] = rate(s.Rate)
	}
	if s.PerKey != nil {
		k := map[string]any{"limit": s.PerKey.Limit}
		if s.PerKey.Rate != nil {
			k["rate"] = rate(s.PerKey.Rate)
		}
		v["perKey"] = k
	}
	if s.Ordered {
		v["ordered"] = true
	}
	if s.Fair {
		v["fair"] = true
	}
	return v
}

// queueFieldError is a mistake in one field of an entry of the queues
// list, named as in the API ("rate.per").
type queueFieldError struct {
	field string
	err   error
}

func (e *queueFieldError) Error() string { return e.field + ": " + e.err.Error() }

func (e *queueFieldError) Unwrap() error { return e.err }

func fieldErr(field string, err error) error { return &queueFieldError{field: field, err: err} }

// toQueues reads the queues list of the YAML file and checks each entry as
// PUT /queues/{name} would. Every error names the entry and the field, as
// queues[1].rate.per ("email"): ...; every bad entry is reported.
func toQueues(raw any) ([]QueueSpec, error) {
	if raw == nil {
		return nil, nil
	}
	items, ok := raw.([]any)
	if !ok {
		return nil, fmt.Errorf("%s: want a list of queues, got %T", fileQueueKey, raw)
	}
	var (
		out  []QueueSpec
		errs []error
		seen = map[string]int{}
	)
	for i, item := range items {
		q, entryErrs := toQueue(item)
		name := ""
		if q.Name != "" {
			name = fmt.Sprintf(" (%q)", q.Name)
		}
		for _, err := range entryErrs {
			var fe *queueFieldError
			if errors.As(err, &fe) {
				errs = append(errs, fmt.Errorf("%s[%d].%s%s: %w", fileQueueKey, i, fe.field, name, fe.err))
				continue
			}
			errs = append(errs, fmt.Errorf("%s[%d]%s: %w", fileQueueKey, i, name, err))
		}
		if len(entryErrs) > 0 {
			continue
		}
		if first, dup := seen[q.Name]; dup {
			errs = append(errs, fmt.Errorf("%s[%d]%s: queue %q is already set by %s[%d]", fileQueueKey, i, name, q.Name, fileQueueKey, first))
			continue
		}
		seen[q.Name] = i
		out = append(out, q)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// toQueue reads one entry of the queues list and returns every mistake in
// it. The name is returned even with errors, so that they can name the
// entry.
func toQueue(raw any) (QueueSpec, []error) {
	var q QueueSpec
	m, ok := raw.(map[string]any)
	if !ok {
		return q, []error{fmt.Errorf("want a mapping with the keys %s, got %T", strings.Join(queueKeys, ", "), raw)}
	}
	if v, ok := m["name"]; ok {
		name, err := toString(v)
		if err != nil {
			return q, []error{fieldErr("name", err)}
		}
		q.Name = strings.TrimSpace(name)
	}
	// The name first, so that the other errors can name the entry.
	if _, err := toMap(raw, queueKeys); err != nil {
		return q, []error{err}
	}
	if q.Name == "" {
		return q, []error{errors.New("name is required")}
	}
	if err := domain.ValidateQueueName(q.Name); err != nil {
		return q, []error{fieldErr("name", fmt.Errorf("%q must match ^[a-z0-9][a-z0-9_-]{0,63}$", q.Name))}
	}

	var errs []error
	s := &q.Settings
	if v, ok := m["limit"]; ok {
		n, err := toCount(v)
		errs = appendErr(errs, "limit", err)
		s.Limit = n
	}
	if v, ok := m["rate"]; ok && v != nil {
		r, rateErrs := toRate("rate", v)
		errs = append(errs, rateErrs...)
		s.Rate = r
	}
	if v, ok := m["perKey"]; ok && v != nil {
		s.PerKey = &domain.KeyLimits{}
		km, err := toMap(v, perKeyKeys)
		if err != nil {
			errs = append(errs, fieldErr("perKey", err))
		} else {
			if v, ok := km["limit"]; ok {
				n, err := toCount(v)
				errs = appendErr(errs, "perKey.limit", err)
				s.PerKey.Limit = n
			}
			if v, ok := km["rate"]; ok && v != nil {
				r, rateErrs := toRate("perKey.rate", v)
				errs = append(errs, rateErrs...)
				s.PerKey.Rate = r
			}
		}
	}
	for _, f := range []struct {
		key string
		dst *bool
	}{{"ordered", &s.Ordered}, {"fair", &s.Fair}} {
		if v, ok := m[f.key]; ok {
			b, err := toBool(v)
			errs = appendErr(errs, f.key, err)
			*f.dst = b
		}
	}
	if len(errs) > 0 {
		// The values read are partial: checking them would add noise.
		return q, errs
	}
	// The rules of the settings are the runtime's, as for the API.
	for _, err := range unjoin(s.Validate()) {
		var se *domain.SettingError
		if errors.As(err, &se) {
			errs = append(errs, fieldErr(se.Field, errors.New(strings.TrimPrefix(se.Err.Error(), domain.ErrInvalid.Error()+": "))))
			continue
		}
		errs = append(errs, err)
	}
	return q, errs
}

func appendErr(errs []error, field string, err error) []error {
	if err == nil {
		return errs
	}
	return append(errs, fieldErr(field, err))
}

// toCount reads a limit, a count or a burst: a whole number; its bounds
// are checked with the other settings.
func toCount(raw any) (int, error) {
	n, err := toInt(raw)
	if err != nil {
		return 0, err
	}
	if n < math.MinInt32 || n > math.MaxInt32 {
		return 0, fmt.Errorf("%d is out of range", n)
	}
	return int(n), nil
}

// toRate reads a rate mapping {count, per, burst}; field is where it is
// ("rate", "perKey.rate").
func toRate(field string, raw any) (*domain.Rate, []error) {
	m, err := toMap(raw, rateKeys)
	if err != nil {
		return nil, []error{fieldErr(field, err)}
	}
	r := &domain.Rate{}
	var errs []error
	if v, ok := m["count"]; ok {
		n, err := toCount(v)
		errs = appendErr(errs, field+".count", err)
		r.Count = n
	} else {
		errs = append(errs, fieldErr(field+".count", errors.New("is required: the starts allowed per period")))
	}
	if v, ok := m["per"]; ok {
		d, err := toDuration(v)
		if err != nil {
			err = fmt.Errorf("%v: want a duration with a unit, such as 1s, 1m or 1h", v)
		}
		errs = appendErr(errs, field+".per", err)
		r.Per = d
	} else {
		errs = append(errs, fieldErr(field+".per", errors.New(`is required: the period, such as "1s", "1m" or "1h"`)))
	}
	if v, ok := m["burst"]; ok {
		n, err := toCount(v)
		errs = appendErr(errs, field+".burst", err)
		r.Burst = n
	}
	return r, errs
}

// applyQueues stores the file's queue settings, before the runtime starts,
// so that the first job it starts already obeys them: the runtime reads
// every queue's settings from the store when it starts (and, on
// PostgreSQL, in each claim). It writes only the settings that differ from
// the stored ones, so that a restart leaves the rate buckets as they are.
// A queue the file does not list keeps its settings.
func (m *Main) applyQueues(ctx context.Context, store domain.Store) error {
	stored, err := store.Queues(ctx)
	if err != nil {
		return fmt.Errorf("%s: read the stored queues: %w", fileQueueKey, err)
	}
	have := make(map[string]domain.QueueSettings, len(stored))
	for _, q := range stored {
		have[q.Name] = q.Settings
	}
	for i, q := range m.Config.Queues {
		if q.Settings.Equal(have[q.Name]) {
			continue
		}
		// The file's entries were checked at load; checked again here, since
		// the store trusts its caller.
		if err := q.Settings.Validate(); err != nil {
			return fmt.Errorf("%s[%d] (%q): %w", fileQueueKey, i, q.Name, err)
		}
		if err := store.SetQueueSettings(ctx, q.Name, q.Settings.Clone()); err != nil {
			return fmt.Errorf("%s[%d] (%q): set queue %s settings: %w", fileQueueKey, i, q.Name, q.Name, err)
		}
		m.Logger.InfoContext(ctx, "queue settings applied from the config file", slog.Any("queue", q.logValue()))
	}
	return nil
}
