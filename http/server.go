package http

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	nethttp "net/http"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/troupe-go/troupe/domain"
)

// Timeouts of the underlying net/http server. They bound how long a slow or
// idle client can hold a connection; every request of this API is short.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = time.Minute
	writeTimeout      = time.Minute
	idleTimeout       = 2 * time.Minute
)

// Option configures a Server's optional collaborators.
type Option interface {
	apply(*options)
}

type options struct {
	logger     *slog.Logger
	registry   Registry
	backup     Backuper
	requestLog domain.RequestLog
}

type requestLogOption struct{ log domain.RequestLog }

func (o requestLogOption) apply(opts *options) { opts.requestLog = o.log }

// WithRequestLog sets where the answers to requests with an
// Idempotency-Key are kept: the store's, so that they survive a crash and
// every node sharing the store sees them. Without it the header is
// ignored.
func WithRequestLog(log domain.RequestLog) Option { return requestLogOption{log: log} }

type loggerOption struct{ logger *slog.Logger }

func (o loggerOption) apply(opts *options) { opts.logger = o.logger }

// WithLogger sets the logger for request lines and internal errors.
// Defaults to slog.Default().
func WithLogger(l *slog.Logger) Option { return loggerOption{logger: l} }

type registryOption struct{ registry Registry }

func (o registryOption) apply(opts *options) { opts.registry = o.registry }

// WithRegistry sets where the server registers its gauges and what GET
// /metrics serves. Pass the registry given to NewMetrics so that the job
// counters appear too. Defaults to a fresh NewRegistry(), without them.
func WithRegistry(reg Registry) Option { return registryOption{registry: reg} }

// Server is Troupe's HTTP API. Build it with NewServer; use Handler in
// tests, or Start and Stop to serve on Config.Addr.
type Server struct {
	cfg          Config
	svc          JobService
	logger       *slog.Logger
	registry     Registry
	backup       Backuper
	requestLog   domain.RequestLog
	tokens       tokenSet
	workerTokens tokenSet
	requests     *requestMetrics
	workers      *workerMetrics
	bodyBinding  jsonBinding
	queryBinding queryBinding
	engine       *gin.Engine
	// streams ends the event streams on Stop; statsCache shares one stats
	// sample among them.
	streams    streamControl
	statsCache statsCache

	// readTimeout and writeTimeout are the net/http server's; fields so
	// that a test can shorten them.
	readTimeout, writeTimeout time.Duration

	mu       sync.Mutex
	server   *nethttp.Server
	listener net.Listener
	served   chan struct{} // closed when Serve returns
}

// NewServer builds the API over svc. It fills cfg's defaults and validates
// it, so an open API on a non-loopback address fails here with
// ErrInsecureAddr. It registers the runtime gauges in the registry, and
// fails if they are already there.
func NewServer(cfg Config, svc JobService, opts ...Option) (*Server, error) {
	if svc == nil {
		panic("http: NewServer: nil JobService")
	}
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var o options
	for _, opt := range opts {
		opt.apply(&o)
	}
	if o.logger == nil {
		o.logger = slog.Default()
	}
	if o.registry == nil {
		o.registry = NewRegistry()
	}
	v := newValidator()
	s := &Server{
		cfg:          cfg,
		svc:          svc,
		logger:       o.logger,
		registry:     o.registry,
		backup:       o.backup,
		requestLog:   o.requestLog,
		tokens:       newTokenSet(cfg.APITokens),
		workerTokens: newTokenSet(cfg.WorkerTokens),
		bodyBinding:  jsonBinding{validate: v},
		queryBinding: queryBinding{validate: v},
		readTimeout:  readTimeout,
		writeTimeout: writeTimeout,
	}
	if err := registerStatsGauges(s.registry, svc, s.logger); err != nil {
		return nil, err
	}
	requests, err := newRequestMetrics(s.registry)
	if err != nil {
		return nil, err
	}
	s.requests = requests
	if s.workers, err = newWorkerMetrics(s.registry); err != nil {
		return nil, err
	}
	engine, err := s.newEngine()
	if err != nil {
		return nil, err
	}
	s.engine = engine
	return s, nil
}

