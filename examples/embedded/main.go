// Command embedded shows Troupe embedded in a Go program, with no server:
// it opens the Badger store in a temporary directory, registers two
// handlers, submits jobs (one fails once and then succeeds), waits for every
// job to finish and prints how each ended.
//
//	go run ./examples/embedded
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/google/uuid"

	"github.com/troupe-go/troupe/actors"
	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/persistence/badgerstore"
)

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "embedded:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out io.Writer) (err error) {
	dir, err := os.MkdirTemp("", "troupe-embedded-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	store, err := badgerstore.Open(badgerstore.Options{Dir: dir, Logger: logger})
	if err != nil {
		return err
	}
	defer store.Close()

	sys, err := actors.New(store, actors.WithLogger(logger), actors.WithWorkers(2),
		actors.WithRetryBackoff(10*time.Millisecond, time.Second, actors.FullJitter))
	if err != nil {
		return err
	}
	// A handler is any function of a context and the payload.
	err = errors.Join(
		sys.Register("greet", domain.HandlerFunc(func(ctx context.Context, payload []byte) error {
			return nil
		})),
		// Fails its first attempt, as a flaky network call would; the
		// runtime retries it after a backoff.
		sys.Register("flaky", domain.HandlerFunc(func(ctx context.Context, payload []byte) error {
			if actors.AttemptFromContext(ctx) == 1 {
				return errors.New("connection reset")
			}
			return nil
		})),
	)
	if err != nil {
		return err
	}
	if err := sys.Start(ctx); err != nil {
		return err
	}
	// A stop that fails (a job outlived the context) is an error of the run.
	defer func() { err = errors.Join(err, sys.Stop(ctx)) }()

	// Subscribe before submitting, so no change is missed.
	events := sys.Subscribe(64)
	defer events.Close()

	var ids []uuid.UUID
	for _, p := range []actors.SubmitParams{
		{Type: "greet", Payload: []byte(`{"name":"Ada"}`)},
		{Type: "greet", Payload: []byte(`{"name":"Grace"}`)},
		{Type: "flaky", MaxAttempts: 3},
	} {
		job, err := sys.Submit(ctx, p)
		if err != nil {
			return err
		}
		ids = append(ids, job.ID)
	}

	waiting := len(ids)
	timeout := time.After(30 * time.Second)
	for waiting > 0 {
		select {
		case ev := <-events.C:
			if ev.Job.Status.IsTerminal() {
				waiting--
			}
		case <-timeout:
			return errors.New("jobs did not finish in 30s")
		}
	}

	for _, id := range ids {
		job, err := sys.Get(ctx, id)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%s: %s after %d attempt(s)", job.Type, job.Status, job.Attempts)
		if job.LastError != "" {
			fmt.Fprintf(out, " (last error: %s)", job.LastError)
		}
		fmt.Fprintln(out)
	}
	return nil
}
