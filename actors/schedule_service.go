package actors

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/troupe-go/troupe/domain"
)

// schedulePollLocal is how often the schedule service re-reads a local
// store's schedules: every change goes through this node and wakes it, so
// the poll is a safety net. On a shared store other nodes change
// schedules too, and it is Config.PollInterval.
const schedulePollLocal = time.Minute

// scheduleRetryDelay is the pause before a slot whose submission or record
// the store refused is tried again (it stays due for scheduleMissedAfter).
const scheduleRetryDelay = time.Second

// scheduleService submits the jobs of the schedules' slots. It runs on
// every node, with no leader: each slot's job carries the unique key of
// its slot, so however many nodes (or lives of one node) submit it, one
// job is stored, and a node finding it stored records it as its own. It
// keeps no state between rounds but one timer, for the earliest slot of
// all the schedules, beside the poll: at each round it re-reads them from
// the store, submits what is due and records it, and sets the timer
// again. API changes on this node wake it at once (wake); those made on
// other nodes are seen at the next poll.
type scheduleService struct {
	serviceLoop
	store  domain.ScheduleStore
	clock  Clock
	logger *slog.Logger
	poll   time.Duration
	// pollIdle says to poll even with no schedule to run: on a shared
	// store, where other nodes add them. On a local one every change wakes
	// this service, and an idle one sets no timer.
	pollIdle bool
	// submit is System.Submit; handles reports whether a job type is
	// registered here.
	submit  func(ctx context.Context, p SubmitParams) (*domain.Job, error)
	handles func(domain.JobType) bool
	kick    chan struct{}

	// mu guards the fields below, which keep a fault that retrying will
	// not mend from being logged at every round.
	mu sync.Mutex
	// warned holds, by schedule, what was logged of it: an unreadable
	// expression or a job type this node lacks.
	warned map[string]string
	// refused holds, by schedule, the slot whose job Submit refused as
	// invalid: it is not submitted again.
	refused map[string]time.Time
}

func newScheduleService(c *core, poll time.Duration, pollIdle bool, submit func(context.Context, SubmitParams) (*domain.Job, error)) *scheduleService {
	return &scheduleService{
		store: c.store, clock: c.clock, logger: c.logger, poll: poll, pollIdle: pollIdle, submit: submit,
		handles: func(typ domain.JobType) bool { _, ok := c.registry.lookup(typ); return ok },
		kick:    make(chan struct{}, 1), warned: make(map[string]string), refused: make(map[string]time.Time),
	}
}

// Start implements service.
func (s *scheduleService) Start(ctx context.Context) error {
	if !s.run(ctx, s.loop) {
		return errServiceRunning
	}
	return nil
}

// wake asks for a round now: a schedule changed.
func (s *scheduleService) wake() {
	select {
	case s.kick <- struct{}{}:
	default: // a round is already asked for
	}
}

