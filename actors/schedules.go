package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/troupe-go/troupe/domain"
)

// scheduleSlotHold is how long a slot's job keeps its unique key after it
// finished: a node that gets to the slot late (a restart, a slow node)
// finds the job still there and submits nothing. It is also how long the
// pruner leaves the job, since it skips jobs holding their key.
const scheduleSlotHold = time.Hour

// Schedule creates or replaces a schedule (source "api") and reports
// whether it created it. It refuses, with an error wrapping ErrInvalid
// naming the field, a bad name, cron expression, timezone, catch-up
// policy or job (ErrUnknownJobType for an unregistered type), and, with
// ErrConflict, a schedule declared in the configuration file.
func (s *System) Schedule(ctx context.Context, p ScheduleParams) (ScheduleInfo, bool, error) {
	now := s.core.clock.Now()
	sc, err := s.scheduleFrom(p, domain.SourceAPI, now)
	if err != nil {
		return ScheduleInfo{}, false, fmt.Errorf("schedule %q: %w", p.Name, err)
	}
	if _, err := s.apiOwned(ctx, p.Name); err != nil && !errors.Is(err, domain.ErrNotFound) {
		return ScheduleInfo{}, false, err
	}
	created, err := s.core.store.PutSchedule(ctx, sc)
	if err != nil {
		return ScheduleInfo{}, false, fmt.Errorf("schedule %q: store: %w", p.Name, err)
	}
	s.core.schedules.wake()
	info, err := s.GetSchedule(ctx, p.Name)
	return info, created, err
}

// Schedules returns every schedule, by name.
func (s *System) Schedules(ctx context.Context) ([]ScheduleInfo, error) {
	list, err := s.core.store.ListSchedules(ctx)
	if err != nil {
		return nil, fmt.Errorf("list schedules: %w", err)
	}
	now := s.core.clock.Now()
	out := make([]ScheduleInfo, 0, len(list))
	for _, sc := range list {
		info, err := s.scheduleInfo(ctx, sc, now)
		if err != nil {
			return nil, err
		}
		out = append(out, info)
	}
	return out, nil
}

// GetSchedule returns the named schedule, or an error wrapping ErrNotFound.
func (s *System) GetSchedule(ctx context.Context, name string) (ScheduleInfo, error) {
	sc, err := s.core.store.GetSchedule(ctx, name)
	if err != nil {
		return ScheduleInfo{}, fmt.Errorf("schedule %q: %w", name, err)
	}
	return s.scheduleInfo(ctx, sc, s.core.clock.Now())
}

// DeleteSchedule removes a schedule; the jobs it submitted stay. A
// schedule declared in the configuration file gives ErrConflict.
func (s *System) DeleteSchedule(ctx context.Context, name string) error {
	if _, err := s.apiOwned(ctx, name); err != nil {
		return err
	}
	if err := s.core.store.DeleteSchedule(ctx, name); err != nil {
		return fmt.Errorf("delete schedule %q: %w", name, err)
	}
	s.core.schedules.wake()
	return nil
}

// PauseSchedule stops a schedule's slots from submitting jobs, on every
// node, until ResumeSchedule. A config schedule gives ErrConflict.
func (s *System) PauseSchedule(ctx context.Context, name string) (ScheduleInfo, error) {
	return s.setSchedulePaused(ctx, name, true)
}

// ResumeSchedule lets a paused schedule submit again, from its next slot
// (or, with CatchUpOne, one job for the slots missed while paused).
func (s *System) ResumeSchedule(ctx context.Context, name string) (ScheduleInfo, error) {
	return s.setSchedulePaused(ctx, name, false)
}

func (s *System) setSchedulePaused(ctx context.Context, name string, paused bool) (ScheduleInfo, error) {
	sc, err := s.apiOwned(ctx, name)
	if err != nil {
		return ScheduleInfo{}, err
	}
	if sc.Paused != paused {
		sc.Paused = paused
		sc.UpdatedAt = s.core.clock.Now()
		if _, err := s.core.store.PutSchedule(ctx, sc); err != nil {
			return ScheduleInfo{}, fmt.Errorf("schedule %q: store: %w", name, err)
		}
		s.core.schedules.wake()
	}
	return s.GetSchedule(ctx, name)
}

