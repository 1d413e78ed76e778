package pgstore

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
)

// seedJobsSQL runs the INSERT that replaces /*insert*/ on troupe_jobs. The
// indexes are dropped for the insert and built again after, which takes
// seconds where inserting into them row by row takes half a minute.
const seedJobsSQL = `
DO $$
DECLARE
    r record;
BEGIN
    CREATE TEMP TABLE saved_indexes ON COMMIT DROP AS
        SELECT indexname, indexdef FROM pg_indexes
         WHERE schemaname = current_schema() AND tablename = 'troupe_jobs' AND indexname <> 'troupe_jobs_pkey';
    FOR r IN SELECT indexname FROM saved_indexes LOOP
        EXECUTE format('DROP INDEX %I', r.indexname);
    END LOOP;
    ALTER TABLE troupe_jobs DROP CONSTRAINT troupe_jobs_pkey;
    ALTER TABLE troupe_jobs DISABLE TRIGGER troupe_jobs_notify_insert;

    /*insert*/;

    ALTER TABLE troupe_jobs ENABLE TRIGGER troupe_jobs_notify_insert;
    ALTER TABLE troupe_jobs ADD CONSTRAINT troupe_jobs_pkey PRIMARY KEY (id);
    FOR r IN SELECT indexdef FROM saved_indexes LOOP
        EXECUTE r.indexdef;
    END LOOP;
    INSERT INTO troupe_queues (name) VALUES ('bulk'), ('default') ON CONFLICT DO NOTHING;
END
$$`

// seedPendingSQL fills troupe_jobs with /*count*/ pending jobs: nine in ten
// in queue "bulk", one in ten in "default", priorities 1 to 9, all due.
var seedPendingSQL = strings.Replace(seedJobsSQL, "/*insert*/", `
    INSERT INTO troupe_jobs (id, status, type, payload, max_attempts, created_at, updated_at, run_at, queue, priority)
    SELECT gen_random_uuid(), 'pending', 'noop', '\x7b7d', 3,
           now() - interval '1 hour' + i * interval '1 microsecond', now(),
           now() - interval '1 hour' + i * interval '1 microsecond',
           CASE WHEN i % 10 = 0 THEN 'default' ELSE 'bulk' END, 1 + i % 9
      FROM generate_series(1, /*count*/) AS i`, 1)

// TestClaimPlanWithAMillionPendingJobs checks that the claim walks the claim
// index, queue by queue, and never scans or sorts the pending jobs: its
// cost must not grow with the backlog. It checks the plan PostgreSQL picks
// for the first executions (custom) and the one it may cache (generic),
// with and without a type filter and a queue filter.
func TestClaimPlanWithAMillionPendingJobs(t *testing.T) {
	if testing.Short() {
		t.Skip("seeds a million jobs")
	}
	t.Parallel()
	s := newTestStore(t)
	ctx := t.Context()
	const pending = 1_000_000
	start := time.Now()
	// No statistics until the test asks for them: the planner's guesses
	// on a table it never analyzed are the ones most likely to mislead it.
	_, err := s.pool.Exec(ctx, `ALTER TABLE troupe_jobs SET (autovacuum_enabled = false)`)
	require.NoError(t, err)
	_, err = s.pool.Exec(ctx, strings.Replace(seedPendingSQL, "/*count*/", strconv.Itoa(pending), 1))
	require.NoError(t, err)
	t.Logf("seeded %d pending jobs in %s", pending, time.Since(start).Round(time.Millisecond))

	// Claims of 100: by a node with room for 50 jobs of "bulk", which
	// shares them between the two queues, and by one with no room for
	// "bulk", which serves "default" alone.
	claims := map[string]string{
		"TwoQueues": `('n1', 100, 3600000000, '{bulk}', '{50}'`,
		"OneQueue":  `('n1', 100, 3600000000, '{bulk}', '{0}'`,
	}
	for _, stats := range []string{"NoStatistics", "Analyzed"} {
		if stats == "Analyzed" {
			_, err = s.pool.Exec(ctx, `ANALYZE troupe_jobs`)
			require.NoError(t, err)
		}
		for _, mode := range []string{"force_custom_plan", "force_generic_plan"} {
			for variant := range claimStatements {
				for name, args := range claims {
					typed, queued := variant&1 != 0, variant&2 != 0
					t.Run(fmt.Sprintf("%s/%s/%s/types=%t/queues=%t", stats, name, mode, typed, queued), func(t *testing.T) {
						explainClaim(t, s, mode, variant, args)
					})
				}
			}
		}
	}
}

