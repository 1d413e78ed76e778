package pgstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/troupe-go/troupe/domain"
)

// Unique keys. A row holds its key while unique_held is true, and the
// partial unique index troupe_jobs_unique_key_idx admits one such row per
// key, so that two writers, on one node or on several, can never both store
// a job with a key: the index decides, inside PostgreSQL, and the loser
// waits for the winner's transaction to end before it knows it lost.
//
// Whether a finished job still holds its key depends on the time (it holds
// it for unique_for after it finished), which no index predicate can say.
// So a row keeps the flag until a writer that wants the key finds its
// holder finished long enough ago and clears the flag (releaseKeysSQL), in
// the transaction that then inserts: a concurrent writer either waits on
// that row's lock or on the inserted key, and then sees the new holder.
// Deleting a job frees its key with its row.

// uniqueKeyIndex is the index a held key's unique violation names.
const uniqueKeyIndex = "troupe_jobs_unique_key_idx"

// insertAttempts bounds how often Insert tries again for jobs whose key was
// held when it inserted but whose holder was gone when it looked (deleted or
// released in between), or whose insert deadlocked.
const insertAttempts = 10

// releaseKeysSQL clears the flag of the rows among keys $1 that finished
// unique_for or longer before $2 (the database's now when NULL). A holder's
// finished_at comes from its node's clock, so Insert compares it with the
// caller's. The unique index hands the rows over in key order, so two
// writers lock them in the same order.
const releaseKeysSQL = `
UPDATE troupe_jobs
   SET unique_held = false
 WHERE unique_held
   AND unique_key = ANY($1::text[])
   AND status IN ('completed', 'failed', 'canceled')
   AND (finished_at IS NULL
        OR finished_at + (unique_for_ns / 1000) * interval '1 microsecond' <= COALESCE($2::timestamptz, now()))`

// insertJobsSQL inserts the unnested jobs, each holding its key if it has
// one; a held key is a unique violation.
const insertJobsSQL = `INSERT INTO troupe_jobs (` + jobColumns + `, unique_held)
SELECT u.*, u.unique_key IS NOT NULL FROM ` + unnestJobs

// holdersSQL reads the jobs that hold keys $1.
const holdersSQL = `SELECT ` + jobColumns + ` FROM troupe_jobs WHERE unique_held AND unique_key = ANY($1::text[])`

// Create implements domain.Store. Any number of jobs go in one INSERT of
// unnested arrays: one round trip, and all or none. A stored or repeated ID
// gives domain.ErrAlreadyExists naming it; a unique key held by a stored job
// (or repeated in the call) gives domain.ErrDuplicate. Whether a finished
// job still holds its key is decided with the database's clock.
func (s *Store) Create(ctx context.Context, jobs ...*domain.Job) error {
	if s.closed.Load() {
		return domain.ErrClosed
	}
	if len(jobs) == 0 {
		return nil
	}
	a, err := newJobArrays(jobs)
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	queues := s.queueNames.unknown(jobs)
	if a.keyed == 0 && len(queues) == 0 {
		_, err = s.pool.Exec(ctx, insertJobsSQL, a.args()...)
	} else {
		var b pgx.Batch
		s.queueInsertQueues(&b, queues)
		if a.keyed > 0 {
			// Keys are taken in one order by every writer: see Insert.
			jobs = byUniqueKey(jobs)
			if a, err = newJobArrays(jobs); err != nil {
				return fmt.Errorf("create: %w", err)
			}
			b.Queue(releaseKeysSQL, uniqueKeys(jobs), nil)
		}
		b.Queue(insertJobsSQL, a.args()...)
		// A batch runs in one implicit transaction: all or none.
		err = s.pool.SendBatch(ctx, &b).Close()
	}
	if err != nil {
		if key, ok := heldKey(err); ok {
			return fmt.Errorf("create job %s: %w: unique key %q is held", jobWithKey(jobs, key), domain.ErrDuplicate, key)
		}
		return fmt.Errorf("create job %s: %w", duplicateID(err, jobs), mapError(err))
	}
	s.queueNames.remember(queues)
	return nil
}

