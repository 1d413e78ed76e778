package pgstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/troupe-go/troupe/domain"
)

// jobColumns are the columns that make a domain.Job, in scanJob's order.
const jobColumns = `id, status, type, payload, attempts, max_attempts, last_error,
	created_at, updated_at, run_at, started_at, finished_at,
	queue, priority, unique_key, unique_for_ns, timeout_ns, schedule,
	result, progress_percent, progress_message, progress_updated_at, key`

// qualifiedJobColumns is jobColumns of the table aliased j, for RETURNING
// lists of statements that join it.
const qualifiedJobColumns = `j.id, j.status, j.type, j.payload, j.attempts, j.max_attempts, j.last_error,
	j.created_at, j.updated_at, j.run_at, j.started_at, j.finished_at,
	j.queue, j.priority, j.unique_key, j.unique_for_ns, j.timeout_ns, j.schedule,
	j.result, j.progress_percent, j.progress_message, j.progress_updated_at, j.key`

// scanChunk is how many jobs Scan reads per query: enough to amortise the
// round trip, few enough that memory stays flat however many jobs match.
const scanChunk = 500

// scanJob reads one row of jobColumns.
func scanJob(row pgx.Row) (*domain.Job, error) {
	var (
		j                                          domain.Job
		status, typ                                string
		created, updated, runAt, started, finished pgtype.Timestamptz
		priority                                   int16
		uniqueKey, schedule, key                   pgtype.Text
		uniqueFor, timeout                         int64
		percent                                    pgtype.Float8
		message                                    pgtype.Text
		progressAt                                 pgtype.Timestamptz
	)
	err := row.Scan(&j.ID, &status, &typ, &j.Payload, &j.Attempts, &j.MaxAttempts, &j.LastError,
		&created, &updated, &runAt, &started, &finished,
		&j.Queue, &priority, &uniqueKey, &uniqueFor, &timeout, &schedule,
		&j.Result, &percent, &message, &progressAt, &key)
	if err != nil {
		return nil, err
	}
	if percent.Valid {
		j.Progress = &domain.Progress{Percent: percent.Float64, Message: message.String, UpdatedAt: fromTimestamptz(progressAt)}
	}
	j.Priority = int(priority)
	j.UniqueKey = uniqueKey.String
	j.Schedule = schedule.String
	j.Key = key.String
	j.UniqueFor = time.Duration(uniqueFor)
	j.Timeout = time.Duration(timeout)
	j.Status = domain.Status(status)
	j.Type = domain.JobType(typ)
	j.CreatedAt = fromTimestamptz(created)
	j.UpdatedAt = fromTimestamptz(updated)
	j.RunAt = fromTimestamptz(runAt)
	j.StartedAt = fromTimestamptz(started)
	j.FinishedAt = fromTimestamptz(finished)
	return &j, nil
}

// collectJobs reads every row of jobColumns and closes rows.
func collectJobs(rows pgx.Rows) ([]*domain.Job, error) {
	jobs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*domain.Job, error) { return scanJob(r) })
	if jobs == nil {
		jobs = []*domain.Job{}
	}
	return jobs, err
}

// fromTimestamptz turns NULL and ±infinity into the zero time, and anything
// else into a domain timestamp.
func fromTimestamptz(t pgtype.Timestamptz) time.Time {
	if !t.Valid || t.InfinityModifier != pgtype.Finite {
		return time.Time{}
	}
	return domain.Timestamp(t.Time)
}

// toTimestamptz stores the zero time as NULL.
func toTimestamptz(t time.Time) pgtype.Timestamptz {
	if t.IsZero() {
		return pgtype.Timestamptz{}
	}
	return pgtype.Timestamptz{Time: domain.Timestamp(t), Valid: true}
}

// toCreatedAt stores a zero creation time as -infinity: created_at orders
// every listing and is never NULL, and the zero time sorts first in Go too.
func toCreatedAt(t time.Time) pgtype.Timestamptz {
	if t.IsZero() {
		return pgtype.Timestamptz{InfinityModifier: pgtype.NegativeInfinity, Valid: true}
	}
	return toTimestamptz(t)
}

