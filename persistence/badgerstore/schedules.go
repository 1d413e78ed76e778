package badgerstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/google/uuid"

	"github.com/troupe-go/troupe/domain"
)

// A schedule is stored under its name (keys.go) as JSON: schedules are
// few and change rarely, so the encoding is chosen for being readable and
// easy to extend, not for speed. scheduleRecord names every field on
// disk, so that renaming a field of domain.Schedule cannot silently drop
// it from stored schedules.
type scheduleRecord struct {
	Cron        string        `json:"cron"`
	Timezone    string        `json:"timezone,omitempty"`
	Type        string        `json:"type"`
	Payload     []byte        `json:"payload"`
	Queue       string        `json:"queue,omitempty"`
	Priority    int           `json:"priority,omitempty"`
	MaxAttempts int           `json:"maxAttempts,omitempty"`
	Timeout     time.Duration `json:"timeout,omitempty"`
	Paused      bool          `json:"paused,omitempty"`
	CatchUp     string        `json:"catchUp,omitempty"`
	Source      string        `json:"source,omitempty"`
	CreatedAt   time.Time     `json:"createdAt"`
	UpdatedAt   time.Time     `json:"updatedAt"`
	LastSlot    time.Time     `json:"lastSlot"`
	LastRunAt   time.Time     `json:"lastRunAt"`
	LastJobID   uuid.UUID     `json:"lastJobId"`
}

func encodeSchedule(sc *domain.Schedule) ([]byte, error) {
	return json.Marshal(scheduleRecord{
		Cron: sc.Cron, Timezone: sc.Timezone,
		Type: string(sc.Job.Type), Payload: sc.Job.Payload, Queue: sc.Job.Queue, Priority: sc.Job.Priority,
		MaxAttempts: sc.Job.MaxAttempts, Timeout: sc.Job.Timeout,
		Paused: sc.Paused, CatchUp: string(sc.CatchUp), Source: string(sc.Source),
		CreatedAt: sc.CreatedAt, UpdatedAt: sc.UpdatedAt,
		LastSlot: sc.LastSlot, LastRunAt: sc.LastRunAt, LastJobID: sc.LastJobID,
	})
}

// decodeSchedule reads the schedule named name from v, copying what it
// keeps.
func decodeSchedule(name string, v []byte) (*domain.Schedule, error) {
	var rec scheduleRecord
	if err := json.Unmarshal(v, &rec); err != nil {
		return nil, fmt.Errorf("schedule %q: %w: %w", name, errCorrupt, err)
	}
	return &domain.Schedule{
		Name: name, Cron: rec.Cron, Timezone: rec.Timezone,
		Job: domain.ScheduledJob{Type: domain.JobType(rec.Type), Payload: rec.Payload, Queue: rec.Queue,
			Priority: rec.Priority, MaxAttempts: rec.MaxAttempts, Timeout: rec.Timeout},
		Paused: rec.Paused, CatchUp: domain.CatchUp(rec.CatchUp), Source: domain.ScheduleSource(rec.Source),
		CreatedAt: domain.Timestamp(rec.CreatedAt), UpdatedAt: domain.Timestamp(rec.UpdatedAt),
		LastSlot: domain.Timestamp(rec.LastSlot), LastRunAt: domain.Timestamp(rec.LastRunAt), LastJobID: rec.LastJobID,
	}, nil
}

// scheduleSlot is one schedule in a plan.
type scheduleSlot struct {
	stored bool // it was stored before the batch
	exists bool // it exists after the requests so far
	sc     *domain.Schedule
	dirty  bool
}

// schedule returns the slot of a schedule, reading it the first time the
// batch meets it.
func (p *plan) schedule(name string) (*scheduleSlot, error) {
	if slot, ok := p.schedules[name]; ok {
		return slot, nil
	}
	slot := &scheduleSlot{}
	item, err := p.read.Get(scheduleKey(name))
	switch {
	case errors.Is(err, badger.ErrKeyNotFound):
	case err != nil:
		return nil, err
	default:
		err := item.Value(func(v []byte) error {
			sc, err := decodeSchedule(name, v)
			slot.sc = sc
			return err
		})
		if err != nil {
			return nil, err
		}
		slot.stored, slot.exists = true, true
	}
	if p.schedules == nil {
		p.schedules = map[string]*scheduleSlot{}
	}
	p.schedules[name] = slot
	return slot, nil
}

