package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	nethttp "net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"

	"github.com/troupe-go/troupe/actors"
	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/examples/handlers"
)

// memoryConfig is a configuration for in-process servers: memory store, a
// free port, few workers.
func memoryConfig() Config {
	cfg := DefaultConfig()
	cfg.Store = StoreMemory
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.Workers = 2
	return cfg
}

// startMain runs an in-process server and closes it when the test ends.
func startMain(t *testing.T, cfg Config) *Main {
	t.Helper()
	require.NoError(t, cfg.Validate())
	m := NewMain(cfg, slog.New(slog.DiscardHandler))
	require.NoError(t, m.Run(t.Context()))
	t.Cleanup(func() { require.NoError(t, m.Close(context.Background())) })
	return m
}

func TestServeGraphValidates(t *testing.T) {
	t.Parallel()
	for _, store := range Stores() {
		for _, demo := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/demo=%t", store, demo), func(t *testing.T) {
				t.Parallel()
				cfg := memoryConfig()
				cfg.Store, cfg.Demo = store, demo
				cfg.DataDir, cfg.DatabaseURL = t.TempDir(), "postgres://localhost/troupe"
				m := NewMain(cfg, slog.New(slog.DiscardHandler))
				// ValidateApp runs no constructor, so no store is opened.
				require.NoError(t, fx.ValidateApp(m.Options(t.Context())))
			})
		}
	}
}

func TestMainRunClose(t *testing.T) {
	t.Parallel()

	t.Run("serves the demo handlers, then stops", func(t *testing.T) {
		t.Parallel()
		m := startMain(t, memoryConfig())
		require.NotEmpty(t, m.Addr())
		require.ElementsMatch(t, []domain.JobType{
			handlers.TypeSendEmail, handlers.TypeGenerateReport, handlers.TypeProcessFile,
			handlers.TypeNoop, handlers.TypeSleep, handlers.TypeFlaky, handlers.TypePanic,
		}, m.System().JobTypes())

		api := newAPIClient(t, "http://"+m.Addr())
		job := api.submit("noop", `{}`, 0)
		api.waitStatus(job.ID, "completed")
		api.mustCall(nethttp.MethodGet, "/health", "", nethttp.StatusOK)

		require.NoError(t, m.Close(t.Context()))
		require.Empty(t, m.Addr())
		require.ErrorIs(t, m.store.Ping(t.Context()), domain.ErrClosed, "the store is closed")
		require.NoError(t, m.Close(t.Context()), "a second Close does nothing")
	})

	t.Run("without demo handlers", func(t *testing.T) {
		t.Parallel()
		cfg := memoryConfig()
		cfg.Demo = false
		m := startMain(t, cfg)
		require.Empty(t, m.System().JobTypes())
	})

	t.Run("logs each step of start and stop", func(t *testing.T) {
		t.Parallel()
		var logs logBuffer
		m := NewMain(memoryConfig(), slog.New(slog.NewJSONHandler(&logs, nil)))
		require.NoError(t, m.Run(t.Context()))
		require.NoError(t, m.Close(t.Context()))
		var order []string
		for _, msg := range []string{
			"starting troupe", "opening store", "store opened", "job system started", "troupe started",
			"troupe stopping", "job system stopped", "closing store", "store closed", "troupe stopped",
		} {
			_, ok := logs.find(msg)
			require.True(t, ok, "no %q in the log:\n%s", msg, logs.String())
			order = append(order, msg)
		}
		out := logs.String()
		for i := 1; i < len(order); i++ {
			require.Less(t, strings.Index(out, `"msg":"`+order[i-1]+`"`), strings.Index(out, `"msg":"`+order[i]+`"`),
				"%q comes before %q", order[i-1], order[i])
		}
		require.NotContains(t, out, `"component":"fx"`, "fx's events are at debug")
	})

	t.Run("an address in use is a start error and the store is closed", func(t *testing.T) {
		t.Parallel()
		var lc net.ListenConfig
		ln, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
		require.NoError(t, err)
		t.Cleanup(func() { _ = ln.Close() })
		cfg := memoryConfig()
		cfg.HTTPAddr = ln.Addr().String()
		m := NewMain(cfg, slog.New(slog.DiscardHandler))
		err = m.Run(t.Context())
		require.ErrorContains(t, err, "address already in use")
		require.ErrorIs(t, m.store.Ping(t.Context()), domain.ErrClosed)
	})

	t.Run("a badger store in a directory in use fails to open", func(t *testing.T) {
		t.Parallel()
		cfg := memoryConfig()
		cfg.Store, cfg.DataDir = StoreBadger, t.TempDir()
		startMain(t, cfg)
		second := NewMain(cfg, slog.New(slog.DiscardHandler))
		err := second.Run(t.Context())
		require.ErrorContains(t, err, "data directory "+cfg.DataDir+" is in use by another troupe process")
		require.NotContains(t, err.Error(), "could not build arguments", "fx's wrapping is dropped")
	})

	t.Run("badger keeps jobs across a restart", func(t *testing.T) {
		t.Parallel()
		cfg := memoryConfig()
		cfg.Store, cfg.DataDir = StoreBadger, t.TempDir()
		m := startMain(t, cfg)
		api := newAPIClient(t, "http://"+m.Addr())
		job := api.submit("noop", `{}`, 0)
		api.waitStatus(job.ID, "completed")
		require.NoError(t, m.Close(t.Context()))

		m = startMain(t, cfg)
		got, err := m.System().Get(t.Context(), uuid.MustParse(job.ID))
		require.NoError(t, err)
		require.Equal(t, domain.StatusCompleted, got.Status)
	})
}

