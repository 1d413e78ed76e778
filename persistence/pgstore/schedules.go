package pgstore

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/troupe-go/troupe/domain"
)

// Schedules live in troupe_schedules, a row each. They are few and change
// rarely; every node reads them all when it (re)plans its timers, and
// nodes that fire the same slot meet on the slot job's unique key, not
// here. The one write nodes race on, RecordScheduleRun, only moves the run
// fields forward.

// scheduleColumns are the columns that make a domain.Schedule, in
// scanSchedule's order.
const scheduleColumns = `name, cron, timezone, catch_up, paused, source,
	job_type, job_payload, job_queue, job_priority, job_max_attempts, job_timeout_ns,
	created_at, updated_at, last_slot, last_run_at, last_job_id`

// putScheduleSQL inserts a schedule or replaces its definition, keeping
// created_at and the run fields of the stored one. xmax is zero only in a
// row version this statement inserted: it says whether it created the
// schedule, in the same round trip.
const putScheduleSQL = `
INSERT INTO troupe_schedules AS s (` + scheduleColumns + `)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
ON CONFLICT (name) DO UPDATE
   SET cron = EXCLUDED.cron, timezone = EXCLUDED.timezone, catch_up = EXCLUDED.catch_up,
       paused = EXCLUDED.paused, source = EXCLUDED.source,
       job_type = EXCLUDED.job_type, job_payload = EXCLUDED.job_payload, job_queue = EXCLUDED.job_queue,
       job_priority = EXCLUDED.job_priority, job_max_attempts = EXCLUDED.job_max_attempts,
       job_timeout_ns = EXCLUDED.job_timeout_ns, updated_at = EXCLUDED.updated_at
RETURNING (s.xmax = 0)`

// recordRunSQL moves the run fields of schedule $1 forward in one UPDATE:
// last_slot to slot $2 if later (GREATEST ignores NULLs: a trigger's zero
// slot changes nothing), last_run_at and last_job_id to $3 and $4 unless
// $3 is earlier than the stored run (a zero $3 counts as earliest, as the
// zero time does in Go). Every SET reads the row as it was, and a
// concurrent update of the row makes PostgreSQL evaluate them again on
// the newer version, so nodes recording out of order never move a field
// back.
const recordRunSQL = `
UPDATE troupe_schedules
   SET last_slot = GREATEST(last_slot, $2::timestamptz),
       last_run_at = CASE WHEN last_run_at IS NULL OR $3::timestamptz >= last_run_at THEN $3::timestamptz ELSE last_run_at END,
       last_job_id = CASE WHEN last_run_at IS NULL OR $3::timestamptz >= last_run_at THEN $4::uuid ELSE last_job_id END
 WHERE name = $1`

// scanSchedule reads one row of scheduleColumns.
func scanSchedule(row pgx.Row) (*domain.Schedule, error) {
	var (
		sc                                  domain.Schedule
		catchUp, source, typ                string
		priority, maxAttempts               int32
		timeout                             int64
		created, updated, lastSlot, lastRun pgtype.Timestamptz
		lastJob                             pgtype.UUID
	)
	err := row.Scan(&sc.Name, &sc.Cron, &sc.Timezone, &catchUp, &sc.Paused, &source,
		&typ, &sc.Job.Payload, &sc.Job.Queue, &priority, &maxAttempts, &timeout,
		&created, &updated, &lastSlot, &lastRun, &lastJob)
	if err != nil {
		return nil, err
	}
	sc.CatchUp = domain.CatchUp(catchUp)
	sc.Source = domain.ScheduleSource(source)
	sc.Job.Type = domain.JobType(typ)
	sc.Job.Priority = int(priority)
	sc.Job.MaxAttempts = int(maxAttempts)
	sc.Job.Timeout = time.Duration(timeout)
	sc.CreatedAt = fromTimestamptz(created)
	sc.UpdatedAt = fromTimestamptz(updated)
	sc.LastSlot = fromTimestamptz(lastSlot)
	sc.LastRunAt = fromTimestamptz(lastRun)
	if lastJob.Valid {
		sc.LastJobID = lastJob.Bytes
	}
	return &sc, nil
}

