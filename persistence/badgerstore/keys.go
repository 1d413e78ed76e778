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
const (
	prefixJob    byte = 'j'
	prefixStatus byte = 's'
	prefixType   byte = 't'
	prefixMeta   byte = 'm'
)

// orderLen is the length of the <createdAt><id> suffix that orders every
// index key.
const orderLen = 8 + 16

// layoutKey holds the version of this key layout, so that a later build
// can tell what it opens.
var layoutKey = []byte{prefixMeta, 'l', 'a', 'y', 'o', 'u', 't'}

// layoutV1 is the layout described above.
const layoutV1 byte = 1

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
	dst = binary.BigEndian.AppendUint64(dst, uint64(createdAt)^(1<<63))
	return append(dst, id[:]...)
}

// idOfIndexKey returns the job ID at the end of an index key.
func idOfIndexKey(key []byte) (uuid.UUID, bool) {
	if len(key) < orderLen {
		return uuid.UUID{}, false
	}
	return uuid.UUID(key[len(key)-16:]), true
}