// Insert implements domain.Store: it stores the jobs whose unique key is
// free and returns, for each of the others, the job holding its key. A
// finished job holds its key until UniqueFor after its FinishedAt, compared
// with now (the caller's clock, which also wrote FinishedAt); the zero now
// means the database's clock.
//
// The jobs are inserted with ON CONFLICT DO NOTHING on the unique index,
// in one transaction that first releases the keys whose holders finished
// long enough ago and then reads the holders of the keys it could not
// take, so one round trip does it all. A holder that vanished between the
// conflict and the read (deleted, or released by another writer) sends the
// job round again, up to insertAttempts times.
func (s *Store) Insert(ctx context.Context, now time.Time, jobs []*domain.Job) ([]*domain.Job, error) {
	if s.closed.Load() {
		return nil, domain.ErrClosed
	}
	existing := make([]*domain.Job, len(jobs))
	// The first job of the call with a key stands for the later ones with
	// it: they are its duplicates, whether it is stored or refused.
	standIn := make([]int, len(jobs))
	first := make(map[string]int)
	ids := make(map[uuid.UUID]struct{}, len(jobs))
	var todo []*domain.Job
	for i, j := range jobs {
		if _, dup := ids[j.ID]; dup {
			return nil, fmt.Errorf("insert job %s: %w", j.ID, domain.ErrAlreadyExists)
		}
		ids[j.ID] = struct{}{}
		standIn[i] = -1
		if j.UniqueKey != "" {
			if f, ok := first[j.UniqueKey]; ok {
				standIn[i] = f
				continue
			}
			first[j.UniqueKey] = i
		}
		todo = append(todo, j)
	}
	holderOf := make(map[uuid.UUID]*domain.Job)
	for attempt := 1; len(todo) > 0; attempt++ {
		inserted, holders, err := s.insertOnce(ctx, now, todo)
		if err != nil {
			if isDeadlock(err) && attempt < insertAttempts {
				continue
			}
			return nil, fmt.Errorf("insert job %s: %w", duplicateID(err, todo), mapError(err))
		}
		var again []*domain.Job
		for _, j := range todo {
			if _, ok := inserted[j.ID]; ok {
				continue
			}
			if h := holders[j.UniqueKey]; h != nil && j.UniqueKey != "" {
				holderOf[j.ID] = h
				continue
			}
			again = append(again, j)
		}
		if len(again) > 0 && attempt == insertAttempts {
			return nil, fmt.Errorf("insert job %s: its unique key %q changed hands %d times while it was inserted", again[0].ID, again[0].UniqueKey, insertAttempts)
		}
		todo = again
	}
	for i, j := range jobs {
		if h := holderOf[j.ID]; h != nil {
			existing[i] = h.Clone()
		}
	}
	for i, f := range standIn {
		switch {
		case f < 0:
		case existing[f] != nil:
			existing[i] = existing[f].Clone()
		default:
			existing[i] = jobs[f].Clone()
		}
	}
	return existing, nil
}

// insertOnce runs one transaction of Insert and returns the IDs it stored
// and, by key, the jobs holding the keys of jobs.
func (s *Store) insertOnce(ctx context.Context, now time.Time, jobs []*domain.Job) (map[uuid.UUID]struct{}, map[string]*domain.Job, error) {
	jobs = byUniqueKey(jobs)
	a, err := newJobArrays(jobs)
	if err != nil {
		return nil, nil, err
	}
	queues := s.queueNames.unknown(jobs)
	inserted := make(map[uuid.UUID]struct{}, len(jobs))
	holders := make(map[string]*domain.Job)
	if a.keyed == 0 && len(queues) == 0 {
		if _, err := s.pool.Exec(ctx, insertJobsSQL, a.args()...); err != nil {
			return nil, nil, err
		}
		for _, j := range jobs {
			inserted[j.ID] = struct{}{}
		}
		return inserted, holders, nil
	}

	var b pgx.Batch
	s.queueInsertQueues(&b, queues)
	if a.keyed == 0 {
		b.Queue(insertJobsSQL, a.args()...)
		if err := s.pool.SendBatch(ctx, &b).Close(); err != nil {
			return nil, nil, err
		}
		s.queueNames.remember(queues)
		for _, j := range jobs {
			inserted[j.ID] = struct{}{}
		}
		return inserted, holders, nil
	}
	keys := uniqueKeys(jobs)
	var nowArg any
	if !now.IsZero() {
		nowArg = domain.Timestamp(now)
	}
	b.Queue(releaseKeysSQL, keys, nowArg)
	b.Queue(insertJobsSQL+` ON CONFLICT (unique_key) WHERE unique_held DO NOTHING RETURNING id`, a.args()...).
		Query(func(rows pgx.Rows) error {
			got, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
			for _, id := range got {
				inserted[id] = struct{}{}
			}
			return err
		})
	b.Queue(holdersSQL, keys).Query(func(rows pgx.Rows) error {
		got, err := collectJobs(rows)
		for _, h := range got {
			holders[h.UniqueKey] = h
		}
		return err
	})
	if err := s.pool.SendBatch(ctx, &b).Close(); err != nil {
		return nil, nil, err
	}
	s.queueNames.remember(queues)
	return inserted, holders, nil
}

