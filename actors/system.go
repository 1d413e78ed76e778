package actors

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"

	"github.com/troupe-go/troupe/domain"
)

// core is what every actor of one System shares.
type core struct {
	cfg   Config
	store domain.Store
	// source is where ready jobs come from and snapshots go: the local
	// ready queue, or the queue of a store several nodes share.
	source jobSource
	// scheduler promotes scheduled jobs when they fall due, in both modes.
	scheduler *scheduler
	// schedules submits the jobs of periodic schedules; pruner deletes
	// finished jobs past their retention.
	schedules *scheduleService
	pruner    *pruner
	// services are the background loops beside the actors, in the order
	// they start: the scheduler, the schedules and the pruner.
	services serviceGroup
	// configSchedules are the configuration file's, applied at Start.
	configSchedules []ScheduleParams
	logger          *slog.Logger
	clock           Clock
	metrics         Metrics
	registry        *registry
	backoff         Backoff
	events          events

	actors     *actor.ActorSystem
	pool       *goroutinePool
	dispatcher *actor.PID
	supervisor *actor.PID

	// queued counts jobs in the ready queue plus slots reserved by
	// submissions on their way there; Submit checks it against QueueSize.
	queued atomic.Int64
	busy   atomic.Int64
	// jobActors counts the job actors that hold a job: jobs running,
	// waiting for a store that refused a write, or being canceled. Queued
	// and scheduled jobs have none, nor do the idle actors the supervisor
	// keeps for the next jobs.
	jobActors atomic.Int64
	// stuck counts attempts running past their timeout.
	stuck atomic.Int64
	// attempts counts attempts whose outcome is not yet stored.
	attempts sync.WaitGroup

	// runCtx parents every attempt's context; Stop cancels it when its
	// time is up. storeCtx is for store calls, which must go on while a
	// stop hands jobs back.
	runCtx   context.Context
	stopRun  context.CancelCauseFunc
	storeCtx context.Context
}

type lifecycle int

const (
	stateNew lifecycle = iota
	stateRunning
	stateStopping
	stateStopped
)

// System is the job runtime behind one facade: register handlers, start it,
// submit jobs, read and cancel them, stop it. It hides actors and messages;
// every method is safe for concurrent use.
type System struct {
	core *core

	// mu guards state. Submissions hold it shared for their whole call, so
	// that Stop, which takes it exclusively, never misses one on its way.
	mu      sync.RWMutex
	state   lifecycle
	workers []*actor.PID
}

// New returns a System on store, configured by opts and validated. It does
// not start anything; register handlers, then call Start.
func New(store domain.Store, opts ...Option) (*System, error) {
	if store == nil {
		return nil, errors.New("new job system: store is nil")
	}
	o := options{}
	for _, opt := range opts {
		opt(&o)
	}
	cfg := o.cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("new job system: %w", err)
	}
	c := &core{
		cfg:      cfg,
		store:    store,
		logger:   o.logger,
		clock:    o.clock,
		metrics:  o.metrics,
		registry: newRegistry(),
		backoff: Backoff{
			Base: cfg.RetryBaseDelay, Max: cfg.RetryMaxDelay,
			Jitter: cfg.RetryJitter, Random: o.random,
		},
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	if c.clock == nil {
		c.clock = wallClock{}
	}
	if c.metrics == nil {
		c.metrics = NopMetrics{}
	}
	for _, t := range cfg.ExternalTypes {
		if err := c.registry.registerExternal(t); err != nil {
			return nil, fmt.Errorf("new job system: external types: %w", err)
		}
	}
	c.source = newJobSource(c, o.shared)
	poll := schedulerPollLocal
	if o.shared != nil {
		poll = cfg.PollInterval
	}
	c.scheduler = newScheduler(c, poll)
	sys := &System{core: c}
	if o.shared != nil {
		c.schedules = newScheduleService(c, cfg.PollInterval, true, sys.Submit)
	} else {
		c.schedules = newScheduleService(c, schedulePollLocal, false, sys.Submit)
	}
	c.pruner = newPruner(c)
	c.services = serviceGroup{c.scheduler, c.schedules, c.pruner}
	c.configSchedules = o.schedules
	return sys, nil
}

