// Package storetest is the conformance suite of domain.Store. Every
// persistence backend runs Run from its own tests, so that all of them keep
// the promises the port's doc comments make, and the rest of Troupe can
// swap one backend for another without noticing. RunShared is the suite of
// domain.SharedQueue, for the backends that several nodes share.
//
// The suite assumes only what the port documents: no timing (a wait polls
// for a state), no knowledge of how a backend stores or batches its writes.
// A change to the port lands together with a change to this suite.
package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
)

// Run runs the conformance suite against stores made by newStore.
//
// newStore must return a fresh, empty, open store on every call and register
// its own cleanup with t.Cleanup. Closing a store twice must be harmless,
// because the Close subtests close their store themselves. Every subtest runs
// in parallel with a store of its own.
//
// Jobs must read back equal to what was written, field by field, with times
// as domain.Timestamp makes them: UTC, microseconds, no monotonic reading.
//
// Options add what only some stores can run: WithReopen, for durable ones.
func Run(t *testing.T, newStore func(t *testing.T) domain.Store, opts ...Option) {
	t.Helper()
	var cfg config
	for _, opt := range opts {
		opt(&cfg)
	}
	areas := []struct {
		name string
		run  func(t *testing.T, newStore factory)
	}{
		{"Create", testCreate},
		{"Get", testGet},
		{"Update", testUpdate},
		{"Delete", testDelete},
		{"List", testList},
		{"Scan", testScan},
		{"Ping", testPing},
		{"Flush", testFlush},
		{"Close", testClose},
		{"Concurrency", testConcurrency},
		{"Fields", testFields},
		{"Insert", func(t *testing.T, newStore factory) { testInsert(t, newStore, cfg) }},
		{"Schedule", func(t *testing.T, newStore factory) { testSchedule(t, newStore, cfg) }},
		{"Queues", testQueues},
		{"Requests", testRequests},
		{"Retention", func(t *testing.T, newStore factory) { testRetention(t, newStore, cfg) }},
		{"ScheduleField", testScheduleField},
		{"Schedules", testSchedules},
		{"Results", testResults},
		{"Flow", func(t *testing.T, newStore factory) { testFlow(t, newStore, cfg) }},
	}
	for _, area := range areas {
		t.Run(area.name, func(t *testing.T) {
			t.Parallel()
			area.run(t, newStore)
		})
	}
	if cfg.reopen != nil {
		t.Run("Reopen", func(t *testing.T) {
			t.Parallel()
			testReopen(t, cfg.reopen, cfg)
		})
		t.Run("ReopenRetention", func(t *testing.T) {
			t.Parallel()
			testReopenRetention(t, cfg.reopen)
		})
	}
}

// Option adds to what Run checks.
type Option func(*config)

type config struct {
	reopen   ReopenFactory
	ownClock bool
}

// WithOwnClock says that the store judges unique keys and due jobs by its
// own clock, not by the now it is given (domain.Store allows a shared
// store to): the cases that drive time through now are skipped.
func WithOwnClock() Option {
	return func(c *config) { c.ownClock = true }
}

// needsDrivenClock skips a case that drives time through now.
func needsDrivenClock(t *testing.T, cfg config) {
	t.Helper()
	if cfg.ownClock {
		t.Skip("the store judges time by its own clock")
	}
}

// ReopenFactory makes a fresh, empty, open store, as Run's newStore does,
// and a function that closes it and opens the same data again (the
// reopened store registers its own cleanup).
type ReopenFactory func(t *testing.T) (store domain.Store, reopen func(t *testing.T) domain.Store)

// WithReopen makes Run check that what a durable store keeps survives a
// close and an open: jobs in every status, scheduled jobs and their order,
// held unique keys, paused queues, request records, schedules and what
// DeleteFinished reads.
func WithReopen(open ReopenFactory) Option {
	return func(c *config) { c.reopen = open }
}

// factory makes a fresh store for one subtest.
type factory = func(t *testing.T) domain.Store

// baseTime is the creation time of the first job of a test. Its
// sub-second part is a whole number of microseconds, the precision every
// store keeps, so jobs read back exactly.
var baseTime = time.Date(2025, time.March, 14, 15, 9, 26, 535897000, time.UTC)

// at returns baseTime plus n seconds.
func at(n int) time.Time { return baseTime.Add(time.Duration(n) * time.Second) }

