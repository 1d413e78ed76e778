package pgstore

import (
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// TestQueryAsyncCommitsItsOwnTransactionAsynchronously: the statement
// queryAsync runs sees synchronous_commit off, and the setting ends with
// its transaction: the next statement on the pool commits as the server
// is configured.
func TestQueryAsyncCommitsItsOwnTransactionAsynchronously(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	ctx := t.Context()
	show := `SELECT current_setting('synchronous_commit')`
	var configured string
	require.NoError(t, s.pool.QueryRow(ctx, show).Scan(&configured))
	require.NotEqual(t, "off", configured, "the test server commits synchronously")

	// One connection, so that the statement after runs where the setting
	// was made.
	conn, err := s.pool.Acquire(ctx)
	require.NoError(t, err)
	defer conn.Release()
	for range 3 {
		var inside string
		require.NoError(t, queryAsyncOn(ctx, conn, func(rows pgx.Rows) error {
			var err error
			inside, err = pgx.CollectExactlyOneRow(rows, pgx.RowTo[string])
			return err
		}, show))
		require.Equal(t, "off", inside)
		var after string
		require.NoError(t, conn.QueryRow(ctx, show).Scan(&after))
		require.Equal(t, configured, after, "the setting ends with its transaction")
	}
}
