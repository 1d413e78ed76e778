// Package http is Troupe's HTTP API: the gin router, the handlers and their
// JSON DTOs, RFC 9457 problem+json errors, the middleware (request ID,
// request log, panic recovery, body limit, bearer-token auth), Prometheus
// metrics, the embedded OpenAPI document and Swagger UI, and an fx module.
//
// It is the only package that imports gin and net/http server code, so the
// wire contract can change without touching the runtime or the domain. It
// depends on the runtime only through the small JobService interface, so
// its handler tests need no actor system (the event-stream tests use a real
// one on the memory store).
//
// The routes:
//
//	POST   /jobs            submit a job                   201 job (200: the job holding its unique key)
//	POST   /jobs/batch      submit 1 to 1,000 jobs         201 {jobs, results} (200 when none was created)
//	GET    /jobs            list jobs, oldest first        200 {jobs, total, limit, offset}
//	GET    /jobs/{id}       get a job                      200 job
//	DELETE /jobs/{id}       cancel a job                   200 job
//	POST   /jobs/{id}/retry re-run a failed or canceled    201 {job…, retryOf}
//	GET    /jobs/{id}/events  the job's changes (SSE), until it ends
//	GET    /events          every job change and stats (SSE)
//	GET    /stats           counts by status, workers, queue depth, queues, retention
//	GET    /queues          the queues, their settings, counts and waiting jobs  200 {queues}
//	PUT    /queues/{name}   replace a queue's flow settings  200 queue
//	POST   /queues/{name}/pause, /resume                  200 queue
//	GET    /schedules       the periodic jobs, by name     200 {schedules}
//	PUT    /schedules/{name}  create or replace one        201 (created) or 200 schedule
//	GET    /schedules/{name}  get one                      200 schedule
//	DELETE /schedules/{name}  delete one; its jobs stay    204
//	POST   /schedules/{name}/pause, /resume               200 schedule
//	POST   /schedules/{name}/trigger  its job, now         201 job
//	GET    /job-types       the registered job types     200 {types, jobTypes: [{type, runBy}]}
//	POST   /workers/claim   lease jobs to an external worker (long-polls up to wait)  200 {jobs}
//	POST   /jobs/{id}/heartbeat  extend the lease, report progress  200 {leaseExpiresAt, cancelRequested}
//	POST   /jobs/{id}/complete   end the attempt with an optional result  200 job
//	POST   /jobs/{id}/fail       end the attempt as a failure  200 job
//	POST   /workers/outcomes     many completions and failures  200 {outcomes}
//	GET    /, /ui/…         the dashboard
//	GET    /health          liveness and readiness         200 or 503
//	GET    /metrics         Prometheus text format
//	GET    /admin/backup    a backup of the store (Backuper)  200 octet-stream
//	GET    /openapi.yaml    the OpenAPI 3.0 document
//	GET    /docs            Swagger UI, served from the binary
//
// The submission routes take an Idempotency-Key header (idempotency.go):
// the first answer to a key is kept in the store's RequestLog and given
// again to a retry. The runtime's pruner deletes the expired answers.
//
// When API tokens are configured every route except /health, /openapi.yaml
// and /docs requires "Authorization: Bearer <token>". A server without
// tokens refuses to listen on anything but a loopback address unless
// Config.Insecure is set. Worker tokens (Config.WorkerTokens) open only the
// worker protocol's routes (workers.go); any other route answers one with
// 403. A wrong or expired lease token is a 409 lease-lost problem, a result
// over the runtime's limit a 413 result-too-large.
//
// Jobs carry their result and progress wherever they are rendered: GET,
// lists, both event streams (the final event of /jobs/{id}/events carries
// the result) and the claim's answer.
package http
