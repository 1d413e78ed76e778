package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
)

func testInsert(t *testing.T, newStore factory, cfg config) {
	t.Run("StoresJobsWithoutKeys", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		jobs := []*domain.Job{NewJob(t, "a", JobCreatedAt(at(0))), NewJob(t, "b", JobCreatedAt(at(1)), JobRunAt(at(60)))}
		existing, err := store.Insert(t.Context(), at(2), jobs)
		require.NoError(t, err)
		require.Equal(t, []*domain.Job{nil, nil}, existing)
		for _, j := range jobs {
			requireStored(t, store, j)
		}
	})

	t.Run("ReportsTheHolderPerPosition", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		held := map[domain.Status]*domain.Job{}
		var holders []*domain.Job
		for i, s := range domain.Unfinished() {
			opts := []JobOption{JobCreatedAt(at(i)), JobUniqueKey(fmt.Sprintf("key-%s", s), 0)}
			switch s {
			case domain.StatusScheduled:
				opts = append(opts, JobRunAt(at(3600)))
			case domain.StatusRunning:
				opts = append(opts, JobStatus(s, 1))
			}
			held[s] = NewJob(t, "a", opts...)
			holders = append(holders, held[s])
		}
		mustCreate(t, store, holders...)

		free := NewJob(t, "a", JobCreatedAt(at(10)), JobUniqueKey("key-free", 0))
		plain := NewJob(t, "a", JobCreatedAt(at(11)))
		var batch []*domain.Job
		var want []*domain.Job
		for i, s := range domain.Unfinished() {
			batch = append(batch, NewJob(t, "a", JobCreatedAt(at(20+i)), JobUniqueKey(fmt.Sprintf("key-%s", s), time.Hour)))
			want = append(want, held[s])
			if i == 0 {
				batch = append(batch, free, plain)
				want = append(want, nil, nil)
			}
		}
		existing, err := store.Insert(t.Context(), at(100), batch)
		require.NoError(t, err)
		require.Equal(t, want, existing, "the holder in each refused position, nil where stored")
		requireStored(t, store, free)
		requireStored(t, store, plain)
		for i, j := range batch {
			if want[i] != nil {
				requireMissing(t, store, j.ID)
			}
		}
		for _, h := range holders {
			requireStored(t, store, h)
		}
	})

	t.Run("AFinishedJobHoldsItsKeyForUniqueFor", func(t *testing.T) {
		t.Parallel()
		needsDrivenClock(t, cfg)
		store := newStore(t)
		for i, s := range []domain.Status{domain.StatusCompleted, domain.StatusFailed, domain.StatusCanceled} {
			key := "report:" + string(s)
			// Finished at 100, holding its key until 160.
			done := NewJob(t, "a", JobCreatedAt(at(i)), JobUniqueKey(key, time.Minute), JobFinished(s, at(100)))
			mustCreate(t, store, done)

			early := NewJob(t, "a", JobCreatedAt(at(10)), JobUniqueKey(key, 0))
			existing, err := store.Insert(t.Context(), at(159), []*domain.Job{early})
			require.NoError(t, err)
			require.Equal(t, []*domain.Job{done}, existing, "%s: held until FinishedAt+UniqueFor", s)
			requireMissing(t, store, early.ID)

			onTime := NewJob(t, "a", JobCreatedAt(at(11)), JobUniqueKey(key, 0))
			existing, err = store.Insert(t.Context(), at(160), []*domain.Job{onTime})
			require.NoError(t, err)
			require.Equal(t, []*domain.Job{nil}, existing, "%s: free at FinishedAt+UniqueFor", s)
			requireStored(t, store, onTime)
			requireStored(t, store, done)

			// The new job holds the key now.
			late := NewJob(t, "a", JobCreatedAt(at(12)), JobUniqueKey(key, 0))
			existing, err = store.Insert(t.Context(), at(10_000), []*domain.Job{late})
			require.NoError(t, err)
			require.Equal(t, []*domain.Job{onTime}, existing)
		}
	})

	t.Run("AFinishedJobWithoutUniqueForFreesItsKey", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		j := NewJob(t, "a", JobCreatedAt(at(0)), JobUniqueKey("k", 0))
		mustCreate(t, store, j)
		require.NoError(t, j.Start(at(1)))
		require.NoError(t, j.Complete(at(2)))
		require.NoError(t, store.Update(t.Context(), j))

		next := NewJob(t, "a", JobCreatedAt(at(3)), JobUniqueKey("k", 0))
		existing, err := store.Insert(t.Context(), at(2), []*domain.Job{next})
		require.NoError(t, err)
		require.Equal(t, []*domain.Job{nil}, existing)
		requireStored(t, store, next)
	})

	t.Run("TheSecondOfAKeyInOneCallReportsTheFirst", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		first := NewJob(t, "a", JobCreatedAt(at(0)), JobUniqueKey("k", 0))
		other := NewJob(t, "a", JobCreatedAt(at(1)), JobUniqueKey("other", 0))
		second := NewJob(t, "a", JobCreatedAt(at(2)), JobUniqueKey("k", 0))
		third := NewJob(t, "a", JobCreatedAt(at(3)), JobUniqueKey("k", time.Hour))
		existing, err := store.Insert(t.Context(), at(5), []*domain.Job{first, other, second, third})
		require.NoError(t, err)
		require.Equal(t, []*domain.Job{nil, nil, first, first}, existing)
		requireStored(t, store, first)
		requireStored(t, store, other)
		requireMissing(t, store, second.ID)
		requireMissing(t, store, third.ID)
	})

	t.Run("UpdatingAnEarlierHolderLeavesTheKeyWithTheLatest", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		earlier := NewJob(t, "a", JobCreatedAt(at(0)), JobUniqueKey("k", 0), JobFinished(domain.StatusCompleted, at(1)))
		mustCreate(t, store, earlier)
		latest := NewJob(t, "a", JobCreatedAt(at(2)), JobUniqueKey("k", 0))
		existing, err := store.Insert(t.Context(), at(3), []*domain.Job{latest})
		require.NoError(t, err)
		require.Equal(t, []*domain.Job{nil}, existing)

		// Something rewrites the earlier, finished job (its key unchanged).
		earlier.LastError = "annotated"
		require.NoError(t, store.Update(t.Context(), earlier))

		again := NewJob(t, "a", JobCreatedAt(at(4)), JobUniqueKey("k", 0))
		existing, err = store.Insert(t.Context(), at(5), []*domain.Job{again})
		require.NoError(t, err)
		require.Equal(t, []*domain.Job{latest}, existing, "the unfinished job still holds the key")
		requireMissing(t, store, again.ID)
	})

	t.Run("DeleteFreesTheKey", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		j := NewJob(t, "a", JobCreatedAt(at(0)), JobUniqueKey("k", time.Hour))
		mustCreate(t, store, j)
		require.NoError(t, store.Delete(t.Context(), j.ID))

		next := NewJob(t, "a", JobCreatedAt(at(1)), JobUniqueKey("k", 0))
		existing, err := store.Insert(t.Context(), at(2), []*domain.Job{next})
		require.NoError(t, err)
		require.Equal(t, []*domain.Job{nil}, existing)
		requireStored(t, store, next)
	})

	t.Run("ReturnsErrAlreadyExistsAndStoresNothing", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		stored := NewJob(t, "a", JobCreatedAt(at(0)))
		mustCreate(t, store, stored)
		fresh := NewJob(t, "a", JobCreatedAt(at(1)), JobUniqueKey("k", 0))
		_, err := store.Insert(t.Context(), at(2), []*domain.Job{fresh, stored.Clone()})
		require.ErrorIs(t, err, domain.ErrAlreadyExists)
		requireMissing(t, store, fresh.ID)

		// The key the refused call would have taken is still free.
		again := NewJob(t, "a", JobCreatedAt(at(3)), JobUniqueKey("k", 0))
		existing, err := store.Insert(t.Context(), at(4), []*domain.Job{again})
		require.NoError(t, err)
		require.Equal(t, []*domain.Job{nil}, existing)
	})

	t.Run("CreateRefusesAHeldKeyAllOrNone", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		holder := NewJob(t, "a", JobCreatedAt(at(0)), JobUniqueKey("k", 0), JobRunAt(at(3600)))
		mustCreate(t, store, holder)

		before := NewJob(t, "a", JobCreatedAt(at(1)), JobUniqueKey("free", 0))
		dup := NewJob(t, "a", JobCreatedAt(at(2)), JobUniqueKey("k", 0))
		err := store.Create(t.Context(), before, dup)
		require.ErrorIs(t, err, domain.ErrDuplicate)
		require.NotErrorIs(t, err, domain.ErrAlreadyExists)
		requireMissing(t, store, before.ID)
		requireMissing(t, store, dup.ID)
		requirePage(t, store, domain.Filter{}, []*domain.Job{holder}, 1)

		// Twice in one call is a duplicate too.
		a := NewJob(t, "a", JobCreatedAt(at(3)), JobUniqueKey("twice", 0))
		b := NewJob(t, "a", JobCreatedAt(at(4)), JobUniqueKey("twice", 0))
		require.ErrorIs(t, store.Create(t.Context(), a, b), domain.ErrDuplicate)
		requireMissing(t, store, a.ID)

		// The refused call took no key: "free" is still free.
		mustCreate(t, store, before)
		requireStored(t, store, before)

		// An ID already stored still says so.
		require.ErrorIs(t, store.Create(t.Context(), holder.Clone()), domain.ErrAlreadyExists)
	})

	t.Run("OneJobPerKeyUnderConcurrency", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		const submitters, keys, perCall = 16, 1000, 100
		// Every submitter tries every key, starting at a different key so
		// that the submitters meet on every key at different moments.
		results := make([]map[string]*domain.Job, submitters) // key → the job the submitter stored, or the holder
		won := make([]map[string]bool, submitters)
		errs := make([]error, submitters)
		var wg sync.WaitGroup
		for s := range submitters {
			results[s], won[s] = map[string]*domain.Job{}, map[string]bool{}
			wg.Go(func() { errs[s] = submitAllKeys(t.Context(), store, s, keys, perCall, results[s], won[s]) })
		}
		wg.Wait()
		require.NoError(t, errors.Join(errs...))

		page, err := store.List(t.Context(), domain.Filter{})
		require.NoError(t, err)
		require.Equal(t, keys, page.Total, "exactly one job per key")
		stored := map[string]*domain.Job{}
		for _, j := range page.Jobs {
			require.NotContains(t, stored, j.UniqueKey, "key %q stored twice", j.UniqueKey)
			stored[j.UniqueKey] = j
		}
		for k := range keys {
			key := uniqueTestKey(k)
			winner := stored[key]
			require.NotNil(t, winner, "key %q", key)
			winners := 0
			for s := range submitters {
				if won[s][key] {
					winners++
				}
				require.Equal(t, winner.ID, results[s][key].ID, "submitter %d, key %q: got the winner back", s, key)
			}
			require.Equal(t, 1, winners, "key %q", key)
		}
	})
}

