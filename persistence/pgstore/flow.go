package pgstore

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/troupe-go/troupe/domain"
)

var errFlowNotImplemented = errors.New("pgstore: flow control not implemented")

// SetQueueSettings implements domain.Store.
func (s *Store) SetQueueSettings(ctx context.Context, name string, settings domain.QueueSettings) error {
	return errFlowNotImplemented
}

// FlowWaiting implements domain.SharedQueue.
func (s *Store) FlowWaiting(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]domain.WaitReason, error) {
	return nil, errFlowNotImplemented
}

// WaitingCounts implements domain.SharedQueue.
func (s *Store) WaitingCounts(ctx context.Context) ([]domain.WaitingCount, error) {
	return nil, errFlowNotImplemented
}

// FlowWakeAfter implements domain.SharedQueue.
func (s *Store) FlowWakeAfter(ctx context.Context) (time.Duration, error) {
	return 0, errFlowNotImplemented
}
