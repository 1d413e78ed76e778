package bench

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/troupe-go/troupe/actors"
	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/internal/storeopen"
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
	opts := storeopen.Options{Kind: b.Store, DatabaseURL: b.DatabaseURL, Schema: b.Schema, Logger: b.Logger}
	switch b.Store {
	case storeopen.Badger:
		opts.DataDir = b.DataDir
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

// startSystem opens the store and starts a System on it with the bench's
// handler, and returns the function that stops both.
func (b *Bencher) startSystem(ctx context.Context, rec *recorder, queueSize int) (*actors.System, func() error, error) {
	sys, stop, _, err := b.startSystemIn(ctx, rec, queueSize)
	return sys, stop, err
}

// startSystemIn is startSystem with more options for the runtime, and
// Badger's data directory (see openStore).
func (b *Bencher) startSystemIn(ctx context.Context, rec *recorder, queueSize int, more ...actors.Option) (*actors.System, func() error, string, error) {
	opened, closeStore, dir, err := b.openStore(ctx)
	if err != nil {
		return nil, nil, "", err
	}
	opts := []actors.Option{
		actors.WithWorkers(b.Workers),
		actors.WithQueueSize(queueSize),
		actors.WithLogger(b.Logger),
	}
	if opened.Shared != nil {
		opts = append(opts, actors.WithSharedQueue(recordingShared{SharedQueue: opened.Shared, rec: rec}))
	}
	sys, err := actors.New(recordingStore{Store: opened.Store, rec: rec}, append(opts, more...)...)
	if err == nil {
		err = sys.Register(JobType, rec)
	}
	if err == nil {
		err = sys.Start(ctx)
	}
	if err != nil {
		return nil, nil, "", errors.Join(fmt.Errorf("start job system: %w", err), closeStore())
	}
	stop := func() error {
		// Held handlers would keep the stop waiting.
		rec.release()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopTimeout)
		defer cancel()
		return errors.Join(sys.Stop(sctx), closeStore())
	}
	return sys, stop, dir, nil
}
