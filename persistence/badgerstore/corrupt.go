package badgerstore

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/y"

	"github.com/troupe-go/troupe/domain"
)

// Badger verifies the checksum of every table block it loads (see
// badgerOptions), but its point reads swallow the error: a key in a
// damaged block reads as missing. So a miss is not trusted as is: the
// store verifies its tables before answering "not found" (at most once per
// missVerifyInterval), and once it has seen damage it stays corrupt until
// restarted on a restored directory.

// missVerifyInterval bounds how often a miss triggers a verification of
// every table: a flood of lookups of unknown IDs costs one pass per
// interval, and damage is still caught on the first miss after it.
const missVerifyInterval = time.Minute

// integrity is the store's latched knowledge of damage.
type integrity struct {
	db  *badger.DB
	log *slog.Logger

	// damage holds the first damage seen; nil while none.
	damage atomic.Pointer[error]
	// verifyMu makes concurrent misses wait for one verification, without
	// holding up Ping (a health check) meanwhile; it guards verified.
	verifyMu sync.Mutex
	verified time.Time
}

// corrupt returns the latched damage, or nil.
func (g *integrity) corrupt() error {
	if p := g.damage.Load(); p != nil {
		return *p
	}
	return nil
}

// latch records damage once and logs it at error level.
func (g *integrity) latch(what string, err error) {
	first := g.damage.CompareAndSwap(nil, &err)
	g.log.Error("badger store: damaged data; the store must be restored from a backup",
		"op", what, "error", err, "first", first)
}

// check turns err into the domain's error, latching damage: every read
// and write result of the store passes here.
func (g *integrity) check(what string, err error) error {
	if err == nil {
		return nil
	}
	if isCorruption(err) {
		err = corruptError(what, err)
		g.latch(what, err)
		return err
	}
	return interpretError(what, err)
}

// confirmMiss is called when a key is missing: it returns nil if the miss
// is real, or an error wrapping domain.ErrCorrupt if the tables are
// damaged (then the key may well be in a damaged block).
func (g *integrity) confirmMiss(what string) error {
	if g.corrupt() == nil {
		g.verifyMu.Lock()
		if g.corrupt() == nil && time.Since(g.verified) >= missVerifyInterval {
			if err := verifyTables(g.db); err != nil {
				g.latch(what, corruptError("verify tables", err))
			}
			g.verified = time.Now()
		}
		g.verifyMu.Unlock()
	}
	damage := g.corrupt()
	if damage == nil {
		return nil
	}
	err := fmt.Errorf("%s: %w: the key may be in damaged data (%v)", what, domain.ErrCorrupt, damage) //nolint:errorlint // the damage is an earlier operation's; this error is ErrCorrupt and must not take on that one's kinds
	g.log.Error("badger store: a read missed in a damaged store", "op", what, "error", err)
	return err
}

// corruptError wraps damage into domain.ErrCorrupt, once.
func corruptError(what string, err error) error {
	if errors.Is(err, domain.ErrCorrupt) {
		return fmt.Errorf("%s: %w", what, err)
	}
	return fmt.Errorf("%s: %w: %w", what, domain.ErrCorrupt, err)
}

// isCorruption reports errors that mean damaged data: a checksum that does
// not match, a block or snapshot that does not decode.
func isCorruption(err error) bool {
	if errors.Is(err, y.ErrChecksumMismatch) || errors.Is(err, errCorrupt) || errors.Is(err, domain.ErrCorrupt) {
		return true
	}
	// Badger builds these with errors.New or %v inside its table reader.
	msg := err.Error()
	for _, s := range []string{"invalid checksum length", "failed to decode compressed data", "checksum mismatch", "failed to verify checksum"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// verifyTables checks every table's checksums. Badger's table reader
// indexes into what it reads, and damage can make it panic first: that is
// damage too.
func verifyTables(db *badger.DB) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("unreadable table: %v: %w", p, y.ErrChecksumMismatch)
		}
	}()
	return db.VerifyChecksum()
}

// recoverDamage turns a panic of Badger's table reader into an error
// wrapping errCorrupt. Badger parses a block's entry index before it
// verifies the block's checksum, so damaged bytes can make a read index
// out of range. Deferred by every read of the store.
func recoverDamage(err *error) {
	if p := recover(); p != nil {
		*err = fmt.Errorf("read of damaged data failed: %v: %w", p, errCorrupt)
	}
}
