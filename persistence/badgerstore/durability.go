package badgerstore

import "fmt"

// Durability says which writes wait for fsync before they are
// acknowledged.
type Durability string

const (
	// DurabilityFull fsyncs the writes a client is told are stored —
	// new jobs, cancels, deletes, schedules, queue settings and the
	// request log — before acknowledging them, sharing one fsync among
	// concurrent ones (group commit). The writes whose loss only makes a
	// job run again (the running mark, an attempt's outcome, progress)
	// are acknowledged once written and reach stable storage with the
	// next fsync. The default.
	DurabilityFull Durability = "full"
	// DurabilitySyncAll fsyncs every write before acknowledging it.
	DurabilitySyncAll Durability = "sync-all"
	// DurabilityNone acknowledges every write once it reached the
	// operating system: a killed process loses nothing, a crash of the
	// machine can lose the latest acknowledged writes.
	DurabilityNone Durability = "none"
)

// Durabilities lists the accepted values, the default first.
func Durabilities() []Durability {
	return []Durability{DurabilityFull, DurabilitySyncAll, DurabilityNone}
}

// Valid reports an unknown durability.
func (d Durability) Valid() error {
	switch d {
	case DurabilityFull, DurabilitySyncAll, DurabilityNone:
		return nil
	}
	return fmt.Errorf("unknown durability %q: want full, sync-all or none", string(d))
}