// TriggerSchedule submits the schedule's job now, outside its slots (even
// while it is paused), and returns it.
func (s *System) TriggerSchedule(ctx context.Context, name string) (*domain.Job, error) {
	sc, err := s.core.store.GetSchedule(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("trigger schedule %q: %w", name, err)
	}
	job, err := s.Submit(ctx, scheduleSubmitParams(sc))
	if err != nil {
		return nil, fmt.Errorf("trigger schedule %q: %w", name, err)
	}
	// The job is stored whatever happens to the record: it only moves
	// LastRunAt and LastJobID.
	run := domain.ScheduleRun{At: job.CreatedAt, JobID: job.ID}
	if err := s.core.store.RecordScheduleRun(ctx, name, run); err != nil && !errors.Is(err, domain.ErrNotFound) {
		s.core.logger.Warn("recording a triggered run failed", slog.String("schedule", name),
			slog.String("job_id", job.ID.String()), slog.Any("error", err))
	}
	return job, nil
}

// apiOwned returns the named schedule if the API may change it: an error
// wrapping ErrNotFound if there is none, ErrConflict if the configuration
// file declares it.
func (s *System) apiOwned(ctx context.Context, name string) (*domain.Schedule, error) {
	sc, err := s.core.store.GetSchedule(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("schedule %q: %w", name, err)
	}
	if sc.Source == domain.SourceConfig {
		return nil, fmt.Errorf("schedule %q is declared in the configuration file; change it there: %w", name, domain.ErrConflict)
	}
	return sc, nil
}

// scheduleInfo adds to a stored schedule what the runtime knows of it.
func (s *System) scheduleInfo(ctx context.Context, sc *domain.Schedule, now time.Time) (ScheduleInfo, error) {
	info := ScheduleInfo{Schedule: *sc, Description: describeCron(sc.Cron)}
	if !sc.Paused {
		if spec, err := parseCron(sc.Cron, sc.Timezone); err == nil {
			info.NextRunAt = spec.next(latest(now, scheduleLowerBound(sc)))
		}
	}
	if sc.LastJobID != uuid.Nil {
		job, err := s.core.store.Get(ctx, sc.LastJobID)
		switch {
		case err == nil:
			info.LastJobStatus = job.Status
		case !errors.Is(err, domain.ErrNotFound):
			return ScheduleInfo{}, fmt.Errorf("schedule %q: last job %s: %w", sc.Name, sc.LastJobID, err)
		}
	}
	return info, nil
}

// scheduleLowerBound is the time up to which a schedule's slots are
// settled: its last slot's, or its creation, since a schedule starts at
// its first slot after it.
func scheduleLowerBound(sc *domain.Schedule) time.Time {
	return latest(sc.LastSlot, sc.CreatedAt)
}

func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// scheduleSubmitParams is the submission of a schedule's job, carrying the
// schedule's name; a slot adds its unique key.
func scheduleSubmitParams(sc *domain.Schedule) SubmitParams {
	return SubmitParams{
		Type: sc.Job.Type, Payload: sc.Job.Payload, Queue: sc.Job.Queue, Priority: sc.Job.Priority,
		MaxAttempts: sc.Job.MaxAttempts, Timeout: sc.Job.Timeout, schedule: sc.Name,
	}
}

// scheduleFrom validates p and returns the definition to store, with the
// defaults written out (timezone UTC, catch-up skip).
func (s *System) scheduleFrom(p ScheduleParams, source domain.ScheduleSource, now time.Time) (*domain.Schedule, error) {
	if err := domain.ValidateScheduleName(p.Name); err != nil {
		return nil, &FieldError{Field: "name", Err: err}
	}
	if err := checkCron(p.Cron, p.Timezone, now); err != nil {
		return nil, err
	}
	catchUp := p.CatchUp
	switch catchUp {
	case "":
		catchUp = domain.CatchUpSkip
	case domain.CatchUpSkip, domain.CatchUpOne:
	default:
		return nil, invalidField("catchUp", "must be %q or %q, got %q", domain.CatchUpSkip, domain.CatchUpOne, p.CatchUp)
	}
	sc := &domain.Schedule{
		Name: p.Name, Cron: strings.TrimSpace(p.Cron), Timezone: p.Timezone, Job: p.Job,
		Paused: p.Paused, CatchUp: catchUp, Source: source, CreatedAt: now, UpdatedAt: now,
	}
	if sc.Timezone == "" {
		sc.Timezone = "UTC"
	}
	if err := s.checkScheduledJob(sc, now); err != nil {
		return nil, err
	}
	return sc.Clone(), nil
}

