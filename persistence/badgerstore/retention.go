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

// finishedJob is a job DeleteFinished may take.
type finishedJob struct {
	finishedAt int64
	id         uuid.UUID
}

// deleteFinished deletes up to r.limit (and the batch's bounds) jobs of
// r's status finished before its cutoff, oldest first, that do not hold
// their unique key at r.now. It walks the finished index of the database,
// skipping the jobs the batch changed, and adds those the batch left
// finished and expired.
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
	var found []finishedJob
	opts := badger.DefaultIteratorOptions
	opts.PrefetchValues = false
	opts.Prefix = []byte{prefixFinished, x.status}
	it := p.read.NewIterator(opts)
	for it.Rewind(); it.Valid() && len(found) < limit; it.Next() {
		item := it.Item()
		key := item.Key()
		if len(key) != finishedKeyLen {
			it.Close()
			return fmt.Errorf("%s: finished index key %x: %w", r.label(), key, errCorrupt)
		}
		finishedAt := timeOfKey(key[2:])
		if finishedAt >= x.before {
			break
		}
		id := uuid.UUID(key[10:])
		if i, ok := p.index[id]; ok && p.jobs[i].dirty {
			continue
		}
		held := false
		err := item.Value(func(v []byte) error {
			switch len(v) {
			case 0:
			case 8:
				held = timeOfKey(v) > now
			default:
				return fmt.Errorf("finished index key %x holds %x: %w", key, v, errCorrupt)
			}
			return nil
		})
		if err != nil {
			it.Close()
			return fmt.Errorf("%s: %w", r.label(), err)
		}
		if !held {
			found = append(found, finishedJob{finishedAt: finishedAt, id: id})
		}
	}
	it.Close()
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
	found = found[:min(len(found), limit)]
	for _, f := range found {
		i, err := p.lookup(f.id)
		if err != nil {
			return interpretError(r.label(), err)
		}
		pj := &p.jobs[i]
		if !pj.exists {
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
	return nil
}