// fullJob returns a job with every field set to a value other than its
// zero value and other than what NewJob sets.
func fullJob(t *testing.T) *domain.Job {
	t.Helper()
	j := NewJob(t, "generate_report", JobCreatedAt(at(0)))
	j.Payload = []byte(`{"report":"q1","rows":[1,2,3],"note":"ünïcödé"}`)
	j.Status = domain.StatusRunning
	j.Attempts = 2
	j.MaxAttempts = 5
	j.LastError = "upstream said: 503 «service unavailable»"
	j.UpdatedAt = domain.Timestamp(at(40))
	j.RunAt = domain.Timestamp(at(30))
	j.StartedAt = domain.Timestamp(at(35))
	j.FinishedAt = domain.Timestamp(at(45))
	j.Queue = "reports-q1"
	j.Priority = 2
	// Distinct per job, so that several full jobs can be stored together.
	j.UniqueKey = "report:q1:" + j.ID.String()
	j.UniqueFor = 90*time.Minute + 1500*time.Microsecond
	j.Timeout = 45 * time.Second
	j.Schedule = "nightly-report"
	j.Result = []byte(`{"rows": 3, "file":"q1.csv", "rows":4}`) // as given: not normalised JSON
	j.Progress = &domain.Progress{Percent: 62.5, Message: "row 5 of 8 «ok»", UpdatedAt: domain.Timestamp(at(38))}
	return j
}

// withStatus returns j after setting its status, for building fixtures.
func withStatus(j *domain.Job, s domain.Status) *domain.Job {
	j.Status = s
	return j
}

// mustCreate stores jobs, failing the test on error.
func mustCreate(t *testing.T, store domain.Store, jobs ...*domain.Job) {
	t.Helper()
	require.NoError(t, store.Create(t.Context(), jobs...))
}

// requireStored fails unless the store holds exactly want under want.ID.
func requireStored(t *testing.T, store domain.Store, want *domain.Job) {
	t.Helper()
	got, err := store.Get(t.Context(), want.ID)
	require.NoError(t, err, "get job %s", want.ID)
	require.Equal(t, want, got, "job %s reads back different from what was stored", want.ID)
}

// requireMissing fails unless the store answers ErrNotFound for id.
func requireMissing(t *testing.T, store domain.Store, id uuid.UUID) {
	t.Helper()
	_, err := store.Get(t.Context(), id)
	require.ErrorIs(t, err, domain.ErrNotFound, "job %s should not be stored", id)
}

// oldestFirst returns a sorted copy of jobs in the order every store lists.
func oldestFirst(jobs []*domain.Job) []*domain.Job {
	sorted := slices.Clone(jobs)
	slices.SortFunc(sorted, domain.Compare)
	return sorted
}

// matching returns the jobs that pass f's status and type, oldest first.
func matching(jobs []*domain.Job, f domain.Filter) []*domain.Job {
	var out []*domain.Job
	for _, j := range jobs {
		if f.Matches(j) {
			out = append(out, j)
		}
	}
	return oldestFirst(out)
}

// ids returns the IDs of jobs, in order, so that a failed order comparison
// prints something readable.
func ids(jobs []*domain.Job) []uuid.UUID {
	out := make([]uuid.UUID, 0, len(jobs))
	for _, j := range jobs {
		out = append(out, j.ID)
	}
	return out
}

// requirePage fails unless listing f returns exactly want (already in list
// order) and total.
func requirePage(t *testing.T, store domain.Store, f domain.Filter, want []*domain.Job, total int) {
	t.Helper()
	page, err := store.List(t.Context(), f)
	require.NoError(t, err, "list %+v", f)
	require.NotNil(t, page.Jobs, "list %+v: Jobs must never be nil", f)
	require.Equal(t, ids(want), ids(page.Jobs), "list %+v: wrong jobs or order", f)
	require.Equal(t, total, page.Total, "list %+v: wrong total", f)
	if len(want) > 0 {
		require.Equal(t, want, page.Jobs, "list %+v: jobs differ from what was stored", f)
	}
}

// mixedJobs stores two jobs of each status and each of two types, with
// distinct creation times given out of order, and returns them.
func mixedJobs(t *testing.T, store domain.Store) []*domain.Job {
	t.Helper()
	var jobs []*domain.Job
	n := 0
	for _, typ := range []domain.JobType{"send_email", "process_file"} {
		for _, s := range domain.Statuses() {
			for range 2 {
				// Creation times interleave the types and run backwards
				// against insertion order, so that no store can pass by
				// returning jobs in the order they were written.
				jobs = append(jobs, NewJob(t, typ, JobCreatedAt(at(1000-(7*n)%97)), JobStatus(s, 0)))
				n++
			}
		}
	}
	mustCreate(t, store, jobs...)
	return jobs
}
