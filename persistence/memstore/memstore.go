// Package memstore is an in-memory domain.Store for tests, demos and
// embedders that need no durability. It keeps copies, so no caller can change
// a stored job except through the Store methods.
package memstore

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/troupe-go/troupe/domain"
)

// Store is an in-memory domain.Store. The zero value is not usable; call New.
type Store struct {
	mu   sync.RWMutex
	jobs map[uuid.UUID]*domain.Job
	// unique maps a unique key to the last job stored with it.
	unique map[string]uuid.UUID
	// scheduled holds the IDs of scheduled jobs, for PromoteDue.
	scheduled map[uuid.UUID]struct{}
	paused    map[string]bool
	// settings holds the flow settings of the queues that have some.
	settings  map[string]domain.QueueSettings
	requests  map[requestID]domain.RequestRecord
	schedules map[string]*domain.Schedule
	closed    bool
}

var (
	_ domain.Store      = (*Store)(nil)
	_ domain.RequestLog = (*Store)(nil)
)

// New returns an empty store.
func New() *Store {
	return &Store{
		jobs:      make(map[uuid.UUID]*domain.Job),
		unique:    make(map[string]uuid.UUID),
		scheduled: make(map[uuid.UUID]struct{}),
		paused:    make(map[string]bool),
		settings:  make(map[string]domain.QueueSettings),
		requests:  make(map[requestID]domain.RequestRecord),
		schedules: make(map[string]*domain.Schedule),
	}
}

// Create implements domain.Store.
func (s *Store) Create(ctx context.Context, jobs ...*domain.Job) error {
	existing, err := s.insert(ctx, time.Now(), jobs, true)
	if err != nil {
		return err
	}
	for i, e := range existing {
		if e != nil {
			return fmt.Errorf("create job %s: %w: job %s holds unique key %q", jobs[i].ID, domain.ErrDuplicate, e.ID, jobs[i].UniqueKey)
		}
	}
	return nil
}

// Insert implements domain.Store.
func (s *Store) Insert(ctx context.Context, now time.Time, jobs []*domain.Job) ([]*domain.Job, error) {
	return s.insert(ctx, now, jobs, false)
}

// insert stores the jobs whose unique key is free; allOrNone stores
// nothing when one is not.
func (s *Store) insert(ctx context.Context, now time.Time, jobs []*domain.Job, allOrNone bool) ([]*domain.Job, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	seen := make(map[uuid.UUID]struct{}, len(jobs))
	for _, j := range jobs {
		_, dup := seen[j.ID]
		if _, ok := s.jobs[j.ID]; ok || dup {
			return nil, fmt.Errorf("create job %s: %w", j.ID, domain.ErrAlreadyExists)
		}
		seen[j.ID] = struct{}{}
	}
	existing := make([]*domain.Job, len(jobs))
	claimed := make(map[string]*domain.Job)
	duplicates := false
	for i, j := range jobs {
		if j.UniqueKey == "" {
			continue
		}
		if first, ok := claimed[j.UniqueKey]; ok {
			existing[i], duplicates = first, true
			continue
		}
		if id, ok := s.unique[j.UniqueKey]; ok {
			// A holder whose key an update changed holds it no more.
			if holder := s.jobs[id]; holder != nil && holder.UniqueKey == j.UniqueKey && holder.HoldsUniqueKey(now) {
				existing[i], duplicates = holder, true
				continue
			}
		}
		claimed[j.UniqueKey] = j
	}
	if duplicates && allOrNone {
		return existing, nil
	}
	for i, j := range jobs {
		if existing[i] != nil {
			existing[i] = existing[i].Clone()
			continue
		}
		s.put(nil, j)
	}
	return existing, nil
}

// put stores a copy of j in place of old (nil for a new job) and keeps the
// indexes in step. A job takes its unique key when it is stored, or when an
// update changes its key: an update of a finished job whose key another job
// has taken since leaves the key with that other job.
func (s *Store) put(old, j *domain.Job) {
	stored := j.Clone()
	// The runtime fills WaitingFor in as it reads a job: never stored.
	stored.WaitingFor = ""
	s.jobs[j.ID] = stored
	if old == nil || old.UniqueKey != j.UniqueKey {
		if old != nil && old.UniqueKey != "" && s.unique[old.UniqueKey] == j.ID {
			delete(s.unique, old.UniqueKey)
		}
		if j.UniqueKey != "" {
			s.unique[j.UniqueKey] = j.ID
		}
	}
	if j.Status == domain.StatusScheduled {
		s.scheduled[j.ID] = struct{}{}
	} else if old != nil && old.Status == domain.StatusScheduled {
		delete(s.scheduled, j.ID)
	}
}

