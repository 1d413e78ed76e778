package http

import (
	"context"
	"errors"
	"log/slog"

	"github.com/gin-gonic/gin"
)

// StatusClientClosedRequest is the status logged and counted for a request
// whose client went away before it was answered. It is no HTTP status a
// client ever receives (none is listening); it keeps hang-ups apart from
// server faults in the access log and in troupe_http_requests_total, so
// that they trip no 5xx alert. Proxies use the same number for the same
// thing.
const StatusClientClosedRequest = 499

// clientGone reports whether the client of a request went away: net/http
// cancels the request's context when the connection closes (or the HTTP/2
// stream is reset), and nothing else cancels it while the handler runs.
func clientGone(ctx context.Context) bool {
	return errors.Is(ctx.Err(), context.Canceled)
}

// writeClientGone ends a request whose client went away with 499 and no
// body. An error that is the cancellation itself is logged at debug; any
// other internal error is still a fault of the server and is logged at
// error, even though no one is left to tell.
func (s *Server) writeClientGone(c *gin.Context, err error, internal bool) {
	ctx := c.Request.Context()
	level := slog.LevelDebug
	msg := "http: client went away"
	if internal && !errors.Is(err, context.Canceled) {
		level, msg = slog.LevelError, "http: internal error"
	}
	s.logger.Log(ctx, level, msg,
		slog.String("method", c.Request.Method),
		slog.String("path", c.Request.URL.Path),
		slog.String("requestID", requestID(c)),
		slog.Any("error", err))
	c.AbortWithStatus(StatusClientClosedRequest)
}
