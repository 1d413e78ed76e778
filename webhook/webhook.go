package webhook

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/troupe-go/troupe/actors"
	"github.com/troupe-go/troupe/domain"
)

// The bounds of a webhook's configuration and calls.
const (
	// DefaultTimeout bounds a call whose Config names no timeout.
	DefaultTimeout = 30 * time.Second
	// MaxTimeout bounds Config.Timeout.
	MaxTimeout = time.Hour
	// MaxRetryAfter caps the wait a Retry-After answer asks for.
	MaxRetryAfter = time.Hour
	// MaxErrorBody is how much of a failed answer's body goes into the
	// attempt's error.
	MaxErrorBody = 1024

	dialTimeout         = 5 * time.Second
	tlsHandshakeTimeout = 10 * time.Second
	maxIdleConnsPerHost = 64
	// drainLimit bounds what is read of an answer past what is kept, so
	// that its connection can be reused; a longer answer costs the
	// connection instead.
	drainLimit = 64 << 10
	userAgent  = "troupe-webhook"
)

// Config is one webhook: the job type it runs and the endpoint it calls.
type Config struct {
	// Type is the job type whose jobs the endpoint runs.
	Type domain.JobType
	// URL is the endpoint, http or https, with a host. User info in it is
	// sent (basic auth) but never logged.
	URL string
	// Timeout bounds one call, from dialing to the end of the answer;
	// DefaultTimeout when 0, at most MaxTimeout.
	Timeout time.Duration
	// Headers are added to each request (an API key, say). They cannot
	// replace the headers the protocol sets: Content-Type, Content-Length,
	// Host, User-Agent, Idempotency-Key, Troupe-Signature.
	Headers map[string]string
	// Secret, when set, signs each request (Troupe-Signature).
	Secret string
}

// Option configures a Handler.
type Option func(*options)

type options struct {
	client         *http.Client
	maxResultBytes int
	logger         *slog.Logger
	now            func() time.Time
}

// WithHTTPClient makes the handler call through c (its transport, TLS
// settings, proxy) instead of its own client. Redirects are still not
// followed, and the call is still bounded by Config.Timeout.
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.client = c } }

// WithMaxResultBytes bounds the result an answer may carry; Register uses
// the System's Config.MaxResultBytes, New actors.MaxResultBytesDefault.
func WithMaxResultBytes(n int) Option { return func(o *options) { o.maxResultBytes = n } }

// WithLogger logs each call at debug level; the default discards.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithClock sets the time the signatures carry and Retry-After dates are
// read against; time.Now by default.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// Handler is a domain.Handler that runs each attempt as a call to its
// webhook.
type Handler struct {
	typ      domain.JobType
	url      string
	redacted string // the URL as logs and errors show it
	timeout  time.Duration
	headers  http.Header
	secret   []byte
	client   *http.Client
	maxBytes int
	logger   *slog.Logger
	now      func() time.Time
}

// ReservedHeaders lists, sorted, the headers the protocol sets on every
// call; Config.Headers may not replace them, or the receiver could not
// trust the signature, deduplicate by the idempotency key or read the body.
func ReservedHeaders() []string {
	return []string{"Connection", "Content-Length", "Content-Type", "Host", "Idempotency-Key",
		SignatureHeader, "Transfer-Encoding", "User-Agent"}
}

// CheckHeader says why a configured header cannot go with every call: a
// name that is not an HTTP token, a header the protocol sets, or a line
// break or NUL in the value; nil when it can. The error never shows the
// value, which may be a credential.
func CheckHeader(name, value string) error {
	if !validHeaderName(name) {
		return fmt.Errorf("%q is not a valid header name", name)
	}
	canonical := textproto.CanonicalMIMEHeaderKey(name)
	if slices.Contains(ReservedHeaders(), canonical) {
		return fmt.Errorf("cannot set %s: the webhook protocol sets it on every call (reserved: %s)",
			canonical, strings.Join(ReservedHeaders(), ", "))
	}
	if strings.ContainsAny(value, "\r\n\x00") {
		return fmt.Errorf("the value of %s has a line break or a NUL", name)
	}
	return nil
}