// jobArrays holds jobs column by column, so that one statement can insert
// or update any number of them through unnest.
type jobArrays struct {
	// ids are pgtype.UUIDs: pgx encodes a uuid.UUID through its
	// driver.Valuer, as text parsed back, which costs more than the rest
	// of a job's columns together.
	ids                                        []pgtype.UUID
	statuses, types, lastErrors                []string
	payloads                                   [][]byte
	attempts, maxAttempts                      []int32
	created, updated, runAt, started, finished []pgtype.Timestamptz
	queues                                     []string
	priorities                                 []int32
	uniqueKeys, schedules                      []pgtype.Text
	uniqueFor, timeouts                        []int64
	results                                    [][]byte
	// progress is NULL in all three columns when a job has none.
	progressPercents []pgtype.Float8
	progressMessages []pgtype.Text
	progressTimes    []pgtype.Timestamptz
	// keys are the flow keys, NULL when none.
	keys []pgtype.Text
	// keyed counts the jobs with a unique key.
	keyed int
}

func newJobArrays(jobs []*domain.Job) (*jobArrays, error) {
	n := len(jobs)
	a := &jobArrays{
		ids: make([]pgtype.UUID, 0, n), statuses: make([]string, 0, n), types: make([]string, 0, n),
		lastErrors: make([]string, 0, n), payloads: make([][]byte, 0, n),
		attempts: make([]int32, 0, n), maxAttempts: make([]int32, 0, n),
		created: make([]pgtype.Timestamptz, 0, n), updated: make([]pgtype.Timestamptz, 0, n),
		runAt: make([]pgtype.Timestamptz, 0, n), started: make([]pgtype.Timestamptz, 0, n),
		finished: make([]pgtype.Timestamptz, 0, n), queues: make([]string, 0, n), priorities: make([]int32, 0, n),
		uniqueKeys: make([]pgtype.Text, 0, n), uniqueFor: make([]int64, 0, n), timeouts: make([]int64, 0, n),
		schedules: make([]pgtype.Text, 0, n), results: make([][]byte, 0, n),
		progressPercents: make([]pgtype.Float8, 0, n), progressMessages: make([]pgtype.Text, 0, n),
		progressTimes: make([]pgtype.Timestamptz, 0, n), keys: make([]pgtype.Text, 0, n),
	}
	for _, j := range jobs {
		attempts, err := toInt32(j.ID, "attempts", j.Attempts)
		if err != nil {
			return nil, err
		}
		maxAttempts, err := toInt32(j.ID, "maxAttempts", j.MaxAttempts)
		if err != nil {
			return nil, err
		}
		priority, err := toInt32(j.ID, "priority", j.Priority)
		if err != nil {
			return nil, err
		}
		a.ids = append(a.ids, pgtype.UUID{Bytes: j.ID, Valid: true})
		a.statuses = append(a.statuses, string(j.Status))
		a.types = append(a.types, string(j.Type))
		a.payloads = append(a.payloads, j.Payload)
		a.attempts = append(a.attempts, attempts)
		a.maxAttempts = append(a.maxAttempts, maxAttempts)
		a.lastErrors = append(a.lastErrors, j.LastError)
		a.created = append(a.created, toCreatedAt(j.CreatedAt))
		a.updated = append(a.updated, toTimestamptz(j.UpdatedAt))
		a.runAt = append(a.runAt, toTimestamptz(j.RunAt))
		a.started = append(a.started, toTimestamptz(j.StartedAt))
		a.finished = append(a.finished, toTimestamptz(j.FinishedAt))
		a.queues = append(a.queues, j.Queue)
		a.priorities = append(a.priorities, priority)
		// No key is NULL: the unique index then never sees the row.
		a.uniqueKeys = append(a.uniqueKeys, pgtype.Text{String: j.UniqueKey, Valid: j.UniqueKey != ""})
		if j.UniqueKey != "" {
			a.keyed++
		}
		a.uniqueFor = append(a.uniqueFor, int64(j.UniqueFor))
		a.timeouts = append(a.timeouts, int64(j.Timeout))
		// No schedule is NULL: the schedule index then never sees the row.
		a.schedules = append(a.schedules, pgtype.Text{String: j.Schedule, Valid: j.Schedule != ""})
		a.results = append(a.results, j.Result)
		// No key is NULL: the key indexes then never see the row.
		a.keys = append(a.keys, pgtype.Text{String: j.Key, Valid: j.Key != ""})
		if p := j.Progress; p != nil {
			if math.IsNaN(p.Percent) {
				// domain.NewProgress never makes one; every store refuses it.
				return nil, fmt.Errorf("job %s: %w: progress percent is NaN", j.ID, domain.ErrInvalid)
			}
			a.progressPercents = append(a.progressPercents, pgtype.Float8{Float64: p.Percent, Valid: true})
			a.progressMessages = append(a.progressMessages, pgtype.Text{String: p.Message, Valid: true})
			a.progressTimes = append(a.progressTimes, toTimestamptz(p.UpdatedAt))
		} else {
			a.progressPercents = append(a.progressPercents, pgtype.Float8{})
			a.progressMessages = append(a.progressMessages, pgtype.Text{})
			a.progressTimes = append(a.progressTimes, pgtype.Timestamptz{})
		}
	}
	return a, nil
}

