package actors

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/troupe-go/troupe/domain"
)

// RunBy says what runs a job type's jobs.
type RunBy string

// The runners of a job type.
const (
	// RunByGo: a Go handler registered in this process.
	RunByGo RunBy = "go"
	// RunByExternal: external workers, through the worker protocol
	// (ClaimJobs, Heartbeat, CompleteJob, FailJob).
	RunByExternal RunBy = "external"
	// RunByWebhook: a Go handler that calls an HTTP endpoint (package
	// webhook); it runs like any Go handler.
	RunByWebhook RunBy = "webhook"
)

// WithRunBy says what a registered handler stands for, for JobTypeInfo:
// RunByGo unless told (the webhook package says RunByWebhook).
func WithRunBy(r RunBy) RegisterOption {
	return func(o *typeOptions) { o.runBy = r }
}

// JobTypeInfo describes one job type that jobs may be submitted with.
type JobTypeInfo struct {
	Type  domain.JobType
	RunBy RunBy
}

// The bounds of the worker protocol.
const (
	// MaxClaim bounds ClaimParams.Max.
	MaxClaim = 100
	// MaxClaimWait bounds ClaimParams.Wait.
	MaxClaimWait = 60 * time.Second
	// MinLease and MaxLease bound ClaimParams.Lease.
	MinLease = 5 * time.Second
	MaxLease = 10 * time.Minute
	// LeaseDefault is the lease of a claim that names none.
	LeaseDefault = 30 * time.Second
	// MaxWorkerNameBytes bounds ClaimParams.Worker.
	MaxWorkerNameBytes = 255
	// MaxErrorBytes bounds the error an external worker reports; a longer
	// one is cut.
	MaxErrorBytes = 4096
)

// ClaimParams is an external worker's request for jobs.
type ClaimParams struct {
	// Types are the job types the worker runs; each must be declared
	// external (Config.ExternalTypes). At least one.
	Types []domain.JobType
	// Queues, when given, restricts the claim to those queues.
	Queues []string
	// Max is how many jobs to claim at most, 1 to MaxClaim; 0 means 1.
	Max int
	// Wait is how long to wait for a job when none is ready, 0 to
	// MaxClaimWait; the claim returns as soon as it has at least one.
	Wait time.Duration
	// Worker names the worker, for the log; at most MaxWorkerNameBytes.
	Worker string
	// Lease is how long the worker owns each job without a heartbeat,
	// MinLease to MaxLease; 0 means LeaseDefault. Each heartbeat extends
	// it by as much again.
	Lease time.Duration
}

// ClaimedJob is a job an external worker claimed: running, its attempt
// counted (Job.Attempts), and leased to whoever holds LeaseToken.
type ClaimedJob struct {
	Job            *domain.Job
	LeaseToken     string
	LeaseExpiresAt time.Time
}

// LeaseState is what a heartbeat answers: when the lease now ends, and
// whether a user canceled the job (the worker should stop and report).
type LeaseState = domain.LeaseState

// FailParams is an external worker's report of a failed attempt.
type FailParams struct {
	// Error says what went wrong; required, cut at MaxErrorBytes.
	Error string
	// Permanent fails the job at once, whatever attempts remain.
	Permanent bool
	// RetryIn, when positive, is the wait before the next attempt instead
	// of the backoff (at most MaxDelay).
	RetryIn time.Duration
}

// Outcome is one attempt's end reported by an external worker, for
// ReportOutcomes: completed with Result when Failure is nil.
type Outcome struct {
	JobID      uuid.UUID
	LeaseToken string
	Result     json.RawMessage
	Failure    *FailParams
}

// OutcomeResult is what became of one Outcome: the job as stored after
// it, or the error that kept it from being applied.
type OutcomeResult struct {
	Job *domain.Job
	Err error
}

// RegisterExternal declares typ as run by external workers, as
// Config.ExternalTypes does. A type has one runner: declaring a type that
// has a Go handler, or declaring it twice, gives ErrDuplicateHandler.
func (s *System) RegisterExternal(typ domain.JobType) error {
	return s.core.registry.registerExternal(typ)
}

// JobTypeInfo lists every job type jobs may be submitted with, and what
// runs it, sorted by type.
func (s *System) JobTypeInfo() []JobTypeInfo { return s.core.registry.info() }

// claimSpec is a validated claim: what the job source serves.
type claimSpec struct {
	types  []domain.JobType
	queues []string
	max    int
	wait   time.Duration
	worker string
	lease  time.Duration
	// token is the claim's lease token; every job of the claim shares it.
	token string
}

// allowsQueue reports whether the claim takes jobs of the named queue.
func (c *claimSpec) allowsQueue(name string) bool {
	return len(c.queues) == 0 || slices.Contains(c.queues, name)
}

