// Package storeopen opens the job store that an option names: memory,
// badger or postgres. `troupe serve` and `troupe bench` both open their
// store here, so the two cannot drift apart in how a store is set up;
// what each does around the opening (logging, cleanup, the messages that
// name its flags) stays with it.
package storeopen

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/persistence/badgerstore"
	"github.com/troupe-go/troupe/persistence/memstore"
	"github.com/troupe-go/troupe/persistence/pgstore"
)

// The stores that can be opened.
const (
	// Badger keeps jobs in Badger under a directory: embedded, durable, no
	// infrastructure.
	Badger = "badger"
	// Memory keeps jobs in memory: everything is lost on exit.
	Memory = "memory"
	// Postgres keeps jobs in PostgreSQL, where several nodes can share
	// one queue.
	Postgres = "postgres"
)

// Kinds lists the stores that can be opened.
func Kinds() []string { return []string{Badger, Memory, Postgres} }

// Options says which store to open and how.
type Options struct {
	// Kind is Badger, Memory or Postgres.
	Kind string
	// DataDir is Badger's directory.
	DataDir string
	// Durability says which Badger writes wait for fsync; empty means
	// badgerstore.DurabilityFull.
	Durability badgerstore.Durability
	// MinFreeBytes is Badger's free-space floor; 0 derives it.
	MinFreeBytes int64
	// DatabaseURL is the PostgreSQL connection string.
	DatabaseURL string
	// Schema is the PostgreSQL schema of the job tables.
	Schema string
	// MaxConns caps the PostgreSQL pool; 0 lets the driver choose.
	MaxConns int32
	// Logger is given to the store, tagged with its component.
	Logger *slog.Logger
}

// Store is an open store. Shared is the same store as a queue that several
// nodes share, or nil when the store is one process's own.
type Store struct {
	domain.Store
	Shared domain.SharedQueue
}

// Open opens the store o names. ctx bounds the opening of a PostgreSQL
// store (connecting and migrating). Badger's errors come back as
// badgerstore.Open returns them, so that callers can tell
// badgerstore.ErrDirInUse and domain.ErrStorageFull apart.
func Open(ctx context.Context, o Options) (Store, error) {
	logger := o.Logger
	if logger == nil {
		logger = slog.Default()
	}
	switch o.Kind {
	case Memory:
		return Store{Store: memstore.New()}, nil
	case Badger:
		s, err := badgerstore.Open(badgerstore.Options{
			Dir:          o.DataDir,
			Durability:   o.Durability,
			MinFreeBytes: o.MinFreeBytes,
			Logger:       logger.With(slog.String("component", "badgerstore")),
		})
		if err != nil {
			return Store{}, err
		}
		return Store{Store: s}, nil
	case Postgres:
		s, err := pgstore.Open(ctx, pgstore.Options{
			URL:      o.DatabaseURL,
			Schema:   o.Schema,
			MaxConns: o.MaxConns,
			Logger:   logger.With(slog.String("component", "pgstore")),
		})
		if err != nil {
			return Store{}, fmt.Errorf("open postgres store: %w", err)
		}
		return Store{Store: s, Shared: s}, nil
	}
	return Store{}, fmt.Errorf("unknown store %q", o.Kind)
}
