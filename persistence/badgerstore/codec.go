package badgerstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/google/uuid"

	"github.com/troupe-go/troupe/domain"
)

// A snapshot is stored in a compact binary form, because encoding sits on
// the hot path: every transition of every job is one snapshot. Version 2:
//
//	version   1 byte   snapshotV2
//	id        16 bytes
//	status    1 byte   statusCode
//	flags     2 bytes  big-endian: which optional fields follow (flag* below)
//	type      uvarint length, bytes
//	queue     uvarint length, bytes, if flagQueue (else "default")
//	uniqueKey uvarint length, bytes, if flagUniqueKey
//	key       uvarint length, bytes, if flagKey
//	times     varint µs since the Unix epoch, for each time whose flag is set,
//	          in the order CreatedAt, UpdatedAt, RunAt, StartedAt, FinishedAt
//	attempts  varint
//	max       varint   MaxAttempts
//	priority  varint, if flagPriority (else 5)
//	uniqueFor varint ns, if flagUniqueFor
//	timeout   varint ns, if flagTimeout
//	schedule  uvarint length, bytes, if flagSchedule
//	result    uvarint length, bytes, if flagResult
//	progress  if flagProgress: percent (8 bytes, big-endian IEEE 754 bits),
//	          message (uvarint length, bytes), updatedAt (varint µs, or
//	          the zero time's value)
//	lastError uvarint length, bytes
//	payload   uvarint length, bytes
//
// What the index keys need (status, type, queue, unique key, CreatedAt,
// RunAt) comes first, so that decodeIndex reads a prefix and allocates
// nothing for the payload; the flow key sits in that prefix too, so that
// listing by key reads no more of a snapshot than listing by queue. Fields at their default take no bytes, so a job
// in the default queue costs what it did in version 1.
//
// Version 1, written before queues and scheduling, is version 2 with one
// flags byte and none of the optional fields: its jobs are in the default
// queue at the default priority, and a zero RunAt (a version 1 job due at
// once) reads as CreatedAt. decode keeps reading it; encode writes version 2.
//
// Fields added since (Schedule; Result and Progress; Key) take a flag of
// their own: a snapshot written before reads them as zero, with no new
// version, and a job without them costs not a byte more. An older build
// refuses the flag as unknown, which is why the key layout that came with
// each (layoutV3, layoutV4, layoutV5) is one that build refuses to open.
// Job.WaitingFor is never stored: the runtime computes it as it reads.
const (
	snapshotV1 byte = 1
	snapshotV2 byte = 2
)

// The bits of the flags. A zero time has no flag and no bytes, which
// keeps a pending job small and tells a zero time from the Unix epoch.
const (
	flagPayload    uint16 = 1 << iota // Payload is not nil (it may be empty)
	flagCreatedAt                     // CreatedAt is set
	flagUpdatedAt                     // UpdatedAt is set
	flagRunAt                         // RunAt is set
	flagStartedAt                     // StartedAt is set
	flagFinishedAt                    // FinishedAt is set
	flagQueue                         // Queue is not "default"
	flagUniqueKey                     // UniqueKey is set
	flagPriority                      // Priority is not 5
	flagUniqueFor                     // UniqueFor is set
	flagTimeout                       // Timeout is set
	flagSchedule                      // Schedule is set
	flagResult                        // Result is not nil (it may be empty)
	flagProgress                      // Progress is not nil
	flagKey                           // Key is set

	flagsKnownV1 = flagFinishedAt<<1 - 1
	flagsKnown   = flagKey<<1 - 1
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
	case domain.StatusScheduled:
		return 6, true
	}
	return 0, false
}

// codeScheduled is statusCode(domain.StatusScheduled), which the
// scheduled index is kept for; codeCanceled is the status a cancel
// writes, which DurabilityFull syncs.
const (
	codeScheduled byte = 6
	codeCanceled  byte = 5
)

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
	case 6:
		return domain.StatusScheduled, true
	}
	return "", false
}

