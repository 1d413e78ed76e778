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
// Submit a job and wait for it:
//
//	c, err := client.New("http://127.0.0.1:8080", client.WithToken(token))
//	if err != nil { ... }
//	job, _, err := c.Submit(ctx, client.SubmitRequest{Type: "send_email", Payload: json.RawMessage(`{"to":"ada@example.com"}`)})
//	var p *client.Problem
//	if errors.As(err, &p) { ... p.Type, p.Detail, p.Errors ... }
//	done, err := c.Wait(ctx, job.ID) // completed, failed or canceled; done.Result
//
// Run the handler of a type the server declares external
// (TROUPE_EXTERNAL_TYPES), with the same code as an embedded handler:
//
//	w := client.NewWorker(c, client.WorkerOptions{Concurrency: 8})
//	w.Handle("resize_image", domain.HandlerFunc(func(ctx context.Context, payload []byte) error {
//		domain.ReportProgress(ctx, 50, "resizing")
//		return domain.SetResult(ctx, map[string]int{"width": 640})
//	}))
//	err = w.Run(ctx) // until ctx ends; running handlers then finish and are reported
package client
