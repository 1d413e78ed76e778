package storetest

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/troupe-go/troupe/domain"
)

// FaultStore wraps a domain.Store and refuses its writes on demand, so that
// tests reach the paths a failing disk or database takes: the next write,
// every Nth write, or all writes for a while or until healed. Reads, Ping,
// Flush and Close always pass through.
//
// It lives here rather than next to the code under test because tests of
// several packages use it, and storetest is imported only by tests.
type FaultStore struct {
	domain.Store

	mu      sync.Mutex
	now     func() time.Time
	fault   *Fault
	since   time.Time // when fault was injected
	matched int       // writes the fault matched since it was injected
	refused map[WriteOp]int
}

// WriteOp names the writes a Fault can refuse. Ops combine with |.
type WriteOp int

// The writes of a domain.Store. OpCreate covers Insert; OpUpdate covers
// SharedQueue.UpdateOwned, PromoteDue, SetQueuePaused, PutSchedule and
// RecordScheduleRun too; OpDelete covers DeleteFinished and DeleteSchedule.
const (
	OpCreate WriteOp = 1 << iota
	OpUpdate
	OpDelete

	// OpWrites is every write.
	OpWrites = OpCreate | OpUpdate | OpDelete
)

func (op WriteOp) String() string {
	switch op {
	case OpCreate:
		return "create"
	case OpUpdate:
		return "update"
	case OpDelete:
		return "delete"
	}
	return fmt.Sprintf("WriteOp(%d)", int(op))
}

// Fault says which writes to refuse and with what error. The zero Fault
// refuses every write with domain.ErrUnavailable until Heal.
type Fault struct {
	// Ops are the writes the fault applies to; zero means OpWrites.
	Ops WriteOp
	// Err is the cause of each refusal, wrapped with the write and the job
	// ID; nil means domain.ErrUnavailable.
	Err error
	// Match, when set, restricts the fault to writes of which at least one
	// job it accepts. A Delete offers a job holding only its ID.
	Match func(*domain.Job) bool
	// Every refuses only every Nth matching write (the Nth, 2Nth, ...);
	// 0 or 1 refuses each one.
	Every int
	// Times heals the fault after it refused this many writes; 0 means no
	// limit.
	Times int
	// For heals the fault once this long has passed since Inject, by the
	// store's clock (SetClock); 0 means no limit.
	For time.Duration
}

// NewFaultStore wraps s; it refuses nothing until a fault is injected.
func NewFaultStore(s domain.Store) *FaultStore {
	return &FaultStore{Store: s, now: time.Now, refused: make(map[WriteOp]int)}
}

// SetClock replaces the clock Fault.For is measured on, such as a test's
// virtual clock.
func (s *FaultStore) SetClock(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

// Inject replaces the current fault with f.
func (s *FaultStore) Inject(f Fault) {
	if f.Ops == 0 {
		f.Ops = OpWrites
	}
	if f.Err == nil {
		f.Err = domain.ErrUnavailable
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault, s.since, s.matched = &f, s.now(), 0
}

// FailNext refuses the next n writes among ops with err.
func (s *FaultStore) FailNext(ops WriteOp, n int, err error) {
	s.Inject(Fault{Ops: ops, Err: err, Times: n})
}

// FailEvery refuses every nth write among ops with err until Heal.
func (s *FaultStore) FailEvery(ops WriteOp, n int, err error) {
	s.Inject(Fault{Ops: ops, Err: err, Every: n})
}

// FailFor refuses every write among ops with err for d.
func (s *FaultStore) FailFor(ops WriteOp, d time.Duration, err error) {
	s.Inject(Fault{Ops: ops, Err: err, For: d})
}

// Fail refuses every write among ops with err until Heal.
func (s *FaultStore) Fail(ops WriteOp, err error) {
	s.Inject(Fault{Ops: ops, Err: err})
}

// Heal removes the fault: writes pass through again.
func (s *FaultStore) Heal() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = nil
}

// Refused returns how many writes among ops were refused since the store
// was made.
func (s *FaultStore) Refused(ops WriteOp) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for op, c := range s.refused {
		if op&ops != 0 {
			n += c
		}
	}
	return n
}

