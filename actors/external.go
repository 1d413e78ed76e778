package actors

import (
	"context"
	"encoding/json"
	"errors"
	"time"

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

var errExternalNotBuilt = errors.New("external workers: not implemented yet")

// RegisterExternal declares typ as run by external workers, as
// Config.ExternalTypes does.
func (s *System) RegisterExternal(typ domain.JobType) error {
	return errExternalNotBuilt
}

// JobTypeInfo lists every job type jobs may be submitted with, and what
// runs it, sorted by type.
func (s *System) JobTypeInfo() []JobTypeInfo { return nil }

// ClaimJobs hands an external worker up to p.Max ready jobs of its types,
// in the order Go workers would take them (queues in turn, then priority,
// RunAt, submission), skipping paused queues and honouring this node's
// queue caps. With none ready it waits up to p.Wait (or until ctx ends)
// and returns an empty slice, not an error. A field out of bounds or a
// type not declared external gives an error wrapping domain.ErrInvalid
// that names the field (*FieldError).
func (s *System) ClaimJobs(ctx context.Context, p ClaimParams) ([]ClaimedJob, error) {
	return nil, errExternalNotBuilt
}

// Heartbeat extends the lease of a job claimed with token by the claim's
// lease, records progress when not nil (coalesced like ReportProgress),
// and says whether the job was canceled. A token that does not hold the
// job's running attempt (wrong, expired, or the attempt ended) gives an
// error wrapping domain.ErrLeaseLost; an unknown job domain.ErrNotFound.
func (s *System) Heartbeat(ctx context.Context, id uuid.UUID, token string, progress *domain.Progress) (LeaseState, error) {
	return LeaseState{}, errExternalNotBuilt
}

// CompleteJob ends the attempt held by token as a success with result
// (JSON, nil for none; over MaxResultBytes gives an error wrapping
// domain.ErrResultTooLarge and changes nothing) and returns the job as
// stored. Errors as Heartbeat's.
func (s *System) CompleteJob(ctx context.Context, id uuid.UUID, token string, result json.RawMessage) (*domain.Job, error) {
	return nil, errExternalNotBuilt
}

// FailJob ends the attempt held by token as a failure: the job retries
// (after p.RetryIn, or the backoff) while attempts remain and p is not
// permanent, fails otherwise, and is canceled if a user canceled it. It
// returns the job as stored. Errors as Heartbeat's.
func (s *System) FailJob(ctx context.Context, id uuid.UUID, token string, p FailParams) (*domain.Job, error) {
	return nil, errExternalNotBuilt
}

// ReportOutcomes applies several outcomes, each as CompleteJob or FailJob
// would, and returns what became of each, in order; the store writes them
// together where it can. An error is returned only when none could be
// tried (the system is not running).
func (s *System) ReportOutcomes(ctx context.Context, outcomes []Outcome) ([]OutcomeResult, error) {
	return nil, errExternalNotBuilt
}

// FieldError is an input error that names the field it is about, for the
// HTTP API's problem details; errors.Is sees the wrapped error.
type FieldError = ScheduleFieldError

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
