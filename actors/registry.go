package actors

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/troupe-go/troupe/domain"
)

// registry maps job types to what runs them: a Go handler of this process
// or external workers. Registration may happen while jobs run, so it is
// guarded; lookups are read-locked and cheap.
type registry struct {
	mu       sync.RWMutex
	handlers map[domain.JobType]registered
	// hasExternal says some type is external, so that the dispatcher's
	// hot path asks no more when none is.
	hasExternal atomic.Bool
}

// registered is a type's handler and its options. An external type has
// no handler and runBy RunByExternal.
type registered struct {
	handler domain.Handler
	typeOptions
}

func newRegistry() *registry {
	return &registry{handlers: make(map[domain.JobType]registered)}
}

func checkTypeName(typ domain.JobType) error {
	if typ == "" || len(typ) > domain.MaxJobTypeLength {
		return fmt.Errorf("register %q: %w: a job type is 1 to %d bytes", typ, domain.ErrInvalid, domain.MaxJobTypeLength)
	}
	return nil
}

func (r *registry) register(typ domain.JobType, h domain.Handler, opts ...RegisterOption) error {
	if err := checkTypeName(typ); err != nil {
		return err
	}
	if h == nil {
		return fmt.Errorf("register %q: %w: handler is nil", typ, domain.ErrInvalid)
	}
	entry := registered{handler: h}
	for _, o := range opts {
		o(&entry.typeOptions)
	}
	if entry.timeout < NoTimeout {
		return fmt.Errorf("register %q: %w: timeout must not be negative", typ, domain.ErrInvalid)
	}
	if entry.runBy == "" || entry.runBy == RunByExternal {
		// A Go handler runs it, whatever it calls itself.
		entry.runBy = RunByGo
	}
	return r.add(typ, entry)
}

// registerExternal declares typ as run by external workers.
func (r *registry) registerExternal(typ domain.JobType) error {
	if err := checkTypeName(typ); err != nil {
		return err
	}
	return r.add(typ, registered{typeOptions: typeOptions{runBy: RunByExternal}})
}

func (r *registry) add(typ domain.JobType, entry registered) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if prev, ok := r.handlers[typ]; ok {
		return fmt.Errorf("register %q: %w (run by %s)", typ, domain.ErrDuplicateHandler, prev.runBy)
	}
	r.handlers[typ] = entry
	if entry.runBy == RunByExternal {
		r.hasExternal.Store(true)
	}
	return nil
}

// lookup returns what runs typ, if jobs may be submitted with it.
func (r *registry) lookup(typ domain.JobType) (registered, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	h, ok := r.handlers[typ]
	return h, ok
}

// isExternal reports whether external workers run typ.
func (r *registry) isExternal(typ domain.JobType) bool {
	if !r.hasExternal.Load() {
		return false
	}
	e, ok := r.lookup(typ)
	return ok && e.runBy == RunByExternal
}

// submittableTypes returns every type jobs may be submitted with (Go,
// webhook and external), sorted.
func (r *registry) submittableTypes() []domain.JobType {
	return r.typesWhere(func(registered) bool { return true })
}

// handlerTypes returns the types a Go handler of this process runs,
// sorted: the only ones its workers may claim.
func (r *registry) handlerTypes() []domain.JobType {
	return r.typesWhere(func(e registered) bool { return e.handler != nil })
}

// externalTypes returns the types external workers run, sorted.
func (r *registry) externalTypes() []domain.JobType {
	return r.typesWhere(func(e registered) bool { return e.runBy == RunByExternal })
}

func (r *registry) typesWhere(keep func(registered) bool) []domain.JobType {
	r.mu.RLock()
	defer r.mu.RUnlock()
	types := make([]domain.JobType, 0, len(r.handlers))
	for t, e := range r.handlers {
		if keep(e) {
			types = append(types, t)
		}
	}
	slices.Sort(types)
	return types
}

// info lists every submittable type with what runs it, sorted.
func (r *registry) info() []JobTypeInfo {
	r.mu.RLock()
	out := make([]JobTypeInfo, 0, len(r.handlers))
	for t, e := range r.handlers {
		out = append(out, JobTypeInfo{Type: t, RunBy: e.runBy})
	}
	r.mu.RUnlock()
	slices.SortFunc(out, func(a, b JobTypeInfo) int { return strings.Compare(string(a.Type), string(b.Type)) })
	return out
}

// unknownTypeError names the registered types, so that a client who made a
// typo sees the right spelling.
func (r *registry) unknownTypeError(typ domain.JobType) error {
	names := make([]string, 0)
	for _, t := range r.submittableTypes() {
		names = append(names, string(t))
	}
	return fmt.Errorf("%w %q (registered: %s)", domain.ErrUnknownJobType, typ, strings.Join(names, ", "))
}
