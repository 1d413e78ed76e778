package http

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"log/slog"
	nethttp "net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
)

// HeaderRequestID carries the request ID, both ways.
const HeaderRequestID = "X-Request-ID"

// maxRequestIDLength bounds an incoming request ID; a longer one is
// replaced, so that a client cannot bloat the logs.
const maxRequestIDLength = 128

// ctxKeyRequestID is the gin context key of the request ID.
const ctxKeyRequestID = "troupe.requestID"

// bearerRealm is the WWW-Authenticate challenge of a 401.
const bearerRealm = `Bearer realm="troupe"` //nolint:gosec // G101: a challenge naming the scheme, not a credential

// handleRequestID echoes a sane incoming X-Request-ID or makes one up, and
// puts it on the response before anything else can answer. It runs first.
func handleRequestID(c *gin.Context) {
	id := c.GetHeader(HeaderRequestID)
	if !validRequestID(id) {
		id = uuid.NewString()
	}
	c.Set(ctxKeyRequestID, id)
	c.Header(HeaderRequestID, id)
	// Every answer is data, never something for a browser to guess at.
	c.Header("X-Content-Type-Options", "nosniff")
	c.Next()
}

// validRequestID accepts IDs that are safe to echo in a header and to log:
// short, and made of letters, digits and a few punctuation marks.
func validRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLength {
		return false
	}
	for _, r := range id {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case strings.ContainsRune("-_.:/+=", r):
		default:
			return false
		}
	}
	return true
}

// requestID returns the request's ID, set by handleRequestID.
func requestID(c *gin.Context) string {
	return c.GetString(ctxKeyRequestID)
}

// logRequests writes one line per request once it is answered: at debug
// level for the probes and scrapes that arrive every few seconds and for
// the worker protocol's successful calls, which arrive hundreds of times a
// second under load (troupe_worker_* counts them); at info for the rest.
func (s *Server) logRequests(c *gin.Context) {
	start := time.Now()
	c.Next()
	level := slog.LevelInfo
	path := c.Request.URL.Path
	if path == "/health" || path == "/metrics" || (workerRoute(c.FullPath()) && c.Writer.Status() < nethttp.StatusBadRequest) {
		level = slog.LevelDebug
	}
	ctx := c.Request.Context()
	if !s.logger.Enabled(ctx, level) {
		return
	}
	s.logger.LogAttrs(ctx, level, "http request",
		slog.String("method", c.Request.Method),
		slog.String("path", path),
		slog.Int("status", c.Writer.Status()),
		slog.Duration("latency", time.Since(start)),
		slog.String("requestID", requestID(c)),
		slog.String("clientIP", c.ClientIP()))
}

// recoverPanics turns a panic in a handler into a 500 problem. The panic
// value and stack go to the log, never to the client.
func (s *Server) recoverPanics(c *gin.Context) {
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		if v == nethttp.ErrAbortHandler { //nolint:errorlint // net/http itself recognises only this exact value
			// net/http's own signal to drop the connection quietly.
			panic(v)
		}
		id := requestID(c)
		s.logger.ErrorContext(c.Request.Context(), "http: panic serving request",
			slog.String("method", c.Request.Method),
			slog.String("path", c.Request.URL.Path),
			slog.String("requestID", id),
			slog.String("panic", fmt.Sprint(v)),
			slog.String("stack", string(debug.Stack())))
		if c.Writer.Written() {
			// Too late for a problem body. Ending normally would hand the
			// client a truncated body as if it were whole; aborting drops
			// the connection, so the client sees the failure.
			panic(nethttp.ErrAbortHandler)
		}
		writeProblem(c, kindInternal.problem(internalDetail(id), nil))
	}()
	c.Next()
}