// checkScheduledJob checks a schedule's job as Submit would, storing
// nothing. Each field is tried on its own beside the type, so that the
// error names the field at fault while the rules stay Submit's.
func (s *System) checkScheduledJob(sc *domain.Schedule, now time.Time) error {
	j := sc.Job
	if j.Type == "" {
		return invalidField("job.type", "must not be empty")
	}
	base := SubmitParams{Type: j.Type}
	with := func(f func(*SubmitParams)) SubmitParams {
		p := base
		f(&p)
		return p
	}
	for _, c := range []struct {
		field string
		p     SubmitParams
	}{
		{"job.type", base},
		{"job.payload", with(func(p *SubmitParams) { p.Payload = j.Payload })},
		{"job.queue", with(func(p *SubmitParams) { p.Queue = j.Queue })},
		{"job.priority", with(func(p *SubmitParams) { p.Priority = j.Priority })},
		{"job.maxAttempts", with(func(p *SubmitParams) { p.MaxAttempts = j.MaxAttempts })},
		{"job.timeout", with(func(p *SubmitParams) { p.Timeout = j.Timeout })},
		{"job", scheduleSubmitParams(sc)},
	} {
		if _, err := s.newJob(c.p, now); err != nil {
			return &FieldError{Field: c.field, Err: err}
		}
	}
	return nil
}

// applyConfigSchedules makes the stored config schedules those declared:
// each is created or replaced (left alone when unchanged, so its
// UpdatedAt means something), and the config schedules no longer declared
// are deleted. Schedules made through the API stay. Every declaration is
// checked before anything is written.
func (s *System) applyConfigSchedules(ctx context.Context, declared []ScheduleParams) error {
	now := s.core.clock.Now()
	want := make(map[string]*domain.Schedule, len(declared))
	for _, p := range declared {
		sc, err := s.scheduleFrom(p, domain.SourceConfig, now)
		if err != nil {
			return fmt.Errorf("config schedule %q: %w", p.Name, err)
		}
		if _, dup := want[p.Name]; dup {
			return fmt.Errorf("config schedule %q: %w: declared twice", p.Name, domain.ErrInvalid)
		}
		want[p.Name] = sc
	}
	store := s.core.store
	stored, err := store.ListSchedules(ctx)
	if err != nil {
		return fmt.Errorf("config schedules: list: %w", err)
	}
	have := make(map[string]*domain.Schedule, len(stored))
	for _, sc := range stored {
		have[sc.Name] = sc
		if sc.Source == domain.SourceConfig && want[sc.Name] == nil {
			if err := store.DeleteSchedule(ctx, sc.Name); err != nil && !errors.Is(err, domain.ErrNotFound) {
				return fmt.Errorf("config schedule %q: delete: %w", sc.Name, err)
			}
			s.core.logger.Info("config schedule removed", slog.String("schedule", sc.Name))
		}
	}
	for name, sc := range want {
		if old := have[name]; old != nil && sameDefinition(old, sc) {
			continue
		}
		if _, err := store.PutSchedule(ctx, sc); err != nil {
			return fmt.Errorf("config schedule %q: store: %w", name, err)
		}
	}
	return nil
}

// sameDefinition reports whether two schedules define the same thing,
// run fields and times aside.
func sameDefinition(a, b *domain.Schedule) bool {
	return a.Name == b.Name && a.Cron == b.Cron && a.Timezone == b.Timezone && a.Paused == b.Paused &&
		a.CatchUp == b.CatchUp && a.Source == b.Source &&
		a.Job.Type == b.Job.Type && string(a.Job.Payload) == string(b.Job.Payload) && a.Job.Queue == b.Job.Queue &&
		a.Job.Priority == b.Job.Priority && a.Job.MaxAttempts == b.Job.MaxAttempts && a.Job.Timeout == b.Job.Timeout
}
