package pgstore

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/troupe-go/troupe/domain"
)

// Scale-out primitives. Each decides with the database clock (now() in SQL),
// never the caller's, so that nodes whose clocks disagree agree on which job
// is ready and whose lease has expired. A node owns a running job from
// ClaimJobs until its outcome is written with UpdateOwned, as long as it
// keeps the lease alive with RenewLeases; past its lease, RescueExpired on
// any node may take the job back.

// claimSQL picks ready jobs and marks them running on the node in one
// statement. Parameters: $1 node, $2 limit, $3 lease in microseconds, $4
// and $5 the queues of ClaimRequest.Room and their room, then the types
// and the queues of the request when given (see claimStatement).
//
//   - rooms: the queues not paused (troupe_queues, so a pause holds on every
//     node from its commit) and without flow settings (troupe_flow_claim
//     serves those), among those asked for when the request names
//     some, each with the most it may give: its room, if named, and the
//     limit.
//   - ready: how many ready jobs each queue could give, up to that, counted
//     on the claim index without locking anything. (The ORDER BY keeps the
//     planner on the index: it cannot know how small the LIMIT is.) With a
//     single queue to serve there is nothing to share, and no count.
//   - shares: round robin. Turn t offers one job of every queue with at
//     least t ready, in a random order of queues within the turn (so that,
//     claim after claim, no queue always comes first); the first $2 offers
//     win. A flood in one queue thus takes one job per turn like any other.
//   - picked: each queue's share, by priority, run_at and id along the claim
//     index, FOR UPDATE SKIP LOCKED: claimers pass over the rows another is
//     taking, never wait on one another and never take the same job. Only
//     the rows claimed are locked.
//   - claimed: the update finds its rows by primary key (= ANY(ARRAY(...))
//     gives the planner a small row count, where a join with picked, whose
//     size it cannot guess, may make it hash the whole table). A new attempt
//     starts with no progress: the last attempt's report is cleared.
//
// The limit of shares (and the filters of claimStatement) are subqueries so
// that the planner never sees them: its estimates are then the same for
// every call, and PostgreSQL keeps the statement's generic plan rather than
// planning each claim anew (the plan's shape does not depend on them). Its
// /*types*/ and /*queues*/ markers become the filters of claimStatement.
const claimSQL = `
WITH rooms AS MATERIALIZED (
    SELECT q.name, LEAST(COALESCE(r.room, $2::int), $2::int) AS room
      FROM troupe_queues AS q
      LEFT JOIN unnest($4::text[], $5::int[]) AS r(name, room) ON r.name = q.name
     WHERE NOT q.paused AND NOT q.flow /*queues*/
), ready AS MATERIALIZED (
    SELECT rooms.name,
           CASE WHEN (SELECT count(*) FROM rooms WHERE room > 0) = 1 THEN rooms.room
           ELSE (SELECT count(*)
                   FROM (SELECT 1
                           FROM troupe_jobs AS j
                          WHERE j.status = 'pending' AND j.queue = rooms.name
                            AND (j.run_at <= now() OR j.run_at IS NULL)
                            /*types*/
                          ORDER BY j.priority, j.run_at, j.id
                          LIMIT rooms.room) AS x)
           END AS n
      FROM rooms
     WHERE rooms.room > 0
), shares AS MATERIALIZED (
    SELECT offers.name, count(*) AS n
      FROM (SELECT ready.name
              FROM ready CROSS JOIN generate_series(1, ready.n) AS t(turn)
             ORDER BY t.turn, random()
             LIMIT (SELECT $2::int)) AS offers
     GROUP BY offers.name
), picked AS MATERIALIZED (
    SELECT p.id
      FROM shares
     CROSS JOIN LATERAL (
         SELECT j.id, j.queue, j.priority, j.run_at
           FROM troupe_jobs AS j
          WHERE j.status = 'pending' AND j.queue = shares.name
            AND (j.run_at <= now() OR j.run_at IS NULL)
            /*types*/
          ORDER BY j.priority, j.run_at, j.id
          LIMIT shares.n
            FOR UPDATE SKIP LOCKED
     ) AS p
), claimed AS (
    UPDATE troupe_jobs AS j
       SET status = 'running',
           attempts = j.attempts + 1,
           started_at = now(),
           updated_at = now(),
           owner_node = $1,
           lease_expires_at = now() + $3::bigint * interval '1 microsecond',
           cancel_requested = false,
           progress_percent = NULL,
           progress_message = NULL,
           progress_updated_at = NULL
     WHERE j.id = ANY(ARRAY(SELECT id FROM picked))
 RETURNING ` + qualifiedJobColumns + `
)
SELECT * FROM claimed ORDER BY priority, run_at, id`