// newEngine builds the router. gin's mode is process-wide; release mode is
// set before gin.New so that gin prints nothing (its debug mode writes a
// banner and every route to stdout). Nothing of gin's default middleware is
// used: logging and recovery are ours, on slog.
func (s *Server) newEngine() (*gin.Engine, error) {
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.HandleMethodNotAllowed = true
	// An API answers the path it is asked for; no redirects to guesses.
	e.RedirectTrailingSlash = false
	e.RedirectFixedPath = false
	// Client IPs in the log are the peers', not whatever a header claims.
	if err := e.SetTrustedProxies(nil); err != nil {
		return nil, fmt.Errorf("http: trusted proxies: %w", err)
	}
	// The order matters: the ID first so that every answer has it, the
	// metrics and the log around recovery so that they see the 500 of a
	// panic.
	e.Use(handleRequestID, s.requests.observe, s.logRequests, s.recoverPanics, s.limitBody)
	e.NoRoute(s.handleNoRoute)
	e.NoMethod(s.handleNoMethod)

	// Every GET route answers HEAD too.
	root := headRouter{e}
	// Open routes: probes, and documentation and the dashboard, which a
	// browser must load before anyone can type a token into them.
	root.GET("/health", s.handleHealth)
	if err := registerDocsRoutes(root); err != nil {
		return nil, err
	}
	if err := registerUIRoutes(root); err != nil {
		return nil, err
	}

	api := headRouter{e.Group("/", s.authenticate)}
	api.GET("/metrics", gin.WrapH(promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{
		ErrorLog:      slogPrintln{s.logger},
		ErrorHandling: promhttp.ContinueOnError,
	})))
	s.registerJobRoutes(api)
	s.registerRetryRoutes(api)
	s.registerStatsRoutes(api)
	s.registerQueueRoutes(api)
	s.registerScheduleRoutes(api)
	s.registerBackupRoutes(api)
	s.registerWorkerRoutes(headRouter{e.Group("/", s.authenticateWorker)})
	// The event streams check the token themselves: EventSource cannot
	// send a header, so they also take it as a query parameter.
	s.registerEventRoutes(root)
	return e, nil
}

// handleNoRoute answers 404 for a path that has no route.
func (s *Server) handleNoRoute(c *gin.Context) {
	writeProblem(c, kindNotFound.problem(fmt.Sprintf("no route for %s %s", c.Request.Method, c.Request.URL.Path), nil))
}

// handleNoMethod answers 405 for a path whose route takes other methods;
// gin has set the Allow header.
func (s *Server) handleNoMethod(c *gin.Context) {
	allow := c.Writer.Header().Get("Allow")
	writeProblem(c, kindMethodNotAllowed.problem(
		fmt.Sprintf("%s is not allowed on %s; allowed: %s", c.Request.Method, c.Request.URL.Path, allow), nil))
}

// Handler returns the API as an http.Handler, for httptest or for mounting
// in another server.
func (s *Server) Handler() nethttp.Handler { return s.engine }

// Start listens on Config.Addr and serves in the background. Listening
// happens before it returns, so an address in use is its error; serving
// errors after that are logged.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.server != nil {
		return errors.New("http: server already started")
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("http: listen on %s: %w", s.cfg.Addr, err)
	}
	srv := &nethttp.Server{
		Handler:           s.engine,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       s.readTimeout,
		WriteTimeout:      s.writeTimeout,
		IdleTimeout:       idleTimeout,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		if err := srv.Serve(ln); !errors.Is(err, nethttp.ErrServerClosed) {
			s.logger.Error("http: serve", slog.Any("error", err))
		}
	}()
	s.server, s.listener, s.served = srv, ln, served

	s.logger.InfoContext(ctx, "http: listening",
		slog.String("addr", ln.Addr().String()),
		slog.Bool("auth", s.tokens.enabled()))
	if host, _, _ := net.SplitHostPort(s.cfg.Addr); !s.tokens.enabled() && !IsLoopback(host) {
		s.logger.WarnContext(ctx, "http: the API is open to the network without tokens (insecure mode)",
			slog.String("addr", ln.Addr().String()))
	}
	return nil
}

// Addr returns the address the server listens on, with the real port when
// Config.Addr asked for port 0, or nil when it is not started.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.listener == nil {
		return nil
	}
	return s.listener.Addr()
}

// Stop ends the event streams, stops accepting connections and waits for
// requests in flight, up to Config.ShutdownTimeout or ctx's end, whichever
// is first; then it closes the connections left, logging that it did. A
// server mounted through Handler only has its streams ended. A stopped
// server can be started again.
func (s *Server) Stop(ctx context.Context) error {
	s.mu.Lock()
	srv, served := s.server, s.served
	s.server, s.listener, s.served = nil, nil, nil
	s.mu.Unlock()
	// Shutdown waits for the requests in flight, and an event stream never
	// ends by itself: end them first, also when the handler is mounted in
	// another server (Handler), whose owner calls Stop before shutting it
	// down. A restart serves streams again.
	s.streams.end()
	defer s.streams.renew()
	if srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		// Requests still in flight after the timeout are cut off: a slow
		// client must not turn a clean stop into a failed one.
		s.logger.WarnContext(ctx, "http: requests still in flight at the shutdown timeout; closing their connections", slog.Any("error", err))
		_ = srv.Close()
	}
	<-served
	s.logger.InfoContext(ctx, "http: stopped")
	return nil
}

// slogPrintln adapts a slog.Logger to promhttp's error log.
type slogPrintln struct{ logger *slog.Logger }

// Println logs the arguments as one error message.
func (l slogPrintln) Println(v ...any) {
	l.logger.Error("http: metrics: " + strings.TrimSuffix(fmt.Sprintln(v...), "\n"))
}
