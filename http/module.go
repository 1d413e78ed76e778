package http

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"

	"github.com/troupe-go/troupe/actors"
	"github.com/troupe-go/troupe/domain"
)

// Module serves the API in an fx application.
//
// It needs a Config, a JobService (fx.Provide(http.Runtime) adapts the
// runtime to it) and a *slog.Logger. It
// takes a Backuper if one is provided, for GET /admin/backup.
//
// It provides the Prometheus registry (as *prometheus.Registry and as
// prometheus.Registerer, for other packages' collectors), the *Metrics
// registered there (also as actors.Metrics, for the runtime), and the
// *Server, which it always builds: OnStart listens and serves in the
// background, OnStop shuts down gracefully. Stop hooks run in reverse, so
// a server started after the runtime stops taking requests before it.
var Module = fx.Module("http",
	fx.Provide(
		fx.Annotate(NewRegistry, fx.As(fx.Self()), fx.As(new(prometheus.Registerer))),
		fx.Annotate(NewMetrics, fx.As(fx.Self()), fx.As(new(actors.Metrics))),
		newModuleServer,
	),
	// The server is what the module is for; nothing else asks for it.
	fx.Invoke(func(*Server) {}),
)

// moduleParams are the module server's dependencies.
type moduleParams struct {
	fx.In

	Lifecycle fx.Lifecycle
	Config    Config
	Service   JobService
	Logger    *slog.Logger
	Registry  *prometheus.Registry
	// Backup is what GET /admin/backup streams, when the store can.
	Backup Backuper `optional:"true"`
	// Requests keeps the answers to requests with an Idempotency-Key;
	// without it the header is ignored. The runtime's pruner deletes the
	// expired ones.
	Requests domain.RequestLog `optional:"true"`
}

// newModuleServer builds the Server and ties it to the app's lifecycle.
func newModuleServer(p moduleParams) (*Server, error) {
	opts := []Option{WithLogger(p.Logger), WithRegistry(p.Registry)}
	if p.Backup != nil {
		opts = append(opts, WithBackup(p.Backup))
	}
	if p.Requests != nil {
		opts = append(opts, WithRequestLog(p.Requests))
	}
	s, err := NewServer(p.Config, p.Service, opts...)
	if err != nil {
		return nil, err
	}
	p.Lifecycle.Append(fx.StartStopHook(s.Start, s.Stop))
	return s, nil
}
