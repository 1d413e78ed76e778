package pgstore

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/troupe-go/troupe/domain"
)

// promoteSQL makes pending up to $1 scheduled jobs due on the database's
// clock (all of them when $1 is NULL), earliest first, along the scheduled
// index. SKIP LOCKED lets nodes promote at once without waiting on one
// another or promoting a job twice. The trigger announces the promoted jobs
// to every node.
const promoteSQL = `
WITH due AS MATERIALIZED (
    SELECT id
      FROM troupe_jobs
     WHERE status = 'scheduled' AND run_at <= now()
     ORDER BY run_at, id
     LIMIT $1
       FOR UPDATE SKIP LOCKED
), promoted AS (
    UPDATE troupe_jobs AS j
       SET status = 'pending', updated_at = now()
      FROM due
     WHERE j.id = due.id
 RETURNING ` + qualifiedJobColumns + `
)
SELECT ` + jobColumns + ` FROM promoted ORDER BY run_at, id`

// PromoteDue implements domain.Store: it makes pending up to limit (every
// one, when limit is negative) scheduled jobs whose run_at has passed on
// the database's clock, which it uses instead of now, so that nodes agree
// on when a job falls due. Nodes may promote concurrently: each job is
// promoted once. updated_at is the database's now.
func (s *Store) PromoteDue(ctx context.Context, _ time.Time, limit int) ([]*domain.Job, error) {
	if s.closed.Load() {
		return nil, domain.ErrClosed
	}
	if limit == 0 {
		return []*domain.Job{}, nil
	}
	var limitArg any
	if limit > 0 {
		limitArg = limit
	}
	rows, err := s.pool.Query(ctx, promoteSQL, limitArg)
	if err != nil {
		return nil, fmt.Errorf("promote due jobs: %w", mapError(err))
	}
	jobs, err := collectJobs(rows)
	if err != nil {
		return nil, fmt.Errorf("promote due jobs: %w", mapError(err))
	}
	return jobs, nil
}

// NextRunAt implements domain.Store: the head of the scheduled index.
func (s *Store) NextRunAt(ctx context.Context) (time.Time, error) {
	if s.closed.Load() {
		return time.Time{}, domain.ErrClosed
	}
	var next pgtype.Timestamptz
	if err := s.pool.QueryRow(ctx, `SELECT min(run_at) FROM troupe_jobs WHERE status = 'scheduled'`).Scan(&next); err != nil {
		return time.Time{}, fmt.Errorf("next run at: %w", mapError(err))
	}
	return fromTimestamptz(next), nil
}

// queueCountsSQL counts the unfinished jobs per queue and status. Each
// branch reads one partial index: the scheduled index (which includes the
// queue), the claim index (which leads with it) and the lease index.
const queueCountsSQL = `
SELECT queue, 'scheduled', count(*) FROM troupe_jobs WHERE status = 'scheduled' GROUP BY queue
UNION ALL
SELECT queue, 'pending', count(*) FROM troupe_jobs WHERE status = 'pending' GROUP BY queue
UNION ALL
SELECT queue, 'running', count(*) FROM troupe_jobs WHERE status = 'running' GROUP BY queue`

// Queues implements domain.Store: the queues with unfinished jobs, paused
// or with flow settings, by name, in one round trip.
func (s *Store) Queues(ctx context.Context) ([]domain.QueueInfo, error) {
	if s.closed.Load() {
		return nil, domain.ErrClosed
	}
	var tally domain.QueueTally
	var b pgx.Batch
	b.Queue(queueCountsSQL).Query(func(rows pgx.Rows) error {
		var (
			name, status string
			n            int
		)
		_, err := pgx.ForEachRow(rows, []any{&name, &status, &n}, func() error {
			tally.Count(name, domain.Status(status), n)
			return nil
		})
		return err
	})
	b.Queue(`SELECT name FROM troupe_queues WHERE paused`).Query(func(rows pgx.Rows) error {
		names, err := pgx.CollectRows(rows, pgx.RowTo[string])
		for _, n := range names {
			tally.Pause(n)
		}
		return err
	})
	queueSettings(&b, &tally)
	if err := s.pool.SendBatch(ctx, &b).Close(); err != nil {
		return nil, fmt.Errorf("list queues: %w", mapError(err))
	}
	return tally.Queues(), nil
}

// SetQueuePaused implements domain.Store. The pause is a row of
// troupe_queues, which every claim joins, so it holds on every node from
// the commit on; resuming a queue notifies every node that its jobs are
// available.
func (s *Store) SetQueuePaused(ctx context.Context, name string, paused bool) error {
	if s.closed.Load() {
		return domain.ErrClosed
	}
	if err := domain.ValidateQueueName(name); err != nil {
		return err
	}
	_, err := s.pool.Exec(ctx, `
INSERT INTO troupe_queues (name, paused) VALUES ($1, $2)
ON CONFLICT (name) DO UPDATE SET paused = EXCLUDED.paused`, name, paused)
	if err != nil {
		return fmt.Errorf("set queue %s paused=%t: %w", name, paused, mapError(err))
	}
	s.queueNames.remember([]string{name})
	return nil
}
