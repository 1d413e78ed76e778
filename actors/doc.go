// Package actors is Troupe's runtime: the System facade that embedders use,
// and behind it the actors that do the work: one supervised job actor per
// live job, the job supervisor, the dispatcher that owns the ready queues
// (one per named queue, by priority then RunAt, served round-robin), a
// fixed pool of worker actors that run handlers, and the scheduler that
// makes jobs due later pending when their time comes.
//
// A job waiting in a queue is data, not an actor: the dispatcher activates
// a job actor only when the job has something to do (run, or be canceled),
// so a backlog costs bytes per job. A job waiting for a later RunAt (run
// later, or a retry's backoff) costs the runtime nothing: it is scheduled
// in the store, and the scheduler keeps only the earliest RunAt and one
// timer.
//
// Beside the actors run two services that only call the store and Submit.
// The schedule service submits the jobs of periodic schedules (Schedule):
// each slot's job carries the slot's unique key, so any number of nodes,
// or a node restarted between submitting and recording, store one job per
// slot, with no leader. The pruner deletes finished jobs once their
// status's retention (Config.Retention) has passed, and expired
// idempotency records, in bounded batches with pauses between them.
//
// Job types may also be run by external workers, in any language, through
// the worker protocol (ClaimJobs, Heartbeat, CompleteJob, FailJob,
// ReportOutcomes). On a local store the dispatcher keeps their ready jobs
// apart from the Go workers' queues, in the same order, and each claimed
// job's actor holds the worker's lease; on a shared store the lease lives
// in the store, so a worker may report through any node, and a lapsed
// lease is rescued like a dead node's.
package actors