// claimStatements are claimSQL with each combination of filters: index
// 1 filters types, index 2 queues, 3 both. Each filter is in a statement
// of its own, not an optional one ("no types OR type = ANY"), whose
// generic plan would be the worse of both.
var claimStatements = func() (statements [4]string) {
	for i := range statements {
		query, param := claimSQL, 6
		types, queues := "", ""
		if i&1 != 0 {
			// The filter on type||'' rather than type keeps the planner
			// on the claim index, filtering as it goes: with an indexable
			// type filter it may take the type index and sort every
			// pending job instead.
			types = "AND j.type || '' = ANY((SELECT $" + strconv.Itoa(param) + "::text[])::text[])"
			param++
		}
		if i&2 != 0 {
			// The queues come from troupe_queues, a small table: the
			// filter narrows the rooms, and the jobs are then found along
			// the claim index, which leads with the queue, as without it.
			queues = "AND q.name = ANY((SELECT $" + strconv.Itoa(param) + "::text[])::text[])"
		}
		query = strings.ReplaceAll(query, "/*types*/", types)
		statements[i] = strings.ReplaceAll(query, "/*queues*/", queues)
	}
	return statements
}()

// claimStatement returns the claim statement for r and its parameters
// after the first five.
func claimStatement(r domain.ClaimRequest) (string, []any) {
	var variant int
	var args []any
	if len(r.Types) > 0 {
		typeNames := make([]string, len(r.Types))
		for i, t := range r.Types {
			typeNames[i] = string(t)
		}
		variant, args = variant|1, append(args, typeNames)
	}
	if len(r.Queues) > 0 {
		variant, args = variant|2, append(args, r.Queues)
	}
	return claimStatements[variant], args
}

// ClaimJobs implements domain.SharedQueue. It hands node up to r.Limit
// ready jobs (pending, with run_at at or before the database's now) of the
// queues not paused and marks them running in one statement: attempts+1
// (the attempt counts before any handler runs, so a job that kills its node
// still uses up its attempts), started_at and updated_at set to now,
// owner_node = node and a lease until now + r.Lease. run_at stays. Within a
// queue the jobs go by priority, run_at and ID; across queues the claim
// takes turns (see claimSQL), and r.Room caps the jobs of each queue it
// names. The jobs come back as stored, by priority, run_at and ID; none
// when nothing is ready or r.Limit < 1. r.Types and r.Queues, when given,
// limit the claim to jobs of those types and queues. Each claimed job's
// progress is cleared: a new attempt has reported nothing yet.
//
// Concurrent claimers, on this node or others, never receive the same job
// for the same attempt. A lease of zero or less is already expired: useful
// in tests, never in production.
//
// Queues with flow settings are served first, when some queue has any, by
// troupe_flow_claim (migration 000005) in a statement of their own: it
// locks their troupe_queues rows (FOR UPDATE SKIP LOCKED) and enforces the
// settings exactly under those locks, taking turns across every queue as
// claimSQL does; claimSQL then gives the rest to the queues without
// settings, which it alone serves. Whether any queue has settings is read
// in the same round trip as claimSQL (flowExistsSQL), so a node learns of
// settings set elsewhere at its next claim, and a store where no queue has
// any runs claimSQL alone.
func (s *Store) ClaimJobs(ctx context.Context, node string, r domain.ClaimRequest) ([]*domain.Job, error) {
	if s.closed.Load() {
		return nil, domain.ErrClosed
	}
	if node == "" {
		return nil, fmt.Errorf("claim jobs: %w: node must not be empty", domain.ErrInvalid)
	}
	if r.Limit < 1 {
		return []*domain.Job{}, nil
	}
	limit := int32(min(r.Limit, math.MaxInt32))
	names := make([]string, 0, len(r.Room))
	rooms := make([]int32, 0, len(r.Room))
	for name, room := range r.Room {
		names = append(names, name)
		rooms = append(rooms, int32(max(min(room, int(limit)), 0)))
	}
	var jobs []*domain.Job
	if s.flowOn.Load() {
		flow, err := s.claimFlow(ctx, node, r, limit, names, rooms)
		if err != nil {
			return nil, err
		}
		jobs = flow
	}
	plain, flowOn, err := s.claimPlain(ctx, node, r, limit-int32(len(jobs)), names, rooms)
	if err != nil {
		return nil, err
	}
	jobs = append(jobs, plain...)
	if wasOn := s.flowOn.Swap(flowOn); flowOn && !wasOn && len(jobs) < int(limit) {
		// Settings appeared since the last claim: serve those queues now.
		flow, err := s.claimFlow(ctx, node, r, limit-int32(len(jobs)), names, rooms)
		if err != nil {
			return nil, err
		}
		jobs = append(jobs, flow...)
	}
	if len(jobs) > len(plain) && len(plain) > 0 {
		slices.SortFunc(jobs, func(a, b *domain.Job) int {
			return cmp.Or(cmp.Compare(a.Priority, b.Priority), a.RunAt.Compare(b.RunAt), bytes.Compare(a.ID[:], b.ID[:]))
		})
	}
	return jobs, nil
}

