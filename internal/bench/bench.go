// Package bench is the load engine of `troupe bench`: it runs the real job
// runtime in this process with a no-op handler, on the store of one's
// choice, and measures it three ways: a burn-down of a backlog
// (Bencher.Burndown), a steady submission rate with its latency
// (Bencher.Steady), and concurrent load on the HTTP API (Bencher.HTTP). It
// reports progress while it runs and returns a Summary. The cobra command,
// its flags and their messages live in cmd/troupe; this package knows
// nothing of them.
package bench

import (
	"errors"
	"io"
	"log/slog"
	"time"

	"github.com/troupe-go/troupe/domain"
)

// JobType is the only job type the bench registers: a no-op, so that what
// is measured is the runtime and its store, not a handler.
const JobType domain.JobType = "noop"

// payload is every bench job's payload.
var payload = []byte(`{}`)

// SchemaDefault is the PostgreSQL schema the bench uses unless told
// otherwise; its tables are dropped after the run.
const SchemaDefault = "troupe_bench"

// Timeouts and the look of the progress display.
const (
	stopTimeout        = 30 * time.Second
	stallTimeout       = time.Minute
	httpRequestTimeout = 30 * time.Second
	progressEvery      = time.Second
	progressEveryOnTTY = 200 * time.Millisecond
	progressBarWidth   = 24
)

// ErrInterrupted ends a bench on SIGINT or SIGTERM; the command cancels the
// bench's context with it as the cause.
var ErrInterrupted = errors.New("interrupted")

// Bencher runs the modes. Set its fields, then call one mode.
type Bencher struct {
	// Store is the job store to measure: memory, badger or postgres (see
	// storeopen).
	Store string
	// DataDir is Badger's directory; empty means a temporary one, removed
	// afterwards.
	DataDir string
	// Durability says which of Badger's writes wait for fsync (see
	// badgerstore.Durability); empty means full, as with troupe serve.
	Durability string
	// DatabaseURL is the PostgreSQL connection string.
	DatabaseURL string
	// Schema is the PostgreSQL schema; the tables of SchemaDefault are
	// dropped afterwards, any other is left as it is.
	Schema string
	// Workers is the size of each node's worker pool.
	Workers int
	// Nodes is how many nodes run in this process on PostgreSQL, each with
	// its own store (and so its own connection pool) on Schema, sharing
	// the queue as troupe serve nodes do; 0 means one. Only PostgreSQL
	// takes more than one.
	Nodes int
	// Progress receives the progress display: a line a second, or a bar
	// redrawn in place on a terminal.
	Progress io.Writer
	// Logger receives the runtime's and the store's logs.
	Logger *slog.Logger
	// StartServer starts an API server in this process for HTTP without a
	// server of its own (see ServerStarter).
	StartServer ServerStarter
	// StartExternalServer starts the API server of External.
	StartExternalServer ExternalServerStarter
}
