// Package domain is what Troupe is: the Job and its Status, the rules of the
// job's life, the error kinds, the Handler that user code implements and the
// Store port that every persistence backend implements.
//
// It performs no I/O and imports nothing from this module, so every other
// package can depend on it and it can be tested without an actor system.
//
// The job's life:
//
//	          submit                      a worker picks it up
//	(new) ───────────► pending ─────────────────────────► running
//	                     │  ▲                                │
//	             cancel  │  │ retry: attempts < maxAttempts, ├──► completed
//	                     │  │ after a backoff                ├──► failed   (attempts used up,
//	                     ▼  └────────────────────────────────┤              or a permanent error)
//	                  canceled ◄──────── cancel ─────────────┘
//
// Completed, failed and canceled are terminal: nothing leaves them. The edge
// from running back to pending is the retry edge; the job keeps its ID, its
// attempt count and its last error, and gets a RunAt in the future.
package domain
