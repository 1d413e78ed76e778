package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/troupe-go/troupe/actors"
	"github.com/troupe-go/troupe/domain"
)

// fileScheduleKey is the YAML key of the schedules list.
const fileScheduleKey = "schedules"

// The keys of a schedule in the YAML file and of its job, spelled as the
// HTTP API spells them, so that one document fits both.
var (
	scheduleKeys    = []string{"name", "cron", "timezone", "catchUp", "paused", "job"}
	scheduledJobKey = []string{"type", "payload", "queue", "priority", "maxAttempts", "timeout"}
)

// toSchedules reads the schedules list of the YAML file. It checks each
// entry's shape: a valid name, used once; a cron expression and a job type
// present; durations with a unit; catchUp skip or one. The runtime checks
// the rest (the expression, the zone, that the type is registered) when it
// starts. Every error names the entry and the field.
func toSchedules(raw any) ([]actors.ScheduleParams, error) {
	if raw == nil {
		return nil, nil
	}
	items, ok := raw.([]any)
	if !ok {
		return nil, fmt.Errorf("%s: want a list of schedules, got %T", fileScheduleKey, raw)
	}
	var (
		out  []actors.ScheduleParams
		errs []error
		seen = map[string]int{}
	)
	for i, item := range items {
		p, err := toSchedule(item)
		where := fmt.Sprintf("%s[%d]", fileScheduleKey, i)
		if p.Name != "" {
			where += fmt.Sprintf(" (%q)", p.Name)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
			continue
		}
		if first, dup := seen[p.Name]; dup {
			errs = append(errs, fmt.Errorf("%s: name %q is already the name of %s[%d]", where, p.Name, fileScheduleKey, first))
			continue
		}
		seen[p.Name] = i
		out = append(out, p)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// toSchedule reads one entry of the schedules list. The name is returned
// even with an error, so that the error can name the entry.
func toSchedule(raw any) (actors.ScheduleParams, error) {
	var p actors.ScheduleParams
	m, ok := raw.(map[string]any)
	if !ok {
		return p, fmt.Errorf("want a mapping with the keys %s, got %T", strings.Join(scheduleKeys, ", "), raw)
	}
	var err error
	if v, ok := m["name"]; ok {
		if p.Name, err = toString(v); err != nil {
			return p, fmt.Errorf("name: %w", err)
		}
	}
	// The name first, so that the other errors can name the entry.
	if _, err := toMap(raw, scheduleKeys); err != nil {
		return p, err
	}
	if p.Name == "" {
		return p, errors.New("name is required")
	}
	if err := domain.ValidateScheduleName(p.Name); err != nil {
		return p, fmt.Errorf("name %q must match ^[a-z0-9][a-z0-9_.-]{0,127}$", p.Name)
	}
	if v, ok := m["cron"]; ok {
		if p.Cron, err = toString(v); err != nil {
			return p, fmt.Errorf("cron: %w", err)
		}
	}
	if p.Cron = strings.TrimSpace(p.Cron); p.Cron == "" {
		return p, errors.New(`cron is required, such as "*/5 * * * *", "@hourly" or "@every 30s"`)
	}
	if v, ok := m["timezone"]; ok {
		if p.Timezone, err = toString(v); err != nil {
			return p, fmt.Errorf("timezone: %w", err)
		}
	}
	if v, ok := m["catchUp"]; ok {
		s, err := toString(v)
		if err != nil {
			return p, fmt.Errorf("catchUp: %w", err)
		}
		p.CatchUp = domain.CatchUp(s)
		if p.CatchUp != domain.CatchUpSkip && p.CatchUp != domain.CatchUpOne {
			return p, fmt.Errorf("catchUp %q must be %s or %s", s, domain.CatchUpSkip, domain.CatchUpOne)
		}
	}
	if v, ok := m["paused"]; ok {
		if p.Paused, err = toBool(v); err != nil {
			return p, fmt.Errorf("paused: %w", err)
		}
	}
	jobRaw, ok := m["job"]
	if !ok || jobRaw == nil {
		return p, errors.New("job is required, with at least a type")
	}
	if p.Job, err = toScheduledJob(jobRaw); err != nil {
		return p, err
	}
	return p, nil
}

// toScheduledJob reads a schedule's job; its errors name the field as
// job.field.
func toScheduledJob(raw any) (domain.ScheduledJob, error) {
	var j domain.ScheduledJob
	m, err := toMap(raw, scheduledJobKey)
	if err != nil {
		return j, fmt.Errorf("job: %w", err)
	}
	typ := ""
	if v, ok := m["type"]; ok {
		if typ, err = toString(v); err != nil {
			return j, fmt.Errorf("job.type: %w", err)
		}
	}
	if typ = strings.TrimSpace(typ); typ == "" {
		return j, errors.New("job.type is required")
	}
	j.Type = domain.JobType(typ)
	if v, ok := m["payload"]; ok && v != nil {
		// The handler gets JSON, as from the API.
		if j.Payload, err = json.Marshal(v); err != nil {
			return j, fmt.Errorf("job.payload: %w", err)
		}
	}
	if v, ok := m["queue"]; ok {
		if j.Queue, err = toString(v); err != nil {
			return j, fmt.Errorf("job.queue: %w", err)
		}
	}
	for _, f := range []struct {
		key string
		dst *int
	}{{"priority", &j.Priority}, {"maxAttempts", &j.MaxAttempts}} {
		if v, ok := m[f.key]; ok {
			n, err := toInt(v)
			if err != nil || n < math.MinInt32 || n > math.MaxInt32 {
				return j, fmt.Errorf("job.%s %v: want a whole number", f.key, v)
			}
			*f.dst = int(n)
		}
	}
	if v, ok := m["timeout"]; ok {
		if j.Timeout, err = toDuration(v); err != nil {
			return j, fmt.Errorf("job.timeout %v: %w", v, err)
		}
	}
	return j, nil
}

// toMap reads a YAML mapping whose keys must be among keys.
func toMap(raw any, keys []string) (map[string]any, error) {
	m, ok := raw.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("want a mapping with the keys %s, got %T", strings.Join(keys, ", "), raw)
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if !slices.Contains(keys, k) {
			return nil, fmt.Errorf("unknown key %q (the keys are %s)", k, strings.Join(keys, ", "))
		}
	}
	return m, nil
}

// scheduleParams returns the file's schedules for the runtime, as copies.
func (c Config) scheduleParams() []actors.ScheduleParams {
	out := make([]actors.ScheduleParams, len(c.Schedules))
	for i, s := range c.Schedules {
		s.Job.Payload = slices.Clone(s.Job.Payload)
		out[i] = s
	}
	return out
}
