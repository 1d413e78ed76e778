package storetest

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
)

// externalToken is a lease token as the runtime makes them: URL-safe, a
// little over 40 characters, with the lease after a dot.
const externalToken = "q7XcR0v-9mYp3LkT1wZs_4NbHd8FgJ2eUa6Io5Ct.30000"

// heartbeat beats for owner through q, failing on an error.
func heartbeat(t *testing.T, q domain.SharedQueue, owner string, id uuid.UUID, lease time.Duration, p *domain.Progress) domain.LeaseState {
	t.Helper()
	st, err := q.Heartbeat(t.Context(), owner, id, lease, p)
	require.NoError(t, err, "heartbeat of job %s by %s", id, owner)
	return st
}

// requireLeaseLost fails unless err says the owner lost job id.
func requireLeaseLost(t *testing.T, err error, id uuid.UUID) {
	t.Helper()
	require.ErrorIs(t, err, domain.ErrLeaseLost)
	require.NotErrorIs(t, err, domain.ErrNotFound)
	require.ErrorContains(t, err, id.String(), "the error names the job")
}

func testSharedHeartbeat(t *testing.T, newQueue func(t *testing.T) OpenNode) {
	t.Run("ExtendsTheLeaseByTheStoresClock", func(t *testing.T) {
		t.Parallel()
		open := newQueue(t)
		owner, other := open(t), open(t)
		j := claimOne(t, owner, 3, "n1", liveLease)

		// StartedAt is the store's now at the claim; the heartbeat's now is
		// later, by less than the whole test may take.
		first := heartbeat(t, other, "n1", j.ID, 2*time.Hour, nil)
		require.False(t, first.CancelRequested)
		require.False(t, first.ExpiresAt.Before(j.StartedAt.Add(2*time.Hour)), "now + lease, now no earlier than the claim")
		require.True(t, first.ExpiresAt.Before(j.StartedAt.Add(2*time.Hour+sharedWaitTimeout)), "now + lease: %s", first.ExpiresAt)
		require.Equal(t, time.UTC, first.ExpiresAt.Location())
		second := heartbeat(t, other, "n1", j.ID, 3*time.Hour, nil)
		gain := second.ExpiresAt.Sub(first.ExpiresAt)
		require.GreaterOrEqual(t, gain, time.Hour, "an hour more lease, from a later now")
		require.Less(t, gain, time.Hour+sharedWaitTimeout)
		requireStored(t, other, j) // the lease is bookkeeping: the job is unchanged
		requireOwned(t, other, "n1", j.ID)

		// The lease ends at now + lease, even when that is sooner than
		// before: a short one runs out and any node takes the job back.
		heartbeat(t, other, "n1", j.ID, shortLease, nil)
		require.Equal(t, 1, rescueAtLeast(t, other, 1))
		requireStatus(t, other, j.ID, domain.StatusPending)
		_, err := owner.Heartbeat(t.Context(), "n1", j.ID, liveLease, nil)
		requireLeaseLost(t, err, j.ID)
	})

	t.Run("StoresProgressAndANewAttemptStartsWithout", func(t *testing.T) {
		t.Parallel()
		open := newQueue(t)
		owner, api := open(t), open(t)
		j := claimOne(t, owner, 3, "n1", liveLease)
		require.Nil(t, j.Progress)

		p := domain.NewProgress(41.5, "copied 83 of 200 «files»", at(10))
		heartbeat(t, api, "n1", j.ID, liveLease, &p)
		want := j.Clone()
		want.Progress = &p
		requireStored(t, api, want) // only the progress changes, not UpdatedAt

		heartbeat(t, api, "n1", j.ID, liveLease, nil)
		requireStored(t, api, want) // no progress given: the last one stays

		// A report without a time gets the store's now.
		heartbeat(t, api, "n1", j.ID, liveLease, &domain.Progress{Percent: 50})
		got, err := api.Get(t.Context(), j.ID)
		require.NoError(t, err)
		require.NotNil(t, got.Progress)
		require.Equal(t, 50.0, got.Progress.Percent)
		require.Empty(t, got.Progress.Message)
		require.False(t, got.Progress.UpdatedAt.Before(j.StartedAt), "the store's now, after the claim")
		require.True(t, got.Progress.UpdatedAt.Before(j.StartedAt.Add(sharedWaitTimeout)))
		require.Equal(t, domain.Timestamp(got.Progress.UpdatedAt), got.Progress.UpdatedAt)

		// The attempt fails and is retried at once: its progress stays
		// with the job until the next attempt starts, which clears it.
		retry := got.Clone()
		require.NoError(t, retry.Retry(errHandler, at(0), at(0)))
		require.NoError(t, owner.UpdateOwned(t.Context(), "n1", retry))
		requireStored(t, api, retry)
		require.NotNil(t, retry.Progress)
		again, err := api.ClaimJobs(t.Context(), "n2", domain.ClaimRequest{Limit: 1, Lease: liveLease})
		require.NoError(t, err)
		require.Equal(t, []uuid.UUID{j.ID}, ids(again))
		require.Nil(t, again[0].Progress, "a new attempt has reported nothing")
		requireStored(t, owner, again[0])
	})

	t.Run("ReportsACancelRequestedOnAnyNode", func(t *testing.T) {
		t.Parallel()
		open := newQueue(t)
		owner, api := open(t), open(t)
		j := claimOne(t, owner, 3, "n1", liveLease)
		require.False(t, heartbeat(t, owner, "n1", j.ID, liveLease, nil).CancelRequested)
		_, err := api.CancelJob(t.Context(), j.ID)
		require.NoError(t, err)
		p := domain.NewProgress(10, "stopping", at(1))
		st := heartbeat(t, owner, "n1", j.ID, liveLease, &p)
		require.True(t, st.CancelRequested, "the owner learns of the cancel")
		require.False(t, st.ExpiresAt.IsZero(), "the lease still holds until the owner reports")
		require.Equal(t, &p, mustGet(t, api, j).Progress)
		requireStatus(t, api, j.ID, domain.StatusRunning)
	})

	t.Run("RefusesAnOwnerThatLostTheJob", func(t *testing.T) {
		t.Parallel()
		open := newQueue(t)
		n1, n2 := open(t), open(t)
		ctx := t.Context()
		p := domain.NewProgress(99, "not mine", at(0))

		j := claimOne(t, n1, 3, "n1", liveLease)
		_, err := n2.Heartbeat(ctx, "n2", j.ID, liveLease, &p)
		requireLeaseLost(t, err, j.ID)
		requireStored(t, n1, j) // nothing written: no progress, same lease
		requireOwned(t, n1, "n1", j.ID)

		done := j.Clone()
		require.NoError(t, done.Complete(time.Now()))
		require.NoError(t, n1.UpdateOwned(ctx, "n1", done))
		_, err = n1.Heartbeat(ctx, "n1", j.ID, liveLease, &p)
		requireLeaseLost(t, err, j.ID)
		requireStored(t, n2, done)

		waiting := queuedJob(t, "noop", 3, at(1))
		waiting.ScheduleAt(later(), time.Now())
		require.NoError(t, n1.Create(ctx, waiting))
		_, err = n1.Heartbeat(ctx, "n1", waiting.ID, liveLease, nil)
		requireLeaseLost(t, err, waiting.ID)

		// Rescued, then claimed by another node: neither time is it n1's.
		rescued := claimOne(t, n1, 3, "n1", shortLease)
		rescueAtLeast(t, n2, 1)
		_, err = n1.Heartbeat(ctx, "n1", rescued.ID, liveLease, &p)
		requireLeaseLost(t, err, rescued.ID)
		again := sharedClaim(t, n2, "n2", domain.ClaimRequest{Limit: 1})
		require.Equal(t, []uuid.UUID{rescued.ID}, ids(again))
		_, err = n1.Heartbeat(ctx, "n1", rescued.ID, liveLease, &p)
		requireLeaseLost(t, err, rescued.ID)
		requireStored(t, n2, again[0])
		heartbeat(t, n1, "n2", rescued.ID, liveLease, nil) // its owner, through any handle

		missing := uuid.New()
		_, err = n1.Heartbeat(ctx, "n1", missing, liveLease, nil)
		require.ErrorIs(t, err, domain.ErrNotFound)
		require.NotErrorIs(t, err, domain.ErrLeaseLost)
		require.ErrorContains(t, err, missing.String())

		_, err = n1.Heartbeat(ctx, "", j.ID, liveLease, nil)
		require.ErrorIs(t, err, domain.ErrInvalid, "a heartbeat names its owner")
	})
}

