package badgerstore

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"strconv"

	"github.com/dgraph-io/ristretto/v2/z"
)

// Badger's memtable log (DATA/NNNNN.mem) is the write-ahead log of the
// writes not yet in a table. Badger replays it at open and stops, without
// a word, at the first entry that does not check out, then truncates the
// file there: whatever followed is gone. scanMemLog reads a log the way
// the replay does, before Badger opens it, to measure what the replay
// would drop.
//
// The format (Badger v4, memtable.go and value.go): a 20-byte file header
// (encryption key ID and IV), then entries of
//
//	meta byte | user meta byte | uvarint key length | uvarint value length |
//	uvarint expiresAt | key | value | crc32 (Castagnoli, big endian) of all before
//
// A transaction's entries carry bitTxn and its commit timestamp in the key;
// a last entry with bitFinTxn commits it. Only committed transactions are
// replayed.
const (
	memLogHeaderSize = 20
	memLogBitTxn     = 1 << 6
	memLogBitFinTxn  = 1 << 7
	// memLogMaxKey is the longest key the replay accepts.
	memLogMaxKey = 1 << 16
	// memLogMaxEntryHeader is the longest entry header: two bytes and
	// three uvarints.
	memLogMaxEntryHeader = 22
	// memLogMinZeroTail is less than the zero-filled tail a log being
	// written always has: Badger preallocates twice the memtable size
	// (at least 1 MiB here) and moves to a new log once one memtable's
	// worth is written, plus at most one transaction (15% of it).
	memLogMinZeroTail = 64 << 10
)

var memLogCRC = crc32.MakeTable(crc32.Castagnoli)

// memLogScan is what scanMemLog found in one log.
type memLogScan struct {
	path string
	// size is the file's size. Badger preallocates the log (zero-filled)
	// and later truncates it to its valid end, never elsewhere.
	size int64
	// validEnd is where the replay stops: the end of the last committed
	// transaction.
	validEnd int64
	// writtenEnd is one past the last non-zero byte: how far anything was
	// written.
	writtenEnd int64
	// committed counts the entries the replay keeps (transaction markers
	// included).
	committed int
	// droppedEntries counts the complete entries after validEnd, which the
	// replay drops with the rest.
	droppedEntries int
	// torn: what follows validEnd is the tail of one transaction that a
	// crash interrupted while it was written, so never acknowledged.
	torn bool
	// why says, when something is dropped and not torn, why it is
	// corruption.
	why string
}

// dropped is how many written bytes the replay would discard.
func (s memLogScan) dropped() int64 { return max(s.writtenEnd-s.validEnd, 0) }

// damaged reports a drop that a crash cannot explain.
func (s memLogScan) damaged() bool { return s.dropped() > 0 && !s.torn }

// describe says what the replay drops, for logs and errors.
func (s memLogScan) describe() string {
	return fmt.Sprintf("memtable log %s: replay keeps %d entries up to byte %d and drops %d written bytes after it (%d complete entries and a partial one)",
		s.path, s.committed, s.validEnd, s.dropped(), s.droppedEntries)
}

