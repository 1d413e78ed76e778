package badgerstore_test

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/persistence/badgerstore"
	"github.com/troupe-go/troupe/persistence/storetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// quietLogger drops everything: the tests assert on errors, not on logs.
func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// mustOpen opens a store with opts (a small memtable unless set) and closes
// it when the test ends.
func mustOpen(t testing.TB, opts badgerstore.Options) *badgerstore.Store {
	t.Helper()
	if opts.MemTableSize == 0 {
		opts.MemTableSize = 8 << 20
	}
	if opts.Logger == nil {
		opts.Logger = quietLogger()
	}
	s, err := badgerstore.Open(opts)
	require.NoError(t, err)
	t.Cleanup(func() {
		if err := s.Close(); err != nil && !errors.Is(err, domain.ErrClosed) {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

func TestStoreOnDisk(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) domain.Store {
		return mustOpen(t, badgerstore.Options{Dir: t.TempDir()})
	}, storetest.WithReopen(func(t *testing.T) (domain.Store, func(t *testing.T) domain.Store) {
		dir := t.TempDir()
		s := mustOpen(t, badgerstore.Options{Dir: dir})
		return s, func(t *testing.T) domain.Store {
			require.NoError(t, s.Close())
			s = mustOpen(t, badgerstore.Options{Dir: dir})
			return s
		}
	}))
}

func TestStoreInMemory(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) domain.Store {
		return mustOpen(t, badgerstore.Options{InMemory: true})
	})
}

var epoch = time.Date(2025, 5, 1, 8, 0, 0, 0, time.UTC)

// newJobAt returns a pending job created n seconds after epoch.
func newJobAt(t testing.TB, typ domain.JobType, n int) *domain.Job {
	t.Helper()
	return storetest.NewJob(t, typ, storetest.JobPayload(fmt.Appendf(nil, `{"n":%d}`, n)), storetest.JobCreatedAt(epoch.Add(time.Duration(n)*time.Second)))
}

// storeMixedJobs stores 300 jobs of three types in s, starts a third of
// them, cancels another third and deletes one. Every fifth is in queue
// "email", every seventh scheduled, every eleventh has a unique key, half
// the started ones report progress, half the canceled ones have a result,
// every fourth has a flow key of three, queue "email" is paused and has
// flow settings, and queue "throttled" has settings and no job. It returns
// the jobs left, the one deleted, and filters that list each kind of index.
func storeMixedJobs(t *testing.T, s domain.Store) (jobs []*domain.Job, deleted *domain.Job, filters []domain.Filter) {
	t.Helper()
	ctx := t.Context()
	for i := range 300 {
		j := newJobAt(t, domain.JobType(fmt.Sprintf("type_%d", i%3)), i)
		if i%5 == 0 {
			j.Queue = "email"
		}
		if i%7 == 0 && i%3 == 0 {
			j.ScheduleAt(epoch.Add(time.Duration(24*3600-i)*time.Second), j.CreatedAt)
		}
		if i%11 == 0 {
			j.UniqueKey, j.UniqueFor = fmt.Sprintf("key-%d", i), time.Hour
		}
		if i%4 == 0 {
			j.Key = fmt.Sprintf("tenant-%d", i%3)
		}
		jobs = append(jobs, j)
	}
	require.NoError(t, s.Create(ctx, jobs...))
	require.NoError(t, s.SetQueuePaused(ctx, "email", true))
	require.NoError(t, s.SetQueueSettings(ctx, "email", domain.QueueSettings{
		Limit: 4, Rate: &domain.Rate{Count: 10, Per: time.Second},
		PerKey: &domain.KeyLimits{Limit: 1, Rate: &domain.Rate{Count: 1, Per: time.Minute, Burst: 2}}, Ordered: true,
	}))
	require.NoError(t, s.SetQueueSettings(ctx, "throttled", domain.QueueSettings{Rate: &domain.Rate{Count: 5, Per: time.Hour}, Fair: true}))
	for i, j := range jobs {
		switch i % 3 {
		case 1:
			require.NoError(t, j.Start(epoch.Add(time.Hour)))
			if i%4 == 1 {
				j.Progress = &domain.Progress{Percent: float64(i % 101), Message: fmt.Sprintf("step %d", i), UpdatedAt: epoch.Add(time.Hour)}
			}
			require.NoError(t, s.Update(ctx, j))
		case 2:
			require.NoError(t, j.Cancel(epoch.Add(time.Hour)))
			if i%4 == 2 {
				j.Result = fmt.Appendf(nil, `{"n":%d}`, i)
			}
			require.NoError(t, s.Update(ctx, j))
		}
	}
	deleted = jobs[10]
	require.NoError(t, s.Delete(ctx, deleted.ID))
	jobs = append(jobs[:10], jobs[11:]...)
	return jobs, deleted, []domain.Filter{
		{},
		{Statuses: []domain.Status{domain.StatusRunning}},
		{Type: "type_2"},
		{Statuses: []domain.Status{domain.StatusPending, domain.StatusCanceled}, Type: "type_0"},
		{Statuses: []domain.Status{domain.StatusScheduled}},
		{Queue: "email", Type: "type_1"},
		{Key: "tenant-1"},
		{Key: "tenant-0", Queue: "email", Statuses: []domain.Status{domain.StatusPending, domain.StatusScheduled}},
	}
}

