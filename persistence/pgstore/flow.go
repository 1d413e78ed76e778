package pgstore

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/troupe-go/troupe/domain"
)

// Flow control. A queue's settings are columns of its troupe_queues row,
// with its rate bucket (tokens, refilled_at; NULL tokens = full); per-key
// buckets are rows of troupe_key_buckets (a missing row = full). Claims of
// queues with settings run troupe_flow_claim (migration 000005), under the
// queue's row lock; every reading here uses the database's now().

// settingsColumns are the settings columns of troupe_queues, in
// settingsRow's order.
const settingsColumns = `flow_limit, rate_count, rate_per_ns, rate_burst,
	key_limits, key_limit, key_rate_count, key_rate_per_ns, key_rate_burst, ordered, fair`

// settingsRow holds the settings columns of a queue.
type settingsRow struct {
	limit         int32
	rateCount     pgtype.Int4
	ratePer       pgtype.Int8
	rateBurst     int32
	keyLimits     bool
	keyLimit      int32
	keyRateCount  pgtype.Int4
	keyRatePer    pgtype.Int8
	keyRateBurst  int32
	ordered, fair bool
}

func (r *settingsRow) dest() []any {
	return []any{&r.limit, &r.rateCount, &r.ratePer, &r.rateBurst,
		&r.keyLimits, &r.keyLimit, &r.keyRateCount, &r.keyRatePer, &r.keyRateBurst, &r.ordered, &r.fair}
}

func (r *settingsRow) settings() domain.QueueSettings {
	s := domain.QueueSettings{Limit: int(r.limit), Ordered: r.ordered, Fair: r.fair}
	if r.rateCount.Valid {
		s.Rate = &domain.Rate{Count: int(r.rateCount.Int32), Per: time.Duration(r.ratePer.Int64), Burst: int(r.rateBurst)}
	}
	if r.keyLimits {
		s.PerKey = &domain.KeyLimits{Limit: int(r.keyLimit)}
		if r.keyRateCount.Valid {
			s.PerKey.Rate = &domain.Rate{Count: int(r.keyRateCount.Int32), Per: time.Duration(r.keyRatePer.Int64), Burst: int(r.keyRateBurst)}
		}
	}
	return s
}

// rateArgs are a rate's columns: NULL count and period when there is none.
func rateArgs(r *domain.Rate) (pgtype.Int4, pgtype.Int8, int32) {
	if r == nil {
		return pgtype.Int4{}, pgtype.Int8{}, 0
	}
	return pgtype.Int4{Int32: int32(r.Count), Valid: true}, pgtype.Int8{Int64: int64(r.Per), Valid: true}, int32(r.Burst)
}

// setSettingsSQL writes a queue's settings ($2...$13). The queue's bucket
// starts full again (NULL) only when its rate changed, and the fair
// cursor is forgotten when the settings are cleared. It returns whether
// the per-key rate changed, so that the keys' buckets start full too.
const setSettingsSQL = `
WITH old AS MATERIALIZED (
    SELECT key_rate_count, key_rate_per_ns, key_rate_burst FROM troupe_queues WHERE name = $1 FOR UPDATE
), up AS (
    INSERT INTO troupe_queues AS q (name, flow, flow_limit, rate_count, rate_per_ns, rate_burst,
                                    key_limits, key_limit, key_rate_count, key_rate_per_ns, key_rate_burst, ordered, fair)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
    ON CONFLICT (name) DO UPDATE
       SET flow = EXCLUDED.flow, flow_limit = EXCLUDED.flow_limit,
           rate_count = EXCLUDED.rate_count, rate_per_ns = EXCLUDED.rate_per_ns, rate_burst = EXCLUDED.rate_burst,
           key_limits = EXCLUDED.key_limits, key_limit = EXCLUDED.key_limit,
           key_rate_count = EXCLUDED.key_rate_count, key_rate_per_ns = EXCLUDED.key_rate_per_ns,
           key_rate_burst = EXCLUDED.key_rate_burst, ordered = EXCLUDED.ordered, fair = EXCLUDED.fair,
           tokens = CASE
                        WHEN (q.rate_count, q.rate_per_ns, q.rate_burst)
                             IS NOT DISTINCT FROM (EXCLUDED.rate_count, EXCLUDED.rate_per_ns, EXCLUDED.rate_burst)
                        THEN q.tokens
                    END,
           refilled_at = CASE
                             WHEN (q.rate_count, q.rate_per_ns, q.rate_burst)
                                  IS NOT DISTINCT FROM (EXCLUDED.rate_count, EXCLUDED.rate_per_ns, EXCLUDED.rate_burst)
                             THEN q.refilled_at
                         END,
           fair_cursor = CASE WHEN EXCLUDED.flow THEN q.fair_cursor END
    RETURNING 1
)
SELECT NOT EXISTS (SELECT 1 FROM old)
       OR (SELECT (key_rate_count, key_rate_per_ns, key_rate_burst) FROM old)
          IS DISTINCT FROM ($9::int, $10::bigint, $11::int)
  FROM up`

