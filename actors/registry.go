package actors

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/troupe-go/troupe/domain"
)

// registry maps job types to handlers. Registration may happen while jobs
// run, so it is guarded; lookups are read-locked and cheap.
type registry struct {
	mu       sync.RWMutex
	handlers map[domain.JobType]registered
}

// registered is a type's handler and its options.
type registered struct {
	handler domain.Handler
	typeOptions
}

func newRegistry() *registry {
	return &registry{handlers: make(map[domain.JobType]registered)}
}

func (r *registry) register(typ domain.JobType, h domain.Handler, opts ...RegisterOption) error {
	if typ == "" || len(typ) > domain.MaxJobTypeLength {
		return fmt.Errorf("register %q: %w: a job type is 1 to %d bytes", typ, domain.ErrInvalid, domain.MaxJobTypeLength)
	}
	if h == nil {
		return fmt.Errorf("register %q: %w: handler is nil", typ, domain.ErrInvalid)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.handlers[typ]; ok {
		return fmt.Errorf("register %q: %w", typ, domain.ErrDuplicateHandler)
	}
	entry := registered{handler: h}
	for _, o := range opts {
		o(&entry.typeOptions)
	}
	if entry.timeout < NoTimeout {
		return fmt.Errorf("register %q: %w: timeout must not be negative", typ, domain.ErrInvalid)
	}
	r.handlers[typ] = entry
	return nil
}

func (r *registry) lookup(typ domain.JobType) (registered, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	h, ok := r.handlers[typ]
	return h, ok
}

func (r *registry) types() []domain.JobType {
	r.mu.RLock()
	defer r.mu.RUnlock()
	types := make([]domain.JobType, 0, len(r.handlers))
	for t := range r.handlers {
		types = append(types, t)
	}
	slices.Sort(types)
	return types
}

// unknownTypeError names the registered types, so that a client who made a
// typo sees the right spelling.
func (r *registry) unknownTypeError(typ domain.JobType) error {
	names := make([]string, 0)
	for _, t := range r.types() {
		names = append(names, string(t))
	}
	return fmt.Errorf("%w %q (registered: %s)", domain.ErrUnknownJobType, typ, strings.Join(names, ", "))
}
