package http

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	nethttp "net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/troupe-go/troupe/domain"
)

// Server-Sent Events. GET /events streams every job change and, every two
// seconds, the figures of GET /stats: it is what keeps the dashboard live.
// GET /jobs/{id}/events streams one job until it is terminal, so that a
// client can wait for a job without polling.

// EventStreamContentType is the media type of the event streams.
const EventStreamContentType = "text/event-stream"

// The event names a stream sends.
const (
	// EventJob carries a job as GET /jobs/{id} renders it.
	EventJob = "job"
	// EventStats carries the body of GET /stats.
	EventStats = "stats"
	// EventResync says that the server dropped job events for this stream
	// because the client read too slowly; a client that mirrors jobs should
	// read them again.
	EventResync = "resync"
)

// The pace of a stream.
const (
	// streamRetry is the reconnection delay a stream asks EventSource for,
	// so that a dashboard comes back soon after the server restarts.
	streamRetry = 2 * time.Second
	// streamStatsInterval is how often GET /events sends the stats.
	streamStatsInterval = 2 * time.Second
	// streamHeartbeat is how often a stream sends a comment line, so that
	// proxies that close idle connections keep it open.
	streamHeartbeat = 15 * time.Second
	// jobStreamRecheck is how often GET /jobs/{id}/events reads the job
	// again. Events can be dropped when the stream's buffer is full, and a
	// job running on another node publishes none here; reading it again is
	// what makes sure the terminal state is never missed.
	jobStreamRecheck = time.Second
	// streamBuffer is how many job events wait for a slow client before
	// the next ones are dropped (and counted).
	streamBuffer = 256
)

// QueryToken is the query parameter that carries the API token on the
// event streams, for clients that cannot set headers (EventSource).
const QueryToken = "token"

// registerEventRoutes adds the event streams to r, behind their own check
// of the token, which also accepts the query parameter.
func (s *Server) registerEventRoutes(r gin.IRouter) {
	streams := headRouter{r.Group("/", s.authenticateStream)}
	streams.GET("/events", s.handleEvents)
	streams.GET("/jobs/:id/events", s.handleJobEvents)
}

// authenticateStream is authenticate for the event streams: the token may
// also come as ?token=, because browsers' EventSource cannot send headers.
// Other routes do not accept it, since URLs end up in histories and logs;
// the request log of this server records the path only.
func (s *Server) authenticateStream(c *gin.Context) {
	if token := c.Query(QueryToken); token != "" && s.workerTokens.contains(token) {
		forbidWorker(c)
		return
	}
	if token, ok := bearerToken(c.GetHeader("Authorization")); ok && s.workerTokens.contains(token) {
		forbidWorker(c)
		return
	}
	if s.authorized(c.Request) {
		c.Next()
		return
	}
	token := c.Query(QueryToken)
	if token == "" {
		s.authenticate(c)
		return
	}
	if s.tokens.contains(token) {
		c.Next()
		return
	}
	c.Header("WWW-Authenticate", bearerRealm+`, error="invalid_token"`)
	writeProblem(c, kindUnauthorized.problem("the token is not valid", nil))
}

// streamControl ends the event streams when the server stops. Shutdown
// waits for the requests in flight, and a stream never ends by itself, so
// every stream also watches a context that Stop cancels. The zero value is
// ready to use.
type streamControl struct {
	mu     sync.Mutex
	ctx    context.Context
	cancel context.CancelFunc
	// open counts the streams being served, each holding a subscription.
	open atomic.Int64
}

// context returns the context that ends the streams.
func (sc *streamControl) context() context.Context {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.ctx == nil {
		sc.ctx, sc.cancel = context.WithCancel(context.Background())
	}
	return sc.ctx
}

// end ends every stream, and those that start before renew.
func (sc *streamControl) end() {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.ctx == nil {
		sc.ctx, sc.cancel = context.WithCancel(context.Background())
	}
	sc.cancel()
}

// renew lets streams run again, once a stopped server has shut down.
func (sc *streamControl) renew() {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.ctx != nil && sc.ctx.Err() != nil {
		sc.ctx, sc.cancel = nil, nil
	}
}

// streamContext returns the context of one stream: it ends when the client
// goes away or when the server stops. Call the returned func when done.
func (s *Server) streamContext(c *gin.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancel(c.Request.Context())
	stop := context.AfterFunc(s.streams.context(), cancel)
	return ctx, func() {
		stop()
		cancel()
	}
}

