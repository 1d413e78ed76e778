package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// maxAnswerBytes bounds what the client reads of one answer; a backup is
// streamed, not read.
const maxAnswerBytes = 64 << 20

// maxErrorBodyBytes bounds what the client reads of an error answer.
const maxErrorBodyBytes = 1 << 20

// retryAfterCap bounds how long the client waits on a Retry-After before
// its own retry; a longer wait is the caller's decision.
const retryAfterCap = 5 * time.Second

// HeaderIdempotencyKey is the request header that makes a submission safe
// to retry.
const HeaderIdempotencyKey = "Idempotency-Key"

// Client calls one Troupe server's HTTP API. It is safe for concurrent use.
type Client struct {
	base      *url.URL
	token     string
	hc        *http.Client
	userAgent string
	retries   int
	backoff   time.Duration
}

// Option configures a Client.
type Option func(*Client)

// WithToken sends token as the bearer token of every request.
func WithToken(token string) Option { return func(c *Client) { c.token = token } }

// WithHTTPClient makes the client send its requests with hc. hc should
// have no overall Timeout: a claim long-polls and Wait streams; the
// client bounds its calls with their contexts.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// WithUserAgent sets the User-Agent header of every request.
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// WithRetries sets how many times a call that is safe to repeat (a GET or
// PUT, or a submission with its Idempotency-Key) is sent again
// after a connection error or a 502, 503 or 504 answer; 0 turns retries
// off. The default is 2.
func WithRetries(n int) Option { return func(c *Client) { c.retries = max(n, 0) } }

// New returns a client of the server at baseURL, an http or https URL
// such as "http://127.0.0.1:8080" (a path prefix is kept).
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("client: base URL %q: %w", baseURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("client: base URL %q: want an http or https URL", baseURL)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("client: base URL %q: no host", baseURL)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawQuery, u.Fragment = "", ""
	c := &Client{base: u, userAgent: "troupe-go-client", retries: 2, backoff: 100 * time.Millisecond}
	for _, o := range opts {
		o(c)
	}
	if c.hc == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		// Workers keep many requests in flight to one server.
		t.MaxIdleConnsPerHost = 64
		c.hc = &http.Client{Transport: t}
	}
	return c, nil
}

// BaseURL returns the server's URL the client was made with.
func (c *Client) BaseURL() string { return c.base.String() }

// CloseIdleConnections closes the idle connections of the client's
// transport.
func (c *Client) CloseIdleConnections() { c.hc.CloseIdleConnections() }

// CallOption adjusts one call.
type CallOption func(*callOptions)

type callOptions struct {
	noRetry bool
	key     *string
	header  http.Header
}

// IdempotencyKey sends key as the submission's Idempotency-Key instead of
// a random one, so that a later call with the same key and request gets
// the first answer again. "" sends none: the call is then not retried.
func IdempotencyKey(key string) CallOption { return func(o *callOptions) { o.key = &key } }

// Header adds a request header to the call.
func Header(name, value string) CallOption {
	return func(o *callOptions) {
		if o.header == nil {
			o.header = http.Header{}
		}
		o.header.Add(name, value)
	}
}

// noRetry sends the call once.
func noRetry(o *callOptions) { o.noRetry = true }

// call is one API request.
type call struct {
	method, path string
	query        url.Values
	body         any
	// submit marks a submission: it gets an Idempotency-Key and is retried.
	submit bool
	accept string
	opts   []CallOption
}

// Do sends one request to path (such as "/jobs/<id>", below the base URL)
// with body as JSON when not nil, and decodes a 2xx answer's JSON into out
// when not nil; a *json.RawMessage or *[]byte out gets the body as sent. It
// returns the answer's status. An error answer is a *Problem. It is the
// way to routes the typed methods do not cover, or to answers kept as
// they are; a POST gets an Idempotency-Key only through IdempotencyKey.
func (c *Client) Do(ctx context.Context, method, path string, query url.Values, body, out any, opts ...CallOption) (int, error) {
	return c.send(ctx, call{method: method, path: path, query: query, body: body, opts: opts}, out)
}

// send sends the call, retrying it when that is safe, and decodes the
// answer into out.
func (c *Client) send(ctx context.Context, cl call, out any) (int, error) {
	resp, err := c.open(ctx, cl)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("client: read the answer to %s %s: %w", cl.method, cl.path, err)
	}
	if err := decodeInto(data, out); err != nil {
		return resp.StatusCode, fmt.Errorf("client: decode the answer to %s %s: %w", cl.method, cl.path, err)
	}
	return resp.StatusCode, nil
}

func decodeInto(data []byte, out any) error {
	switch o := out.(type) {
	case nil:
		return nil
	case *json.RawMessage:
		*o = append((*o)[:0], data...)
		return nil
	case *[]byte:
		*o = append((*o)[:0], data...)
		return nil
	}
	if len(data) == 0 {
		return nil
	}
	return json.Unmarshal(data, out)
}

