package badgerstore

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/google/uuid"

	"github.com/troupe-go/troupe/domain"
)

// op is what a request asks of the writer.
type op uint8

const (
	opCreate op = iota + 1
	opUpdate
	opDelete
	// opInsert is Insert: a create that reports held unique keys per job
	// instead of failing.
	opInsert
	opPromote
	opSetPaused
	opBeginRequest
	opFinishRequest
	opAbandonRequest
	opDeleteExpiredRequests
	opDeleteFinished
	opPutSchedule
	opDeleteSchedule
	opRecordScheduleRun
	opSetSettings
)

// String names the operation as errors read: "create job …".
func (o op) String() string {
	switch o {
	case opCreate:
		return "create"
	case opUpdate:
		return "update"
	case opDelete:
		return "delete"
	case opInsert:
		return "insert"
	case opPromote:
		return "promote"
	case opSetPaused:
		return "pause"
	case opBeginRequest:
		return "begin request"
	case opFinishRequest:
		return "finish request"
	case opAbandonRequest:
		return "abandon request"
	case opDeleteExpiredRequests:
		return "delete expired requests"
	case opDeleteFinished:
		return "delete finished jobs"
	case opPutSchedule:
		return "put schedule"
	case opDeleteSchedule:
		return "delete schedule"
	case opRecordScheduleRun:
		return "record run of schedule"
	case opSetSettings:
		return "set settings of queue"
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// mustSync reports whether r, under DurabilityFull, is acknowledged only
// once its commit is on stable storage: what a client is told is stored
// (new jobs, deletes, cancels, pauses, queue settings, schedules, the
// request log). The other writes — a job's start, an attempt's outcome,
// progress, promotions, retention, schedule runs — may be lost to a power
// cut at worst, which runs a job again (at least once allows it); they
// reach stable storage with the next synced commit.
func (r *request) mustSync() bool {
	switch r.op {
	case opUpdate:
		for _, s := range r.snaps {
			if s.index.status == codeCanceled {
				return true
			}
		}
		return false
	case opPromote, opDeleteExpiredRequests, opDeleteFinished, opRecordScheduleRun:
		return false
	}
	return true
}

// addsData reports whether the op stores something new, which a nearly
// full disk refuses first (space.go): new jobs, new request records and
// schedules. Every other write changes what is stored (or frees it, as
// DeleteFinished does), and goes on down to the floor.
func (o op) addsData() bool {
	return o == opCreate || o == opInsert || o == opBeginRequest || o == opPutSchedule
}

// snapshot is one encoded job, ready to write.
type snapshot struct {
	id    uuid.UUID
	index indexEntry
	value []byte
	// hold is what the writer needs to decide whether the job holds its
	// unique key, without decoding the snapshot.
	hold uniqueHold
}

// uniqueHold is the part of a job that Job.HoldsUniqueKey reads.
type uniqueHold struct {
	finished bool
	// until is FinishedAt + UniqueFor, for a finished job.
	until time.Time
}

func holdOf(j *domain.Job) uniqueHold {
	return uniqueHold{finished: j.Status.IsTerminal(), until: j.FinishedAt.Add(j.UniqueFor)}
}

// holds is Job.HoldsUniqueKey, for a job with a key.
func (h uniqueHold) holds(now time.Time) bool { return !h.finished || h.until.After(now) }

// newSnapshot encodes j.
func newSnapshot(j *domain.Job) (snapshot, error) {
	value, err := encode(nil, j)
	if err != nil {
		return snapshot{}, err
	}
	return snapshot{id: j.ID, index: indexOf(j), value: value, hold: holdOf(j)}, nil
}

// request is one call waiting for the writer. The writer answers on done
// exactly once; done has room for the answer, so the writer never waits
// for a caller that gave up. What a call returns beyond an error (the
// holders of unique keys, the promoted jobs, a request record, a count)
// the writer sets in the request before it answers.
type request struct {
	ctx   context.Context
	op    op
	snaps []snapshot // opCreate, opInsert, opUpdate; opPromote: what it wrote
	id    uuid.UUID  // opDelete
	// now is the time unique keys are judged at (opCreate, opInsert), and
	// the time of opPromote, opBeginRequest and opDeleteExpiredRequests.
	now  time.Time
	done chan error
	// existing (opCreate, opInsert) holds, per job, the job holding its
	// unique key, or nil where the job is stored; nil when no job had a
	// key.
	existing []*domain.Job
	// committed, if set (opInsert under DurabilityFull), is called on the
	// writer once the request is committed, before its fsync: see
	// domain.InsertTrace.
	committed func()
	// extra is the rest of what the other ops carry; nil for the writes
	// of jobs, which keeps the request of a transition small.
	extra *requestExtra
}

// requestExtra is what the ops beyond the writes of jobs carry.
type requestExtra struct {
	// limit bounds opPromote, opDeleteExpiredRequests and
	// opDeleteFinished.
	limit int
	// status and before are opDeleteFinished's: the status code and the
	// cutoff (µs) of the jobs to delete.
	status byte
	before int64
	// schedule is opPutSchedule's; name the schedule of the other
	// schedule ops, and run opRecordScheduleRun's.
	schedule *domain.Schedule
	name     string
	run      domain.ScheduleRun
	// created (opPutSchedule) reports a new schedule.
	created bool
	// queue is opSetPaused's and opSetSettings's, paused opSetPaused's.
	queue  string
	paused bool
	// settings (opSetSettings) are the queue's encoded flow settings; nil
	// clears them.
	settings []byte
	// record is the request record of the request-log ops (only Scope and
	// Key for opAbandonRequest).
	record domain.RequestRecord

	// promoted (opPromote) holds the jobs made pending, as stored.
	promoted []*domain.Job
	// found (opBeginRequest) is the live record that stopped the new one.
	found *domain.RequestRecord
	// deleted (opDeleteExpiredRequests, opDeleteFinished) counts the
	// records or jobs deleted.
	deleted int
}

// newRequest returns a request of an op that writes no given jobs.
func newRequest(ctx context.Context, op op, now time.Time, extra requestExtra) *request {
	return &request{ctx: ctx, op: op, now: now, extra: &extra, done: make(chan error, 1)}
}

// newWriteRequest encodes jobs into a create, insert or update request. A
// duplicate ID inside one Create is refused here: the writer checks IDs
// against the database and the batch, not within one request.
func newWriteRequest(ctx context.Context, op op, jobs []*domain.Job) (*request, error) {
	req := &request{ctx: ctx, op: op, snaps: make([]snapshot, len(jobs)), done: make(chan error, 1)}
	if op != opUpdate {
		req.now = time.Now()
	}
	for i, j := range jobs {
		snap, err := newSnapshot(j)
		if err != nil {
			return nil, fmt.Errorf("%s job %s: %w", op, j.ID, err)
		}
		req.snaps[i] = snap
	}
	if op != opUpdate && len(jobs) > 1 {
		seen := make(map[uuid.UUID]struct{}, len(jobs))
		for _, j := range jobs {
			if _, dup := seen[j.ID]; dup {
				return nil, fmt.Errorf("%s job %s: %w (twice in one call)", op, j.ID, domain.ErrAlreadyExists)
			}
			seen[j.ID] = struct{}{}
		}
	}
	return req, nil
}

// size is how many snapshots the request counts for in a batch.
func (r *request) size() int {
	switch r.op {
	case opCreate, opInsert, opUpdate:
		return len(r.snaps)
	case opPromote, opDeleteExpiredRequests, opDeleteFinished:
		return max(r.extra.limit, 1)
	}
	return 1
}

// label names the request in errors: "update job <id>", or "create 3 jobs
// (first <id>)". Built only when an error needs it.
func (r *request) label() string {
	switch r.op {
	case opDelete:
		return fmt.Sprintf("delete job %s", r.id)
	case opPromote:
		return "promote due jobs"
	case opSetPaused:
		if !r.extra.paused {
			return fmt.Sprintf("resume queue %q", r.extra.queue)
		}
		return fmt.Sprintf("pause queue %q", r.extra.queue)
	case opSetSettings:
		return fmt.Sprintf("%s %q", r.op, r.extra.queue)
	case opBeginRequest, opFinishRequest, opAbandonRequest:
		return fmt.Sprintf("%s %q of %q", r.op, r.extra.record.Key, r.extra.record.Scope)
	case opDeleteExpiredRequests:
		return r.op.String()
	case opDeleteFinished:
		status, _ := statusOf(r.extra.status)
		return fmt.Sprintf("delete %s jobs finished before %s", status, fromMicros(r.extra.before).Format(time.RFC3339Nano))
	case opPutSchedule:
		return fmt.Sprintf("%s %q", r.op, r.extra.schedule.Name)
	case opDeleteSchedule, opRecordScheduleRun:
		return fmt.Sprintf("%s %q", r.op, r.extra.name)
	}
	switch len(r.snaps) {
	case 1:
		return fmt.Sprintf("%s job %s", r.op, r.snaps[0].id)
	case 0:
		return fmt.Sprintf("%s no jobs", r.op)
	}
	return fmt.Sprintf("%s %d jobs (first %s)", r.op, len(r.snaps), r.snaps[0].id)
}

// writer is the group-commit writer: the only goroutine that changes the
// database. Callers queue requests; the writer takes everything waiting
// (up to maxBatch snapshots), checks each request against the database
// and the requests before it, writes the survivors in one transaction and
// answers every caller with its own result.
//
// A lone caller pays one commit, as it would without batching. Under load
// a caller waits for the commit in progress, then shares the next one with
// everyone who queued meanwhile: throughput grows with the number of
// callers while each waits about two commits. Badger applies a transaction
// atomically, so a batch is never half-written.
type writer struct {
	db       *badger.DB
	log      *slog.Logger
	maxBatch int
	queue    chan *request
	stopped  chan struct{}
	// space refuses writes the disk may not hold; nil admits all (an
	// in-memory store). level is what it allowed last, so that a change
	// is logged once.
	space *spaceGuard
	level spaceLevel

	// syncer, when set, answers the requests that must be on stable
	// storage (mustSync) after an fsync, while the writer goes on
	// committing (DurabilityFull).
	syncer *syncer

	// failure holds the error of the latest commit if it failed, for Ping.
	failure atomic.Pointer[error]
	// batches and snapshots count commits and what they carried; the
	// benchmarks report their ratio.
	batches   atomic.Int64
	snapshots atomic.Int64

	// unfinished remembers the index entry of every job last written as
	// pending or running, so that the next write of such a job (its start,
	// its outcome) need not read it back to find its old index keys: that
	// read was a sixth of the writer's time. Only the writer goroutine
	// uses it, and it changes only after a commit succeeds, so it always
	// agrees with the database. Finished jobs leave it, bounding it by the
	// backlog. Scheduled jobs stay out, so that a million of them waiting
	// cost no memory (their next write, a promotion, reads them anyway),
	// and so do jobs with a unique key, whose entry holds the key.
	unfinished map[uuid.UUID]rememberedEntry
	// kindNames and kindIDs intern (type, queue) pairs, so that unfinished
	// holds no pointers and costs the garbage collector nothing to scan.
	kindNames []kind
	kindIDs   map[kind]uint32

	// counts are the queue counts as stored (the c keys): the writer
	// rewrites those a batch changes. Only the writer goroutine uses it
	// once it runs; it changes only after a commit succeeds.
	counts map[countKey]int64
	// deltas and countsAfter are the plans' scratch, kept between batches.
	deltas      map[countKey]int64
	countsAfter []countValue

	// confirmMiss, if set, vets a job that an update or delete did not
	// find: a key in a damaged block reads as missing (see corrupt.go).
	confirmMiss func(what string) error
	// maxDeletes bounds the jobs one DeleteFinished deletes, so that its
	// keys fit in one transaction: see deletesPerTxn.
	maxDeletes int
	// floors holds, per terminal status code, a position in the finished
	// index below which no key of that status is stored: see
	// finishedPos. Only the writer goroutine uses it, and it changes only
	// after a commit succeeds.
	floors [statusCodes]finishedPos
	// held are the held jobs remembered below the floors (heldJob).
	held [statusCodes]map[uuid.UUID]heldJob
}

// rememberedEntry is an indexEntry with its type and queue interned. A
// remembered job is pending or running and has no unique key, so its
// runAt and unique key play no part in its index keys.
type rememberedEntry struct {
	createdAt int64
	kind      uint32
	status    byte
}

// kind is a job's type and queue.
type kind struct{ typ, queue string }

// recall returns the index entry the writer remembers for id.
func (w *writer) recall(id uuid.UUID) (indexEntry, bool) {
	r, ok := w.unfinished[id]
	if !ok {
		return indexEntry{}, false
	}
	k := w.kindNames[r.kind]
	return indexEntry{status: r.status, createdAt: r.createdAt, typ: k.typ, queue: k.queue}, true
}

func (w *writer) intern(k kind) uint32 {
	id, ok := w.kindIDs[k]
	if !ok {
		id = uint32(len(w.kindNames))
		w.kindNames = append(w.kindNames, k)
		w.kindIDs[k] = id
	}
	return id
}

func newWriter(db *badger.DB, log *slog.Logger, maxBatch int, counts map[countKey]int64) *writer {
	return &writer{
		counts:   counts,
		deltas:   make(map[countKey]int64),
		db:       db,
		log:      log,
		maxBatch: maxBatch,
		// Room for one full batch to gather while the previous one commits;
		// beyond that, callers wait to queue: backpressure, not memory.
		queue:      make(chan *request, maxBatch),
		stopped:    make(chan struct{}),
		unfinished: make(map[uuid.UUID]rememberedEntry),
		kindIDs:    make(map[kind]uint32),
		maxDeletes: deletesPerTxn(db),
	}
}

// deletesPerTxn is how many jobs one transaction can delete with room to
// spare: a job has up to six keys (snapshot, status, type, scheduled,
// unique and finished), a type key up to some 160 bytes, and Badger caps
// a transaction's entries and bytes (15% of the memtable).
func deletesPerTxn(db *badger.DB) int {
	return max(1, int(min(db.MaxBatchCount()/8, db.MaxBatchSize()/1024)))
}

// submit queues req and waits for its answer or for ctx to end.
func (w *writer) submit(ctx context.Context, req *request) error {
	select {
	case w.queue <- req:
	case <-ctx.Done():
		return fmt.Errorf("%s: %w", req.label(), ctx.Err())
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		select {
		case err := <-req.done:
			// Answered as ctx ended: the answer is the truth.
			return err
		default:
		}
		// The writer may still write it (or already be writing it): the
		// caller only learns that it stopped waiting.
		return fmt.Errorf("%s: %w", req.label(), ctx.Err())
	}
}

// run is the writer's loop. It returns once the queue is closed and
// drained.
func (w *writer) run() {
	defer close(w.stopped)
	if w.syncer != nil {
		// Deferred after close(stopped), so it runs first: stop returns
		// once every handed request is answered.
		go w.syncer.run()
		defer w.syncer.stop()
	}
	var batch []*request
	for req := range w.queue {
		batch = append(batch[:0], req)
		n := req.size()
	gather:
		for n < w.maxBatch {
			select {
			case r, ok := <-w.queue:
				if !ok {
					break gather
				}
				batch = append(batch, r)
				n += r.size()
			default:
				break gather
			}
		}
		w.commit(batch)
		clear(batch)
	}
}

// stop closes the queue and waits for the writer to drain it. The caller
// guarantees that nobody queues any more.
func (w *writer) stop() {
	close(w.queue)
	<-w.stopped
}

// commit writes one batch and answers every request in it. It is the
// step that run repeats; tests call it directly to build batches by hand.
func (w *writer) commit(batch []*request) {
	live := make([]*request, 0, len(batch))
	for _, r := range batch {
		// A caller that gave up before its turn is answered without a
		// write, which keeps "maybe written" to the few that give up
		// during their own commit.
		if err := r.ctx.Err(); err != nil {
			r.done <- fmt.Errorf("%s: %w", r.label(), err)
			continue
		}
		live = append(live, r)
	}
	w.apply(live)
}

// admit answers the requests the free space does not allow and returns
// the others. The space is measured before every transaction, so that
// Badger writes at most one transaction (at most 15% of the memtable)
// between a measurement and the next: once Badger writes, a full disk is
// a SIGBUS, not an error.
func (w *writer) admit(reqs []*request) []*request {
	if w.space == nil || len(reqs) == 0 {
		return reqs
	}
	free, level, err := w.space.measure()
	if err != nil {
		for _, r := range reqs {
			r.done <- fmt.Errorf("%s: %w: %w", r.label(), domain.ErrUnavailable, err)
		}
		return nil
	}
	w.noteLevel(free, level)
	if level == spaceAmple {
		return reqs
	}
	admitted := reqs[:0]
	for _, r := range reqs {
		if err := w.space.refusal(r.op.addsData(), free, level); err != nil {
			r.done <- fmt.Errorf("%s: %w", r.label(), err)
			continue
		}
		admitted = append(admitted, r)
	}
	return admitted
}

// noteLevel logs a change of what the free space allows.
func (w *writer) noteLevel(free int64, level spaceLevel) {
	if level == w.level {
		return
	}
	w.level = level
	attrs := []any{slog.String("dir", w.space.dir), slog.Int64("freeBytes", free),
		slog.Int64("newJobsNeedBytes", w.space.newJobs), slog.Int64("writesNeedBytes", w.space.floor)}
	switch level {
	case spaceAmple:
		w.log.Info("badger store: disk space recovered; accepting every write", attrs...)
	case spaceLow:
		w.log.Error("badger store: disk nearly full; refusing new jobs, stored jobs still record their outcomes", attrs...)
	case spaceNoWrite:
		w.log.Error("badger store: disk full; refusing every write", attrs...)
	}
}

// apply plans reqs, in order, and commits the accepted ones in one
// transaction. A request that breaks a rule is answered at once and left
// out, so it fails alone. If the transaction would outgrow Badger's limit
// (or an entry is refused), apply splits the accepted requests in halves
// and applies each, re-planning the second against the first's result;
// only a request that cannot be written even alone fails, alone.
func (w *writer) apply(reqs []*request) {
	reqs = w.admit(reqs)
	if len(reqs) == 0 {
		return
	}
	read := w.db.NewTransaction(false)
	defer read.Discard()
	p := newPlan(read, len(reqs))
	p.known = w.recall
	p.confirmMiss = w.confirmMiss
	p.counts = w.counts
	p.maxBatch = w.maxBatch
	p.deltas = w.deltas
	p.countsAfter = w.countsAfter
	p.maxDeletes = w.maxDeletes
	p.floors = &w.floors
	p.held = &w.held
	accepted := make([]*request, 0, len(reqs))
	for _, r := range reqs {
		if err := p.add(r); err != nil {
			r.done <- err
			continue
		}
		accepted = append(accepted, r)
	}
	if len(accepted) == 0 {
		return
	}

	txn := w.db.NewTransaction(true)
	defer txn.Discard()
	if err := p.write(txn); err != nil {
		if len(accepted) > 1 {
			w.log.Debug("badger store: splitting a group commit", "requests", len(accepted), "reason", err)
			txn.Discard()
			read.Discard()
			half := len(accepted) / 2
			w.apply(accepted[:half])
			w.apply(accepted[half:])
			return
		}
		accepted[0].done <- interpretError(accepted[0].label(), err)
		return
	}
	err := txn.Commit()
	if err == nil {
		w.batches.Add(1)
		w.snapshots.Add(int64(p.written))
		w.remember(p)
		w.moveFloors(p)
		for _, c := range p.countsAfter {
			if c.n == 0 {
				delete(w.counts, c.key)
				continue
			}
			w.counts[c.key] = c.n
		}
		w.countsAfter = p.countsAfter
		if w.syncer != nil && slices.ContainsFunc(accepted, (*request).mustSync) {
			w.handToSyncer(accepted)
			return
		}
	}
	w.record(err, len(accepted))
	answerAll(accepted, err)
}

// handToSyncer answers the requests of a commit that holds some that must
// be on stable storage: the others at once, those once the syncer has
// fsynced. A request that can act on its commit before that (see
// domain.InsertTrace) is told now.
func (w *writer) handToSyncer(accepted []*request) {
	w.record(nil, len(accepted))
	waiting := make([]*request, 0, len(accepted))
	for _, r := range accepted {
		if !r.mustSync() {
			r.done <- nil
			continue
		}
		if r.committed != nil {
			r.committed()
		}
		waiting = append(waiting, r)
	}
	w.syncer.in <- waiting
}

// answerAll gives every request of reqs the outcome err.
func answerAll(reqs []*request, err error) {
	for _, r := range reqs {
		if err == nil {
			// No label: building one costs two allocations per caller.
			r.done <- nil
			continue
		}
		r.done <- interpretError(r.label(), err)
	}
}

// remember updates unfinished with what a committed plan wrote.
func (w *writer) remember(p *plan) {
	if w.unfinished == nil {
		return
	}
	for i := range p.jobs {
		pj := &p.jobs[i]
		if !pj.dirty {
			continue
		}
		if e := pj.snap; pj.exists && e != nil && rememberable(e.index) {
			w.unfinished[pj.id] = rememberedEntry{createdAt: e.index.createdAt, kind: w.intern(kind{e.index.typ, e.index.queue}), status: e.index.status}
			continue
		}
		delete(w.unfinished, pj.id)
	}
}

// finished reports whether a status code is a terminal status.
func finished(code byte) bool {
	s, ok := statusOf(code)
	return !ok || s.IsTerminal()
}

// rememberable reports whether the writer keeps e in memory: see
// writer.unfinished.
func rememberable(e indexEntry) bool {
	return !finished(e.status) && e.status != codeScheduled && e.unique == ""
}

// record keeps the outcome of the latest commit for Ping and logs a
// failure once per batch, not once per caller.
func (w *writer) record(err error, requests int) {
	if err == nil {
		if w.failure.Load() != nil {
			w.failure.Store(nil)
		}
		return
	}
	// A copy: taking err's own address would move it to the heap on
	// every call, the successful ones too.
	failed := err
	w.failure.Store(&failed)
	w.log.Error("badger store: group commit failed", "requests", requests, "error", err)
}

// lastFailure returns the error of the latest commit if it failed.
func (w *writer) lastFailure() error {
	if p := w.failure.Load(); p != nil {
		return *p
	}
	if w.syncer != nil {
		return w.syncer.lastFailure()
	}
	return nil
}

// plan is what one batch does to the database: for each job it touches,
// the index entry stored before the batch and the snapshot it ends with.
// Several snapshots of one job coalesce here, the last winning, so the
// transaction writes each job once and moves its index keys once. The
// other keys a batch touches (unique keys, paused queues, request
// records) coalesce the same way, and the queue counts are summed.
type plan struct {
	read *badger.Txn
	// known returns an index entry the writer knows to be stored, which
	// spares a read; nil in a plan built without a writer.
	known func(uuid.UUID) (indexEntry, bool)
	// confirmMiss vets a job not found where it must exist; nil: trusted.
	confirmMiss func(what string) error
	jobs        []planned
	index       map[uuid.UUID]int // position in jobs
	written     int               // snapshots the accepted requests carried

	// counts are the stored queue counts (nil: none); countsAfter, set by
	// write, what those it changes become. deltas is write's scratch,
	// lent by the writer so that a batch allocates no map.
	counts      map[countKey]int64
	countsAfter []countValue
	deltas      map[countKey]int64
	// maxBatch bounds what one promotion or one sweep of expired request
	// records writes, so that it fits in a transaction; maxDeletes (0: no
	// bound) bounds DeleteFinished further.
	maxBatch   int
	maxDeletes int

	uniques map[string]*uniqueSlot
	paused  map[string]bool // queue → paused, as the batch leaves it
	// settings maps a queue to its encoded flow settings as the batch
	// leaves them; nil clears them.
	settings  map[string][]byte
	records   map[string]*recordSlot
	schedules map[string]*scheduleSlot

	// floors are the writer's (nil: none); newFloors what DeleteFinished
	// found they may become, and written the lowest finished key the
	// batch writes (finishedWritten), per status code.
	floors          *[statusCodes]finishedPos
	newFloors       [statusCodes]finishedPos
	finishedWritten [statusCodes]finishedPos
	// held are the writer's remembered held jobs (nil: none); heldAdd and
	// heldDrop what DeleteFinished adds to and takes from them.
	held     *[statusCodes]map[uuid.UUID]heldJob
	heldAdd  [statusCodes][]heldJob
	heldDrop [statusCodes][]uuid.UUID
}

// planned is one job in a plan.
type planned struct {
	id     uuid.UUID
	stored bool       // it was stored before the batch
	old    indexEntry // its index entry then, if stored
	exists bool       // it exists after the requests accepted so far
	snap   *snapshot  // its latest snapshot, if exists
	dirty  bool       // an accepted request touched it
}

// current returns the job's index entry as the accepted requests leave it.
func (pj *planned) current() indexEntry {
	if pj.dirty {
		return pj.snap.index
	}
	return pj.old
}

// countValue is a queue count as a batch leaves it.
type countValue struct {
	key countKey
	n   int64
}

// uniqueSlot is the entry of one unique key in a plan.
type uniqueSlot struct {
	stored       bool      // the key had an entry before the batch
	storedHolder uuid.UUID // and this job took it
	held         bool      // the key has an entry after the requests so far
	holder       uuid.UUID
}

// recordSlot is one request record in a plan.
type recordSlot struct {
	stored       bool  // it was stored before the batch
	storedExpiry int64 // its ExpiresAt then, for its expiry key
	exists       bool  // it exists after the requests so far
	rec          domain.RequestRecord
	dirty        bool
}

// recall asks the writer's memory, when the plan has one.
func (p *plan) recall(id uuid.UUID) (indexEntry, bool) {
	if p.known == nil {
		return indexEntry{}, false
	}
	return p.known(id)
}

func newPlan(read *badger.Txn, requests int) *plan {
	return &plan{read: read, index: make(map[uuid.UUID]int, requests), maxBatch: MaxBatchDefault}
}

// add checks r against the database as the accepted requests before it
// left it, and applies it to the plan if it passes. All or none: a
// request with one bad job changes nothing. It sets r's results.
func (p *plan) add(r *request) (err error) {
	defer recoverDamage(&err)
	switch r.op {
	case opDelete:
		return p.delete(r)
	case opCreate, opInsert:
		return p.insert(r)
	case opUpdate:
		return p.update(r)
	case opPromote:
		return p.promote(r)
	case opSetPaused:
		if p.paused == nil {
			p.paused = map[string]bool{}
		}
		p.paused[r.extra.queue] = r.extra.paused
		return nil
	case opSetSettings:
		if p.settings == nil {
			p.settings = map[string][]byte{}
		}
		p.settings[r.extra.queue] = r.extra.settings
		return nil
	case opBeginRequest, opFinishRequest, opAbandonRequest:
		return p.request(r)
	case opDeleteExpiredRequests:
		return p.deleteExpired(r)
	case opDeleteFinished:
		return p.deleteFinished(r)
	case opPutSchedule, opDeleteSchedule, opRecordScheduleRun:
		return p.scheduleOp(r)
	}
	return fmt.Errorf("%s: unknown operation", r.label())
}

func (p *plan) delete(r *request) error {
	i, err := p.lookup(r.id)
	if err != nil {
		return interpretError(r.label(), err)
	}
	pj := &p.jobs[i]
	if !pj.exists {
		return p.missing(r.label(), *pj)
	}
	if key := pj.current().unique; key != "" {
		if err := p.release(key, pj.id); err != nil {
			return interpretError(r.label(), err)
		}
	}
	pj.exists, pj.snap, pj.dirty = false, nil, true
	p.written++
	return nil
}

func (p *plan) update(r *request) error {
	for _, s := range r.snaps {
		i, err := p.lookup(s.id)
		if err != nil {
			return interpretError(fmt.Sprintf("update job %s", s.id), err)
		}
		if !p.jobs[i].exists {
			return p.missing(fmt.Sprintf("update job %s", s.id), p.jobs[i])
		}
	}
	for k := range r.snaps {
		s := &r.snaps[k]
		pj := &p.jobs[p.index[s.id]]
		// An update that changes a job's unique key (nothing in Troupe
		// does) moves its entry: uniqueness is judged at submission, so
		// the new key is taken whoever held it.
		if old := pj.current().unique; old != s.index.unique {
			if old != "" {
				if err := p.release(old, s.id); err != nil {
					return interpretError(r.label(), err)
				}
			}
			if s.index.unique != "" {
				slot, err := p.unique(s.index.unique)
				if err != nil {
					return interpretError(r.label(), err)
				}
				slot.held, slot.holder = true, s.id
			}
		}
		pj.exists, pj.snap, pj.dirty = true, s, true
	}
	p.written += len(r.snaps)
	return nil
}

// insert stores new jobs: for opInsert those whose unique key is free,
// reporting the holders of the others; for opCreate all, or none when a
// key is held.
func (p *plan) insert(r *request) error {
	for _, s := range r.snaps {
		i, err := p.lookup(s.id)
		if err != nil {
			return interpretError(fmt.Sprintf("%s job %s", r.op, s.id), err)
		}
		if p.jobs[i].exists {
			return fmt.Errorf("%s job %s: %w", r.op, s.id, domain.ErrAlreadyExists)
		}
	}
	// Most jobs have no unique key: then nothing is allocated.
	var existing []*domain.Job
	var claimed map[string]int
	refused := -1
	for k := range r.snaps {
		key := r.snaps[k].index.unique
		if key == "" {
			continue
		}
		if existing == nil {
			existing, claimed = make([]*domain.Job, len(r.snaps)), map[string]int{}
		}
		if first, ok := claimed[key]; ok {
			job, err := decode(r.snaps[first].value)
			if err != nil {
				return interpretError(r.label(), err)
			}
			existing[k] = job
		} else {
			holder, err := p.holder(key, r.now)
			if err != nil {
				return interpretError(r.label(), err)
			}
			if holder == nil {
				claimed[key] = k
				continue
			}
			existing[k] = holder
		}
		if refused < 0 {
			refused = k
		}
	}
	if r.op == opCreate && refused >= 0 {
		s := r.snaps[refused]
		return fmt.Errorf("create job %s: %w: job %s holds unique key %q", s.id, domain.ErrDuplicate, existing[refused].ID, s.index.unique)
	}
	for k := range r.snaps {
		if existing != nil && existing[k] != nil {
			continue
		}
		s := &r.snaps[k]
		pj := &p.jobs[p.index[s.id]]
		pj.exists, pj.snap, pj.dirty = true, s, true
		if s.index.unique != "" {
			slot, _ := p.unique(s.index.unique) // read by holder above
			slot.held, slot.holder = true, s.id
		}
		p.written++
	}
	r.existing = existing
	return nil
}

// unique returns the slot of key, reading its entry the first time the
// batch meets it.
func (p *plan) unique(key string) (*uniqueSlot, error) {
	if slot, ok := p.uniques[key]; ok {
		return slot, nil
	}
	slot := &uniqueSlot{}
	item, err := p.read.Get(uniqueKey(key))
	switch {
	case errors.Is(err, badger.ErrKeyNotFound):
	case err != nil:
		return nil, err
	default:
		err := item.Value(func(v []byte) error {
			if len(v) != 16 {
				return fmt.Errorf("unique key %q holds %d bytes, not a job ID: %w", key, len(v), errCorrupt)
			}
			slot.storedHolder = uuid.UUID(v)
			return nil
		})
		if err != nil {
			return nil, err
		}
		slot.stored, slot.held, slot.holder = true, true, slot.storedHolder
	}
	if p.uniques == nil {
		p.uniques = map[string]*uniqueSlot{}
	}
	p.uniques[key] = slot
	return slot, nil
}

// release drops key's entry if id took it last.
func (p *plan) release(key string, id uuid.UUID) error {
	slot, err := p.unique(key)
	if err != nil {
		return err
	}
	if slot.held && slot.holder == id {
		slot.held = false
	}
	return nil
}

// holder returns the job that holds key at now, as the accepted requests
// leave it, or nil when the key is free: never taken, or taken by a job
// since deleted, given another key, or finished more than its UniqueFor
// before now.
func (p *plan) holder(key string, now time.Time) (*domain.Job, error) {
	slot, err := p.unique(key)
	if err != nil || !slot.held {
		return nil, err
	}
	if i, ok := p.index[slot.holder]; ok {
		pj := &p.jobs[i]
		if !pj.exists {
			return nil, nil
		}
		if pj.dirty {
			if pj.snap.index.unique != key || !pj.snap.hold.holds(now) {
				return nil, nil
			}
			return decode(pj.snap.value)
		}
	}
	job, err := getJob(p.read, slot.holder)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if job.UniqueKey != key || !job.HoldsUniqueKey(now) {
		return nil, nil
	}
	return job, nil
}

// dueJob is a scheduled job a promotion may take.
type dueJob struct {
	runAt int64
	id    uuid.UUID
}

// promote makes pending the scheduled jobs due at r.now, earliest first,
// up to r.limit (and the batch size). It walks the scheduled index of the
// database, skipping the jobs the batch changed, and adds those the batch
// left scheduled and due.
func (p *plan) promote(r *request) error {
	r.snaps, r.extra.promoted = nil, []*domain.Job{}
	limit := min(r.extra.limit, p.maxBatch)
	if limit <= 0 {
		return nil
	}
	now := micros(r.now)
	var due []dueJob
	opts := badger.DefaultIteratorOptions
	opts.PrefetchValues = false
	opts.Prefix = []byte{prefixScheduled}
	it := p.read.NewIterator(opts)
	for it.Rewind(); it.Valid() && len(due) < limit; it.Next() {
		key := it.Item().Key()
		if len(key) != scheduledKeyLen {
			it.Close()
			return fmt.Errorf("%s: scheduled index key %x: %w", r.label(), key, errCorrupt)
		}
		runAt := timeOfKey(key[1:])
		if runAt > now {
			break
		}
		id := uuid.UUID(key[9:])
		if i, ok := p.index[id]; ok && p.jobs[i].dirty {
			continue
		}
		due = append(due, dueJob{runAt: runAt, id: id})
	}
	it.Close()
	for i := range p.jobs {
		pj := &p.jobs[i]
		if pj.dirty && pj.exists && pj.snap.index.status == codeScheduled && pj.snap.index.runAt <= now {
			due = append(due, dueJob{runAt: pj.snap.index.runAt, id: pj.id})
		}
	}
	slices.SortFunc(due, func(a, b dueJob) int {
		if c := cmp.Compare(a.runAt, b.runAt); c != 0 {
			return c
		}
		return bytes.Compare(a.id[:], b.id[:])
	})
	due = due[:min(len(due), limit)]

	r.snaps = make([]snapshot, 0, len(due))
	for _, d := range due {
		i, err := p.lookup(d.id)
		if err != nil {
			return interpretError(r.label(), err)
		}
		pj := &p.jobs[i]
		var job *domain.Job
		if pj.dirty {
			job, err = decode(pj.snap.value)
		} else {
			job, err = indexedJob(p.read, d.id)
		}
		if err != nil {
			return interpretError(r.label(), err)
		}
		if err := job.Promote(r.now); err != nil {
			return fmt.Errorf("%s: %w", r.label(), err)
		}
		snap, err := newSnapshot(job)
		if err != nil {
			return fmt.Errorf("%s: %w", r.label(), err)
		}
		r.snaps = append(r.snaps, snap)
		r.extra.promoted = append(r.extra.promoted, job)
	}
	for k := range r.snaps {
		pj := &p.jobs[p.index[r.snaps[k].id]]
		pj.exists, pj.snap, pj.dirty = true, &r.snaps[k], true
	}
	p.written += len(r.snaps)
	return nil
}

// record returns the slot of a request record, reading it the first time
// the batch meets it.
func (p *plan) record(scope, key string) (*recordSlot, error) {
	id := string(appendRequestID(nil, scope, key))
	if slot, ok := p.records[id]; ok {
		return slot, nil
	}
	slot := &recordSlot{}
	item, err := p.read.Get(requestKey(scope, key))
	switch {
	case errors.Is(err, badger.ErrKeyNotFound):
	case err != nil:
		return nil, err
	default:
		err := item.Value(func(v []byte) error {
			rec, err := decodeRecord(scope, key, v)
			slot.rec = rec
			return err
		})
		if err != nil {
			return nil, err
		}
		slot.stored, slot.exists, slot.storedExpiry = true, true, micros(slot.rec.ExpiresAt)
	}
	if p.records == nil {
		p.records = map[string]*recordSlot{}
	}
	p.records[id] = slot
	return slot, nil
}

// request applies one of the request log's calls but the sweep.
func (p *plan) request(r *request) error {
	x := r.extra
	slot, err := p.record(x.record.Scope, x.record.Key)
	if err != nil {
		return interpretError(r.label(), err)
	}
	switch r.op {
	case opBeginRequest:
		x.found = nil
		if slot.exists && slot.rec.ExpiresAt.After(r.now) {
			found := slot.rec
			found.Body = slices.Clone(found.Body)
			x.found = &found
			return nil
		}
		rec := x.record
		rec.Done, rec.Body = false, nil
		slot.exists, slot.rec, slot.dirty = true, rec, true
	case opFinishRequest:
		rec := x.record
		rec.Done = true
		slot.exists, slot.rec, slot.dirty = true, rec, true
	case opAbandonRequest:
		if slot.exists && !slot.rec.Done {
			slot.exists, slot.dirty = false, true
		}
	}
	return nil
}

// deleteExpired forgets up to r.limit (and the batch size) request
// records expired at r.now, walking the expiry index from the oldest.
func (p *plan) deleteExpired(r *request) error {
	r.extra.deleted = 0
	limit := min(r.extra.limit, p.maxBatch)
	now := micros(r.now)
	type expired struct{ scope, key string }
	var found []expired
	opts := badger.DefaultIteratorOptions
	opts.PrefetchValues = false
	opts.Prefix = []byte{prefixExpiry}
	it := p.read.NewIterator(opts)
	for it.Rewind(); it.Valid() && len(found) < limit; it.Next() {
		key := it.Item().Key()
		if len(key) < 1+8 {
			it.Close()
			return fmt.Errorf("%s: expiry key %x: %w", r.label(), key, errCorrupt)
		}
		if timeOfKey(key[1:]) > now {
			break
		}
		scope, k, ok := splitRequestID(key[9:])
		if !ok {
			it.Close()
			return fmt.Errorf("%s: expiry key %x: %w", r.label(), key, errCorrupt)
		}
		found = append(found, expired{scope, k})
	}
	it.Close()
	for _, e := range found {
		slot, err := p.record(e.scope, e.key)
		if err != nil {
			return interpretError(r.label(), err)
		}
		// The batch may have renewed it: the record as it stands decides.
		if slot.exists && !slot.rec.ExpiresAt.After(r.now) {
			slot.exists, slot.dirty = false, true
			r.extra.deleted++
		}
	}
	return nil
}

// missing answers a request for a job that does not exist: not found,
// unless it was never found in the database and the tables are damaged.
func (p *plan) missing(what string, pj planned) error {
	if !pj.stored && p.confirmMiss != nil {
		if err := p.confirmMiss(what); err != nil {
			return err
		}
	}
	return interpretError(what, badger.ErrKeyNotFound)
}

// lookup returns the position of id in the plan, reading the job's stored
// index entry the first time the batch meets it.
func (p *plan) lookup(id uuid.UUID) (_ int, err error) {
	defer recoverDamage(&err)
	if i, ok := p.index[id]; ok {
		return i, nil
	}
	pj := planned{id: id}
	if e, ok := p.recall(id); ok {
		pj.old, pj.stored, pj.exists = e, true, true
		p.jobs = append(p.jobs, pj)
		p.index[id] = len(p.jobs) - 1
		return len(p.jobs) - 1, nil
	}
	item, err := p.read.Get(jobKey(id))
	switch {
	case errors.Is(err, badger.ErrKeyNotFound):
	case err != nil:
		return 0, err
	default:
		err = item.Value(func(v []byte) error {
			_, e, err := decodeIndex(v)
			pj.old = e
			return err
		})
		if err != nil {
			return 0, fmt.Errorf("read stored snapshot: %w", err)
		}
		pj.stored, pj.exists = true, true
	}
	p.jobs = append(p.jobs, pj)
	p.index[id] = len(p.jobs) - 1
	return len(p.jobs) - 1, nil
}

// write puts the plan's final state into txn: each touched job's snapshot
// once, only the index keys that change, the queue counts that change,
// and the other keys the batch touched.
func (p *plan) write(txn *badger.Txn) error {
	keys := keySlab{b: make([]byte, 0, len(p.jobs)*keySlabPerJob)}
	if p.deltas == nil {
		p.deltas = map[countKey]int64{}
	}
	deltas := p.deltas
	clear(deltas)
	count := func(e indexEntry, n int64) {
		if !finished(e.status) {
			deltas[countKey{status: e.status, queue: e.queue}] += n
		}
	}
	for i := range p.jobs {
		pj := &p.jobs[i]
		if !pj.dirty || (!pj.stored && !pj.exists) {
			// Untouched, or created and deleted within the batch.
			continue
		}
		if pj.stored {
			count(pj.old, -1)
		}
		key := keys.job(pj.id)
		if !pj.exists {
			err := errors.Join(
				txn.Delete(key),
				txn.Delete(keys.status(pj.id, pj.old)),
				txn.Delete(keys.typ(pj.id, pj.old)),
			)
			if err == nil && pj.old.status == codeScheduled {
				err = txn.Delete(keys.scheduled(pj.id, pj.old.runAt))
			}
			if err == nil && terminalCode(pj.old.status) {
				err = txn.Delete(keys.finished(pj.id, pj.old))
			}
			if err != nil {
				return fmt.Errorf("delete job %s: %w", pj.id, err)
			}
			continue
		}
		count(pj.snap.index, 1)
		if err := txn.Set(key, pj.snap.value); err != nil {
			return fmt.Errorf("write job %s: %w", pj.id, err)
		}
		if err := reindex(txn, &keys, pj); err != nil {
			return fmt.Errorf("index job %s: %w", pj.id, err)
		}
		if e := &pj.snap.index; terminalCode(e.status) {
			p.finishedWritten[e.status].lower(e.finishedAt, pj.id)
		}
	}
	if err := p.writeCounts(txn, &keys, deltas); err != nil {
		return err
	}
	for key, slot := range p.uniques {
		var err error
		switch {
		case slot.held && (!slot.stored || slot.storedHolder != slot.holder):
			err = txn.Set(uniqueKey(key), slices.Clone(slot.holder[:]))
		case !slot.held && slot.stored:
			err = txn.Delete(uniqueKey(key))
		}
		if err != nil {
			return fmt.Errorf("unique key %q: %w", key, err)
		}
	}
	for queue, paused := range p.paused {
		var err error
		if paused {
			err = txn.Set(pausedKey(queue), nil)
		} else {
			err = txn.Delete(pausedKey(queue))
		}
		if err != nil {
			return fmt.Errorf("pause queue %q: %w", queue, err)
		}
	}
	for queue, value := range p.settings {
		var err error
		if value != nil {
			err = txn.Set(settingsKey(queue), value)
		} else {
			err = txn.Delete(settingsKey(queue))
		}
		if err != nil {
			return fmt.Errorf("set settings of queue %q: %w", queue, err)
		}
	}
	for _, slot := range p.records {
		if err := writeRecord(txn, slot); err != nil {
			return fmt.Errorf("request record %q of %q: %w", slot.rec.Key, slot.rec.Scope, err)
		}
	}
	for name, slot := range p.schedules {
		if err := writeSchedule(txn, name, slot); err != nil {
			return fmt.Errorf("schedule %q: %w", name, err)
		}
	}
	return nil
}

// writeCounts rewrites the queue counts that deltas change, and records
// what they become in countsAfter.
func (p *plan) writeCounts(txn *badger.Txn, keys *keySlab, deltas map[countKey]int64) error {
	p.countsAfter = p.countsAfter[:0]
	for k, d := range deltas {
		if d == 0 {
			continue
		}
		n := max(p.counts[k]+d, 0)
		p.countsAfter = append(p.countsAfter, countValue{key: k, n: n})
		var err error
		if n == 0 {
			err = txn.Delete(keys.count(k))
		} else {
			err = txn.Set(keys.count(k), keys.uvarint(uint64(n)))
		}
		if err != nil {
			return fmt.Errorf("count of queue %q: %w", k.queue, err)
		}
	}
	return nil
}

// reindex moves pj's index keys from its stored entry to its new one,
// leaving alone those that do not change: an update that keeps the status
// writes nothing but the snapshot, and only a new job writes a type key.
func reindex(txn *badger.Txn, keys *keySlab, pj *planned) error {
	old, cur := pj.old, pj.snap.index
	sameOrder := pj.stored && old.createdAt == cur.createdAt
	if !sameOrder || old.status != cur.status || old.typ != cur.typ {
		if pj.stored && (!sameOrder || old.status != cur.status) {
			if err := txn.Delete(keys.status(pj.id, old)); err != nil {
				return err
			}
		}
		if err := txn.Set(keys.status(pj.id, cur), keys.text(cur.typ)); err != nil {
			return err
		}
	}
	if !sameOrder || old.typ != cur.typ {
		if pj.stored {
			if err := txn.Delete(keys.typ(pj.id, old)); err != nil {
				return err
			}
		}
		if err := txn.Set(keys.typ(pj.id, cur), nil); err != nil {
			return err
		}
	}
	if err := reindexFinished(txn, keys, pj); err != nil {
		return err
	}
	wasScheduled := pj.stored && old.status == codeScheduled
	isScheduled := cur.status == codeScheduled
	if wasScheduled && isScheduled && old.runAt == cur.runAt {
		return nil
	}
	if wasScheduled {
		if err := txn.Delete(keys.scheduled(pj.id, old.runAt)); err != nil {
			return err
		}
	}
	if isScheduled {
		if err := txn.Set(keys.scheduled(pj.id, cur.runAt), nil); err != nil {
			return err
		}
	}
	return nil
}

// reindexFinished moves pj's finished key: a job gets one when it reaches
// a terminal status and loses it if it leaves it (or is deleted); a
// finished job's key moves if its FinishedAt or its hold changes.
func reindexFinished(txn *badger.Txn, keys *keySlab, pj *planned) error {
	old, cur := pj.old, pj.snap.index
	was := pj.stored && terminalCode(old.status)
	is := terminalCode(cur.status)
	sameKey := was && is && old.status == cur.status && old.finishedAt == cur.finishedAt
	if sameKey && (old.unique == "") == (cur.unique == "") && (cur.unique == "" || old.holdUntil == cur.holdUntil) {
		return nil
	}
	if was && !sameKey {
		if err := txn.Delete(keys.finished(pj.id, old)); err != nil {
			return err
		}
	}
	if is {
		return txn.Set(keys.finished(pj.id, cur), keys.finishedValue(cur))
	}
	return nil
}

// terminalCode reports whether a status code is that of a known terminal
// status: the statuses the finished index holds.
func terminalCode(code byte) bool {
	s, ok := statusOf(code)
	return ok && s.IsTerminal()
}

// keySlabPerJob is room for a job key, two status keys and two type keys
// of a short type: most batches then fill one slab without growing it.
const keySlabPerJob = 17 + 2*26 + 2*(2+32+orderLen)

// keySlab cuts the keys of one batch from one buffer: Badger holds every
// key until the commit, so one allocation per batch replaces one per key.
// A piece is never written again once cut, so growing the buffer (which
// copies) leaves earlier pieces valid.
type keySlab struct{ b []byte }

func (s *keySlab) cut(start int) []byte { return s.b[start:len(s.b):len(s.b)] }

func (s *keySlab) job(id uuid.UUID) []byte {
	start := len(s.b)
	s.b = appendJobKey(s.b, id)
	return s.cut(start)
}

func (s *keySlab) status(id uuid.UUID, e indexEntry) []byte {
	start := len(s.b)
	s.b = appendStatusKey(s.b, id, e)
	return s.cut(start)
}

func (s *keySlab) typ(id uuid.UUID, e indexEntry) []byte {
	start := len(s.b)
	s.b = appendTypeKey(s.b, id, e)
	return s.cut(start)
}

func (s *keySlab) scheduled(id uuid.UUID, runAt int64) []byte {
	start := len(s.b)
	s.b = appendScheduledKey(s.b, id, runAt)
	return s.cut(start)
}

func (s *keySlab) finished(id uuid.UUID, e indexEntry) []byte {
	start := len(s.b)
	s.b = appendFinishedKey(s.b, id, e)
	return s.cut(start)
}

// finishedValue cuts a finished key's value; nil when it has none.
func (s *keySlab) finishedValue(e indexEntry) []byte {
	if e.unique == "" {
		return nil
	}
	start := len(s.b)
	s.b = finishedValue(s.b, e)
	return s.cut(start)
}

func (s *keySlab) count(k countKey) []byte {
	start := len(s.b)
	s.b = append(s.b, prefixCount, k.status)
	s.b = append(s.b, k.queue...)
	return s.cut(start)
}

func (s *keySlab) uvarint(v uint64) []byte {
	start := len(s.b)
	s.b = binary.AppendUvarint(s.b, v)
	return s.cut(start)
}

func (s *keySlab) text(v string) []byte {
	start := len(s.b)
	s.b = append(s.b, v...)
	return s.cut(start)
}
