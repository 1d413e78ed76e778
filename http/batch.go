package http

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	nethttp "net/http"
	"reflect"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/troupe-go/troupe/actors"
	"github.com/troupe-go/troupe/domain"
)

// MaxBatchJobs bounds the jobs of one POST /jobs/batch. A thousand jobs
// spread a request and a store write over enough work to matter, while one
// batch still holds the runtime's submission path only briefly and its
// answer stays well under a megabyte for small payloads.
const MaxBatchJobs = 1000

// batchPath is the route of batch submission.
const batchPath = "/jobs/batch"

// BatchSubmitRequest is the body of POST /jobs/batch.
type BatchSubmitRequest struct {
	// Jobs are the jobs to submit, 1 to MaxBatchJobs, each shaped and
	// validated like the body of POST /jobs.
	Jobs []SubmitRequest `json:"jobs"`
}

// BatchSubmitResponse is the answer of POST /jobs/batch.
type BatchSubmitResponse struct {
	// Jobs are the jobs, in the order they were submitted: the new job, or
	// the existing one that holds the submission's unique key.
	Jobs []JobResponse `json:"jobs"`
	// Results say, position by position, whether the job of Jobs was
	// created by this request.
	Results []BatchResult `json:"results"`
}

// BatchResult is the outcome of one job of a batch.
type BatchResult struct {
	// Created is false when a job with the same unique key existed: then
	// nothing was stored for this position.
	Created bool `json:"created"`
}

// bodyLimit is the largest body the request's route accepts: a batch may
// carry a thousand payloads, so it has a limit of its own. GET, HEAD,
// DELETE and OPTIONS requests carry no content in this API, and their
// handlers never read a body: one sent anyway is ignored (net/http discards
// it after the answer), so it cannot be too large and they never answer 413.
func (s *Server) bodyLimit(c *gin.Context) int64 {
	switch c.Request.Method {
	case nethttp.MethodGet, nethttp.MethodHead, nethttp.MethodDelete, nethttp.MethodOptions:
		return math.MaxInt64
	}
	if p := c.FullPath(); p == batchPath || p == outcomesPath {
		return s.cfg.BatchMaxBodyBytes
	}
	return s.cfg.MaxBodyBytes
}

// handleJobSubmitBatch handles POST /jobs/batch: 201 with the jobs, in
// order, when it created any, and 200 when every one was a duplicate of a
// job that holds its unique key. Every job is checked before anything is stored, and the runtime
// stores the batch all or none, so a 400 means none of it was stored; its
// errors name each bad job by index ("jobs[3].type").
func (s *Server) handleJobSubmitBatch(c *gin.Context) {
	registered := s.svc.JobTypes()
	reqs, err := s.bindBatch(c, registered)
	if err != nil {
		s.writeError(c, err)
		return
	}
	params := make([]actors.SubmitParams, len(reqs))
	for i, r := range reqs {
		params[i] = r.params()
	}
	results, err := s.svc.SubmitBatch(c.Request.Context(), params)
	if err != nil {
		s.writeError(c, batchError(err, reqs, registered))
		return
	}
	out := BatchSubmitResponse{Jobs: make([]JobResponse, len(results)), Results: make([]BatchResult, len(results))}
	status := nethttp.StatusOK
	for i, r := range results {
		out.Jobs[i] = newJobResponse(r.Job)
		out.Results[i] = BatchResult{Created: r.Created}
		if r.Created {
			status = nethttp.StatusCreated
		}
	}
	writeJSON(c, status, out)
}

// bindBatch decodes and validates a batch. The jobs are decoded one by one
// from their raw JSON, so that every error, even an unknown member that
// encoding/json reports without a path, names the job's index. All the
// jobs' errors are reported at once, unregistered types among them, up to
// maxFieldErrors.
func (s *Server) bindBatch(c *gin.Context, registered []domain.JobType) ([]SubmitRequest, error) {
	var raw struct {
		Jobs boundedJobs `json:"jobs"`
	}
	if err := c.ShouldBindWith(&raw, s.bodyBinding); err != nil {
		if err.Error() == errEmptyBody().Error() {
			return nil, invalidRequest(`the request body is empty; send a JSON object such as {"jobs": [{"type": "noop"}]}`)
		}
		return nil, err
	}
	switch n := len(raw.Jobs.jobs); {
	case raw.Jobs.jobs == nil:
		return nil, validationFailed(FieldError{Field: "jobs", Message: "is required"})
	case n == 0:
		return nil, validationFailed(FieldError{Field: "jobs", Message: "must hold at least 1 job"})
	case raw.Jobs.tooMany:
		return nil, validationFailed(FieldError{Field: "jobs",
			Message: fmt.Sprintf("must hold at most %d jobs, got more", MaxBatchJobs)})
	}
	reqs := make([]SubmitRequest, len(raw.Jobs.jobs))
	var errs batchErrors
	for i, msg := range raw.Jobs.jobs {
		prefix := fmt.Sprintf("jobs[%d]", i)
		var jobFields []FieldError
		if err := s.decodeJob(msg, &reqs[i]); err != nil {
			var reqErr *requestError
			if !errors.As(err, &reqErr) {
				return nil, err
			}
			jobFields = prefixFields(prefix, reqErr)
			errs.add(jobFields, reqErr.kind == kindPayloadTooLarge)
		}
		// A type that decoded but has no handler is named too, unless the
		// type is wrong already.
		typ := reqs[i].Type
		if typ != "" && !slices.Contains(registered, domain.JobType(typ)) &&
			!slices.ContainsFunc(jobFields, func(f FieldError) bool { return f.Field == prefix+".type" }) {
			errs.addUnknownType(prefix, typ)
		}
	}
	if err := errs.err(registered); err != nil {
		return nil, err
	}
	return reqs, nil
}

