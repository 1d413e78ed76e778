package badgerstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/troupe-go/troupe/domain"
)

// A snapshot is stored in a compact binary form, because encoding sits on
// the hot path: every transition of every job is one snapshot. Version 1:
//
//	version   1 byte   snapshotV1
//	id        16 bytes
//	status    1 byte   statusCode
//	flags     1 byte   which optional fields follow (flag* below)
//	type      uvarint length, bytes
//	times     varint µs since the Unix epoch, for each time whose flag is set,
//	          in the order CreatedAt, UpdatedAt, RunAt, StartedAt, FinishedAt
//	attempts  varint
//	max       varint   MaxAttempts
//	lastError uvarint length, bytes
//	payload   uvarint length, bytes
//
// What the index keys need (status, type, CreatedAt) comes first, so that
// decodeIndex reads a prefix and allocates nothing for the payload. A new
// layout gets a new version byte; decode keeps reading the old ones.
const snapshotV1 byte = 1

// The bits of the flags byte. A zero time has no flag and no bytes, which
// keeps a pending job small and tells a zero time from the Unix epoch.
const (
	flagPayload    byte = 1 << iota // Payload is not nil (it may be empty)
	flagCreatedAt                   // CreatedAt is set
	flagUpdatedAt                   // UpdatedAt is set
	flagRunAt                       // RunAt is set
	flagStartedAt                   // StartedAt is set
	flagFinishedAt                  // FinishedAt is set

	flagsKnown = flagFinishedAt<<1 - 1
)

// errCorrupt marks bytes that are not a snapshot this build can read.
var errCorrupt = errors.New("corrupt snapshot")

// statusCode gives each status one byte, in snapshots and in index keys.
// The codes are part of the on-disk format: never renumber them.
func statusCode(s domain.Status) (byte, bool) {
	switch s {
	case domain.StatusPending:
		return 1, true
	case domain.StatusRunning:
		return 2, true
	case domain.StatusCompleted:
		return 3, true
	case domain.StatusFailed:
		return 4, true
	case domain.StatusCanceled:
		return 5, true
	}
	return 0, false
}

// statusOf is the inverse of statusCode.
func statusOf(code byte) (domain.Status, bool) {
	switch code {
	case 1:
		return domain.StatusPending, true
	case 2:
		return domain.StatusRunning, true
	case 3:
		return domain.StatusCompleted, true
	case 4:
		return domain.StatusFailed, true
	case 5:
		return domain.StatusCanceled, true
	}
	return "", false
}

// indexEntry is what a job's index keys are made of.
type indexEntry struct {
	status    byte
	createdAt int64 // µs since the Unix epoch; see micros
	typ       string
}

// micros turns a time into the microseconds every store keeps. The zero
// time gets its own (very negative) value, so it sorts first, like
// domain.Compare sorts it.
func micros(t time.Time) int64 { return t.UnixMicro() }

// fromMicros is the inverse of micros, in UTC; the zero time's value comes
// back as the zero time.
func fromMicros(us int64) time.Time {
	t := time.UnixMicro(us).UTC()
	if t.IsZero() {
		return time.Time{}
	}
	return t
}

// encode appends the snapshot of j to dst. It rejects what the index keys
// cannot hold: an unknown status or an over-long type.
func encode(dst []byte, j *domain.Job) ([]byte, error) {
	code, ok := statusCode(j.Status)
	if !ok {
		return nil, fmt.Errorf("%w: unknown status %q", domain.ErrInvalid, j.Status)
	}
	if len(j.Type) > domain.MaxJobTypeLength {
		return nil, fmt.Errorf("%w: job type is %d bytes, more than %d", domain.ErrInvalid, len(j.Type), domain.MaxJobTypeLength)
	}
	times := [...]struct {
		flag byte
		t    time.Time
	}{
		{flagCreatedAt, j.CreatedAt},
		{flagUpdatedAt, j.UpdatedAt},
		{flagRunAt, j.RunAt},
		{flagStartedAt, j.StartedAt},
		{flagFinishedAt, j.FinishedAt},
	}
	var flags byte
	if j.Payload != nil {
		flags |= flagPayload
	}
	for _, tf := range times {
		if !tf.t.IsZero() {
			flags |= tf.flag
		}
	}
	if dst == nil {
		// One allocation of exactly the right size: values stay in memory
		// until their batch commits, so slack would cost at every step.
		size := 3 + 16 + varintLen(int64(j.Attempts)) + varintLen(int64(j.MaxAttempts)) +
			fieldLen(len(j.Type)) + fieldLen(len(j.LastError)) + fieldLen(len(j.Payload))
		for _, tf := range times {
			if flags&tf.flag != 0 {
				size += varintLen(micros(tf.t))
			}
		}
		dst = make([]byte, 0, size)
	}
	dst = append(dst, snapshotV1)
	dst = append(dst, j.ID[:]...)
	dst = append(dst, code, flags)
	dst = binary.AppendUvarint(dst, uint64(len(j.Type)))
	dst = append(dst, j.Type...)
	for _, tf := range times {
		if flags&tf.flag != 0 {
			dst = binary.AppendVarint(dst, micros(tf.t))
		}
	}
	dst = binary.AppendVarint(dst, int64(j.Attempts))
	dst = binary.AppendVarint(dst, int64(j.MaxAttempts))
	dst = binary.AppendUvarint(dst, uint64(len(j.LastError)))
	dst = append(dst, j.LastError...)
	dst = binary.AppendUvarint(dst, uint64(len(j.Payload)))
	dst = append(dst, j.Payload...)
	return dst, nil
}

