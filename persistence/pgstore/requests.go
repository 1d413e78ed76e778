package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/troupe-go/troupe/domain"
)

// beginAttempts bounds BeginRequest's rounds: a round ends without an
// answer only when the record it collided with vanished (finished, expired
// and swept, or abandoned) before it could read it.
const beginAttempts = 10

// beginRequestSQL records a request in flight unless a live record has its
// scope and key: the insert takes a free key, the conflict branch replaces
// an expired record, and a live one is left alone and read by the outer
// SELECT. Two nodes racing on one key meet on the primary key: the second
// waits for the first to commit, then finds its record live.
const beginRequestSQL = `
WITH taken AS (
    INSERT INTO troupe_requests AS r (scope, key, fingerprint, done, status, body, expires_at)
    VALUES ($1, $2, $3, false, $4, NULL, $5)
    ON CONFLICT (scope, key) DO UPDATE
       SET fingerprint = EXCLUDED.fingerprint, done = false, status = EXCLUDED.status,
           body = NULL, expires_at = EXCLUDED.expires_at
     WHERE r.expires_at <= $6
 RETURNING true AS taken
)
SELECT true, '', false, 0, NULL::bytea, NULL::timestamptz FROM taken
UNION ALL
SELECT false, fingerprint, done, status, body, expires_at
  FROM troupe_requests
 WHERE scope = $1 AND key = $2 AND NOT EXISTS (SELECT 1 FROM taken)`

// BeginRequest implements domain.RequestLog.
func (s *Store) BeginRequest(ctx context.Context, now time.Time, rec domain.RequestRecord) (*domain.RequestRecord, error) {
	if s.closed.Load() {
		return nil, domain.ErrClosed
	}
	for range beginAttempts {
		var (
			taken, done bool
			existing    = domain.RequestRecord{Scope: rec.Scope, Key: rec.Key}
			expires     pgtype.Timestamptz
		)
		err := s.pool.QueryRow(ctx, beginRequestSQL, rec.Scope, rec.Key, rec.Fingerprint, rec.Status,
			domain.Timestamp(rec.ExpiresAt), domain.Timestamp(now)).
			Scan(&taken, &existing.Fingerprint, &done, &existing.Status, &existing.Body, &expires)
		if errors.Is(err, pgx.ErrNoRows) {
			// The statement's snapshot predates the record it collided
			// with, or that record is gone: look again.
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("begin request %q: %w", rec.Key, mapError(err))
		}
		if taken {
			return nil, nil
		}
		existing.Done = done
		existing.ExpiresAt = fromTimestamptz(expires)
		if len(existing.Body) == 0 {
			existing.Body = nil
		}
		return &existing, nil
	}
	return nil, fmt.Errorf("begin request %q: its record changed %d times while it was read", rec.Key, beginAttempts)
}

// FinishRequest implements domain.RequestLog.
func (s *Store) FinishRequest(ctx context.Context, rec domain.RequestRecord) error {
	if s.closed.Load() {
		return domain.ErrClosed
	}
	_, err := s.pool.Exec(ctx, `
INSERT INTO troupe_requests (scope, key, fingerprint, done, status, body, expires_at)
VALUES ($1, $2, $3, true, $4, $5, $6)
ON CONFLICT (scope, key) DO UPDATE
   SET fingerprint = EXCLUDED.fingerprint, done = true, status = EXCLUDED.status,
       body = EXCLUDED.body, expires_at = EXCLUDED.expires_at`,
		rec.Scope, rec.Key, rec.Fingerprint, rec.Status, rec.Body, domain.Timestamp(rec.ExpiresAt))
	if err != nil {
		return fmt.Errorf("finish request %q: %w", rec.Key, mapError(err))
	}
	return nil
}

// AbandonRequest implements domain.RequestLog.
func (s *Store) AbandonRequest(ctx context.Context, scope, key string) error {
	if s.closed.Load() {
		return domain.ErrClosed
	}
	_, err := s.pool.Exec(ctx, `DELETE FROM troupe_requests WHERE scope = $1 AND key = $2 AND NOT done`, scope, key)
	if err != nil {
		return fmt.Errorf("abandon request %q: %w", key, mapError(err))
	}
	return nil
}

// DeleteExpiredRequests implements domain.RequestLog. It walks the expiry
// index and skips records another node is deleting.
func (s *Store) DeleteExpiredRequests(ctx context.Context, now time.Time, limit int) (int, error) {
	if s.closed.Load() {
		return 0, domain.ErrClosed
	}
	if limit < 1 {
		return 0, nil
	}
	tag, err := s.pool.Exec(ctx, `
WITH expired AS (
    SELECT scope, key
      FROM troupe_requests
     WHERE expires_at <= $1
     ORDER BY expires_at
     LIMIT $2
       FOR UPDATE SKIP LOCKED
)
DELETE FROM troupe_requests AS r
 USING expired
 WHERE r.scope = expired.scope AND r.key = expired.key`, domain.Timestamp(now), limit)
	if err != nil {
		return 0, fmt.Errorf("delete expired requests: %w", mapError(err))
	}
	return int(tag.RowsAffected()), nil
}
