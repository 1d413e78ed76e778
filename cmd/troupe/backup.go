package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/http"
	apiclient "github.com/troupe-go/troupe/http/client"
	"github.com/troupe-go/troupe/persistence/badgerstore"
)

// backupSource gives the API what GET /admin/backup streams: the store
// itself when it can back up, or an answer that says how to back it up.
func (m *Main) backupSource(store domain.Store) http.Backuper {
	if b, ok := store.(http.Backuper); ok {
		return b
	}
	switch m.Config.Store {
	case StorePostgres:
		return unsupportedBackup("the postgres store cannot be backed up through the API: back up its database with pg_dump")
	case StoreMemory:
		return unsupportedBackup("the memory store cannot be backed up: it keeps nothing beyond the process")
	}
	return unsupportedBackup(fmt.Sprintf("the %s store cannot be backed up through the API", m.Config.Store))
}

// unsupportedBackup is the Backuper of a store that has none; its text says
// what to do instead.
type unsupportedBackup string

func (u unsupportedBackup) Backup(context.Context, io.Writer) error {
	return fmt.Errorf("%w: %s", http.ErrBackupUnsupported, string(u))
}

// backupLogger is the logger of the offline commands: Badger's warnings
// and errors on stderr, as text for people.
func backupLogger(env *environment) *slog.Logger {
	return slog.New(slog.NewTextHandler(env.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func newBackupCommand(env *environment) *cobra.Command {
	var (
		flags   clientFlags
		out     string
		dataDir string
	)
	cmd := &cobra.Command{
		Use:   "backup --out FILE [--data-dir DIR]",
		Short: "Write a full backup of a Badger store to a file",
		Long: `Write a full backup of the Badger store to --out.

Without --data-dir it asks the running server at --server for one
(GET /admin/backup, with the bearer token --token): the server keeps serving,
and the backup holds every job acknowledged before it began, with its state.

With --data-dir it reads the data directory of a stopped server. A directory
that a running server holds is refused: back that one up without --data-dir.

The file is written under a temporary name beside --out, synced, checked
against its checksum and only then renamed to --out, so an interrupted backup
never leaves a partial file under that name. An existing --out is replaced.
Restore it with troupe restore.`,
		Example: `  troupe backup --out troupe-$(date -u +%Y%m%dT%H%M%SZ).backup
  troupe backup --server 10.0.0.5:8080 --token "$TOKEN" --out nightly.backup
  troupe backup --data-dir /var/lib/troupe --out offline.backup`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dataDir != "" && (cmd.Flags().Changed("server") || cmd.Flags().Changed("token")) {
				return errors.New("--data-dir backs up a stopped server's directory, --server and --token a running server: give one or the other")
			}
			ctx, stop := interruptible(cmd.Context(), env)
			defer stop()
			var n int64
			var err error
			if dataDir != "" {
				n, err = backupDataDir(ctx, env, dataDir, out)
			} else {
				n, err = backupServer(ctx, flags, out)
			}
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "wrote backup %s (%d bytes)\n", out, n)
			return err
		},
	}
	addClientFlags(cmd, env, &flags)
	cmd.Flags().StringVar(&out, "out", "", "file to write the backup to (required)")
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "back up this data directory of a stopped server instead of asking a running one")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}

// interruptible returns a context that ends on SIGINT or SIGTERM, so that
// a backup or restore in progress cleans up after itself.
func interruptible(parent context.Context, env *environment) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(parent)
	sigs := make(chan os.Signal, 1)
	stopSignals := env.notifySignals(sigs)
	done := make(chan struct{})
	go func() {
		select {
		case <-sigs:
			cancel(errSignal)
		case <-done:
		}
	}()
	return ctx, func() {
		stopSignals()
		close(done)
		cancel(nil)
	}
}

// backupServer streams a backup from the running server into out.
func backupServer(ctx context.Context, flags clientFlags, out string) (int64, error) {
	// A backup lasts as long as the store is large: no overall timeout,
	// the server bounds each write instead.
	c, err := newClientTimeout(flags, io.Discard, 0)
	if err != nil {
		return 0, err
	}
	defer c.close()
	body, err := c.api.Backup(ctx)
	if err != nil {
		var p *apiclient.Problem
		if errors.As(err, &p) {
			return 0, fmt.Errorf("back up from %s: %w", c.base, err)
		}
		return 0, c.explain(err)
	}
	defer body.Close()
	return writeBackupFile(ctx, out, func(w io.Writer) error {
		if _, err := io.Copy(w, body); err != nil {
			return fmt.Errorf("receive the backup from %s: %w", c.base, err)
		}
		return nil
	})
}

