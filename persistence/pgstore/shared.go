package pgstore

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/troupe-go/troupe/domain"
)

var _ domain.SharedQueue = (*Store)(nil)

// Heartbeat implements domain.SharedQueue.
func (s *Store) Heartbeat(ctx context.Context, owner string, id uuid.UUID, lease time.Duration, progress *domain.Progress) (domain.LeaseState, error) {
	return domain.LeaseState{}, errors.New("pgstore: Heartbeat: not implemented yet")
}