// subscribe opens a subscription for a stream; release closes it.
func (s *Server) subscribe() Subscription {
	sub := s.svc.Subscribe(streamBuffer)
	s.streams.open.Add(1)
	return sub
}

func (s *Server) release(sub Subscription) {
	sub.Close()
	s.streams.open.Add(-1)
}

// eventWriter writes one Server-Sent Events stream and flushes each event,
// so that nothing waits in a buffer. After a failed write it writes
// nothing more and err says why; the client is gone.
type eventWriter struct {
	w   gin.ResponseWriter
	rc  *nethttp.ResponseController
	buf bytes.Buffer
	err error
}

// streamWriteTimeout bounds one write of a stream: a client that stops
// reading fills its socket buffer, and without a deadline the write, and
// the stream's goroutine and subscription with it, would wait for ever.
const streamWriteTimeout = 30 * time.Second

// startEventStream answers 200 with the stream's headers and its
// reconnection delay. The server's read and write timeouts bound ordinary
// requests; a stream lasts as long as its client, so they are lifted.
func startEventStream(c *gin.Context) *eventWriter {
	rc := nethttp.NewResponseController(c.Writer)
	// Not every writer supports deadlines (httptest's recorder does not);
	// a stream without them is still a stream.
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	h := c.Writer.Header()
	h.Set("Content-Type", EventStreamContentType)
	h.Set("Cache-Control", "no-store")
	// nginx buffers responses unless told otherwise.
	h.Set("X-Accel-Buffering", "no")
	c.Status(nethttp.StatusOK)
	w := &eventWriter{w: c.Writer, rc: rc}
	if c.Request.Method == nethttp.MethodHead {
		c.Writer.WriteHeaderNow()
		w.err = errHeadOnly
		return w
	}
	w.buf.WriteString("retry: " + strconv.FormatInt(streamRetry.Milliseconds(), 10) + "\n\n")
	w.flush()
	return w
}

// send writes one event whose data is v as JSON; id may be empty.
func (w *eventWriter) send(event, id string, v any) {
	if w.err != nil {
		return
	}
	data, err := json.Marshal(v)
	if err != nil {
		w.err = err
		return
	}
	// JSON from encoding/json has no raw newlines, so it fits one data line.
	w.buf.WriteString("event: " + event + "\n")
	if id != "" {
		w.buf.WriteString("id: " + id + "\n")
	}
	w.buf.WriteString("data: ")
	w.buf.Write(data)
	w.buf.WriteString("\n\n")
	w.flush()
}

// comment writes a comment line, which clients ignore: a heartbeat.
func (w *eventWriter) comment(text string) {
	if w.err != nil {
		return
	}
	w.buf.WriteString(": " + text + "\n\n")
	w.flush()
}

func (w *eventWriter) flush() {
	_ = w.rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
	_, err := w.w.Write(w.buf.Bytes())
	w.buf.Reset()
	if err == nil {
		err = w.rc.Flush()
	}
	if err != nil && !errors.Is(err, nethttp.ErrNotSupported) {
		w.err = err
	}
}

// ResyncEvent is the data of a resync event.
type ResyncEvent struct {
	// Missed counts the job events dropped since the last resync event.
	Missed int64 `json:"missed"`
}

// handleEvents handles GET /events: every job change as it is stored, the
// stats every two seconds, and a resync event when changes were dropped.
func (s *Server) handleEvents(c *gin.Context) {
	ctx, done := s.streamContext(c)
	defer done()
	sub := s.subscribe()
	defer s.release(sub)

	w := startEventStream(c)
	s.sendStats(ctx, w)
	stats := time.NewTicker(streamStatsInterval)
	defer stats.Stop()
	heartbeat := time.NewTicker(streamHeartbeat)
	defer heartbeat.Stop()
	var dropped int64
	for w.err == nil {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-sub.Events():
			if !ok {
				return
			}
			w.send(EventJob, "", newJobResponse(ev.Job))
		case <-stats.C:
			if d := sub.Dropped(); d > dropped {
				w.send(EventResync, "", ResyncEvent{Missed: d - dropped})
				dropped = d
			}
			s.sendStats(ctx, w)
		case <-heartbeat.C:
			w.comment("heartbeat")
		}
	}
}

// sendStats sends the stats, or nothing when they cannot be read now: the
// next tick tries again, and GET /health tells what is down.
func (s *Server) sendStats(ctx context.Context, w *eventWriter) {
	st, err := s.stats(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.logger.DebugContext(ctx, "http: events: stats", slog.Any("error", err))
		}
		return
	}
	w.send(EventStats, "", st)
}

