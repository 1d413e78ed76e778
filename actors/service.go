package actors

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// service is a background loop of a System: it runs from Start until Stop,
// beside the actors, and talks to them only by message. Start returns once
// the loop runs and fails only if it cannot; Stop cancels the loop and
// returns once it has ended. Starting a running service, or stopping a
// stopped one, does nothing.
type service interface {
	Start(ctx context.Context) error
	Stop()
}

// serviceLoop is the lifecycle every service embeds: one goroutine,
// canceled and awaited by Stop.
type serviceLoop struct {
	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// run starts loop on its own goroutine with a context that Stop cancels.
// It reports false, and starts nothing, if the service already runs.
func (s *serviceLoop) run(ctx context.Context, loop func(ctx context.Context)) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done != nil {
		return false
	}
	ctx, s.cancel = context.WithCancel(ctx)
	done := make(chan struct{})
	s.done = done
	go func() {
		defer close(done)
		loop(ctx)
	}()
	return true
}

// Stop cancels the loop and waits for it to return.
func (s *serviceLoop) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done == nil {
		return
	}
	s.cancel()
	<-s.done
	s.cancel, s.done = nil, nil
}

// serviceGroup starts and stops a System's services in one place: in order,
// and in reverse order.
type serviceGroup []service

// start starts every service; if one fails, those already started are
// stopped and its error returned.
func (g serviceGroup) start(ctx context.Context) error {
	for i, s := range g {
		if err := s.Start(ctx); err != nil {
			g[:i].stop()
			return fmt.Errorf("start %T: %w", s, err)
		}
	}
	return nil
}

func (g serviceGroup) stop() {
	for i := len(g) - 1; i >= 0; i-- {
		g[i].Stop()
	}
}

// errServiceRunning is Start of a service that runs already.
var errServiceRunning = errors.New("service already running")

// every calls fn each interval, on clock, until ctx ends. The interval
// counts from fn's return, so a slow fn never queues calls.
func every(ctx context.Context, clock Clock, interval time.Duration, fn func()) {
	for sleepCtx(ctx, clock, interval) {
		fn()
	}
}

// sleepCtx waits d on clock; it reports false if ctx ended first.
func sleepCtx(ctx context.Context, clock Clock, d time.Duration) bool {
	fired := make(chan struct{})
	stop := clock.AfterFunc(d, func() { close(fired) })
	select {
	case <-fired:
		return ctx.Err() == nil
	case <-ctx.Done():
		stop()
		return false
	}
}
