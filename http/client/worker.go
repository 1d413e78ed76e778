package client

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/troupe-go/troupe/domain"
)

// Defaults of WorkerOptions.
const (
	WorkerBatchDefault       = 50
	WorkerLeaseDefault       = 30 * time.Second
	WorkerWaitDefault        = 30 * time.Second
	WorkerGraceDefault       = 30 * time.Second
	WorkerFlushDefault       = 2 * time.Millisecond
	WorkerMaxResultDefault   = 64 << 10
	workerProgressEvery      = time.Second
	workerReportsInFlight    = 4
	workerReportTries        = 5
	workerClaimBackoffMax    = 5 * time.Second
	workerReportTimeout      = 30 * time.Second
	workerHeartbeatRetryWait = time.Second
)

// ErrCanceled is the cause of a handler's context when a user canceled
// its job (the heartbeat said cancelRequested).
var ErrCanceled = errors.New("job canceled by a user")

// errStopping is the cause of a handler's context when the worker stops
// and the grace period is over.
var errStopping = errors.New("worker stopping: grace period over")

// WorkerOptions configures a Worker. Zero fields take the defaults.
type WorkerOptions struct {
	// Queues, when given, restricts claims to them.
	Queues []string
	// Batch is how many jobs one claim asks for at most (1 to 100,
	// default 50), and how many outcomes one report carries at most.
	Batch int
	// Concurrency is how many handlers run at once; default Batch. A claim
	// asks for no more jobs than there are free slots.
	Concurrency int
	// Lease is how long each claimed job is held without a heartbeat
	// (5 s to 10 min, default 30 s); the worker heartbeats every Lease/3.
	Lease time.Duration
	// Wait is how long a claim waits on the server when no job is ready
	// (default 30 s, at most 60 s).
	Wait time.Duration
	// Grace is how long running handlers may go on after Run's context
	// ends before their contexts are canceled (default 30 s).
	Grace time.Duration
	// FlushInterval is how long an outcome waits for others to share its
	// report (default 2 ms).
	FlushInterval time.Duration
	// MaxResultBytes bounds a result that SetResult takes (default 64 KiB,
	// the server's default); a larger one fails the attempt.
	MaxResultBytes int
	// Name names the worker in the server's log; default host/pid.
	Name string
	// Logger receives the worker's troubles; default none.
	Logger *slog.Logger
	// OnReported, when set, is called once for each outcome the server
	// answered: with the job's status after it, or the error that kept it
	// from being applied. It must be quick.
	OnReported func(id uuid.UUID, status domain.Status, err error)
}

// Worker runs Go handlers for external job types of a remote server
// through the worker protocol: it claims batches of jobs, runs their
// handlers with bounded concurrency, heartbeats their leases (carrying the
// progress handlers report), cancels a handler's context when its job is
// canceled or its lease lost, and reports outcomes in batches. Handlers
// are plain domain.Handlers: domain.SetResult, domain.ReportProgress,
// domain.Permanent and domain.RetryAfter work in them as in the server.
type Worker struct {
	c    *Client
	opts WorkerOptions
	log  *slog.Logger

	mu       sync.Mutex
	handlers map[domain.JobType]domain.Handler
}

// NewWorker returns a worker that claims through c.
func NewWorker(c *Client, opts WorkerOptions) *Worker {
	if opts.Batch <= 0 {
		opts.Batch = WorkerBatchDefault
	}
	opts.Batch = min(opts.Batch, 100)
	if opts.Concurrency <= 0 {
		opts.Concurrency = opts.Batch
	}
	if opts.Lease <= 0 {
		opts.Lease = WorkerLeaseDefault
	}
	if opts.Wait <= 0 {
		opts.Wait = WorkerWaitDefault
	}
	opts.Wait = min(opts.Wait, 60*time.Second)
	if opts.Grace <= 0 {
		opts.Grace = WorkerGraceDefault
	}
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = WorkerFlushDefault
	}
	if opts.MaxResultBytes <= 0 {
		opts.MaxResultBytes = WorkerMaxResultDefault
	}
	if opts.Name == "" {
		host, _ := os.Hostname()
		opts.Name = host + "/" + strconv.Itoa(os.Getpid())
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Worker{c: c, opts: opts, log: log, handlers: map[domain.JobType]domain.Handler{}}
}