// uvarintLen is how many bytes binary.AppendUvarint writes for v.
func uvarintLen(v uint64) int {
	n := 1
	for ; v >= 0x80; v >>= 7 {
		n++
	}
	return n
}

// varintLen is how many bytes binary.AppendVarint writes for v.
func varintLen(v int64) int {
	return uvarintLen(uint64(v<<1) ^ uint64(v>>63))
}

// fieldLen is the size of a length-prefixed field of n bytes.
func fieldLen(n int) int { return uvarintLen(uint64(n)) + n }

// indexOf returns the index entry of a job that encode accepted.
func indexOf(j *domain.Job) indexEntry {
	code, _ := statusCode(j.Status)
	return indexEntry{status: code, createdAt: micros(j.CreatedAt), typ: string(j.Type)}
}

// decode reads a snapshot. It never panics, whatever b holds, and copies
// everything it keeps, so b may be reused once it returns.
func decode(b []byte) (*domain.Job, error) {
	r := reader{b: b}
	j := &domain.Job{}
	flags := r.header(j)
	times := [...]struct {
		flag byte
		t    *time.Time
	}{
		{flagCreatedAt, &j.CreatedAt},
		{flagUpdatedAt, &j.UpdatedAt},
		{flagRunAt, &j.RunAt},
		{flagStartedAt, &j.StartedAt},
		{flagFinishedAt, &j.FinishedAt},
	}
	for _, tf := range times {
		if flags&tf.flag != 0 {
			*tf.t = fromMicros(r.varint())
		}
	}
	j.Attempts = int(r.varint())
	j.MaxAttempts = int(r.varint())
	j.LastError = string(r.field())
	payload := r.field()
	if flags&flagPayload != 0 && r.err == nil {
		j.Payload = append(make([]byte, 0, len(payload)), payload...)
	}
	if r.err == nil && len(r.b) != 0 {
		r.fail("%d bytes after the payload", len(r.b))
	}
	if r.err != nil {
		return nil, r.err
	}
	return j, nil
}

// decodeIndex reads only what the index keys of a stored snapshot need,
// so that the writer can find a job's old index keys cheaply.
func decodeIndex(b []byte) (uuid.UUID, indexEntry, error) {
	r := reader{b: b}
	var j domain.Job
	flags := r.header(&j)
	var e indexEntry
	e.typ = string(j.Type)
	e.status, _ = statusCode(j.Status)
	e.createdAt = micros(time.Time{})
	if flags&flagCreatedAt != 0 {
		e.createdAt = r.varint()
	}
	if r.err != nil {
		return uuid.UUID{}, indexEntry{}, r.err
	}
	return j.ID, e, nil
}

// reader consumes a snapshot. The first error sticks and every later read
// returns zero values, so decode checks once at the end.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s", errCorrupt, fmt.Sprintf(format, args...))
	}
	r.b = nil
}

// header reads the version, ID, status, flags and type into j and returns
// the flags.
func (r *reader) header(j *domain.Job) byte {
	fixed := r.next(3 + 16)
	if r.err != nil {
		return 0
	}
	if fixed[0] != snapshotV1 {
		r.fail("unknown version %d", fixed[0])
		return 0
	}
	copy(j.ID[:], fixed[1:17])
	status, ok := statusOf(fixed[17])
	if !ok {
		r.fail("unknown status code %d", fixed[17])
		return 0
	}
	j.Status = status
	flags := fixed[18]
	if flags&^flagsKnown != 0 {
		r.fail("unknown flags %#x", flags)
		return 0
	}
	typ := r.field()
	if len(typ) > domain.MaxJobTypeLength {
		r.fail("job type of %d bytes", len(typ))
		return 0
	}
	j.Type = domain.JobType(typ)
	return flags
}

// next returns the next n bytes without copying them.
func (r *reader) next(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.fail("want %d bytes, have %d", n, len(r.b))
		return nil
	}
	out := r.b[:n:n]
	r.b = r.b[n:]
	return out
}

// field returns a uvarint-length-prefixed field without copying it.
func (r *reader) field() []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.fail("field of %d bytes, have %d", n, len(r.b))
		return nil
	}
	return r.next(int(n))
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("bad uvarint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail("bad varint")
		return 0
	}
	r.b = r.b[n:]
	return v
}
