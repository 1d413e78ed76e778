package http

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	nethttp "net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/troupe-go/troupe/domain"
)

// The Idempotency-Key header (draft-ietf-httpapi-idempotency-key-header)
// makes a submission safe to retry: the first answer to a key is kept, and
// a retry with the same key and body gets it again without creating
// anything.
const (
	// HeaderIdempotencyKey carries the client's key.
	HeaderIdempotencyKey = "Idempotency-Key"
	// HeaderIdempotentReplayed is "true" on an answer that was recorded
	// for an earlier request with the same key and sent again.
	HeaderIdempotentReplayed = "Idempotent-Replayed"
	// MaxIdempotencyKeyLength bounds a key, in bytes.
	MaxIdempotencyKeyLength = 255
	// IdempotencyTTLDefault is how long an answer is kept.
	IdempotencyTTLDefault = 24 * time.Hour
)

// idempotencyInFlightTTL is how long a request's key stays taken while
// its answer is not recorded: a server that died mid-request must not
// block the key for a day. Every request ends well within it (the write
// timeout is a minute).
const idempotencyInFlightTTL = time.Minute

// openScope is the scope of every key when the API takes no tokens: all
// callers are one.
const openScope = "open"

// idempotencyKey reads the request's key: ok is false when it has none,
// and err says why a key is unusable.
func idempotencyKey(r *nethttp.Request) (key string, ok bool, err error) {
	values := r.Header.Values(HeaderIdempotencyKey)
	switch {
	case len(values) == 0:
		return "", false, nil
	case len(values) > 1:
		return "", true, validationFailed(FieldError{Field: HeaderIdempotencyKey, Message: "must be sent once"})
	}
	key = values[0]
	if key == "" || len(key) > MaxIdempotencyKeyLength {
		return "", true, validationFailed(FieldError{Field: HeaderIdempotencyKey,
			Message: fmt.Sprintf("must be 1 to %d characters", MaxIdempotencyKeyLength)})
	}
	for i := range len(key) {
		if key[i] < 0x20 || key[i] > 0x7e {
			return "", true, validationFailed(FieldError{Field: HeaderIdempotencyKey, Message: "must be printable ASCII"})
		}
	}
	return key, true, nil
}

// callerScope names whom a key belongs to: the API token the request
// authenticated with, by a digest that does not reveal it, or everyone
// when the API takes no tokens.
func (s *Server) callerScope(r *nethttp.Request) string {
	if !s.tokens.enabled() {
		return openScope
	}
	token, _ := bearerToken(r.Header.Get("Authorization"))
	return tokenScope(token)
}

// tokenScope is the scope of an API token's keys.
func tokenScope(token string) string {
	sum := sha256.Sum256([]byte(token))
	return "token:" + hex.EncodeToString(sum[:16])
}

