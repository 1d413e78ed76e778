package badgerstore

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/troupe-go/troupe/domain"
)

// Insert implements domain.Store. The unique keys are checked and taken
// by the writer, inside the transaction that stores the jobs, so no two
// callers can both store a job for one key.
func (s *Store) Insert(ctx context.Context, now time.Time, jobs []*domain.Job) ([]*domain.Job, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.leave()
	req, err := newWriteRequest(ctx, opInsert, jobs)
	if err != nil {
		return nil, err
	}
	req.now = now
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", req.label(), err)
	}
	if len(jobs) == 0 {
		return []*domain.Job{}, nil
	}
	if t := domain.InsertTraceFrom(ctx); t != nil && t.Committed != nil {
		req.committed = func() { t.Committed(insertResult(req, len(jobs))) }
	}
	if err := s.latchDamage(req.label(), s.w.submit(ctx, req)); err != nil {
		return nil, err
	}
	return insertResult(req, len(jobs)), nil
}

// insertResult is what Insert returns for a committed request of n jobs.
func insertResult(req *request, n int) []*domain.Job {
	if req.existing == nil {
		// No job had a unique key: all were stored.
		return make([]*domain.Job, n)
	}
	return req.existing
}

// PromoteDue implements domain.Store: one transaction, through the
// writer, over a range of the scheduled index. One call promotes at most
// Options.MaxBatch jobs, so that it fits in a transaction; call again
// while NextRunAt is due.
func (s *Store) PromoteDue(ctx context.Context, now time.Time, limit int) ([]*domain.Job, error) {
	req := newRequest(ctx, opPromote, now, requestExtra{limit: limit})
	if limit <= 0 {
		if err := s.enter(); err != nil {
			return nil, err
		}
		s.leave()
		return []*domain.Job{}, nil
	}
	if err := s.submit(ctx, req); err != nil {
		return nil, err
	}
	return req.extra.promoted, nil
}

// NextRunAt implements domain.Store: the first key of the scheduled index.
func (s *Store) NextRunAt(ctx context.Context) (time.Time, error) {
	if err := s.enter(); err != nil {
		return time.Time{}, err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return time.Time{}, fmt.Errorf("next run at: %w", err)
	}
	var next time.Time
	err := s.db.View(func(txn *badger.Txn) (err error) {
		defer recoverDamage(&err)
		opts := badger.DefaultIteratorOptions
		opts.PrefetchValues = false
		opts.Prefix = []byte{prefixScheduled}
		it := txn.NewIterator(opts)
		defer it.Close()
		it.Rewind()
		if !it.Valid() {
			return nil
		}
		key := it.Item().Key()
		if len(key) != scheduledKeyLen {
			return fmt.Errorf("scheduled index key %x: %w", key, errCorrupt)
		}
		next = fromMicros(timeOfKey(key[1:]))
		return nil
	})
	if err != nil {
		return time.Time{}, s.integ.check("next run at", err)
	}
	return next, nil
}

// Queues implements domain.Store from the queue counts, the paused marks
// and the settings: a few keys, whatever the backlog.
func (s *Store) Queues(ctx context.Context) ([]domain.QueueInfo, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list queues: %w", err)
	}
	var counts map[countKey]int64
	paused := map[string]bool{}
	var settings map[string]domain.QueueSettings
	err := s.db.View(func(txn *badger.Txn) (err error) {
		defer recoverDamage(&err)
		if counts, err = readCounts(txn); err != nil {
			return err
		}
		err = eachKey(txn, []byte{prefixPaused}, func(key []byte) error {
			paused[string(key[1:])] = true
			return nil
		})
		if err != nil {
			return err
		}
		settings, err = readSettings(txn)
		return err
	})
	if err != nil {
		return nil, s.integ.check("list queues", err)
	}
	return queueInfos(counts, paused, settings), nil
}

// queueInfos turns counts, paused marks and settings into Queues' answer,
// by name.
func queueInfos(counts map[countKey]int64, paused map[string]bool, settings map[string]domain.QueueSettings) []domain.QueueInfo {
	var tally domain.QueueTally
	for name := range paused {
		tally.Pause(name)
	}
	for name, st := range settings {
		tally.Settings(name, st)
	}
	for k, n := range counts {
		if status, ok := statusOf(k.status); ok {
			tally.Count(k.queue, status, int(n))
		}
	}
	return tally.Queues()
}

// SetQueuePaused implements domain.Store: a key per paused queue, written
// by the writer. It is not a new job: a nearly full disk still takes it.
func (s *Store) SetQueuePaused(ctx context.Context, name string, paused bool) error {
	if err := domain.ValidateQueueName(name); err != nil {
		return err
	}
	return s.submit(ctx, newRequest(ctx, opSetPaused, time.Time{}, requestExtra{queue: name, paused: paused}))
}

// readCounts reads every queue count.
func readCounts(txn *badger.Txn) (map[countKey]int64, error) {
	counts := map[countKey]int64{}
	opts := badger.DefaultIteratorOptions
	opts.Prefix = []byte{prefixCount}
	it := txn.NewIterator(opts)
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		item := it.Item()
		key := item.Key()
		if len(key) < 2 {
			return nil, fmt.Errorf("queue count key %x: %w", key, errCorrupt)
		}
		k := countKey{status: key[1], queue: string(key[2:])}
		err := item.Value(func(v []byte) error {
			n, w := binary.Uvarint(v)
			if w <= 0 || w != len(v) {
				return fmt.Errorf("queue count %x holds %x: %w", key, v, errCorrupt)
			}
			counts[k] = int64(n)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return counts, nil
}

// readSettings reads every queue's settings.
func readSettings(txn *badger.Txn) (map[string]domain.QueueSettings, error) {
	settings := map[string]domain.QueueSettings{}
	opts := badger.DefaultIteratorOptions
	opts.Prefix = []byte{prefixSettings}
	it := txn.NewIterator(opts)
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		item := it.Item()
		queue := string(item.Key()[1:])
		err := item.Value(func(v []byte) error {
			st, err := decodeSettings(queue, v)
			settings[queue] = st
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	return settings, nil
}

// eachKey calls fn with every key under prefix, keys only.
func eachKey(txn *badger.Txn, prefix []byte, fn func(key []byte) error) error {
	opts := badger.DefaultIteratorOptions
	opts.PrefetchValues = false
	opts.Prefix = prefix
	it := txn.NewIterator(opts)
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		if err := fn(it.Item().Key()); err != nil {
			return err
		}
	}
	return nil
}
