package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/troupe-go/troupe/domain"
)

// Queues returns every queue with unfinished jobs, paused, with flow
// settings or capped on this node, by name, with its counts, its settings,
// this node's cap and how many of its jobs wait for which flow setting.
func (s *System) Queues(ctx context.Context) ([]QueueInfo, error) {
	stored, err := s.core.store.Queues(ctx)
	if err != nil {
		return nil, fmt.Errorf("list queues: %w", err)
	}
	waiting := make(map[string]map[domain.WaitReason]int)
	if anySettings(stored) {
		counts, err := s.WaitingCounts(ctx)
		if err != nil {
			return nil, fmt.Errorf("list queues: %w", err)
		}
		for _, c := range counts {
			if waiting[c.Queue] == nil {
				waiting[c.Queue] = make(map[domain.WaitReason]int)
			}
			waiting[c.Queue][c.Reason] += c.Count
		}
	}
	out := make([]QueueInfo, 0, len(stored)+len(s.core.cfg.QueueLimits))
	seen := make(map[string]bool, len(stored))
	for _, q := range stored {
		seen[q.Name] = true
		out = append(out, QueueInfo{QueueInfo: q, Limit: s.core.cfg.QueueLimits[q.Name], Waiting: waiting[q.Name]})
	}
	for name, limit := range s.core.cfg.QueueLimits {
		if !seen[name] {
			out = append(out, QueueInfo{QueueInfo: domain.QueueInfo{Name: name}, Limit: limit})
		}
	}
	slices.SortFunc(out, func(a, b QueueInfo) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// anySettings reports whether a queue has flow settings: only then may
// jobs wait for them.
func anySettings(queues []domain.QueueInfo) bool {
	for _, q := range queues {
		if !q.Settings.IsZero() {
			return true
		}
	}
	return false
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

// SetQueueSettings replaces a queue's flow settings (limits, rates,
// per-key limits, order, fairness; see domain.QueueSettings) on every
// node sharing the store, durably; zero settings clear them. Invalid
// settings give a *FieldError per refused field, joined, wrapping
// domain.ErrInvalid, and change nothing. The queue's pause is left alone.
func (s *System) SetQueueSettings(ctx context.Context, name string, settings domain.QueueSettings) (QueueInfo, error) {
	if err := domain.ValidateQueueName(name); err != nil {
		return QueueInfo{}, err
	}
	if err := settingsError(settings.Validate()); err != nil {
		return QueueInfo{}, err
	}
	settings = settings.Clone()
	if err := s.core.store.SetQueueSettings(ctx, name, settings); err != nil {
		return QueueInfo{}, fmt.Errorf("set queue %s settings: %w", name, err)
	}
	s.core.source.settingsChanged(name, settings)
	return s.Queue(ctx, name)
}

// settingsError turns domain.QueueSettings.Validate's refusals into
// FieldErrors, the runtime's one error for an input refused by a field.
func settingsError(err error) error {
	if err == nil {
		return nil
	}
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return err
	}
	var out []error
	for _, e := range joined.Unwrap() {
		var se *domain.SettingError
		if errors.As(e, &se) {
			out = append(out, &FieldError{Field: se.Field, Err: se.Err})
			continue
		}
		out = append(out, e)
	}
	return errors.Join(out...)
}

// WaitingCounts counts the pending, due jobs that flow settings hold back,
// by queue and reason, on every node sharing the store.
func (s *System) WaitingCounts(ctx context.Context) ([]domain.WaitingCount, error) {
	counts, err := s.core.source.waitingCounts(ctx)
	if err != nil {
		return nil, fmt.Errorf("count waiting jobs: %w", err)
	}
	return counts, nil
}

// fillWaitingFor sets WaitingFor on the pending jobs among jobs. The
// reason is a hint for the reader: when it cannot be had, the jobs are
// returned without it rather than not at all.
func (s *System) fillWaitingFor(ctx context.Context, jobs []*domain.Job) {
	pending := false
	for _, j := range jobs {
		pending = pending || j.Status == domain.StatusPending
	}
	if !pending {
		return
	}
	if err := s.core.source.flowWaiting(ctx, jobs); err != nil {
		s.core.logger.Debug("read why jobs wait", slog.Any("error", err))
	}
}
