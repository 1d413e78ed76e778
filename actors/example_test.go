package actors_test

import (
	"context"
	"fmt"

	"github.com/troupe-go/troupe/actors"
	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/persistence/memstore"
)

// A System on the memory store: register a handler, start, submit, wait for
// the job through the event stream, stop.
func ExampleSystem() {
	ctx := context.Background()
	sys, err := actors.New(memstore.New(), actors.WithWorkers(2))
	if err != nil {
		panic(err)
	}
	_ = sys.Register("hello", domain.HandlerFunc(func(ctx context.Context, payload []byte) error {
		fmt.Printf("hello, %s\n", payload)
		return nil
	}))
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
	job, err := sys.Submit(ctx, actors.SubmitParams{Type: "hello", Payload: []byte("world")})
	if err != nil {
		panic(err)
	}
	for ev := range events.C {
		if ev.Job.ID == job.ID && ev.Job.Status.IsTerminal() {
			fmt.Println(ev.Job.Status)
			break
		}
	}
	// Output:
	// hello, world
	// completed
}
