// Package pgtest finds the PostgreSQL that tests use and gives each test a
// schema of its own, so that tests of several packages run in parallel on
// one database. It is for tests only.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultURL is the database used when TROUPE_TEST_DATABASE_URL is not set:
// the one .ci/run starts.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// URL returns the URL of the test database after checking that it answers.
// Without one, the test is skipped on a developer's machine and fails in CI
// (CI set), where a missing service is a broken build.
func URL(tb testing.TB) string {
	tb.Helper()
	url := os.Getenv("TROUPE_TEST_DATABASE_URL")
	if url == "" {
		url = DefaultURL
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err == nil {
		err = conn.Ping(ctx)
		_ = conn.Close(ctx)
	}
	if err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatalf("PostgreSQL is required in CI: %v", err)
		}
		tb.Skipf("no PostgreSQL at TROUPE_TEST_DATABASE_URL or %s: %v", DefaultURL, err)
	}
	return url
}

// RandomSchema returns a fresh schema name.
func RandomSchema(tb testing.TB) string {
	tb.Helper()
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return "troupe_test_" + hex.EncodeToString(b)
}

// DropSchemaOnCleanup drops schema, and everything in it, when the test ends.
func DropSchemaOnCleanup(tb testing.TB, url, schema string) {
	tb.Helper()
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{schema}.Sanitize()+` CASCADE`); err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
		}
	})
}