func (s *scheduleService) loop(ctx context.Context) {
	for {
		next := s.round(ctx)
		if ctx.Err() != nil {
			return
		}
		// Two timers, as the scheduler's: one at the earliest slot, and
		// the poll.
		var stops []func() bool
		if !next.IsZero() {
			if d := next.Sub(s.clock.Now()); d > 0 {
				stops = append(stops, s.clock.AfterFunc(d, s.wake))
			} else {
				s.wake()
			}
		}
		if !next.IsZero() || s.pollIdle {
			stops = append(stops, s.clock.AfterFunc(s.poll, s.wake))
		}
		select {
		case <-ctx.Done():
		case <-s.kick:
		}
		for _, stop := range stops {
			stop()
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// round submits every schedule's due slot (and catch-up) and returns the
// earliest time a round is needed again; zero when no schedule runs.
func (s *scheduleService) round(ctx context.Context) time.Time {
	now := s.clock.Now()
	list, err := s.store.ListSchedules(ctx)
	if err != nil {
		s.failed(ctx, "reading the schedules failed; retrying", "", err)
		return now.Add(scheduleRetryDelay)
	}
	var earliest time.Time
	for _, sc := range list {
		if sc.Paused {
			continue
		}
		spec, err := parseCron(sc.Cron, sc.Timezone)
		if err != nil {
			s.warnOnce(sc, "unreadable:"+sc.Cron+"\x00"+sc.Timezone, slog.LevelError,
				"schedule cannot be read; it submits nothing on this node", slog.Any("error", err))
			continue
		}
		// Nodes may handle different types: those that handle this one
		// submit its slots.
		if !s.handles(sc.Job.Type) {
			s.warnOnce(sc, "type:"+string(sc.Job.Type), slog.LevelInfo,
				"schedule's job type is not registered on this node; other nodes submit its slots",
				slog.String("type", string(sc.Job.Type)))
			continue
		}
		next := spec.next(latest(now, scheduleLowerBound(sc)))
		if !s.runSlots(ctx, sc, spec, now) {
			next = now.Add(scheduleRetryDelay)
		}
		if !next.IsZero() && (earliest.IsZero() || next.Before(earliest)) {
			earliest = next
		}
	}
	return earliest
}

// runSlots submits and records what sc has due at now; it reports false
// if the store refused something, to be tried again shortly.
func (s *scheduleService) runSlots(ctx context.Context, sc *domain.Schedule, spec *cronSpec, now time.Time) bool {
	catchUp, due := planSlots(spec, scheduleLowerBound(sc), now, sc.CatchUp)
	ok := true
	for _, slot := range []time.Time{catchUp, due} {
		if !slot.IsZero() && !s.runSlot(ctx, sc, slot) {
			ok = false
		}
	}
	return ok
}

// runSlot submits the job of one slot, keyed by it, and records it. A job
// already holding the key was submitted by another node or an earlier
// life of this one: it is the slot's job, and recorded as such.
func (s *scheduleService) runSlot(ctx context.Context, sc *domain.Schedule, slot time.Time) bool {
	if s.wasRefused(sc.Name, slot) {
		return true
	}
	p := scheduleSubmitParams(sc)
	p.UniqueKey, p.UniqueFor = domain.ScheduleSlotKey(sc.Name, slot), scheduleSlotHold
	job, err := s.submit(ctx, p)
	switch {
	case errors.Is(err, domain.ErrDuplicate) && job != nil:
	case errors.Is(err, domain.ErrInvalid) || errors.Is(err, domain.ErrUnknownJobType):
		// The job breaks a rule of this node's (a payload over a limit
		// lowered since): trying again would not mend it.
		s.refuse(sc.Name, slot)
		s.logger.Error("schedule's job refused; its slot submits nothing", slog.String("schedule", sc.Name),
			slog.Time("slot", slot), slog.Any("error", err))
		return true
	case err != nil:
		s.failed(ctx, "submitting a schedule's job failed; retrying", sc.Name, err, slog.Time("slot", slot))
		return false
	}
	run := domain.ScheduleRun{Slot: slot, At: job.CreatedAt, JobID: job.ID}
	if err := s.store.RecordScheduleRun(ctx, sc.Name, run); err != nil {
		if errors.Is(err, domain.ErrNotFound) {
			return true // deleted meanwhile; its job stays
		}
		s.failed(ctx, "recording a schedule's run failed; retrying", sc.Name, err,
			slog.Time("slot", slot), slog.String("job_id", job.ID.String()))
		return false
	}
	return true
}

func (s *scheduleService) failed(ctx context.Context, msg, name string, err error, attrs ...any) {
	if ctx.Err() != nil || errors.Is(err, domain.ErrNotRunning) {
		return // stopping
	}
	if name != "" {
		attrs = append(attrs, slog.String("schedule", name))
	}
	s.logger.Warn(msg, append(attrs, slog.Any("error", err), slog.Duration("in", scheduleRetryDelay))...)
}

// warnOnce logs msg about sc at level unless the same fault (what) was
// logged of it last.
func (s *scheduleService) warnOnce(sc *domain.Schedule, what string, level slog.Level, msg string, attrs ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.warned[sc.Name] == what {
		return
	}
	s.warned[sc.Name] = what
	s.logger.Log(context.Background(), level, msg, append(attrs, slog.String("schedule", sc.Name))...)
}

func (s *scheduleService) refuse(name string, slot time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refused[name] = slot
}

func (s *scheduleService) wasRefused(name string, slot time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused[name].Equal(slot)
}