// flowExistsSQL says whether some queue has flow settings.
const flowExistsSQL = `SELECT EXISTS (SELECT 1 FROM troupe_queues WHERE flow)`

// claimPlain runs the plain claim statement (when limit > 0) and, in the
// same round trip, flowExistsSQL.
func (s *Store) claimPlain(ctx context.Context, node string, r domain.ClaimRequest, limit int32, names []string, rooms []int32) ([]*domain.Job, bool, error) {
	var (
		b      pgx.Batch
		jobs   = []*domain.Job{}
		flowOn bool
	)
	if limit > 0 {
		query, filters := claimStatement(r)
		args := append([]any{node, limit, r.Lease.Microseconds(), names, rooms}, filters...)
		b.Queue(query, args...).Query(func(rows pgx.Rows) error {
			var err error
			jobs, err = collectJobs(rows)
			return err
		})
	}
	b.Queue(flowExistsSQL).QueryRow(func(row pgx.Row) error { return row.Scan(&flowOn) })
	if err := s.pool.SendBatch(ctx, &b).Close(); err != nil {
		return nil, false, fmt.Errorf("claim jobs for %s: %w", ownerName(node), mapError(err))
	}
	return jobs, flowOn, nil
}

// claimFlow claims up to limit jobs of the queues with flow settings, in
// one statement: see troupe_flow_claim in migration 000005.
func (s *Store) claimFlow(ctx context.Context, node string, r domain.ClaimRequest, limit int32, names []string, rooms []int32) ([]*domain.Job, error) {
	var types, queues any
	if len(r.Types) > 0 {
		typeNames := make([]string, len(r.Types))
		for i, t := range r.Types {
			typeNames[i] = string(t)
		}
		types = typeNames
	}
	if len(r.Queues) > 0 {
		queues = r.Queues
	}
	rows, err := s.pool.Query(ctx, `SELECT `+jobColumns+` FROM troupe_flow_claim($1, $2, $3, $4, $5, $6, $7)`,
		node, limit, r.Lease.Microseconds(), names, rooms, types, queues)
	if err != nil {
		return nil, fmt.Errorf("claim jobs of flow-controlled queues for %s: %w", ownerName(node), mapError(err))
	}
	jobs, err := collectJobs(rows)
	if err != nil {
		return nil, fmt.Errorf("claim jobs of flow-controlled queues for %s: %w", ownerName(node), mapError(err))
	}
	return jobs, nil
}

