package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/jackc/pgx/v5"

	"github.com/troupe-go/troupe/actors"
	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/http"
	"github.com/troupe-go/troupe/internal/storeopen"
	"github.com/troupe-go/troupe/persistence/badgerstore"
	"github.com/troupe-go/troupe/persistence/pgstore"
)

// openStore opens the store b names and returns it (with its shared queue
// on PostgreSQL, which troupe serve runs on) with the function that
// closes it and removes what the bench made, and Badger's data directory
// (empty for the other stores), which the soak measures. A store that
// holds unfinished jobs is refused: the runtime would run them as bench
// jobs, with the wrong handler.
func (b *Bencher) openStore(ctx context.Context) (storeopen.Store, func() error, string, error) {
	var (
		cleanup func() error
		where   string
		reused  bool
	)
	opts := b.storeOptions(b.DataDir)
	switch b.Store {
	case storeopen.Badger:
		reused = opts.DataDir != ""
		if !reused {
			tmp, err := os.MkdirTemp("", "troupe-bench-")
			if err != nil {
				return storeopen.Store{}, nil, "", fmt.Errorf("bench data directory: %w", err)
			}
			opts.DataDir = tmp
		}
		where = "data directory " + opts.DataDir
	case storeopen.Postgres:
		// The schema is always checked: even the bench's own holds jobs
		// after a run that was killed.
		reused = true
		where = fmt.Sprintf("schema %s (DROP SCHEMA %s CASCADE clears it)", b.Schema, b.Schema)
	}
	opened, err := storeopen.Open(ctx, opts)
	if err != nil {
		if b.Store == storeopen.Badger {
			if !reused {
				_ = os.RemoveAll(opts.DataDir)
			}
			return storeopen.Store{}, nil, "", fmt.Errorf("open badger store in %s: %w", opts.DataDir, err)
		}
		return storeopen.Store{}, nil, "", err
	}
	store := opened.Store
	cleanup = store.Close
	switch b.Store {
	case storeopen.Badger:
		cleanup = func() error {
			err := store.Close()
			if !reused {
				err = errors.Join(err, os.RemoveAll(opts.DataDir))
			}
			return err
		}
	case storeopen.Postgres:
		cleanup = func() error {
			err := store.Close()
			if b.Schema == SchemaDefault {
				// Only the tables go; the empty schema stays, as Migrate
				// leaves it, for the next run.
				mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopTimeout)
				defer cancel()
				err = errors.Join(err, pgstore.Migrate(mctx, b.DatabaseURL, b.Schema, pgstore.MigrationDown))
			}
			return err
		}
	}
	if reused {
		page, err := store.List(ctx, domain.Filter{Statuses: []domain.Status{domain.StatusPending, domain.StatusRunning}, Limit: 1})
		if err == nil && page.Total > 0 {
			err = fmt.Errorf("the %s holds %d unfinished jobs, which the bench would run with its no-op handler; use an empty one", where, page.Total)
		}
		if err != nil {
			return storeopen.Store{}, nil, "", errors.Join(err, cleanup())
		}
	}
	dir := ""
	if b.Store == storeopen.Badger {
		dir = opts.DataDir
	}
	return opened, cleanup, dir, nil
}

// storeOptions are the options of the store b names, with Badger in
// dataDir: the same as troupe serve's for the same flags.
func (b *Bencher) storeOptions(dataDir string) storeopen.Options {
	o := storeopen.Options{Kind: b.Store, DatabaseURL: b.DatabaseURL, Schema: b.Schema, Logger: b.Logger}
	if b.Store == storeopen.Badger {
		o.DataDir = dataDir
		o.Durability = badgerstore.Durability(b.Durability)
	}
	return o
}

// storeFacts are what a figure depends on besides the runtime: Badger's
// durability, PostgreSQL's synchronous_commit and version.
type storeFacts struct {
	durability        string
	synchronousCommit string
	serverVersion     string
}