// scanMemLog reads the log at path without changing it.
func scanMemLog(path string) (memLogScan, error) {
	// Mapped, not read: a log is preallocated to twice the memtable size.
	mf, err := z.OpenMmapFile(path, os.O_RDONLY, 0)
	if err != nil {
		return memLogScan{}, fmt.Errorf("read memtable log %s: %w", path, err)
	}
	defer mf.Close(-1)
	data := mf.Data
	s := memLogScan{path: path, size: int64(len(data))}
	s.writtenEnd = int64(len(data))
	for s.writtenEnd > 0 && data[s.writtenEnd-1] == 0 {
		s.writtenEnd--
	}
	if len(data) < memLogHeaderSize {
		// Badger refuses such a file itself; nothing is replayed.
		s.validEnd = int64(len(data))
		return s, nil
	}

	off := int64(memLogHeaderSize)
	s.validEnd = off
	var pending int      // entries of the open transaction
	var pendingTs uint64 // its commit timestamp, 0 if none is open
	var afterValid int   // complete entries read after validEnd
	var otherTxn bool    // a second transaction began after validEnd
	for {
		e, n, ok := decodeMemLogEntry(data[off:])
		if !ok || n == 0 || len(e.key) == 0 {
			break
		}
		switch {
		case e.meta&memLogBitTxn != 0:
			ts := keyTs(e.key)
			if pendingTs == 0 {
				pendingTs = ts
			}
			if ts != pendingTs {
				otherTxn = true
			}
			pending++
		case e.meta&memLogBitFinTxn != 0:
			ts, err := strconv.ParseUint(string(e.value), 10, 64)
			if err != nil || ts != pendingTs {
				otherTxn = true
				break
			}
			s.committed += pending + 1
			pending, pendingTs = 0, 0
			s.validEnd = off + int64(n)
			afterValid = -1
		default:
			if pendingTs != 0 {
				otherTxn = true
				break
			}
			s.committed++
			s.validEnd = off + int64(n)
			afterValid = -1
		}
		if otherTxn {
			break
		}
		afterValid++
		off += int64(n)
	}
	s.droppedEntries = max(afterValid, 0)

	if s.dropped() == 0 {
		return s, nil
	}
	// What a crash leaves: the file keeps its preallocated zero tail (a
	// crash never shortens it), what follows validEnd is one unfinished
	// transaction, and the entry the replay stopped at is the last thing
	// written.
	stop := off
	switch {
	case s.size-s.writtenEnd < memLogMinZeroTail:
		s.why = fmt.Sprintf("the file ends at byte %d inside an entry, but Badger preallocates it and only ever truncates it to a complete transaction: the file was cut short", s.size)
	case otherTxn:
		s.why = fmt.Sprintf("at byte %d an entry does not belong to the transaction before it", stop)
	case !lastWrittenEntry(data[stop:], s.writtenEnd-stop):
		s.why = fmt.Sprintf("the entry at byte %d does not check out and %d written bytes follow it", stop, s.writtenEnd-stop)
	default:
		s.torn = true
	}
	return s, nil
}

// memLogEntry is one decoded entry.
type memLogEntry struct {
	meta       byte
	key, value []byte
}

// decodeMemLogEntry decodes the entry at the start of b and returns its
// length, or false if it is incomplete, too long or fails its checksum.
func decodeMemLogEntry(b []byte) (memLogEntry, int, bool) {
	if len(b) < 2 {
		return memLogEntry{}, 0, false
	}
	e := memLogEntry{meta: b[0]}
	i := 2
	var lens [3]uint64
	for k := range lens {
		v, n := binary.Uvarint(b[i:])
		if n <= 0 {
			return memLogEntry{}, 0, false
		}
		lens[k] = v
		i += n
	}
	klen, vlen := lens[0], lens[1]
	if klen > memLogMaxKey || vlen > uint64(len(b)) {
		return memLogEntry{}, 0, false
	}
	end := uint64(i) + klen + vlen
	if end+crc32.Size > uint64(len(b)) {
		return memLogEntry{}, 0, false
	}
	if crc32.Checksum(b[:end], memLogCRC) != binary.BigEndian.Uint32(b[end:]) {
		return memLogEntry{}, 0, false
	}
	e.key = b[i : uint64(i)+klen]
	e.value = b[uint64(i)+klen : end]
	return e, int(end + crc32.Size), true
}

// lastWrittenEntry reports whether the bad entry at the start of b, of
// which written bytes are non-zero, can be the one a crash interrupted:
// nothing was written past the length its header declares.
func lastWrittenEntry(b []byte, written int64) bool {
	if written <= memLogMaxEntryHeader {
		return true
	}
	if len(b) < 2 {
		return true
	}
	i := 2
	var lens [3]uint64
	for k := range lens {
		v, n := binary.Uvarint(b[i:])
		if n <= 0 {
			return false
		}
		lens[k] = v
		i += n
	}
	if lens[0] > memLogMaxKey {
		return false
	}
	declared := uint64(i) + lens[0] + lens[1] + crc32.Size
	return uint64(written) <= declared
}

// keyTs is the version Badger appends to every key: the last 8 bytes,
// math.MaxUint64 minus the commit timestamp.
func keyTs(key []byte) uint64 {
	if len(key) < 8 {
		return 0
	}
	return ^binary.BigEndian.Uint64(key[len(key)-8:])
}