// Get implements domain.Store.
func (s *Store) Get(ctx context.Context, id uuid.UUID) (*domain.Job, error) {
	if err := s.rlock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	j, ok := s.jobs[id]
	if !ok {
		return nil, fmt.Errorf("get job %s: %w", id, domain.ErrNotFound)
	}
	return j.Clone(), nil
}

// Update implements domain.Store.
func (s *Store) Update(ctx context.Context, jobs ...*domain.Job) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	// The stored jobs are looked up once; an update is nearly always of
	// one job, which the array holds without an allocation.
	var buf [4]*domain.Job
	olds := buf[:0]
	for _, j := range jobs {
		old, ok := s.jobs[j.ID]
		if !ok {
			return fmt.Errorf("update job %s: %w", j.ID, domain.ErrNotFound)
		}
		olds = append(olds, old)
	}
	for i, j := range jobs {
		s.put(olds[i], j)
	}
	return nil
}

// Delete implements domain.Store.
func (s *Store) Delete(ctx context.Context, id uuid.UUID) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	j, ok := s.jobs[id]
	if !ok {
		return fmt.Errorf("delete job %s: %w", id, domain.ErrNotFound)
	}
	s.remove(j)
	return nil
}

// List implements domain.Store.
func (s *Store) List(ctx context.Context, f domain.Filter) (domain.Page, error) {
	matched, err := s.matching(ctx, f)
	if err != nil {
		return domain.Page{}, err
	}
	page := domain.Page{Jobs: []*domain.Job{}, Total: len(matched)}
	for _, j := range window(matched, f) {
		page.Jobs = append(page.Jobs, j.Clone())
	}
	return page, nil
}

// Scan implements domain.Store. It works on a snapshot taken under the lock,
// so fn may call back into the store.
func (s *Store) Scan(ctx context.Context, f domain.Filter, fn func(*domain.Job) error) error {
	matched, err := s.matching(ctx, f)
	if err != nil {
		return err
	}
	for _, j := range window(matched, f) {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(j.Clone()); err != nil {
			return err
		}
	}
	return nil
}

// matching returns the stored jobs that pass f, oldest first. The pointers
// are the store's own: callers clone before handing them out.
func (s *Store) matching(ctx context.Context, f domain.Filter) ([]*domain.Job, error) {
	if err := s.rlock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	var matched []*domain.Job
	for _, j := range s.jobs {
		if f.Matches(j) {
			matched = append(matched, j)
		}
	}
	slices.SortFunc(matched, domain.Compare)
	return matched, nil
}

// window applies the filter's offset and limit.
func window(jobs []*domain.Job, f domain.Filter) []*domain.Job {
	if f.Offset >= len(jobs) {
		return nil
	}
	jobs = jobs[max(f.Offset, 0):]
	if f.Limit > 0 && f.Limit < len(jobs) {
		jobs = jobs[:f.Limit]
	}
	return jobs
}

// Ping implements domain.Store.
func (s *Store) Ping(ctx context.Context) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.usable()
}

// Flush implements domain.Store. Memory has nothing to flush, but a closed
// store still says so, like every other method.
func (s *Store) Flush(ctx context.Context) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.usable()
}

// Close implements domain.Store.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

// lock takes the write lock for a call under ctx, once ctx is live and the
// store open; the caller defers s.mu.Unlock. On an error the lock is not held.
func (s *Store) lock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	if err := s.usable(); err != nil {
		s.mu.Unlock()
		return err
	}
	return nil
}

// rlock is lock for a call that only reads; the caller defers s.mu.RUnlock.
func (s *Store) rlock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	if err := s.usable(); err != nil {
		s.mu.RUnlock()
		return err
	}
	return nil
}

func (s *Store) usable() error {
	if s.closed {
		return domain.ErrClosed
	}
	return nil
}