// New checks cfg and returns its handler. A bad field gives an error
// wrapping domain.ErrInvalid that names it.
func New(cfg Config, opts ...Option) (*Handler, error) {
	o := options{maxResultBytes: actors.MaxResultBytesDefault, now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("webhook %q: %w: %s %s", cfg.Type, domain.ErrInvalid, field, fmt.Sprintf(format, args...))
	}
	if cfg.Type == "" {
		return nil, bad("type", "is required")
	}
	u, err := url.Parse(cfg.URL)
	if err != nil {
		// url.Error quotes the URL, user info and all: say less.
		return nil, bad("url", "is not a URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, bad("url", "must be http or https, got %q", u.Redacted())
	}
	if u.Host == "" || u.Opaque != "" {
		return nil, bad("url", "must name a host, got %q", u.Redacted())
	}
	switch {
	case cfg.Timeout == 0:
		cfg.Timeout = DefaultTimeout
	case cfg.Timeout < 0 || cfg.Timeout > MaxTimeout:
		return nil, bad("timeout", "must be between 0 and %s, got %s", MaxTimeout, cfg.Timeout)
	}
	headers := make(http.Header, len(cfg.Headers))
	for name, value := range cfg.Headers {
		if err := CheckHeader(name, value); err != nil {
			return nil, bad("headers", "%v", err)
		}
		headers.Set(name, value)
	}
	if o.maxResultBytes < 1 {
		return nil, bad("max result bytes", "must be at least 1, got %d", o.maxResultBytes)
	}
	h := &Handler{
		typ: cfg.Type, url: u.String(), redacted: u.Redacted(), timeout: cfg.Timeout, headers: headers,
		client: o.client, maxBytes: o.maxResultBytes, logger: o.logger, now: o.now,
	}
	if cfg.Secret != "" {
		h.secret = []byte(cfg.Secret)
	}
	if h.client == nil {
		h.client = &http.Client{Transport: newTransport(cfg.Timeout)}
	} else {
		c := *h.client
		h.client = &c
	}
	h.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if h.logger == nil {
		h.logger = slog.New(slog.DiscardHandler)
	}
	return h, nil
}

// newTransport is a webhook's own connection pool: bounded dial and TLS
// handshake, the answer's headers bounded by the call's timeout, and
// enough idle connections kept for a busy endpoint to reuse them.
func newTransport(timeout time.Duration) *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   tlsHandshakeTimeout,
		ResponseHeaderTimeout: timeout,
		MaxIdleConns:          4 * maxIdleConnsPerHost,
		MaxIdleConnsPerHost:   maxIdleConnsPerHost,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
		ForceAttemptHTTP2:     true,
	}
}

func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// Register registers cfg's handler with sys for cfg.Type, as a webhook
// (System.JobTypeInfo says RunByWebhook). The result limit is sys's
// Config.MaxResultBytes unless an option says otherwise.
func Register(sys *actors.System, cfg Config, opts ...Option) error {
	opts = append([]Option{WithMaxResultBytes(sys.Config().MaxResultBytes)}, opts...)
	h, err := New(cfg, opts...)
	if err != nil {
		return err
	}
	if err := sys.Register(cfg.Type, h, actors.WithRunBy(actors.RunByWebhook)); err != nil {
		return fmt.Errorf("webhook %q: %w", cfg.Type, err)
	}
	return nil
}

// request is the body of a webhook call.
type request struct {
	ID              uuid.UUID       `json:"id"`
	Type            domain.JobType  `json:"type"`
	Attempt         int             `json:"attempt"`
	Payload         json.RawMessage `json:"payload"`
	PayloadEncoding string          `json:"payloadEncoding,omitempty"`
}

// Execute implements domain.Handler: it calls the webhook for the attempt
// that ctx belongs to, and sets the answer's JSON body as the result.
func (h *Handler) Execute(ctx context.Context, payload []byte) error {
	id, ok := actors.JobIDFromContext(ctx)
	if !ok {
		return domain.Permanent(fmt.Errorf("webhook %q: %w", h.typ, domain.ErrNoAttempt))
	}
	attempt := actors.AttemptFromContext(ctx)
	body, err := h.body(id, attempt, payload)
	if err != nil {
		return domain.Permanent(fmt.Errorf("webhook %q: job %s: %w", h.typ, id, err))
	}
	callCtx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(callCtx, http.MethodPost, h.url, bytes.NewReader(body))
	if err != nil {
		return domain.Permanent(fmt.Errorf("webhook %q: job %s: %w", h.typ, id, err))
	}
	for name, values := range h.headers {
		req.Header[name] = values
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set("Idempotency-Key", id.String()+":"+strconv.Itoa(attempt))
	if h.secret != nil {
		req.Header.Set(SignatureHeader, Sign(h.secret, h.now(), body))
	}

	start := time.Now()
	resp, err := h.client.Do(req)
	if err != nil {
		return h.callFailed(ctx, callCtx, err)
	}
	defer resp.Body.Close()
	limit := MaxErrorBody
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		limit = h.maxBytes
	}
	answer, readErr := io.ReadAll(io.LimitReader(resp.Body, int64(limit)+1))
	if readErr == nil {
		// Read the rest, within reason, so the connection can be reused.
		_, _ = io.CopyN(io.Discard, resp.Body, drainLimit)
	}
	h.logger.LogAttrs(ctx, slog.LevelDebug, "webhook answered",
		slog.String("jobID", id.String()), slog.String("type", string(h.typ)), slog.Int("attempt", attempt),
		slog.String("url", h.redacted), slog.Int("status", resp.StatusCode), slog.Duration("took", time.Since(start)))
	return h.outcome(ctx, resp, answer, readErr, callCtx)
}

