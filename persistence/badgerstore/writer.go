package badgerstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"

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
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// snapshot is one encoded job, ready to write.
type snapshot struct {
	id    uuid.UUID
	index indexEntry
	value []byte
}

// request is one call of Create, Update or Delete waiting for the writer.
// The writer answers on done exactly once; done has room for the answer,
// so the writer never waits for a caller that gave up.
type request struct {
	ctx   context.Context
	op    op
	snaps []snapshot // opCreate, opUpdate
	id    uuid.UUID  // opDelete
	done  chan error
}

// newWriteRequest encodes jobs into a create or update request. A
// duplicate ID inside one Create is refused here: the writer checks IDs
// against the database and the batch, not within one request.
func newWriteRequest(ctx context.Context, op op, jobs []*domain.Job) (*request, error) {
	req := &request{ctx: ctx, op: op, snaps: make([]snapshot, len(jobs)), done: make(chan error, 1)}
	for i, j := range jobs {
		value, err := encode(nil, j)
		if err != nil {
			return nil, fmt.Errorf("%s job %s: %w", op, j.ID, err)
		}
		req.snaps[i] = snapshot{id: j.ID, index: indexOf(j), value: value}
	}
	if op == opCreate && len(jobs) > 1 {
		seen := make(map[uuid.UUID]struct{}, len(jobs))
		for _, j := range jobs {
			if _, dup := seen[j.ID]; dup {
				return nil, fmt.Errorf("create job %s: %w (twice in one call)", j.ID, domain.ErrAlreadyExists)
			}
			seen[j.ID] = struct{}{}
		}
	}
	return req, nil
}

// size is how many snapshots the request counts for in a batch.
func (r *request) size() int {
	if r.op == opDelete {
		return 1
	}
	return len(r.snaps)
}

