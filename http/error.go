package http

import (
	"errors"
	"fmt"
	"log/slog"
	nethttp "net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/troupe-go/troupe/domain"
)

// ProblemContentType is the media type of every error response (RFC 9457).
const ProblemContentType = "application/problem+json"

// Problem types: the "type" member of an error body, one per kind of error,
// so that clients can branch on it rather than on the prose in "detail".
// They are URNs (names, not links); openapi.yaml describes each one.
const (
	// ProblemTypeInvalidRequest: malformed JSON, an empty body, a malformed
	// job ID or query string, or input the runtime rejects.
	ProblemTypeInvalidRequest = "urn:troupe:problem:invalid-request"
	// ProblemTypeValidation: fields break their rules; "errors" lists them.
	ProblemTypeValidation = "urn:troupe:problem:validation"
	// ProblemTypeUnknownJobType: no handler is registered for the job type;
	// "detail" names the registered types.
	ProblemTypeUnknownJobType = "urn:troupe:problem:unknown-job-type"
	// ProblemTypeUnauthorized: the bearer token is missing or wrong.
	ProblemTypeUnauthorized = "urn:troupe:problem:unauthorized"
	// ProblemTypeNotFound: no such job, or no such route.
	ProblemTypeNotFound = "urn:troupe:problem:not-found"
	// ProblemTypeMethodNotAllowed: the route exists for other methods,
	// listed in the Allow header.
	ProblemTypeMethodNotAllowed = "urn:troupe:problem:method-not-allowed"
	// ProblemTypeNotCancelable: the job already completed or failed.
	ProblemTypeNotCancelable = "urn:troupe:problem:not-cancelable"
	// ProblemTypeConflict: the change conflicts with the job's state, or
	// changes a schedule declared in the configuration file.
	ProblemTypeConflict = "urn:troupe:problem:conflict"
	// ProblemTypePayloadTooLarge: the body, or a job's payload, is over
	// the configured limit.
	ProblemTypePayloadTooLarge = "urn:troupe:problem:payload-too-large"
	// ProblemTypeUnsupportedMediaType: the body is not declared as JSON, or
	// is in a content coding other than gzip.
	ProblemTypeUnsupportedMediaType = "urn:troupe:problem:unsupported-media-type"
	// ProblemTypeQueueFull: the ready queue is full; retry after the
	// Retry-After header's seconds.
	ProblemTypeQueueFull = "urn:troupe:problem:queue-full"
	// ProblemTypeUnavailable: the runtime is not running (starting or
	// stopping).
	ProblemTypeUnavailable = "urn:troupe:problem:unavailable"
	// ProblemTypeInsufficientStorage: the store's disk is (nearly) full;
	// retry after the Retry-After header's seconds.
	ProblemTypeInsufficientStorage = "urn:troupe:problem:insufficient-storage"
	// ProblemTypeStoreCorrupt: the store found damaged data; the operator
	// must restore it from a backup.
	ProblemTypeStoreCorrupt = "urn:troupe:problem:store-corrupt"
	// ProblemTypeIdempotencyKeyInUse: a request with the same
	// Idempotency-Key is still in progress; retry after Retry-After.
	ProblemTypeIdempotencyKeyInUse = "urn:troupe:problem:idempotency-key-in-use"
	// ProblemTypeIdempotencyKeyReused: the Idempotency-Key was used for a
	// different request.
	ProblemTypeIdempotencyKeyReused = "urn:troupe:problem:idempotency-key-reused"
	// ProblemTypeForbidden: the token is valid but not for this route (a
	// worker token may only claim and report jobs).
	ProblemTypeForbidden = "urn:troupe:problem:forbidden"
	// ProblemTypeLeaseLost: the lease token does not hold the job's running
	// attempt; the outcome was not applied.
	ProblemTypeLeaseLost = "urn:troupe:problem:lease-lost"
	// ProblemTypeResultTooLarge: a job's result is over the runtime's
	// limit; the attempt goes on, and the worker may fail it or send a
	// smaller result.
	ProblemTypeResultTooLarge = "urn:troupe:problem:result-too-large"
	// ProblemTypeInternal: an unexpected error, logged on the server with
	// the request ID; the body says nothing more.
	ProblemTypeInternal = "urn:troupe:problem:internal"
)

