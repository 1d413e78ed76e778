package pgstore

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/internal/pgtest"
)

// tableExists reports whether schema holds a troupe_jobs table.
func tableExists(t *testing.T, url, schema string) bool {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	require.NoError(t, err)
	defer conn.Close(context.WithoutCancel(t.Context()))
	var exists bool
	require.NoError(t, conn.QueryRow(t.Context(),
		`SELECT to_regclass(format('%I.troupe_jobs', $1::text)) IS NOT NULL`, schema).Scan(&exists))
	return exists
}

func TestMigrate(t *testing.T) {
	t.Parallel()

	t.Run("UpDownUp", func(t *testing.T) {
		t.Parallel()
		url := pgtest.URL(t)
		schema := pgtest.RandomSchema(t)
		pgtest.DropSchemaOnCleanup(t, url, schema)

		require.NoError(t, Migrate(t.Context(), url, schema, MigrationUp))
		require.True(t, tableExists(t, url, schema))
		require.NoError(t, Migrate(t.Context(), url, schema, MigrationUp), "migrating up twice is a no-op")

		require.NoError(t, Migrate(t.Context(), url, schema, MigrationDown))
		require.False(t, tableExists(t, url, schema))

		require.NoError(t, Migrate(t.Context(), url, schema, MigrationUp))
		require.True(t, tableExists(t, url, schema))

		s, err := Open(t.Context(), Options{URL: url, Schema: schema, SkipMigrations: true})
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, s.Close()) })
		require.NoError(t, s.Create(t.Context(), newJob(t, "noop", 1, past(0))))
	})

	t.Run("SchemasMigrateIndependently", func(t *testing.T) {
		t.Parallel()
		url := pgtest.URL(t)
		a, b := pgtest.RandomSchema(t), pgtest.RandomSchema(t)
		pgtest.DropSchemaOnCleanup(t, url, a)
		pgtest.DropSchemaOnCleanup(t, url, b)
		require.NoError(t, Migrate(t.Context(), url, a, MigrationUp))
		require.NoError(t, Migrate(t.Context(), url, b, MigrationUp))
		require.NoError(t, Migrate(t.Context(), url, a, MigrationDown))
		require.False(t, tableExists(t, url, a))
		require.True(t, tableExists(t, url, b), "b keeps its version and its table")
	})

	t.Run("OpenWithoutMigrationsFindsNoTable", func(t *testing.T) {
		t.Parallel()
		url := pgtest.URL(t)
		schema := pgtest.RandomSchema(t)
		s, err := Open(t.Context(), Options{URL: url, Schema: schema, SkipMigrations: true})
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, s.Close()) })
		_, err = s.Get(t.Context(), newJob(t, "noop", 1, past(0)).ID)
		require.Error(t, err)
		require.NotErrorIs(t, err, domain.ErrNotFound)
	})

	t.Run("RejectsAnUnknownDirection", func(t *testing.T) {
		t.Parallel()
		url := pgtest.URL(t)
		require.ErrorIs(t, Migrate(t.Context(), url, pgtest.RandomSchema(t), "sideways"), domain.ErrInvalid)
	})
}

func TestOpenConcurrentlyOnANewSchema(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	schema := pgtest.RandomSchema(t)
	pgtest.DropSchemaOnCleanup(t, url, schema)
	// Nodes that start together race to create the schema and migrate it.
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			s, err := Open(context.Background(), Options{URL: url, Schema: schema, MaxConns: 2})
			if err == nil {
				err = s.Close()
			}
			errs <- err
		}()
	}
	for range 4 {
		require.NoError(t, <-errs)
	}
}
