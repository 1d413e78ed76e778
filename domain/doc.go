// Package domain is what Troupe is: the Job and its Status, the rules of the
// job's life, the error kinds, the Handler that user code implements and the
// Store port that every persistence backend implements.
//
// It performs no I/O and imports nothing from this module, so every other
// package can depend on it and it can be tested without an actor system.
//
// The job's life:
//
//	 submit for later                  due             a worker picks it up
//	(new) ───────► scheduled ─────────────► pending ─────────────────────► running
//	  │  submit now   │  ▲                    ▲                               │
//	  └───────────────┼──┼────────────────────┘                               ├──► completed
//	          cancel  │  └── retry after a backoff ◄──────────────────────────┤
//	                  ▼                                                       ├──► failed   (attempts used up,
//	               canceled ◄──── cancel (from scheduled, pending, running) ──┘              or a permanent error)
//
// Completed, failed and canceled are terminal: nothing leaves them. A failed
// attempt with attempts left waits out its backoff as scheduled (or goes
// straight back to pending when there is none); the job keeps its ID, its
// attempt count and its last error. An attempt the process ended (a crash,
// a stop) goes back to pending.
package domain