// scheduleOp applies PutSchedule, DeleteSchedule or RecordScheduleRun.
func (p *plan) scheduleOp(r *request) error {
	x := r.extra
	name := x.name
	if r.op == opPutSchedule {
		name = x.schedule.Name
	}
	slot, err := p.schedule(name)
	if err != nil {
		return interpretError(r.label(), err)
	}
	if r.op != opPutSchedule && !slot.exists {
		return fmt.Errorf("%s: %w", r.label(), domain.ErrNotFound)
	}
	switch r.op {
	case opPutSchedule:
		var old *domain.Schedule
		if slot.exists {
			old = slot.sc
		}
		x.created = !slot.exists
		slot.exists, slot.sc = true, x.schedule.Replacing(old)
	case opDeleteSchedule:
		slot.exists, slot.sc = false, nil
	case opRecordScheduleRun:
		next := slot.sc.Clone()
		next.Record(x.run)
		slot.sc = next
	}
	slot.dirty = true
	return nil
}

// writeSchedule puts a schedule slot's final state into txn.
func writeSchedule(txn *badger.Txn, name string, slot *scheduleSlot) error {
	switch {
	case !slot.dirty:
		return nil
	case slot.exists:
		v, err := encodeSchedule(slot.sc)
		if err != nil {
			return err
		}
		return txn.Set(scheduleKey(name), v)
	case slot.stored:
		return txn.Delete(scheduleKey(name))
	}
	return nil
}

// PutSchedule implements domain.ScheduleStore, through the writer.
func (s *Store) PutSchedule(ctx context.Context, sc *domain.Schedule) (bool, error) {
	if err := domain.ValidateScheduleName(sc.Name); err != nil {
		return false, err
	}
	req := newRequest(ctx, opPutSchedule, time.Time{}, requestExtra{schedule: sc.Clone()})
	if err := s.submit(ctx, req); err != nil {
		return false, err
	}
	return req.extra.created, nil
}

// DeleteSchedule implements domain.ScheduleStore, through the writer.
func (s *Store) DeleteSchedule(ctx context.Context, name string) error {
	return s.submit(ctx, newRequest(ctx, opDeleteSchedule, time.Time{}, requestExtra{name: name}))
}

// RecordScheduleRun implements domain.ScheduleStore, through the writer.
func (s *Store) RecordScheduleRun(ctx context.Context, name string, run domain.ScheduleRun) error {
	return s.submit(ctx, newRequest(ctx, opRecordScheduleRun, time.Time{}, requestExtra{name: name, run: run}))
}

// GetSchedule implements domain.ScheduleStore.
func (s *Store) GetSchedule(ctx context.Context, name string) (*domain.Schedule, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.leave()
	what := fmt.Sprintf("get schedule %q", name)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	var sc *domain.Schedule
	err := s.db.View(func(txn *badger.Txn) (err error) {
		defer recoverDamage(&err)
		item, err := txn.Get(scheduleKey(name))
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error {
			sc, err = decodeSchedule(name, v)
			return err
		})
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		if err := s.integ.confirmMiss(what); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%s: %w", what, domain.ErrNotFound)
	}
	if err != nil {
		return nil, s.integ.check(what, err)
	}
	return sc, nil
}

// ListSchedules implements domain.ScheduleStore: the keys sort by name.
func (s *Store) ListSchedules(ctx context.Context) ([]*domain.Schedule, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list schedules: %w", err)
	}
	list := []*domain.Schedule{}
	err := s.db.View(func(txn *badger.Txn) (err error) {
		defer recoverDamage(&err)
		opts := badger.DefaultIteratorOptions
		opts.Prefix = []byte{prefixSchedule}
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			name := string(item.Key()[1:])
			err := item.Value(func(v []byte) error {
				sc, err := decodeSchedule(name, v)
				if err == nil {
					list = append(list, sc)
				}
				return err
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, s.integ.check("list schedules", err)
	}
	return list, nil
}