// byUniqueKey returns jobs ordered by unique key (keyless first), so that
// every writer inserts keys in the same order: one that waits for a key
// another holds uncommitted never holds a key that other waits for, and
// concurrent inserts cannot deadlock.
func byUniqueKey(jobs []*domain.Job) []*domain.Job {
	if slices.IsSortedFunc(jobs, compareUniqueKeys) {
		return jobs
	}
	out := slices.Clone(jobs)
	slices.SortStableFunc(out, compareUniqueKeys)
	return out
}

func compareUniqueKeys(a, b *domain.Job) int { return cmp.Compare(a.UniqueKey, b.UniqueKey) }

// uniqueKeys returns the keys of jobs, without the empty one.
func uniqueKeys(jobs []*domain.Job) []string {
	keys := make([]string, 0, len(jobs))
	for _, j := range jobs {
		if j.UniqueKey != "" {
			keys = append(keys, j.UniqueKey)
		}
	}
	return keys
}

// heldKey reports whether err is a violation of the unique key index, and
// the key it names (PostgreSQL's detail reads `Key (unique_key)=(k) already
// exists.`).
func heldKey(err error) (string, bool) {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != pgerrcode.UniqueViolation || pgErr.ConstraintName != uniqueKeyIndex {
		return "", false
	}
	_, rest, _ := strings.Cut(pgErr.Detail, "=(")
	key, _, _ := strings.Cut(rest, ") already exists")
	return key, true
}

// jobWithKey names the job of jobs with key, or the first job.
func jobWithKey(jobs []*domain.Job, key string) string {
	for _, j := range jobs {
		if j.UniqueKey == key {
			return j.ID.String()
		}
	}
	return jobs[0].ID.String()
}

func isDeadlock(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == pgerrcode.DeadlockDetected
}

// insertQueuesSQL records queue names, in name order so that concurrent
// writers of several new queues cannot deadlock.
const insertQueuesSQL = `INSERT INTO troupe_queues (name)
SELECT name FROM unnest($1::text[]) AS q(name) ORDER BY name
ON CONFLICT (name) DO NOTHING`

// queueInsertQueues adds to b the insert of queue names, if any.
func (s *Store) queueInsertQueues(b *pgx.Batch, names []string) {
	if len(names) > 0 {
		b.Queue(insertQueuesSQL, names)
	}
}

// recordQueues records the queues of jobs this Store does not know of, on
// its own: for Update, which may move a job to a queue never used before.
// A queue recorded for nothing is harmless: it is listed only if paused.
func (s *Store) recordQueues(ctx context.Context, jobs []*domain.Job) error {
	names := s.queueNames.unknown(jobs)
	if len(names) == 0 {
		return nil
	}
	if _, err := s.pool.Exec(ctx, insertQueuesSQL, names); err != nil {
		return mapError(err)
	}
	s.queueNames.remember(names)
	return nil
}

// queueNames remembers the queues this Store has recorded in troupe_queues
// (or found there), so that a stream of submissions to known queues does
// not write the table each time. A name is remembered only once the
// transaction that recorded it committed.
type queueNames struct {
	known sync.Map // string → struct{}
}

// unknown returns the distinct queue names of jobs not yet remembered.
func (q *queueNames) unknown(jobs []*domain.Job) []string {
	var names []string
	last := ""
	for i, j := range jobs {
		if i > 0 && j.Queue == last {
			continue
		}
		last = j.Queue
		if _, ok := q.known.Load(j.Queue); ok || slices.Contains(names, j.Queue) {
			continue
		}
		names = append(names, j.Queue)
	}
	return names
}

func (q *queueNames) remember(names []string) {
	for _, n := range names {
		q.known.Store(n, struct{}{})
	}
}
