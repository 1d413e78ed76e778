package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"sync"
	"syscall"

	"github.com/spf13/cobra"
)

// errSignal is the cause of the serve context's end on SIGINT or SIGTERM.
var errSignal = errors.New("interrupted by a signal")

func newServeCommand(env *environment) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the job server: the actor runtime and the HTTP API",
		Long: `Run the job server: the actor runtime, its store and the HTTP API.

With no configuration at all it keeps jobs in Badger under ./data, listens on
127.0.0.1:8080 without authentication and registers the demo handlers.

Every option is a flag, an environment variable (TROUPE_ followed by the
option's name, such as TROUPE_WORKERS) or a key of the YAML file given with
--config (the option's name in snake_case, such as workers or http_addr).
A flag given on the command line wins over the environment, which wins over
the file, which wins over the defaults shown below. Durations take a unit
(500ms, 30s, 5m).

Finished jobs are deleted once older than --retention-completed,
--retention-failed or --retention-canceled (0 keeps them for ever). Periodic
jobs are declared only in the YAML file, under schedules: (see the README);
the file owns them, so the API refuses to change them, and a schedule removed
from the file is deleted at the next start.

Job types run by external workers over HTTP (POST /workers/claim) are declared
with --external-types; --worker-tokens gives those workers tokens that can
only claim and report jobs. Job types handled by calling an HTTP endpoint are
declared only in the YAML file, under webhooks: (see the runbook).

On SIGINT or SIGTERM the server stops taking requests, lets running jobs
finish for up to --shutdown-timeout, hands the others back to the queue for
the next start, closes the store and exits 0. A second signal exits at once
with a non-zero status; the stores stay consistent, and jobs that were
running count as interrupted attempts at the next start.`,
		Example: `  troupe serve
  troupe serve --store memory --workers 8 --log-format text
  TROUPE_API_TOKENS=s3cret troupe serve --http-addr 0.0.0.0:8080
  troupe serve --config troupe.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := LoadConfig(cmd.Flags(), env.environ)
			if err != nil {
				return err
			}
			return serve(cmd.Context(), env, cfg)
		},
	}
	cmd.Flags().SortFlags = false
	AddServeFlags(cmd.Flags(), DefaultConfig())
	return cmd
}

// serve runs the server until a signal, then stops it gracefully. A second
// signal exits the process at once through env.exit.
func serve(ctx context.Context, env *environment, cfg Config) error {
	logger := NewLogger(env.stderr, cfg)

	sigs := make(chan os.Signal, 2)
	stopSignals := env.notifySignals(sigs)
	defer stopSignals()

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	done := make(chan struct{})
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(done)
	wg.Go(func() {
		select {
		case sig := <-sigs:
			logger.Info("signal received: shutting down gracefully; send it again to exit at once",
				slog.String("signal", sig.String()))
			cancel(errSignal)
		case <-done:
			return
		}
		select {
		case sig := <-sigs:
			// Safe: Badger's files are consistent after a kill, and the
			// jobs that were running count as interrupted at the next start.
			logger.Error("second signal received: exiting at once without finishing the shutdown",
				slog.String("signal", sig.String()))
			env.exit(exitCode(sig))
		case <-done:
		}
	})

	m := NewMain(cfg, logger)
	if err := m.Run(ctx); err != nil {
		if errors.Is(context.Cause(ctx), errSignal) {
			// Asked to stop before it was up: what had started was stopped
			// in order, so this is a clean stop.
			logger.Warn("stopped during start", slog.Any("error", err))
			return nil
		}
		return err
	}
	<-ctx.Done()
	// The signal ended ctx; the stop needs a context of its own, bounded by
	// the stop timeout inside Close.
	return m.Close(context.WithoutCancel(ctx))
}

// exitCode is the shell's convention for death by a signal: 128 + its
// number.
func exitCode(sig os.Signal) int {
	if s, ok := sig.(syscall.Signal); ok {
		return 128 + int(s)
	}
	return 1
}