// storageFullRetryAfter is the Retry-After, in seconds, of an
// insufficient-storage answer: space comes back when an operator frees it
// or retention runs, not within a second.
const storageFullRetryAfter = "30"

// queueFullRetryAfter is the Retry-After, in seconds, of a queue-full
// answer: the queue drains at the workers' pace, so a short wait is enough.
const queueFullRetryAfter = "1"

// Problem is an RFC 9457 problem detail, the body of every error response.
type Problem struct {
	// Type names the kind of error: one of the ProblemType constants.
	Type string `json:"type"`
	// Title is a short summary of the kind, the same for every occurrence.
	Title string `json:"title"`
	// Status repeats the HTTP status code.
	Status int `json:"status"`
	// Detail explains this occurrence, for people.
	Detail string `json:"detail"`
	// Errors lists the fields that failed validation, if any.
	Errors []FieldError `json:"errors,omitempty"`
}

// FieldError is one field that failed validation.
type FieldError struct {
	// Field is the field's name as it appears on the wire (a JSON member or
	// a query parameter), with an index for list elements: "status[1]".
	Field string `json:"field"`
	// Message says what is wrong, to be read after the field's name.
	Message string `json:"message"`
}

// problemKind is a kind of error as the client sees it.
type problemKind int

// The kinds of error; describe gives each one's status, type and title.
const (
	kindInternal problemKind = iota
	kindInvalidRequest
	kindValidation
	kindUnknownJobType
	kindUnauthorized
	kindNotFound
	kindMethodNotAllowed
	kindNotCancelable
	kindConflict
	kindPayloadTooLarge
	kindUnsupportedMediaType
	kindQueueFull
	kindUnavailable
	kindInsufficientStorage
	kindStoreCorrupt
	kindIdempotencyKeyInUse
	kindIdempotencyKeyReused
	kindForbidden
	kindLeaseLost
	kindResultTooLarge
)

// describe returns how the kind looks on the wire.
func (k problemKind) describe() (status int, typ, title string) {
	switch k {
	case kindInvalidRequest:
		return nethttp.StatusBadRequest, ProblemTypeInvalidRequest, "Invalid request"
	case kindValidation:
		return nethttp.StatusBadRequest, ProblemTypeValidation, "Validation failed"
	case kindUnknownJobType:
		return nethttp.StatusBadRequest, ProblemTypeUnknownJobType, "Unknown job type"
	case kindUnauthorized:
		return nethttp.StatusUnauthorized, ProblemTypeUnauthorized, "Unauthorized"
	case kindNotFound:
		return nethttp.StatusNotFound, ProblemTypeNotFound, "Not found"
	case kindMethodNotAllowed:
		return nethttp.StatusMethodNotAllowed, ProblemTypeMethodNotAllowed, "Method not allowed"
	case kindNotCancelable:
		return nethttp.StatusConflict, ProblemTypeNotCancelable, "Job not cancelable"
	case kindConflict:
		return nethttp.StatusConflict, ProblemTypeConflict, "Conflict"
	case kindPayloadTooLarge:
		return nethttp.StatusRequestEntityTooLarge, ProblemTypePayloadTooLarge, "Request body too large"
	case kindUnsupportedMediaType:
		return nethttp.StatusUnsupportedMediaType, ProblemTypeUnsupportedMediaType, "Unsupported media type"
	case kindQueueFull:
		return nethttp.StatusServiceUnavailable, ProblemTypeQueueFull, "Queue full"
	case kindUnavailable:
		return nethttp.StatusServiceUnavailable, ProblemTypeUnavailable, "Service unavailable"
	case kindInsufficientStorage:
		return nethttp.StatusInsufficientStorage, ProblemTypeInsufficientStorage, "Insufficient storage"
	case kindStoreCorrupt:
		return nethttp.StatusInternalServerError, ProblemTypeStoreCorrupt, "Store damaged"
	case kindIdempotencyKeyInUse:
		return nethttp.StatusConflict, ProblemTypeIdempotencyKeyInUse, "Idempotency key in use"
	case kindIdempotencyKeyReused:
		return nethttp.StatusUnprocessableEntity, ProblemTypeIdempotencyKeyReused, "Idempotency key reused"
	case kindForbidden:
		return nethttp.StatusForbidden, ProblemTypeForbidden, "Forbidden"
	case kindLeaseLost:
		return nethttp.StatusConflict, ProblemTypeLeaseLost, "Lease lost"
	case kindResultTooLarge:
		return nethttp.StatusRequestEntityTooLarge, ProblemTypeResultTooLarge, "Result too large"
	}
	return nethttp.StatusInternalServerError, ProblemTypeInternal, "Internal server error"
}

