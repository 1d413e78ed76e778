package actors

import (
	"context"
	"log/slog"
	"time"

	"github.com/troupe-go/troupe/domain"
)

// leaseRescuer returns to pending, at start and then every interval, the
// running jobs of a shared store whose lease expired: their node died or
// lost touch. Every node runs one; the store makes that safe.
type leaseRescuer struct {
	serviceLoop
	queue    domain.SharedQueue
	interval time.Duration
	clock    Clock
	logger   *slog.Logger
}

// Start implements service.
func (r *leaseRescuer) Start(ctx context.Context) error {
	if !r.run(ctx, r.loop) {
		return errServiceRunning
	}
	return nil
}

func (r *leaseRescuer) loop(ctx context.Context) {
	r.rescue(ctx)
	every(ctx, r.clock, r.interval, func() { r.rescue(ctx) })
}

func (r *leaseRescuer) rescue(ctx context.Context) {
	n, err := r.queue.RescueExpired(ctx)
	switch {
	case err != nil && ctx.Err() == nil:
		r.logger.Error("rescuing expired leases failed", slog.Any("error", err))
	case n > 0:
		r.logger.Warn("rescued jobs whose node stopped renewing their lease", slog.Int("jobs", n))
	}
}
