package pgstore

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"log/slog"

	"github.com/golang-migrate/migrate/v4"
	migratepgx "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/troupe-go/troupe/domain"
)

// migrations holds the schema's history; the binary carries it, so a node
// never depends on files next to it.
//
//go:embed migrations/*.sql
var migrations embed.FS

// MigrationsTable is the table, in the store's schema, where golang-migrate
// records the schema's version. It is Troupe's own, so that an application
// whose migrations share the schema keeps its schema_migrations.
const MigrationsTable = "troupe_schema_migrations"

// MigrationDirection says which way Migrate goes.
type MigrationDirection string

// The directions of Migrate.
const (
	// MigrationUp applies every migration not yet applied.
	MigrationUp MigrationDirection = "up"
	// MigrationDown reverts every migration, dropping Troupe's tables and
	// everything in them. The schema itself stays.
	MigrationDown MigrationDirection = "down"
)

// Migrate moves the schema of the store at url to the given direction's
// end, creating the schema first if it does not exist. It is what Open runs
// (up) and what an operator runs ahead of a deploy. Two schemas in one
// database migrate independently: each keeps its own MigrationsTable and its
// own migration lock. A missing or empty schema gives domain.ErrInvalid.
func Migrate(ctx context.Context, url, schema string, direction MigrationDirection) error {
	opts := Options{URL: url, Schema: schema}.WithDefaults()
	if err := opts.Validate(); err != nil {
		return err
	}
	cfg, err := poolConfig(opts)
	if err != nil {
		return err
	}
	return migrateConfig(ctx, cfg.ConnConfig, opts.Schema, direction, opts.Logger)
}

// migrateConfig runs the migrations over a database/sql handle built from
// cfg, which golang-migrate's pgx driver requires, then closes it.
func migrateConfig(ctx context.Context, cfg *pgx.ConnConfig, schema string, direction MigrationDirection, logger *slog.Logger) error {
	if direction != MigrationUp && direction != MigrationDown {
		return fmt.Errorf("%w: pgstore: unknown migration direction %q", domain.ErrInvalid, direction)
	}
	if err := ensureSchema(ctx, cfg, schema); err != nil {
		return err
	}

	db := stdlib.OpenDB(*cfg.Copy())
	defer db.Close()
	if err := db.PingContext(ctx); err != nil {
		return fmt.Errorf("pgstore: migrate schema %s: %w", schema, err)
	}
	driver, err := migratepgx.WithInstance(db, &migratepgx.Config{
		SchemaName:      schema,
		MigrationsTable: MigrationsTable,
	})
	if err != nil {
		return fmt.Errorf("pgstore: migrate schema %s: %w", schema, err)
	}
	source, err := iofs.New(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("pgstore: migrate schema %s: %w", schema, err)
	}
	m, err := migrate.NewWithInstance("iofs", source, "pgx5", driver)
	if err != nil {
		_ = driver.Close()
		return fmt.Errorf("pgstore: migrate schema %s: %w", schema, err)
	}
	defer m.Close()
	m.Log = migrateLogger{logger: logger.With("component", "pgstore", "schema", schema)}

	// golang-migrate takes no context; GracefulStop makes it stop between
	// two migrations when ctx ends.
	stopped := make(chan struct{})
	defer close(stopped)
	go func() {
		select {
		case <-ctx.Done():
			select {
			case m.GracefulStop <- true:
			case <-stopped:
			}
		case <-stopped:
		}
	}()

	if direction == MigrationUp {
		err = m.Up()
	} else {
		err = m.Down()
	}
	if errors.Is(err, migrate.ErrNoChange) {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("pgstore: migrate schema %s %s: %w", schema, direction, err)
	}
	return ctx.Err()
}

// ensureSchema creates the schema unless it exists. It looks first, so that
// a role without CREATE on the database can still use a schema made for it.
func ensureSchema(ctx context.Context, cfg *pgx.ConnConfig, schema string) error {
	conn, err := pgx.ConnectConfig(ctx, cfg.Copy())
	if err != nil {
		return fmt.Errorf("pgstore: connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, schema).Scan(&exists); err != nil {
		return fmt.Errorf("pgstore: look up schema %s: %w", schema, err)
	}
	if exists {
		return nil
	}
	// IF NOT EXISTS is not safe against a concurrent CREATE (nodes starting
	// together race on the catalog's unique index), so the losers of that
	// race find the schema made and carry on.
	_, err = conn.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+pgx.Identifier{schema}.Sanitize())
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == pgerrcode.UniqueViolation {
		return nil
	}
	if err != nil {
		return fmt.Errorf("pgstore: create schema %s: %w", schema, err)
	}
	return nil
}

// migrateLogger sends golang-migrate's messages to slog at debug level.
type migrateLogger struct{ logger *slog.Logger }

// Printf logs one message of golang-migrate.
func (l migrateLogger) Printf(format string, v ...any) {
	l.logger.Debug("migrate: " + fmt.Sprintf(format, v...))
}

// Verbose asks golang-migrate for its detailed messages only when debug
// logging is on.
func (l migrateLogger) Verbose() bool {
	return l.logger.Enabled(context.Background(), slog.LevelDebug)
}
