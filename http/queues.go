package http

import (
	nethttp "net/http"

	"github.com/gin-gonic/gin"

	"github.com/troupe-go/troupe/actors"
	"github.com/troupe-go/troupe/domain"
)

// QueueResponse is one queue on the wire: an element of GET /queues and
// the answer of pausing or resuming it.
type QueueResponse struct {
	// Name is the queue's name.
	Name string `json:"name"`
	// Paused says the queue starts none of its jobs, on any node.
	Paused bool `json:"paused"`
	// Limit caps how many of its jobs run at once on the node that
	// answered; 0 means no cap but the worker pool.
	Limit int `json:"limit"`
	// Scheduled, Pending and Running count the queue's unfinished jobs.
	Scheduled int `json:"scheduled"`
	Pending   int `json:"pending"`
	Running   int `json:"running"`
}

// QueuesResponse is the body of GET /queues.
type QueuesResponse struct {
	// Queues lists the queues by name; empty, never null.
	Queues []QueueResponse `json:"queues"`
}

func newQueueResponse(q actors.QueueInfo) QueueResponse {
	return QueueResponse{
		Name: q.Name, Paused: q.Paused, Limit: q.Limit,
		Scheduled: q.Scheduled, Pending: q.Pending, Running: q.Running,
	}
}

func newQueueResponses(qs []actors.QueueInfo) []QueueResponse {
	out := make([]QueueResponse, len(qs))
	for i, q := range qs {
		out[i] = newQueueResponse(q)
	}
	return out
}

// registerQueueRoutes adds the /queues resource to r.
func (s *Server) registerQueueRoutes(r gin.IRoutes) {
	r.GET("/queues", s.handleQueues)
	r.POST("/queues/:name/pause", s.handleQueuePause(true))
	r.POST("/queues/:name/resume", s.handleQueuePause(false))
}

// handleQueues handles GET /queues.
func (s *Server) handleQueues(c *gin.Context) {
	qs, err := s.svc.Queues(c.Request.Context())
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	writeJSON(c, nethttp.StatusOK, QueuesResponse{Queues: newQueueResponses(qs)})
}

// handleQueuePause handles POST /queues/{name}/pause (pause true) and
// /resume: 200 with the queue. Both are idempotent; a queue need not hold
// jobs to be paused.
func (s *Server) handleQueuePause(pause bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		name := c.Param("name")
		if domain.ValidateQueueName(name) != nil {
			s.writeError(c, validationFailed(FieldError{Field: "name", Message: queueNameRule}))
			return
		}
		change := s.svc.ResumeQueue
		if pause {
			change = s.svc.PauseQueue
		}
		q, err := change(c.Request.Context(), name)
		if err != nil {
			s.writeError(c, err)
			return
		}
		writeJSON(c, nethttp.StatusOK, newQueueResponse(q))
	}
}