// args returns the arrays in the order of unnestJobs' parameters.
func (a *jobArrays) args() []any {
	return []any{a.ids, a.statuses, a.types, a.payloads, a.attempts, a.maxAttempts, a.lastErrors,
		a.created, a.updated, a.runAt, a.started, a.finished,
		a.queues, a.priorities, a.uniqueKeys, a.uniqueFor, a.timeouts, a.schedules,
		a.results, a.progressPercents, a.progressMessages, a.progressTimes, a.keys}
}

// jobArgs is how many parameters jobArrays.args fills: a statement's own
// parameters are numbered after them.
const jobArgs = 23

// unnestJobs turns the arrays of jobArrays.args into rows.
const unnestJobs = `unnest($1::uuid[], $2::text[], $3::text[], $4::bytea[], $5::int[], $6::int[], $7::text[],
	$8::timestamptz[], $9::timestamptz[], $10::timestamptz[], $11::timestamptz[], $12::timestamptz[],
	$13::text[], $14::int[], $15::text[], $16::bigint[], $17::bigint[], $18::text[],
	$19::bytea[], $20::float8[], $21::text[], $22::timestamptz[], $23::text[])
	AS u(id, status, type, payload, attempts, max_attempts, last_error,
	     created_at, updated_at, run_at, started_at, finished_at,
	     queue, priority, unique_key, unique_for_ns, timeout_ns, schedule,
	     result, progress_percent, progress_message, progress_updated_at, key)`

func toInt32(id uuid.UUID, field string, v int) (int32, error) {
	if int64(v) != int64(int32(v)) {
		return 0, fmt.Errorf("job %s: %w: %s %d is out of range", id, domain.ErrInvalid, field, v)
	}
	return int32(v), nil
}

// duplicateID names the job a unique violation is about: PostgreSQL's
// detail reads `Key (id)=(...) already exists.`. It falls back to the first
// job, and to a count when the error says nothing better.
func duplicateID(err error, jobs []*domain.Job) string {
	if len(jobs) == 1 {
		return jobs[0].ID.String()
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		if _, rest, ok := strings.Cut(pgErr.Detail, "=("); ok {
			if text, _, ok := strings.Cut(rest, ")"); ok {
				if id, perr := uuid.Parse(text); perr == nil {
					return id.String()
				}
			}
		}
	}
	return jobs[0].ID.String() + " (and " + strconv.Itoa(len(jobs)-1) + " more)"
}

// Get implements domain.Store.
func (s *Store) Get(ctx context.Context, id uuid.UUID) (*domain.Job, error) {
	if s.closed.Load() {
		return nil, domain.ErrClosed
	}
	j, err := scanJob(s.pool.QueryRow(ctx, `SELECT `+jobColumns+` FROM troupe_jobs WHERE id = $1`, id))
	if err != nil {
		return nil, fmt.Errorf("get job %s: %w", id, mapError(err))
	}
	return j, nil
}

// updateSet is the SET list shared by Update and UpdateOwned, reading the
// new snapshot from u. The lease columns belong to the running attempt: they
// stay while the job stays running and are cleared when it leaves running.
// A job keeps holding its unique key while the key stays; a key given or
// changed by an update is not held (keys are taken by Create and Insert,
// where the unique index arbitrates).
const updateSet = `status = u.status, type = u.type, payload = u.payload,
	attempts = u.attempts, max_attempts = u.max_attempts, last_error = u.last_error,
	created_at = u.created_at, updated_at = u.updated_at, run_at = u.run_at,
	started_at = u.started_at, finished_at = u.finished_at,
	queue = u.queue, priority = u.priority, unique_key = u.unique_key,
	unique_for_ns = u.unique_for_ns, timeout_ns = u.timeout_ns, schedule = u.schedule,
	result = u.result, progress_percent = u.progress_percent,
	progress_message = u.progress_message, progress_updated_at = u.progress_updated_at, key = u.key,
	unique_held = j.unique_held AND u.unique_key IS NOT DISTINCT FROM j.unique_key,
	owner_node = CASE WHEN u.status = 'running' THEN j.owner_node END,
	lease_expires_at = CASE WHEN u.status = 'running' THEN j.lease_expires_at END,
	cancel_requested = u.status = 'running' AND j.cancel_requested`