// Config returns the configuration in force, defaults filled in.
func (s *System) Config() Config { return s.core.cfg }

// Register sets the handler of a job type. It fails with
// ErrDuplicateHandler if the type has one. It may be called at any time.
// WithTimeout sets the type's default attempt timeout.
func (s *System) Register(typ domain.JobType, h domain.Handler, opts ...RegisterOption) error {
	return s.core.registry.register(typ, h, opts...)
}

// JobTypes returns every job type jobs may be submitted with (run by Go
// handlers, webhooks or external workers), sorted.
func (s *System) JobTypes() []domain.JobType { return s.core.registry.submittableTypes() }

// Start spawns the actors and recovers every unfinished job from the
// store: pending jobs are queued again, and a job found running was
// interrupted by a crash, so its attempt counts and it follows the retry
// policy. With a shared store there is nothing to recover (every node's
// rescuer takes back the jobs of a node that died); Start starts the
// shared store's services instead. ctx bounds the recovery only; the
// system runs until Stop.
func (s *System) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateNew {
		return errors.New("start job system: already started")
	}
	c := s.core
	// Before anything runs, so that a bad declaration fails Start cleanly.
	if err := s.applyConfigSchedules(ctx, c.configSchedules); err != nil {
		s.state = stateStopped
		return fmt.Errorf("start job system: %w", err)
	}
	c.storeCtx = context.WithoutCancel(ctx)
	c.runCtx, c.stopRun = context.WithCancelCause(c.storeCtx)
	c.actors = actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		// Protoactor logs dead letters and restarts at info; only its
		// warnings and errors are ours to see.
		return slog.New(minLevel{Handler: c.logger.Handler(), min: slog.LevelWarn}).With(slog.String("component", "protoactor"))
	}))
	root := c.actors.Root
	// Each worker and the job it runs may need a mailbox run at once, and
	// jobs waiting on a store write hold theirs; twice that leaves room for
	// the dispatcher, the supervisor and the finishing jobs. Past it,
	// mailboxes run on fresh goroutines.
	c.pool = newGoroutinePool(4*c.cfg.Workers+4, mailboxThroughput)
	onPool := actor.WithDispatcher(c.pool)
	var err error
	if c.dispatcher, err = root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return newDispatcher(c) }, onPool), "dispatcher"); err != nil {
		return s.abortStart(fmt.Errorf("start job system: spawn dispatcher: %w", err))
	}
	supervisorProps := actor.PropsFromProducer(func() actor.Actor { return newJobSupervisor(c) },
		actor.WithSupervisor(jobSupervisorStrategy(c.logger)), onPool)
	if c.supervisor, err = root.SpawnNamed(supervisorProps, "jobs"); err != nil {
		return s.abortStart(fmt.Errorf("start job system: spawn job supervisor: %w", err))
	}
	n, err := c.source.recover(ctx)
	if err != nil {
		return s.abortStart(fmt.Errorf("start job system: recover jobs: %w", err))
	}
	for i := range c.cfg.Workers {
		w := &worker{rt: c, id: i + 1}
		pid, err := root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return w }, onPool), fmt.Sprintf("worker-%d", i+1))
		if err != nil {
			return s.abortStart(fmt.Errorf("start job system: spawn worker %d: %w", i+1, err))
		}
		s.workers = append(s.workers, pid)
	}
	if err := c.source.start(c.storeCtx); err != nil {
		return s.abortStart(fmt.Errorf("start job system: %w", err))
	}
	// Started last: the scheduler reads only the store's earliest RunAt,
	// so a million scheduled jobs cost a restart nothing; the schedules'
	// first round submits what fell due while the System was stopped once
	// Start returns and submissions are open.
	if err := c.services.start(c.storeCtx); err != nil {
		c.source.stop()
		return s.abortStart(fmt.Errorf("start job system: %w", err))
	}
	s.state = stateRunning
	c.startedLog(n)
	return nil
}

