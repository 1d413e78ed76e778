package badgerstore

import (
	"encoding/binary"

	"github.com/google/uuid"
)

// The key space. Each kind of key starts with its own byte, so that every
// kind is one contiguous range:
//
//	j <id:16>                                  → snapshot (see codec.go)
//	s <status:1> <createdAt:8> <id:16>         → the job's type
//	t <len:uvarint> <type> <createdAt:8> <id:16> → nothing
//	r <runAt:8> <id:16>                        → nothing, for scheduled jobs only
//	u <unique key>                             → ID of the job that took the key last
//	c <status:1> <queue>                       → how many jobs of the queue have the
//	                                             status (uvarint); unfinished statuses only
//	p <queue>                                  → nothing: the queue is paused
//	q <queue>                                  → the queue's flow settings (see
//	                                             flow.go); absent when it has none
//	i <len:uvarint> <scope> <key>              → request record (see requests.go)
//	e <expiresAt:8> <len:uvarint> <scope> <key> → nothing: when that record expires
//	f <status:1> <finishedAt:8> <id:16>        → FinishedAt+UniqueFor (8 bytes) if the
//	                                             job has a unique key, else nothing;
//	                                             terminal statuses only
//	h <name>                                   → schedule (see schedules.go)
//	m layout                                   → layout version, 1 byte
//
// createdAt is the creation time in µs, big-endian with the sign bit
// flipped, so that byte order is time order and a range scan over one
// status (or one type) yields jobs oldest first, ties broken by ID: the
// order of domain.Compare. Listing by status reads only keys; the status key's
// value holds the type so that status plus type needs no snapshot either.
// The type index is written when a job is created and touched again only
// if its type or creation time changes, so it costs no write on a
// transition. The length prefix keeps the range of type "send" apart from
// that of "send_email".
//
// The scheduled index (r) holds a key per scheduled job in RunAt order, so
// that promoting due jobs and finding the next RunAt are range scans,
// however many jobs wait: nothing about them is held in memory. Its time
// is encoded as createdAt's.
//
// The queue counts (c) are kept by the writer in the transaction that
// changes the jobs, one key per queue and unfinished status, rewritten
// once per group commit for each count the batch changed. Queues then
// reads a few keys whatever the backlog, and Open reads them without a
// scan; the alternative, a (queue, status) index walked keys-only, costs
// two more index writes on every transition and a walk of the whole
// backlog on every call. Verify recounts them from the snapshots.
//
// The finished index (f) holds a key per finished job in FinishedAt order
// within its status, so that DeleteFinished is a range scan from the
// start of the status's range up to its cutoff, however many jobs are
// stored. Its value, the end of the job's hold on its unique key, lets
// the scan skip held jobs without reading their snapshots.
const (
	prefixJob       byte = 'j'
	prefixStatus    byte = 's'
	prefixType      byte = 't'
	prefixScheduled byte = 'r'
	prefixUnique    byte = 'u'
	prefixCount     byte = 'c'
	prefixPaused    byte = 'p'
	prefixSettings  byte = 'q'
	prefixRequest   byte = 'i'
	prefixExpiry    byte = 'e'
	prefixFinished  byte = 'f'
	prefixSchedule  byte = 'h'
	prefixMeta      byte = 'm'
)

// orderLen is the length of the <createdAt><id> suffix that orders every
// index key.
const orderLen = 8 + 16

// layoutKey holds the version of this key layout, so that a later build
// can tell what it opens.
var layoutKey = []byte{prefixMeta, 'l', 'a', 'y', 'o', 'u', 't'}

// The key layouts. Version 1 had only the j, s, t and m keys: a version 1
// store is a version 2 store with no scheduled job, no unique key, no
// paused queue, no request record and every job in the default queue, so
// Open upgrades it by writing its queue counts (upgradeLayout). An older
// build refuses version 2, whose snapshots it could not read.
//
// Version 3 added the finished index, schedules and Job.Schedule: a
// version 2 store is a version 3 store with no schedule and no finished
// key, so Open upgrades it by writing the finished key of every finished
// job (upgradeFinished). An older build refuses version 3, whose
// snapshots may carry a flag it does not know.
//
// Version 4 added Job.Result and Job.Progress to snapshots, and no key: a
// version 3 store is a version 4 store, so Open upgrades it by recording
// the version, which keeps an older build from opening a store whose
// snapshots carry flags it would take for damage.
//
// Version 5 added Job.Key to snapshots and the queue settings keys (q): a
// version 4 store is a version 5 store with no keyed job and no settings,
// so Open upgrades it by recording the version. An older build would take
// a keyed job's flag for damage and, worse, run a queue without the
// limits it was given, so it must refuse the store.
const (
	layoutV1 byte = 1
	layoutV2 byte = 2
	layoutV3 byte = 3
	layoutV4 byte = 4
	layoutV5 byte = 5

	// layoutCurrent is the layout this build writes.
	layoutCurrent = layoutV5
)

// knownLayout reports whether this build reads (or upgrades) layout v.
func knownLayout(v []byte) bool {
	return len(v) == 1 && v[0] >= layoutV1 && v[0] <= layoutCurrent
}

