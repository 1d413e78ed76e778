package actors

import "sync"

// goroutinePool runs actors' mailboxes on long-lived goroutines.
// Protoactor's default dispatcher starts a goroutine each time an idle
// mailbox gets a message; with an actor per job that is several goroutine
// starts per job, and each new goroutine grows its stack again through
// the deep call chains of a mailbox run (a third of the CPU of a no-op
// burn-down went to stack growth). A pooled goroutine keeps its grown stack.
//
// Schedule hands work to an idle pooled goroutine when there is one and
// otherwise starts a goroutine as before, so a job actor blocked on a
// store write never delays another actor.
//
// An idle goroutine waits on the work channel alone: a select that also
// watched a stop channel locked both on every hand-off, and every pooled
// goroutine contended for the stop channel's lock (a fifth of a no-op
// burn-down's CPU). close stops them with a nil function each instead.
type goroutinePool struct {
	work       chan func()
	size       int
	wg         sync.WaitGroup
	throughput int
}

func newGoroutinePool(size, throughput int) *goroutinePool {
	p := &goroutinePool{work: make(chan func()), size: size, throughput: throughput}
	p.wg.Add(size)
	for range size {
		go p.loop()
	}
	return p
}

func (p *goroutinePool) loop() {
	defer p.wg.Done()
	for fn := range p.work {
		if fn == nil {
			return
		}
		fn()
	}
}

// Schedule implements actor.Dispatcher.
func (p *goroutinePool) Schedule(fn func()) {
	select {
	case p.work <- fn:
	default:
		go fn()
	}
}

// Throughput implements actor.Dispatcher: how many messages a mailbox
// processes before yielding its goroutine.
func (p *goroutinePool) Throughput() int { return p.throughput }

// close stops the pooled goroutines once they finish what they run. Work
// scheduled after it runs on goroutines of its own, as when all are busy.
func (p *goroutinePool) close() {
	for range p.size {
		p.work <- nil
	}
	p.wg.Wait()
}