// open sends the call, retrying it when that is safe, and returns a 2xx
// answer whose body the caller must close; any other answer becomes a
// *Problem.
func (c *Client) open(ctx context.Context, cl call) (*http.Response, error) {
	var o callOptions
	for _, opt := range cl.opts {
		opt(&o)
	}
	var body []byte
	if cl.body != nil {
		var err error
		if body, err = json.Marshal(cl.body); err != nil {
			return nil, fmt.Errorf("client: encode the request %s %s: %w", cl.method, cl.path, err)
		}
	}
	key := ""
	switch {
	case o.key != nil:
		key = *o.key
	case cl.submit:
		key = newKey()
	}
	retry := c.retries
	switch {
	case o.noRetry:
		retry = 0
	case cl.method == http.MethodGet || cl.method == http.MethodHead || cl.method == http.MethodPut:
	case cl.method == http.MethodPost && key != "":
	default:
		// Not safe to repeat: a second DELETE or POST after a lost answer
		// would act again, or answer as if the first had not happened.
		retry = 0
	}
	// cl.path is already escaped: appended as text, not re-escaped.
	target := c.base.String() + cl.path
	if q := cl.query.Encode(); q != "" {
		target += "?" + q
	}
	for try := 0; ; try++ {
		req, err := http.NewRequestWithContext(ctx, cl.method, target, bytes.NewReader(body))
		if err != nil {
			return nil, fmt.Errorf("client: build the request %s %s: %w", cl.method, cl.path, err)
		}
		if body == nil {
			req.Body, req.ContentLength, req.GetBody = http.NoBody, 0, nil
		} else {
			req.Header.Set("Content-Type", "application/json")
		}
		accept := cl.accept
		if accept == "" {
			accept = "application/json, application/problem+json"
		}
		req.Header.Set("Accept", accept)
		if c.userAgent != "" {
			req.Header.Set("User-Agent", c.userAgent)
		}
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		if key != "" {
			req.Header.Set(HeaderIdempotencyKey, key)
		}
		for k, vs := range o.header {
			req.Header[k] = vs
		}
		resp, err := c.hc.Do(req)
		var wait time.Duration
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return nil, fmt.Errorf("client: %s %s: %w", cl.method, cl.path, context.Cause(ctx))
			}
			if try >= retry {
				return nil, fmt.Errorf("client: %s %s: %w", cl.method, cl.path, err)
			}
		case resp.StatusCode >= 200 && resp.StatusCode <= 299:
			return resp, nil
		default:
			p := readProblem(resp)
			_ = resp.Body.Close() // read to the end: nothing to report
			if try >= retry || !retryable(p) {
				return nil, p
			}
			wait = p.RetryAfter
		}
		if wait <= 0 {
			wait = c.backoff << try
		}
		t := time.NewTimer(min(wait, retryAfterCap))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("client: %s %s: %w", cl.method, cl.path, context.Cause(ctx))
		case <-t.C:
		}
	}
}

// retryable reports whether an answer may change if the same request is
// sent again soon.
func retryable(p *Problem) bool {
	switch p.Status {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return p.Type == ProblemIdempotencyKeyInUse
}

// newKey returns a random Idempotency-Key.
func newKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails
	return hex.EncodeToString(b[:])
}

// readProblem turns an error answer into a *Problem: the server's
// problem+json, or one made from the status and the start of the body.
func readProblem(resp *http.Response) *Problem {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBodyBytes))
	p := &Problem{Status: resp.StatusCode, body: data, RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())}
	mediaType, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mediaType == "application/problem+json" || mediaType == "application/json" {
		var wire struct {
			Type   string       `json:"type"`
			Title  string       `json:"title"`
			Status int          `json:"status"`
			Detail string       `json:"detail"`
			Errors []FieldError `json:"errors"`
		}
		if json.Unmarshal(data, &wire) == nil && (wire.Type != "" || wire.Detail != "") {
			p.Type, p.Title, p.Detail, p.Errors, p.fromServer = wire.Type, wire.Title, wire.Detail, wire.Errors, true
			if p.Type == "" {
				p.Type = "about:blank"
			}
			return p
		}
	}
	p.Type, p.Title = "about:blank", http.StatusText(resp.StatusCode)
	text := strings.TrimSpace(string(data))
	if len(text) > 200 {
		text = text[:200] + "…"
	}
	p.Detail = text
	p.status = resp.Status
	return p
}

// parseRetryAfter reads a Retry-After header: seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil && s >= 0 && !math.IsInf(s, 0) {
		return time.Duration(min(s, 86400) * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return 0
}