// RenewLeases extends to now + lease the leases of the given jobs that
// still run on node, and returns the IDs among ids that no longer do (they
// were rescued, finished or deleted), in the order given: the node must stop
// those attempts and drop their results. A lease that expired but was not
// rescued yet is renewed: the node was late, not dead.
//
// Renewing does not change updated_at: the lease is bookkeeping, not a
// change of the job.
func (s *Store) RenewLeases(ctx context.Context, node string, ids []uuid.UUID, lease time.Duration) (lost []uuid.UUID, err error) {
	if s.closed.Load() {
		return nil, domain.ErrClosed
	}
	if node == "" {
		return nil, fmt.Errorf("renew leases: %w: node must not be empty", domain.ErrInvalid)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `
WITH locked AS MATERIALIZED (
    `+lockRunningSQL("$1", "$2")+`
), renewed AS (
    UPDATE troupe_jobs AS j
       SET lease_expires_at = now() + $3::bigint * interval '1 microsecond'
      FROM locked
     WHERE j.id = locked.id AND j.status = 'running' AND j.owner_node = $1
 RETURNING j.id
)
SELECT u.id
  FROM unnest($2::uuid[]) WITH ORDINALITY AS u(id, n)
 WHERE u.id NOT IN (SELECT id FROM renewed)
 ORDER BY u.n`, node, ids, lease.Microseconds())
	if err != nil {
		return nil, fmt.Errorf("renew %d leases for %s: %w", len(ids), ownerName(node), mapError(err))
	}
	lost, err = pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return nil, fmt.Errorf("renew %d leases for %s: %w", len(ids), ownerName(node), mapError(err))
	}
	return lost, nil
}

// UpdateOwned replaces the stored snapshot of job, like Update, but only
// while the job is still running on node. The runtime writes every outcome
// of an attempt with it (complete, fail, retry (scheduled or pending),
// cancel, hand back), so that a node whose lease expired cannot overwrite a
// job that another node rescued and may be running again.
//
// It returns an error wrapping ErrLeaseLost when the job exists but no
// longer runs on node, and domain.ErrNotFound when it does not exist. When
// job leaves running, its lease and cancel request are cleared.
//
// Concurrent calls are written together: one caller at a time writes
// everything the others queued meanwhile in one statement and one commit,
// so that a busy node pays a commit per batch of outcomes, not per job.
func (s *Store) UpdateOwned(ctx context.Context, node string, job *domain.Job) error {
	if s.closed.Load() {
		return domain.ErrClosed
	}
	if node == "" {
		return fmt.Errorf("update job %s: %w: node must not be empty", job.ID, domain.ErrInvalid)
	}
	req := &ownedUpdate{node: node, job: job, done: make(chan error, 1)}
	b := &s.owned
	b.mu.Lock()
	b.queue = append(b.queue, req)
	if b.writing {
		b.mu.Unlock()
		select {
		case err := <-req.done:
			return err
		case <-ctx.Done():
			// The write may still land; the caller treats it as unknown.
			return fmt.Errorf("update job %s for %s: %w", job.ID, ownerName(node), ctx.Err())
		}
	}
	// This caller writes until the queue is empty: its own update first.
	b.writing = true
	for {
		n := min(len(b.queue), ownedBatchMax)
		batch := b.queue[:n:n]
		b.queue = b.queue[n:]
		b.mu.Unlock()
		s.writeOwned(context.WithoutCancel(ctx), batch)
		b.mu.Lock()
		if len(b.queue) == 0 {
			b.writing = false
			b.mu.Unlock()
			return <-req.done
		}
	}
}

// lockRunningSQL selects and locks the rows of the jobs among the IDs of
// parameter ids that run on the node of parameter node, in the order of
// their IDs. Every statement that changes rows others may change too locks
// them this way first, in a MATERIALIZED CTE that the planner cannot fold
// into the UPDATE; the UPDATE then changes only rows it already holds. In
// any other order (the plan's, or the caller's), a node's lease renewal
// and its batch of outcomes, each holding some of the rows the other
// wants, deadlock. Claims and rescues skip locked rows and never wait.
func lockRunningSQL(node, ids string) string {
	return `SELECT id FROM troupe_jobs
     WHERE id = ANY(` + ids + `::uuid[]) AND status = 'running' AND owner_node = ` + node + `
     ORDER BY id
       FOR UPDATE`
}

