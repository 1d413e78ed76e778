package pgstore

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/internal/pgtest"
)

// seedKeyedSQL fills troupe_jobs with 110,000 jobs: in queue "flow",
// 1,000 running and 99,000 pending over 10,000 distinct keys; in queue
// "default", 10,000 pending without a key.
var seedKeyedSQL = strings.Replace(seedJobsSQL, "/*insert*/", `
    INSERT INTO troupe_jobs (id, status, type, payload, attempts, max_attempts, created_at, updated_at,
                             run_at, started_at, queue, priority, key, owner_node, lease_expires_at)
    SELECT gen_random_uuid(), CASE WHEN i <= 1000 THEN 'running' ELSE 'pending' END, 'noop', '\x7b7d',
           CASE WHEN i <= 1000 THEN 1 ELSE 0 END, 3,
           now() - interval '1 hour' + i * interval '1 microsecond', now(),
           now() - interval '1 hour' + i * interval '1 microsecond',
           CASE WHEN i <= 1000 THEN now() END,
           CASE WHEN i > 100000 THEN 'default' ELSE 'flow' END, 1 + i % 9,
           CASE WHEN i <= 100000 THEN 'k' || (i % 10000) END,
           CASE WHEN i <= 1000 THEN 'n0' END,
           CASE WHEN i <= 1000 THEN now() + interval '1 hour' END
      FROM generate_series(1, 110000) AS i`, 1)

// flowIndexes are the indexes a flow claim may read troupe_jobs through.
var flowIndexes = []string{
	"troupe_jobs_pkey", "troupe_jobs_claim_idx", "troupe_jobs_lease_idx", "troupe_jobs_status_created_idx",
	"troupe_jobs_key_pending_idx", "troupe_jobs_key_order_idx", "troupe_jobs_key_holders_idx",
}

// TestFlowClaimPlanWithTenThousandKeys checks that every statement the
// flow claim (troupe_flow_claim) runs reads troupe_jobs through an index,
// with 10,000 distinct keys, 99,000 pending jobs and 1,000 running: the
// nested statements' plans come from auto_explain, for each kind of
// settings, before and after statistics. It logs them.
func TestFlowClaimPlanWithTenThousandKeys(t *testing.T) {
	if testing.Short() {
		t.Skip("seeds 110,000 jobs")
	}
	t.Parallel()
	schema := pgtest.RandomSchema(t)
	s := newTestStoreIn(t, schema)
	ctx := t.Context()
	_, err := s.pool.Exec(ctx, `ALTER TABLE troupe_jobs SET (autovacuum_enabled = false)`)
	require.NoError(t, err)
	_, err = s.pool.Exec(ctx, seedKeyedSQL)
	require.NoError(t, err)

	var (
		mu    sync.Mutex
		plans []string
	)
	cfg, err := pgx.ParseConfig(pgtest.URL(t))
	require.NoError(t, err)
	cfg.RuntimeParams["search_path"] = pgx.Identifier{schema}.Sanitize()
	cfg.RuntimeParams["jit"] = "off"
	cfg.RuntimeParams["enable_bitmapscan"] = "off"
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		if _, plan, ok := strings.Cut(n.Message, "plan:\n"); ok {
			mu.Lock()
			plans = append(plans, plan)
			mu.Unlock()
		}
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	require.NoError(t, err)
	defer conn.Close(context.WithoutCancel(ctx))

	settings := map[string]domain.QueueSettings{
		"KeyLimit":        {PerKey: &domain.KeyLimits{Limit: 1}},
		"Ordered":         {PerKey: &domain.KeyLimits{Limit: 1}, Ordered: true},
		"FairKeyRate":     {Fair: true, PerKey: &domain.KeyLimits{Limit: 1, Rate: &domain.Rate{Count: 10, Per: time.Second}}},
		"FairOrdered":     {Fair: true, PerKey: &domain.KeyLimits{Limit: 1}, Ordered: true},
		"QueueLimitRate":  {Limit: 2000, Rate: &domain.Rate{Count: 1000, Per: time.Second}},
		"KeyLimitOfThree": {Limit: 5000, PerKey: &domain.KeyLimits{Limit: 3}},
	}
	names := make([]string, 0, len(settings))
	for name := range settings {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, stats := range []string{"NoStatistics", "Analyzed"} {
		if stats == "Analyzed" {
			_, err = s.pool.Exec(ctx, `ANALYZE troupe_jobs`)
			require.NoError(t, err)
		}
		for _, name := range names {
			t.Run(stats+"/"+name, func(t *testing.T) {
				require.NoError(t, s.SetQueueSettings(ctx, "flow", settings[name]))
				mu.Lock()
				plans = nil
				mu.Unlock()
				tx, err := conn.Begin(ctx)
				require.NoError(t, err)
				defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
				for _, sql := range []string{
					`LOAD 'auto_explain'`,
					`SET LOCAL auto_explain.log_min_duration = 0`,
					`SET LOCAL auto_explain.log_nested_statements = on`,
					`SET LOCAL auto_explain.log_format = json`,
					`SET LOCAL client_min_messages = log`,
				} {
					_, err := tx.Exec(ctx, sql)
					require.NoError(t, err)
				}
				// Three claims of 100, each seeing the starts before it.
				claimed := 0
				for range 3 {
					rows, err := tx.Query(ctx, `SELECT id FROM troupe_flow_claim('n1', 100, 3600000000, '{}', '{}', NULL, NULL)`)
					require.NoError(t, err)
					ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
					require.NoError(t, err)
					claimed += len(ids)
				}
				_, err = tx.Exec(ctx, `SET LOCAL client_min_messages = notice`)
				require.NoError(t, err)
				require.Positive(t, claimed)

				mu.Lock()
				defer mu.Unlock()
				require.NotEmpty(t, plans, "auto_explain logged the claim's statements")
				seen := map[string]bool{}
				var summary []string
				for _, raw := range plans {
					var p struct {
						QueryText string   `json:"Query Text"`
						Plan      planNode `json:"Plan"`
					}
					require.NoError(t, json.Unmarshal([]byte(raw), &p), raw)
					if strings.Contains(p.QueryText, "troupe_flow_claim('n1'") {
						continue // the call itself: its plan is a function scan
					}
					reads := flowReads(t, p.Plan, p.QueryText)
					line := fmt.Sprintf("%-60.60s %s", strings.Join(strings.Fields(p.QueryText), " "), strings.Join(reads, ", "))
					if !seen[line] {
						seen[line] = true
						summary = append(summary, line)
					}
				}
				t.Logf("claimed %d; statements and their reads of troupe_jobs:\n%s", claimed, strings.Join(summary, "\n"))
			})
		}
	}
}

// flowReads fails when a node under n reads troupe_jobs other than by an
// index scan of flowIndexes, and returns those scans.
func flowReads(t *testing.T, n planNode, query string) []string {
	t.Helper()
	var reads []string
	if n.RelationName == "troupe_jobs" && n.NodeType != "ModifyTable" {
		raw, _ := json.Marshal(n)
		require.Contains(t, []string{"Index Scan", "Index Only Scan"}, n.NodeType, "%s\n%s", query, raw)
		require.Contains(t, flowIndexes, n.IndexName, "%s\n%s", query, raw)
		reads = append(reads, n.NodeType+" "+n.IndexName)
	}
	for _, c := range n.Plans {
		reads = append(reads, flowReads(t, c, query)...)
	}
	return reads
}
