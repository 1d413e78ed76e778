package domain

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Store is the port every persistence backend implements. Snapshots are
// whole jobs. A method returns only once its change is durable in the
// backend's terms, so the caller may then tell others it happened. Jobs
// returned are the caller's own copies. Missing jobs give ErrNotFound.
type Store interface {
	// Create stores new jobs, all or none. A job whose ID is already stored
	// gives ErrAlreadyExists, and one whose UniqueKey is held (see Insert)
	// ErrDuplicate; then nothing is stored.
	Create(ctx context.Context, jobs ...*Job) error
	// Insert stores new jobs in one write, except those whose UniqueKey is
	// held at now by a stored job or by an earlier job of the same call
	// (Job.HoldsUniqueKey): existing[i] is the job holding jobs[i]'s key,
	// nil where jobs[i] was stored. Uniqueness holds against every
	// concurrent writer, on every node. A store with its own clock (a
	// shared one) may use it instead of now. A job whose ID is already
	// stored gives ErrAlreadyExists and nothing is stored.
	Insert(ctx context.Context, now time.Time, jobs []*Job) (existing []*Job, err error)
	// Get returns the job with the given ID.
	Get(ctx context.Context, id uuid.UUID) (*Job, error)
	// Update replaces the stored snapshots of existing jobs, all or none.
	Update(ctx context.Context, jobs ...*Job) error
	// Delete removes a job.
	Delete(ctx context.Context, id uuid.UUID) error
	// List returns one page of the jobs that match f, oldest first, and how
	// many match in all. Jobs is empty, never nil, when nothing matches.
	List(ctx context.Context, f Filter) (Page, error)
	// Scan calls fn with each job that matches f, oldest first, without
	// holding them all in memory; an error from fn stops it and is returned.
	// Recovery uses it to stream every unfinished job.
	Scan(ctx context.Context, f Filter, fn func(*Job) error) error
	// PromoteDue makes pending up to limit scheduled jobs whose RunAt is at
	// or before now, earliest RunAt first, and returns them as stored. A
	// store with its own clock (a shared one) uses it instead of now.
	PromoteDue(ctx context.Context, now time.Time, limit int) ([]*Job, error)
	// NextRunAt returns the earliest RunAt of a scheduled job, or the zero
	// time when no job is scheduled.
	NextRunAt(ctx context.Context) (time.Time, error)
	// Queues returns, by name, every queue that holds unfinished jobs, is
	// paused or has flow settings, with its counts of unfinished jobs and
	// its settings.
	Queues(ctx context.Context) ([]QueueInfo, error)
	// SetQueuePaused pauses or resumes a queue, durably. A queue need not
	// hold jobs to be paused; jobs submitted to it wait.
	SetQueuePaused(ctx context.Context, name string, paused bool) error
	// SetQueueSettings replaces a queue's flow settings, durably, leaving
	// its pause alone; zero settings clear them. A queue need not hold
	// jobs to have settings. The settings are valid (the caller checked
	// QueueSettings.Validate). A shared store restarts the queue's rate
	// buckets (full) when the settings change.
	SetQueueSettings(ctx context.Context, name string, settings QueueSettings) error
	// DeleteFinished deletes up to limit jobs in the terminal status that
	// finished before before, oldest FinishedAt first, skipping those that
	// still hold their unique key at now (Job.HoldsUniqueKey), and returns
	// how many it deleted. It is one bounded write, cheap however many
	// jobs the store holds (an index on status and FinishedAt), and safe
	// to run on several nodes at once. A non-terminal status gives
	// ErrInvalid.
	DeleteFinished(ctx context.Context, now time.Time, status Status, before time.Time, limit int) (int, error)
	ScheduleStore
	// Ping reports whether the backend is reachable and writable.
	Ping(ctx context.Context) error
	// Flush makes every acknowledged write durable on stable storage.
	Flush(ctx context.Context) error
	// Close flushes and releases the backend. The store is unusable after.
	Close() error
}

// Filter selects jobs. Zero fields select everything.
type Filter struct {
	// Statuses keeps jobs in any of these statuses; empty means any.
	Statuses []Status
	// Type keeps jobs of this type; empty means any.
	Type JobType
	// Queue keeps jobs of this queue; empty means any.
	Queue string
	// Schedule keeps jobs submitted by this schedule; empty means any.
	Schedule string
	// Key keeps jobs with this key; empty means any.
	Key string
	// Limit caps how many jobs come back; 0 means no cap.
	Limit int
	// Offset skips this many matching jobs first.
	Offset int
}

// Matches reports whether j passes the filter's status and type.
func (f Filter) Matches(j *Job) bool {
	if f.Type != "" && j.Type != f.Type {
		return false
	}
	if f.Queue != "" && j.Queue != f.Queue {
		return false
	}
	if f.Schedule != "" && j.Schedule != f.Schedule {
		return false
	}
	if f.Key != "" && j.Key != f.Key {
		return false
	}
	if len(f.Statuses) == 0 {
		return true
	}
	for _, s := range f.Statuses {
		if j.Status == s {
			return true
		}
	}
	return false
}

