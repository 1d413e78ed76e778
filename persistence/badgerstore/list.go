package badgerstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
	"github.com/google/uuid"

	"github.com/troupe-go/troupe/domain"
)

// ctxCheckEvery is how many index keys a listing walks between looks at
// its context: often enough to stop promptly, rarely enough to cost
// nothing.
const ctxCheckEvery = 1024

// List implements domain.Store. It walks index keys in order, reads the
// snapshots of the page only, and counts the rest of the matches from keys
// alone (and the status keys' values when a type is set too), in one
// consistent view of the database.
func (s *Store) List(ctx context.Context, f domain.Filter) (domain.Page, error) {
	if err := s.enter(); err != nil {
		return domain.Page{}, err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return domain.Page{}, fmt.Errorf("list jobs: %w", err)
	}
	page := domain.Page{Jobs: []*domain.Job{}}
	err := s.db.View(func(txn *badger.Txn) (err error) {
		defer recoverDamage(&err)
		c := newCursor(txn, f)
		defer c.close()
		skip := max(f.Offset, 0)
		for {
			if page.Total%ctxCheckEvery == ctxCheckEvery-1 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			id, ok, err := c.next()
			if err != nil || !ok {
				return err
			}
			page.Total++
			if skip > 0 {
				skip--
				continue
			}
			if f.Limit > 0 && len(page.Jobs) == f.Limit {
				// The page is full: order no longer matters, only the count.
				if total, ok, err := countedTotal(txn, f); err != nil || ok {
					page.Total = total
					return err
				}
				n, err := c.countRest(ctx)
				page.Total += n
				return err
			}
			job, err := indexedJob(txn, id)
			if err != nil {
				return err
			}
			page.Jobs = append(page.Jobs, job)
		}
	})
	if err != nil {
		return domain.Page{}, s.integ.check("list jobs", err)
	}
	return page, nil
}

// countedTotal answers the total of a listing by queue and unfinished
// statuses, with no type, schedule or key, from the queue counts:
// counting it from the index would read a snapshot per job (the index
// holds no queue). ok is false for any other filter.
func countedTotal(txn *badger.Txn, f domain.Filter) (total int, ok bool, err error) {
	if f.Queue == "" || f.Type != "" || f.Schedule != "" || f.Key != "" || len(f.Statuses) == 0 {
		return 0, false, nil
	}
	var seen [256]bool
	var keys []countKey
	for _, st := range f.Statuses {
		code, known := statusCode(st)
		if !known {
			continue
		}
		if finished(code) {
			return 0, false, nil
		}
		if !seen[code] {
			seen[code] = true
			keys = append(keys, countKey{status: code, queue: f.Queue})
		}
	}
	for _, k := range keys {
		item, err := txn.Get(k.key())
		if errors.Is(err, badger.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return 0, false, err
		}
		err = item.Value(func(v []byte) error {
			n, w := binary.Uvarint(v)
			if w <= 0 || w != len(v) {
				return fmt.Errorf("queue count %x holds %x: %w", k.key(), v, errCorrupt)
			}
			total += int(n)
			return nil
		})
		if err != nil {
			return 0, false, err
		}
	}
	return total, true, nil
}

// Scan implements domain.Store. It streams from one consistent view of the
// database, so jobs that fn (or anyone) changes meanwhile are seen as they
// were when Scan began; fn may call the store.
func (s *Store) Scan(ctx context.Context, f domain.Filter, fn func(*domain.Job) error) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("scan jobs: %w", err)
	}
	var fnErr error
	var fnPanic any
	err := s.db.View(func(txn *badger.Txn) (err error) {
		defer recoverDamage(&err)
		c := newCursor(txn, f)
		defer c.close()
		skip, sent := max(f.Offset, 0), 0
		for f.Limit <= 0 || sent < f.Limit {
			if err := ctx.Err(); err != nil {
				return err
			}
			id, ok, err := c.next()
			if err != nil || !ok {
				return err
			}
			if skip > 0 {
				skip--
				continue
			}
			job, err := indexedJob(txn, id)
			if err != nil {
				return err
			}
			if err := callScanFn(fn, job, &fnPanic); err != nil {
				fnErr = err
				return err
			}
			sent++
		}
		return nil
	})
	if fnPanic != nil {
		// fn's panic is the caller's own, not damage: pass it on.
		panic(fnPanic)
	}
	if fnErr != nil {
		// fn's error is the caller's own: hand it back untouched.
		return fnErr
	}
	return s.integ.check("scan jobs", err)
}

// callScanFn calls fn, catching its panic into *panicked so that the
// read's own recovery (recoverDamage) does not take it for damage.
func callScanFn(fn func(*domain.Job) error, job *domain.Job, panicked *any) (err error) {
	defer func() {
		if p := recover(); p != nil {
			*panicked = p
			err = errScanFnPanicked
		}
	}()
	return fn(job)
}

// errScanFnPanicked ends a scan whose fn panicked; Scan then panics again.
var errScanFnPanicked = errors.New("scan callback panicked")

// indexedJob reads the snapshot an index key points to. A missing one is
// damage, not "not found": the writer changes a job and its index keys in
// one transaction.
func indexedJob(txn *badger.Txn, id uuid.UUID) (*domain.Job, error) {
	job, err := getJob(txn, id)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, fmt.Errorf("job %s is indexed but has no snapshot: %w", id, errCorrupt)
	}
	if err != nil {
		return nil, fmt.Errorf("job %s: %w", id, err)
	}
	return job, nil
}