// requireMixedFlow fails unless s holds the keys and settings that
// storeMixedJobs stored.
func requireMixedFlow(t *testing.T, s domain.Store) {
	t.Helper()
	queues, err := s.Queues(t.Context())
	require.NoError(t, err)
	byName := map[string]domain.QueueInfo{}
	for _, q := range queues {
		byName[q.Name] = q
	}
	require.True(t, byName["email"].Paused)
	require.True(t, byName["email"].Settings.Ordered)
	require.Equal(t, 2, byName["email"].Settings.PerKey.Rate.Burst)
	require.Equal(t, domain.QueueInfo{Name: "throttled", Settings: domain.QueueSettings{Rate: &domain.Rate{Count: 5, Per: time.Hour}, Fair: true}}, byName["throttled"])
	page := listAll(t, s, domain.Filter{Key: "tenant-1"})
	require.Positive(t, page.Total)
	for _, j := range page.Jobs {
		require.Equal(t, "tenant-1", j.Key)
	}
}

// listAll returns every job, oldest first.
func listAll(t testing.TB, s domain.Store, f domain.Filter) domain.Page {
	t.Helper()
	page, err := s.List(t.Context(), f)
	require.NoError(t, err)
	return page
}

func TestReopenKeepsEveryJob(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := t.Context()
	s, err := badgerstore.Open(badgerstore.Options{Dir: dir, Logger: quietLogger()})
	require.NoError(t, err)

	jobs, deleted, filters := storeMixedJobs(t, s)
	before := make([]domain.Page, len(filters))
	for i, f := range filters {
		before[i] = listAll(t, s, f)
	}
	state := stateOf(t, s)
	require.NoError(t, s.Close())

	reopened := mustOpen(t, badgerstore.Options{Dir: dir})
	for _, j := range jobs {
		got, err := reopened.Get(ctx, j.ID)
		require.NoError(t, err)
		require.Equal(t, j, got)
	}
	_, err = reopened.Get(ctx, deleted.ID)
	require.ErrorIs(t, err, domain.ErrNotFound)
	for i, f := range filters {
		require.Equal(t, before[i], listAll(t, reopened, f), "list %+v", f)
	}
	require.Equal(t, len(jobs), listAll(t, reopened, domain.Filter{}).Total)
	requireSameState(t, state, reopened)
	requireMixedFlow(t, reopened)
}

// storeState is what a store holds beside its jobs.
type storeState struct {
	queues  []domain.QueueInfo
	nextRun time.Time
}

func stateOf(t *testing.T, s domain.Store) storeState {
	t.Helper()
	queues, err := s.Queues(t.Context())
	require.NoError(t, err)
	next, err := s.NextRunAt(t.Context())
	require.NoError(t, err)
	return storeState{queues: queues, nextRun: next}
}

// requireSameState fails unless want's queues and next RunAt, as read
// before it was closed, are got's. want may be closed: its state is read
// through a memo.
func requireSameState(t *testing.T, want storeState, got domain.Store) {
	t.Helper()
	require.Equal(t, want, stateOf(t, got))
	require.NotEmpty(t, want.queues)
	require.False(t, want.nextRun.IsZero())
}

func TestOpenFailsWhenTheDirIsInUse(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	first, err := badgerstore.Open(badgerstore.Options{Dir: dir, Logger: quietLogger()})
	require.NoError(t, err)

	_, err = badgerstore.Open(badgerstore.Options{Dir: dir, Logger: quietLogger()})
	require.ErrorIs(t, err, badgerstore.ErrDirInUse)
	require.ErrorContains(t, err, dir)
	require.ErrorContains(t, err, "in use by another troupe process")
	require.ErrorContains(t, err, "Cannot acquire directory lock", "Badger's own error is kept")

	require.NoError(t, first.Close())
	mustOpen(t, badgerstore.Options{Dir: dir})
}