// Page is one page of a listing.
type Page struct {
	// Jobs is the page, oldest first; never nil.
	Jobs []*Job
	// Total counts every job that matches the filter, ignoring Limit and Offset.
	Total int
}

// Compare orders jobs oldest first, by CreatedAt then by ID, the order every
// store lists in; for slices.SortFunc: negative when a lists before b.
func Compare(a, b *Job) int {
	if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
		return c
	}
	return bytes.Compare(a.ID[:], b.ID[:])
}

// QueueInfo is the state of one queue in a store.
type QueueInfo struct {
	Name   string
	Paused bool
	// Settings are the queue's flow settings.
	Settings QueueSettings
	// The queue's unfinished jobs, by status.
	Scheduled, Pending, Running int
}

// RequestRecord is what a RequestLog keeps of one request made with an
// idempotency key: while it runs, and then its response.
type RequestRecord struct {
	// Scope is the caller (an API token's name) the key belongs to.
	Scope string
	// Key is the caller's Idempotency-Key.
	Key string
	// Fingerprint identifies the request (a hash of its method, path and
	// body): the same key with another fingerprint is a misuse.
	Fingerprint string
	// Done says the response is recorded; until then the request is in
	// flight.
	Done bool
	// Status and Body are the recorded response.
	Status int
	Body   []byte
	// ExpiresAt is when the record may be forgotten: for a request in
	// flight, when it counts as abandoned (its server died); for a done
	// one, when the key may be used again.
	ExpiresAt time.Time
}

// RequestLog is the port of a store that keeps idempotency records
// durably, so that a client retrying after a crash gets the first answer.
type RequestLog interface {
	// BeginRequest records rec (in flight) unless a live record has the
	// same scope and key: then it returns that record and stores nothing.
	// A record whose ExpiresAt is at or before now is not live.
	BeginRequest(ctx context.Context, now time.Time, rec RequestRecord) (existing *RequestRecord, err error)
	// FinishRequest replaces the in-flight record of rec's scope and key
	// with rec, done.
	FinishRequest(ctx context.Context, rec RequestRecord) error
	// AbandonRequest forgets the in-flight record of scope and key, so the
	// request may be made again at once (it failed without an answer worth
	// keeping).
	AbandonRequest(ctx context.Context, scope, key string) error
	// DeleteExpiredRequests forgets up to limit records that expired at or
	// before now and returns how many it forgot.
	DeleteExpiredRequests(ctx context.Context, now time.Time, limit int) (int, error)
}

// QueueTally gathers the answer of Store.Queues, so that every store
// counts and orders it alike. The zero value is ready to use.
type QueueTally struct {
	byName map[string]*QueueInfo
}

func (t *QueueTally) queue(name string) *QueueInfo {
	if t.byName == nil {
		t.byName = make(map[string]*QueueInfo)
	}
	q, ok := t.byName[name]
	if !ok {
		q = &QueueInfo{Name: name}
		t.byName[name] = q
	}
	return q
}

// Count adds n jobs in status to the named queue. Only unfinished jobs
// count, and only they (or a pause) list a queue.
func (t *QueueTally) Count(queue string, status Status, n int) {
	if n <= 0 {
		return
	}
	switch status {
	case StatusScheduled:
		t.queue(queue).Scheduled += n
	case StatusPending:
		t.queue(queue).Pending += n
	case StatusRunning:
		t.queue(queue).Running += n
	}
}

// Pause marks the named queue paused, listing it even without jobs.
func (t *QueueTally) Pause(queue string) { t.queue(queue).Paused = true }

// Settings records the named queue's flow settings, listing it even
// without jobs when they set anything.
func (t *QueueTally) Settings(queue string, s QueueSettings) {
	if !s.IsZero() {
		t.queue(queue).Settings = s.Clone()
	}
}

// Queues returns the queues counted, by name.
func (t *QueueTally) Queues() []QueueInfo {
	out := make([]QueueInfo, 0, len(t.byName))
	for _, q := range t.byName {
		out = append(out, *q)
	}
	slices.SortFunc(out, func(a, b QueueInfo) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// InsertTrace hooks into a Store's Insert, as net/http/httptrace does into
// a request: it rides in the context, so that every wrapper of a Store
// passes it on.
type InsertTrace struct {
	// Committed, if set, is called at most once, with what Insert will
	// return as existing, when the jobs are committed and readable but
	// not yet durable: a store that makes its writes durable after
	// committing them (Badger with DurabilityFull) calls it before it
	// waits for stable storage. The caller may then start the jobs while
	// the store makes them durable: if that fails, Insert returns an
	// error for jobs that are stored and may run, which at least once
	// allows. It runs on the store's writer, so it must not block. A store
	// that does not call it makes the jobs durable before Insert returns,
	// as always.
	Committed func(existing []*Job)
}

type insertTraceKey struct{}

// WithInsertTrace returns ctx carrying t for Insert.
func WithInsertTrace(ctx context.Context, t *InsertTrace) context.Context {
	return context.WithValue(ctx, insertTraceKey{}, t)
}

// InsertTraceFrom returns the InsertTrace ctx carries, or nil.
func InsertTraceFrom(ctx context.Context) *InsertTrace {
	t, _ := ctx.Value(insertTraceKey{}).(*InsertTrace)
	return t
}