// explainClaim prepares claim statement variant (see claimStatements) as
// the pool prepares it, with plan_cache_mode set to mode, checks the plan
// of its call with args (the first five, open) and the filters, and logs
// it as it ran: EXPLAIN ANALYZE runs it, in a transaction rolled back
// after.
func explainClaim(t *testing.T, s *Store, mode string, variant int, args string) {
	t.Helper()
	ctx := t.Context()
	query := claimStatements[variant]
	params := `text, int, bigint, text[], int[]`
	if variant&1 != 0 {
		params, args = params+`, text[]`, args+`, '{noop}'`
	}
	if variant&2 != 0 {
		params, args = params+`, text[]`, args+`, '{bulk,default}'`
	}
	args += `)`
	tx, err := s.pool.Begin(ctx)
	require.NoError(t, err)
	defer func() {
		_ = tx.Rollback(ctx)
		_, _ = s.pool.Exec(ctx, `DEALLOCATE ALL`, pgx.QueryExecModeSimpleProtocol)
	}()
	exec := func(sql string) {
		t.Helper()
		_, err := tx.Exec(ctx, sql, pgx.QueryExecModeSimpleProtocol)
		require.NoError(t, err)
	}
	exec(`SET LOCAL plan_cache_mode = ` + mode)
	exec(`PREPARE claim(` + params + `) AS ` + query)
	call := `EXECUTE claim` + args
	var plans []struct{ Plan planNode }
	require.NoError(t, tx.QueryRow(ctx, `EXPLAIN (FORMAT JSON) `+call, pgx.QueryExecModeSimpleProtocol).Scan(&plans))
	require.Len(t, plans, 1)
	scans := requireIndexBackedClaim(t, plans[0].Plan, false)
	require.NotZero(t, scans, "the claim reads troupe_jobs through the claim index")

	rows, err := tx.Query(ctx, `EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) `+call, pgx.QueryExecModeSimpleProtocol)
	require.NoError(t, err)
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	t.Logf("plan:\n%s", strings.Join(lines, "\n"))
}

// planNode is a node of EXPLAIN (FORMAT JSON).
type planNode struct {
	NodeType           string     `json:"Node Type"`
	RelationName       string     `json:"Relation Name"`
	IndexName          string     `json:"Index Name"`
	IndexCond          string     `json:"Index Cond"`
	ParentRelationship string     `json:"Parent Relationship"`
	Plans              []planNode `json:"Plans"`
}

// requireIndexBackedClaim fails when a node under n reads troupe_jobs other
// than through the claim index (or its primary key, by the IDs claimed), or when a Sort has such a read below it
// with no Limit in between (it would sort pending jobs rather than take them
// in index order; sorting the few rows a Limit let through is fine). A CTE
// hangs under the node that uses it as an InitPlan: it is not that node's
// input. It returns how many scans of the claim index it found.
func requireIndexBackedClaim(t *testing.T, n planNode, underSort bool) int {
	t.Helper()
	scans := 0
	if n.RelationName == "troupe_jobs" && n.NodeType != "ModifyTable" {
		raw, _ := json.Marshal(n)
		switch n.NodeType {
		case "Index Scan", "Index Only Scan":
			if n.IndexName == "troupe_jobs_pkey" {
				// The update finding the claimed rows by ID.
				require.Contains(t, n.IndexCond, "(id = ANY ", "scan %s", raw)
				return 0
			}
			require.Equal(t, "troupe_jobs_claim_idx", n.IndexName, "scan %s", raw)
		default:
			t.Fatalf("the claim reads troupe_jobs by %s: %s", n.NodeType, raw)
		}
		require.False(t, underSort, "a Sort above a scan of troupe_jobs: %s", raw)
		scans++
	}
	for _, child := range n.Plans {
		sorted := (underSort || n.NodeType == "Sort" || n.NodeType == "Incremental Sort") && n.NodeType != "Limit"
		if child.ParentRelationship == "InitPlan" {
			sorted = false
		}
		scans += requireIndexBackedClaim(t, child, sorted)
	}
	return scans
}

