package memstore

import (
	"context"

	"github.com/troupe-go/troupe/domain"
)

// SetQueueSettings implements domain.Store. The settings are kept apart
// from the pause, as a copy, so that the caller's pointers stay its own.
func (s *Store) SetQueueSettings(ctx context.Context, name string, settings domain.QueueSettings) error {
	if err := domain.ValidateQueueName(name); err != nil {
		return err
	}
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if settings.IsZero() {
		delete(s.settings, name)
	} else {
		s.settings[name] = settings.Clone()
	}
	return nil
}
