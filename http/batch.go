package http

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
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
	// Jobs are the stored jobs, in the order they were submitted.
	Jobs []JobResponse `json:"jobs"`
}

// bodyLimit is the largest body the request's route accepts: a batch may
// carry a thousand payloads, so it has a limit of its own.
func (s *Server) bodyLimit(c *gin.Context) int64 {
	if c.FullPath() == batchPath {
		return s.cfg.BatchMaxBodyBytes
	}
	return s.cfg.MaxBodyBytes
}

// handleJobSubmitBatch handles POST /jobs/batch: 201 with the new jobs, in
// order. Every job is checked before anything is stored, and the runtime
// stores the batch all or none, so a 400 means none of it was stored; its
// errors name each bad job by index ("jobs[3].type").
func (s *Server) handleJobSubmitBatch(c *gin.Context) {
	reqs, err := s.bindBatch(c)
	if err != nil {
		s.writeError(c, err)
		return
	}
	registered := s.svc.JobTypes()
	if err := unregisteredTypes(reqs, registered); err != nil {
		s.writeError(c, err)
		return
	}
	params := make([]actors.SubmitParams, len(reqs))
	for i, r := range reqs {
		params[i] = r.params()
	}
	jobs, err := s.svc.SubmitBatch(c.Request.Context(), params)
	if err != nil {
		s.writeError(c, batchError(err, reqs, registered))
		return
	}
	out := BatchSubmitResponse{Jobs: make([]JobResponse, len(jobs))}
	for i, j := range jobs {
		out.Jobs[i] = newJobResponse(j)
	}
	writeJSON(c, nethttp.StatusCreated, out)
}

// bindBatch decodes and validates a batch. The jobs are decoded one by one
// from their raw JSON, so that every error, even an unknown member that
// encoding/json reports without a path, names the job's index. All the
// jobs' errors are reported at once.
func (s *Server) bindBatch(c *gin.Context) ([]SubmitRequest, error) {
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
	var fields []FieldError
	for i, msg := range raw.Jobs.jobs {
		prefix := fmt.Sprintf("jobs[%d]", i)
		if err := s.decodeBatchJob(msg, &reqs[i]); err != nil {
			var reqErr *requestError
			if !errors.As(err, &reqErr) {
				return nil, err
			}
			fields = append(fields, prefixFields(prefix, reqErr)...)
		}
	}
	if len(fields) > 0 {
		return nil, validationFailed(fields...)
	}
	return reqs, nil
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

// decodeBatchJob decodes one job of a batch as strictly as POST /jobs
// decodes its body, and validates it.
func (s *Server) decodeBatchJob(msg json.RawMessage, req *SubmitRequest) error {
	dec := json.NewDecoder(bytes.NewReader(msg))
	dec.DisallowUnknownFields()
	if err := dec.Decode(req); err != nil {
		return decodeError(err)
	}
	return validationError(s.bodyBinding.validate.Struct(req))
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

// unregisteredTypes returns a 400 naming every job of the batch whose type
// has no handler, or nil. Checking here, before the runtime, lists all of
// them rather than the first.
func unregisteredTypes(reqs []SubmitRequest, registered []domain.JobType) error {
	var fields []FieldError
	var details []string
	for i, r := range reqs {
		if !slices.Contains(registered, domain.JobType(r.Type)) {
			fields = append(fields, FieldError{Field: fmt.Sprintf("jobs[%d].type", i), Message: "is not a registered job type"})
			details = append(details, fmt.Sprintf("jobs[%d]: job type %q is not registered", i, r.Type))
		}
	}
	if len(fields) == 0 {
		return nil
	}
	return &requestError{
		kind:   kindUnknownJobType,
		detail: strings.Join(details, "; ") + "; registered types: " + typeNames(registered),
		fields: fields,
		cause:  domain.ErrUnknownJobType,
	}
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