// seedFinishedSQL fills troupe_jobs with /*count*/ jobs, a quarter each
// pending, completed, failed and canceled, the finished ones finished
// from two hours ago until now, in an order unrelated to their creation.
// One in eight holds a unique key for two hours after it finished; one in
// a hundred came from a schedule.
var seedFinishedSQL = strings.Replace(seedJobsSQL, "/*insert*/", `
    INSERT INTO troupe_jobs (id, status, type, payload, attempts, max_attempts, created_at, updated_at,
                             run_at, started_at, finished_at, queue, priority,
                             unique_key, unique_held, unique_for_ns, schedule)
    SELECT gen_random_uuid(), (ARRAY['pending', 'completed', 'failed', 'canceled'])[1 + i % 4],
           'noop', '\x7b7d', 1, 3,
           now() - interval '3 hours' + (i::bigint * 7919 % 1000003) * interval '10 microsecond', now(),
           now() - interval '3 hours', now() - interval '3 hours',
           CASE WHEN i % 4 <> 0 THEN now() - (7200 * 1000000::bigint / /*count*/) * i * interval '1 microsecond' END,
           'bulk', 5,
           CASE WHEN i % 8 = 1 THEN 'k' || i END, i % 8 = 1,
           CASE WHEN i % 8 = 1 THEN 7200 * 1000000000::bigint ELSE 0 END,
           CASE WHEN i % 100 = 0 THEN 'nightly' END
      FROM generate_series(1, /*count*/) AS i`, 1)

// TestDeleteFinishedPlanWithAMillionJobs checks that the pruner's
// statement takes the oldest finished jobs of a status along the finished
// index and stops at its limit: it neither scans the table nor sorts the
// jobs, so its cost does not grow with the jobs kept. On the same jobs, a
// listing by schedule reads the schedule index. It checks the plan
// PostgreSQL picks for the first executions (custom) and the one it may
// cache (generic), before and after statistics.
func TestDeleteFinishedPlanWithAMillionJobs(t *testing.T) {
	if testing.Short() {
		t.Skip("seeds a million jobs")
	}
	t.Parallel()
	s := newTestStore(t)
	ctx := t.Context()
	const jobs = 1_000_000
	start := time.Now()
	_, err := s.pool.Exec(ctx, `ALTER TABLE troupe_jobs SET (autovacuum_enabled = false)`)
	require.NoError(t, err)
	_, err = s.pool.Exec(ctx, strings.ReplaceAll(seedFinishedSQL, "/*count*/", strconv.Itoa(jobs)))
	require.NoError(t, err)
	t.Logf("seeded %d jobs in %s", jobs, time.Since(start).Round(time.Millisecond))

	for _, stats := range []string{"NoStatistics", "Analyzed"} {
		if stats == "Analyzed" {
			_, err = s.pool.Exec(ctx, `ANALYZE troupe_jobs`)
			require.NoError(t, err)
		}
		for _, mode := range []string{"force_custom_plan", "force_generic_plan"} {
			for _, status := range []string{"completed", "canceled"} {
				// The caller's clock, and the database's (NULL).
				for _, now := range []string{"now()", "NULL"} {
					t.Run(fmt.Sprintf("%s/%s/%s/now=%s", stats, mode, status, now), func(t *testing.T) {
						explainDeleteFinished(t, s, mode, fmt.Sprintf(`('%s', now() - interval '1 hour', %s, 1000)`, status, now))
					})
				}
			}
			t.Run(fmt.Sprintf("%s/%s/ScheduleFilter", stats, mode), func(t *testing.T) {
				explainScheduleFilter(t, s, mode)
			})
		}
	}
}