// Update implements domain.Store. All jobs go in one UPDATE; when some ID
// is not stored, the transaction rolls back and the error names it. When an
// ID repeats, the last snapshot wins.
//
// Update does not look at leases: the scale-out runtime records the outcome
// of an attempt with UpdateOwned instead.
func (s *Store) Update(ctx context.Context, jobs ...*domain.Job) error {
	if s.closed.Load() {
		return domain.ErrClosed
	}
	jobs = lastOfEachID(jobs)
	if len(jobs) == 0 {
		return nil
	}
	a, err := newJobArrays(jobs)
	if err != nil {
		return fmt.Errorf("update: %w", err)
	}
	if err := s.recordQueues(ctx, jobs); err != nil {
		return fmt.Errorf("update job %s: %w", jobs[0].ID, err)
	}
	query := `UPDATE troupe_jobs AS j SET ` + updateSet + ` FROM ` + unnestJobs + ` WHERE j.id = u.id RETURNING j.id`
	if len(jobs) == 1 {
		// One row needs no transaction to be all or none.
		tag, err := s.pool.Exec(ctx, query, a.args()...)
		if err != nil {
			return fmt.Errorf("update job %s: %w", jobs[0].ID, mapError(err))
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("update job %s: %w", jobs[0].ID, domain.ErrNotFound)
		}
		return nil
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// Rows are locked in the order of their IDs, as everywhere (see
		// lockRunningSQL), so that two writers of the same jobs never deadlock.
		if _, err := tx.Exec(ctx, `SELECT 1 FROM troupe_jobs WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE`, a.ids); err != nil {
			return fmt.Errorf("update job %s: %w", jobs[0].ID, mapError(err))
		}
		rows, err := tx.Query(ctx, query, a.args()...)
		if err != nil {
			return fmt.Errorf("update job %s: %w", jobs[0].ID, mapError(err))
		}
		updated, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
		if err != nil {
			return fmt.Errorf("update job %s: %w", jobs[0].ID, mapError(err))
		}
		if len(updated) == len(jobs) {
			return nil
		}
		found := make(map[uuid.UUID]struct{}, len(updated))
		for _, id := range updated {
			found[id] = struct{}{}
		}
		for _, j := range jobs {
			if _, ok := found[j.ID]; !ok {
				return fmt.Errorf("update job %s: %w", j.ID, domain.ErrNotFound)
			}
		}
		return nil
	})
}

// lastOfEachID drops all but the last snapshot of each job, in the order of
// those last snapshots: one UPDATE can change a row only once.
func lastOfEachID(jobs []*domain.Job) []*domain.Job {
	if len(jobs) < 2 {
		return jobs
	}
	last := make(map[uuid.UUID]int, len(jobs))
	for i, j := range jobs {
		last[j.ID] = i
	}
	if len(last) == len(jobs) {
		return jobs
	}
	out := make([]*domain.Job, 0, len(last))
	for i, j := range jobs {
		if last[j.ID] == i {
			out = append(out, j)
		}
	}
	return out
}

