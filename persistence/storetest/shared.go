package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
)

// SharedStore is a store that several nodes share: the Store port, through
// which jobs are created and read, and the SharedQueue port, through which
// nodes run them.
type SharedStore interface {
	domain.Store
	domain.SharedQueue
}

// OpenNode opens one more handle on a backing store, as one more node of a
// cluster would: every handle it opens sees the same jobs. It registers the
// handle's cleanup with t.Cleanup.
type OpenNode func(t *testing.T) SharedStore

// nodes opens n handles, one a node.
func (open OpenNode) nodes(t *testing.T, n int) []SharedStore {
	handles := make([]SharedStore, n)
	for i := range handles {
		handles[i] = open(t)
	}
	return handles
}

// RunShared runs the conformance suite of domain.SharedQueue against the
// backing stores made by newQueue.
//
// newQueue must make a fresh, empty backing store on every call (for
// PostgreSQL, a schema of its own) and return what opens handles on it; a
// subtest opens one handle per node it plays, so that claims, leases,
// rescues, cancels and notices cross from one handle to another as they
// cross between processes. Every subtest runs in parallel with a backing
// store of its own.
//
// The store's clock decides readiness and leases, so the suite models time
// through what the port takes: jobs created in the past are ready, a RunAt
// an hour ahead is not, a lease of an hour is live for the whole test and a
// lease of a millisecond has expired by the time anything waits for it.
// Waits poll for a state with a deadline; none asserts on speed.
func RunShared(t *testing.T, newQueue func(t *testing.T) OpenNode) {
	t.Helper()
	areas := []struct {
		name string
		run  func(t *testing.T, newQueue func(t *testing.T) OpenNode)
	}{
		{"Claim", testSharedClaim},
		{"Renew", testSharedRenew},
		{"UpdateOwned", testSharedUpdateOwned},
		{"Rescue", testSharedRescue},
		{"Cancel", testSharedCancel},
		{"Watch", testSharedWatch},
		{"Queues", testSharedQueues},
		{"Schedule", testSharedSchedule},
		{"Unique", testSharedUnique},
		{"Heartbeat", testSharedHeartbeat},
		{"External", testSharedExternal},
		{"Flow", testSharedFlow},
	}
	for _, area := range areas {
		t.Run(area.name, func(t *testing.T) {
			t.Parallel()
			area.run(t, newQueue)
		})
	}
}

const (
	// liveLease outlasts every test: a job claimed with it stays owned.
	liveLease = time.Hour
	// shortLease runs out almost at once, so that a test can rescue its
	// job without waiting long.
	shortLease = time.Millisecond
	// sharedWaitTimeout bounds every wait for a state or a notice; it only
	// decides when a test gives up, never whether it passes.
	sharedWaitTimeout = 30 * time.Second
)

// queuedJob returns a pending job of type typ with maxAttempts, created at
// createdAt: in the past, so ready for any store's clock.
func queuedJob(t *testing.T, typ domain.JobType, maxAttempts int, createdAt time.Time) *domain.Job {
	t.Helper()
	j, err := domain.NewJob(typ, []byte(`{"n":1}`), maxAttempts, createdAt)
	require.NoError(t, err)
	return j
}

// later returns a time an hour ahead of every clock involved: a RunAt that
// is not ready during the test.
func later() time.Time { return domain.Timestamp(time.Now().Add(time.Hour)) }

// claimOne stores a job with maxAttempts and claims it on node with lease,
// through q.
func claimOne(t *testing.T, q SharedStore, maxAttempts int, node string, lease time.Duration) *domain.Job {
	t.Helper()
	require.NoError(t, q.Create(t.Context(), queuedJob(t, "noop", maxAttempts, at(0))))
	got, err := q.ClaimJobs(t.Context(), node, domain.ClaimRequest{Limit: 1, Lease: lease})
	require.NoError(t, err)
	require.Len(t, got, 1, "claim the job just created")
	return got[0]
}

// rescueAtLeast runs RescueExpired on q until it has taken back at least
// want jobs in all, and returns how many it took back.
func rescueAtLeast(t *testing.T, q domain.SharedQueue, want int) int {
	t.Helper()
	deadline := time.Now().Add(sharedWaitTimeout)
	total := 0
	for {
		n, err := q.RescueExpired(t.Context())
		require.NoError(t, err)
		total += n
		if total >= want {
			return total
		}
		if time.Now().After(deadline) {
			t.Fatalf("rescued %d jobs, want %d: their leases never expired", total, want)
		}
		time.Sleep(time.Millisecond)
	}
}

// requireOwned fails unless node still owns the running job id: renewing
// its lease reports nothing lost.
func requireOwned(t *testing.T, q domain.SharedQueue, node string, id uuid.UUID) {
	t.Helper()
	lost, err := q.RenewLeases(t.Context(), node, []uuid.UUID{id}, liveLease)
	require.NoError(t, err)
	require.Empty(t, lost, "node %s should own job %s", node, id)
}

// requireNotOwned fails unless node no longer owns job id: renewing its
// lease reports it lost.
func requireNotOwned(t *testing.T, q domain.SharedQueue, node string, id uuid.UUID) {
	t.Helper()
	lost, err := q.RenewLeases(t.Context(), node, []uuid.UUID{id}, liveLease)
	require.NoError(t, err)
	require.Equal(t, []uuid.UUID{id}, lost, "node %s should no longer own job %s", node, id)
}

// watch runs q.Watch until the test ends and returns what it delivers after
// the first NoticeWatching: from then on, nothing is missed.
func watch(t *testing.T, q domain.SharedQueue) <-chan domain.QueueNotice {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	notices := make(chan domain.QueueNotice, 1024)
	done := make(chan error, 1)
	go func() {
		done <- q.Watch(ctx, func(n domain.QueueNotice) {
			select {
			case notices <- n:
			case <-ctx.Done():
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done, "Watch returns nil when its context ends")
	})
	awaitNotice(t, notices, func(n domain.QueueNotice) bool { return n.Kind == domain.NoticeWatching })
	return notices
}

// awaitNotice returns the first notice that matches, skipping others.
func awaitNotice(t *testing.T, notices <-chan domain.QueueNotice, match func(domain.QueueNotice) bool) domain.QueueNotice {
	t.Helper()
	timeout := time.NewTimer(sharedWaitTimeout)
	defer timeout.Stop()
	for {
		select {
		case n := <-notices:
			if match(n) {
				return n
			}
		case <-timeout.C:
			t.Fatal("no matching notice arrived")
			return domain.QueueNotice{}
		}
	}
}
