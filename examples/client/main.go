// Command client submits a job to a running Troupe server with the Go
// client package and waits for it over the job's event stream, then prints
// how it ended and its result.
//
//	troupe serve &                      # the demo handlers include noop
//	go run ./examples/client -type noop -payload '{"hello":"world"}'
//
// -server (or TROUPE_URL) names the server, -token (or TROUPE_API_TOKEN)
// its bearer token. -queue and -key put the job in a queue with a flow key,
// which the queue's per-key settings apply to:
//
//	troupe queues set sync --key-limit 1 --ordered
//	go run ./examples/client -type sleep -payload '{"ms":500}' -queue sync -key customer-42
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/http/client"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("client", flag.ContinueOnError)
	server := fs.String("server", envOr("TROUPE_URL", "http://127.0.0.1:8080"), "base URL of the server")
	token := fs.String("token", os.Getenv("TROUPE_API_TOKEN"), "bearer token of the API, if it has tokens")
	typ := fs.String("type", "noop", "job type to submit")
	payload := fs.String("payload", "{}", "the job's payload, a JSON value")
	queue := fs.String("queue", "", `queue of the job (default "default")`)
	key := fs.String("key", "", "flow key of the job, such as a customer's ID")
	wait := fs.Duration("wait", time.Minute, "how long to wait for the job to finish")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if !json.Valid([]byte(*payload)) {
		return fmt.Errorf("-payload is not valid JSON: %s", *payload)
	}

	c, err := client.New(*server, client.WithToken(*token))
	if err != nil {
		return err
	}
	// Submit carries an Idempotency-Key, so its retries create one job.
	job, _, err := c.Submit(ctx, client.SubmitRequest{
		Type: domain.JobType(*typ), Payload: json.RawMessage(*payload), Queue: *queue, Key: *key,
	})
	if err != nil {
		var p *client.Problem
		if errors.As(err, &p) && p.Type == client.ProblemUnknownJobType {
			return fmt.Errorf("the server has no handler for %q: %s", *typ, p.Detail)
		}
		return fmt.Errorf("submit: %w", err)
	}
	fmt.Fprintf(out, "submitted job %s (%s)\n", job.ID, job.Type)

	ctx, cancel := context.WithTimeout(ctx, *wait)
	defer cancel()
	done, err := c.Wait(ctx, job.ID)
	if err != nil {
		return fmt.Errorf("wait for job %s: %w", job.ID, err)
	}
	fmt.Fprintf(out, "job %s %s after %d attempt(s)\n", done.ID, done.Status, done.Attempts)
	if done.LastError != "" {
		fmt.Fprintf(out, "last error: %s\n", done.LastError)
	}
	if done.Result != nil {
		fmt.Fprintf(out, "result: %s\n", done.Result)
	}
	if done.Status != domain.StatusCompleted {
		return fmt.Errorf("job %s ended %s", done.ID, done.Status)
	}
	return nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
