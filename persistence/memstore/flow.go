package memstore

import (
	"context"
	"errors"

	"github.com/troupe-go/troupe/domain"
)

// SetQueueSettings implements domain.Store.
func (s *Store) SetQueueSettings(ctx context.Context, name string, settings domain.QueueSettings) error {
	return errors.New("memstore: SetQueueSettings not implemented")
}
