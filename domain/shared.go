package domain

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
)

// ErrLeaseLost: the job no longer runs on this node (its lease expired and
// another node took it back), so this node's outcome must be dropped.
var ErrLeaseLost = errors.New("job lease lost: the job no longer runs on this node")

// SharedQueue is the port of a store that several nodes share, so that the
// queue lives in the store instead of in one process. Each attempt of a job
// runs on exactly one node: a node claims ready jobs, holds a lease on each
// while it runs, renews it, and records the outcome only while it still owns
// the job. Jobs whose lease expired (their node died) are rescued by any node.
// Times that decide readiness and leases come from the store's clock, so
// nodes agree whatever their own clocks say. A node is named by a non-empty
// string; an empty one is refused with ErrInvalid. The owner of a lease
// need not be a node: a job claimed for an external worker is leased to
// the claim's token (ExternalOwner), and that worker's heartbeats and
// outcomes, through whichever node they reach, act as that owner. storetest.RunShared
// checks every implementation against these promises.
type SharedQueue interface {
	// ClaimJobs marks up to r.Limit pending jobs running on node, counts
	// their attempt, leases them for r.Lease and returns them. It skips
	// paused queues and honours r.Types and r.Room. Within a queue jobs go
	// by priority, then RunAt, then ID; across the queues that have ready
	// jobs the claim takes turns, so a flood in one queue does not stall
	// the others.
	//
	// It enforces each queue's flow settings (QueueSettings) exactly,
	// against every concurrent claimer on every node: never more running
	// jobs than a limit, never more starts than a bucket holds, a key's
	// jobs in order when Ordered, round-robin across keys when Fair.
	ClaimJobs(ctx context.Context, node string, r ClaimRequest) ([]*Job, error)
	// FlowWaiting returns why each of the jobs ids that is pending, due
	// and held back by its queue's flow settings waits: the first reason
	// of WaitReasons that holds at the store's now. Jobs not held back
	// (or not pending, or missing) are absent from the map.
	FlowWaiting(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]WaitReason, error)
	// WaitingCounts counts the pending, due jobs held back by flow
	// settings, by queue and reason (as FlowWaiting gives it); reasons no
	// job waits for are absent.
	WaitingCounts(ctx context.Context) ([]WaitingCount, error)
	// FlowWakeAfter returns how long until the next token of a rate that
	// holds back due jobs (a queue's or a key's empty bucket), so that a
	// node claims again then instead of polling; 0 when no job waits for
	// a rate.
	FlowWakeAfter(ctx context.Context) (time.Duration, error)
	// RenewLeases extends the leases of node's running jobs and returns the
	// IDs among ids that node no longer owns.
	RenewLeases(ctx context.Context, node string, ids []uuid.UUID, lease time.Duration) (lost []uuid.UUID, err error)
	// UpdateOwned stores job only if it still runs on node; otherwise it
	// returns an error wrapping ErrLeaseLost (or ErrNotFound).
	UpdateOwned(ctx context.Context, node string, job *Job) error
	// RescueExpired returns running jobs whose lease expired to pending as
	// an interrupted attempt, or fails them when out of attempts; it
	// returns how many it took back. Safe to run on every node at once.
	RescueExpired(ctx context.Context) (int, error)
	// CancelJob cancels a pending job at once; for a running one it records
	// the request and tells the owning node through Watch, and returns the
	// job still running. Canceled stays canceled; completed or failed give
	// ErrNotCancelable.
	CancelJob(ctx context.Context, id uuid.UUID) (*Job, error)
	// CancelRequests returns the IDs of node's running jobs whose cancel
	// was requested, for a node that may have missed a notice.
	CancelRequests(ctx context.Context, node string) ([]uuid.UUID, error)
	// Watch calls fn with the store's notices until ctx ends, reconnecting
	// on failure; it blocks, and returns nil when ctx ends.
	Watch(ctx context.Context, fn func(QueueNotice)) error
	// Heartbeat extends the lease of owner's running job id to lease from
	// now (the store's clock) and, when progress is not nil, stores it on
	// the job, in one write. It returns the new end of the lease and
	// whether a cancel of the job was requested. A job that owner no
	// longer runs gives an error wrapping ErrLeaseLost (ErrNotFound if
	// the job is gone).
	Heartbeat(ctx context.Context, owner string, id uuid.UUID, lease time.Duration, progress *Progress) (LeaseState, error)
}

// LeaseState is what a Heartbeat tells the lease's owner.
type LeaseState struct {
	// ExpiresAt is when the lease now ends, by the store's clock.
	ExpiresAt time.Time
	// CancelRequested says a user canceled the job: the owner should stop
	// and report the attempt's end.
	CancelRequested bool
}

// ExternalOwnerPrefix starts the owner name of a lease held by an external
// worker, so that it never names a node.
const ExternalOwnerPrefix = "worker:"

// ExternalOwner is the lease owner of the jobs claimed with an external
// worker's lease token.
func ExternalOwner(token string) string { return ExternalOwnerPrefix + token }

// ClaimRequest says what a node asks ClaimJobs for.
type ClaimRequest struct {
	// Limit is the most jobs to claim; below 1 claims nothing.
	Limit int
	// Lease is how long the claimed jobs are leased.
	Lease time.Duration
	// Types, when given, restricts the claim to jobs of those types: a
	// node claims only what it has handlers for, so nodes may run
	// different handler sets.
	Types []JobType
	// Queues, when given, restricts the claim to jobs of those queues (an
	// external worker's choice).
	Queues []string
	// Room caps, per queue, how many of its jobs this claim may take (a
	// queue's per-node limit minus what runs there now); a queue at 0 is
	// skipped. Queues not named are capped only by Limit.
	Room map[string]int
}

// QueueNoticeKind says what a QueueNotice announces.
type QueueNoticeKind int

// The notices of a SharedQueue.
const (
	// NoticeJobsAvailable: jobs became pending, ready now or at RunAt.
	NoticeJobsAvailable QueueNoticeKind = iota + 1
	// NoticeCancelRequested: a user canceled JobID, running on Node.
	NoticeCancelRequested
	// NoticeWatching: the watch (re)connected; notices sent while it was
	// away are lost, so the node should claim and check cancels now.
	NoticeWatching
)

// QueueNotice is one notice of a SharedQueue.
type QueueNotice struct {
	Kind  QueueNoticeKind
	JobID uuid.UUID
	Node  string
	// RunAt, for NoticeJobsAvailable, is when the jobs become ready; zero
	// means now.
	RunAt time.Time
}
