package actors

import (
	"context"
	"time"
)

// claimPoller asks the dispatcher to claim every interval (poll sends the
// message), in case a notice of new jobs was lost.
type claimPoller struct {
	serviceLoop
	interval time.Duration
	poll     func()
	clock    Clock
}

// Start implements service.
func (p *claimPoller) Start(ctx context.Context) error {
	if !p.run(ctx, func(ctx context.Context) { every(ctx, p.clock, p.interval, p.poll) }) {
		return errServiceRunning
	}
	return nil
}
