package memstore

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/troupe-go/troupe/domain"
)

// DeleteFinished implements domain.Store. Memory holds no index on
// FinishedAt: it walks every job, which is cheap at the sizes memstore is
// meant for.
func (s *Store) DeleteFinished(ctx context.Context, now time.Time, status domain.Status, before time.Time, limit int) (int, error) {
	if !status.IsTerminal() {
		return 0, fmt.Errorf("%w: delete finished jobs: status %q is not terminal", domain.ErrInvalid, status)
	}
	if err := s.lock(ctx); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	if limit <= 0 {
		return 0, nil
	}
	var expired []*domain.Job
	for _, j := range s.jobs {
		if j.Status == status && j.FinishedAt.Before(before) && !j.HoldsUniqueKey(now) {
			expired = append(expired, j)
		}
	}
	slices.SortFunc(expired, byFinishedAt)
	if len(expired) > limit {
		expired = expired[:limit]
	}
	for _, j := range expired {
		s.remove(j)
	}
	return len(expired), nil
}

// byFinishedAt orders finished jobs by FinishedAt, then as listed.
func byFinishedAt(a, b *domain.Job) int {
	if c := a.FinishedAt.Compare(b.FinishedAt); c != 0 {
		return c
	}
	return domain.Compare(a, b)
}

// remove forgets a stored job and its index entries; the caller holds the
// write lock.
func (s *Store) remove(j *domain.Job) {
	delete(s.jobs, j.ID)
	delete(s.scheduled, j.ID)
	if j.UniqueKey != "" && s.unique[j.UniqueKey] == j.ID {
		delete(s.unique, j.UniqueKey)
	}
}

// PutSchedule implements domain.ScheduleStore.
func (s *Store) PutSchedule(ctx context.Context, sc *domain.Schedule) (bool, error) {
	if err := domain.ValidateScheduleName(sc.Name); err != nil {
		return false, err
	}
	if err := s.lock(ctx); err != nil {
		return false, err
	}
	defer s.mu.Unlock()
	old, ok := s.schedules[sc.Name]
	s.schedules[sc.Name] = sc.Replacing(old)
	return !ok, nil
}

// GetSchedule implements domain.ScheduleStore.
func (s *Store) GetSchedule(ctx context.Context, name string) (*domain.Schedule, error) {
	if err := s.rlock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	sc, ok := s.schedules[name]
	if !ok {
		return nil, fmt.Errorf("get schedule %q: %w", name, domain.ErrNotFound)
	}
	return sc.Clone(), nil
}

// ListSchedules implements domain.ScheduleStore.
func (s *Store) ListSchedules(ctx context.Context) ([]*domain.Schedule, error) {
	if err := s.rlock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	out := make([]*domain.Schedule, 0, len(s.schedules))
	for _, sc := range s.schedules {
		out = append(out, sc.Clone())
	}
	slices.SortFunc(out, func(a, b *domain.Schedule) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// DeleteSchedule implements domain.ScheduleStore.
func (s *Store) DeleteSchedule(ctx context.Context, name string) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if _, ok := s.schedules[name]; !ok {
		return fmt.Errorf("delete schedule %q: %w", name, domain.ErrNotFound)
	}
	delete(s.schedules, name)
	return nil
}

// RecordScheduleRun implements domain.ScheduleStore.
func (s *Store) RecordScheduleRun(ctx context.Context, name string, run domain.ScheduleRun) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	sc, ok := s.schedules[name]
	if !ok {
		return fmt.Errorf("record run of schedule %q: %w", name, domain.ErrNotFound)
	}
	sc.Record(run)
	return nil
}