// ownedBatchMax caps the outcomes written by one statement.
const ownedBatchMax = 1000

// ownedUpdates queues UpdateOwned calls; see UpdateOwned.
type ownedUpdates struct {
	mu      sync.Mutex
	queue   []*ownedUpdate
	writing bool
}

type ownedUpdate struct {
	node string
	job  *domain.Job
	done chan error // buffered: the writer never waits for the caller
}

// writeOwned writes a batch of owned updates, node by node, and answers
// each caller.
func (s *Store) writeOwned(ctx context.Context, batch []*ownedUpdate) {
	byNode := map[string][]*ownedUpdate{}
	for _, u := range batch {
		byNode[u.node] = append(byNode[u.node], u)
	}
	for node, updates := range byNode {
		errs := s.writeOwnedOfNode(ctx, node, updates)
		for _, u := range updates {
			u.done <- errs[u.job.ID]
		}
	}
}

// writeOwnedOfNode writes the updates of one node in one statement and
// returns the error of each job that was not written (nil when written).
// One UPDATE changes a row once, so of several snapshots of a job the last
// is written, and every caller of that job gets its result.
func (s *Store) writeOwnedOfNode(ctx context.Context, node string, updates []*ownedUpdate) map[uuid.UUID]error {
	last := map[uuid.UUID]*domain.Job{}
	for _, u := range updates {
		last[u.job.ID] = u.job
	}
	jobs := make([]*domain.Job, 0, len(last))
	for _, j := range last {
		jobs = append(jobs, j)
	}
	errs := map[uuid.UUID]error{}
	fail := func(err error) map[uuid.UUID]error {
		for id := range last {
			errs[id] = fmt.Errorf("update job %s for %s: %w", id, ownerName(node), err)
		}
		return errs
	}
	a, err := newJobArrays(jobs)
	if err != nil {
		return fail(err)
	}
	nodeParam := "$" + strconv.Itoa(jobArgs+1)
	rows, err := s.pool.Query(ctx, `
WITH locked AS MATERIALIZED (
    `+lockRunningSQL(nodeParam, "$1")+`
)
UPDATE troupe_jobs AS j
   SET `+updateSet+`
  FROM `+unnestJobs+`, locked
 WHERE j.id = u.id AND j.id = locked.id AND j.status = 'running' AND j.owner_node = `+nodeParam+`
RETURNING j.id`, append(a.args(), node)...)
	if err != nil {
		return fail(mapError(err))
	}
	written, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return fail(mapError(err))
	}
	for _, id := range written {
		delete(last, id)
	}
	if len(last) == 0 {
		return errs
	}
	// Those not written were taken back by another node, or are gone.
	missing := make([]uuid.UUID, 0, len(last))
	for id := range last {
		missing = append(missing, id)
	}
	rows, err = s.pool.Query(ctx, `SELECT id FROM troupe_jobs WHERE id = ANY($1::uuid[])`, missing)
	if err != nil {
		return fail(mapError(err))
	}
	existing, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return fail(mapError(err))
	}
	for _, id := range missing {
		errs[id] = fmt.Errorf("update job %s for %s: %w", id, ownerName(node), domain.ErrNotFound)
	}
	for _, id := range existing {
		errs[id] = fmt.Errorf("update job %s for %s: %w", id, ownerName(node), ErrLeaseLost)
	}
	return errs
}

// RescueExpired takes back every running job whose lease expired before
// the database's now, as an interrupted attempt (the attempt was counted by
// ClaimJobs): back to pending, ready at once (run_at = now), with last_error set to
// domain.ErrInterrupted's text, while attempts < max_attempts; failed, with
// finished_at set, when none remain. A job whose cancel was requested
// becomes canceled instead: its user asked for that, and the attempt is
// gone. It returns how many jobs it took back.
//
// It is one UPDATE that skips rows other statements hold, so every node may
// run it at any time, concurrently, without taking a job twice or waiting.
func (s *Store) RescueExpired(ctx context.Context) (int, error) {
	if s.closed.Load() {
		return 0, domain.ErrClosed
	}
	tag, err := s.pool.Exec(ctx, rescueSQL, domain.ErrInterrupted.Error())
	if err != nil {
		return 0, fmt.Errorf("rescue expired jobs: %w", mapError(err))
	}
	n := int(tag.RowsAffected())
	if n > 0 {
		s.logger.Warn("rescued jobs whose lease expired", "jobs", n)
	}
	return n, nil
}