// requestFingerprint identifies a request by its method, path and body.
func requestFingerprint(method, path string, body []byte) string {
	h := sha256.New()
	// The lengths keep the parts apart: no two requests hash alike.
	fmt.Fprintf(h, "%d:%s%d:%s", len(method), method, len(path), path)
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

// idempotent is the middleware of the submission routes. A request with an
// Idempotency-Key is recorded in the request log before it runs: a retry
// with the same key and body gets the recorded answer again (same status
// and body, with Idempotent-Replayed: true), the same key with another
// body 422, and the same key while the first request runs 409. Answers
// are recorded before they are sent, so a client that saw one gets it
// again; 2xx and 4xx answers are kept for Config.IdempotencyTTL, while
// after a 5xx (or a client that left) the key is free at once. Without a
// request log (WithRequestLog) the header is ignored, as the draft allows
// a server that does not support it. Expired records are deleted by the
// runtime's pruner service (actors), beside the finished jobs it prunes:
// one service, in bounded batches, forgets whatever has expired.
func (s *Server) idempotent(c *gin.Context) {
	if s.requestLog == nil {
		c.Next()
		return
	}
	key, ok, err := idempotencyKey(c.Request)
	if !ok {
		c.Next()
		return
	}
	if err != nil {
		s.writeError(c, err)
		return
	}
	body, err := readBody(c.Request.Body)
	if err != nil {
		s.writeError(c, decodeError(err))
		return
	}
	c.Request.Body = io.NopCloser(bytes.NewReader(body))
	ctx := c.Request.Context()
	now := time.Now()
	rec := domain.RequestRecord{
		Scope:       s.callerScope(c.Request),
		Key:         key,
		Fingerprint: requestFingerprint(c.Request.Method, c.Request.URL.Path, body),
		ExpiresAt:   now.Add(idempotencyInFlightTTL),
	}
	existing, err := s.requestLog.BeginRequest(ctx, now, rec)
	if err != nil {
		s.writeError(c, fmt.Errorf("idempotency key: %w", err))
		return
	}
	if existing != nil {
		s.answerExisting(c, existing, rec.Fingerprint)
		return
	}

	// The key is ours until the answer is recorded or given up.
	orig := c.Writer
	w := &bufferedWriter{ResponseWriter: orig}
	c.Writer = w
	done := false
	defer func() {
		if !done {
			// A panic: the recovery middleware answers 500, and the key is
			// free again.
			c.Writer = orig
			s.abandonRequest(ctx, rec)
		}
	}()
	c.Next()
	done = true
	c.Writer = orig
	status := w.Status()
	if keepAnswer(status) {
		rec.Status, rec.Body = status, w.body.Bytes()
		rec.ExpiresAt = time.Now().Add(s.cfg.IdempotencyTTL)
		if err := s.requestLog.FinishRequest(context.WithoutCancel(ctx), rec); err != nil {
			// Unrecorded, the answer must not be sent: a retry would do
			// the work again. The job may exist; the client retries and,
			// once the key is free, may submit it twice, as without a key.
			s.abandonRequest(ctx, rec)
			orig.Header().Del("Location")
			s.writeError(c, fmt.Errorf("record the answer to idempotency key: %w", err))
			return
		}
	} else {
		s.abandonRequest(ctx, rec)
	}
	w.flush()
}

// keepAnswer reports whether an answer is recorded for its key: successes
// and the client's mistakes, which a retry would only repeat; not server
// errors, which a retry may get past, nor a client that left (499).
func keepAnswer(status int) bool {
	return status >= 200 && status < 300 || status >= 400 && status < 500 && status != StatusClientClosedRequest
}

// abandonRequest frees the key of a request whose answer is not kept.
func (s *Server) abandonRequest(ctx context.Context, rec domain.RequestRecord) {
	if err := s.requestLog.AbandonRequest(context.WithoutCancel(ctx), rec.Scope, rec.Key); err != nil {
		// The key stays taken until its in-flight record expires.
		s.logger.WarnContext(ctx, "http: free idempotency key", slog.Any("error", err))
	}
}

// answerExisting answers a request whose key has a live record: the
// recorded answer, or why there is none to give.
func (s *Server) answerExisting(c *gin.Context, rec *domain.RequestRecord, fingerprint string) {
	switch {
	case rec.Fingerprint != fingerprint:
		writeProblem(c, kindIdempotencyKeyReused.problem(
			"this Idempotency-Key was used for a different request (another method, path or body); send a new key for a new request", nil))
	case !rec.Done:
		c.Header("Retry-After", "1")
		writeProblem(c, kindIdempotencyKeyInUse.problem(
			"a request with this Idempotency-Key is still in progress; retry once it has been answered", nil))
	default:
		s.replay(c, rec)
	}
}

// replay sends a recorded answer again.
func (s *Server) replay(c *gin.Context, rec *domain.RequestRecord) {
	h := c.Writer.Header()
	h.Set(HeaderIdempotentReplayed, "true")
	if rec.Status >= 400 {
		h.Set("Content-Type", ProblemContentType)
	} else {
		h.Set("Content-Type", "application/json; charset=utf-8")
		if route := c.FullPath(); route == "/jobs" || route == triggerRoute {
			var job struct {
				ID string `json:"id"`
			}
			if json.Unmarshal(rec.Body, &job) == nil && job.ID != "" {
				h.Set("Location", "/jobs/"+job.ID)
			}
		}
	}
	c.Abort()
	c.Status(rec.Status)
	if _, err := c.Writer.Write(rec.Body); err != nil {
		s.logger.DebugContext(c.Request.Context(), "http: write replayed answer", slog.Any("error", err))
	}
}

// bufferedWriter holds an answer back until it is recorded.
type bufferedWriter struct {
	gin.ResponseWriter
	status int
	body   bytes.Buffer
}

func (w *bufferedWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *bufferedWriter) WriteHeaderNow() {}

func (w *bufferedWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = nethttp.StatusOK
	}
	return w.body.Write(b)
}

func (w *bufferedWriter) WriteString(s string) (int, error) { return w.Write([]byte(s)) }

func (w *bufferedWriter) Status() int {
	if w.status == 0 {
		return nethttp.StatusOK
	}
	return w.status
}

func (w *bufferedWriter) Size() int { return w.body.Len() }

func (w *bufferedWriter) Written() bool { return w.status != 0 }

// Flush is a no-op: nothing leaves before the answer is recorded.
func (w *bufferedWriter) Flush() {}

// flush sends the held answer.
func (w *bufferedWriter) flush() {
	w.ResponseWriter.WriteHeader(w.Status())
	_, _ = w.ResponseWriter.Write(w.body.Bytes())
}