// indexEntry is what a job's index keys (and the writer's other
// bookkeeping: queue counts, unique keys) are made of.
type indexEntry struct {
	status    byte
	createdAt int64 // µs since the Unix epoch; see micros
	typ       string
	queue     string
	// runAt orders the scheduled index; kept for every status.
	runAt int64
	// unique is the job's unique key, or empty.
	unique string
	// finishedAt orders the finished index (µs, see micros), and
	// holdUntil (FinishedAt + UniqueFor, µs) is the finished key's value
	// for a job with a unique key. Both are kept for every status; a
	// remembered entry (writer.unfinished), never finished, has neither.
	finishedAt int64
	holdUntil  int64
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
	if j.Progress != nil && math.IsNaN(j.Progress.Percent) {
		// domain.NewProgress never makes one; decode refuses it as damage.
		return nil, fmt.Errorf("%w: job %s: progress percent is NaN", domain.ErrInvalid, j.ID)
	}
	times := [...]struct {
		flag uint16
		t    time.Time
	}{
		{flagCreatedAt, j.CreatedAt},
		{flagUpdatedAt, j.UpdatedAt},
		{flagRunAt, j.RunAt},
		{flagStartedAt, j.StartedAt},
		{flagFinishedAt, j.FinishedAt},
	}
	var flags uint16
	if j.Payload != nil {
		flags |= flagPayload
	}
	for _, tf := range times {
		if !tf.t.IsZero() {
			flags |= tf.flag
		}
	}
	if j.Queue != domain.DefaultQueue {
		flags |= flagQueue
	}
	if j.UniqueKey != "" {
		flags |= flagUniqueKey
	}
	if j.Priority != domain.DefaultPriority {
		flags |= flagPriority
	}
	if j.UniqueFor != 0 {
		flags |= flagUniqueFor
	}
	if j.Timeout != 0 {
		flags |= flagTimeout
	}
	if j.Schedule != "" {
		flags |= flagSchedule
	}
	if j.Result != nil {
		flags |= flagResult
	}
	if j.Progress != nil {
		flags |= flagProgress
	}
	if j.Key != "" {
		flags |= flagKey
	}
	if dst == nil {
		// One allocation of exactly the right size: values stay in memory
		// until their batch commits, so slack would cost at every step.
		size := 4 + 16 + varintLen(int64(j.Attempts)) + varintLen(int64(j.MaxAttempts)) +
			fieldLen(len(j.Type)) + fieldLen(len(j.LastError)) + fieldLen(len(j.Payload))
		for _, tf := range times {
			if flags&tf.flag != 0 {
				size += varintLen(micros(tf.t))
			}
		}
		if flags&flagQueue != 0 {
			size += fieldLen(len(j.Queue))
		}
		if flags&flagUniqueKey != 0 {
			size += fieldLen(len(j.UniqueKey))
		}
		if flags&flagKey != 0 {
			size += fieldLen(len(j.Key))
		}
		if flags&flagPriority != 0 {
			size += varintLen(int64(j.Priority))
		}
		if flags&flagUniqueFor != 0 {
			size += varintLen(int64(j.UniqueFor))
		}
		if flags&flagTimeout != 0 {
			size += varintLen(int64(j.Timeout))
		}
		if flags&flagSchedule != 0 {
			size += fieldLen(len(j.Schedule))
		}
		if flags&flagResult != 0 {
			size += fieldLen(len(j.Result))
		}
		if flags&flagProgress != 0 {
			size += 8 + fieldLen(len(j.Progress.Message)) + varintLen(micros(j.Progress.UpdatedAt))
		}
		dst = make([]byte, 0, size)
	}
	dst = append(dst, snapshotV2)
	dst = append(dst, j.ID[:]...)
	dst = append(dst, code)
	dst = binary.BigEndian.AppendUint16(dst, flags)
	dst = appendField(dst, string(j.Type))
	if flags&flagQueue != 0 {
		dst = appendField(dst, j.Queue)
	}
	if flags&flagUniqueKey != 0 {
		dst = appendField(dst, j.UniqueKey)
	}
	if flags&flagKey != 0 {
		dst = appendField(dst, j.Key)
	}
	for _, tf := range times {
		if flags&tf.flag != 0 {
			dst = binary.AppendVarint(dst, micros(tf.t))
		}
	}
	dst = binary.AppendVarint(dst, int64(j.Attempts))
	dst = binary.AppendVarint(dst, int64(j.MaxAttempts))
	if flags&flagPriority != 0 {
		dst = binary.AppendVarint(dst, int64(j.Priority))
	}
	if flags&flagUniqueFor != 0 {
		dst = binary.AppendVarint(dst, int64(j.UniqueFor))
	}
	if flags&flagTimeout != 0 {
		dst = binary.AppendVarint(dst, int64(j.Timeout))
	}
	if flags&flagSchedule != 0 {
		dst = appendField(dst, j.Schedule)
	}
	if flags&flagResult != 0 {
		dst = binary.AppendUvarint(dst, uint64(len(j.Result)))
		dst = append(dst, j.Result...)
	}
	if flags&flagProgress != 0 {
		dst = binary.BigEndian.AppendUint64(dst, math.Float64bits(j.Progress.Percent))
		dst = appendField(dst, j.Progress.Message)
		dst = binary.AppendVarint(dst, micros(j.Progress.UpdatedAt))
	}
	dst = appendField(dst, j.LastError)
	dst = binary.AppendUvarint(dst, uint64(len(j.Payload)))
	dst = append(dst, j.Payload...)
	return dst, nil
}

