package http

import (
	"errors"
	nethttp "net/http"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/troupe-go/troupe/domain"
)

// registerJobRoutes adds the /jobs resource to r.
func (s *Server) registerJobRoutes(r gin.IRoutes) {
	r.POST("/jobs", s.acceptJSONBody, s.idempotent, s.handleJobSubmit)
	r.POST(batchPath, s.acceptJSONBody, s.idempotent, s.handleJobSubmitBatch)
	r.GET("/jobs", s.handleJobList)
	r.GET("/jobs/:id", s.handleJobView)
	r.DELETE("/jobs/:id", s.handleJobCancel)
}

// handleJobSubmit handles POST /jobs: 201 with the new job and its
// Location, or 200 with the job that holds the submission's unique key.
func (s *Server) handleJobSubmit(c *gin.Context) {
	var req SubmitRequest
	if err := s.bindJob(c, &req); err != nil {
		s.writeError(c, err)
		return
	}
	status := nethttp.StatusCreated
	job, err := s.svc.Submit(c.Request.Context(), req.params())
	switch {
	case errors.Is(err, domain.ErrDuplicate) && job != nil:
		// Nothing was created: the answer is the job that exists.
		status, err = nethttp.StatusOK, nil
	case errors.Is(err, domain.ErrUnknownJobType):
		err = unknownJobType(req.Type, s.svc.JobTypes(), err)
	}
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.Header("Location", "/jobs/"+job.ID.String())
	writeJSON(c, status, newJobResponse(job))
}

// bindJob reads and checks the body of POST /jobs, as strictly as each job
// of a batch (decodeJob).
func (s *Server) bindJob(c *gin.Context, req *SubmitRequest) error {
	data, err := readBody(c.Request.Body)
	if err != nil {
		return decodeError(err)
	}
	return s.decodeJob(data, req)
}

// handleJobList handles GET /jobs: one page of jobs, oldest first.
func (s *Server) handleJobList(c *gin.Context) {
	var q listQuery
	if err := c.ShouldBindWith(&q, s.queryBinding); err != nil {
		s.writeError(c, err)
		return
	}
	if err := q.check(); err != nil {
		s.writeError(c, err)
		return
	}
	page, err := s.svc.List(c.Request.Context(), q.filter())
	if err != nil {
		s.writeError(c, err)
		return
	}
	writeJSON(c, nethttp.StatusOK, newListResponse(page, q.Limit, q.Offset))
}

// handleJobView handles GET /jobs/{id}.
func (s *Server) handleJobView(c *gin.Context) {
	id, err := parseJobID(c.Param("id"))
	if err != nil {
		s.writeError(c, err)
		return
	}
	job, err := s.svc.Get(c.Request.Context(), id)
	if err != nil {
		s.writeError(c, err)
		return
	}
	writeJSON(c, nethttp.StatusOK, newJobResponse(job))
}

// handleJobCancel handles DELETE /jobs/{id}: 200 with the job, which may
// still be running while its handler winds down.
func (s *Server) handleJobCancel(c *gin.Context) {
	id, err := parseJobID(c.Param("id"))
	if err != nil {
		s.writeError(c, err)
		return
	}
	job, err := s.svc.Cancel(c.Request.Context(), id)
	if err != nil {
		s.writeError(c, err)
		return
	}
	writeJSON(c, nethttp.StatusOK, newJobResponse(job))
}

// parseJobID reads a job ID from the path; a malformed one is the
// client's mistake, found before any call.
func parseJobID(raw string) (uuid.UUID, error) {
	id, err := uuid.Parse(raw)
	if err != nil {
		return uuid.Nil, invalidRequest("job ID %q is not a UUID", raw)
	}
	return id, nil
}
