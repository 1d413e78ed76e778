package pgstore

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/internal/pgtest"
	"github.com/troupe-go/troupe/persistence/storetest"
)

// TestSharedQueue runs the shared queue's conformance suite. Each subtest
// gets a schema of its own; every node it opens is a Store of its own on
// that schema, with its own pool and listener, as on separate machines.
func TestSharedQueue(t *testing.T) {
	t.Parallel()
	storetest.RunShared(t, func(t *testing.T) storetest.OpenNode {
		url, schema := pgtest.URL(t), pgtest.RandomSchema(t)
		// Registered first, so it runs after every node has closed.
		pgtest.DropSchemaOnCleanup(t, url, schema)
		return func(t *testing.T) storetest.SharedStore {
			t.Helper()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			s, err := Open(ctx, Options{URL: url, Schema: schema, MaxConns: 10})
			require.NoError(t, err)
			t.Cleanup(func() { require.NoError(t, s.Close()) })
			return s
		}
	})
}