func (s *System) abortStart(err error) error {
	s.stopActors()
	s.state = stateStopped
	return err
}

// mailboxThroughput is how many messages an actor handles before giving
// its goroutine back; protoactor's default.
const mailboxThroughput = 300

// Submit stores a new job and queues it. It returns the stored job, or
// ErrUnknownJobType, ErrInvalid (ErrPayloadTooLarge for a payload over
// Config.MaxPayloadBytes), ErrQueueFull (nothing stored: try again
// later) or ErrNotRunning. When p.UniqueKey is held by another job, it
// stores nothing and returns that job with an error wrapping ErrDuplicate.
func (s *System) Submit(ctx context.Context, p SubmitParams) (*domain.Job, error) {
	results, err := s.SubmitBatch(ctx, []SubmitParams{p})
	if err != nil {
		return nil, err
	}
	r := results[0]
	if !r.Created {
		return r.Job, fmt.Errorf("submit: job %s holds unique key %q: %w", r.Job.ID, p.UniqueKey, ErrDuplicate)
	}
	return r.Job, nil
}

// SubmitBatch stores several jobs in one write and queues them in order:
// all of them, except those whose unique key another job holds, which
// are reported (Created false) beside the job holding it. An invalid job
// fails the whole batch with a *BatchJobError naming its index. ctx ending
// before the write refuses the jobs, and jobs once stored are queued
// however ctx ends. With a local store the call then waits for the write,
// so an error means nothing was stored; with a shared store, ctx still
// bounds the write, and jobs whose caller stopped waiting during it may be
// stored, and run, as any stored job is.
func (s *System) SubmitBatch(ctx context.Context, ps []SubmitParams) ([]SubmitResult, error) {
	c := s.core
	if len(ps) == 0 {
		return []SubmitResult{}, nil
	}
	now := c.clock.Now()
	jobs := make([]*domain.Job, len(ps))
	for i, p := range ps {
		job, err := s.newJob(p, now)
		if err != nil {
			if len(ps) > 1 {
				return nil, &BatchJobError{Index: i, Err: err}
			}
			return nil, err
		}
		jobs[i] = job
	}

	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.state != stateRunning {
		return nil, fmt.Errorf("submit: %w", domain.ErrNotRunning)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("submit: %w", err)
	}
	return c.source.submit(ctx, now, jobs)
}

// BatchJobError is SubmitBatch refusing one job of a batch of several.
// It wraps the job's error, so errors.Is still sees the domain's kind.
type BatchJobError struct {
	// Index is the job's place in the batch, from 0.
	Index int
	Err   error
}

func (e *BatchJobError) Error() string { return fmt.Sprintf("job %d: %v", e.Index, e.Err) }

// Unwrap returns the job's error.
func (e *BatchJobError) Unwrap() error { return e.Err }