// maxClaimFilter bounds ClaimParams.Types and ClaimParams.Queues.
const maxClaimFilter = 100

func (s *System) claimSpec(p ClaimParams) (*claimSpec, error) {
	if len(p.Types) == 0 || len(p.Types) > maxClaimFilter {
		return nil, invalidField("types", "name 1 to %d job types, got %d", maxClaimFilter, len(p.Types))
	}
	reg := s.core.registry
	for _, t := range p.Types {
		if !reg.isExternal(t) {
			names := make([]string, 0)
			for _, e := range reg.externalTypes() {
				names = append(names, string(e))
			}
			return nil, invalidField("types", "%q is not run by external workers (external types: %s)", t, strings.Join(names, ", "))
		}
	}
	if len(p.Queues) > maxClaimFilter {
		return nil, invalidField("queues", "name at most %d queues, got %d", maxClaimFilter, len(p.Queues))
	}
	for _, q := range p.Queues {
		if err := domain.ValidateQueueName(q); err != nil {
			return nil, &FieldError{Field: "queues", Err: err}
		}
	}
	if p.Max < 0 || p.Max > MaxClaim {
		return nil, invalidField("max", "must be between 1 and %d, got %d", MaxClaim, p.Max)
	}
	if p.Wait < 0 || p.Wait > MaxClaimWait {
		return nil, invalidField("wait", "must be between 0s and %s, got %s", MaxClaimWait, p.Wait)
	}
	if len(p.Worker) > MaxWorkerNameBytes {
		return nil, invalidField("worker", "must be at most %d bytes, got %d", MaxWorkerNameBytes, len(p.Worker))
	}
	lease := cmp.Or(p.Lease, LeaseDefault)
	if lease < MinLease || lease > MaxLease {
		return nil, invalidField("lease", "must be between %s and %s, got %s", MinLease, MaxLease, p.Lease)
	}
	return &claimSpec{
		types: slices.Clone(p.Types), queues: slices.Clone(p.Queues), max: max(p.Max, 1),
		wait: p.Wait, worker: p.Worker, lease: lease, token: newLeaseToken(lease),
	}, nil
}

// newLeaseToken returns a fresh lease token: 128 random bits, URL-safe,
// followed by the lease in milliseconds, so that any node of a shared
// store can extend the lease by as much (a tampered lease part makes
// another owner name, which owns nothing).
func newLeaseToken(lease time.Duration) string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b[:]) + "." + strconv.FormatInt(lease.Milliseconds(), 10)
}

// tokenLease returns the lease a token was issued with.
func tokenLease(token string) (time.Duration, bool) {
	i := strings.LastIndexByte(token, '.')
	if i < 0 {
		return 0, false
	}
	ms, err := strconv.ParseInt(token[i+1:], 10, 64)
	if err != nil {
		return 0, false
	}
	lease := time.Duration(ms) * time.Millisecond
	if lease < MinLease || lease > MaxLease {
		return 0, false
	}
	return lease, true
}

// running checks the System runs, for the worker protocol's calls.
func (s *System) running(op string) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.state != stateRunning {
		return fmt.Errorf("%s: %w", op, domain.ErrNotRunning)
	}
	return nil
}

// ClaimJobs hands an external worker up to p.Max ready jobs of its types,
// in the order Go workers would take them (queues in turn, then priority,
// RunAt, submission), skipping paused queues and honouring this node's
// queue caps. With none ready it waits up to p.Wait (or until ctx ends)
// and returns an empty slice, not an error. A field out of bounds or a
// type not declared external gives an error wrapping domain.ErrInvalid
// that names the field (*FieldError). Jobs taken for a caller whose ctx
// ended meanwhile are handed back at once, their attempt not counted, and
// the call returns ctx's error.
func (s *System) ClaimJobs(ctx context.Context, p ClaimParams) ([]ClaimedJob, error) {
	spec, err := s.claimSpec(p)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("claim jobs: %w", err)
	}
	// Sent under the lock, so that Stop's drain finds the claim and ends
	// its wait.
	s.mu.RLock()
	if s.state != stateRunning {
		s.mu.RUnlock()
		return nil, fmt.Errorf("claim jobs: %w", domain.ErrNotRunning)
	}
	pending := s.core.source.claimExternal(spec)
	s.mu.RUnlock()
	jobs, err := pending(ctx)
	if err != nil {
		return nil, err
	}
	if jobs == nil {
		jobs = []ClaimedJob{}
	}
	return jobs, nil
}