// limitBody caps the request body at Config.MaxBodyBytes, or at
// Config.BatchMaxBodyBytes for a batch (see bodyLimit). A body that
// declares a larger length is refused at once; one that grows past the cap
// while it is read makes the reader fail with *http.MaxBytesError, which
// the error writer turns into 413.
func (s *Server) limitBody(c *gin.Context) {
	limit := s.bodyLimit(c)
	if c.Request.ContentLength > limit {
		s.writeError(c, &nethttp.MaxBytesError{Limit: limit})
		return
	}
	if c.Request.Body != nil {
		c.Request.Body = nethttp.MaxBytesReader(c.Writer, c.Request.Body, limit)
	}
	c.Next()
}

// tokenSet holds the SHA-256 digests of the accepted API tokens. Comparing
// digests of fixed length in constant time, and always against every token,
// reveals neither a token's length nor which token came close.
type tokenSet struct {
	digests [][sha256.Size]byte
}

func newTokenSet(tokens []string) tokenSet {
	digests := make([][sha256.Size]byte, len(tokens))
	for i, t := range tokens {
		digests[i] = sha256.Sum256([]byte(t))
	}
	return tokenSet{digests: digests}
}

// enabled reports whether any token is configured, and so whether
// protected routes need one.
func (t tokenSet) enabled() bool { return len(t.digests) > 0 }

// contains reports whether token is one of the set, in time that depends
// only on the number of tokens.
func (t tokenSet) contains(token string) bool {
	got := sha256.Sum256([]byte(token))
	match := 0
	for _, want := range t.digests {
		match |= subtle.ConstantTimeCompare(got[:], want[:])
	}
	return match == 1
}

// bearerToken extracts the token of an "Authorization: Bearer <token>"
// header; the scheme is case-insensitive (RFC 9110).
func bearerToken(header string) (string, bool) {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimLeft(token, " ")
	return token, token != ""
}

// authorized reports whether the request may use protected routes: no
// tokens are configured, or it carries one of them.
func (s *Server) authorized(r *nethttp.Request) bool {
	if !s.tokens.enabled() {
		return true
	}
	token, ok := bearerToken(r.Header.Get("Authorization"))
	return ok && s.tokens.contains(token)
}

// authenticate guards the protected routes when tokens are configured,
// answering 401 with a Bearer challenge (RFC 6750) otherwise. A worker
// token gets 403, also on an open API: it names a worker, which may only
// claim and report jobs.
func (s *Server) authenticate(c *gin.Context) {
	if token, ok := bearerToken(c.GetHeader("Authorization")); ok && s.workerTokens.contains(token) {
		forbidWorker(c)
		return
	}
	if s.authorized(c.Request) {
		c.Next()
		return
	}
	challenge, detail := bearerRealm, "this route needs an API token: send Authorization: Bearer <token>"
	if _, ok := bearerToken(c.GetHeader("Authorization")); ok {
		challenge, detail = bearerRealm+`, error="invalid_token"`, "the bearer token is not valid"
	}
	c.Header("WWW-Authenticate", challenge)
	writeProblem(c, kindUnauthorized.problem(detail, nil))
}

// forbidWorker answers 403 to a worker token on a route that is not the
// worker protocol's.
func forbidWorker(c *gin.Context) {
	writeProblem(c, kindForbidden.problem("a worker token may only claim and report jobs (POST /workers/claim, /workers/outcomes, "+
		"/jobs/{id}/heartbeat, /jobs/{id}/complete, /jobs/{id}/fail); this route needs an API token", nil))
}

// authenticateWorker guards the worker protocol's routes: an API token or
// a worker token. They are open only when no token of either kind is
// configured.
func (s *Server) authenticateWorker(c *gin.Context) {
	if !s.tokens.enabled() && !s.workerTokens.enabled() {
		c.Next()
		return
	}
	token, ok := bearerToken(c.GetHeader("Authorization"))
	if ok && (s.tokens.contains(token) || s.workerTokens.contains(token)) {
		c.Next()
		return
	}
	challenge, detail := bearerRealm, "this route needs an API or worker token: send Authorization: Bearer <token>"
	if ok {
		challenge, detail = bearerRealm+`, error="invalid_token"`, "the bearer token is not valid"
	}
	c.Header("WWW-Authenticate", challenge)
	writeProblem(c, kindUnauthorized.problem(detail, nil))
}
