package http

import (
	"errors"

	"github.com/gin-gonic/gin"
)

// headRouter registers every GET route for HEAD too, with the same
// handlers: RFC 9110 (section 9.3.2) asks that HEAD work wherever GET does
// and answer the same headers, and gin has no such fallback. The handlers
// need not know: net/http sends a HEAD answer's headers, Content-Length
// included, and drops its body. Register routes through it (newEngine
// does); TestHead walks the router to find a GET route that was not.
type headRouter struct {
	gin.IRouter
}

// GET registers handlers for GET and HEAD on path.
func (r headRouter) GET(path string, handlers ...gin.HandlerFunc) gin.IRoutes {
	r.IRouter.GET(path, handlers...)
	r.IRouter.HEAD(path, handlers...)
	return r
}

// errHeadOnly ends an event stream asked for with HEAD once its headers
// are sent: a stream has no end, and HEAD wants none of its body.
var errHeadOnly = errors.New("http: HEAD: headers only")