// label names the request in errors: "update job <id>", or "create 3 jobs
// (first <id>)". Built only when an error needs it.
func (r *request) label() string {
	switch {
	case r.op == opDelete:
		return fmt.Sprintf("delete job %s", r.id)
	case len(r.snaps) == 1:
		return fmt.Sprintf("%s job %s", r.op, r.snaps[0].id)
	case len(r.snaps) == 0:
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
	// backlog.
	unfinished map[uuid.UUID]rememberedEntry
	// typeNames and typeIDs intern job types, so that unfinished holds no
	// pointers and costs the garbage collector nothing to scan.
	typeNames []string
	typeIDs   map[string]uint32

	// confirmMiss, if set, vets a job that an update or delete did not
	// find: a key in a damaged block reads as missing (see corrupt.go).
	confirmMiss func(what string) error
}

// rememberedEntry is an indexEntry with its type interned.
type rememberedEntry struct {
	createdAt int64
	typ       uint32
	status    byte
}

// recall returns the index entry the writer remembers for id.
func (w *writer) recall(id uuid.UUID) (indexEntry, bool) {
	r, ok := w.unfinished[id]
	if !ok {
		return indexEntry{}, false
	}
	return indexEntry{status: r.status, createdAt: r.createdAt, typ: w.typeNames[r.typ]}, true
}

func (w *writer) intern(typ string) uint32 {
	id, ok := w.typeIDs[typ]
	if !ok {
		id = uint32(len(w.typeNames))
		w.typeNames = append(w.typeNames, typ)
		w.typeIDs[typ] = id
	}
	return id
}

func newWriter(db *badger.DB, log *slog.Logger, maxBatch int) *writer {
	return &writer{
		db:       db,
		log:      log,
		maxBatch: maxBatch,
		// Room for one full batch to gather while the previous one commits;
		// beyond that, callers wait to queue: backpressure, not memory.
		queue:      make(chan *request, maxBatch),
		stopped:    make(chan struct{}),
		unfinished: make(map[uuid.UUID]rememberedEntry),
		typeIDs:    make(map[string]uint32),
	}
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
		if err := w.space.refusal(r.op, free, level); err != nil {
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
	w.record(err, len(accepted))
	if err == nil {
		w.batches.Add(1)
		w.snapshots.Add(int64(p.written))
		w.remember(p)
	}
	for _, r := range accepted {
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
		if e := pj.snap; pj.exists && e != nil && !finished(e.index.status) {
			w.unfinished[pj.id] = rememberedEntry{createdAt: e.index.createdAt, typ: w.intern(e.index.typ), status: e.index.status}
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

// record keeps the outcome of the latest commit for Ping and logs a
// failure once per batch, not once per caller.
func (w *writer) record(err error, requests int) {
	if err == nil {
		if w.failure.Load() != nil {
			w.failure.Store(nil)
		}
		return
	}
	w.failure.Store(&err)
	w.log.Error("badger store: group commit failed", "requests", requests, "error", err)
}

// lastFailure returns the error of the latest commit if it failed.
func (w *writer) lastFailure() error {
	if p := w.failure.Load(); p != nil {
		return *p
	}
	return nil
}

// plan is what one batch does to the database: for each job it touches,
// the index entry stored before the batch and the snapshot it ends with.
// Several snapshots of one job coalesce here, the last winning, so the
// transaction writes each job once and moves its index keys once.
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

// recall asks the writer's memory, when the plan has one.
func (p *plan) recall(id uuid.UUID) (indexEntry, bool) {
	if p.known == nil {
		return indexEntry{}, false
	}
	return p.known(id)
}

func newPlan(read *badger.Txn, requests int) *plan {
	return &plan{read: read, index: make(map[uuid.UUID]int, requests)}
}

// add checks r against the database as the accepted requests before it
// left it, and applies it to the plan if it passes. All or none: a
// request with one bad job changes nothing.
func (p *plan) add(r *request) error {
	if r.op == opDelete {
		i, err := p.lookup(r.id)
		if err != nil {
			return interpretError(r.label(), err)
		}
		if !p.jobs[i].exists {
			return p.missing(r.label(), p.jobs[i])
		}
		p.jobs[i].exists, p.jobs[i].snap, p.jobs[i].dirty = false, nil, true
		p.written++
		return nil
	}
	for _, s := range r.snaps {
		i, err := p.lookup(s.id)
		if err != nil {
			return interpretError(fmt.Sprintf("%s job %s", r.op, s.id), err)
		}
		switch {
		case r.op == opCreate && p.jobs[i].exists:
			return fmt.Errorf("create job %s: %w", s.id, domain.ErrAlreadyExists)
		case r.op == opUpdate && !p.jobs[i].exists:
			return p.missing(fmt.Sprintf("update job %s", s.id), p.jobs[i])
		}
	}
	// newWriteRequest refused IDs repeated inside a Create, so checking
	// every job before applying any is enough for all-or-none.
	for k := range r.snaps {
		pj := &p.jobs[p.index[r.snaps[k].id]]
		pj.exists, pj.snap, pj.dirty = true, &r.snaps[k], true
	}
	p.written += len(r.snaps)
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
// once, and only the index keys that change.
func (p *plan) write(txn *badger.Txn) error {
	keys := keySlab{b: make([]byte, 0, len(p.jobs)*keySlabPerJob)}
	for i := range p.jobs {
		pj := &p.jobs[i]
		if !pj.dirty || (!pj.stored && !pj.exists) {
			// Untouched, or created and deleted within the batch.
			continue
		}
		key := keys.job(pj.id)
		if !pj.exists {
			err := errors.Join(
				txn.Delete(key),
				txn.Delete(keys.status(pj.id, pj.old)),
				txn.Delete(keys.typ(pj.id, pj.old)),
			)
			if err != nil {
				return fmt.Errorf("delete job %s: %w", pj.id, err)
			}
			continue
		}
		if err := txn.Set(key, pj.snap.value); err != nil {
			return fmt.Errorf("write job %s: %w", pj.id, err)
		}
		if err := reindex(txn, &keys, pj); err != nil {
			return fmt.Errorf("index job %s: %w", pj.id, err)
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
	return nil
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

func (s *keySlab) text(v string) []byte {
	start := len(s.b)
	s.b = append(s.b, v...)
	return s.cut(start)
}