func uniqueTestKey(k int) string { return fmt.Sprintf("order:%04d", k) }

// submitAllKeys inserts one job per key for submitter s, perCall a call,
// and records, per key, the job stored or the holder returned.
func submitAllKeys(ctx context.Context, store domain.Store, s, keys, perCall int, results map[string]*domain.Job, won map[string]bool) error {
	start := s * keys / 16
	var batch []*domain.Job
	flush := func() error {
		existing, err := store.Insert(ctx, at(0), batch)
		if err != nil {
			return fmt.Errorf("submitter %d: %w", s, err)
		}
		if len(existing) != len(batch) {
			return fmt.Errorf("submitter %d: %d results for %d jobs", s, len(existing), len(batch))
		}
		for i, j := range batch {
			if existing[i] == nil {
				results[j.UniqueKey], won[j.UniqueKey] = j, true
				continue
			}
			if existing[i].UniqueKey != j.UniqueKey {
				return fmt.Errorf("submitter %d: key %q answered with a job of key %q", s, j.UniqueKey, existing[i].UniqueKey)
			}
			results[j.UniqueKey] = existing[i]
		}
		batch = batch[:0]
		return nil
	}
	for i := range keys {
		j, err := domain.NewJob("charge", fmt.Appendf(nil, `{"s":%d}`, s), 3, at(i))
		if err != nil {
			return err
		}
		j.UniqueKey = uniqueTestKey((start + i) % keys)
		batch = append(batch, j)
		if len(batch) == perCall {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if len(batch) > 0 {
		return flush()
	}
	return nil
}
