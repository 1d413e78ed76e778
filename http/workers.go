package http

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	nethttp "net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/troupe-go/troupe/actors"
	"github.com/troupe-go/troupe/domain"
)

// The worker protocol: external workers, in any language, claim jobs of
// the types declared external, heartbeat while they run them, and report
// each attempt's outcome. The routes take API tokens and worker tokens
// (authenticateWorker); the runtime holds the leases.

// The routes of the worker protocol.
const (
	claimPath     = "/workers/claim"
	outcomesPath  = "/workers/outcomes"
	heartbeatPath = "/jobs/:id/heartbeat"
	completePath  = "/jobs/:id/complete"
	failPath      = "/jobs/:id/fail"
)

// workerRoute reports whether route (a gin route pattern) is one of the
// worker protocol's.
func workerRoute(route string) bool {
	switch route {
	case claimPath, outcomesPath, heartbeatPath, completePath, failPath:
		return true
	}
	return false
}

// Bounds of the worker protocol's inputs, beyond the runtime's.
const (
	// MaxClaimTypes bounds ClaimRequest.Types and Queues.
	MaxClaimTypes = 100
	// MaxOutcomes bounds OutcomesRequest.Outcomes.
	MaxOutcomes = 1000
	// MaxLeaseTokenBytes bounds a lease token; the runtime's are far
	// shorter.
	MaxLeaseTokenBytes = 512
	// MaxRetryIn bounds FailRequest.RetryIn.
	MaxRetryIn = 366 * 24 * time.Hour
)

// claimDeadlineMargin is the time a long-polling claim's answer gets to be
// written after its wait, on top of the server's usual write timeout.
const claimDeadlineMargin = 30 * time.Second

// workerMetrics counts what external workers do through this server.
type workerMetrics struct {
	claimed  prometheus.Counter
	outcomes *prometheus.CounterVec
}

// The values of the result label of troupe_worker_outcomes_total.
const (
	outcomeCompleted = "completed"
	outcomeRetry     = "retry"
	outcomeFailed    = "failed"
	outcomeCanceled  = "canceled"
	outcomeLeaseLost = "lease_lost"
	outcomeRejected  = "rejected"
)

func newWorkerMetrics(reg prometheus.Registerer) (*workerMetrics, error) {
	m := &workerMetrics{
		claimed: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "troupe",
			Name:      "worker_claimed_jobs_total",
			Help:      "Jobs handed to external workers by POST /workers/claim on this server.",
		}),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "troupe",
			Name:      "worker_outcomes_total",
			Help:      "Attempt outcomes reported by external workers on this server, by what became of the job (completed, retry, failed, canceled) or why it was not applied (lease_lost, rejected).",
		}, []string{"result"}),
	}
	for _, c := range []prometheus.Collector{m.claimed, m.outcomes} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("http: register worker metrics: %w", err)
		}
	}
	// Every result is exported from the start, so that a rate is 0, not absent.
	for _, r := range []string{outcomeCompleted, outcomeRetry, outcomeFailed, outcomeCanceled, outcomeLeaseLost, outcomeRejected} {
		m.outcomes.WithLabelValues(r)
	}
	return m, nil
}

// outcome counts one outcome: the job as stored after it, or the error.
func (m *workerMetrics) outcome(job *domain.Job, err error) {
	result := outcomeRejected
	switch {
	case errors.Is(err, domain.ErrLeaseLost):
		result = outcomeLeaseLost
	case err != nil || job == nil:
	case job.Status == domain.StatusCompleted:
		result = outcomeCompleted
	case job.Status == domain.StatusFailed:
		result = outcomeFailed
	case job.Status == domain.StatusCanceled:
		result = outcomeCanceled
	default:
		result = outcomeRetry
	}
	m.outcomes.WithLabelValues(result).Inc()
}

// registerWorkerRoutes adds the worker protocol to r, which must check
// API and worker tokens.
func (s *Server) registerWorkerRoutes(r gin.IRoutes) {
	r.POST(claimPath, s.acceptJSONBody, s.handleClaim)
	r.POST(outcomesPath, s.acceptJSONBody, s.handleOutcomes)
	r.POST(heartbeatPath, s.acceptJSONBody, s.handleHeartbeat)
	r.POST(completePath, s.acceptJSONBody, s.handleComplete)
	r.POST(failPath, s.acceptJSONBody, s.handleFail)
}