// jobEventID identifies a state of a job within its stream: its update
// time. A client that reconnects sends the last one it saw as
// Last-Event-ID.
func jobEventID(j *domain.Job) string {
	return j.UpdatedAt.UTC().Format(timestampLayout)
}

// handleJobEvents handles GET /jobs/{id}/events: the job's current state,
// then each change, and the end of the stream once the job is terminal. An
// EventSource reconnects when a stream ends; when it comes back with the
// ID of the terminal state it already has, the answer is 204, which tells
// it to stop.
func (s *Server) handleJobEvents(c *gin.Context) {
	id, err := parseJobID(c.Param("id"))
	if err != nil {
		s.writeError(c, err)
		return
	}
	ctx, done := s.streamContext(c)
	defer done()
	// Subscribe before reading the job, so that no change falls between.
	sub := s.subscribe()
	defer s.release(sub)
	job, err := s.svc.Get(ctx, id)
	if err != nil {
		s.writeError(c, err)
		return
	}
	if job.Status.IsTerminal() && c.GetHeader("Last-Event-ID") == jobEventID(job) {
		c.Status(nethttp.StatusNoContent)
		return
	}

	w := startEventStream(c)
	js := &jobStream{s: s, id: id, sub: sub, w: w, last: job}
	w.send(EventJob, jobEventID(job), newJobResponse(job))
	recheck := time.NewTicker(jobStreamRecheck)
	defer recheck.Stop()
	heartbeat := time.NewTicker(streamHeartbeat)
	defer heartbeat.Stop()
	for !js.done() {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-sub.Events():
			if !ok {
				return
			}
			js.offer(ev.Job)
			if d := sub.Dropped(); d > js.dropped {
				// This job's change may be among those dropped.
				js.dropped = d
				if !js.reread(ctx) {
					return
				}
			}
		case <-recheck.C:
			if !js.reread(ctx) {
				return
			}
		case <-heartbeat.C:
			w.comment("heartbeat")
		}
	}
}

// jobStream is the state of one GET /jobs/{id}/events stream.
type jobStream struct {
	s   *Server
	id  uuid.UUID
	sub Subscription
	w   *eventWriter
	// last is the latest state sent.
	last *domain.Job
	// dropped is the subscription's drop count when last looked at.
	dropped int64
}

// done reports whether the stream has nothing more to send: the job is
// terminal, or the client is gone.
func (js *jobStream) done() bool {
	return js.w.err != nil || js.last.Status.IsTerminal()
}

// offer sends j if it is this job in a later state than the last sent.
func (js *jobStream) offer(j *domain.Job) {
	if j.ID != js.id || !newerState(js.last, j) {
		return
	}
	js.w.send(EventJob, jobEventID(j), newJobResponse(j))
	js.last = j
}

// reread reads the job again, after the events already waiting, so that a
// fresh read never jumps over a state that an event still carries. It
// reports false when the job is gone (deleted), which ends the stream.
// Other errors are logged and left to the next tick.
func (js *jobStream) reread(ctx context.Context) bool {
	for drained := false; !drained && !js.done(); {
		select {
		case ev, ok := <-js.sub.Events():
			if !ok {
				return false
			}
			js.offer(ev.Job)
		default:
			drained = true
		}
	}
	if js.done() {
		return true
	}
	job, err := js.s.svc.Get(ctx, js.id)
	switch {
	case errors.Is(err, domain.ErrNotFound):
		return false
	case err != nil:
		if ctx.Err() == nil {
			js.s.logger.DebugContext(ctx, "http: job events: read job", slog.String("job", js.id.String()), slog.Any("error", err))
		}
		return true
	}
	js.offer(job)
	return true
}

// newerState reports whether next is a later state of the job than last,
// so that a stream neither repeats a state nor goes back to an older one
// when an event and a fresh read cross. A terminal state is the last one,
// even within the same microsecond; so is a later progress report, in case
// a store writes progress without moving UpdatedAt.
func newerState(last, next *domain.Job) bool {
	switch {
	case next.UpdatedAt.After(last.UpdatedAt):
		return true
	case next.UpdatedAt.Equal(last.UpdatedAt):
		return (next.Status.IsTerminal() && !last.Status.IsTerminal()) ||
			(next.Progress != nil && (last.Progress == nil || next.Progress.UpdatedAt.After(last.Progress.UpdatedAt)))
	}
	return false
}
