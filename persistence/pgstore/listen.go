package pgstore

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/troupe-go/troupe/domain"
)

// The kinds of the troupe_jobs_notify trigger's payloads.
const (
	// payloadJobsAvailable: a statement inserted pending jobs or made jobs
	// pending (a promotion, a retry, a rescue), or a queue was resumed; or,
	// with runAt, a statement inserted or made scheduled jobs, the earliest
	// due then. At most one of each arrives per statement, not per job.
	payloadJobsAvailable = "jobs_available"
	// payloadCancelRequested: a user canceled a running job.
	payloadCancelRequested = "cancel_requested"
)

// notifyPayload is the JSON that the troupe_jobs_notify trigger sends:
// {"kind":"jobs_available"}, {"kind":"jobs_available","runAt":"<RFC 3339,
// UTC, microseconds>"} or {"kind":"cancel_requested","jobId":"<uuid>",
// "node":"<node>"}.
type notifyPayload struct {
	Kind  string    `json:"kind"`
	JobID uuid.UUID `json:"jobId"`
	Node  string    `json:"node"`
	RunAt time.Time `json:"runAt"`
}

// Listener reconnection backoff bounds.
const (
	listenBackoffMin = 100 * time.Millisecond
	listenBackoffMax = 5 * time.Second
)

// notifyChannel returns the NOTIFY channel of a schema, as the
// troupe_jobs_notify trigger computes it: "troupe_jobs.<schema>", or
// "troupe_jobs.<md5 of schema>" when that would pass PostgreSQL's 63-byte
// limit on names. Per-schema channels keep stores that share a database from
// waking one another.
func notifyChannel(schema string) string {
	const prefix = "troupe_jobs."
	if len(prefix)+len(schema) <= maxIdentifierLength {
		return prefix + schema
	}
	sum := md5.Sum([]byte(schema))
	return prefix + hex.EncodeToString(sum[:])
}

// Channel returns the NOTIFY channel the store's triggers send on.
func (s *Store) Channel() string { return s.channel }

// Watch implements domain.SharedQueue: it delivers the store's notices to
// fn until ctx ends or the store closes. NoticeJobsAvailable arrives once
// per statement that inserted pending jobs or made jobs pending (a
// promotion, a retry, a rescue) and when a queue is resumed, with a zero
// RunAt: claim now; and once per statement that inserted or made scheduled
// jobs, with RunAt set to the earliest of their RunAts: promote them then
// (at once when it has passed). NoticeCancelRequested names the canceled
// job and the node that runs it. Watch holds one connection of its own, outside the pool, so a busy
// pool never delays a wake-up. When the connection fails it logs, waits
// (100ms doubling up to 5s) and reconnects, then delivers NoticeWatching
// again, because notices sent in between are lost.
//
// fn runs on Watch's goroutine, one notice at a time; a slow fn delays the
// next ones (PostgreSQL queues them) and should hand work to another
// goroutine. Watch returns nil when ctx ends and domain.ErrClosed when the
// store is, or gets, closed.
func (s *Store) Watch(ctx context.Context, fn func(domain.QueueNotice)) error {
	s.mu.Lock()
	if s.closed.Load() {
		s.mu.Unlock()
		return domain.ErrClosed
	}
	s.listeners.Add(1)
	s.mu.Unlock()
	defer s.listeners.Done()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	watcherDone := make(chan struct{})
	defer func() { <-watcherDone }()
	go func() {
		defer close(watcherDone)
		select {
		case <-s.done:
			cancel()
		case <-ctx.Done():
		}
	}()

	backoff := listenBackoffMin
	for {
		subscribed, err := s.watchOnce(ctx, fn)
		if ctx.Err() != nil {
			if s.closed.Load() {
				return domain.ErrClosed
			}
			return nil
		}
		if subscribed {
			backoff = listenBackoffMin
		}
		s.logger.Warn("listener lost its connection; reconnecting", "channel", s.channel, "err", err, "after", backoff)
		timer := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			timer.Stop()
		case <-timer.C:
		}
		backoff = min(2*backoff, listenBackoffMax)
	}
}

// watchOnce connects, subscribes and delivers notices until the connection
// fails or ctx ends. subscribed reports whether LISTEN took effect, so that
// Watch resets its backoff only after a good connection.
func (s *Store) watchOnce(ctx context.Context, fn func(domain.QueueNotice)) (subscribed bool, err error) {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return false, fmt.Errorf("listen: connect: %w", err)
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = conn.Close(closeCtx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{s.channel}.Sanitize()); err != nil {
		return false, fmt.Errorf("listen on %s: %w", s.channel, err)
	}
	fn(domain.QueueNotice{Kind: domain.NoticeWatching})
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return true, fmt.Errorf("listen on %s: %w", s.channel, err)
		}
		note, err := parseNotification(n.Payload)
		if err != nil {
			s.logger.Warn("ignoring a notification", "channel", s.channel, "payload", n.Payload, "err", err)
			continue
		}
		fn(note)
	}
}

// parseNotification decodes a payload of the troupe_jobs_notify trigger
// into the domain's notice.
func parseNotification(payload string) (domain.QueueNotice, error) {
	var p notifyPayload
	if err := json.Unmarshal([]byte(payload), &p); err != nil {
		return domain.QueueNotice{}, err
	}
	switch p.Kind {
	case payloadJobsAvailable:
		return domain.QueueNotice{Kind: domain.NoticeJobsAvailable, RunAt: domain.Timestamp(p.RunAt)}, nil
	case payloadCancelRequested:
		if p.JobID == uuid.Nil {
			return domain.QueueNotice{}, errors.New("cancel request without a job id")
		}
		return domain.QueueNotice{Kind: domain.NoticeCancelRequested, JobID: p.JobID, Node: p.Node}, nil
	default:
		return domain.QueueNotice{}, fmt.Errorf("unknown kind %q", p.Kind)
	}
}
