package badgerstore

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/google/uuid"

	"github.com/troupe-go/troupe/domain"
)

// gcAfterDeletes is how many jobs DeleteFinished deletes before the
// value-log collector runs out of turn: a large prune leaves the value
// log full of dead snapshots (those too large for the tree), which the
// timer would only reclaim minutes later.
const gcAfterDeletes = 10_000

// DeleteFinished implements domain.Store. It walks the finished index of
// status from its oldest key up to before, skipping jobs that still hold
// their unique key (the index key's value says until when, so no
// snapshot is read for them), and deletes up to limit jobs with all their
// keys in one transaction, through the writer. One call deletes at most
// Options.MaxBatch jobs, and fewer with a small memtable (what one
// transaction holds); call again while it returns its limit.
func (s *Store) DeleteFinished(ctx context.Context, now time.Time, status domain.Status, before time.Time, limit int) (int, error) {
	code, ok := statusCode(status)
	if !ok || !status.IsTerminal() {
		return 0, fmt.Errorf("%w: delete finished jobs: status %q is not terminal", domain.ErrInvalid, status)
	}
	if limit <= 0 {
		return 0, nil
	}
	req := newRequest(ctx, opDeleteFinished, now, requestExtra{limit: limit, status: code, before: micros(before)})
	if err := s.submit(ctx, req); err != nil {
		return 0, err
	}
	n := req.extra.deleted
	if n > 0 && s.pruned.Add(int64(n)) >= gcAfterDeletes {
		s.pruned.Store(0)
		select {
		case s.gcKick <- struct{}{}:
		default: // a collection is already due
		}
	}
	return n, nil
}

// statusCodes bounds the status codes, to index arrays by them.
const statusCodes = 8

// finishedPos is a position in the finished index of one status: a
// FinishedAt and an ID, the order of its keys. The writer keeps one per
// status, a floor below which no key is stored, so that DeleteFinished
// seeks past the keys it deleted before instead of walking over them:
// Badger keeps a deleted key as a tombstone until compaction reaches the
// bottom level, and a walk from the start of the range would step over
// every job pruned since, making each prune slower than the last. A
// DeleteFinished raises the floor to the first key it leaves (a held job,
// or the last it walked); any write of a finished key below the floor
// lowers it. Held jobs it passes are remembered (heldJob) rather than
// stopping it. The floor is memory only: a new writer starts without one.
type finishedPos struct {
	set bool
	at  int64
	id  uuid.UUID
}

// less reports whether (at, id) sorts before p; an unset p is after all.
func (p *finishedPos) less(at int64, id uuid.UUID) bool {
	if !p.set {
		return true
	}
	if at != p.at {
		return at < p.at
	}
	return bytes.Compare(id[:], p.id[:]) < 0
}

// lower moves p down to (at, id) if that sorts before it.
func (p *finishedPos) lower(at int64, id uuid.UUID) {
	if p.less(at, id) {
		*p = finishedPos{set: true, at: at, id: id}
	}
}

// moveFloors applies what a committed plan learnt about the finished
// index: the floors its DeleteFinished found, lowered by every finished
// key it wrote, and the held jobs it passed or took.
func (w *writer) moveFloors(p *plan) {
	for code := range w.floors {
		if p.newFloors[code].set {
			w.floors[code] = p.newFloors[code]
		}
		if w.floors[code].set && p.finishedWritten[code].set {
			w.floors[code].lower(p.finishedWritten[code].at, p.finishedWritten[code].id)
		}
		if len(p.heldAdd[code]) > 0 && w.held[code] == nil {
			w.held[code] = make(map[uuid.UUID]heldJob)
		}
		for _, h := range p.heldAdd[code] {
			w.held[code][h.id] = h
		}
		for _, id := range p.heldDrop[code] {
			delete(w.held[code], id)
		}
	}
}

// maxHeldRemembered bounds, per status, the held jobs the writer
// remembers below its floor (see heldJob).
const maxHeldRemembered = 4096

// heldJob is a finished job that DeleteFinished passed because it held
// its unique key. The writer remembers up to maxHeldRemembered of them
// per status, below its floor, so that the floor can move past them: a
// schedule's slot job holds its key for an hour, and a floor stuck
// behind it would have every prune walk over an hour of tombstones. Once
// the hold ends, DeleteFinished takes the job from memory, after checking
// that its stored snapshot still says so. The floor's rule becomes: no
// key of the status is stored below it but those remembered.
type heldJob struct {
	at, until int64
	id        uuid.UUID
}

// finishedJob is a job DeleteFinished may take.
type finishedJob struct {
	finishedAt int64
	id         uuid.UUID
	// stored: found in the index, not among the jobs the batch changed;
	// remembered: among the writer's held jobs.
	stored, remembered bool
}

