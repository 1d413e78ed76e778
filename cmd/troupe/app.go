package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"go.uber.org/dig"
	"go.uber.org/fx"
	"go.uber.org/fx/fxevent"

	"github.com/troupe-go/troupe/actors"
	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/examples/handlers"
	"github.com/troupe-go/troupe/http"
	"github.com/troupe-go/troupe/internal/storeopen"
	"github.com/troupe-go/troupe/persistence/badgerstore"
	"github.com/troupe-go/troupe/webhook"
)

// StartTimeout bounds the start of the server. Start recovers every
// unfinished job from the store, and a backlog of millions takes a while to
// stream, so it is generous.
const StartTimeout = 10 * time.Minute

// postgresOpenTimeout bounds connecting to PostgreSQL and migrating its
// schema at start.
const postgresOpenTimeout = time.Minute

// stopMargin is added to the stop timeout for what has no timeout of its
// own: draining the dispatcher, flushing and closing the store.
const stopMargin = 30 * time.Second

// StopTimeout bounds the stop of a server configured with cfg: the API's
// requests in flight, then the running jobs, then the hand-back of the
// jobs still running, then the store.
func StopTimeout(cfg Config) time.Duration {
	return cfg.HTTPConfig().ShutdownTimeout + cfg.ShutdownTimeout + cfg.ActorsConfig().HandBackTimeout + stopMargin
}

// Main is the server that `troupe serve` runs, as a value that tests can
// run in-process with exactly the wiring of the binary. Set Config and
// Logger, call Run, then Close.
type Main struct {
	// Config is the validated configuration.
	Config Config
	// Logger is shared by every component.
	Logger *slog.Logger

	app    *fx.App
	server *http.Server
	system *actors.System

	storeMu     sync.Mutex
	store       domain.Store
	storeClosed bool
}

// NewMain returns a server for cfg that logs to logger. It does nothing
// until Run.
func NewMain(cfg Config, logger *slog.Logger) *Main {
	return &Main{Config: cfg, Logger: logger}
}

// Run builds the server and starts it: the store is opened, unfinished
// jobs are recovered, the workers start and the API listens. It returns
// once the server is serving, or with the error that stopped it, after
// undoing whatever had started. ctx bounds the start only; Close stops.
func (m *Main) Run(ctx context.Context) error {
	if m.app != nil {
		return errors.New("troupe is already running")
	}
	m.Logger.InfoContext(ctx, "starting troupe", slog.String("version", buildVersion()), slog.Any("config", m.Config))
	app := fx.New(m.Options(ctx), fx.Populate(&m.server, &m.system))
	if err := app.Err(); err != nil {
		// No hook has run, so an open store is closed here. dig's chain of
		// "could not build arguments for function ..." names code; the root
		// cause names the problem.
		return errors.Join(dig.RootCause(err), m.closeStore(ctx))
	}
	startCtx, cancel := context.WithTimeout(ctx, app.StartTimeout())
	defer cancel()
	if err := app.Start(startCtx); err != nil {
		// fx rolls back what had started with the start's context; when
		// that context ended (a signal, the start timeout) the rollback
		// stops at once, so stop again with a fresh one: the runtime hands
		// its jobs back and the store closes cleanly. Closing twice is
		// harmless.
		stopCtx, cancelStop := context.WithTimeout(context.WithoutCancel(ctx), app.StopTimeout())
		defer cancelStop()
		return errors.Join(err, app.Stop(stopCtx), m.closeStore(stopCtx))
	}
	m.app = app
	m.Logger.InfoContext(ctx, "troupe started",
		slog.String("addr", m.Addr()),
		slog.String("store", m.Config.Store),
		slog.Int("workers", m.Config.Workers),
		slog.Any("jobTypes", m.system.JobTypes()))
	return nil
}

// Addr returns the address the API listens on, with the real port when the
// configuration asked for port 0, or "" when it is not serving.
func (m *Main) Addr() string {
	if m.server == nil || m.server.Addr() == nil {
		return ""
	}
	return m.server.Addr().String()
}

// System returns the runtime once Run has succeeded, for tests.
func (m *Main) System() *actors.System { return m.system }