// Problem is an error answer of the API: an RFC 9457 problem detail.
// Every method returns one (use errors.As) for an answer that is not 2xx;
// an answer that is not a problem (from a proxy, say) becomes one of type
// "about:blank" with the start of its body as Detail.
type Problem struct {
	// Type names the kind of error, one of the Problem* constants; branch
	// on it (or use IsNotFound and the like).
	Type string `json:"type"`
	// Title summarizes the kind.
	Title string `json:"title"`
	// Status is the HTTP status.
	Status int `json:"status"`
	// Detail explains this occurrence.
	Detail string `json:"detail"`
	// Errors lists the fields that failed validation, if any.
	Errors []FieldError `json:"errors,omitempty"`
	// RetryAfter is the answer's Retry-After, 0 if none.
	RetryAfter time.Duration `json:"-"`

	fromServer bool
	status     string
	body       []byte
}

// FieldError is one field that failed validation.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Error says what went wrong, with the status: "job ... not found (404
// Not found)".
func (p *Problem) Error() string {
	if !p.fromServer {
		status := p.status
		if status == "" {
			status = strconv.Itoa(p.Status) + " " + http.StatusText(p.Status)
		}
		if p.Detail == "" {
			return "the server answered " + status
		}
		return "the server answered " + status + ": " + p.Detail
	}
	title := p.Title
	if title == "" {
		title = http.StatusText(p.Status)
	}
	detail := p.Detail
	if detail == "" {
		detail = title
	}
	return fmt.Sprintf("%s (%d %s)", detail, p.Status, title)
}

// The problem types the server answers with.
const (
	ProblemInvalidRequest       = "urn:troupe:problem:invalid-request"
	ProblemValidation           = "urn:troupe:problem:validation"
	ProblemUnknownJobType       = "urn:troupe:problem:unknown-job-type"
	ProblemUnauthorized         = "urn:troupe:problem:unauthorized"
	ProblemForbidden            = "urn:troupe:problem:forbidden"
	ProblemNotFound             = "urn:troupe:problem:not-found"
	ProblemMethodNotAllowed     = "urn:troupe:problem:method-not-allowed"
	ProblemNotCancelable        = "urn:troupe:problem:not-cancelable"
	ProblemConflict             = "urn:troupe:problem:conflict"
	ProblemLeaseLost            = "urn:troupe:problem:lease-lost"
	ProblemResultTooLarge       = "urn:troupe:problem:result-too-large"
	ProblemPayloadTooLarge      = "urn:troupe:problem:payload-too-large"
	ProblemUnsupportedMediaType = "urn:troupe:problem:unsupported-media-type"
	ProblemQueueFull            = "urn:troupe:problem:queue-full"
	ProblemUnavailable          = "urn:troupe:problem:unavailable"
	ProblemInsufficientStorage  = "urn:troupe:problem:insufficient-storage"
	ProblemStoreCorrupt         = "urn:troupe:problem:store-corrupt"
	ProblemIdempotencyKeyInUse  = "urn:troupe:problem:idempotency-key-in-use"
	ProblemIdempotencyKeyReused = "urn:troupe:problem:idempotency-key-reused"
	ProblemInternal             = "urn:troupe:problem:internal"
)

// IsProblem reports whether err is a *Problem of type typ.
func IsProblem(err error, typ string) bool {
	var p *Problem
	return errors.As(err, &p) && p.Type == typ
}

// hasStatus reports whether err is a *Problem with the status.
func hasStatus(err error, status int) bool {
	var p *Problem
	return errors.As(err, &p) && p.Status == status
}

// IsNotFound reports whether err says the job, schedule or route does not
// exist (404).
func IsNotFound(err error) bool { return hasStatus(err, http.StatusNotFound) }

// IsLeaseLost reports whether err says the lease token no longer holds the
// job's attempt: the outcome was not applied and must not be retried.
func IsLeaseLost(err error) bool { return IsProblem(err, ProblemLeaseLost) }

// IsQueueFull reports whether the server's ready queue was full; retry
// after the Problem's RetryAfter.
func IsQueueFull(err error) bool { return IsProblem(err, ProblemQueueFull) }

// IsUnavailable reports whether the server could not serve the call now
// (starting, stopping, store out of reach, queue full): 503.
func IsUnavailable(err error) bool { return hasStatus(err, http.StatusServiceUnavailable) }

// IsConflict reports whether the call conflicts with the state of the job
// or schedule (409, other than a lost lease).
func IsConflict(err error) bool {
	return hasStatus(err, http.StatusConflict) && !IsLeaseLost(err)
}

// IsInvalid reports whether the server rejected the request's input (400).
func IsInvalid(err error) bool { return hasStatus(err, http.StatusBadRequest) }

// IsUnauthorized reports whether the token was missing or wrong (401), or
// may not be used for the call (403).
func IsUnauthorized(err error) bool {
	return hasStatus(err, http.StatusUnauthorized) || hasStatus(err, http.StatusForbidden)
}

// IsResultTooLarge reports whether a completion's result was over the
// server's limit; the attempt goes on.
func IsResultTooLarge(err error) bool { return IsProblem(err, ProblemResultTooLarge) }
