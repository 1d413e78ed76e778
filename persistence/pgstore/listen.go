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

// NotificationKind says what a Notification announces.
type NotificationKind string

// The kinds of Notification.
const (
	// JobsAvailable: a statement inserted pending jobs or made jobs pending
	// again (a retry, a rescue). Notification.RunAt is when the earliest of
	// them may run if that is still in the future, else zero. One arrives
	// per statement, not per job.
	JobsAvailable NotificationKind = "jobs_available"
	// CancelRequested: a user canceled a running job. Notification.JobID and
	// Notification.Node name the job and the node that runs it; only that
	// node has anything to do.
	CancelRequested NotificationKind = "cancel_requested"
	// ListenerReady: Listen has just (re)subscribed. Notifications sent
	// before it, while no connection listened, are lost, so a node should
	// claim and call CancelRequests as if it had received both kinds.
	ListenerReady NotificationKind = "listener_ready"
)

// NotificationKinds lists every kind, for tests and exhaustive switches.
func NotificationKinds() []NotificationKind {
	return []NotificationKind{JobsAvailable, CancelRequested, ListenerReady}
}

// Notification is one wake-up delivered by Listen.
type Notification struct {
	// Kind says what happened.
	Kind NotificationKind
	// JobID is the canceled job, for CancelRequested.
	JobID uuid.UUID
	// Node is the node running the canceled job, for CancelRequested.
	Node string
	// RunAt is, for JobsAvailable, when the earliest new job may run, if
	// that is in the future; zero means now.
	RunAt time.Time
}

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

// Listen delivers the store's notifications to handler until ctx ends or
// the store closes. It holds one connection of its own, outside the pool,
// so a busy pool never delays a wake-up. When the connection fails it logs,
// waits (100ms doubling up to 5s) and reconnects, then delivers
// ListenerReady again, because notifications sent in between are lost.
//
// handler runs on Listen's goroutine, one notification at a time; a slow
// handler delays the next ones (PostgreSQL queues them) and should hand
// work to another goroutine. Listen returns nil when ctx ends and
// domain.ErrClosed when the store is, or gets, closed.
func (s *Store) Listen(ctx context.Context, handler func(Notification)) error {
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
		subscribed, err := s.listenOnce(ctx, handler)
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

// listenOnce connects, subscribes and delivers notifications until the
// connection fails or ctx ends. subscribed reports whether LISTEN took
// effect, so that Listen resets its backoff only after a good connection.
func (s *Store) listenOnce(ctx context.Context, handler func(Notification)) (subscribed bool, err error) {
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
	handler(Notification{Kind: ListenerReady})
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
		handler(note)
	}
}

// parseNotification decodes a payload of the troupe_jobs_notify trigger.
func parseNotification(payload string) (Notification, error) {
	var p notifyPayload
	if err := json.Unmarshal([]byte(payload), &p); err != nil {
		return Notification{}, err
	}
	switch kind := NotificationKind(p.Kind); kind {
	case JobsAvailable:
		return Notification{Kind: kind, RunAt: domain.Timestamp(p.RunAt)}, nil
	case CancelRequested:
		if p.JobID == uuid.Nil {
			return Notification{}, errors.New("cancel request without a job id")
		}
		return Notification{Kind: kind, JobID: p.JobID, Node: p.Node}, nil
	default:
		return Notification{}, fmt.Errorf("unknown kind %q", p.Kind)
	}
}