// Close stops the server in order: the API stops taking requests, running
// jobs get Config.ShutdownTimeout to finish, those still running are handed
// back to the queue, then the store is flushed and closed. ctx can cut the
// stop short; StopTimeout bounds it anyway. Closing a server that is not
// running does nothing.
func (m *Main) Close(ctx context.Context) error {
	if m.app == nil {
		return nil
	}
	app := m.app
	m.app = nil
	m.Logger.InfoContext(ctx, "troupe stopping",
		slog.String("shutdownTimeout", m.Config.ShutdownTimeout.String()))
	ctx, cancel := context.WithTimeout(ctx, app.StopTimeout())
	defer cancel()
	if err := app.Stop(ctx); err != nil {
		// fx skips the hooks left when ctx ends; the store must close
		// anyway, so that its last writes are synced.
		return errors.Join(fmt.Errorf("stop: %w", err), m.closeStore(context.WithoutCancel(ctx)))
	}
	m.Logger.InfoContext(ctx, "troupe stopped")
	return nil
}

// Options returns the fx graph of the server: configuration → logger →
// store → actor system (with the handlers) → HTTP API. Stop hooks run in
// reverse order of start, so the API stops first, then the runtime hands
// running jobs back, and the store closes last. ctx bounds the opening of
// the store.
func (m *Main) Options(ctx context.Context) fx.Option {
	cfg := m.Config
	opts := []fx.Option{
		fx.WithLogger(func() fxevent.Logger {
			// fx's own events are for debugging the wiring. Its errors are
			// returned by New, Start and Stop and reported once from there.
			l := &fxevent.SlogLogger{Logger: m.Logger.With(slog.String("component", "fx"))}
			l.UseLogLevel(slog.LevelDebug)
			l.UseErrorLevel(slog.LevelDebug)
			return l
		}),
		fx.StartTimeout(StartTimeout),
		fx.StopTimeout(StopTimeout(cfg)),
		fx.Supply(m.Logger, cfg.ActorsConfig(), cfg.HTTPConfig()),
		m.storeOption(ctx),
		// GET /admin/backup streams the store's backup, or says why not.
		fx.Provide(m.backupSource),
		// The config file's schedules, which Start applies (and deletes
		// those of the file no longer declared).
		fx.Supply(actors.ConfigSchedules(cfg.scheduleParams())),
		actors.Module,
		// The API sees the runtime only through its JobService port.
		fx.Provide(http.Runtime),
		http.Module,
	}
	if len(cfg.Queues) > 0 {
		// Stored as the app is built, so before any start hook: the
		// runtime's start reads them with every queue's settings.
		opts = append(opts, fx.Invoke(func(store domain.Store) error { return m.applyQueues(ctx, store) }))
	}
	if len(cfg.Webhooks) > 0 {
		// Registered before the runtime starts, like the Go handlers.
		opts = append(opts, fx.Invoke(m.registerWebhooks))
	}
	if cfg.Demo {
		opts = append(opts, fx.Provide(fx.Annotate(
			demoHandlers,
			fx.ResultTags(fmt.Sprintf(`group:"%s,flatten"`, actors.HandlersGroup)),
		)))
	}
	return fx.Options(opts...)
}

// demoHandlers registers the sample and demo handlers of examples/handlers.
func demoHandlers(logger *slog.Logger) []actors.Registration {
	all := handlers.All(logger, actors.AttemptFromContext)
	regs := make([]actors.Registration, 0, len(all))
	for _, typ := range slices.Sorted(maps.Keys(all)) {
		regs = append(regs, actors.Registration{Type: typ, Handler: all[typ]})
	}
	return regs
}

// registerWebhooks registers the config file's webhooks with the runtime.
// An error names the entry; the webhook package's errors show no secret.
func (m *Main) registerWebhooks(sys *actors.System) error {
	for i, w := range m.Config.Webhooks {
		if err := webhook.Register(sys, w.webhookConfig(), webhook.WithLogger(m.Logger)); err != nil {
			return fmt.Errorf("%s[%d] (%q): %w", fileWebhookKey, i, w.Type, err)
		}
	}
	return nil
}

// demoTypes lists the job types of the demo handlers, sorted.
func demoTypes() []domain.JobType {
	return slices.Sorted(maps.Keys(handlers.All(nil, actors.AttemptFromContext)))
}