// fakeSignals stands in for the process's signal handling.
type fakeSignals struct {
	mu    sync.Mutex
	ch    chan<- os.Signal
	ready chan struct{}
}

func newFakeSignals() *fakeSignals { return &fakeSignals{ready: make(chan struct{})} }

func (f *fakeSignals) notify(c chan<- os.Signal) func() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ch = c
	close(f.ready)
	return func() {}
}

func (f *fakeSignals) send(sig os.Signal) {
	<-f.ready
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ch <- sig
}

// testEnv returns an environment for in-process commands.
func testEnv(environ ...string) (*environment, *bytes.Buffer, *logBuffer, *fakeSignals) {
	var stdout bytes.Buffer
	stderr := &logBuffer{}
	sigs := newFakeSignals()
	return &environment{
		stdout:        &stdout,
		stderr:        stderr,
		environ:       environ,
		notifySignals: sigs.notify,
		exit:          func(code int) { panic("unexpected exit") },
	}, &stdout, stderr, sigs
}

func TestServeCommand(t *testing.T) {
	t.Parallel()

	t.Run("stops gracefully on a signal and exits 0", func(t *testing.T) {
		t.Parallel()
		env, _, stderr, sigs := testEnv("TROUPE_STORE=memory")
		code := make(chan int, 1)
		go func() {
			code <- run(t.Context(), []string{"serve", "--http-addr", "127.0.0.1:0", "--workers", "1"}, env)
		}()
		waitFor(t, waitTimeout, "the server to start", func() (bool, error) {
			_, ok := stderr.find("troupe started")
			return ok, errNotYet
		})
		sigs.send(syscall.SIGTERM)
		require.Equal(t, 0, <-code, stderr.String())
		_, ok := stderr.find("signal received: shutting down gracefully; send it again to exit at once")
		require.True(t, ok)
		_, ok = stderr.find("troupe stopped")
		require.True(t, ok)
	})

	t.Run("a bad option exits 1 with one line naming it", func(t *testing.T) {
		t.Parallel()
		for _, tt := range []struct {
			args    []string
			environ []string
			want    string
		}{
			{args: []string{"serve", "--workers", "abc"}, want: `troupe: invalid argument "abc" for "--workers" flag`},
			{args: []string{"serve"}, environ: []string{"TROUPE_WORKERS=abc"}, want: `troupe: invalid TROUPE_WORKERS "abc": want a whole number`},
			{args: []string{"serve"}, environ: []string{"TROUPE_STORE=x", "TROUPE_LOG_LEVEL=loud"}, want: `troupe: invalid TROUPE_STORE "x": must be one of badger, memory, postgres; invalid TROUPE_LOG_LEVEL "loud"`},
			{args: []string{"serve", "--store", "postgres"}, want: "troupe: TROUPE_DATABASE_URL is required when --store=postgres"},
			{args: []string{"serve", "extra"}, want: `troupe: unknown command "extra" for "troupe serve"`},
		} {
			env, stdout, stderr, _ := testEnv(tt.environ...)
			require.Equal(t, 1, run(t.Context(), tt.args, env))
			require.Empty(t, stdout.String())
			require.True(t, strings.HasPrefix(stderr.String(), tt.want), "%v: got %q", tt.args, stderr.String())
			require.Equal(t, 1, strings.Count(stderr.String(), "\n"), "one line: %q", stderr.String())
		}
	})

	t.Run("help documents every option", func(t *testing.T) {
		t.Parallel()
		env, stdout, _, _ := testEnv()
		require.Equal(t, 0, run(t.Context(), []string{"serve", "--help"}, env))
		for _, f := range configFields() {
			require.Contains(t, stdout.String(), "--"+flagName(f.key))
			require.Contains(t, stdout.String(), envName(f.key))
		}
		require.Contains(t, stdout.String(), "--config")

		env, stdout, _, _ = testEnv()
		require.Equal(t, 0, run(t.Context(), []string{"--help"}, env))
		for _, cmd := range []string{"serve", "submit", "get", "list", "cancel", "version"} {
			require.Contains(t, stdout.String(), cmd)
		}
	})

	t.Run("version", func(t *testing.T) {
		t.Parallel()
		env, stdout, _, _ := testEnv()
		require.Equal(t, 0, run(t.Context(), []string{"version"}, env))
		require.True(t, strings.HasPrefix(stdout.String(), "troupe "), stdout.String())
	})
}

