package memstore

import (
	"context"
	"slices"
	"time"

	"github.com/troupe-go/troupe/domain"
)

// PromoteDue implements domain.Store.
func (s *Store) PromoteDue(ctx context.Context, now time.Time, limit int) ([]*domain.Job, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	var due []*domain.Job
	for id := range s.scheduled {
		if j := s.jobs[id]; !j.RunAt.After(now) {
			due = append(due, j)
		}
	}
	slices.SortFunc(due, byRunAt)
	if limit >= 0 && len(due) > limit {
		due = due[:limit]
	}
	out := make([]*domain.Job, 0, len(due))
	for _, j := range due {
		next := j.Clone()
		if err := next.Promote(now); err != nil {
			return nil, err
		}
		s.put(j, next)
		out = append(out, next.Clone())
	}
	return out, nil
}

// NextRunAt implements domain.Store.
func (s *Store) NextRunAt(ctx context.Context) (time.Time, error) {
	if err := s.rlock(ctx); err != nil {
		return time.Time{}, err
	}
	defer s.mu.RUnlock()
	var next time.Time
	for id := range s.scheduled {
		if at := s.jobs[id].RunAt; next.IsZero() || at.Before(next) {
			next = at
		}
	}
	return next, nil
}

// byRunAt orders scheduled jobs by RunAt, then as listed.
func byRunAt(a, b *domain.Job) int {
	if c := a.RunAt.Compare(b.RunAt); c != 0 {
		return c
	}
	return domain.Compare(a, b)
}

// Queues implements domain.Store.
func (s *Store) Queues(ctx context.Context) ([]domain.QueueInfo, error) {
	if err := s.rlock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	var tally domain.QueueTally
	for name := range s.paused {
		tally.Pause(name)
	}
	for name, st := range s.settings {
		tally.Settings(name, st)
	}
	for _, j := range s.jobs {
		tally.Count(j.Queue, j.Status, 1)
	}
	return tally.Queues(), nil
}

// SetQueuePaused implements domain.Store.
func (s *Store) SetQueuePaused(ctx context.Context, name string, paused bool) error {
	if err := domain.ValidateQueueName(name); err != nil {
		return err
	}
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if paused {
		s.paused[name] = true
	} else {
		delete(s.paused, name)
	}
	return nil
}
