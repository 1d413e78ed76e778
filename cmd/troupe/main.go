// Command troupe is Troupe's binary: the job server and a client for it.
//
// `troupe serve` runs the server: it wires, with fx, the configuration
// (flags, TROUPE_* environment variables, a YAML file), one slog logger,
// the store (Badger in a local directory by default, or memory, or
// PostgreSQL), the actor runtime with the demo handlers, and the HTTP API.
// It stops gracefully on SIGINT or SIGTERM.
//
// `troupe submit`, `get`, `list` and `cancel` talk to a running server over
// HTTP and print its JSON answers; `troupe version` prints the build.
// `troupe backup` and `troupe restore` back up a Badger store, online
// through the API or from a stopped server's data directory.
//
// cmd/troupe/README.md describes how to operate the server.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	env := &environment{
		stdout:  os.Stdout,
		stderr:  os.Stderr,
		environ: os.Environ(),
		notifySignals: func(c chan<- os.Signal) func() {
			signal.Notify(c, os.Interrupt, syscall.SIGTERM)
			return func() { signal.Stop(c) }
		},
		exit: os.Exit,
	}
	os.Exit(run(context.Background(), os.Args[1:], env))
}

// environment is what the program takes from its process, so that tests
// can run commands in-process with their own.
type environment struct {
	stdout, stderr io.Writer
	// environ holds KEY=value strings, as os.Environ returns them.
	environ []string
	// notifySignals relays SIGINT and SIGTERM to c until the returned func
	// is called.
	notifySignals func(c chan<- os.Signal) (stop func())
	// exit ends the process at once.
	exit func(code int)
}

// getenv returns the value of the environment variable key, or "".
func (e *environment) getenv(key string) string { return lookupEnv(e.environ, key) }

// run executes the command line args and returns the exit status: 0, or 1
// after printing the error on one line of stderr.
func run(ctx context.Context, args []string, env *environment) int {
	root := newRootCommand(env)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(env.stderr, "troupe: "+oneLine(err.Error()))
		return 1
	}
	return 0
}

// oneLine joins the lines of a message (errors.Join makes several), so
// that an error is one line of stderr.
func oneLine(msg string) string {
	var b strings.Builder
	for line := range strings.Lines(msg) {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if b.Len() > 0 {
			if strings.HasSuffix(b.String(), ":") {
				b.WriteString(" ")
			} else {
				b.WriteString("; ")
			}
		}
		b.WriteString(line)
	}
	return b.String()
}
