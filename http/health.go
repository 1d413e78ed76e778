package http

import (
	"context"
	nethttp "net/http"
	"time"

	"github.com/gin-gonic/gin"
)

// healthTimeout bounds a health check, so that a hung store makes the probe
// fail rather than hang.
const healthTimeout = 5 * time.Second

// handleHealth handles GET /health: 200 when every part is up, 503
// otherwise. It needs no token, so that probes need none; the reasons a
// part is down are shown only to callers that could use the API anyway.
func (s *Server) handleHealth(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), healthTimeout)
	defer cancel()
	h := s.svc.Health(ctx)
	status := nethttp.StatusOK
	if !h.OK() {
		status = nethttp.StatusServiceUnavailable
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(status, newHealthResponse(h, s.authorized(c.Request)))
}
