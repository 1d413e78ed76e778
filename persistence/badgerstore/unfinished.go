package badgerstore

import (
	"context"
	"errors"
	"time"

	"github.com/troupe-go/troupe/domain"
)

// errNotYet marks the scheduling, uniqueness and queue methods this store
// does not implement yet.
var errNotYet = errors.New("badgerstore: not implemented yet")

// Insert implements domain.Store.
func (s *Store) Insert(context.Context, time.Time, []*domain.Job) ([]*domain.Job, error) {
	return nil, errNotYet
}

// PromoteDue implements domain.Store.
func (s *Store) PromoteDue(context.Context, time.Time, int) ([]*domain.Job, error) {
	return nil, errNotYet
}

// NextRunAt implements domain.Store.
func (s *Store) NextRunAt(context.Context) (time.Time, error) { return time.Time{}, errNotYet }

// Queues implements domain.Store.
func (s *Store) Queues(context.Context) ([]domain.QueueInfo, error) { return nil, errNotYet }

// SetQueuePaused implements domain.Store.
func (s *Store) SetQueuePaused(context.Context, string, bool) error { return errNotYet }