// Create implements domain.Store.
func (s *FaultStore) Create(ctx context.Context, jobs ...*domain.Job) error {
	if err := s.check(OpCreate, jobs); err != nil {
		return err
	}
	return s.Store.Create(ctx, jobs...)
}

// Insert implements domain.Store.
func (s *FaultStore) Insert(ctx context.Context, now time.Time, jobs []*domain.Job) ([]*domain.Job, error) {
	if err := s.check(OpCreate, jobs); err != nil {
		return nil, err
	}
	return s.Store.Insert(ctx, now, jobs)
}

// PromoteDue implements domain.Store.
func (s *FaultStore) PromoteDue(ctx context.Context, now time.Time, limit int) ([]*domain.Job, error) {
	if err := s.check(OpUpdate, nil); err != nil {
		return nil, err
	}
	return s.Store.PromoteDue(ctx, now, limit)
}

// SetQueuePaused implements domain.Store.
func (s *FaultStore) SetQueuePaused(ctx context.Context, name string, paused bool) error {
	if err := s.check(OpUpdate, nil); err != nil {
		return err
	}
	return s.Store.SetQueuePaused(ctx, name, paused)
}

// SetQueueSettings implements domain.Store.
func (s *FaultStore) SetQueueSettings(ctx context.Context, name string, settings domain.QueueSettings) error {
	if err := s.check(OpUpdate, nil); err != nil {
		return err
	}
	return s.Store.SetQueueSettings(ctx, name, settings)
}

// Update implements domain.Store.
func (s *FaultStore) Update(ctx context.Context, jobs ...*domain.Job) error {
	if err := s.check(OpUpdate, jobs); err != nil {
		return err
	}
	return s.Store.Update(ctx, jobs...)
}

// Delete implements domain.Store.
func (s *FaultStore) Delete(ctx context.Context, id uuid.UUID) error {
	if err := s.check(OpDelete, []*domain.Job{{ID: id}}); err != nil {
		return err
	}
	return s.Store.Delete(ctx, id)
}

// DeleteFinished implements domain.Store.
func (s *FaultStore) DeleteFinished(ctx context.Context, now time.Time, status domain.Status, before time.Time, limit int) (int, error) {
	if err := s.check(OpDelete, nil); err != nil {
		return 0, err
	}
	return s.Store.DeleteFinished(ctx, now, status, before, limit)
}

// PutSchedule implements domain.ScheduleStore.
func (s *FaultStore) PutSchedule(ctx context.Context, sc *domain.Schedule) (bool, error) {
	if err := s.check(OpUpdate, nil); err != nil {
		return false, fmt.Errorf("schedule %q: %w", sc.Name, err)
	}
	return s.Store.PutSchedule(ctx, sc)
}

// DeleteSchedule implements domain.ScheduleStore.
func (s *FaultStore) DeleteSchedule(ctx context.Context, name string) error {
	if err := s.check(OpDelete, nil); err != nil {
		return fmt.Errorf("schedule %q: %w", name, err)
	}
	return s.Store.DeleteSchedule(ctx, name)
}

// RecordScheduleRun implements domain.ScheduleStore.
func (s *FaultStore) RecordScheduleRun(ctx context.Context, name string, run domain.ScheduleRun) error {
	if err := s.check(OpUpdate, nil); err != nil {
		return fmt.Errorf("schedule %q: %w", name, err)
	}
	return s.Store.RecordScheduleRun(ctx, name, run)
}

// check returns the refusal of a write, or nil to let it through.
func (s *FaultStore) check(op WriteOp, jobs []*domain.Job) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.fault
	if f == nil || f.Ops&op == 0 {
		return nil
	}
	if f.For > 0 && s.now().Sub(s.since) >= f.For {
		s.fault = nil
		return nil
	}
	if f.Match != nil && !anyMatch(f.Match, jobs) {
		return nil
	}
	s.matched++
	if f.Every > 1 && s.matched%f.Every != 0 {
		return nil
	}
	s.refused[op]++
	if f.Times > 0 {
		f.Times--
		if f.Times == 0 {
			s.fault = nil
		}
	}
	if len(jobs) > 0 {
		return fmt.Errorf("%s job %s: injected fault: %w", op, jobs[0].ID, f.Err)
	}
	return fmt.Errorf("%s: injected fault: %w", op, f.Err)
}