// body encodes the request: the payload as it is when it is JSON,
// base64 otherwise (null when there is none).
func (h *Handler) body(id uuid.UUID, attempt int, payload []byte) ([]byte, error) {
	r := request{ID: id, Type: h.typ, Attempt: attempt}
	switch {
	case len(payload) == 0:
		r.Payload = json.RawMessage("null")
	case json.Valid(payload):
		r.Payload = payload
	default:
		b, err := json.Marshal(base64.StdEncoding.EncodeToString(payload))
		if err != nil {
			return nil, err
		}
		r.Payload, r.PayloadEncoding = b, "base64"
	}
	return json.Marshal(r)
}

// callFailed is the error of a call that got no answer: the attempt's own
// end (a cancel, a stop, the job's timeout) as it is, anything else
// (connection refused, reset, the call's timeout) retryable.
func (h *Handler) callFailed(ctx, callCtx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("webhook %q: call interrupted: %w", h.typ, context.Cause(ctx))
	}
	if callCtx.Err() != nil {
		return fmt.Errorf("webhook timed out after %s", h.timeout)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		// Its message quotes the URL; ours shows it without secrets.
		err = ue.Err
	}
	return fmt.Errorf("webhook call to %s failed: %w", h.redacted, err)
}

// outcome turns an answer into the attempt's end.
func (h *Handler) outcome(ctx context.Context, resp *http.Response, body []byte, readErr error, callCtx context.Context) error {
	code := resp.StatusCode
	status := strconv.Itoa(code)
	if text := http.StatusText(code); text != "" {
		status += " " + text
	}
	switch {
	case code >= 200 && code < 300:
		if readErr != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("webhook %q: call interrupted: %w", h.typ, context.Cause(ctx))
			}
			if callCtx.Err() != nil {
				return fmt.Errorf("webhook timed out after %s reading its %s answer", h.timeout, status)
			}
			return fmt.Errorf("webhook answered %s, then failed: %w", status, readErr)
		}
		if len(body) > h.maxBytes {
			return fmt.Errorf("webhook answered %s with %w: more than the %d bytes allowed", status, domain.ErrResultTooLarge, h.maxBytes)
		}
		if len(bytes.TrimSpace(body)) == 0 || !json.Valid(body) {
			return nil // an answer that is not JSON is no result
		}
		if err := domain.SetResult(ctx, json.RawMessage(body)); err != nil && !errors.Is(err, domain.ErrNoAttempt) {
			return err
		}
		return nil
	case code >= 300 && code < 400:
		return domain.Permanent(fmt.Errorf("webhook answered %s: redirects are not followed", status))
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500 || code < 200:
		err := errors.New("webhook answered " + status + snippet(body))
		if d, ok := retryAfter(resp.Header.Get("Retry-After"), h.now()); ok {
			return domain.RetryAfter(err, d)
		}
		return err
	default:
		return domain.Permanent(errors.New("webhook answered " + status + snippet(body)))
	}
}

// snippet is ": " and the start of a failed answer's body, as text, or
// nothing for an empty body.
func snippet(body []byte) string {
	if len(body) > MaxErrorBody {
		cut := MaxErrorBody
		for cut > 0 && !utf8.RuneStart(body[cut]) {
			cut--
		}
		body = body[:cut]
	}
	s := strings.TrimSpace(strings.ToValidUTF8(string(body), "\uFFFD"))
	if s == "" {
		return ""
	}
	return ": " + s
}

// retryAfter reads a Retry-After header: delay seconds or an HTTP date,
// capped at MaxRetryAfter; a date past is 0.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		return min(time.Duration(min(secs, int64(MaxRetryAfter/time.Second)))*time.Second, MaxRetryAfter), true
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(t.Sub(now), 0), MaxRetryAfter), true
	}
	return 0, false
}