// explainScheduleFilter checks that List's count and page of a schedule's
// jobs (GET /jobs?schedule=) read the schedule index, not the table.
func explainScheduleFilter(t *testing.T, s *Store, mode string) {
	t.Helper()
	ctx := t.Context()
	where, _ := filterWhere(domain.Filter{Schedule: "nightly"})
	for _, query := range []string{
		`SELECT count(*) FROM troupe_jobs` + where,
		`SELECT ` + jobColumns + ` FROM troupe_jobs` + where + ` ORDER BY created_at, id LIMIT 50`,
	} {
		func() {
			tx, err := s.pool.Begin(ctx)
			require.NoError(t, err)
			defer func() {
				_ = tx.Rollback(ctx)
				_, _ = s.pool.Exec(ctx, `DEALLOCATE ALL`, pgx.QueryExecModeSimpleProtocol)
			}()
			for _, sql := range []string{`SET LOCAL plan_cache_mode = ` + mode, `PREPARE list(text) AS ` + query} {
				_, err := tx.Exec(ctx, sql, pgx.QueryExecModeSimpleProtocol)
				require.NoError(t, err)
			}
			var plans []struct{ Plan planNode }
			require.NoError(t, tx.QueryRow(ctx, `EXPLAIN (FORMAT JSON) EXECUTE list('nightly')`, pgx.QueryExecModeSimpleProtocol).Scan(&plans))
			require.Len(t, plans, 1)
			var walk func(n planNode) int
			walk = func(n planNode) int {
				scans := 0
				if n.RelationName == "troupe_jobs" {
					raw, _ := json.Marshal(n)
					require.Contains(t, []string{"Index Scan", "Index Only Scan"}, n.NodeType, "%s: %s", query, raw)
					require.Equal(t, "troupe_jobs_schedule_idx", n.IndexName, "%s: %s", query, raw)
					scans++
				}
				require.NotEqual(t, "Sort", n.NodeType, "%s: the index gives the listing order", query)
				for _, c := range n.Plans {
					scans += walk(c)
				}
				return scans
			}
			require.NotZero(t, walk(plans[0].Plan), query)
		}()
	}
}

// explainDeleteFinished prepares deleteFinishedSQL with plan_cache_mode
// set to mode, checks the plan of its call with args and logs it as it ran,
// in a transaction rolled back after.
func explainDeleteFinished(t *testing.T, s *Store, mode, args string) {
	t.Helper()
	ctx := t.Context()
	tx, err := s.pool.Begin(ctx)
	require.NoError(t, err)
	defer func() {
		_ = tx.Rollback(ctx)
		_, _ = s.pool.Exec(ctx, `DEALLOCATE ALL`, pgx.QueryExecModeSimpleProtocol)
	}()
	exec := func(sql string) {
		t.Helper()
		_, err := tx.Exec(ctx, sql, pgx.QueryExecModeSimpleProtocol)
		require.NoError(t, err)
	}
	exec(`SET LOCAL plan_cache_mode = ` + mode)
	exec(`PREPARE prune(text, timestamptz, timestamptz, int) AS ` + deleteFinishedSQL)
	call := `EXECUTE prune` + args
	var plans []struct{ Plan planNode }
	require.NoError(t, tx.QueryRow(ctx, `EXPLAIN (FORMAT JSON) `+call, pgx.QueryExecModeSimpleProtocol).Scan(&plans))
	require.Len(t, plans, 1)
	require.NotZero(t, requireFinishedIndexScan(t, plans[0].Plan, false), "the delete finds its jobs on the finished index")

	rows, err := tx.Query(ctx, `EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) `+call, pgx.QueryExecModeSimpleProtocol)
	require.NoError(t, err)
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	t.Logf("plan:\n%s", strings.Join(lines, "\n"))
}

// requireFinishedIndexScan fails when a node under n reads troupe_jobs other
// than through the finished index (or its primary key, by the IDs picked),
// or when a Sort is above a read of troupe_jobs: the index gives the
// oldest first, and sorting would mean reading every match. It returns how
// many scans of the finished index it found.
func requireFinishedIndexScan(t *testing.T, n planNode, underSort bool) int {
	t.Helper()
	scans := 0
	if n.RelationName == "troupe_jobs" && n.NodeType != "ModifyTable" {
		raw, _ := json.Marshal(n)
		switch n.NodeType {
		case "Index Scan", "Index Only Scan":
			if n.IndexName == "troupe_jobs_pkey" {
				require.Contains(t, n.IndexCond, "(id = ANY ", "scan %s", raw)
				return 0
			}
			require.Equal(t, "troupe_jobs_finished_idx", n.IndexName, "scan %s", raw)
			require.Contains(t, n.IndexCond, "finished_at <", "the index bounds the scan by age: %s", raw)
		default:
			t.Fatalf("the delete reads troupe_jobs by %s: %s", n.NodeType, raw)
		}
		require.False(t, underSort, "a Sort above a scan of troupe_jobs: %s", raw)
		scans++
	}
	for _, child := range n.Plans {
		sorted := underSort || n.NodeType == "Sort" || n.NodeType == "Incremental Sort"
		if child.ParentRelationship == "InitPlan" {
			sorted = false
		}
		scans += requireFinishedIndexScan(t, child, sorted)
	}
	return scans
}