// factsOf reads the facts of the store b names: the durability asked for
// on Badger, and on PostgreSQL the server's synchronous_commit (as a
// connection with the bench's URL sees it, which is what the store's pool
// gets) and version.
func (b *Bencher) factsOf(ctx context.Context) (storeFacts, error) {
	switch b.Store {
	case storeopen.Badger:
		return storeFacts{durability: cmp.Or(b.Durability, string(badgerstore.DurabilityFull))}, nil
	case storeopen.Postgres:
		conn, err := pgx.Connect(ctx, b.DatabaseURL)
		if err != nil {
			return storeFacts{}, fmt.Errorf("connect to read the server's settings: %w", err)
		}
		defer func() {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopTimeout)
			defer cancel()
			_ = conn.Close(cctx)
		}()
		var f storeFacts
		if err := conn.QueryRow(ctx, "SHOW synchronous_commit").Scan(&f.synchronousCommit); err != nil {
			return storeFacts{}, fmt.Errorf("show synchronous_commit: %w", err)
		}
		if err := conn.QueryRow(ctx, "SHOW server_version").Scan(&f.serverVersion); err != nil {
			return storeFacts{}, fmt.Errorf("show server_version: %w", err)
		}
		return f, nil
	}
	return storeFacts{}, nil
}

// started is the runtime the bench runs: one node, or on PostgreSQL
// Bencher.Nodes nodes sharing the queue.
type started struct {
	// sys is the node the bench submits through and reads from.
	sys *actors.System
	// stop stops every node, then closes the stores and removes what the
	// bench made.
	stop func() error
	// dir is Badger's data directory (see openStore).
	dir string
	// facts describe the store, for the summary.
	facts storeFacts
}

// nodes is how many nodes the bench runs: Bencher.Nodes, at least one.
func (b *Bencher) nodes() int { return max(b.Nodes, 1) }

// startSystem opens the store and starts the runtime on it with the
// bench's handler, and more options for the runtime. On PostgreSQL each
// of the Bencher.Nodes nodes has its own store, and so its own pool, on the
// same schema, and runs the shared queue as troupe serve does; every
// node's committed outcomes go to rec.
func (b *Bencher) startSystem(ctx context.Context, rec *recorder, queueSize int, more ...actors.Option) (*started, error) {
	if b.nodes() > 1 && b.Store != storeopen.Postgres {
		return nil, fmt.Errorf("%d nodes share a queue only on postgres, not on %s", b.nodes(), b.Store)
	}
	opened, closeStore, dir, err := b.openStore(ctx)
	if err != nil {
		return nil, err
	}
	facts, err := b.factsOf(ctx)
	if err != nil {
		return nil, errors.Join(err, closeStore())
	}
	// stops stops what started, the last first; the first node's store,
	// whose closing drops the bench's tables, closes last.
	stops := []func() error{closeStore}
	stopAll := func() error {
		var errs []error
		for i := len(stops) - 1; i >= 0; i-- {
			errs = append(errs, stops[i]())
		}
		return errors.Join(errs...)
	}
	var first *actors.System
	for i := range b.nodes() {
		store := opened
		if i > 0 {
			store, err = storeopen.Open(ctx, b.storeOptions(""))
			if err != nil {
				return nil, errors.Join(fmt.Errorf("open the store of node %d: %w", i+1, err), stopAll())
			}
			stops = append(stops, store.Close)
		}
		// troupe serve's defaults, which name a node after its host and
		// process; nodes in one process need a name each.
		cfg := actors.Config{Workers: b.Workers, QueueSize: queueSize}
		if b.nodes() > 1 {
			cfg.Node = fmt.Sprintf("%s-%d", nodeName(), i+1)
		}
		// The Prometheus counters troupe serve's runtime updates, each
		// node its own, as each serve process has.
		opts := []actors.Option{actors.WithConfig(cfg), actors.WithLogger(b.Logger), actors.WithMetrics(http.NewMetrics(nil))}
		if store.Shared != nil {
			opts = append(opts, actors.WithSharedQueue(recordingShared{SharedQueue: store.Shared, rec: rec}))
		}
		sys, err := actors.New(recording(store.Store, rec), append(opts, more...)...)
		if err == nil {
			err = sys.Register(JobType, rec)
		}
		if err == nil {
			err = sys.Start(ctx)
		}
		if err != nil {
			return nil, errors.Join(fmt.Errorf("start job system: %w", err), stopAll())
		}
		stops = append(stops, func() error {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopTimeout)
			defer cancel()
			return sys.Stop(sctx)
		})
		if first == nil {
			first = sys
		}
	}
	stop := func() error {
		// Held handlers would keep the stop waiting.
		rec.release()
		return stopAll()
	}
	return &started{sys: first, stop: stop, dir: dir, facts: facts}, nil
}

// nodeName is the name troupe serve gives a node by default: the host's
// name and the process's ID.
func nodeName() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "troupe"
	}
	return fmt.Sprintf("%s-%d", host, os.Getpid())
}
