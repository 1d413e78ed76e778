package actors

import (
	"sync"
	"time"
)

// virtualClock stands still until a timer is due: each AfterFunc moves it
// forward by the delay asked for and fires at once, remembering the delay.
// Backoffs are then checked exactly, with no waiting.
type virtualClock struct {
	mu     sync.Mutex
	now    time.Time
	delays []time.Duration
}

func newVirtualClock() *virtualClock {
	return &virtualClock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *virtualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *virtualClock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	c.delays = append(c.delays, d)
	c.now = c.now.Add(d)
	c.mu.Unlock()
	return time.AfterFunc(0, f).Stop
}

func (c *virtualClock) recorded() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.delays...)
}

// stoppedClock never fires its timers: a job waiting for its retry stays
// waiting until the test acts.
type stoppedClock struct{}

func (stoppedClock) Now() time.Time { return time.Now() }

func (stoppedClock) AfterFunc(time.Duration, func()) func() bool {
	return func() bool { return true }
}
