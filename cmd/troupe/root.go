package main

import (
	"github.com/spf13/cobra"
)

// newRootCommand builds the command tree. It is built afresh for every run,
// so that no flag state outlives one.
func newRootCommand(env *environment) *cobra.Command {
	root := &cobra.Command{
		Use:   "troupe",
		Short: "Troupe is a job processor built on the actor model",
		Long: `Troupe is a job processor built on the actor model.

  troupe serve     runs the server (see troupe serve --help for every option)
  troupe submit    submits a job to a running server
  troupe get       prints a job
  troupe list      lists jobs
  troupe cancel    cancels a job
  troupe retry     submits a copy of a failed or canceled job
  troupe queues    lists the queues; troupe queues pause|resume NAME
  troupe schedules lists the periodic jobs; get|put|delete|pause|resume|trigger
  troupe bench     measures the runtime, its store and the HTTP API
  troupe backup    writes a backup of a Badger store, online or from a data dir
  troupe restore   restores a backup into a new data directory
  troupe healthcheck  exits 0 if the server is healthy (for container probes)
  troupe verify    checks a stopped server's data directory for damage

The client commands talk to the server at --server (default: the address in
TROUPE_HTTP_ADDR, or 127.0.0.1:8080) with the bearer token --token (default:
TROUPE_API_TOKEN, or the first of TROUPE_API_TOKENS). They print the server's
JSON answer on stdout (troupe schedules prints a table unless --json); on an
error they print its detail on stderr and exit 1.`,
		// Errors are printed once, on one line, by run; usage on every
		// mistake would bury them.
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetOut(env.stdout)
	root.SetErr(env.stderr)
	root.AddCommand(
		newServeCommand(env),
		newSubmitCommand(env),
		newGetCommand(env),
		newListCommand(env),
		newCancelCommand(env),
		newRetryCommand(env),
		newQueuesCommand(env),
		newSchedulesCommand(env),
		newBenchCommand(env),
		newBackupCommand(env),
		newRestoreCommand(env),
		newHealthcheckCommand(env),
		newVerifyCommand(env),
		newVersionCommand(),
	)
	return root
}