func testSharedExternal(t *testing.T, newQueue func(t *testing.T) OpenNode) {
	owner := domain.ExternalOwner(externalToken)
	t.Run("AnExternalOwnerRunsAJobLikeANode", func(t *testing.T) {
		t.Parallel()
		open := newQueue(t)
		n1, n2 := open(t), open(t)
		ctx := t.Context()
		notices := watch(t, n2)
		j := claimOne(t, n1, 3, owner, liveLease)
		requireOwned(t, n2, owner, j.ID)
		requireNotOwned(t, n2, domain.ExternalOwner("other"), j.ID)
		heartbeat(t, n2, owner, j.ID, liveLease, nil)

		_, err := n1.CancelJob(ctx, j.ID)
		require.NoError(t, err)
		n := awaitNotice(t, notices, func(n domain.QueueNotice) bool { return n.Kind == domain.NoticeCancelRequested })
		require.Equal(t, domain.QueueNotice{Kind: domain.NoticeCancelRequested, JobID: j.ID, Node: owner}, n)
		requested, err := n2.CancelRequests(ctx, owner)
		require.NoError(t, err)
		require.Equal(t, []uuid.UUID{j.ID}, requested)
		require.True(t, heartbeat(t, n1, owner, j.ID, liveLease, nil).CancelRequested)

		// Another token, or a token whose lease part was changed, owns
		// nothing: its outcome is refused.
		canceled := j.Clone()
		require.NoError(t, canceled.Cancel(time.Now()))
		for _, wrong := range []string{domain.ExternalOwner("other"), strings.TrimSuffix(owner, "30000") + "99999", externalToken} {
			err = n2.UpdateOwned(ctx, wrong, canceled)
			requireLeaseLost(t, err, j.ID)
			_, err = n2.Heartbeat(ctx, wrong, j.ID, liveLease, nil)
			requireLeaseLost(t, err, j.ID)
		}
		requireStored(t, n1, j)
		require.NoError(t, n2.UpdateOwned(ctx, owner, canceled))
		requireStored(t, n1, canceled)
		_, err = n1.Heartbeat(ctx, owner, j.ID, liveLease, nil)
		requireLeaseLost(t, err, j.ID)
	})

	t.Run("AnExternalOwnersExpiredJobIsRescued", func(t *testing.T) {
		t.Parallel()
		open := newQueue(t)
		worker, node := open(t), open(t)
		ctx := t.Context()
		j := claimOne(t, worker, 3, owner, shortLease)
		require.Equal(t, 1, rescueAtLeast(t, node, 1))
		got := mustGet(t, node, j)
		require.Equal(t, domain.StatusPending, got.Status)
		require.Equal(t, 1, got.Attempts, "the lapsed attempt counts")
		require.Equal(t, domain.ErrInterrupted.Error(), got.LastError)
		requireNotOwned(t, node, owner, j.ID)
		_, err := worker.Heartbeat(ctx, owner, j.ID, liveLease, nil)
		requireLeaseLost(t, err, j.ID)
		late := j.Clone()
		require.NoError(t, late.Complete(time.Now()))
		requireLeaseLost(t, worker.UpdateOwned(ctx, owner, late), j.ID)
		requireStored(t, node, got) // the late outcome changed nothing
	})

	t.Run("OwnersOfEveryKindTogether", func(t *testing.T) {
		t.Parallel()
		q := newQueue(t)(t)
		ctx := t.Context()
		// Owners as long as an owner may reasonably be, next to a node.
		owners := []string{"node-1", owner, domain.ExternalOwner(strings.Repeat("t", 255))}
		var jobs []*domain.Job
		for _, o := range owners {
			jobs = append(jobs, claimOne(t, q, 3, o, liveLease))
		}
		for i, o := range owners {
			lost, err := q.RenewLeases(ctx, o, ids(jobs), liveLease)
			require.NoError(t, err)
			want := slices.Delete(ids(jobs), i, i+1)
			require.Equal(t, want, lost, "owner %q keeps only its own", o)
			_, err = q.CancelJob(ctx, jobs[i].ID)
			require.NoError(t, err)
			requested, err := q.CancelRequests(ctx, o)
			require.NoError(t, err)
			require.Equal(t, []uuid.UUID{jobs[i].ID}, requested)
		}
	})
}