func (s *System) newJob(p SubmitParams, now time.Time) (*domain.Job, error) {
	opts, ok := s.core.registry.lookup(p.Type)
	if !ok {
		return nil, s.core.registry.unknownTypeError(p.Type)
	}
	if p.MaxAttempts < 0 || p.MaxAttempts > MaxAttemptsLimit {
		return nil, fmt.Errorf("%w: maxAttempts must be between 1 and %d, got %d", domain.ErrInvalid, MaxAttemptsLimit, p.MaxAttempts)
	}
	if limit := s.core.cfg.MaxPayloadBytes; int64(len(p.Payload)) > limit {
		return nil, fmt.Errorf("%w: the payload is %d bytes, over the limit of %d bytes", domain.ErrPayloadTooLarge, len(p.Payload), limit)
	}
	runAt, err := runAtOf(p, now)
	if err != nil {
		return nil, err
	}
	if p.Timeout < NoTimeout {
		return nil, fmt.Errorf("%w: timeout must not be negative", domain.ErrInvalid)
	}
	if p.UniqueKey == "" && p.UniqueFor != 0 {
		return nil, fmt.Errorf("%w: uniqueFor needs a uniqueKey", domain.ErrInvalid)
	}
	maxAttempts := cmp.Or(p.MaxAttempts, s.core.cfg.MaxAttempts)
	job, err := domain.NewJob(p.Type, p.Payload, maxAttempts, now)
	if err != nil {
		return nil, err
	}
	job.ScheduleAt(runAt, now)
	job.Queue = cmp.Or(p.Queue, domain.DefaultQueue)
	job.Priority = cmp.Or(p.Priority, domain.DefaultPriority)
	job.UniqueKey, job.UniqueFor = p.UniqueKey, p.UniqueFor
	job.Key = p.Key
	job.Schedule = p.schedule
	job.Timeout = max(cmp.Or(p.Timeout, opts.timeout, s.core.cfg.JobTimeout), 0)
	if err := job.Validate(); err != nil {
		return nil, err
	}
	return job, nil
}

// runAtOf is when a submission may first run: RunAt, or now + Delay.
func runAtOf(p SubmitParams, now time.Time) (time.Time, error) {
	switch {
	case !p.RunAt.IsZero() && p.Delay != 0:
		return time.Time{}, fmt.Errorf("%w: runAt and delay exclude each other", domain.ErrInvalid)
	case p.Delay < 0 || p.Delay > MaxDelay:
		return time.Time{}, fmt.Errorf("%w: delay must be between 0 and %s, got %s", domain.ErrInvalid, MaxDelay, p.Delay)
	case p.Delay > 0:
		return now.Add(p.Delay), nil
	case p.RunAt.After(now.Add(MaxDelay)):
		return time.Time{}, fmt.Errorf("%w: runAt must be at most %s ahead", domain.ErrInvalid, MaxDelay)
	}
	return p.RunAt, nil
}

// Get returns a job as last stored, with WaitingFor filled in when it is
// pending and held back by flow settings.
func (s *System) Get(ctx context.Context, id uuid.UUID) (*domain.Job, error) {
	job, err := s.core.store.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	s.fillWaitingFor(ctx, []*domain.Job{job})
	return job, nil
}

// List returns a page of jobs, oldest first, and how many match.
func (s *System) List(ctx context.Context, f domain.Filter) (domain.Page, error) {
	if f.Limit < 0 || f.Offset < 0 {
		return domain.Page{}, fmt.Errorf("%w: limit and offset must not be negative", domain.ErrInvalid)
	}
	for _, st := range f.Statuses {
		if !st.IsValid() {
			return domain.Page{}, fmt.Errorf("%w: unknown status %q", domain.ErrInvalid, st)
		}
	}
	page, err := s.core.store.List(ctx, f)
	if err != nil {
		return page, err
	}
	s.fillWaitingFor(ctx, page.Jobs)
	return page, nil
}

// Cancel cancels a job. A scheduled or pending job is canceled at once. A running job's
// context is canceled and the job, returned still running, becomes canceled
// when its handler returns. Canceling a canceled job returns it unchanged;
// a completed or failed job gives ErrNotCancelable.
func (s *System) Cancel(ctx context.Context, id uuid.UUID) (*domain.Job, error) {
	s.mu.RLock()
	running := s.state == stateRunning
	s.mu.RUnlock()
	if !running {
		return nil, fmt.Errorf("cancel job %s: %w", id, domain.ErrNotRunning)
	}
	return s.core.source.cancel(ctx, id)
}

