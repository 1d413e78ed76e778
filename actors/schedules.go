package actors

import (
	"context"
	"errors"

	"github.com/troupe-go/troupe/domain"
)

// errScheduleTODO marks the schedule API before its implementation lands.
var errScheduleTODO = errors.New("schedules: not implemented yet")

// Schedule creates or replaces a schedule (source "api") and reports
// whether it created it. It refuses, with an error wrapping ErrInvalid
// naming the field, a bad name, cron expression, timezone, catch-up
// policy or job (ErrUnknownJobType for an unregistered type), and, with
// ErrConflict, a schedule declared in the configuration file.
func (s *System) Schedule(ctx context.Context, p ScheduleParams) (ScheduleInfo, bool, error) {
	return ScheduleInfo{}, false, errScheduleTODO
}

// Schedules returns every schedule, by name.
func (s *System) Schedules(ctx context.Context) ([]ScheduleInfo, error) {
	return nil, errScheduleTODO
}

// GetSchedule returns the named schedule, or an error wrapping ErrNotFound.
func (s *System) GetSchedule(ctx context.Context, name string) (ScheduleInfo, error) {
	return ScheduleInfo{}, errScheduleTODO
}

// DeleteSchedule removes a schedule; the jobs it submitted stay. A
// schedule declared in the configuration file gives ErrConflict.
func (s *System) DeleteSchedule(ctx context.Context, name string) error {
	return errScheduleTODO
}

// PauseSchedule stops a schedule's slots from submitting jobs, on every
// node, until ResumeSchedule. A config schedule gives ErrConflict.
func (s *System) PauseSchedule(ctx context.Context, name string) (ScheduleInfo, error) {
	return ScheduleInfo{}, errScheduleTODO
}

// ResumeSchedule lets a paused schedule submit again, from its next slot
// (or, with CatchUpOne, one job for the slots missed while paused).
func (s *System) ResumeSchedule(ctx context.Context, name string) (ScheduleInfo, error) {
	return ScheduleInfo{}, errScheduleTODO
}

// TriggerSchedule submits the schedule's job now, outside its slots (even
// while it is paused), and returns it.
func (s *System) TriggerSchedule(ctx context.Context, name string) (*domain.Job, error) {
	return nil, errScheduleTODO
}
