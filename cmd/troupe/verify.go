package main

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"

	"github.com/troupe-go/troupe/persistence/badgerstore"
)

// errDamaged makes `troupe verify` exit 1 once it has printed the damage.
var errDamaged = errors.New("the data directory is damaged: restore it from a backup (troupe restore --in FILE --data-dir DIR)")

// newVerifyCommand builds `troupe verify`, the offline check of a Badger
// data directory.
func newVerifyCommand(env *environment) *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:   "verify --data-dir DIR",
		Short: "Check a stopped server's Badger data directory for damage",
		Long: `Check a Badger data directory without changing it: the checks the server
makes before it opens one (MANIFEST, tables, memtable logs), every table's
checksums, then every key and value, each job decoded. Prints what is
damaged and exits 1 if anything is; exits 0 with the number of jobs checked
otherwise. Refuses a directory that a running server holds.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if strings.TrimSpace(dataDir) == "" {
				dataDir = env.getenv("TROUPE_DATA_DIR")
			}
			if strings.TrimSpace(dataDir) == "" {
				return errors.New("verify: --data-dir is required")
			}
			// Badger's own warnings go to stderr; the verdict to stdout.
			log := slog.New(slog.NewTextHandler(env.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
			report, err := badgerstore.Verify(cmd.Context(), dataDir, log)
			if err != nil {
				return err
			}
			for _, d := range report.Damage {
				fmt.Fprintln(env.stdout, "damaged: "+oneLine(d))
			}
			if len(report.Damage) > 0 {
				return errDamaged
			}
			fmt.Fprintf(env.stdout, "ok: %d jobs, %d keys and %d tables checked in %s, nothing damaged\n",
				report.Jobs, report.Keys, report.Tables, dataDir)
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "the data directory to check (default: TROUPE_DATA_DIR)")
	return cmd
}
