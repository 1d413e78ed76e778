package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
)

func testList(t *testing.T, newStore factory) {
	t.Run("ReturnsAnEmptySliceForAnEmptyStore", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		requirePage(t, store, domain.Filter{}, nil, 0)
		requirePage(t, store, domain.Filter{Statuses: []domain.Status{domain.StatusPending}}, nil, 0)
		requirePage(t, store, domain.Filter{Type: "send_email"}, nil, 0)
	})

	t.Run("ReturnsAnEmptySliceWhenNothingMatches", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		mustCreate(t, store, NewJob(t, "send_email", JobCreatedAt(at(0))))
		requirePage(t, store, domain.Filter{Type: "process_file"}, nil, 0)
		requirePage(t, store, domain.Filter{Statuses: []domain.Status{domain.StatusFailed}}, nil, 0)
		requirePage(t, store, domain.Filter{Statuses: []domain.Status{domain.StatusPending}, Type: "process_file"}, nil, 0)
	})

	t.Run("ListsEveryJobOldestFirst", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		jobs := mixedJobs(t, store)
		requirePage(t, store, domain.Filter{}, oldestFirst(jobs), len(jobs))
	})

	t.Run("OrdersByIDWhenCreatedAtIsEqual", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		var jobs []*domain.Job
		for i := range 12 {
			// Three jobs share each creation time; half the IDs are random
			// (version 4) so that ID order is neither creation order nor
			// insertion order.
			j := NewJob(t, "send_email", JobCreatedAt(at(3-i%4)))
			if i%2 == 0 {
				j.ID = uuid.New()
			}
			jobs = append(jobs, withStatus(j, domain.Statuses()[i%2]))
		}
		slices.Reverse(jobs)
		for _, j := range jobs {
			mustCreate(t, store, j)
		}
		requirePage(t, store, domain.Filter{}, oldestFirst(jobs), len(jobs))
		for _, s := range domain.Statuses()[:2] {
			f := domain.Filter{Statuses: []domain.Status{s}}
			want := matching(jobs, f)
			requirePage(t, store, f, want, len(want))
		}
	})

	t.Run("FiltersByEveryStatus", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		jobs := mixedJobs(t, store)
		for _, s := range domain.Statuses() {
			t.Run(string(s), func(t *testing.T) {
				t.Parallel()
				f := domain.Filter{Statuses: []domain.Status{s}}
				want := matching(jobs, f)
				require.Len(t, want, 4, "fixture: two jobs of each type per status")
				requirePage(t, store, f, want, len(want))
			})
		}
	})

	t.Run("FiltersBySeveralStatuses", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		jobs := mixedJobs(t, store)
		statuses := domain.Statuses()
		for i, a := range statuses {
			for _, b := range statuses[i+1:] {
				f := domain.Filter{Statuses: []domain.Status{b, a}}
				want := matching(jobs, f)
				requirePage(t, store, f, want, len(want))
			}
		}
		all := domain.Filter{Statuses: statuses}
		requirePage(t, store, all, oldestFirst(jobs), len(jobs))
	})

	t.Run("CountsARepeatedStatusOnce", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		jobs := mixedJobs(t, store)
		f := domain.Filter{Statuses: []domain.Status{domain.StatusRunning, domain.StatusRunning}}
		want := matching(jobs, f)
		requirePage(t, store, f, want, len(want))
	})

	t.Run("FiltersByType", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		jobs := mixedJobs(t, store)
		for _, typ := range []domain.JobType{"send_email", "process_file"} {
			f := domain.Filter{Type: typ}
			want := matching(jobs, f)
			require.Len(t, want, 2*len(domain.Statuses()))
			requirePage(t, store, f, want, len(want))
		}
	})

	t.Run("DoesNotMatchATypeByPrefix", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		short, long := NewJob(t, "send", JobCreatedAt(at(0))), NewJob(t, "send_email", JobCreatedAt(at(1)))
		mustCreate(t, store, short, long)
		requirePage(t, store, domain.Filter{Type: "send"}, []*domain.Job{short}, 1)
		pending := []domain.Status{domain.StatusPending}
		requirePage(t, store, domain.Filter{Type: "send", Statuses: pending}, []*domain.Job{short}, 1)
	})

	t.Run("FiltersByStatusAndType", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		jobs := mixedJobs(t, store)
		for _, typ := range []domain.JobType{"send_email", "process_file"} {
			for _, s := range domain.Statuses() {
				f := domain.Filter{Statuses: []domain.Status{s}, Type: typ}
				want := matching(jobs, f)
				require.Len(t, want, 2)
				requirePage(t, store, f, want, len(want))
			}
			f := domain.Filter{Statuses: []domain.Status{domain.StatusCompleted, domain.StatusPending}, Type: typ}
			want := matching(jobs, f)
			requirePage(t, store, f, want, len(want))
		}
	})

	t.Run("PagesWithLimitAndOffset", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		jobs := mixedJobs(t, store)
		filters := []domain.Filter{
			{},
			{Statuses: []domain.Status{domain.StatusPending, domain.StatusFailed}},
			{Type: "send_email"},
			{Statuses: []domain.Status{domain.StatusPending, domain.StatusRunning}, Type: "process_file"},
		}
		for _, f := range filters {
			all := matching(jobs, f)
			for _, limit := range []int{1, 3, 7} {
				var pages []*domain.Job
				for offset := 0; offset < len(all); offset += limit {
					f.Limit, f.Offset = limit, offset
					want := all[offset:min(offset+limit, len(all))]
					requirePage(t, store, f, want, len(all))
					pages = append(pages, want...)
				}
				require.Equal(t, ids(all), ids(pages))
			}
		}
	})

	t.Run("ReturnsAnEmptyPagePastTheEnd", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		jobs := mixedJobs(t, store)
		requirePage(t, store, domain.Filter{Offset: len(jobs)}, nil, len(jobs))
		requirePage(t, store, domain.Filter{Offset: len(jobs) + 5, Limit: 3}, nil, len(jobs))
		pending := []domain.Status{domain.StatusPending}
		requirePage(t, store, domain.Filter{Statuses: pending, Offset: 100}, nil, 4)
		requirePage(t, store, domain.Filter{Type: "send_email", Offset: 100}, nil, 2*len(domain.Statuses()))
	})

	t.Run("ReturnsEverythingWhenLimitExceedsTotal", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		jobs := mixedJobs(t, store)
		requirePage(t, store, domain.Filter{Limit: len(jobs) + 1}, oldestFirst(jobs), len(jobs))
		requirePage(t, store, domain.Filter{Limit: len(jobs) + 1, Offset: 18}, oldestFirst(jobs)[18:], len(jobs))
	})

	t.Run("StaysRightAfterStatusChanges", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		bystander := NewJob(t, "send_email", JobCreatedAt(at(0)))
		mustCreate(t, store, bystander)
		var jobs []*domain.Job
		for i := range 3 {
			j := NewJob(t, "send_email", JobCreatedAt(at(i+1)))
			mustCreate(t, store, j)
			jobs = append(jobs, j)
		}
		all := append([]*domain.Job{bystander}, jobs...)
		requireListings := func(step string) {
			t.Helper()
			// Logged only when the test fails: the last line names the step.
			t.Logf("checking the listings after %s", step)
			for _, s := range domain.Statuses() {
				f := domain.Filter{Statuses: []domain.Status{s}}
				want := matching(all, f)
				requirePage(t, store, f, want, len(want))
				f.Type = "send_email"
				requirePage(t, store, f, want, len(want))
			}
			requirePage(t, store, domain.Filter{}, all, len(all))
			requirePage(t, store, domain.Filter{Type: "send_email"}, all, len(all))
		}

		// Every job goes round the retry loop twice, then ends in a
		// different terminal status: each hop must leave no trace in the
		// listing of the status it left.
		ends := []func(j *domain.Job) error{
			func(j *domain.Job) error { return j.Complete(at(50)) },
			func(j *domain.Job) error { return j.Fail(errors.New("gave up"), at(50)) },
			func(j *domain.Job) error { return j.Cancel(at(50)) },
		}
		for round := range 2 {
			for i, j := range jobs {
				require.NoError(t, j.Start(at(10+round)))
				require.NoError(t, store.Update(t.Context(), j))
				requireListings(fmt.Sprintf("round %d job %d started", round, i))
				require.NoError(t, j.Retry(errors.New("try again"), at(20), at(11+round)))
				require.NoError(t, store.Update(t.Context(), j))
				requireListings(fmt.Sprintf("round %d job %d retried", round, i))
				require.NoError(t, j.Promote(at(20)))
				require.NoError(t, store.Update(t.Context(), j))
				requireListings(fmt.Sprintf("round %d job %d due", round, i))
			}
		}
		for i, j := range jobs {
			require.NoError(t, j.Start(at(40)))
			require.NoError(t, ends[i](j))
			require.NoError(t, store.Update(t.Context(), j))
			requireListings(fmt.Sprintf("job %d ended", i))
		}
		for _, j := range all {
			requireStored(t, store, j)
		}
	})

	t.Run("ReturnsCopies", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		j := fullJob(t)
		mustCreate(t, store, j)
		page, err := store.List(t.Context(), domain.Filter{})
		require.NoError(t, err)
		require.Len(t, page.Jobs, 1)
		page.Jobs[0].Payload[0] = 'X'
		page.Jobs[0].Status = domain.StatusCanceled
		requireStored(t, store, j)
		requirePage(t, store, domain.Filter{Statuses: []domain.Status{domain.StatusCanceled}}, nil, 0)
	})

	t.Run("ReturnsTheContextErrorWhenCanceled", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		mustCreate(t, store, NewJob(t, "send_email", JobCreatedAt(at(0))))
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := store.List(ctx, domain.Filter{})
		require.ErrorIs(t, err, context.Canceled)
	})
}
