package actors

import (
	"context"
	"time"
)

// leaseRenewer asks the dispatcher to renew the leases of this node's
// running jobs every interval (renew sends the message); the renewal also
// picks up cancels whose notice was lost.
type leaseRenewer struct {
	serviceLoop
	interval time.Duration
	renew    func()
	clock    Clock
}

// Start implements service.
func (r *leaseRenewer) Start(ctx context.Context) error {
	if !r.run(ctx, func(ctx context.Context) { every(ctx, r.clock, r.interval, r.renew) }) {
		return errServiceRunning
	}
	return nil
}
