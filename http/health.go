package http

import (
	"context"
	"log/slog"
	nethttp "net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/troupe-go/troupe/actors"
)

// healthTimeout bounds a health check, so that a hung store makes the probe
// fail rather than hang.
const healthTimeout = 5 * time.Second

// handleHealth handles GET /health: 200 when every part is up, 503 with
// Retry-After otherwise. It needs no token, so that probes need none; the
// reasons a part is down are shown only to callers that could use the API
// anyway, and only in Troupe's words (publicState): a driver's error names
// hosts and users, so it goes to the log under the request ID.
func (s *Server) handleHealth(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), healthTimeout)
	defer cancel()
	h := s.svc.Health(ctx)
	status := nethttp.StatusOK
	if !h.OK() {
		status = nethttp.StatusServiceUnavailable
		c.Header("Retry-After", unavailableRetryAfter)
		s.logPartsDown(c, h)
	}
	c.Header("Cache-Control", "no-store")
	writeJSON(c, status, newHealthResponse(h, s.authorized(c.Request)))
}

// logPartsDown logs, at warn, why each part that is down is down, with the
// request ID.
func (s *Server) logPartsDown(c *gin.Context, h actors.Health) {
	for _, part := range []struct {
		name string
		err  error
	}{{"dispatcher", h.Dispatcher}, {"store", h.Store}} {
		if part.err == nil {
			continue
		}
		s.logger.WarnContext(c.Request.Context(), "http: health: part down",
			slog.String("part", part.name),
			slog.String("requestID", requestID(c)),
			slog.Any("error", part.err))
	}
}