// Handle makes the worker claim jobs of typ (declared external on the
// server) and run them with h. It panics on a nil handler or a type
// handled twice, as they are programming errors.
func (w *Worker) Handle(typ domain.JobType, h domain.Handler) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if h == nil {
		panic("client: Worker.Handle: nil handler for " + string(typ))
	}
	if _, dup := w.handlers[typ]; dup {
		panic("client: Worker.Handle: type " + string(typ) + " handled twice")
	}
	w.handlers[typ] = h
}

// Run claims and runs jobs until ctx ends, then stops claiming, lets
// running handlers finish (canceling their contexts after the grace
// period), reports their outcomes and returns nil. It returns an error
// early when the server refuses the claims themselves (an unknown type, a
// wrong token).
func (w *Worker) Run(ctx context.Context) error {
	w.mu.Lock()
	handlers := make(map[domain.JobType]domain.Handler, len(w.handlers))
	types := make([]domain.JobType, 0, len(w.handlers))
	for t, h := range w.handlers {
		handlers[t] = h
		types = append(types, t)
	}
	w.mu.Unlock()
	if len(types) == 0 {
		return errors.New("client: Worker.Run: no handlers: call Handle first")
	}
	slices.Sort(types)

	// Handlers outlive ctx by the grace period.
	base, stopHandlers := context.WithCancelCause(context.WithoutCancel(ctx))
	defer stopHandlers(nil)
	outcomes := make(chan Outcome, w.opts.Concurrency)
	reported := make(chan struct{})
	go func() {
		defer close(reported)
		w.report(outcomes)
	}()

	slots := make(chan struct{}, w.opts.Concurrency)
	var running sync.WaitGroup
	err := w.claimLoop(ctx, types, slots, func(job ClaimedJob) {
		running.Go(func() {
			defer func() { <-slots }()
			if o, ok := w.run(base, handlers[job.Type], &job); ok {
				outcomes <- o
			}
		})
	})

	allDone := make(chan struct{})
	go func() {
		running.Wait()
		close(allDone)
	}()
	grace := time.NewTimer(w.opts.Grace)
	select {
	case <-allDone:
		grace.Stop()
	case <-grace.C:
		stopHandlers(errStopping)
		<-allDone
	}
	close(outcomes)
	<-reported
	return err
}