// requestTimeout turns ctx's deadline into a future's timeout. It reads
// the wall clock, not Clock: a context's deadline is wall-clock time.
func requestTimeout(ctx context.Context) time.Duration {
	if deadline, ok := ctx.Deadline(); ok {
		return max(time.Until(deadline), time.Millisecond)
	}
	return requestTimeoutDefault
}

// Stats returns the pool and queue figures without touching the store.
func (s *System) Stats() Stats {
	s.mu.RLock()
	running := s.state == stateRunning
	s.mu.RUnlock()
	return Stats{
		Workers:    WorkerStats{Size: s.core.cfg.Workers, Busy: int(s.core.busy.Load())},
		QueueDepth: int(max(s.core.queued.Load(), 0)),
		Stuck:      int(max(s.core.stuck.Load(), 0)),
		JobActors:  int(s.core.jobActors.Load()),
		Running:    running,
	}
}

// Health checks that the dispatcher answers and the store pings.
func (s *System) Health(ctx context.Context) Health {
	h := Health{Stats: s.Stats()}
	if !h.Running {
		h.Dispatcher = domain.ErrNotRunning
	} else if _, err := s.core.actors.Root.RequestFuture(s.core.dispatcher, &pingDispatcher{}, min(requestTimeout(ctx), time.Second)).Result(); err != nil {
		h.Dispatcher = domain.Public(fmt.Errorf("dispatcher does not answer: %w", err))
	}
	if err := s.core.store.Ping(ctx); err != nil {
		h.Store = err
	}
	return h
}

// Stop shuts the system down in phases: no new submissions; the dispatcher
// hands out no more work; running attempts get until ctx ends to finish;
// then their contexts are canceled and each is handed back as pending (not
// canceled, and without using an attempt) so that the next start runs it
// again; the actors stop and the store is flushed. The store stays open:
// its owner closes it. Stop is safe to call more than once.
func (s *System) Stop(ctx context.Context) error {
	s.mu.Lock()
	if s.state != stateRunning {
		s.mu.Unlock()
		return nil
	}
	s.state = stateStopping
	s.mu.Unlock()

	c := s.core
	c.logger.Info("job system stopping: intake closed")
	// Jobs and slots falling due from now on stay in the store for the
	// next start.
	c.services.stop()
	if _, err := c.actors.Root.RequestFuture(c.dispatcher, &drainDispatcher{}, requestTimeoutDefault).Result(); err != nil {
		c.logger.Error("dispatcher did not drain", slog.Any("error", err))
	}
	if !waitGroupWait(ctx, &c.attempts) {
		busy := c.busy.Load()
		c.logger.Warn("stop timed out; canceling running attempts and handing them back", slog.Int64("running", busy))
		c.stopRun(errShutdown)
		grace, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.HandBackTimeout)
		if !waitGroupWait(grace, &c.attempts) {
			c.logger.Error("handlers ignored cancellation; their jobs stay running and count as interrupted at the next start")
		}
		cancel()
	}
	c.stopRun(errShutdown)
	c.source.stop()
	s.stopActors()
	err := c.store.Flush(context.WithoutCancel(ctx))

	s.mu.Lock()
	s.state = stateStopped
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("stop job system: flush store: %w", err)
	}
	c.logger.Info("job system stopped")
	return nil
}

// stopActors stops the job actors (their timers with them), then the
// workers and the dispatcher, and the actor system.
func (s *System) stopActors() {
	c := s.core
	if c.actors == nil {
		return
	}
	root := c.actors.Root
	if c.supervisor != nil {
		_ = root.StopFuture(c.supervisor).Wait()
	}
	for _, pid := range s.workers {
		_ = root.StopFuture(pid).Wait()
	}
	if c.dispatcher != nil {
		_ = root.StopFuture(c.dispatcher).Wait()
	}
	c.actors.Shutdown()
	if c.pool != nil {
		c.pool.close()
	}
}

// waitGroupWait waits for wg until ctx ends; it reports whether wg finished.
func waitGroupWait(ctx context.Context, wg *sync.WaitGroup) bool {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}