// appendField appends a uvarint-length-prefixed string.
func appendField(dst []byte, v string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(v)))
	return append(dst, v...)
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
	return indexEntry{status: code, createdAt: micros(j.CreatedAt), typ: string(j.Type),
		queue: j.Queue, runAt: micros(j.RunAt), unique: j.UniqueKey,
		finishedAt: micros(j.FinishedAt), holdUntil: holdMicros(micros(j.FinishedAt), j.UniqueFor)}
}

// holdMicros is FinishedAt + UniqueFor in µs, from FinishedAt as stored,
// so that an entry read back from a snapshot agrees with the one written.
func holdMicros(finishedAt int64, uniqueFor time.Duration) int64 {
	return micros(fromMicros(finishedAt).Add(uniqueFor))
}

// decode reads a snapshot of either version. It never panics, whatever b
// holds, and copies everything it keeps, so b may be reused once it
// returns.
func decode(b []byte) (*domain.Job, error) {
	r := reader{b: b}
	j := &domain.Job{Queue: domain.DefaultQueue, Priority: domain.DefaultPriority}
	flags := r.header(j)
	if len(r.key) > 0 {
		j.Key = string(r.key)
	}
	times := [...]struct {
		flag uint16
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
	if flags&flagPriority != 0 {
		j.Priority = int(r.varint())
	}
	if flags&flagUniqueFor != 0 {
		j.UniqueFor = time.Duration(r.varint())
	}
	if flags&flagTimeout != 0 {
		j.Timeout = time.Duration(r.varint())
	}
	if flags&flagSchedule != 0 {
		j.Schedule = string(r.field())
	}
	if flags&flagResult != 0 {
		result := r.field()
		if r.err == nil {
			j.Result = append(make([]byte, 0, len(result)), result...)
		}
	}
	if flags&flagProgress != 0 {
		var p domain.Progress
		if bits := r.next(8); r.err == nil {
			p.Percent = math.Float64frombits(binary.BigEndian.Uint64(bits))
			if math.IsNaN(p.Percent) {
				r.fail("progress percent is NaN")
			}
		}
		p.Message = string(r.field())
		p.UpdatedAt = fromMicros(r.varint())
		if r.err == nil {
			j.Progress = &p
		}
	}
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
	if r.version == snapshotV1 && j.RunAt.IsZero() {
		// Version 1 cleared RunAt of a job due at once; every job now has one.
		j.RunAt = j.CreatedAt
	}
	return j, nil
}

// decodeIndex reads only what the index entry of a stored snapshot needs,
// so that the writer can find a job's old index keys cheaply.
func decodeIndex(b []byte) (uuid.UUID, indexEntry, error) {
	r := reader{b: b}
	j := domain.Job{Queue: domain.DefaultQueue}
	flags := r.header(&j)
	var e indexEntry
	e.typ, e.queue, e.unique = string(j.Type), j.Queue, j.UniqueKey
	e.status, _ = statusCode(j.Status)
	e.createdAt = micros(time.Time{})
	if flags&flagCreatedAt != 0 {
		e.createdAt = r.varint()
	}
	if flags&flagUpdatedAt != 0 {
		r.varint()
	}
	e.runAt = e.createdAt
	switch {
	case flags&flagRunAt != 0:
		e.runAt = r.varint()
	case r.version != snapshotV1:
		e.runAt = micros(time.Time{})
	}
	if flags&flagStartedAt != 0 {
		r.varint()
	}
	e.finishedAt = micros(time.Time{})
	if flags&flagFinishedAt != 0 {
		e.finishedAt = r.varint()
	}
	// The hold, for the finished index: past the counters to UniqueFor.
	r.varint() // Attempts
	r.varint() // MaxAttempts
	if flags&flagPriority != 0 {
		r.varint()
	}
	var uniqueFor int64
	if flags&flagUniqueFor != 0 {
		uniqueFor = r.varint()
	}
	e.holdUntil = holdMicros(e.finishedAt, time.Duration(uniqueFor))
	if r.err != nil {
		return uuid.UUID{}, indexEntry{}, r.err
	}
	return j.ID, e, nil
}

// headerMatches reports whether a snapshot's job is in queue and has
// key ("" matches any), reading its header only: what a listing by queue
// or by key checks for each candidate the index gives it.
func headerMatches(b []byte, queue, key string) (bool, error) {
	r := reader{b: b}
	j := domain.Job{Queue: domain.DefaultQueue}
	r.header(&j)
	if r.err != nil {
		return false, r.err
	}
	return (queue == "" || j.Queue == queue) && (key == "" || string(r.key) == key), nil
}

// reader consumes a snapshot. The first error sticks and every later read
// returns zero values, so decode checks once at the end.
type reader struct {
	b       []byte
	err     error
	version byte // set by header
	// key is the job's flow key as header found it, not copied: decode
	// copies it, decodeIndex needs none of it.
	key []byte
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s", errCorrupt, fmt.Sprintf(format, args...))
	}
	r.b = nil
}

