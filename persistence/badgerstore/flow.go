package badgerstore

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/troupe-go/troupe/domain"
)

// SetQueueSettings implements domain.Store: a key per queue with
// settings (q, see keys.go), written by the writer, apart from the
// queue's paused mark so that neither changes the other. Zero settings
// delete the key. Like a pause, it is not a new job: a nearly full disk
// still takes it.
func (s *Store) SetQueueSettings(ctx context.Context, name string, settings domain.QueueSettings) error {
	if err := domain.ValidateQueueName(name); err != nil {
		return err
	}
	var value []byte
	if !settings.IsZero() {
		var err error
		if value, err = encodeSettings(settings); err != nil {
			return fmt.Errorf("set settings of queue %q: %w", name, err)
		}
	}
	return s.submit(ctx, newRequest(ctx, opSetSettings, time.Time{}, requestExtra{queue: name, settings: value}))
}

// A queue's settings are stored in a compact binary form that encodes
// the same settings to the same bytes:
//
//	version  1 byte   settingsV1
//	flags    1 byte   which parts follow (settings* below)
//	limit    uvarint  Limit
//	rate     if settingsRate: count uvarint, per uvarint ns, burst uvarint
//	perKey   if settingsPerKey: limit uvarint, then the key rate as rate
//	         if settingsKeyRate
//
// A field added later takes a flag of its own, so settings without it
// keep their bytes; an unknown flag or version reads as damage (and comes
// with a new key layout, which an older build refuses).
const settingsV1 byte = 1

// The bits of the settings' flags.
const (
	settingsRate    byte = 1 << iota // Rate is set
	settingsPerKey                   // PerKey is set
	settingsKeyRate                  // PerKey.Rate is set (only with settingsPerKey)
	settingsOrdered                  // Ordered
	settingsFair                     // Fair

	settingsKnown = settingsFair<<1 - 1
)

// encodeSettings returns the stored form of settings that set something.
// It refuses negative numbers, which valid settings never hold.
func encodeSettings(st domain.QueueSettings) ([]byte, error) {
	var flags byte
	if st.Rate != nil {
		flags |= settingsRate
	}
	if st.PerKey != nil {
		flags |= settingsPerKey
		if st.PerKey.Rate != nil {
			flags |= settingsKeyRate
		}
	}
	if st.Ordered {
		flags |= settingsOrdered
	}
	if st.Fair {
		flags |= settingsFair
	}
	b := make([]byte, 0, 32)
	b = append(b, settingsV1, flags)
	var err error
	b, err = appendCount(b, "limit", st.Limit)
	if err != nil {
		return nil, err
	}
	if st.Rate != nil {
		if b, err = appendRate(b, "rate", *st.Rate); err != nil {
			return nil, err
		}
	}
	if st.PerKey != nil {
		if b, err = appendCount(b, "perKey.limit", st.PerKey.Limit); err != nil {
			return nil, err
		}
		if st.PerKey.Rate != nil {
			if b, err = appendRate(b, "perKey.rate", *st.PerKey.Rate); err != nil {
				return nil, err
			}
		}
	}
	return b, nil
}

func appendCount(b []byte, field string, n int) ([]byte, error) {
	if n < 0 {
		return nil, &domain.SettingError{Field: field, Err: fmt.Errorf("%w: must not be negative, got %d", domain.ErrInvalid, n)}
	}
	return binary.AppendUvarint(b, uint64(n)), nil
}

func appendRate(b []byte, field string, r domain.Rate) ([]byte, error) {
	var err error
	if b, err = appendCount(b, field+".count", r.Count); err != nil {
		return nil, err
	}
	if r.Per < 0 {
		return nil, &domain.SettingError{Field: field + ".per", Err: fmt.Errorf("%w: must not be negative, got %s", domain.ErrInvalid, r.Per)}
	}
	b = binary.AppendUvarint(b, uint64(r.Per))
	return appendCount(b, field+".burst", r.Burst)
}

// decodeSettings reads the stored settings of queue. It never panics,
// whatever b holds; bytes that are not settings this build wrote give an
// error wrapping domain.ErrCorrupt that names the queue.
func decodeSettings(queue string, b []byte) (domain.QueueSettings, error) {
	r := settingsReader{b: b}
	var st domain.QueueSettings
	version, flags := r.next(), r.next()
	switch {
	case r.err != nil:
	case version != settingsV1:
		r.fail("unknown version %d", version)
	case flags&^settingsKnown != 0:
		r.fail("unknown flags %#x", flags)
	case flags&settingsKeyRate != 0 && flags&settingsPerKey == 0:
		r.fail("a key rate without per-key limits")
	}
	st.Limit = r.count()
	if flags&settingsRate != 0 {
		st.Rate = r.rate()
	}
	if flags&settingsPerKey != 0 {
		st.PerKey = &domain.KeyLimits{Limit: r.count()}
		if flags&settingsKeyRate != 0 {
			st.PerKey.Rate = r.rate()
		}
	}
	st.Ordered = flags&settingsOrdered != 0
	st.Fair = flags&settingsFair != 0
	if r.err == nil && len(r.b) != 0 {
		r.fail("%d bytes after the settings", len(r.b))
	}
	if r.err == nil && st.IsZero() {
		// Zero settings are deleted, never stored.
		r.fail("settings that set nothing")
	}
	if r.err != nil {
		return domain.QueueSettings{}, fmt.Errorf("settings of queue %q: %w", queue, r.err)
	}
	return st, nil
}

// settingsReader consumes stored settings; the first error sticks, as
// reader's does.
type settingsReader struct {
	b   []byte
	err error
}

func (r *settingsReader) fail(format string, args ...any) {
	if r.err == nil {
		// domain.ErrCorrupt, not errCorrupt, which says "snapshot".
		r.err = fmt.Errorf("%w: %s", domain.ErrCorrupt, fmt.Sprintf(format, args...))
	}
	r.b = nil
}

func (r *settingsReader) next() byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) == 0 {
		r.fail("cut short")
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

// uvarint reads a number up to limit.
func (r *settingsReader) uvarint(limit uint64) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	switch {
	case n <= 0:
		r.fail("bad uvarint")
		return 0
	case v > limit:
		r.fail("number %d out of range", v)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *settingsReader) count() int { return int(r.uvarint(math.MaxInt)) }

func (r *settingsReader) rate() *domain.Rate {
	rate := &domain.Rate{Count: r.count()}
	rate.Per = time.Duration(r.uvarint(math.MaxInt64))
	rate.Burst = r.count()
	return rate
}
