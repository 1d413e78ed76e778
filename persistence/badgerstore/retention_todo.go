package badgerstore

import (
	"context"
	"errors"
	"time"

	"github.com/troupe-go/troupe/domain"
)

var errTODO = errors.New("badgerstore: not implemented yet")

// DeleteFinished implements domain.Store.
func (s *Store) DeleteFinished(ctx context.Context, now time.Time, status domain.Status, before time.Time, limit int) (int, error) {
	return 0, errTODO
}

// PutSchedule implements domain.ScheduleStore.
func (s *Store) PutSchedule(ctx context.Context, sc *domain.Schedule) (bool, error) { return false, errTODO }

// GetSchedule implements domain.ScheduleStore.
func (s *Store) GetSchedule(ctx context.Context, name string) (*domain.Schedule, error) {
	return nil, errTODO
}

// ListSchedules implements domain.ScheduleStore.
func (s *Store) ListSchedules(ctx context.Context) ([]*domain.Schedule, error) { return nil, errTODO }

// DeleteSchedule implements domain.ScheduleStore.
func (s *Store) DeleteSchedule(ctx context.Context, name string) error { return errTODO }

// RecordScheduleRun implements domain.ScheduleStore.
func (s *Store) RecordScheduleRun(ctx context.Context, name string, run domain.ScheduleRun) error {
	return errTODO
}