// Delete implements domain.Store.
func (s *Store) Delete(ctx context.Context, id uuid.UUID) error {
	if s.closed.Load() {
		return domain.ErrClosed
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM troupe_jobs WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("delete job %s: %w", id, mapError(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("delete job %s: %w", id, domain.ErrNotFound)
	}
	return nil
}

// filterWhere turns a filter's statuses, type, queue, schedule and key into a WHERE clause (empty
// when they select everything) and its arguments, numbered from $1.
func filterWhere(f domain.Filter) (string, []any) {
	var (
		conds []string
		args  []any
	)
	if len(f.Statuses) > 0 {
		statuses := make([]string, len(f.Statuses))
		for i, st := range f.Statuses {
			statuses[i] = string(st)
		}
		args = append(args, statuses)
		conds = append(conds, `status = ANY($`+strconv.Itoa(len(args))+`::text[])`)
	}
	if f.Type != "" {
		args = append(args, string(f.Type))
		conds = append(conds, `type = $`+strconv.Itoa(len(args)))
	}
	if f.Queue != "" {
		args = append(args, f.Queue)
		conds = append(conds, `queue = $`+strconv.Itoa(len(args)))
	}
	if f.Schedule != "" {
		args = append(args, f.Schedule)
		conds = append(conds, `schedule = $`+strconv.Itoa(len(args)))
	}
	if f.Key != "" {
		// troupe_jobs_key_idx: key = $n implies key IS NOT NULL.
		args = append(args, f.Key)
		conds = append(conds, `key = $`+strconv.Itoa(len(args)))
	}
	if len(conds) == 0 {
		return "", args
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// List implements domain.Store. The count and the page travel in one batch,
// so a page costs one round trip.
func (s *Store) List(ctx context.Context, f domain.Filter) (domain.Page, error) {
	if s.closed.Load() {
		return domain.Page{}, domain.ErrClosed
	}
	where, args := filterWhere(f)
	page := `SELECT ` + jobColumns + ` FROM troupe_jobs` + where + ` ORDER BY created_at, id`
	pageArgs := args
	if f.Limit > 0 {
		pageArgs = append(pageArgs[:len(pageArgs):len(pageArgs)], f.Limit)
		page += ` LIMIT $` + strconv.Itoa(len(pageArgs))
	}
	if f.Offset > 0 {
		pageArgs = append(pageArgs[:len(pageArgs):len(pageArgs)], f.Offset)
		page += ` OFFSET $` + strconv.Itoa(len(pageArgs))
	}

	var b pgx.Batch
	var out domain.Page
	b.Queue(`SELECT count(*) FROM troupe_jobs`+where, args...).QueryRow(func(row pgx.Row) error {
		return row.Scan(&out.Total)
	})
	b.Queue(page, pageArgs...).Query(func(rows pgx.Rows) error {
		jobs, err := collectJobs(rows)
		out.Jobs = jobs
		return err
	})
	if err := s.pool.SendBatch(ctx, &b).Close(); err != nil {
		return domain.Page{}, fmt.Errorf("list jobs: %w", mapError(err))
	}
	if out.Jobs == nil {
		out.Jobs = []*domain.Job{}
	}
	return out, nil
}

// Scan implements domain.Store. It reads the matching jobs in chunks,
// resuming each chunk after the last job of the one before (by created_at
// and id, the listing order), so memory stays flat and no connection is held
// while fn runs: fn may call back into the store. A job that starts or stops
// matching while Scan runs may or may not be seen, and none is seen twice.
func (s *Store) Scan(ctx context.Context, f domain.Filter, fn func(*domain.Job) error) error {
	if s.closed.Load() {
		return domain.ErrClosed
	}
	where, args := filterWhere(f)
	remaining := -1 // no cap
	if f.Limit > 0 {
		remaining = f.Limit
	}
	offset := max(f.Offset, 0)
	var (
		resume      bool
		lastCreated pgtype.Timestamptz
		lastID      uuid.UUID
	)
	for remaining != 0 {
		chunk := scanChunk
		if remaining > 0 {
			chunk = min(chunk, remaining)
		}
		query, qargs := where, args[:len(args):len(args)]
		if resume {
			qargs = append(qargs, lastCreated, lastID)
			cond := `(created_at, id) > ($` + strconv.Itoa(len(qargs)-1) + `, $` + strconv.Itoa(len(qargs)) + `)`
			if query == "" {
				query = " WHERE " + cond
			} else {
				query += " AND " + cond
			}
		}
		qargs = append(qargs, chunk)
		query = `SELECT ` + jobColumns + ` FROM troupe_jobs` + query +
			` ORDER BY created_at, id LIMIT $` + strconv.Itoa(len(qargs))
		if offset > 0 {
			qargs = append(qargs, offset)
			query += ` OFFSET $` + strconv.Itoa(len(qargs))
			offset = 0
		}
		rows, err := s.pool.Query(ctx, query, qargs...)
		if err != nil {
			return fmt.Errorf("scan jobs: %w", mapError(err))
		}
		jobs, err := collectJobs(rows)
		if err != nil {
			return fmt.Errorf("scan jobs: %w", mapError(err))
		}
		if len(jobs) > 0 {
			// Taken before fn runs: fn owns the jobs and may change them.
			resume, lastCreated, lastID = true, toCreatedAt(jobs[len(jobs)-1].CreatedAt), jobs[len(jobs)-1].ID
		}
		for _, j := range jobs {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := fn(j); err != nil {
				return err
			}
		}
		if len(jobs) < chunk {
			return nil
		}
		if remaining > 0 {
			remaining -= len(jobs)
		}
	}
	return nil
}