// claimLoop claims jobs for the free slots until ctx ends, and starts
// each claimed job with start (which owns one slot).
func (w *Worker) claimLoop(ctx context.Context, types []domain.JobType, slots chan struct{}, start func(ClaimedJob)) error {
	backoff := 100 * time.Millisecond
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		n := 1
	more:
		for n < w.opts.Batch {
			select {
			case slots <- struct{}{}:
				n++
			default:
				break more
			}
		}
		jobs, err := w.c.Claim(ctx, ClaimRequest{
			Types: types, Queues: w.opts.Queues, Max: n, Wait: w.opts.Wait, Worker: w.opts.Name, Lease: w.opts.Lease,
		})
		for range n - len(jobs) {
			<-slots
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var p *Problem
			if errors.As(err, &p) && p.Status >= 400 && p.Status < 500 && p.Status != 409 && p.Status != 429 {
				return fmt.Errorf("client: Worker: claim refused: %w", err)
			}
			wait := backoff
			if p != nil && p.RetryAfter > 0 {
				wait = p.RetryAfter
			}
			w.log.WarnContext(ctx, "worker: claim failed", slog.Any("error", err), slog.Duration("retryIn", wait))
			if !sleep(ctx, wait) {
				return nil
			}
			backoff = min(backoff*2, workerClaimBackoffMax)
			continue
		}
		backoff = 100 * time.Millisecond
		for _, j := range jobs {
			start(j)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// attempt is one claimed job while its handler runs: the handler's
// reporter, and its lease's heartbeat.
type attempt struct {
	w      *Worker
	job    *ClaimedJob
	cancel context.CancelCauseFunc
	lost   atomic.Bool

	mu        sync.Mutex
	done      bool
	beating   bool
	kicked    bool
	lastBeat  time.Time
	expires   time.Time
	timer     *time.Timer
	progress  ProgressReport
	dirty     bool
	result    json.RawMessage
	resultErr error
}

// run runs one job's handler and returns its outcome, or false when there
// is none to report (the lease was lost).
func (w *Worker) run(base context.Context, h domain.Handler, job *ClaimedJob) (Outcome, bool) {
	a := &attempt{w: w, job: job, expires: job.LeaseExpiresAt}
	ctx, cancel := context.WithCancelCause(base)
	defer cancel(nil)
	a.cancel = cancel
	if d, err := time.ParseDuration(job.Timeout); err == nil && d > 0 {
		// The server ends the attempt at its timeout; so does the handler.
		var stop context.CancelFunc
		ctx, stop = context.WithTimeoutCause(ctx, d, fmt.Errorf("job %s: attempt timed out after %s", job.ID, d))
		defer stop()
	}
	ctx = domain.WithAttemptReporter(ctx, a)
	a.mu.Lock()
	a.timer = time.AfterFunc(w.opts.Lease/3, a.beat)
	a.mu.Unlock()

	err := a.execute(ctx, h)

	a.mu.Lock()
	a.done = true
	a.timer.Stop()
	result, resultErr := a.result, a.resultErr
	a.mu.Unlock()
	if a.lost.Load() {
		w.log.Info("worker: lease lost; the attempt's outcome is not reported", slog.String("job", job.ID.String()))
		return Outcome{}, false
	}
	o := Outcome{ID: job.ID, LeaseToken: job.LeaseToken}
	switch {
	case err == nil && resultErr == nil:
		o.Result = result
	case err == nil:
		o.Failure = &Failure{Error: resultErr.Error()}
	default:
		o.Failure = &Failure{Error: err.Error(), Permanent: domain.IsPermanent(err)}
		if d, ok := domain.RetryDelay(err); ok {
			o.Failure.RetryIn = d
		}
		if o.Failure.Error == "" {
			o.Failure.Error = "handler failed"
		}
	}
	return o, true
}

// execute runs the handler, turning a panic into an error.
func (a *attempt) execute(ctx context.Context, h domain.Handler) (err error) {
	defer func() {
		if r := recover(); r != nil {
			a.w.log.Error("worker: handler panicked", slog.String("job", a.job.ID.String()), slog.Any("panic", r),
				slog.String("stack", string(debug.Stack())))
			err = fmt.Errorf("job %s: handler panicked: %v", a.job.ID, r)
		}
	}()
	payload := []byte(a.job.Payload)
	if a.job.PayloadEncoding == "base64" {
		var text string
		if err := json.Unmarshal(a.job.Payload, &text); err != nil {
			return domain.Permanent(fmt.Errorf("job %s: payload: %w", a.job.ID, err))
		}
		if payload, err = base64.StdEncoding.DecodeString(text); err != nil {
			return domain.Permanent(fmt.Errorf("job %s: payload: %w", a.job.ID, err))
		}
	}
	return h.Execute(ctx, payload)
}

// SetResult implements domain.AttemptReporter.
func (a *attempt) SetResult(v any) error {
	b, err := json.Marshal(v)
	if err == nil && len(b) > a.w.opts.MaxResultBytes {
		err = domain.ResultTooLarge(len(b), a.w.opts.MaxResultBytes)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		a.result, a.resultErr = nil, fmt.Errorf("job %s: result: %w", a.job.ID, err)
		return a.resultErr
	}
	a.result, a.resultErr = b, nil
	return nil
}

// ReportProgress implements domain.AttemptReporter: the latest report
// rides on the next heartbeat, which comes at most a second after the
// previous one while reports keep coming.
func (a *attempt) ReportProgress(percent float64, message string) {
	p := domain.NewProgress(percent, message, time.Time{})
	a.mu.Lock()
	defer a.mu.Unlock()
	a.progress, a.dirty = ProgressReport{Percent: p.Percent, Message: p.Message}, true
	if a.done || a.beating || a.kicked || a.timer == nil {
		return
	}
	a.kicked = true
	a.timer.Reset(max(time.Until(a.lastBeat.Add(workerProgressEvery)), 0))
}

// beat sends one heartbeat and schedules the next.
func (a *attempt) beat() {
	a.mu.Lock()
	if a.done || a.beating {
		a.mu.Unlock()
		return
	}
	var progress *ProgressReport
	if a.dirty {
		p := a.progress
		progress, a.dirty = &p, false
	}
	a.beating, a.kicked = true, false
	a.mu.Unlock()

	interval := a.w.opts.Lease / 3
	ctx, cancel := context.WithTimeout(context.Background(), interval)
	st, err := a.w.c.Heartbeat(ctx, a.job.ID, a.job.LeaseToken, progress)
	cancel()
	now := time.Now()
	next := interval
	switch {
	case err == nil:
		if st.CancelRequested {
			a.cancel(fmt.Errorf("job %s: %w", a.job.ID, ErrCanceled))
		}
	case IsLeaseLost(err) || IsNotFound(err):
		a.lost.Store(true)
		a.cancel(fmt.Errorf("job %s: %w", a.job.ID, domain.ErrLeaseLost))
	default:
		a.w.log.Warn("worker: heartbeat failed", slog.String("job", a.job.ID.String()), slog.Any("error", err))
		next = workerHeartbeatRetryWait
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	a.beating = false
	switch {
	case err == nil:
		a.lastBeat, a.expires = now, st.LeaseExpiresAt
	case progress != nil && !a.dirty:
		a.progress, a.dirty = *progress, true
	}
	if err != nil && !a.lost.Load() && now.After(a.expires) {
		// Unheard past the lease: the server has handed the job on.
		a.lost.Store(true)
		a.cancel(fmt.Errorf("job %s: %w", a.job.ID, domain.ErrLeaseLost))
	}
	if !a.done && !a.lost.Load() {
		if a.dirty {
			next = min(next, max(time.Until(a.lastBeat.Add(workerProgressEvery)), 0))
			a.kicked = true
		}
		a.timer.Reset(next)
	}
}

// report sends the outcomes that come in, in batches of up to Batch,
// each after at most FlushInterval, until in is closed and all are sent.
func (w *Worker) report(in <-chan Outcome) {
	var (
		buf      = make([]Outcome, 0, w.opts.Batch)
		inflight = make(chan struct{}, workerReportsInFlight)
		sending  sync.WaitGroup
		flush    = time.NewTimer(time.Hour)
	)
	flush.Stop()
	send := func() {
		if len(buf) == 0 {
			return
		}
		batch := buf
		buf = make([]Outcome, 0, w.opts.Batch)
		flush.Stop()
		inflight <- struct{}{}
		sending.Go(func() {
			defer func() { <-inflight }()
			w.sendOutcomes(batch)
		})
	}
	for {
		select {
		case o, ok := <-in:
			if !ok {
				send()
				sending.Wait()
				return
			}
			buf = append(buf, o)
			if len(buf) == 1 {
				flush.Reset(w.opts.FlushInterval)
			}
			if len(buf) >= w.opts.Batch {
				send()
			}
		case <-flush.C:
			send()
		}
	}
}

// sendOutcomes reports one batch, retrying while the server is out of
// reach: a repeated outcome that was applied the first time is refused
// as lease-lost, which changes nothing.
func (w *Worker) sendOutcomes(batch []Outcome) {
	var (
		results []OutcomeResult
		err     error
	)
	wait := 100 * time.Millisecond
	for try := 1; ; try++ {
		ctx, cancel := context.WithTimeout(context.Background(), workerReportTimeout)
		results, err = w.c.ReportOutcomes(ctx, batch)
		cancel()
		var p *Problem
		if err == nil || try >= workerReportTries || errors.As(err, &p) && p.Status < 500 {
			break
		}
		time.Sleep(wait)
		wait *= 2
	}
	if err == nil && len(results) != len(batch) {
		err = fmt.Errorf("client: Worker: %d outcomes reported, %d answered", len(batch), len(results))
	}
	if err != nil {
		w.log.Error("worker: outcomes not reported; their leases will lapse", slog.Int("outcomes", len(batch)), slog.Any("error", err))
		for _, o := range batch {
			w.reported(o.ID, "", err)
		}
		return
	}
	for i, r := range results {
		rerr := r.Err()
		if rerr != nil && IsResultTooLarge(rerr) && batch[i].Failure == nil {
			// The attempt goes on: end it as the failure it is.
			ctx, cancel := context.WithTimeout(context.Background(), workerReportTimeout)
			job, ferr := w.c.Fail(ctx, batch[i].ID, batch[i].LeaseToken, Failure{Error: rerr.Error()})
			cancel()
			if ferr == nil {
				w.reported(job.ID, job.Status, nil)
				continue
			}
			rerr = ferr
		}
		if rerr != nil {
			w.log.Warn("worker: outcome not applied", slog.String("job", batch[i].ID.String()), slog.Any("error", rerr))
		}
		w.reported(batch[i].ID, r.Status, rerr)
	}
}

func (w *Worker) reported(id uuid.UUID, status domain.Status, err error) {
	if w.opts.OnReported != nil {
		w.opts.OnReported(id, status, err)
	}
}