// batchErrors collects the errors of a batch's jobs, keeping the first
// maxFieldErrors and counting the rest.
type batchErrors struct {
	fields  []FieldError
	omitted int
	// tooLarge: a payload is over the limit, so the answer is 413.
	tooLarge bool
	// unknownTypes describes each unregistered type; when nothing else is
	// wrong the answer is an unknown-job-type problem.
	unknownTypes []string
	otherErrors  bool
}

func (e *batchErrors) add(fields []FieldError, tooLarge bool) {
	e.tooLarge = e.tooLarge || tooLarge
	e.otherErrors = true
	for _, f := range fields {
		e.keep(f)
	}
}

func (e *batchErrors) addUnknownType(prefix, typ string) {
	if e.keep(FieldError{Field: prefix + ".type", Message: "is not a registered job type"}) {
		e.unknownTypes = append(e.unknownTypes, fmt.Sprintf("%s: job type %q is not registered", prefix, typ))
	}
}

// keep adds f if there is room, and reports whether it did.
func (e *batchErrors) keep(f FieldError) bool {
	if len(e.fields) == maxFieldErrors {
		e.omitted++
		return false
	}
	e.fields = append(e.fields, f)
	return true
}

// err is the answer for the errors collected, or nil if there are none.
func (e *batchErrors) err(registered []domain.JobType) error {
	if len(e.fields) == 0 {
		return nil
	}
	var detail []string
	var reqErr *requestError
	if e.otherErrors {
		reqErr = newValidationError(e.fields...)
		detail = append(detail, reqErr.detail)
		if e.tooLarge {
			reqErr.kind = kindPayloadTooLarge
		}
	} else {
		reqErr = &requestError{kind: kindUnknownJobType, fields: e.fields, cause: domain.ErrUnknownJobType}
		detail = append(detail, e.unknownTypes...)
	}
	if len(e.unknownTypes) > 0 {
		detail = append(detail, "registered types: "+typeNames(registered))
	}
	if e.omitted > 0 {
		detail = append(detail, fmt.Sprintf("%d more errors are left out of this answer, which lists the first %d", e.omitted, maxFieldErrors))
	}
	reqErr.detail = strings.Join(detail, "; ")
	return reqErr
}

// boundedJobs is the jobs array of a batch, decoded element by element and
// no further than one job past the limit: decoding a whole array of tiny
// elements first would cost an allocation each, hundreds of megabytes for a
// body within the size limit, only to refuse it.
type boundedJobs struct {
	jobs    []json.RawMessage
	tooMany bool
}

// UnmarshalJSON implements json.Unmarshaler.
func (b *boundedJobs) UnmarshalJSON(data []byte) error {
	if bytes.Equal(bytes.TrimSpace(data), []byte("null")) {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
		return &json.UnmarshalTypeError{Value: "non-array", Type: reflect.TypeFor[[]SubmitRequest]()}
	}
	b.jobs = []json.RawMessage{}
	for dec.More() {
		if len(b.jobs) == MaxBatchJobs {
			b.tooMany = true
			return nil
		}
		var job json.RawMessage
		if err := dec.Decode(&job); err != nil {
			return err
		}
		b.jobs = append(b.jobs, job)
	}
	return nil
}

// prefixFields places a job's errors under its index: its field errors get
// the prefix before their names, and an error about the job as a whole
// (not an object, say) becomes an error of the prefix itself.
func prefixFields(prefix string, err *requestError) []FieldError {
	if len(err.fields) == 0 {
		return []FieldError{{Field: prefix, Message: strings.TrimPrefix(err.detail, "the request body ")}}
	}
	out := make([]FieldError, len(err.fields))
	for i, f := range err.fields {
		out[i] = FieldError{Field: prefix + "." + f.Field, Message: f.Message}
	}
	return out
}

// batchError names the index of the job that the runtime refused, for the
// errors that are about one job (a type unregistered since the check, or
// input the runtime rejects); the rest pass unchanged to the error writer.
func batchError(err error, reqs []SubmitRequest, registered []domain.JobType) error {
	unknown := errors.Is(err, domain.ErrUnknownJobType)
	if !unknown && !errors.Is(err, domain.ErrInvalid) {
		return err
	}
	i, msg := 0, err.Error()
	var jobErr *actors.BatchJobError
	switch {
	case errors.As(err, &jobErr) && jobErr.Index < len(reqs):
		i, msg = jobErr.Index, jobErr.Err.Error()
	case len(reqs) > 1:
		return err
	}
	if errors.Is(err, domain.ErrPayloadTooLarge) {
		field := fmt.Sprintf("jobs[%d].payload", i)
		return &requestError{
			kind:   kindPayloadTooLarge,
			detail: fmt.Sprintf("%s: %s", field, msg),
			fields: []FieldError{{Field: field, Message: "is over the payload limit"}},
			cause:  err,
		}
	}
	if unknown {
		return &requestError{
			kind: kindUnknownJobType,
			detail: fmt.Sprintf("jobs[%d]: job type %q is not registered; registered types: %s",
				i, reqs[i].Type, typeNames(registered)),
			fields: []FieldError{{Field: fmt.Sprintf("jobs[%d].type", i), Message: "is not a registered job type"}},
			cause:  err,
		}
	}
	return &requestError{kind: kindInvalidRequest, detail: fmt.Sprintf("jobs[%d]: %s", i, msg), cause: err}
}
