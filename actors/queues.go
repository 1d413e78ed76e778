package actors

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/troupe-go/troupe/domain"
)

// Queues returns every queue with unfinished jobs, paused, or capped on
// this node, by name, with its counts and this node's cap.
func (s *System) Queues(ctx context.Context) ([]QueueInfo, error) {
	stored, err := s.core.store.Queues(ctx)
	if err != nil {
		return nil, fmt.Errorf("list queues: %w", err)
	}
	out := make([]QueueInfo, 0, len(stored)+len(s.core.cfg.QueueLimits))
	seen := make(map[string]bool, len(stored))
	for _, q := range stored {
		seen[q.Name] = true
		out = append(out, QueueInfo{QueueInfo: q, Limit: s.core.cfg.QueueLimits[q.Name]})
	}
	for name, limit := range s.core.cfg.QueueLimits {
		if !seen[name] {
			out = append(out, QueueInfo{QueueInfo: domain.QueueInfo{Name: name}, Limit: limit})
		}
	}
	slices.SortFunc(out, func(a, b QueueInfo) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Queue returns one queue's state; a queue nobody used is empty, not an
// error, since a client may pause a queue before its first job.
func (s *System) Queue(ctx context.Context, name string) (QueueInfo, error) {
	if err := domain.ValidateQueueName(name); err != nil {
		return QueueInfo{}, err
	}
	all, err := s.Queues(ctx)
	if err != nil {
		return QueueInfo{}, err
	}
	for _, q := range all {
		if q.Name == name {
			return q, nil
		}
	}
	return QueueInfo{QueueInfo: domain.QueueInfo{Name: name}}, nil
}

// PauseQueue stops the queue's jobs from starting, on every node sharing
// the store, and for good: the pause is stored. The queue keeps taking
// submissions, and its running jobs finish.
func (s *System) PauseQueue(ctx context.Context, name string) (QueueInfo, error) {
	return s.setQueuePaused(ctx, name, true)
}

// ResumeQueue lets a paused queue's jobs start again.
func (s *System) ResumeQueue(ctx context.Context, name string) (QueueInfo, error) {
	return s.setQueuePaused(ctx, name, false)
}

func (s *System) setQueuePaused(ctx context.Context, name string, paused bool) (QueueInfo, error) {
	if err := domain.ValidateQueueName(name); err != nil {
		return QueueInfo{}, err
	}
	if err := s.core.store.SetQueuePaused(ctx, name, paused); err != nil {
		return QueueInfo{}, fmt.Errorf("pause queue %s: %w", name, err)
	}
	s.core.queuePaused(name, paused)
	return s.Queue(ctx, name)
}

// queuePaused tells this node's runtime that a queue was paused or resumed.
func (c *core) queuePaused(name string, paused bool) {
	// The dispatcher learns of it so that it starts none of the queue's
	// jobs (or starts them again).
	c.actors.Root.Send(c.dispatcher, &queuePauseChanged{name: name, paused: paused})
}

// queuePauseChanged tells the dispatcher a queue was paused or resumed.
type queuePauseChanged struct {
	name   string
	paused bool
}
