package actors

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/troupe-go/troupe/domain"
)

// promoteBatch is how many due jobs one PromoteDue call makes pending: a
// write large enough to amortize, small enough to hand on at once.
const promoteBatch = 1000

// Poll intervals of the scheduler: it re-reads the store's earliest RunAt
// in case it missed one. On a local store every scheduled job is written
// by this node, which tells the scheduler, so the poll is only a safety
// net; on a shared one other nodes schedule jobs too, and their notices
// may be lost (Config.PollInterval there).
const (
	schedulerPollLocal = time.Minute
	// schedulerRetryDelay is the pause after the store refused a promotion.
	schedulerRetryDelay = time.Second
	// schedulerSkewPause keeps a store whose clock lags this node's from
	// making the scheduler spin: it names a RunAt that is past here but not
	// yet due there.
	schedulerSkewPause = 10 * time.Millisecond
)

// scheduler makes scheduled jobs pending when their RunAt comes: jobs
// submitted for later and retries waiting out a backoff. A scheduled job
// is data in the store only, indexed by RunAt; the scheduler holds no
// memory per job, just the earliest RunAt it knows of and one timer for
// it. At the timer it promotes every due job, a batch at a time, hands
// them on (promoted), asks the store for the next RunAt and sets the timer
// again. Submissions and retries tell it of new RunAts (notify); a slow
// poll and the start catch what it was not told.
type scheduler struct {
	serviceLoop
	store  domain.Store
	clock  Clock
	logger *slog.Logger
	poll   time.Duration
	// promoted hands the jobs of one PromoteDue on; roundDone follows the
	// last batch of each round.
	promoted  func([]*domain.Job)
	roundDone func()
	publish   func(*domain.Job)

	kick chan struct{}

	mu      sync.Mutex
	next    time.Time // the earliest RunAt known; zero when none
	stop    func() bool
	stopped bool
}

func newScheduler(c *core, poll time.Duration) *scheduler {
	return &scheduler{
		store: c.store, clock: c.clock, logger: c.logger, poll: poll,
		promoted:  c.source.promoted,
		roundDone: c.source.promotionsSent,
		publish:   c.events.publish,
		kick:      make(chan struct{}, 1),
	}
}

// Start implements service: it promotes what fell due while the System
// was stopped and sets the timer for the rest.
func (s *scheduler) Start(ctx context.Context) error {
	s.mu.Lock()
	s.stopped = false
	s.mu.Unlock()
	if !s.run(ctx, s.loop) {
		return errServiceRunning
	}
	return nil
}

// Stop implements service.
func (s *scheduler) Stop() {
	s.serviceLoop.Stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = true
	s.disarm()
}

// notify tells the scheduler that a job is scheduled for at. It is cheap
// and never blocks on the store: it only moves the timer earlier.
func (s *scheduler) notify(at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped || !s.next.IsZero() && !at.Before(s.next) {
		return
	}
	s.disarm()
	s.next = at
	d := at.Sub(s.clock.Now())
	if d <= 0 {
		s.wake()
		return
	}
	s.stop = s.clock.AfterFunc(d, s.wake)
}

// disarm forgets the timer; s.mu is held.
func (s *scheduler) disarm() {
	if s.stop != nil {
		s.stop()
		s.stop = nil
	}
	s.next = time.Time{}
}

func (s *scheduler) wake() {
	select {
	case s.kick <- struct{}{}:
	default: // a round is already asked for
	}
}

func (s *scheduler) loop(ctx context.Context) {
	s.round(ctx)
	for {
		stopPoll := s.clock.AfterFunc(s.poll, s.wake)
		select {
		case <-ctx.Done():
			stopPoll()
			return
		case <-s.kick:
		}
		stopPoll()
		s.round(ctx)
	}
}

// round promotes every job due now and sets the timer for the next RunAt.
func (s *scheduler) round(ctx context.Context) {
	s.mu.Lock()
	// From here on notify sets the timer afresh; the store's answer below
	// only moves it earlier, so a RunAt told meanwhile is kept.
	s.disarm()
	s.mu.Unlock()
	defer s.roundDone()
	promoted := 0
	var now time.Time
	for {
		now = s.clock.Now()
		jobs, err := s.store.PromoteDue(ctx, now, promoteBatch)
		if err != nil {
			s.failed(ctx, "promoting due jobs failed; retrying", err)
			return
		}
		if len(jobs) > 0 {
			promoted += len(jobs)
			for _, j := range jobs {
				s.publish(j)
			}
			s.promoted(jobs)
		}
		if len(jobs) < promoteBatch {
			break
		}
	}
	next, err := s.store.NextRunAt(ctx)
	if err != nil {
		s.failed(ctx, "reading the next RunAt failed; retrying", err)
		return
	}
	if next.IsZero() {
		return
	}
	if promoted == 0 && !next.After(now) {
		next = now.Add(schedulerSkewPause)
	}
	s.notify(next)
}

func (s *scheduler) failed(ctx context.Context, msg string, err error) {
	if ctx.Err() != nil {
		return
	}
	s.logger.Error(msg, slog.Any("error", err), slog.Duration("in", schedulerRetryDelay))
	s.notify(s.clock.Now().Add(schedulerRetryDelay))
}
