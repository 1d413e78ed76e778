package guide_test

import (
	"context"
	"fmt"
	"log/slog"

	"go.uber.org/fx"

	"github.com/troupe-go/troupe/actors"
	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/examples/guide"
	"github.com/troupe-go/troupe/persistence/memstore"
)

// An embedding app builds a System on a store, registers its handlers,
// starts it and submits jobs.
func ExampleChargeCard() {
	ctx := context.Background()
	logger := slog.New(slog.DiscardHandler)
	gateway := newFakeGateway()

	sys, err := actors.New(memstore.New(), actors.WithLogger(logger), actors.WithWorkers(4))
	if err != nil {
		panic(err)
	}
	if err := sys.Register(guide.TypeChargeCard, guide.NewChargeCard(gateway, logger)); err != nil {
		panic(err)
	}
	if err := sys.Start(ctx); err != nil {
		panic(err)
	}
	defer func() {
		if err := sys.Stop(ctx); err != nil {
			panic(err)
		}
	}()

	events := sys.Subscribe(16)
	defer events.Close()
	job, err := sys.Submit(ctx, actors.SubmitParams{
		Type:    guide.TypeChargeCard,
		Payload: []byte(`{"orderId":"A-1001","customerId":"cus_42","amountCents":1999,"currency":"EUR"}`),
	})
	if err != nil {
		panic(err)
	}
	for ev := range events.C {
		if ev.Job.ID == job.ID && ev.Job.Status.IsTerminal() {
			fmt.Println(ev.Job.Status, "after", ev.Job.Attempts, "attempt")
			break
		}
	}
	// Output: completed after 1 attempt
}

// A handler is a plain value: call Execute to see what it does with a
// payload, no runtime needed.
func ExampleChargeCard_Execute() {
	h := guide.NewChargeCard(newFakeGateway(), nil)
	err := h.Execute(context.Background(), []byte(`{"orderId":"A-1001","customerId":"cus_42","amountCents":0,"currency":"EUR"}`))
	fmt.Println(err)
	fmt.Println("permanent:", domain.IsPermanent(err))
	// Output:
	// charge_card: invalid input: field "amountCents" must be positive, got 0
	// permanent: true
}

// An fx app adds actors.Module and registers handlers into its group:
// actors.ProvideHandler for a ready handler value, or a constructor tagged
// with the group for a handler that needs the graph's values.
func Example_fx() {
	var sys *actors.System
	app := fx.New(
		fx.NopLogger,
		fx.Supply(actors.Config{Workers: 4}, slog.New(slog.DiscardHandler)),
		fx.Provide(
			fx.Annotate(memstore.New, fx.As(new(domain.Store))),
			func() guide.Gateway { return newFakeGateway() },
		),
		actors.Module,
		fx.Provide(fx.Annotate(
			func(gateway guide.Gateway, logger *slog.Logger) actors.Registration {
				return actors.Registration{Type: guide.TypeChargeCard, Handler: guide.NewChargeCard(gateway, logger)}
			},
			fx.ResultTags(`group:"`+actors.HandlersGroup+`"`),
		)),
		actors.ProvideHandler("noop", domain.HandlerFunc(func(context.Context, []byte) error { return nil })),
		fx.Populate(&sys),
	)
	ctx := context.Background()
	if err := app.Start(ctx); err != nil {
		panic(err)
	}
	defer func() {
		if err := app.Stop(ctx); err != nil {
			panic(err)
		}
	}()
	fmt.Println(sys.JobTypes())
	// Output: [charge_card noop]
}