// deleteFinished deletes up to r.limit (and the batch's bounds) jobs of
// r's status finished before its cutoff, oldest first, that do not hold
// their unique key at r.now. It walks the finished index of the database
// from the writer's floor, skipping the jobs the batch changed, adds the
// remembered held jobs whose hold has ended and those the batch left
// finished and expired, and works out where the floor may move.
func (p *plan) deleteFinished(r *request) error {
	x := r.extra
	x.deleted = 0
	limit := min(x.limit, p.maxBatch)
	if p.maxDeletes > 0 {
		limit = min(limit, p.maxDeletes)
	}
	if limit <= 0 {
		return nil
	}
	now := micros(r.now)
	var remembered map[uuid.UUID]heldJob
	if p.held != nil {
		remembered = p.held[x.status]
	}
	room := maxHeldRemembered - len(remembered)
	var found []finishedJob
	// keep is the first key of the walk that stays and is not remembered:
	// a held job's beyond the room, one the batch changed, or the first
	// past the cutoff. passed is the last key walked.
	var keep, passed finishedPos
	dirty := func(id uuid.UUID) bool {
		i, ok := p.index[id]
		return ok && p.jobs[i].dirty
	}
	opts := badger.DefaultIteratorOptions
	opts.PrefetchValues = false
	opts.Prefix = []byte{prefixFinished, x.status}
	it := p.read.NewIterator(opts)
	if p.floors != nil && p.floors[x.status].set {
		floor := p.floors[x.status]
		it.Seek(appendFinishedKey(nil, floor.id, indexEntry{status: x.status, finishedAt: floor.at}))
	} else {
		it.Rewind()
	}
	for ; it.Valid() && len(found) < limit; it.Next() {
		item := it.Item()
		key := item.Key()
		if len(key) != finishedKeyLen {
			it.Close()
			return fmt.Errorf("%s: finished index key %x: %w", r.label(), key, errCorrupt)
		}
		finishedAt := timeOfKey(key[2:])
		id := uuid.UUID(key[10:])
		if finishedAt >= x.before {
			keep.lower(finishedAt, id)
			break
		}
		passed = finishedPos{set: true, at: finishedAt, id: id}
		if _, ok := remembered[id]; ok {
			continue // taken from memory below
		}
		if dirty(id) {
			keep.lower(finishedAt, id)
			continue
		}
		until, hasHold := int64(0), false
		err := item.Value(func(v []byte) error {
			switch len(v) {
			case 0:
			case 8:
				until, hasHold = timeOfKey(v), true
			default:
				return fmt.Errorf("finished index key %x holds %x: %w", key, v, errCorrupt)
			}
			return nil
		})
		if err != nil {
			it.Close()
			return fmt.Errorf("%s: %w", r.label(), err)
		}
		if hasHold && until > now {
			if room > 0 {
				room--
				p.heldAdd[x.status] = append(p.heldAdd[x.status], heldJob{at: finishedAt, until: until, id: id})
				continue
			}
			keep.lower(finishedAt, id)
			continue
		}
		found = append(found, finishedJob{finishedAt: finishedAt, id: id, stored: true})
	}
	it.Close()
	for _, h := range remembered {
		if h.until <= now && h.at < x.before && !dirty(h.id) {
			found = append(found, finishedJob{finishedAt: h.at, id: h.id, remembered: true})
		}
	}
	for i := range p.jobs {
		pj := &p.jobs[i]
		if !pj.dirty || !pj.exists {
			continue
		}
		e := pj.snap.index
		if e.status == x.status && e.finishedAt < x.before && (e.unique == "" || e.holdUntil <= now) {
			found = append(found, finishedJob{finishedAt: e.finishedAt, id: pj.id})
		}
	}
	slices.SortFunc(found, func(a, b finishedJob) int {
		if c := cmp.Compare(a.finishedAt, b.finishedAt); c != 0 {
			return c
		}
		return bytes.Compare(a.id[:], b.id[:])
	})
	for _, f := range found[min(len(found), limit):] {
		if f.stored {
			keep.lower(f.finishedAt, f.id)
		}
	}
	found = found[:min(len(found), limit)]
	for _, f := range found {
		i, err := p.lookup(f.id)
		if err != nil {
			return interpretError(r.label(), err)
		}
		pj := &p.jobs[i]
		if f.remembered {
			// Deleted, updated or held longer since it was remembered: its
			// stored state decides, and a finished key rewritten since
			// lowered the floor, so the walk meets it again.
			p.heldDrop[x.status] = append(p.heldDrop[x.status], f.id)
			e := pj.old
			if !pj.exists || pj.dirty || e.status != x.status || e.finishedAt != f.finishedAt || e.unique != "" && e.holdUntil > now {
				continue
			}
		} else if !pj.exists {
			return fmt.Errorf("%s: job %s is indexed but has no snapshot: %w", r.label(), f.id, errCorrupt)
		}
		if key := pj.current().unique; key != "" {
			if err := p.release(key, pj.id); err != nil {
				return interpretError(r.label(), err)
			}
		}
		pj.exists, pj.snap, pj.dirty = false, nil, true
		x.deleted++
	}
	p.written += x.deleted
	// The new floor: the first key walked that stays and is not
	// remembered, or else the last key walked.
	switch {
	case keep.set:
		p.newFloors[x.status] = keep
	case passed.set:
		p.newFloors[x.status] = passed
	}
	return nil
}