// Heartbeat extends the lease of a job claimed with token by the claim's
// lease, records progress when not nil (coalesced like ReportProgress),
// and says whether the job was canceled. A token that does not hold the
// job's running attempt (wrong, expired, or the attempt ended) gives an
// error wrapping domain.ErrLeaseLost; an unknown job domain.ErrNotFound.
func (s *System) Heartbeat(ctx context.Context, id uuid.UUID, token string, progress *domain.Progress) (LeaseState, error) {
	if token == "" {
		return LeaseState{}, invalidField("leaseToken", "is required")
	}
	if err := s.running("heartbeat"); err != nil {
		return LeaseState{}, err
	}
	if progress != nil {
		p := domain.NewProgress(progress.Percent, progress.Message, s.core.clock.Now())
		progress = &p
	}
	return s.core.source.heartbeat(ctx, id, token, progress)
}

// CompleteJob ends the attempt held by token as a success with result
// (JSON, nil for none; over MaxResultBytes gives an error wrapping
// domain.ErrResultTooLarge and changes nothing) and returns the job as
// stored. Errors as Heartbeat's.
func (s *System) CompleteJob(ctx context.Context, id uuid.UUID, token string, result json.RawMessage) (*domain.Job, error) {
	rs, err := s.ReportOutcomes(ctx, []Outcome{{JobID: id, LeaseToken: token, Result: result}})
	if err != nil {
		return nil, err
	}
	return rs[0].Job, rs[0].Err
}

// FailJob ends the attempt held by token as a failure: the job retries
// (after p.RetryIn, or the backoff) while attempts remain and p is not
// permanent, fails otherwise, and is canceled if a user canceled it. It
// returns the job as stored. Errors as Heartbeat's.
func (s *System) FailJob(ctx context.Context, id uuid.UUID, token string, p FailParams) (*domain.Job, error) {
	rs, err := s.ReportOutcomes(ctx, []Outcome{{JobID: id, LeaseToken: token, Failure: &p}})
	if err != nil {
		return nil, err
	}
	return rs[0].Job, rs[0].Err
}

// ReportOutcomes applies several outcomes, each as CompleteJob or FailJob
// would, and returns what became of each, in order; the store writes them
// together where it can. An error is returned only when none could be
// tried (the system is not running).
func (s *System) ReportOutcomes(ctx context.Context, outcomes []Outcome) ([]OutcomeResult, error) {
	if err := s.running("report outcomes"); err != nil {
		return nil, err
	}
	results := make([]OutcomeResult, len(outcomes))
	ends := make([]*externalEnd, len(outcomes))
	for i, o := range outcomes {
		end, err := s.externalEnd(o)
		if err != nil {
			results[i].Err = err
			continue
		}
		ends[i] = end
	}
	s.core.source.reportOutcomes(ctx, ends, results)
	return results, nil
}

// externalEnd is a checked Outcome.
type externalEnd struct {
	id    uuid.UUID
	token string
	end   attemptEnd
}

func (s *System) externalEnd(o Outcome) (*externalEnd, error) {
	if o.LeaseToken == "" {
		return nil, fmt.Errorf("job %s: %w", o.JobID, invalidField("leaseToken", "is required"))
	}
	e := &externalEnd{id: o.JobID, token: o.LeaseToken}
	if o.Failure == nil {
		if n, limit := len(o.Result), s.core.cfg.MaxResultBytes; n > limit {
			return nil, fmt.Errorf("job %s: %w", o.JobID, domain.ResultTooLarge(n, limit))
		}
		if len(o.Result) > 0 {
			if !json.Valid(o.Result) {
				return nil, fmt.Errorf("job %s: %w", o.JobID, invalidField("result", "is not valid JSON"))
			}
			e.end.result = slices.Clone([]byte(o.Result))
		}
		return e, nil
	}
	f := o.Failure
	if f.Error == "" {
		return nil, fmt.Errorf("job %s: %w", o.JobID, invalidField("error", "is required"))
	}
	if f.RetryIn < 0 {
		return nil, fmt.Errorf("job %s: %w", o.JobID, invalidField("retryIn", "must not be negative, got %s", f.RetryIn))
	}
	msg := f.Error
	if len(msg) > MaxErrorBytes {
		cut := MaxErrorBytes
		for cut > 0 && !utf8.RuneStart(msg[cut]) {
			cut--
		}
		msg = msg[:cut]
	}
	err := errors.New(msg)
	switch {
	case f.Permanent:
		err = domain.Permanent(err)
	case f.RetryIn > 0:
		err = domain.RetryAfter(err, f.RetryIn)
	}
	e.end.err = err
	return e, nil
}

// SetResult records v as the result of the attempt whose handler got ctx:
// see domain.SetResult. A result over Config.MaxResultBytes fails the
// attempt, whatever the handler returns.
func SetResult(ctx context.Context, v any) error { return domain.SetResult(ctx, v) }

// ReportProgress records how far the attempt whose handler got ctx got:
// see domain.ReportProgress. Reports are coalesced, so that a handler may
// report as often as it likes: the job is written at most a few times a
// second.
func ReportProgress(ctx context.Context, percent float64, message string) {
	domain.ReportProgress(ctx, percent, message)
}