// ClaimRequest is the body of POST /workers/claim.
type ClaimRequest struct {
	// Types are the external job types the worker runs, 1 to 100.
	Types []string `json:"types" binding:"required,min=1,max=100,dive,required,max=128"`
	// Queues, when given, restricts the claim to those queues.
	Queues []string `json:"queues,omitempty" binding:"max=100"`
	// Max is how many jobs to claim at most, 1 to 100; absent means 1.
	Max *int `json:"max,omitempty" binding:"omitempty,min=1,max=100"`
	// Wait is how long to wait for a job when none is ready, a Go
	// duration from "0s" (the default) to "60s".
	Wait *string `json:"wait,omitempty"`
	// Worker names the worker in the server's log, at most 255 bytes.
	Worker string `json:"worker,omitempty"`
	// Lease is how long the worker owns each job without a heartbeat, a
	// Go duration from "5s" to "10m"; absent means "30s".
	Lease *string `json:"lease,omitempty"`
}

// params checks what the binding tags cannot say and turns the request
// into the runtime's input.
func (r ClaimRequest) params() (actors.ClaimParams, error) {
	var fields []FieldError
	bad := func(field, format string, args ...any) {
		fields = append(fields, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	p := actors.ClaimParams{Max: 1, Lease: actors.LeaseDefault, Worker: r.Worker}
	for _, t := range r.Types {
		p.Types = append(p.Types, domain.JobType(t))
	}
	for i, q := range r.Queues {
		if domain.ValidateQueueName(q) != nil {
			bad(fmt.Sprintf("queues[%d]", i), "%s", queueNameRule)
		}
	}
	p.Queues = r.Queues
	if r.Max != nil {
		p.Max = *r.Max
	}
	if r.Wait != nil {
		p.Wait = parseBoundedDuration(*r.Wait, 0, actors.MaxClaimWait, "wait", bad)
	}
	if r.Lease != nil {
		p.Lease = parseBoundedDuration(*r.Lease, actors.MinLease, actors.MaxLease, "lease", bad)
	}
	if len(r.Worker) > actors.MaxWorkerNameBytes {
		bad("worker", "must be at most %d bytes", actors.MaxWorkerNameBytes)
	}
	if len(fields) > 0 {
		return p, validationFailed(fields...)
	}
	return p, nil
}

// parseBoundedDuration parses a Go duration from lo to hi, or reports
// the field through bad.
func parseBoundedDuration(raw string, lo, hi time.Duration, field string, bad func(field, format string, args ...any)) time.Duration {
	d, err := time.ParseDuration(raw)
	switch {
	case err != nil:
		bad(field, "must be a Go duration such as %q", hi.String())
	case d < lo || d > hi:
		bad(field, "must be from %s to %s", lo, hi)
	}
	return d
}

// ClaimResponse is the body of POST /workers/claim.
type ClaimResponse struct {
	// Jobs are the claimed jobs; empty, never null, when none was ready.
	Jobs []ClaimedJobResponse `json:"jobs"`
}

// ClaimedJobResponse is a claimed job: the job as GET /jobs/{id} renders
// it, running, and its lease.
type ClaimedJobResponse struct {
	JobResponse
	// Attempt is the number of this attempt, from 1.
	Attempt int `json:"attempt"`
	// LeaseToken identifies the lease in the job's heartbeat and outcome.
	LeaseToken string `json:"leaseToken"`
	// LeaseExpiresAt is when the lease ends without a heartbeat.
	LeaseExpiresAt Timestamp `json:"leaseExpiresAt"`
}

// handleClaim handles POST /workers/claim. A claim may wait up to a
// minute for jobs, as long as the server's write timeout, so it moves its
// connection's deadlines past its wait. It ends early when the client
// hangs up (the runtime gets a context that ends then) or the server
// stops.
func (s *Server) handleClaim(c *gin.Context) {
	var req ClaimRequest
	if err := c.ShouldBindWith(&req, s.bodyBinding); err != nil {
		s.writeError(c, emptyBodyExample(err, `{"types": ["resize_image"]}`))
		return
	}
	p, err := req.params()
	if err != nil {
		s.writeError(c, err)
		return
	}
	if p.Wait > 0 {
		// Without this the read deadline (ReadTimeout from the request's
		// start) would end the request's context, and the write deadline
		// cut the answer, of a claim that waited close to a minute. Not
		// every writer supports deadlines (httptest's recorder does not).
		rc := nethttp.NewResponseController(c.Writer)
		deadline := time.Now().Add(p.Wait + max(s.writeTimeout, claimDeadlineMargin))
		_ = rc.SetReadDeadline(deadline)
		_ = rc.SetWriteDeadline(deadline)
	}
	ctx, done := s.streamContext(c)
	defer done()
	claimed, err := s.svc.ClaimJobs(ctx, p)
	if err != nil {
		if c.Request.Context().Err() == nil && ctx.Err() != nil {
			// Not the client's hang-up: the server is stopping.
			err = fmt.Errorf("%w: the server is stopping (%w)", domain.ErrNotRunning, err)
		}
		s.writeError(c, fieldError(err))
		return
	}
	if len(claimed) > 0 && c.Request.Context().Err() != nil {
		s.logger.WarnContext(ctx, "http: jobs claimed for a worker that went away; their leases lapse unless the runtime handed them back",
			slog.Int("jobs", len(claimed)), slog.String("worker", p.Worker), slog.String("requestID", requestID(c)))
	}
	s.workers.claimed.Add(float64(len(claimed)))
	resp := ClaimResponse{Jobs: make([]ClaimedJobResponse, len(claimed))}
	for i, cj := range claimed {
		resp.Jobs[i] = ClaimedJobResponse{
			JobResponse:    newJobResponse(cj.Job),
			Attempt:        cj.Job.Attempts,
			LeaseToken:     cj.LeaseToken,
			LeaseExpiresAt: Timestamp{cj.LeaseExpiresAt},
		}
	}
	writeJSON(c, nethttp.StatusOK, resp)
}

// fieldError turns the runtime's refusal of an input field
// (*actors.FieldError wrapping domain.ErrInvalid) into a 400 naming it.
func fieldError(err error) error {
	var fe *actors.FieldError
	if !errors.Is(err, domain.ErrInvalid) || !errors.As(err, &fe) {
		return err
	}
	ve := newValidationError(FieldError{Field: fe.Field, Message: strings.TrimPrefix(fe.Err.Error(), domain.ErrInvalid.Error()+": ")})
	ve.cause = err
	return ve
}

// ProgressRequest is the progress of a heartbeat.
type ProgressRequest struct {
	// Percent is 0 to 100.
	Percent *float64 `json:"percent" binding:"required,min=0,max=100"`
	// Message says what the attempt is doing, at most 1,024 bytes.
	Message string `json:"message,omitempty"`
}

// HeartbeatRequest is the body of POST /jobs/{id}/heartbeat.
type HeartbeatRequest struct {
	LeaseToken string           `json:"leaseToken" binding:"required"`
	Progress   *ProgressRequest `json:"progress,omitempty"`
}

// HeartbeatResponse is the answer to a heartbeat.
type HeartbeatResponse struct {
	// LeaseExpiresAt is when the extended lease ends.
	LeaseExpiresAt Timestamp `json:"leaseExpiresAt"`
	// CancelRequested says that a user canceled the job: the worker should
	// stop and report (a failure then cancels the job).
	CancelRequested bool `json:"cancelRequested"`
}

// CompleteRequest is the body of POST /jobs/{id}/complete.
type CompleteRequest struct {
	LeaseToken string `json:"leaseToken" binding:"required"`
	// Result is any JSON value; absent or null means none.
	Result json.RawMessage `json:"result,omitempty"`
}

// FailRequest is the body of POST /jobs/{id}/fail.
type FailRequest struct {
	LeaseToken string `json:"leaseToken" binding:"required"`
	// Error says what went wrong; required.
	Error string `json:"error" binding:"required"`
	// Permanent fails the job whatever attempts remain.
	Permanent bool `json:"permanent,omitempty"`
	// RetryIn, a Go duration from "0s" to 366 days, is the wait before
	// the next attempt instead of the backoff.
	RetryIn *string `json:"retryIn,omitempty"`
}

// leaseTokenField checks a lease token's length (the binding tags count
// characters, not bytes).
func leaseTokenField(field, token string) *FieldError {
	if len(token) > MaxLeaseTokenBytes {
		return &FieldError{Field: field, Message: fmt.Sprintf("must be at most %d bytes", MaxLeaseTokenBytes)}
	}
	return nil
}

// resultField checks a result as sent, like a payload, and turns null
// into none.
func (s *Server) resultField(field string, result json.RawMessage) (json.RawMessage, *FieldError) {
	if len(result) == 0 || string(result) == "null" {
		return nil, nil
	}
	// The body limit bounds the size; the runtime's limit is its own (413).
	fe, _ := payloadError(field, result, s.cfg.BatchMaxBodyBytes)
	return result, fe
}

// retryIn parses a failure's retryIn.
func retryIn(field string, raw *string) (time.Duration, *FieldError) {
	if raw == nil {
		return 0, nil
	}
	var fe *FieldError
	d := parseBoundedDuration(*raw, 0, MaxRetryIn, field, func(field, format string, args ...any) {
		fe = &FieldError{Field: field, Message: fmt.Sprintf(format, args...)}
	})
	return d, fe
}

// bindWorkerBody reads a job route's ID and body; the caller checks more
// fields and passes them as extra.
func (s *Server) bindWorkerBody(c *gin.Context, req any) (uuid.UUID, error) {
	id, err := parseJobID(c.Param("id"))
	if err != nil {
		return uuid.Nil, err
	}
	if err := c.ShouldBindWith(req, s.bodyBinding); err != nil {
		return uuid.Nil, emptyBodyExample(err, `{"leaseToken": "<the claim's leaseToken>"}`)
	}
	return id, nil
}

// emptyBodyExample gives an empty body's error an example of this route's
// body instead of a submission's.
func emptyBodyExample(err error, example string) error {
	if err.Error() == errEmptyBody().Error() {
		return invalidRequest("the request body is empty; send a JSON object such as %s", example)
	}
	return err
}

// collect returns a validation error of the non-nil field errors, or nil.
func collect(fes ...*FieldError) error {
	var fields []FieldError
	for _, fe := range fes {
		if fe != nil {
			fields = append(fields, *fe)
		}
	}
	if len(fields) == 0 {
		return nil
	}
	return validationFailed(fields...)
}

// handleHeartbeat handles POST /jobs/{id}/heartbeat.
func (s *Server) handleHeartbeat(c *gin.Context) {
	var req HeartbeatRequest
	id, err := s.bindWorkerBody(c, &req)
	if err == nil {
		var msgErr *FieldError
		if req.Progress != nil && len(req.Progress.Message) > domain.MaxProgressMessageBytes {
			msgErr = &FieldError{Field: "progress.message", Message: fmt.Sprintf("must be at most %d bytes", domain.MaxProgressMessageBytes)}
		}
		err = collect(leaseTokenField("leaseToken", req.LeaseToken), msgErr)
	}
	if err != nil {
		s.writeError(c, err)
		return
	}
	var progress *domain.Progress
	if req.Progress != nil {
		p := domain.NewProgress(*req.Progress.Percent, req.Progress.Message, time.Now())
		progress = &p
	}
	state, err := s.svc.Heartbeat(c.Request.Context(), id, req.LeaseToken, progress)
	if err != nil {
		s.writeError(c, err)
		return
	}
	writeJSON(c, nethttp.StatusOK, HeartbeatResponse{LeaseExpiresAt: Timestamp{state.ExpiresAt}, CancelRequested: state.CancelRequested})
}

// handleComplete handles POST /jobs/{id}/complete: 200 with the job as
// stored after it.
func (s *Server) handleComplete(c *gin.Context) {
	var req CompleteRequest
	id, err := s.bindWorkerBody(c, &req)
	var result json.RawMessage
	if err == nil {
		var resErr *FieldError
		result, resErr = s.resultField("result", req.Result)
		err = collect(leaseTokenField("leaseToken", req.LeaseToken), resErr)
	}
	if err != nil {
		s.writeError(c, err)
		return
	}
	job, err := s.svc.CompleteJob(c.Request.Context(), id, req.LeaseToken, result)
	s.workers.outcome(job, err)
	if err != nil {
		s.writeError(c, err)
		return
	}
	writeJSON(c, nethttp.StatusOK, newJobResponse(job))
}

// handleFail handles POST /jobs/{id}/fail: 200 with the job as stored
// after it (scheduled or pending for a retry, failed, or canceled).
func (s *Server) handleFail(c *gin.Context) {
	var req FailRequest
	id, err := s.bindWorkerBody(c, &req)
	var wait time.Duration
	if err == nil {
		var waitErr *FieldError
		wait, waitErr = retryIn("retryIn", req.RetryIn)
		err = collect(leaseTokenField("leaseToken", req.LeaseToken), waitErr)
	}
	if err != nil {
		s.writeError(c, err)
		return
	}
	job, err := s.svc.FailJob(c.Request.Context(), id, req.LeaseToken,
		actors.FailParams{Error: req.Error, Permanent: req.Permanent, RetryIn: wait})
	s.workers.outcome(job, err)
	if err != nil {
		s.writeError(c, err)
		return
	}
	writeJSON(c, nethttp.StatusOK, newJobResponse(job))
}

// OutcomesRequest is the body of POST /workers/outcomes.
type OutcomesRequest struct {
	// Outcomes are 1 to 1,000 attempts' ends, each applied on its own.
	Outcomes []OutcomeRequest `json:"outcomes"`
}

// OutcomeRequest is one attempt's end: a completion (with an optional
// result) when Error is absent, a failure otherwise.
type OutcomeRequest struct {
	ID         string          `json:"id"`
	LeaseToken string          `json:"leaseToken"`
	Result     json.RawMessage `json:"result,omitempty"`
	Error      *string         `json:"error,omitempty"`
	Permanent  *bool           `json:"permanent,omitempty"`
	RetryIn    *string         `json:"retryIn,omitempty"`
}

// OutcomesResponse is the answer to POST /workers/outcomes: what became of
// each outcome, in order.
type OutcomesResponse struct {
	Outcomes []OutcomeResultResponse `json:"outcomes"`
}

// OutcomeResultResponse is what became of one outcome: the job's status
// after it, or the problem that kept it from being applied (lease-lost,
// not-found, result-too-large…).
type OutcomeResultResponse struct {
	ID      uuid.UUID     `json:"id"`
	Status  domain.Status `json:"status,omitempty"`
	Problem *Problem      `json:"problem,omitempty"`
}

// bindOutcomes decodes and checks every outcome, each as strictly as a
// top-level body, and turns them into the runtime's input, naming each bad
// field by index ("outcomes[3].id"). The array is decoded no further than
// one past the limit, as a batch of jobs is.
func (s *Server) bindOutcomes(c *gin.Context) ([]actors.Outcome, error) {
	var raw struct {
		Outcomes boundedJobs `json:"outcomes"`
	}
	if err := c.ShouldBindWith(&raw, s.bodyBinding); err != nil {
		return nil, emptyBodyExample(err, `{"outcomes": [{"id": "<job ID>", "leaseToken": "<its leaseToken>", "result": {}}]}`)
	}
	switch items := raw.Outcomes; {
	case items.jobs == nil:
		return nil, validationFailed(FieldError{Field: "outcomes", Message: "is required"})
	case len(items.jobs) == 0:
		return nil, validationFailed(FieldError{Field: "outcomes", Message: "must hold at least 1 outcome"})
	case items.tooMany || len(items.jobs) > MaxOutcomes:
		return nil, validationFailed(FieldError{Field: "outcomes", Message: fmt.Sprintf("must hold at most %d outcomes, got more", MaxOutcomes)})
	}
	var errs batchErrors
	out := make([]actors.Outcome, len(raw.Outcomes.jobs))
	for i, msg := range raw.Outcomes.jobs {
		prefix := fmt.Sprintf("outcomes[%d]", i)
		var o OutcomeRequest
		if err := decodeStrict(msg, &o); err != nil {
			var reqErr *requestError
			if !errors.As(err, &reqErr) {
				return nil, err
			}
			errs.add(prefixFields(prefix, reqErr), false)
			continue
		}
		var fields []FieldError
		bad := func(field, format string, args ...any) {
			fields = append(fields, FieldError{Field: prefix + "." + field, Message: fmt.Sprintf(format, args...)})
		}
		id, err := uuid.Parse(o.ID)
		switch {
		case o.ID == "":
			bad("id", "is required")
		case err != nil:
			bad("id", "must be a UUID")
		}
		switch {
		case o.LeaseToken == "":
			bad("leaseToken", "is required")
		case len(o.LeaseToken) > MaxLeaseTokenBytes:
			bad("leaseToken", "must be at most %d bytes", MaxLeaseTokenBytes)
		}
		out[i] = actors.Outcome{JobID: id, LeaseToken: o.LeaseToken}
		if o.Error == nil {
			if o.Permanent != nil || o.RetryIn != nil {
				bad("error", "is required with permanent or retryIn")
			}
			result, fe := s.resultField(prefix+".result", o.Result)
			if fe != nil {
				fields = append(fields, *fe)
			}
			out[i].Result = result
		} else {
			if *o.Error == "" {
				bad("error", "must not be empty")
			}
			if len(o.Result) > 0 {
				bad("result", "must be absent with error: an outcome is a completion or a failure")
			}
			wait, fe := retryIn(prefix+".retryIn", o.RetryIn)
			if fe != nil {
				fields = append(fields, *fe)
			}
			out[i].Failure = &actors.FailParams{Error: *o.Error, Permanent: o.Permanent != nil && *o.Permanent, RetryIn: wait}
		}
		if len(fields) > 0 {
			errs.add(fields, false)
		}
	}
	if err := errs.err(nil); err != nil {
		return nil, err
	}
	return out, nil
}

// handleOutcomes handles POST /workers/outcomes: 200 with what became of
// each outcome. One outcome's failure (a lost lease) does not stop the
// others.
func (s *Server) handleOutcomes(c *gin.Context) {
	outcomes, err := s.bindOutcomes(c)
	if err != nil {
		s.writeError(c, err)
		return
	}
	results, err := s.svc.ReportOutcomes(c.Request.Context(), outcomes)
	if err == nil && len(results) != len(outcomes) {
		err = fmt.Errorf("report outcomes: %d results for %d outcomes", len(results), len(outcomes))
	}
	if err != nil {
		s.writeError(c, err)
		return
	}
	resp := OutcomesResponse{Outcomes: make([]OutcomeResultResponse, len(results))}
	for i, r := range results {
		s.workers.outcome(r.Job, r.Err)
		item := OutcomeResultResponse{ID: outcomes[i].JobID}
		switch {
		case r.Err != nil:
			p := s.itemProblem(c, outcomes[i].JobID, r.Err)
			item.Problem = &p
		case r.Job == nil:
			p := s.itemProblem(c, outcomes[i].JobID, errors.New("report outcomes: no job and no error"))
			item.Problem = &p
		default:
			item.Status = r.Job.Status
		}
		resp.Outcomes[i] = item
	}
	writeJSON(c, nethttp.StatusOK, resp)
}

// itemProblem is the problem of one item of a batch answer: as writeError
// would answer it, internal errors logged and hidden.
func (s *Server) itemProblem(c *gin.Context, id uuid.UUID, err error) Problem {
	p, internal := problemFor(err)
	if internal || p.Status >= nethttp.StatusInternalServerError {
		s.logger.ErrorContext(c.Request.Context(), "http: outcome not applied",
			slog.String("job", id.String()),
			slog.String("requestID", requestID(c)),
			slog.Any("error", err))
		p.Detail = internalDetail(requestID(c))
	}
	return p
}
