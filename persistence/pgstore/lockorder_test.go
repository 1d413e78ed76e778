package pgstore

import (
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
)

// TestRenewalsAndOutcomesDoNotDeadlock runs, many times over, what one
// node does at once after an outage: it renews the leases of its running
// jobs while the outcomes of many of the same jobs are written in one
// statement. Both lock many rows; taken in different orders they deadlock
// (40P01), and PostgreSQL aborts one of them.
func TestRenewalsAndOutcomesDoNotDeadlock(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	const (
		node   = "n1"
		jobs   = 400
		rounds = 60
	)
	created := make([]*domain.Job, jobs)
	for i := range created {
		created[i] = newJob(t, "noop", 3, past(i))
	}
	require.NoError(t, s.Create(t.Context(), created...))
	claimed, err := s.ClaimJobs(t.Context(), node, domain.ClaimRequest{Limit: jobs, Lease: time.Hour})
	require.NoError(t, err)
	require.Len(t, claimed, jobs)

	rnd := rand.New(rand.NewPCG(1, 2))
	// pick returns most of the jobs in random order, as a node's set of
	// running jobs (a map) hands them over.
	pick := func() []*domain.Job {
		perm := rnd.Perm(jobs)
		out := make([]*domain.Job, 0, jobs)
		for _, i := range perm[:jobs*3/4] {
			out = append(out, claimed[i])
		}
		return out
	}
	for range rounds {
		renew, outcomes := pick(), pick()
		renewIDs := ids(renew)
		updates := make([]*ownedUpdate, len(outcomes))
		for i, j := range outcomes {
			// Still running: the jobs stay this node's, round after round.
			next := j.Clone()
			next.UpdatedAt = domain.Timestamp(time.Now())
			updates[i] = &ownedUpdate{node: node, job: next, done: make(chan error, 1)}
		}
		var (
			wg       sync.WaitGroup
			start    = make(chan struct{})
			renewErr error
			lost     []uuid.UUID
			errs     map[uuid.UUID]error
		)
		wg.Go(func() {
			<-start
			lost, renewErr = s.RenewLeases(t.Context(), node, renewIDs, time.Hour)
		})
		wg.Go(func() {
			<-start
			errs = s.writeOwnedOfNode(t.Context(), node, updates)
		})
		close(start)
		wg.Wait()
		requireNoDeadlock(t, renewErr)
		require.NoError(t, renewErr)
		require.Empty(t, lost)
		for id, err := range errs {
			requireNoDeadlock(t, err)
			require.NoError(t, err, "job %s", id)
		}
	}
}

func requireNoDeadlock(t *testing.T, err error) {
	t.Helper()
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "40P01" {
		t.Fatalf("deadlock: %v", err)
	}
}
