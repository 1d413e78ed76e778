package http

import (
	"context"
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/troupe-go/troupe/actors"
	"github.com/troupe-go/troupe/domain"
)

// moduleDeps supplies what Module needs, as cmd would.
func moduleDeps(t *testing.T, cfg Config) fx.Option {
	return fx.Options(
		fx.NopLogger,
		fx.Supply(cfg),
		fx.Provide(
			func() *slog.Logger { return slog.New(slog.DiscardHandler) },
			fx.Annotate(func() *fakeService { return &fakeService{t: t} }, fx.As(new(JobService))),
		),
	)
}

func TestModule(t *testing.T) {
	t.Parallel()

	t.Run("GraphIsComplete", func(t *testing.T) {
		t.Parallel()
		require.NoError(t, fx.ValidateApp(moduleDeps(t, Config{Addr: "127.0.0.1:0"}), Module))
	})

	t.Run("StartsAndStops", func(t *testing.T) {
		t.Parallel()
		var (
			server     *Server
			metrics    actors.Metrics
			registerer prometheus.Registerer
		)
		app := fxtest.New(t, moduleDeps(t, Config{Addr: "127.0.0.1:0"}), Module,
			fx.Populate(&server, &metrics, &registerer))

		app.RequireStart()
		require.NotNil(t, server.Addr(), "OnStart listens")
		h := getHealth(t, newClient(t), server.Addr())
		require.Equal(t, "ok", h.Status)

		// The runtime's Metrics are the ones the server exposes.
		metrics.JobCreated(&domain.Job{Type: "noop", Queue: "email"})
		body := (&testBundle{server: server}).do(t, request{method: "GET", target: "/metrics"}).Body.String()
		require.Contains(t, body, `troupe_jobs_created_total{queue="email",type="noop"} 1`)
		require.NotNil(t, registerer)

		app.RequireStop()
		require.Nil(t, server.Addr(), "OnStop shuts down")
	})

	t.Run("InvalidConfigFailsTheApp", func(t *testing.T) {
		t.Parallel()
		app := fx.New(moduleDeps(t, Config{Addr: "0.0.0.0:0"}), Module)

		require.ErrorIs(t, app.Err(), ErrInsecureAddr)
		require.ErrorIs(t, app.Start(context.Background()), ErrInsecureAddr)
	})
}