// appendJobKey appends the key of a job's snapshot.
func appendJobKey(dst []byte, id uuid.UUID) []byte {
	dst = append(dst, prefixJob)
	return append(dst, id[:]...)
}

// jobKey returns the key of a job's snapshot.
func jobKey(id uuid.UUID) []byte { return appendJobKey(make([]byte, 0, 17), id) }

// appendStatusKey appends the status index key of a job.
func appendStatusKey(dst []byte, id uuid.UUID, e indexEntry) []byte {
	dst = append(dst, prefixStatus, e.status)
	return appendOrder(dst, id, e.createdAt)
}

// statusPrefix returns the prefix of every status key of one status.
func statusPrefix(code byte) []byte { return []byte{prefixStatus, code} }

// appendTypeKey appends the type index key of a job.
func appendTypeKey(dst []byte, id uuid.UUID, e indexEntry) []byte {
	dst = appendTypePrefix(dst, e.typ)
	return appendOrder(dst, id, e.createdAt)
}

// appendTypePrefix appends the prefix of every type key of one type.
func appendTypePrefix(dst []byte, typ string) []byte {
	dst = append(dst, prefixType)
	dst = binary.AppendUvarint(dst, uint64(len(typ)))
	return append(dst, typ...)
}

// appendOrder appends the <createdAt><id> suffix.
func appendOrder(dst []byte, id uuid.UUID, createdAt int64) []byte {
	dst = appendTime(dst, createdAt)
	return append(dst, id[:]...)
}

// idOfIndexKey returns the job ID at the end of an index key.
func idOfIndexKey(key []byte) (uuid.UUID, bool) {
	if len(key) < orderLen {
		return uuid.UUID{}, false
	}
	return uuid.UUID(key[len(key)-16:]), true
}

// appendTime appends a time in µs so that byte order is time order.
func appendTime(dst []byte, us int64) []byte {
	return binary.BigEndian.AppendUint64(dst, uint64(us)^(1<<63))
}

// timeOfKey reads a time that appendTime wrote at the start of b.
func timeOfKey(b []byte) int64 { return int64(binary.BigEndian.Uint64(b) ^ (1 << 63)) }

// appendScheduledKey appends the scheduled index key of a job due at runAt.
func appendScheduledKey(dst []byte, id uuid.UUID, runAt int64) []byte {
	dst = append(dst, prefixScheduled)
	dst = appendTime(dst, runAt)
	return append(dst, id[:]...)
}

// scheduledKeyLen is the length of a scheduled index key.
const scheduledKeyLen = 1 + 8 + 16

// uniqueKey returns the key of a unique key's entry.
func uniqueKey(key string) []byte {
	return append([]byte{prefixUnique}, key...)
}

// countKey names one queue count.
type countKey struct {
	status byte
	queue  string
}

func (k countKey) key() []byte {
	return append([]byte{prefixCount, k.status}, k.queue...)
}

// pausedKey returns the key that marks a queue paused.
func pausedKey(queue string) []byte {
	return append([]byte{prefixPaused}, queue...)
}

// settingsKey returns the key of a queue's flow settings.
func settingsKey(queue string) []byte {
	return append([]byte{prefixSettings}, queue...)
}

// appendRequestID appends the part of a request record's key after its
// prefix: the scope, length first so that scope "a" with key "bc" differs
// from scope "ab" with key "c", and the key.
func appendRequestID(dst []byte, scope, key string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(scope)))
	dst = append(dst, scope...)
	return append(dst, key...)
}

// requestKey returns the key of the request record of scope and key.
func requestKey(scope, key string) []byte {
	return appendRequestID([]byte{prefixRequest}, scope, key)
}

// expiryKey returns the expiry index key of a request record.
func expiryKey(expiresAt int64, scope, key string) []byte {
	dst := appendTime([]byte{prefixExpiry}, expiresAt)
	return appendRequestID(dst, scope, key)
}

// splitRequestID reads the scope and key of a request record's key
// without its prefix.
func splitRequestID(b []byte) (scope, key string, ok bool) {
	n, w := binary.Uvarint(b)
	if w <= 0 || n > uint64(len(b)-w) {
		return "", "", false
	}
	return string(b[w : w+int(n)]), string(b[w+int(n):]), true
}

// appendFinishedKey appends the finished index key of a job.
func appendFinishedKey(dst []byte, id uuid.UUID, e indexEntry) []byte {
	dst = append(dst, prefixFinished, e.status)
	dst = appendTime(dst, e.finishedAt)
	return append(dst, id[:]...)
}

// finishedKeyLen is the length of a finished index key.
const finishedKeyLen = 1 + 1 + 8 + 16

// finishedValue returns the value of a job's finished key: when its hold
// on its unique key ends, or nothing when it has no key.
func finishedValue(dst []byte, e indexEntry) []byte {
	if e.unique == "" {
		return dst
	}
	return appendTime(dst, e.holdUntil)
}

// scheduleKey returns the key of a schedule.
func scheduleKey(name string) []byte {
	return append([]byte{prefixSchedule}, name...)
}
