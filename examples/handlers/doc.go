// Package handlers holds the sample and demo job handlers of Troupe.
//
// `troupe serve` registers all of them unless it runs with --demo=false, so a
// fresh server can do something useful and be tested from outside:
//
//   - the samples, send_email, generate_report and process_file, decode a
//     typed payload, validate it, then simulate a few hundred milliseconds of
//     work;
//   - the demo handlers, noop, sleep, flaky and panic, exercise the runtime:
//     throughput, cancellation, retries and panic recovery.
//
// They are also a model for writing your own handler. Each one checks its
// context before it starts and waits on ctx.Done() instead of sleeping, so a
// canceled job or a stopping system is never held up; each one returns
// domain.Permanent for a payload that can never succeed, so the job fails at
// once instead of burning its retries; and none of them keeps state between
// attempts, because delivery is at least once.
package handlers
