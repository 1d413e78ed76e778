package actors

import (
	"sync"
	"sync/atomic"

	"github.com/troupe-go/troupe/domain"
)

// Event is one change of a job, published once the change is stored:
// created, started, retried, handed back, completed, failed or canceled.
type Event struct {
	// Job is the snapshot as stored. It is shared by every subscriber and
	// must not be modified.
	Job *domain.Job
}

// events fans job changes out to subscribers. Publishing never blocks the
// runtime: a subscriber whose buffer is full misses events, and learns how
// many through its Dropped count, so a reader that must not miss the end
// of a job re-reads it from the store.
type events struct {
	mu   sync.RWMutex
	subs map[*Subscription]struct{}
	// count lets publish skip the lock when nobody listens, the usual case.
	count atomic.Int32
}

// Subscription receives job events until it is closed.
type Subscription struct {
	// C delivers the events; it is closed by Close.
	C       <-chan Event
	ch      chan Event
	dropped atomic.Int64
	owner   *events
	once    sync.Once
}

// Dropped counts the events this subscription missed because its buffer
// was full.
func (s *Subscription) Dropped() int64 { return s.dropped.Load() }

// Close ends the subscription and closes C. It is safe to call twice.
func (s *Subscription) Close() {
	s.once.Do(func() {
		e := s.owner
		e.mu.Lock()
		delete(e.subs, s)
		e.count.Add(-1)
		close(s.ch)
		e.mu.Unlock()
	})
}

func (e *events) subscribe(buffer int) *Subscription {
	ch := make(chan Event, max(buffer, 1))
	s := &Subscription{C: ch, ch: ch, owner: e}
	e.mu.Lock()
	if e.subs == nil {
		e.subs = make(map[*Subscription]struct{})
	}
	e.subs[s] = struct{}{}
	e.count.Add(1)
	e.mu.Unlock()
	return s
}

func (e *events) publish(job *domain.Job) {
	if e.count.Load() == 0 {
		return
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	for s := range e.subs {
		select {
		case s.ch <- Event{Job: job}:
		default:
			s.dropped.Add(1)
		}
	}
}

// Subscribe returns a subscription to every job change of this System,
// with room for buffer events in flight. Close it when done.
func (s *System) Subscribe(buffer int) *Subscription {
	return s.core.events.subscribe(buffer)
}
