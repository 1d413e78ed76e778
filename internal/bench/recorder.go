package bench

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/troupe-go/troupe/actors"
	"github.com/troupe-go/troupe/domain"
)

// recorder is the bench's handler and what it observes: how many jobs
// were stored as completed and, when asked, when each job started and when
// its completion was stored.
type recorder struct {
	// gate, when set, holds every handler until it is closed, so that a
	// backlog can be inserted before any work starts.
	gate      chan struct{}
	openGate  sync.Once
	withTimes bool

	completed atomic.Int64
	// progressed wakes a waiter after a completion; a full buffer means
	// one wake-up is already pending.
	progressed chan struct{}

	mu      sync.Mutex
	startAt map[uuid.UUID]time.Time
	doneAt  map[uuid.UUID]time.Time

	// nodeMu guards byNode, the completed outcomes each node of a shared
	// queue committed.
	nodeMu sync.Mutex
	byNode map[string]int64
}

func newRecorder(gated, withTimes bool) *recorder {
	r := &recorder{withTimes: withTimes, progressed: make(chan struct{}, 1)}
	if gated {
		r.gate = make(chan struct{})
	}
	if withTimes {
		r.startAt = make(map[uuid.UUID]time.Time)
		r.doneAt = make(map[uuid.UUID]time.Time)
	}
	return r
}

// Execute is the no-op handler. It notes its start by job ID: joining that
// with the submission times afterwards measures enqueue-to-start without
// holding a worker until the submitter has recorded the ID.
func (r *recorder) Execute(ctx context.Context, _ []byte) error {
	if r.gate != nil {
		select {
		case <-r.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	now := time.Now()
	if r.withTimes {
		if id, ok := actors.JobIDFromContext(ctx); ok {
			r.mu.Lock()
			r.startAt[id] = now
			r.mu.Unlock()
		}
	}
	return nil
}

// release opens the gate; it is safe to call more than once.
func (r *recorder) release() {
	if r.gate != nil {
		r.openGate.Do(func() { close(r.gate) })
	}
}

// storedCompleted records jobs whose completed snapshot was just stored.
func (r *recorder) storedCompleted(jobs []*domain.Job) {
	now := time.Now()
	n := int64(0)
	for _, j := range jobs {
		if j.Status != domain.StatusCompleted {
			continue
		}
		n++
		if r.withTimes {
			r.mu.Lock()
			r.doneAt[j.ID] = now
			r.mu.Unlock()
		}
	}
	if n == 0 {
		return
	}
	r.completed.Add(n)
	select {
	case r.progressed <- struct{}{}:
	default:
	}
}

// waitCompleted waits until n jobs are stored as completed. It gives up
// when ctx ends or when none completes for stallTimeout, which means
// the runtime is stuck.
func (r *recorder) waitCompleted(ctx context.Context, n int64) error {
	stall := time.NewTimer(stallTimeout)
	defer stall.Stop()
	last := r.completed.Load()
	for last < n {
		select {
		case <-r.progressed:
		case <-stall.C:
			return fmt.Errorf("no job completed for %s: %d of %d done", stallTimeout, last, n)
		case <-ctx.Done():
			return context.Cause(ctx)
		}
		if now := r.completed.Load(); now != last {
			last = now
			stall.Reset(stallTimeout)
		}
	}
	return nil
}

// recordingStore is the store under test, plus a note to the recorder each
// time a completed snapshot is stored. The runtime writes that snapshot
// before it considers the job done, so this is when the job is done.
type recordingStore struct {
	domain.Store
	rec *recorder
}

// recordingLog is a recordingStore whose store keeps the API's
// idempotency records, as every store does: the runtime's pruner expires
// them only on a store it sees is a domain.RequestLog, so hiding it would
// spare the bench work that troupe serve does.
type recordingLog struct {
	recordingStore
	domain.RequestLog
}

// recording wraps store for rec, keeping its idempotency records visible.
func recording(store domain.Store, rec *recorder) domain.Store {
	r := recordingStore{Store: store, rec: rec}
	if log, ok := store.(domain.RequestLog); ok {
		return recordingLog{recordingStore: r, RequestLog: log}
	}
	return r
}

// recordingShared is the shared queue under test, noting completed
// outcomes as recordingStore does: a node of a shared store stores an
// attempt's outcome through UpdateOwned.
type recordingShared struct {
	domain.SharedQueue
	rec *recorder
}

// UpdateOwned stores the snapshot and notes it if completed.
func (s recordingShared) UpdateOwned(ctx context.Context, node string, job *domain.Job) error {
	if err := s.SharedQueue.UpdateOwned(ctx, node, job); err != nil {
		return err
	}
	if job.Status == domain.StatusCompleted {
		s.rec.nodeMu.Lock()
		if s.rec.byNode == nil {
			s.rec.byNode = make(map[string]int64)
		}
		s.rec.byNode[node]++
		s.rec.nodeMu.Unlock()
	}
	s.rec.storedCompleted([]*domain.Job{job})
	return nil
}

// completedByNode returns the completed outcomes each node of a shared
// queue committed, or nil when there are no several nodes.
func (r *recorder) completedByNode(nodes int) map[string]int64 {
	if nodes < 2 {
		return nil
	}
	r.nodeMu.Lock()
	defer r.nodeMu.Unlock()
	return maps.Clone(r.byNode)
}

// Update stores the snapshots and notes the completed ones.
func (s recordingStore) Update(ctx context.Context, jobs ...*domain.Job) error {
	if err := s.Store.Update(ctx, jobs...); err != nil {
		return err
	}
	s.rec.storedCompleted(jobs)
	return nil
}