// rescueSQL is RescueExpired's statement; $1 is the interrupted attempt's
// error text.
const rescueSQL = `
WITH expired AS (
    SELECT id
      FROM troupe_jobs
     WHERE status = 'running' AND lease_expires_at < now()
       FOR UPDATE SKIP LOCKED
)
UPDATE troupe_jobs AS j
   SET status = CASE
                    WHEN j.cancel_requested THEN 'canceled'
                    WHEN j.attempts < j.max_attempts THEN 'pending'
                    ELSE 'failed'
                END,
       last_error = CASE WHEN j.cancel_requested THEN j.last_error ELSE $1 END,
       run_at = now(),
       finished_at = CASE
                         WHEN NOT j.cancel_requested AND j.attempts < j.max_attempts THEN NULL
                         ELSE now()
                     END,
       updated_at = now(),
       owner_node = NULL,
       lease_expires_at = NULL,
       cancel_requested = false
  FROM expired
 WHERE j.id = expired.id`

// CancelJob cancels a job wherever it runs, in one conditional UPDATE:
//   - scheduled or pending: canceled at once (finished_at and updated_at set
//     to now);
//   - canceled: returned unchanged;
//   - running: the job stays running and is returned so; its cancel_requested
//     flag is set and its node is notified (domain.NoticeCancelRequested) so
//     that it cancels the attempt's context and records the outcome with
//     UpdateOwned;
//   - completed or failed: an error wrapping domain.ErrNotCancelable;
//   - missing: an error wrapping domain.ErrNotFound.
func (s *Store) CancelJob(ctx context.Context, id uuid.UUID) (*domain.Job, error) {
	if s.closed.Load() {
		return nil, domain.ErrClosed
	}
	j, err := scanJob(s.pool.QueryRow(ctx, `
WITH upd AS (
    UPDATE troupe_jobs
       SET status = CASE WHEN status = 'running' THEN status ELSE 'canceled' END,
           finished_at = CASE WHEN status = 'running' THEN finished_at ELSE now() END,
           updated_at = CASE WHEN status = 'running' THEN updated_at ELSE now() END,
           cancel_requested = status = 'running'
     WHERE id = $1 AND status IN ('scheduled', 'pending', 'running')
 RETURNING `+jobColumns+`
)
SELECT `+jobColumns+` FROM upd
UNION ALL
SELECT `+jobColumns+` FROM troupe_jobs WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM upd)`, id))
	if err != nil {
		return nil, fmt.Errorf("cancel job %s: %w", id, mapError(err))
	}
	if j.Status == domain.StatusCompleted || j.Status == domain.StatusFailed {
		return nil, fmt.Errorf("cancel job %s: job is %s: %w", id, j.Status, domain.ErrNotCancelable)
	}
	return j, nil
}

// CancelRequests returns the IDs of the jobs running on node whose cancel
// was requested. A node calls it when its Watch (re)connects and on its
// slow poll, because a notification sent while it was not listening is lost.
func (s *Store) CancelRequests(ctx context.Context, node string) ([]uuid.UUID, error) {
	if s.closed.Load() {
		return nil, domain.ErrClosed
	}
	if node == "" {
		return nil, fmt.Errorf("cancel requests: %w: node must not be empty", domain.ErrInvalid)
	}
	rows, err := s.pool.Query(ctx, `
SELECT id FROM troupe_jobs
 WHERE status = 'running' AND owner_node = $1 AND cancel_requested
 ORDER BY id`, node)
	if err != nil {
		return nil, fmt.Errorf("cancel requests for %s: %w", ownerName(node), mapError(err))
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return nil, fmt.Errorf("cancel requests for %s: %w", ownerName(node), mapError(err))
	}
	return ids, nil
}