func anyMatch(match func(*domain.Job) bool, jobs []*domain.Job) bool {
	for _, j := range jobs {
		if match(j) {
			return true
		}
	}
	return false
}

// SharedFaultStore is a FaultStore over a store that is also a
// domain.SharedQueue: UpdateOwned is refused as an OpUpdate, and the rest
// of the queue passes through. Hand it to the runtime as the store and as
// its shared queue.
type SharedFaultStore struct {
	*FaultStore
	queue domain.SharedQueue
}

// SharedQueueStore is a store several nodes share.
type SharedQueueStore interface {
	domain.Store
	domain.SharedQueue
}

// NewSharedFaultStore wraps s, a shared store; it refuses nothing until a
// fault is injected.
func NewSharedFaultStore(s SharedQueueStore) *SharedFaultStore {
	return &SharedFaultStore{FaultStore: NewFaultStore(s), queue: s}
}

// ClaimJobs implements domain.SharedQueue.
func (s *SharedFaultStore) ClaimJobs(ctx context.Context, node string, r domain.ClaimRequest) ([]*domain.Job, error) {
	return s.queue.ClaimJobs(ctx, node, r)
}

// RenewLeases implements domain.SharedQueue.
func (s *SharedFaultStore) RenewLeases(ctx context.Context, node string, ids []uuid.UUID, lease time.Duration) ([]uuid.UUID, error) {
	return s.queue.RenewLeases(ctx, node, ids, lease)
}

// Heartbeat implements domain.SharedQueue; it is refused as an OpUpdate.
func (s *SharedFaultStore) Heartbeat(ctx context.Context, owner string, id uuid.UUID, lease time.Duration, progress *domain.Progress) (domain.LeaseState, error) {
	if err := s.check(OpUpdate, []*domain.Job{{ID: id}}); err != nil {
		return domain.LeaseState{}, err
	}
	return s.queue.Heartbeat(ctx, owner, id, lease, progress)
}

// UpdateOwned implements domain.SharedQueue; it is refused as an OpUpdate.
func (s *SharedFaultStore) UpdateOwned(ctx context.Context, node string, job *domain.Job) error {
	if err := s.check(OpUpdate, []*domain.Job{job}); err != nil {
		return err
	}
	return s.queue.UpdateOwned(ctx, node, job)
}

// RescueExpired implements domain.SharedQueue.
func (s *SharedFaultStore) RescueExpired(ctx context.Context) (int, error) {
	return s.queue.RescueExpired(ctx)
}

// FlowWaiting implements domain.SharedQueue.
func (s *SharedFaultStore) FlowWaiting(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]domain.WaitReason, error) {
	return s.queue.FlowWaiting(ctx, ids)
}

// WaitingCounts implements domain.SharedQueue.
func (s *SharedFaultStore) WaitingCounts(ctx context.Context) ([]domain.WaitingCount, error) {
	return s.queue.WaitingCounts(ctx)
}

// FlowWakeAfter implements domain.SharedQueue.
func (s *SharedFaultStore) FlowWakeAfter(ctx context.Context) (time.Duration, error) {
	return s.queue.FlowWakeAfter(ctx)
}

// CancelJob implements domain.SharedQueue.
func (s *SharedFaultStore) CancelJob(ctx context.Context, id uuid.UUID) (*domain.Job, error) {
	return s.queue.CancelJob(ctx, id)
}

// CancelRequests implements domain.SharedQueue.
func (s *SharedFaultStore) CancelRequests(ctx context.Context, node string) ([]uuid.UUID, error) {
	return s.queue.CancelRequests(ctx, node)
}

// Watch implements domain.SharedQueue.
func (s *SharedFaultStore) Watch(ctx context.Context, fn func(domain.QueueNotice)) error {
	return s.queue.Watch(ctx, fn)
}

var (
	_ domain.Store       = (*FaultStore)(nil)
	_ SharedQueueStore   = (*SharedFaultStore)(nil)
	_ domain.SharedQueue = (*SharedFaultStore)(nil)
)