// kindOf is the table from domain error to HTTP answer. An error that
// matches no row is internal.
func kindOf(err error) problemKind {
	switch {
	// Before ErrNotFound and ErrInvalid, which a runtime may wrap with them.
	case errors.Is(err, domain.ErrLeaseLost):
		return kindLeaseLost
	case errors.Is(err, domain.ErrResultTooLarge):
		return kindResultTooLarge
	case errors.Is(err, domain.ErrNotFound):
		return kindNotFound
	case errors.Is(err, domain.ErrUnknownJobType):
		return kindUnknownJobType
	case errors.Is(err, domain.ErrPayloadTooLarge):
		return kindPayloadTooLarge
	case errors.Is(err, domain.ErrInvalid):
		return kindInvalidRequest
	case errors.Is(err, domain.ErrNotCancelable):
		return kindNotCancelable
	case errors.Is(err, domain.ErrAlreadyExists), errors.Is(err, domain.ErrInvalidTransition), errors.Is(err, domain.ErrDuplicate),
		errors.Is(err, domain.ErrConflict):
		return kindConflict
	case errors.Is(err, domain.ErrQueueFull):
		return kindQueueFull
	case errors.Is(err, domain.ErrStorageFull):
		return kindInsufficientStorage
	case errors.Is(err, domain.ErrCorrupt):
		return kindStoreCorrupt
	case errors.Is(err, domain.ErrNotRunning), errors.Is(err, domain.ErrClosed), errors.Is(err, domain.ErrUnavailable):
		return kindUnavailable
	}
	return kindInternal
}

// requestError is a client error this package finds itself, before the
// service is called: a malformed body, parameter or credential.
type requestError struct {
	kind   problemKind
	detail string
	fields []FieldError
	// cause is wrapped so that errors.Is still sees a domain sentinel.
	cause error
}

func (e *requestError) Error() string { return e.detail }
func (e *requestError) Unwrap() error { return e.cause }

// invalidRequest returns a 400 with the given detail.
func invalidRequest(format string, args ...any) error {
	return &requestError{kind: kindInvalidRequest, detail: fmt.Sprintf(format, args...)}
}

// validationFailed returns a 400 that lists the fields.
func validationFailed(fields ...FieldError) error {
	return newValidationError(fields...)
}

// newValidationError is validationFailed for a caller that amends the
// error before returning it.
func newValidationError(fields ...FieldError) *requestError {
	msgs := make([]string, len(fields))
	for i, f := range fields {
		msgs[i] = f.Field + " " + f.Message
	}
	return &requestError{
		kind:   kindValidation,
		detail: "the request has invalid fields: " + strings.Join(msgs, "; "),
		fields: fields,
	}
}

// unknownJobType names the registered types, so that a typo is easy to see.
func unknownJobType(typ string, registered []domain.JobType, cause error) error {
	return &requestError{
		kind:   kindUnknownJobType,
		detail: fmt.Sprintf("job type %q is not registered; registered types: %s", typ, typeNames(registered)),
		cause:  cause,
	}
}