// header reads the version, ID, status, flags, type, queue and unique key
// into j, and the flow key into r.key, and returns the flags.
func (r *reader) header(j *domain.Job) uint16 {
	fixed := r.next(3 + 16)
	if r.err != nil {
		return 0
	}
	r.version = fixed[0]
	var flags, known uint16
	switch r.version {
	case snapshotV1:
		flags, known = uint16(fixed[18]), flagsKnownV1
	case snapshotV2:
		more := r.next(1)
		if r.err != nil {
			return 0
		}
		flags, known = uint16(fixed[18])<<8|uint16(more[0]), flagsKnown
	default:
		r.fail("unknown version %d", fixed[0])
		return 0
	}
	copy(j.ID[:], fixed[1:17])
	status, ok := statusOf(fixed[17])
	if !ok || r.version == snapshotV1 && status == domain.StatusScheduled {
		r.fail("unknown status code %d", fixed[17])
		return 0
	}
	j.Status = status
	if flags&^known != 0 {
		r.fail("unknown flags %#x", flags)
		return 0
	}
	typ := r.field()
	if len(typ) > domain.MaxJobTypeLength {
		r.fail("job type of %d bytes", len(typ))
		return 0
	}
	j.Type = domain.JobType(typ)
	if flags&flagQueue != 0 {
		j.Queue = string(r.field())
	}
	if flags&flagUniqueKey != 0 {
		j.UniqueKey = string(r.field())
	}
	if flags&flagKey != 0 {
		r.key = r.field()
		if r.err == nil && len(r.key) == 0 {
			// encode sets the flag for a key only: an empty one is damage.
			r.fail("empty key")
		}
	}
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