// SetQueueSettings implements domain.Store: the settings go in the
// queue's troupe_queues row, leaving its pause alone. The queue's bucket
// restarts full when its rate changes, and its keys' buckets when the
// per-key rate changes; the same rate keeps them. Every node is told that
// jobs may be available, as new settings may let jobs start.
func (s *Store) SetQueueSettings(ctx context.Context, name string, settings domain.QueueSettings) error {
	if s.closed.Load() {
		return domain.ErrClosed
	}
	if err := domain.ValidateQueueName(name); err != nil {
		return err
	}
	rateCount, ratePer, rateBurst := rateArgs(settings.Rate)
	var (
		keyLimits bool
		keyLimit  int32
		keyRate   *domain.Rate
	)
	if settings.PerKey != nil {
		keyLimits, keyLimit, keyRate = true, int32(settings.PerKey.Limit), settings.PerKey.Rate
	}
	keyRateCount, keyRatePer, keyRateBurst := rateArgs(keyRate)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var keyRateChanged bool
		if err := tx.QueryRow(ctx, setSettingsSQL, name, !settings.IsZero(), int32(settings.Limit),
			rateCount, ratePer, rateBurst, keyLimits, keyLimit, keyRateCount, keyRatePer, keyRateBurst,
			settings.Ordered, settings.Fair).Scan(&keyRateChanged); err != nil {
			return err
		}
		if keyRateChanged {
			if _, err := tx.Exec(ctx, `DELETE FROM troupe_key_buckets WHERE queue = $1`, name); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, s.channel, `{"kind":"jobs_available"}`)
		return err
	})
	if err != nil {
		return fmt.Errorf("set queue %s settings: %w", name, mapError(err))
	}
	s.queueNames.remember([]string{name})
	if !settings.IsZero() {
		s.flowOn.Store(true)
	}
	return nil
}

// waitingSQL gives the reason each pending, due job of a queue with flow
// settings waits for (domain.WaitReasons, first that holds), ” for none,
// as columns id, queue, reason. /*jobs*/ narrows the jobs.
const waitingSQL = `
WITH fq AS MATERIALIZED (
    SELECT q.*,
           q.flow_limit > 0
           AND (SELECT count(*) FROM troupe_jobs AS r WHERE r.status = 'running' AND r.queue = q.name) >= q.flow_limit AS at_limit,
           q.rate_count IS NOT NULL
           AND troupe_refill(q.tokens, q.refilled_at, now(), q.rate_count, q.rate_per_ns,
                             COALESCE(NULLIF(q.rate_burst, 0), q.rate_count)) < 1 AS rate_empty
      FROM troupe_queues AS q
     WHERE q.flow
), reasons AS (
    SELECT j.id, j.queue,
           CASE
               WHEN fq.at_limit THEN 'queue limit'
               WHEN fq.rate_empty THEN 'queue rate'
               WHEN j.key IS NULL OR NOT fq.key_limits THEN ''
               WHEN fq.key_limit > 0
                    AND (SELECT count(*) FROM troupe_jobs AS h
                          WHERE h.queue = j.queue AND h.key = j.key
                            AND (h.status = 'running' OR (h.status IN ('scheduled', 'pending') AND h.attempts > 0))
                            AND h.status = 'running') >= fq.key_limit THEN 'key limit'
               WHEN fq.ordered
                    AND (EXISTS (SELECT 1 FROM troupe_jobs AS h
                                  WHERE h.queue = j.queue AND h.key = j.key
                                    AND (h.status = 'running' OR (h.status IN ('scheduled', 'pending') AND h.attempts > 0))
                                    AND h.status = 'scheduled')
                         OR troupe_flow_head(j.queue, j.key) IS DISTINCT FROM j.id) THEN 'key order'
               WHEN fq.key_rate_count IS NOT NULL
                    AND (SELECT troupe_refill(b.tokens, b.refilled_at, now(), fq.key_rate_count, fq.key_rate_per_ns,
                                              COALESCE(NULLIF(fq.key_rate_burst, 0), fq.key_rate_count))
                           FROM troupe_key_buckets AS b
                          WHERE b.queue = j.queue AND b.key = j.key) < 1 THEN 'key rate'
               ELSE ''
           END AS reason
      FROM troupe_jobs AS j
      JOIN fq ON fq.name = j.queue
     WHERE j.status = 'pending' AND (j.run_at <= now() OR j.run_at IS NULL) /*jobs*/
)
SELECT id, queue, reason FROM reasons WHERE reason <> ''`

// FlowWaiting implements domain.SharedQueue.
func (s *Store) FlowWaiting(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]domain.WaitReason, error) {
	if s.closed.Load() {
		return nil, domain.ErrClosed
	}
	out := map[uuid.UUID]domain.WaitReason{}
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, strings.Replace(waitingSQL, "/*jobs*/", `AND j.id = ANY($1::uuid[])`, 1), ids)
	if err != nil {
		return nil, fmt.Errorf("flow waiting of %d jobs: %w", len(ids), mapError(err))
	}
	var (
		id            uuid.UUID
		queue, reason string
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &queue, &reason}, func() error {
		out[id] = domain.WaitReason(reason)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("flow waiting of %d jobs: %w", len(ids), mapError(err))
	}
	return out, nil
}