// typeNames lists job types for a message, or says "none".
func typeNames(types []domain.JobType) string {
	if len(types) == 0 {
		return "none"
	}
	s := make([]string, len(types))
	for i, t := range types {
		s[i] = string(t)
	}
	return strings.Join(s, ", ")
}

// leaseLostDetail is the detail of every lease-lost answer.
const leaseLostDetail = "the lease token does not hold the job's running attempt: it expired, is wrong, or the attempt already ended; " +
	"do not retry this outcome, the job is someone else's now"

// problemFor turns any error into the problem to send, and reports whether
// it is internal (unexpected, to be logged and hidden from the client).
func problemFor(err error) (p Problem, internal bool) {
	var reqErr *requestError
	if errors.As(err, &reqErr) {
		return reqErr.kind.problem(reqErr.detail, reqErr.fields), false
	}
	var tooLarge *nethttp.MaxBytesError
	if errors.As(err, &tooLarge) {
		return kindPayloadTooLarge.problem(fmt.Sprintf("the request body is larger than the limit of %d bytes", tooLarge.Limit), nil), false
	}
	switch kind := kindOf(err); kind {
	case kindInternal:
	case kindLeaseLost:
		// The runtime's text speaks of nodes; a worker needs to know what
		// to do.
		return kind.problem(leaseLostDetail, nil), false
	default:
		return kind.problem(err.Error(), nil), false
	}
	return kindInternal.problem("an internal error occurred", nil), true
}

func (k problemKind) problem(detail string, fields []FieldError) Problem {
	status, typ, title := k.describe()
	return Problem{Type: typ, Title: title, Status: status, Detail: detail, Errors: fields}
}

// writeError answers with the problem for err. Internal errors are
// logged, once, with the request ID, and the client gets a generic message
// quoting that ID; so are faults of the store, whose messages may name
// hosts, users or files. A client that went away gets 499 (see
// clientGone), not a 5xx. Every handler ends on it.
func (s *Server) writeError(c *gin.Context, err error) {
	p, internal := problemFor(err)
	id := requestID(c)
	ctx := c.Request.Context()
	if p.Status >= nethttp.StatusInternalServerError && clientGone(ctx) {
		s.writeClientGone(c, err, internal)
		return
	}
	if internal {
		s.logger.ErrorContext(ctx, "http: internal error",
			slog.String("method", c.Request.Method),
			slog.String("path", c.Request.URL.Path),
			slog.String("requestID", id),
			slog.Any("error", err))
		p.Detail = internalDetail(id)
	} else if fault, ok := findStoreFault(err); ok && p.Status >= nethttp.StatusInternalServerError {
		if !fault.ours {
			level := slog.LevelWarn
			if p.Type == ProblemTypeStoreCorrupt {
				level = slog.LevelError
			}
			s.logger.Log(ctx, level, "http: store fault",
				slog.String("method", c.Request.Method),
				slog.String("path", c.Request.URL.Path),
				slog.String("requestID", id),
				slog.Any("error", err))
		}
		p.Detail = faultDetail(err, fault, id)
	}
	switch p.Type {
	case ProblemTypeQueueFull:
		c.Header("Retry-After", queueFullRetryAfter)
	case ProblemTypeUnavailable:
		c.Header("Retry-After", unavailableRetryAfter)
	case ProblemTypeInsufficientStorage:
		c.Header("Retry-After", storageFullRetryAfter)
	}
	writeProblem(c, p)
}

// internalDetail is all a client learns about an internal error: enough
// to find it in the server's log.
func internalDetail(requestID string) string {
	return "an internal error occurred; the server's log has the details under request ID " + requestID
}

// writeProblem sends p as application/problem+json and stops the chain.
func writeProblem(c *gin.Context, p Problem) {
	c.Header("Content-Type", ProblemContentType)
	c.Abort()
	writeJSON(c, p.Status, p)
}
