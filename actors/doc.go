// Package actors is Troupe's runtime: the System facade that embedders use,
// and behind it the actors that do the work: one supervised job actor per
// live job, the job supervisor, the dispatcher that owns the ready queue, and
// a fixed pool of worker actors that run handlers.
//
// A job waiting in the queue is data, not an actor: the dispatcher activates a
// job actor only when the job has something to do (run, be canceled, wait for
// its retry), so a backlog costs bytes per job.
package actors
