package actors

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/troupe-go/troupe/domain"
)

// manualClock moves only when the test advances it; a timer fires once the
// clock reaches its deadline.
type manualClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*manualTimer
}

type manualTimer struct {
	at      time.Time
	delay   time.Duration // as the runtime asked for it
	f       func()
	stopped bool
}

func newManualClock() *manualClock {
	return &manualClock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &manualTimer{at: c.now.Add(d), delay: d, f: f}
	c.timers = append(c.timers, t)
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		if t.stopped || !slices.Contains(c.timers, t) {
			return false
		}
		t.stopped = true
		c.timers = slices.DeleteFunc(c.timers, func(x *manualTimer) bool { return x == t })
		return true
	}
}

// advance moves the clock by d and fires, each on its own goroutine, the
// timers that fall due.
func (c *manualClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []*manualTimer
	c.timers = slices.DeleteFunc(c.timers, func(t *manualTimer) bool {
		if !t.at.After(c.now) {
			due = append(due, t)
			return true
		}
		return false
	})
	c.mu.Unlock()
	for _, t := range due {
		go t.f()
	}
}

// waiting returns the delays the runtime asked for of the timers that are
// set, in the order they were set.
func (c *manualClock) waiting() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	ds := make([]time.Duration, len(c.timers))
	for i, t := range c.timers {
		ds[i] = t.delay
	}
	return ds
}

// fireNext moves the clock to the earliest timer's deadline, firing what
// falls due then.
func (c *manualClock) fireNext(t *testing.T) {
	t.Helper()
	c.mu.Lock()
	if len(c.timers) == 0 {
		c.mu.Unlock()
		t.Fatal("no timer is waiting")
	}
	next := slices.MinFunc(c.timers, func(a, b *manualTimer) int { return a.at.Compare(b.at) }).at
	d := next.Sub(c.now)
	c.mu.Unlock()
	c.advance(d)
}

// pendingAt reports whether a timer is set to fire at at.
func (c *manualClock) pendingAt(at time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.ContainsFunc(c.timers, func(t *manualTimer) bool { return t.at.Equal(at) })
}

// pending returns how many timers are set.
func (c *manualClock) pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// fakeSharedQueue is a SharedQueue with no jobs: it counts the calls made
// to it, and its watch delivers the notices the test sends.
type fakeSharedQueue struct {
	mu        sync.Mutex
	claims    int
	rescues   int
	rescueErr error
	notices   chan domain.QueueNotice
	// watchFailures is how many watches fail at once before one works.
	watchFailures int
	watches       int
}

func newFakeSharedQueue() *fakeSharedQueue {
	return &fakeSharedQueue{notices: make(chan domain.QueueNotice)}
}

func (q *fakeSharedQueue) ClaimJobs(context.Context, string, domain.ClaimRequest) ([]*domain.Job, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.claims++
	return nil, nil
}

func (q *fakeSharedQueue) RenewLeases(context.Context, string, []uuid.UUID, time.Duration) ([]uuid.UUID, error) {
	return nil, nil
}

func (q *fakeSharedQueue) Heartbeat(context.Context, string, uuid.UUID, time.Duration, *domain.Progress) (domain.LeaseState, error) {
	return domain.LeaseState{}, domain.ErrLeaseLost
}

func (q *fakeSharedQueue) UpdateOwned(context.Context, string, *domain.Job) error {
	return domain.ErrLeaseLost
}

func (q *fakeSharedQueue) RescueExpired(context.Context) (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.rescues++
	return 0, q.rescueErr
}

func (q *fakeSharedQueue) CancelJob(_ context.Context, id uuid.UUID) (*domain.Job, error) {
	return nil, domain.ErrNotFound
}

func (q *fakeSharedQueue) FlowWaiting(context.Context, []uuid.UUID) (map[uuid.UUID]domain.WaitReason, error) {
	return nil, nil
}

func (q *fakeSharedQueue) WaitingCounts(context.Context) ([]domain.WaitingCount, error) {
	return nil, nil
}

func (q *fakeSharedQueue) FlowWakeAfter(context.Context) (time.Duration, error) { return 0, nil }

func (q *fakeSharedQueue) CancelRequests(context.Context, string) ([]uuid.UUID, error) {
	return nil, nil
}

func (q *fakeSharedQueue) Watch(ctx context.Context, fn func(domain.QueueNotice)) error {
	q.mu.Lock()
	q.watches++
	fail := q.watchFailures > 0
	if fail {
		q.watchFailures--
	}
	q.mu.Unlock()
	if fail {
		return errors.New("connection lost")
	}
	for {
		select {
		case n := <-q.notices:
			fn(n)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (q *fakeSharedQueue) watchCount() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.watches
}

func (q *fakeSharedQueue) claimCount() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.claims
}

func (q *fakeSharedQueue) rescueCount() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.rescues
}