// toJobID stores the zero ID as NULL.
func toJobID(id [16]byte) pgtype.UUID {
	return pgtype.UUID{Bytes: id, Valid: id != [16]byte{}}
}

// PutSchedule implements domain.ScheduleStore in one upsert.
func (s *Store) PutSchedule(ctx context.Context, sc *domain.Schedule) (bool, error) {
	if s.closed.Load() {
		return false, domain.ErrClosed
	}
	if err := domain.ValidateScheduleName(sc.Name); err != nil {
		return false, fmt.Errorf("put schedule: %w", err)
	}
	priority, err := scheduleInt32(sc.Name, "job priority", sc.Job.Priority)
	if err != nil {
		return false, err
	}
	maxAttempts, err := scheduleInt32(sc.Name, "job maxAttempts", sc.Job.MaxAttempts)
	if err != nil {
		return false, err
	}
	var created bool
	err = s.pool.QueryRow(ctx, putScheduleSQL,
		sc.Name, sc.Cron, sc.Timezone, string(sc.CatchUp), sc.Paused, string(sc.Source),
		string(sc.Job.Type), sc.Job.Payload, sc.Job.Queue, priority, maxAttempts, int64(sc.Job.Timeout),
		toTimestamptz(sc.CreatedAt), toTimestamptz(sc.UpdatedAt), toTimestamptz(sc.LastSlot),
		toTimestamptz(sc.LastRunAt), toJobID(sc.LastJobID)).Scan(&created)
	if err != nil {
		return false, fmt.Errorf("put schedule %s: %w", sc.Name, mapError(err))
	}
	return created, nil
}

func scheduleInt32(name, field string, v int) (int32, error) {
	if int64(v) != int64(int32(v)) {
		return 0, fmt.Errorf("put schedule %s: %w: %s %d is out of range", name, domain.ErrInvalid, field, v)
	}
	return int32(v), nil
}

// GetSchedule implements domain.ScheduleStore.
func (s *Store) GetSchedule(ctx context.Context, name string) (*domain.Schedule, error) {
	if s.closed.Load() {
		return nil, domain.ErrClosed
	}
	sc, err := scanSchedule(s.pool.QueryRow(ctx, `SELECT `+scheduleColumns+` FROM troupe_schedules WHERE name = $1`, name))
	if err != nil {
		return nil, fmt.Errorf("get schedule %s: %w", name, mapError(err))
	}
	return sc, nil
}

// ListSchedules implements domain.ScheduleStore: by name, byte by byte
// (the column's collation), as Go sorts strings.
func (s *Store) ListSchedules(ctx context.Context) ([]*domain.Schedule, error) {
	if s.closed.Load() {
		return nil, domain.ErrClosed
	}
	rows, err := s.pool.Query(ctx, `SELECT `+scheduleColumns+` FROM troupe_schedules ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list schedules: %w", mapError(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*domain.Schedule, error) { return scanSchedule(r) })
	if err != nil {
		return nil, fmt.Errorf("list schedules: %w", mapError(err))
	}
	if out == nil {
		out = []*domain.Schedule{}
	}
	return out, nil
}

// DeleteSchedule implements domain.ScheduleStore. The jobs the schedule
// submitted keep its name.
func (s *Store) DeleteSchedule(ctx context.Context, name string) error {
	if s.closed.Load() {
		return domain.ErrClosed
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM troupe_schedules WHERE name = $1`, name)
	if err != nil {
		return fmt.Errorf("delete schedule %s: %w", name, mapError(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("delete schedule %s: %w", name, domain.ErrNotFound)
	}
	return nil
}

// RecordScheduleRun implements domain.ScheduleStore in one UPDATE (see
// recordRunSQL).
func (s *Store) RecordScheduleRun(ctx context.Context, name string, run domain.ScheduleRun) error {
	if s.closed.Load() {
		return domain.ErrClosed
	}
	tag, err := s.pool.Exec(ctx, recordRunSQL, name, toTimestamptz(run.Slot), toTimestamptz(run.At), toJobID(run.JobID))
	if err != nil {
		return fmt.Errorf("record a run of schedule %s (job %s): %w", name, run.JobID, mapError(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("record a run of schedule %s (job %s): %w", name, run.JobID, domain.ErrNotFound)
	}
	return nil
}