// backupDataDir backs up the data directory of a stopped server into out.
func backupDataDir(ctx context.Context, env *environment, dir, out string) (int64, error) {
	// Opening a missing or empty directory would create a store in it.
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("back up %s: %w", dir, err)
	}
	if len(entries) == 0 {
		return 0, fmt.Errorf("back up %s: the directory is empty; --data-dir names the directory of a server's store", dir)
	}
	s, err := badgerstore.Open(badgerstore.Options{Dir: dir, Logger: backupLogger(env)})
	if errors.Is(err, badgerstore.ErrDirInUse) {
		return 0, fmt.Errorf("data directory %s is in use by a running troupe server: back it up through the server, without --data-dir (troupe backup --out FILE), or stop the server first", dir)
	}
	if err != nil {
		return 0, fmt.Errorf("back up %s: %w", dir, err)
	}
	n, err := writeBackupFile(ctx, out, func(w io.Writer) error { return s.Backup(ctx, w) })
	return n, errors.Join(err, s.Close())
}

// writeBackupFile writes a backup to a temporary file beside path, syncs
// it, checks it the way restore will, and renames it to path, so that path
// only ever names a complete backup. It returns the file's size.
func writeBackupFile(ctx context.Context, path string, write func(io.Writer) error) (n int64, err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return 0, fmt.Errorf("create the backup file: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<20)
	if err := write(bw); err != nil {
		if cause := context.Cause(ctx); cause != nil {
			return 0, fmt.Errorf("backup stopped: %w", cause)
		}
		return 0, err
	}
	if err := bw.Flush(); err != nil {
		return 0, fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("sync %s: %w", tmp, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, fmt.Errorf("check %s: %w", tmp, err)
	}
	if err := badgerstore.CheckBackup(ctx, bufio.NewReaderSize(f, 1<<20)); err != nil {
		return 0, fmt.Errorf("check the backup: %w", err)
	}
	info, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("check %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return 0, fmt.Errorf("close %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return 0, fmt.Errorf("rename the backup to %s: %w", path, err)
	}
	// The rename is durable once the directory is synced.
	if err := syncDir(dir); err != nil {
		return 0, fmt.Errorf("sync %s: %w", dir, err)
	}
	return info.Size(), nil
}

// syncDir fsyncs a directory, which makes the entries in it durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}

func newRestoreCommand(env *environment) *cobra.Command {
	var in, dataDir string
	cmd := &cobra.Command{
		Use:   "restore --in FILE --data-dir DIR",
		Short: "Restore a backup into a new data directory",
		Long: `Restore the backup --in (written by troupe backup) into --data-dir, for a
server to start on (TROUPE_DATA_DIR).

--data-dir must be new or empty: a restore never mixes a backup into existing
data. A file that is not a Troupe backup, or one that was cut short or
damaged (its checksum does not match), is refused, and the directory is left
as it was. On success it prints how many jobs the restored store holds.`,
		Example: `  troupe restore --in nightly.backup --data-dir /var/lib/troupe-restored`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := interruptible(cmd.Context(), env)
			defer stop()
			jobs, err := restore(ctx, env, in, dataDir)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "restored %s into %s: %d jobs\n", in, dataDir, jobs)
			return err
		},
	}
	cmd.Flags().StringVar(&in, "in", "", "backup file to restore (required)")
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "new or empty directory to restore into (required)")
	_ = cmd.MarkFlagRequired("in")
	_ = cmd.MarkFlagRequired("data-dir")
	return cmd
}

// restore restores the backup file in into dir and returns how many jobs
// the restored store holds.
func restore(ctx context.Context, env *environment, in, dir string) (int, error) {
	f, err := os.Open(in)
	if err != nil {
		return 0, fmt.Errorf("restore: %w", err)
	}
	defer f.Close()
	logger := backupLogger(env)
	err = badgerstore.Restore(ctx, f, badgerstore.Options{Dir: dir, Logger: logger})
	switch {
	case errors.Is(err, badgerstore.ErrNotBackup):
		return 0, fmt.Errorf("%s is not a Troupe backup (%w); nothing was restored", in, err)
	case errors.Is(err, badgerstore.ErrDirNotEmpty):
		return 0, fmt.Errorf("%w; nothing was restored", err)
	case errors.Is(err, badgerstore.ErrBackupDamaged):
		return 0, fmt.Errorf("%s cannot be restored: %w; %s was left as it was", in, err, dir)
	case err != nil:
		if cause := context.Cause(ctx); cause != nil {
			return 0, fmt.Errorf("restore stopped: %w; %s was left as it was", cause, dir)
		}
		return 0, err
	}
	s, err := badgerstore.Open(badgerstore.Options{Dir: dir, Logger: logger})
	if err != nil {
		return 0, fmt.Errorf("open the restored store: %w", err)
	}
	page, err := s.List(ctx, domain.Filter{Limit: 1})
	return page.Total, errors.Join(err, s.Close())
}
