package badgerstore

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/troupe-go/troupe/domain"
)

// A request record (domain.RequestRecord) is stored under its scope and
// key (keys.go), with an expiry key beside it so that the sweep of
// expired records is a range scan. Its value:
//
//	version     1 byte  recordV1
//	done        1 byte  0 or 1
//	status      varint
//	expiresAt   varint µs since the Unix epoch
//	fingerprint uvarint length, bytes
//	body        uvarint length, bytes
const recordV1 byte = 1

func encodeRecord(rec domain.RequestRecord) []byte {
	b := make([]byte, 0, 2+2*binary.MaxVarintLen64+fieldLen(len(rec.Fingerprint))+fieldLen(len(rec.Body)))
	done := byte(0)
	if rec.Done {
		done = 1
	}
	b = append(b, recordV1, done)
	b = binary.AppendVarint(b, int64(rec.Status))
	b = binary.AppendVarint(b, micros(rec.ExpiresAt))
	b = appendField(b, rec.Fingerprint)
	b = binary.AppendUvarint(b, uint64(len(rec.Body)))
	return append(b, rec.Body...)
}

// decodeRecord reads the record of scope and key from v, copying what it
// keeps.
func decodeRecord(scope, key string, v []byte) (domain.RequestRecord, error) {
	rec := domain.RequestRecord{Scope: scope, Key: key}
	r := reader{b: v}
	head := r.next(2)
	if r.err == nil && (head[0] != recordV1 || head[1] > 1) {
		r.fail("request record version %d, done %d", head[0], head[1])
	}
	if r.err == nil {
		rec.Done = head[1] == 1
	}
	rec.Status = int(r.varint())
	rec.ExpiresAt = fromMicros(r.varint())
	rec.Fingerprint = string(r.field())
	body := r.field()
	if r.err == nil && len(r.b) != 0 {
		r.fail("%d bytes after the body", len(r.b))
	}
	if r.err != nil {
		return domain.RequestRecord{}, fmt.Errorf("request record %q of %q: %w", key, scope, r.err)
	}
	if len(body) > 0 {
		rec.Body = append([]byte(nil), body...)
	}
	return rec, nil
}

// writeRecord puts a record slot's final state into txn.
func writeRecord(txn *badger.Txn, slot *recordSlot) error {
	if !slot.dirty || (!slot.stored && !slot.exists) {
		return nil
	}
	scope, key := slot.rec.Scope, slot.rec.Key
	expiry := micros(slot.rec.ExpiresAt)
	if slot.stored && (!slot.exists || slot.storedExpiry != expiry) {
		if err := txn.Delete(expiryKey(slot.storedExpiry, scope, key)); err != nil {
			return err
		}
	}
	if !slot.exists {
		return txn.Delete(requestKey(scope, key))
	}
	if err := txn.Set(requestKey(scope, key), encodeRecord(slot.rec)); err != nil {
		return err
	}
	return txn.Set(expiryKey(expiry, scope, key), nil)
}

var _ domain.RequestLog = (*Store)(nil)

// BeginRequest implements domain.RequestLog. A new record is a new write:
// a nearly full disk refuses it as it refuses new jobs.
func (s *Store) BeginRequest(ctx context.Context, now time.Time, rec domain.RequestRecord) (*domain.RequestRecord, error) {
	req := newRequest(ctx, opBeginRequest, now, requestExtra{record: rec})
	if err := s.submit(ctx, req); err != nil {
		return nil, err
	}
	return req.extra.found, nil
}

// FinishRequest implements domain.RequestLog.
func (s *Store) FinishRequest(ctx context.Context, rec domain.RequestRecord) error {
	rec.Body = append([]byte(nil), rec.Body...)
	return s.submit(ctx, newRequest(ctx, opFinishRequest, time.Time{}, requestExtra{record: rec}))
}

// AbandonRequest implements domain.RequestLog.
func (s *Store) AbandonRequest(ctx context.Context, scope, key string) error {
	rec := domain.RequestRecord{Scope: scope, Key: key}
	return s.submit(ctx, newRequest(ctx, opAbandonRequest, time.Time{}, requestExtra{record: rec}))
}

// DeleteExpiredRequests implements domain.RequestLog. One call deletes at
// most Options.MaxBatch records, in one transaction; call again while it
// returns its limit.
func (s *Store) DeleteExpiredRequests(ctx context.Context, now time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, nil
	}
	req := newRequest(ctx, opDeleteExpiredRequests, now, requestExtra{limit: limit})
	if err := s.submit(ctx, req); err != nil {
		return 0, err
	}
	return req.extra.deleted, nil
}

// submit queues a request that carries no jobs and waits for its answer.
func (s *Store) submit(ctx context.Context, req *request) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", req.label(), err)
	}
	return s.latchDamage(req.label(), s.w.submit(ctx, req))
}