func TestOneLine(t *testing.T) {
	t.Parallel()
	require.Equal(t, "a; b", oneLine("a\nb\n"))
	require.Equal(t, "connect: 10.0.0.1: refused; 10.0.0.2: refused", oneLine("connect:\n\t10.0.0.1: refused\n\t10.0.0.2: refused"))
	require.Equal(t, "one", oneLine("one"))
}

// TestServeGivesTheRuntimeItsSchedulesAndRetention checks serve's wiring
// of the config file's schedules and the retention options: the runtime
// lists the file's schedules as source config and keeps finished jobs as
// configured, and refuses to start on a schedule it cannot run, naming it.
func TestServeGivesTheRuntimeItsSchedulesAndRetention(t *testing.T) {
	t.Parallel()
	cfg := memoryConfig()
	cfg.RetentionCompleted, cfg.RetentionFailed, cfg.RetentionCanceled = time.Hour, 0, 2*time.Hour
	cfg.Schedules = []actors.ScheduleParams{{Name: "from-file", Cron: "@daily", Job: domain.ScheduledJob{Type: "noop"}}}
	m := startMain(t, cfg)
	require.Equal(t, actors.Retention{Completed: time.Hour, Failed: actors.KeepForever, Canceled: 2 * time.Hour}, m.System().Config().Retention)
	infos, err := m.System().Schedules(t.Context())
	require.NoError(t, err)
	require.Len(t, infos, 1)
	require.Equal(t, "from-file", infos[0].Name)
	require.Equal(t, domain.SourceConfig, infos[0].Source)

	cfg = memoryConfig()
	cfg.Schedules = []actors.ScheduleParams{{Name: "unknown-type", Cron: "@daily", Job: domain.ScheduledJob{Type: "nope"}}}
	bad := NewMain(cfg, slog.New(slog.DiscardHandler))
	err = bad.Run(t.Context())
	require.ErrorContains(t, err, `"unknown-type"`)
	require.NoError(t, bad.Close(t.Context()))
}
