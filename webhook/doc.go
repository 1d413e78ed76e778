// Package webhook runs a job type's jobs by calling an HTTP endpoint
// instead of Go code: each attempt is one POST, and the answer decides
// the attempt.
//
// The request is a JSON object {"id", "type", "attempt", "payload"} (the
// payload as stored when it is JSON, null when there is none, else a
// base64 string with "payloadEncoding": "base64"), with an
// Idempotency-Key of
// "<job id>:<attempt>" and, when a secret is configured, a
// Troupe-Signature header: "t=<unix seconds>,v1=<hex HMAC-SHA256 of
// "<t>.<body>">", the scheme Stripe uses. A Go receiver checks it with
// Verify.
//
// The answer: 2xx completes the job, and a JSON body becomes its result;
// 408, 429, 5xx, timeouts and connection errors fail the attempt, which
// retries (after Retry-After when the endpoint sends one); 3xx (redirects
// are not followed) and any other 4xx fail the job for good, with the
// status and the start of the body as its last error.
//
// Register adds a webhook to a System; its calls run on the System's
// workers like any handler, each webhook with its own connection pool.
package webhook
