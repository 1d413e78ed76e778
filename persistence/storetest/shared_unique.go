package storetest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
)

// sharedKeyedJob returns a pending job with unique key key, held uniqueFor
// after it finishes.
func sharedKeyedJob(t *testing.T, key string, uniqueFor time.Duration, createdAt time.Time) *domain.Job {
	t.Helper()
	j := queuedJob(t, "noop", 3, createdAt)
	j.UniqueKey, j.UniqueFor = key, uniqueFor
	return j
}

// sharedInsert inserts jobs through q at now and fails on an error.
func sharedInsert(t *testing.T, q SharedStore, now time.Time, jobs ...*domain.Job) []*domain.Job {
	t.Helper()
	existing, err := q.Insert(t.Context(), now, jobs)
	require.NoError(t, err)
	require.Len(t, existing, len(jobs))
	return existing
}

func testSharedUnique(t *testing.T, newQueue func(t *testing.T) OpenNode) {
	t.Run("OneJobPerKeyUnderSubmittersOnSeveralNodes", func(t *testing.T) {
		t.Parallel()
		open := newQueue(t)
		const submitters, keys, maxBatch = 16, 1000, 50
		nodes := []SharedStore{open(t), open(t)}
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			created = map[string][]uuid.UUID{} // key → jobs stored with it
			errs    = make([]error, submitters)
		)
		for s := range submitters {
			wg.Go(func() {
				q := nodes[s%len(nodes)]
				rnd := rand.New(rand.NewPCG(uint64(s), 7))
				order := rnd.Perm(keys)
				for len(order) > 0 {
					n := min(1+rnd.IntN(maxBatch), len(order))
					batch := make([]*domain.Job, n)
					for i, k := range order[:n] {
						batch[i] = sharedKeyedJob(t, fmt.Sprintf("key-%04d", k), 0, at(s))
					}
					order = order[n:]
					existing, err := q.Insert(t.Context(), time.Now(), batch)
					if err == nil && len(existing) != len(batch) {
						err = fmt.Errorf("%d results for %d jobs", len(existing), len(batch))
					}
					if err != nil {
						errs[s] = err
						return
					}
					mu.Lock()
					for i, j := range batch {
						switch e := existing[i]; {
						case e == nil:
							created[j.UniqueKey] = append(created[j.UniqueKey], j.ID)
						case e.UniqueKey != j.UniqueKey || e.ID == j.ID:
							errs[s] = fmt.Errorf("job %s with key %q: holder %s has key %q", j.ID, j.UniqueKey, e.ID, e.UniqueKey)
						}
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		require.NoError(t, errors.Join(errs...))
		require.Len(t, created, keys, "every key was taken")
		for key, jobs := range created {
			require.Len(t, jobs, 1, "key %s stored %d times", key, len(jobs))
		}
		page, err := nodes[0].List(t.Context(), domain.Filter{Limit: 1})
		require.NoError(t, err)
		require.Equal(t, keys, page.Total, "exactly one job per key is stored")
	})

	t.Run("InsertReturnsTheHolderAcrossNodes", func(t *testing.T) {
		t.Parallel()
		open := newQueue(t)
		a, b := open(t), open(t)
		now := time.Now()
		first := sharedKeyedJob(t, "order-1", 0, at(0))
		require.Equal(t, []*domain.Job{nil}, sharedInsert(t, a, now, first))

		again, twin, free := sharedKeyedJob(t, "order-1", 0, at(1)), sharedKeyedJob(t, "order-2", 0, at(2)), queuedJob(t, "noop", 3, at(3))
		twinsTwin := sharedKeyedJob(t, "order-2", 0, at(4))
		existing := sharedInsert(t, b, now, again, twin, free, twinsTwin)
		require.Equal(t, first, existing[0], "the stored holder, as stored")
		require.Nil(t, existing[1])
		require.Nil(t, existing[2], "a job without a key is always stored")
		require.Equal(t, twin, existing[3], "an earlier job of the same call holds the key")
		requireStored(t, a, twin)
		requireStored(t, a, free)
		requireMissing(t, a, again.ID)
		requireMissing(t, a, twinsTwin.ID)

		_, err := a.Insert(t.Context(), now, []*domain.Job{queuedJob(t, "noop", 3, at(5)), free.Clone()})
		require.ErrorIs(t, err, domain.ErrAlreadyExists, "a stored ID")
	})

	t.Run("CreateRefusesAHeldKeyAllOrNone", func(t *testing.T) {
		t.Parallel()
		open := newQueue(t)
		a, b := open(t), open(t)
		ctx := t.Context()
		holder := sharedKeyedJob(t, "report-7", 0, at(0))
		require.NoError(t, a.Create(ctx, holder))
		fresh := queuedJob(t, "noop", 3, at(1))
		err := b.Create(ctx, fresh, sharedKeyedJob(t, "report-7", 0, at(2)))
		require.ErrorIs(t, err, domain.ErrDuplicate)
		requireMissing(t, a, fresh.ID)

		x, y := sharedKeyedJob(t, "report-8", 0, at(3)), sharedKeyedJob(t, "report-8", 0, at(4))
		require.ErrorIs(t, b.Create(ctx, x, y), domain.ErrDuplicate, "a key repeated in one call")
		requireMissing(t, a, x.ID)
	})

	t.Run("AKeyIsHeldWhileUnfinishedAndUniqueForAfter", func(t *testing.T) {
		t.Parallel()
		open := newQueue(t)
		a, b := open(t), open(t)
		ctx := t.Context()
		start := time.Now()

		scheduled := sharedKeyedJob(t, "k", time.Hour, at(0))
		scheduled.ScheduleAt(later(), start)
		require.Nil(t, sharedInsert(t, a, start, scheduled)[0])
		require.Equal(t, scheduled.ID, sharedInsert(t, b, start, sharedKeyedJob(t, "k", 0, at(1)))[0].ID, "held while scheduled")

		_, err := a.CancelJob(ctx, scheduled.ID)
		require.NoError(t, err)
		canceled, err := a.Get(ctx, scheduled.ID)
		require.NoError(t, err)
		finished := canceled.FinishedAt
		require.Equal(t, scheduled.ID, sharedInsert(t, b, finished.Add(59*time.Minute), sharedKeyedJob(t, "k", 0, at(2)))[0].ID,
			"held for UniqueFor after it finished")
		next := sharedKeyedJob(t, "k", 0, at(3))
		require.Nil(t, sharedInsert(t, b, finished.Add(61*time.Minute), next)[0], "free once UniqueFor has passed")

		// next has no UniqueFor: its key is free as soon as it finishes.
		claimed := sharedClaim(t, a, "na", domain.ClaimRequest{Limit: 1})
		require.Equal(t, []uuid.UUID{next.ID}, ids(claimed))
		require.Equal(t, next.ID, sharedInsert(t, a, time.Now(), sharedKeyedJob(t, "k", 0, at(4)))[0].ID, "held while running")
		require.NoError(t, a.UpdateOwned(ctx, "na", sharedCompleted(t, next.ID, a)))
		require.Nil(t, sharedInsert(t, b, time.Now().Add(time.Second), sharedKeyedJob(t, "k", 0, at(5)))[0])
	})

	t.Run("DeletingTheHolderFreesItsKey", func(t *testing.T) {
		t.Parallel()
		open := newQueue(t)
		a, b := open(t), open(t)
		holder := sharedKeyedJob(t, "k", 24*time.Hour, at(0))
		require.NoError(t, a.Create(t.Context(), holder))
		require.NoError(t, b.Delete(t.Context(), holder.ID))
		require.Nil(t, sharedInsert(t, a, time.Now(), sharedKeyedJob(t, "k", 0, at(1)))[0])
	})
}
