package domain

import (
	"bytes"
	"context"

	"github.com/google/uuid"
)

// Store is the port every persistence backend implements. Snapshots are
// whole jobs. A method returns only once its change is durable in the
// backend's terms, so the caller may then tell others it happened. Jobs
// returned are the caller's own copies. Missing jobs give ErrNotFound.
type Store interface {
	// Create stores new jobs, all or none. A job whose ID is already stored
	// gives ErrAlreadyExists and nothing is stored.
	Create(ctx context.Context, jobs ...*Job) error
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
