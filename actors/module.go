package actors

import (
	"context"
	"fmt"
	"log/slog"

	"go.uber.org/fx"

	"github.com/troupe-go/troupe/domain"
)

// HandlersGroup is the fx value group that Module collects handlers from.
const HandlersGroup = "troupe.handlers"

// Registration pairs a job type with its handler, for fx apps.
type Registration struct {
	Type    domain.JobType
	Handler domain.Handler
}

// ProvideHandler registers a handler with the System that Module builds.
func ProvideHandler(typ domain.JobType, h domain.Handler) fx.Option {
	return fx.Supply(fx.Annotated{Group: HandlersGroup, Target: Registration{Type: typ, Handler: h}})
}

// ModuleParams is what Module needs: a store, the configuration and a
// logger; metrics and handlers are optional.
type ModuleParams struct {
	fx.In

	Lifecycle fx.Lifecycle
	Store     domain.Store
	Config    Config
	Logger    *slog.Logger
	Metrics   Metrics        `optional:"true"`
	Handlers  []Registration `group:"troupe.handlers"`
	// Shared, when provided, makes this System a node of a shared store.
	Shared domain.SharedQueue `optional:"true"`
	// Schedules, when provided, are a configuration file's: see
	// WithConfigSchedules.
	Schedules ConfigSchedules `optional:"true"`
}

// ConfigSchedules are the schedules a configuration file declares, for
// Module (fx tells values apart by type).
type ConfigSchedules []ScheduleParams

// Module provides the *System, with its handlers registered, started by
// the fx lifecycle and stopped within Config.ShutdownTimeout. Since stop
// hooks run in reverse, a store provided before it outlives it.
var Module = fx.Module("actors", fx.Provide(NewForFx))

// NewForFx builds the System for Module. It is exported for apps that wire
// fx by hand.
func NewForFx(p ModuleParams) (*System, error) {
	opts := []Option{WithConfig(p.Config), WithLogger(p.Logger), WithConfigSchedules(p.Schedules...)}
	if p.Metrics != nil {
		opts = append(opts, WithMetrics(p.Metrics))
	}
	if p.Shared != nil {
		opts = append(opts, WithSharedQueue(p.Shared))
	}
	sys, err := New(p.Store, opts...)
	if err != nil {
		return nil, err
	}
	for _, r := range p.Handlers {
		if err := sys.Register(r.Type, r.Handler); err != nil {
			return nil, fmt.Errorf("register handlers: %w", err)
		}
	}
	p.Lifecycle.Append(fx.Hook{
		OnStart: sys.Start,
		OnStop: func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, sys.Config().ShutdownTimeout)
			defer cancel()
			return sys.Stop(ctx)
		},
	})
	return sys, nil
}