// WaitingCounts implements domain.SharedQueue. It reads the pending jobs
// of the queues with settings, and probes the key indexes for each keyed
// one: its cost grows with those queues' backlog, not with the others'.
func (s *Store) WaitingCounts(ctx context.Context) ([]domain.WaitingCount, error) {
	if s.closed.Load() {
		return nil, domain.ErrClosed
	}
	rows, err := s.pool.Query(ctx, `SELECT queue, reason, count(*) FROM (`+strings.Replace(waitingSQL, "/*jobs*/", "", 1)+`) AS w
 GROUP BY queue, reason ORDER BY queue, reason`)
	if err != nil {
		return nil, fmt.Errorf("count waiting jobs: %w", mapError(err))
	}
	var (
		queue, reason string
		n             int
		out           []domain.WaitingCount
	)
	_, err = pgx.ForEachRow(rows, []any{&queue, &reason, &n}, func() error {
		out = append(out, domain.WaitingCount{Queue: queue, Reason: domain.WaitReason(reason), Count: n})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("count waiting jobs: %w", mapError(err))
	}
	return sortWaiting(out), nil
}

// sortWaiting orders counts by queue, then in the order of
// domain.WaitReasons.
func sortWaiting(counts []domain.WaitingCount) []domain.WaitingCount {
	slices.SortFunc(counts, func(a, b domain.WaitingCount) int {
		return cmp.Or(cmp.Compare(a.Queue, b.Queue),
			cmp.Compare(slices.Index(domain.WaitReasons, a.Reason), slices.Index(domain.WaitReasons, b.Reason)))
	})
	return counts
}

// wakeAfterSQL is the time in nanoseconds until the next token of an empty
// bucket (a queue's, or a key's) that holds back pending, due jobs; NULL
// when none does.
const wakeAfterSQL = `
SELECT min(due) FROM (
    SELECT (1 - troupe_refill(q.tokens, q.refilled_at, now(), q.rate_count, q.rate_per_ns,
                              COALESCE(NULLIF(q.rate_burst, 0), q.rate_count))) * q.rate_per_ns / q.rate_count AS due
      FROM troupe_queues AS q
     WHERE q.flow AND NOT q.paused AND q.rate_count IS NOT NULL
       AND troupe_refill(q.tokens, q.refilled_at, now(), q.rate_count, q.rate_per_ns,
                         COALESCE(NULLIF(q.rate_burst, 0), q.rate_count)) < 1
       AND EXISTS (SELECT 1 FROM troupe_jobs AS j
                    WHERE j.status = 'pending' AND j.queue = q.name AND (j.run_at <= now() OR j.run_at IS NULL))
    UNION ALL
    SELECT (1 - troupe_refill(b.tokens, b.refilled_at, now(), q.key_rate_count, q.key_rate_per_ns,
                              COALESCE(NULLIF(q.key_rate_burst, 0), q.key_rate_count))) * q.key_rate_per_ns / q.key_rate_count
      FROM troupe_key_buckets AS b
      JOIN troupe_queues AS q ON q.name = b.queue
     WHERE q.flow AND NOT q.paused AND q.key_rate_count IS NOT NULL
       AND troupe_refill(b.tokens, b.refilled_at, now(), q.key_rate_count, q.key_rate_per_ns,
                         COALESCE(NULLIF(q.key_rate_burst, 0), q.key_rate_count)) < 1
       AND EXISTS (SELECT 1 FROM troupe_jobs AS j
                    WHERE j.status = 'pending' AND j.key IS NOT NULL AND j.queue = b.queue AND j.key = b.key
                      AND (j.run_at <= now() OR j.run_at IS NULL))
) AS d`

// FlowWakeAfter implements domain.SharedQueue, by the database's clock.
func (s *Store) FlowWakeAfter(ctx context.Context) (time.Duration, error) {
	if s.closed.Load() {
		return 0, domain.ErrClosed
	}
	var due pgtype.Float8
	if err := s.pool.QueryRow(ctx, wakeAfterSQL).Scan(&due); err != nil {
		return 0, fmt.Errorf("flow wake after: %w", mapError(err))
	}
	if !due.Valid {
		return 0, nil
	}
	// At least a millisecond: a token due now is claimed by then, and a
	// caller never spins.
	return max(time.Duration(math.Ceil(due.Float64)), time.Millisecond), nil
}

// queueSettingsSQL reads the settings of the queues that have some.
const queueSettingsSQL = `SELECT name, ` + settingsColumns + ` FROM troupe_queues WHERE flow`

// queueSettings adds to b the read of the queues' settings into tally.
func queueSettings(b *pgx.Batch, tally *domain.QueueTally) {
	b.Queue(queueSettingsSQL).Query(func(rows pgx.Rows) error {
		var (
			name string
			row  settingsRow
		)
		_, err := pgx.ForEachRow(rows, append([]any{&name}, row.dest()...), func() error {
			tally.Settings(name, row.settings())
			return nil
		})
		return err
	})
}