func TestOpenRejectsBadOptions(t *testing.T) {
	t.Parallel()
	cases := map[string]badgerstore.Options{
		"no dir":            {},
		"dir and in memory": {Dir: t.TempDir(), InMemory: true},
		"negative batch":    {InMemory: true, MaxBatch: -1},
		"tiny memtable":     {InMemory: true, MemTableSize: 1024},
		"negative memtable": {InMemory: true, MemTableSize: -1},
		"dir under a file":  {Dir: "/dev/null/troupe"},
	}
	for name, opts := range cases {
		opts.Logger = quietLogger()
		s, err := badgerstore.Open(opts)
		require.Error(t, err, name)
		require.Nil(t, s, name)
	}
	_, err := badgerstore.Open(badgerstore.Options{})
	require.ErrorIs(t, err, domain.ErrInvalid)
	require.ErrorContains(t, err, "Dir")
}

func TestOptionsDefaults(t *testing.T) {
	t.Parallel()
	o := badgerstore.Options{}.WithDefaults()
	require.Equal(t, badgerstore.MaxBatchDefault, o.MaxBatch)
	require.Equal(t, badgerstore.MemTableSizeDefault, o.MemTableSize)
	require.Same(t, slog.Default(), o.Logger)
	require.Equal(t, badgerstore.DurabilityFull, o.Durability)
	require.False(t, o.InMemory)
	require.Empty(t, o.Dir)

	require.Equal(t, badgerstore.MinFreeBytesFor(badgerstore.MemTableSizeDefault), o.MinFreeBytes)

	set := badgerstore.Options{MaxBatch: 7, MemTableSize: 2 << 20, MinFreeBytes: 64 << 20, Logger: quietLogger(), Durability: badgerstore.DurabilityNone}
	require.Equal(t, set, set.WithDefaults(), "set fields are kept")
}

func TestScanCallbackMayWrite(t *testing.T) {
	t.Parallel()
	s := mustOpen(t, badgerstore.Options{InMemory: true})
	ctx := t.Context()
	var jobs []*domain.Job
	for i := range 50 {
		jobs = append(jobs, newJobAt(t, "send_email", i))
	}
	require.NoError(t, s.Create(ctx, jobs...))

	// Recovery streams unfinished jobs and updates each: Scan sees the
	// jobs as they were when it began, and the writes land.
	pending := domain.Filter{Statuses: []domain.Status{domain.StatusPending}}
	seen := 0
	require.NoError(t, s.Scan(ctx, pending, func(j *domain.Job) error {
		seen++
		if err := j.Start(epoch.Add(time.Hour)); err != nil {
			return err
		}
		return s.Update(ctx, j)
	}))
	require.Equal(t, len(jobs), seen)
	require.Equal(t, 0, listAll(t, s, pending).Total)
	require.Equal(t, len(jobs), listAll(t, s, domain.Filter{Statuses: []domain.Status{domain.StatusRunning}}).Total)
}

func TestCloseKeepsEveryAcknowledgedWrite(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := t.Context()
	s, err := badgerstore.Open(badgerstore.Options{Dir: dir, Logger: quietLogger()})
	require.NoError(t, err)

	// Writers create jobs until the store refuses them; Close comes while
	// they run. Every job acknowledged before that must survive.
	const writers = 8
	acked := make([][]*domain.Job, writers)
	errs := make([]error, writers)
	started := make(chan struct{}, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := 0; ; i++ {
				j := newJobAt(t, "send_email", w*100_000+i)
				err := s.Create(ctx, j)
				if err != nil {
					errs[w] = err
					return
				}
				acked[w] = append(acked[w], j)
				if i == 10 {
					started <- struct{}{}
				}
			}
		})
	}
	for range writers {
		<-started
	}
	require.NoError(t, s.Close())
	wg.Wait()
	for _, err := range errs {
		require.ErrorIs(t, err, domain.ErrClosed)
	}

	reopened := mustOpen(t, badgerstore.Options{Dir: dir})
	total := 0
	for _, jobs := range acked {
		for _, j := range jobs {
			got, err := reopened.Get(ctx, j.ID)
			require.NoError(t, err)
			require.Equal(t, j, got)
		}
		total += len(jobs)
	}
	require.Equal(t, total, listAll(t, reopened, domain.Filter{}).Total, "nothing unacknowledged was written")
}

func TestPingAndFlushOnDisk(t *testing.T) {
	t.Parallel()
	s := mustOpen(t, badgerstore.Options{Dir: t.TempDir(), Durability: badgerstore.DurabilitySyncAll})
	require.NoError(t, s.Ping(t.Context()))
	require.NoError(t, s.Create(t.Context(), newJobAt(t, "noop", 0)))
	require.NoError(t, s.Flush(t.Context()))
	require.NoError(t, s.Ping(t.Context()))
}
