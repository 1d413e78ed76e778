package memstore

import (
	"context"
	"time"

	"github.com/troupe-go/troupe/domain"
)

type requestID struct{ scope, key string }

// BeginRequest implements domain.RequestLog.
func (s *Store) BeginRequest(ctx context.Context, now time.Time, rec domain.RequestRecord) (*domain.RequestRecord, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	id := requestID{rec.Scope, rec.Key}
	if old, ok := s.requests[id]; ok && old.ExpiresAt.After(now) {
		old.Body = append([]byte(nil), old.Body...)
		return &old, nil
	}
	rec.Done = false
	rec.Body = nil
	s.requests[id] = rec
	return nil, nil
}

// FinishRequest implements domain.RequestLog.
func (s *Store) FinishRequest(ctx context.Context, rec domain.RequestRecord) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	rec.Done = true
	rec.Body = append([]byte(nil), rec.Body...)
	s.requests[requestID{rec.Scope, rec.Key}] = rec
	return nil
}

// AbandonRequest implements domain.RequestLog.
func (s *Store) AbandonRequest(ctx context.Context, scope, key string) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	id := requestID{scope, key}
	if rec, ok := s.requests[id]; ok && !rec.Done {
		delete(s.requests, id)
	}
	return nil
}

// DeleteExpiredRequests implements domain.RequestLog.
func (s *Store) DeleteExpiredRequests(ctx context.Context, now time.Time, limit int) (int, error) {
	if err := s.lock(ctx); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	n := 0
	for id, rec := range s.requests {
		if n >= limit {
			break
		}
		if !rec.ExpiresAt.After(now) {
			delete(s.requests, id)
			n++
		}
	}
	return n, nil
}