// cursor walks the index keys of the jobs that match a filter, oldest
// first. With a type and no status it walks the type's range of the type
// index. Otherwise it merges the ranges of the status index (each already
// oldest first) by their <createdAt><id> suffix, keeping, when a type is
// set, only keys whose value is that type.
//
// With a queue or a flow key set, each key that passes is checked against
// its job's snapshot: the index holds neither, so listing by queue or key
// reads the header of every candidate's snapshot (a queue's jobs are
// counted by Queues from the queue counts instead; a key's are listed by
// the dashboard a page at a time, and the runtime keeps its own per-key
// state, so a key index would cost a write per job for little). A
// schedule is checked the same
// way, decoding the whole snapshot: listing a schedule's jobs is rare
// enough (a page of the dashboard) not to earn an index of its own.
type cursor struct {
	ranges   []*indexRange
	typ      []byte // nil: any type
	queue    string // "": any queue
	schedule string // "": any schedule
	key      string // "": any flow key
	txn      *badger.Txn
}

// indexRange is one range of index keys being walked.
type indexRange struct {
	it *badger.Iterator
	// settled: the iterator is at a matching key or at the end, so its
	// value need not be read again.
	settled bool
}

func newCursor(txn *badger.Txn, f domain.Filter) *cursor {
	c := &cursor{queue: f.Queue, schedule: f.Schedule, key: f.Key, txn: txn}
	if len(f.Statuses) == 0 && f.Type != "" {
		c.open(txn, appendTypePrefix(nil, string(f.Type)))
		return c
	}
	if f.Type != "" {
		c.typ = []byte(f.Type)
	}
	statuses := f.Statuses
	if len(statuses) == 0 {
		statuses = domain.Statuses()
	}
	var seen [256]bool
	for _, st := range statuses {
		// An unknown status matches no job, like domain.Filter.Matches.
		code, ok := statusCode(st)
		if !ok || seen[code] {
			continue
		}
		seen[code] = true
		c.open(txn, statusPrefix(code))
	}
	return c
}

func (c *cursor) open(txn *badger.Txn, prefix []byte) {
	opts := badger.DefaultIteratorOptions
	opts.PrefetchValues = false
	opts.Prefix = prefix
	it := txn.NewIterator(opts)
	it.Rewind()
	c.ranges = append(c.ranges, &indexRange{it: it})
}

func (c *cursor) close() {
	for _, r := range c.ranges {
		r.it.Close()
	}
}

// settle moves r past keys whose type, queue, schedule or flow key does
// not match.
func (c *cursor) settle(r *indexRange) error {
	if r.settled || (c.typ == nil && c.queue == "" && c.schedule == "" && c.key == "") {
		return nil
	}
	for ; r.it.Valid(); r.it.Next() {
		match, err := c.matches(r.it.Item())
		if err != nil {
			return err
		}
		if match {
			break
		}
	}
	r.settled = true
	return nil
}

// matches reports whether the job of an index key has the cursor's type,
// queue, schedule and flow key.
func (c *cursor) matches(item *badger.Item) (bool, error) {
	if c.typ != nil {
		match := false
		err := item.Value(func(v []byte) error {
			match = bytes.Equal(v, c.typ)
			return nil
		})
		if err != nil || !match {
			return false, err
		}
	}
	if c.queue == "" && c.schedule == "" && c.key == "" {
		return true, nil
	}
	id, ok := idOfIndexKey(item.Key())
	if !ok {
		return false, fmt.Errorf("index key %x: %w", item.Key(), errCorrupt)
	}
	snap, err := c.txn.Get(jobKey(id))
	if err != nil {
		if errors.Is(err, badger.ErrKeyNotFound) {
			return false, fmt.Errorf("job %s is indexed but has no snapshot: %w", id, errCorrupt)
		}
		return false, err
	}
	match := false
	err = snap.Value(func(v []byte) error {
		if c.schedule != "" {
			// The schedule sits past the index part of a snapshot.
			j, err := decode(v)
			if err != nil {
				return err
			}
			match = j.Schedule == c.schedule && (c.queue == "" || j.Queue == c.queue) && (c.key == "" || j.Key == c.key)
			return nil
		}
		var err error
		match, err = headerMatches(v, c.queue, c.key)
		return err
	})
	return match, err
}

// advance moves r to its next key.
func (r *indexRange) advance() {
	r.it.Next()
	r.settled = false
}

// next returns the ID of the next matching job, or false at the end.
func (c *cursor) next() (uuid.UUID, bool, error) {
	var best *indexRange
	var bestOrder []byte
	for _, r := range c.ranges {
		if err := c.settle(r); err != nil {
			return uuid.UUID{}, false, err
		}
		if !r.it.Valid() {
			continue
		}
		key := r.it.Item().Key()
		if len(key) < orderLen {
			return uuid.UUID{}, false, fmt.Errorf("index key %x: %w", key, errCorrupt)
		}
		order := key[len(key)-orderLen:]
		if best == nil || bytes.Compare(order, bestOrder) < 0 {
			best, bestOrder = r, order
		}
	}
	if best == nil {
		return uuid.UUID{}, false, nil
	}
	id, _ := idOfIndexKey(best.it.Item().Key())
	best.advance()
	return id, true, nil
}

// countRest counts the matching keys not walked yet, in no particular
// order.
func (c *cursor) countRest(ctx context.Context) (int, error) {
	n := 0
	for _, r := range c.ranges {
		for {
			if err := c.settle(r); err != nil {
				return n, err
			}
			if !r.it.Valid() {
				break
			}
			n++
			if n%ctxCheckEvery == 0 {
				if err := ctx.Err(); err != nil {
					return n, err
				}
			}
			r.advance()
		}
	}
	return n, nil
}
