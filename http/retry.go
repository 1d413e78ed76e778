package http

import (
	"errors"
	"fmt"
	nethttp "net/http"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/troupe-go/troupe/actors"
	"github.com/troupe-go/troupe/domain"
)

// registerRetryRoutes adds POST /jobs/{id}/retry to r.
func (s *Server) registerRetryRoutes(r gin.IRoutes) {
	r.POST("/jobs/:id/retry", s.handleJobRetry)
}

// RetryResponse is the body of POST /jobs/{id}/retry: the new job, and the
// job it copies. A job records no such link, so this answer is the only
// place that states it.
type RetryResponse struct {
	JobResponse
	// RetryOf is the ID of the job that was copied.
	RetryOf uuid.UUID `json:"retryOf"`
}

// retryable reports whether a job in status st may be run again by a copy.
// Failed and canceled jobs are what operators re-run; a pending or running
// job is still on its way, and a completed one has done its work, so a
// copy of either is more likely a mistake (a double click) than a wish.
func retryable(st domain.Status) bool {
	return st == domain.StatusFailed || st == domain.StatusCanceled
}

// handleJobRetry handles POST /jobs/{id}/retry: it submits a new job with
// the type, payload and maxAttempts of a failed or canceled one, and
// answers 201 with it. The original is left as it is.
func (s *Server) handleJobRetry(c *gin.Context) {
	id, err := parseJobID(c.Param("id"))
	if err != nil {
		s.writeError(c, err)
		return
	}
	ctx := c.Request.Context()
	orig, err := s.svc.Get(ctx, id)
	if err != nil {
		s.writeError(c, err)
		return
	}
	// No race with the check: failed and canceled are terminal.
	if !retryable(orig.Status) {
		s.writeError(c, &requestError{
			kind:   kindConflict,
			detail: fmt.Sprintf("job %s is %s: only failed or canceled jobs can be retried", id, orig.Status),
			cause:  domain.ErrInvalidTransition,
		})
		return
	}
	// The copy waits in the original's queue at its priority, with its
	// timeout and its key (the same customer's work, under the same
	// per-key flow settings), and runs at once; it takes no unique key,
	// which the original may still hold.
	timeout := orig.Timeout
	if timeout == 0 {
		timeout = actors.NoTimeout
	}
	job, err := s.svc.Submit(ctx, actors.SubmitParams{
		Type:        orig.Type,
		Payload:     orig.Payload,
		MaxAttempts: orig.MaxAttempts,
		Queue:       orig.Queue,
		Priority:    orig.Priority,
		Timeout:     timeout,
		Key:         orig.Key,
	})
	if errors.Is(err, domain.ErrUnknownJobType) {
		err = unknownJobType(string(orig.Type), s.svc.JobTypes(), err)
	}
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.Header("Location", "/jobs/"+job.ID.String())
	writeJSON(c, nethttp.StatusCreated, RetryResponse{JobResponse: newJobResponse(job), RetryOf: orig.ID})
}
