// Package leaktest holds the goroutine-leak checks that every package
// running an actor system shares. It is for tests only.
package leaktest

import "go.uber.org/goleak"

// ProtoactorOptions ignores the one goroutine that legitimately outlives
// an actor system: protoactor throttles dead-letter logging with a ticker
// goroutine that lives up to a second after the dead letter. Its name
// depends on inlining (NewThrottle inlined into NewDeadLetter under -race).
func ProtoactorOptions() []goleak.Option {
	return []goleak.Option{
		goleak.IgnoreTopFunction("github.com/asynkron/protoactor-go/actor.NewThrottle.func1.1"),
		goleak.IgnoreTopFunction("github.com/asynkron/protoactor-go/actor.NewThrottle.func2.1"),
		goleak.IgnoreTopFunction("github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1"),
	}
}
