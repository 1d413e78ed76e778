package pgstore

import (
	"context"
	"fmt"
	"time"

	"github.com/troupe-go/troupe/domain"
)

// deleteFinishedSQL deletes up to $4 jobs in terminal status $1 that
// finished before $2, oldest first, along troupe_jobs_finished_idx. The
// repeated status list lets the planner prove the index's predicate when
// $1 is a parameter (a generic plan), so the plan does not depend on it.
// A job still holding its unique key at $3 (the database's now when NULL),
// with the rule releaseKeysSQL applies, stays. SKIP LOCKED lets several
// nodes prune at once, each taking rows the others are not deleting, and
// never waiting on them or on a node finishing a job.
const deleteFinishedSQL = `
WITH doomed AS MATERIALIZED (
    SELECT id
      FROM troupe_jobs
     WHERE status = $1 AND status IN ('completed', 'failed', 'canceled')
       AND finished_at < $2
       AND (unique_key IS NULL
            OR finished_at + (unique_for_ns / 1000) * interval '1 microsecond' <= COALESCE($3::timestamptz, now()))
     ORDER BY finished_at
     LIMIT $4
       FOR UPDATE SKIP LOCKED
)
DELETE FROM troupe_jobs
 WHERE id = ANY(ARRAY(SELECT id FROM doomed))`

// DeleteFinished implements domain.Store: one DELETE, in its own
// transaction, of at most limit rows. Whether a job still holds its unique
// key is judged at now, the caller's clock, which also wrote FinishedAt (as
// Insert does); the zero now means the database's clock.
func (s *Store) DeleteFinished(ctx context.Context, now time.Time, status domain.Status, before time.Time, limit int) (int, error) {
	if s.closed.Load() {
		return 0, domain.ErrClosed
	}
	if !status.IsTerminal() {
		return 0, fmt.Errorf("delete finished jobs: %w: status %q is not terminal", domain.ErrInvalid, status)
	}
	if limit < 1 || before.IsZero() {
		return 0, nil
	}
	var nowArg any
	if !now.IsZero() {
		nowArg = domain.Timestamp(now)
	}
	tag, err := s.pool.Exec(ctx, deleteFinishedSQL, string(status), domain.Timestamp(before), nowArg, limit)
	if err != nil {
		return 0, fmt.Errorf("delete %s jobs finished before %s: %w", status, before.Format(time.RFC3339Nano), mapError(err))
	}
	return int(tag.RowsAffected()), nil
}
