package actors

import (
	"context"

	"github.com/google/uuid"

	"github.com/troupe-go/troupe/domain"
)

// On a shared store the flow settings and their state (running counts,
// buckets) live in the store, which enforces them in every claim: the
// node only reads them.

func (s *sharedSource) settingsChanged(string, domain.QueueSettings) {}

func (s *sharedSource) flowWaiting(ctx context.Context, jobs []*domain.Job) error {
	ids := make([]uuid.UUID, 0, len(jobs))
	for _, j := range jobs {
		if j.Status == domain.StatusPending {
			ids = append(ids, j.ID)
		}
	}
	reasons, err := s.queue.FlowWaiting(ctx, ids)
	if err != nil {
		return err
	}
	for _, j := range jobs {
		j.WaitingFor = reasons[j.ID]
	}
	return nil
}

func (s *sharedSource) waitingCounts(ctx context.Context) ([]domain.WaitingCount, error) {
	return s.queue.WaitingCounts(ctx)
}
