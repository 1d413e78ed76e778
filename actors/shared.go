package actors

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/troupe-go/troupe/domain"
)

// Messages of the shared-queue mode, received by the dispatcher.
type (
	// claimNow asks the dispatcher to claim jobs for its idle workers.
	claimNow struct{}
	// queueNotice carries a notice of the shared store.
	queueNotice struct{ notice domain.QueueNotice }
	// claimed is the result of a claim.
	claimed struct {
		jobs  []*domain.Job
		err   error
		limit int
	}
	// renewLeases asks the dispatcher to renew the leases of its running jobs.
	renewLeases struct{}
	// leasesRenewed is the result of a renewal: the jobs whose lease was
	// not renewed, and those whose cancel was requested. leases holds the
	// activation of each job the renewal was for.
	leasesRenewed struct {
		lost, canceled []uuid.UUID
		leases         map[uuid.UUID]uint64
		err            error
	}
	// leaseLost tells a job actor that a renewal found its job no longer
	// running on this node: another node took it back, unless this attempt's
	// outcome was what ended it.
	leaseLost struct{}
)

// sharedLoops are the goroutines of one node of a shared store: the watch
// on the store's notices, the fallback poll, lease renewal and the rescuer.
// They only send messages to the dispatcher or call the store, and stop
// with stop.
type sharedLoops struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func startSharedLoops(c *core) *sharedLoops {
	ctx, cancel := context.WithCancel(c.storeCtx)
	l := &sharedLoops{cancel: cancel}
	root, dispatcher, log := c.actors.Root, c.dispatcher, c.logger

	l.run(func() {
		for ctx.Err() == nil {
			err := c.shared.Watch(ctx, func(n domain.QueueNotice) { root.Send(dispatcher, &queueNotice{notice: n}) })
			if err != nil && ctx.Err() == nil {
				log.Error("watching the shared store failed; retrying", slog.Any("error", err))
				sleepCtx(ctx, time.Second)
			}
		}
	})
	l.every(ctx, c.cfg.PollInterval, func() { root.Send(dispatcher, &claimNow{}) })
	l.every(ctx, c.cfg.LeaseDuration/3, func() { root.Send(dispatcher, &renewLeases{}) })
	rescue := func() {
		n, err := c.shared.RescueExpired(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Error("rescuing expired leases failed", slog.Any("error", err))
		case n > 0:
			log.Warn("rescued jobs whose node stopped renewing their lease", slog.Int("jobs", n))
		}
	}
	l.run(rescue)
	l.every(ctx, c.cfg.RescueInterval, rescue)
	return l
}

func (l *sharedLoops) run(fn func()) {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		fn()
	}()
}

func (l *sharedLoops) every(ctx context.Context, d time.Duration, fn func()) {
	l.run(func() {
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				fn()
			case <-ctx.Done():
				return
			}
		}
	})
}

func (l *sharedLoops) stop() {
	l.cancel()
	l.wg.Wait()
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
