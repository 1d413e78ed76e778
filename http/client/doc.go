// Package client is a Go client of Troupe's HTTP API: typed calls for
// every operation (submit, list, cancel, queues, schedules, stats, the
// worker protocol), problem+json answers as *Problem errors, submissions
// made safe to retry with an automatic Idempotency-Key, Wait over the
// job's event stream, and a Worker that runs Go handlers
// (domain.Handler) against a remote server through the worker protocol.
//
// It imports only the standard library, github.com/google/uuid and
// Troupe's domain package, never the server's code.
//
//	c, err := client.New("http://127.0.0.1:8080", client.WithToken(token))
//	if err != nil { ... }
//	job, _, err := c.Submit(ctx, client.SubmitRequest{Type: "send_email", Payload: json.RawMessage(`{"to":"ada@example.com"}`)})
//	if err != nil { ... }
//	done, err := c.Wait(ctx, job.ID) // completed, failed or canceled
//	var p *client.Problem
//	if errors.As(err, &p) { fmt.Println(p.Type, p.Detail) }
package client