// storeOption provides the configured store as domain.Store and
// domain.RequestLog (and, on PostgreSQL, as domain.SharedQueue), so that nothing downstream knows
// which one it is. The constructor registers a stop hook that closes the
// store; it runs after the runtime's, since the runtime depends on the
// store. ctx bounds the opening.
func (m *Main) storeOption(ctx context.Context) fx.Option {
	if !slices.Contains(storeopen.Kinds(), m.Config.Store) {
		return fx.Error(fmt.Errorf("unknown store %q", m.Config.Store))
	}
	open := func(lc fx.Lifecycle) (storeopen.Store, error) {
		m.logOpening(ctx)
		ctx := ctx
		if m.Config.Store == StorePostgres {
			// A database that does not answer must fail the start, not hang it.
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, postgresOpenTimeout)
			defer cancel()
		}
		s, err := storeopen.Open(ctx, storeopen.Options{
			Kind:         m.Config.Store,
			DataDir:      m.Config.DataDir,
			Durability:   badgerstore.Durability(m.Config.Durability),
			MinFreeBytes: m.Config.MinFreeBytes,
			DatabaseURL:  m.Config.DatabaseURL,
			Schema:       m.Config.DatabaseSchema,
			MaxConns:     int32(m.Config.DatabaseMaxConns),
			Logger:       m.Logger,
		})
		if errors.Is(err, badgerstore.ErrDirInUse) {
			return storeopen.Store{}, fmt.Errorf("data directory %s is in use by another troupe process: stop it, or set %s to another directory",
				m.Config.DataDir, envName("data_dir"))
		}
		if m.Config.Store == StoreBadger && errors.Is(err, domain.ErrStorageFull) {
			return storeopen.Store{}, fmt.Errorf("%w; free space on that disk (or lower %s, not below %d) and start again",
				err, envName("min_free_bytes"), badgerstore.MinFreeBytesFor(badgerstore.MemTableSizeMin))
		}
		if err != nil {
			return storeopen.Store{}, err
		}
		trackStore(ctx, m, lc, s.Store)
		return s, nil
	}
	opts := []fx.Option{
		fx.Provide(open),
		fx.Provide(func(s storeopen.Store) domain.Store { return s.Store }),
		// The API keeps the answers to Idempotency-Key requests in the
		// store, so that they survive a crash and every node sees them.
		fx.Provide(func(s storeopen.Store) domain.RequestLog {
			log, ok := s.Store.(domain.RequestLog)
			if !ok {
				// Every store implements it; should one not, the API still
				// serves, without the header's promise, and says so.
				m.Logger.WarnContext(ctx, "the store keeps no idempotency records: the Idempotency-Key header is ignored",
					slog.String("store", m.Config.Store))
				return nil
			}
			return log
		}),
	}
	if m.Config.Store == StorePostgres {
		// On PostgreSQL the queue lives in the database and every node
		// claims from it, so several `troupe serve` share one queue.
		opts = append(opts, fx.Provide(func(s storeopen.Store) domain.SharedQueue { return s.Shared }))
	}
	return fx.Options(opts...)
}

func (m *Main) logOpening(ctx context.Context) {
	attrs := []any{slog.String("store", m.Config.Store)}
	if m.Config.Store == StoreBadger {
		attrs = append(attrs, slog.String("dataDir", m.Config.DataDir))
	}
	m.Logger.InfoContext(ctx, "opening store", attrs...)
}

// trackStore remembers the open store, so that it is closed even when the
// app fails to build, and closes it when the app stops.
func trackStore[S domain.Store](ctx context.Context, m *Main, lc fx.Lifecycle, s S) S {
	m.storeMu.Lock()
	m.store, m.storeClosed = s, false
	m.storeMu.Unlock()
	m.Logger.InfoContext(ctx, "store opened", slog.String("store", m.Config.Store))
	lc.Append(fx.StopHook(m.closeStore))
	return s
}

// closeStore closes the store once, whether the app stops or fails to build.
func (m *Main) closeStore(ctx context.Context) error {
	m.storeMu.Lock()
	defer m.storeMu.Unlock()
	if m.store == nil || m.storeClosed {
		return nil
	}
	m.storeClosed = true
	m.Logger.InfoContext(ctx, "closing store", slog.String("store", m.Config.Store))
	if err := m.store.Close(); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	m.Logger.InfoContext(ctx, "store closed", slog.String("store", m.Config.Store))
	return nil
}
