package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"net/url"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	nethttp "net/http"

	"github.com/google/uuid"
	"github.com/spf13/cobra"
	"go.uber.org/fx"

	"github.com/troupe-go/troupe/actors"
	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/http"
	"github.com/troupe-go/troupe/persistence/badgerstore"
	"github.com/troupe-go/troupe/persistence/memstore"
	"github.com/troupe-go/troupe/persistence/pgstore"
)

// benchJobType is the only job type the bench registers: a no-op, so that
// what is measured is the runtime and its store, not a handler.
const benchJobType domain.JobType = "noop"

// benchPayload is every bench job's payload.
var benchPayload = []byte(`{}`)

// Defaults of the bench's flags.
const (
	benchBurndownJobsDefault = 100_000
	benchBatchDefault        = 1000
	benchRateDefault         = 1000.0
	benchDurationDefault     = 10 * time.Second
	benchConcurrencyDefault  = 16
	benchStopTimeout         = 30 * time.Second
	benchStallTimeout        = time.Minute
	benchHTTPRequestTimeout  = 30 * time.Second
	benchProgressEvery       = time.Second
	benchProgressEveryOnTTY  = 200 * time.Millisecond
	benchProgressBarWidth    = 24
	benchSchemaDefault       = "troupe_bench"
)

// errInterrupted ends a bench on SIGINT or SIGTERM.
var errInterrupted = errors.New("interrupted")

// benchFlags are the flags every bench mode shares.
type benchFlags struct {
	store       string
	dataDir     string
	databaseURL string
	schema      string
	workers     int
	json        bool
	cpuProfile  string
}

// validate checks the shared flags.
func (f benchFlags) validate() error {
	switch f.store {
	case StoreMemory, StoreBadger:
	case StorePostgres:
		if strings.TrimSpace(f.databaseURL) == "" {
			return errors.New("--database-url (or TROUPE_DATABASE_URL) is required with --store postgres")
		}
		if strings.TrimSpace(f.schema) == "" {
			return errors.New("--schema must not be empty with --store postgres")
		}
	default:
		return fmt.Errorf("invalid --store %q: must be one of %s", f.store, strings.Join(Stores(), ", "))
	}
	if f.workers < 1 {
		return fmt.Errorf("invalid --workers %d: must be at least 1", f.workers)
	}
	return nil
}

func newBenchCommand(env *environment) *cobra.Command {
	f := &benchFlags{}
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure the job runtime, its store and the HTTP API",
		Long: `Measure the real runtime in this process, on the store of your choice, with
a no-op handler (the demo handlers are not registered):

  troupe bench burndown   insert N jobs, then time how fast the workers finish them
  troupe bench steady     submit at a fixed rate; enqueue-to-start and -done latency
  troupe bench http       load the HTTP API (an in-process server, or --server)

Progress goes to stderr every second (a one-line bar on a terminal); the
summary goes to stdout as a table, or as JSON with --json.

With --store badger the data lives in a temporary directory that is removed
afterwards, unless --data-dir names one. With --store postgres the jobs go to
the schema troupe_bench, whose tables are dropped afterwards, or to the schema
named by --schema, which is left as it is. Either way a store that already
holds unfinished jobs is refused, since the bench would run them; run one
bench at a time per schema. On postgres the bench measures one node using
the database as a plain store; the shared queue that several troupe serve
nodes use is measured by BenchmarkBurnDownShared (make bench).`,
		Example: `  troupe bench burndown -n 100000 --store badger
  troupe bench steady --rate 1000 --duration 10s --store badger
  troupe bench http --concurrency 32 --duration 10s --batch 100
  troupe bench burndown --store postgres --database-url postgres://localhost/troupe --json`,
		Args: cobra.NoArgs,
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.store, "store", StoreMemory, "job store: memory, badger or postgres")
	pf.StringVar(&f.dataDir, "data-dir", "", "badger directory; default: a temporary directory, removed afterwards")
	pf.StringVar(&f.databaseURL, "database-url", env.getenv(envName("database_url")), "PostgreSQL connection string, required with --store postgres (env TROUPE_DATABASE_URL)")
	// The URL may hold a password: keep it out of --help.
	pf.Lookup("database-url").DefValue = ""
	pf.StringVar(&f.schema, "schema", benchSchemaDefault, "PostgreSQL schema; the tables of the default one are dropped afterwards")
	pf.IntVar(&f.workers, "workers", actors.WorkersDefault(), "size of the worker pool")
	pf.BoolVar(&f.json, "json", false, "print the summary as JSON instead of a table")
	pf.StringVar(&f.cpuProfile, "cpuprofile", "", "write a CPU profile of the run to this file, for go tool pprof")
	cmd.AddCommand(
		newBenchBurndownCommand(env, f),
		newBenchSteadyCommand(env, f),
		newBenchHTTPCommand(env, f),
	)
	return cmd
}

// benchCommand wraps a mode: it validates the shared flags, stops the
// bench on SIGINT or SIGTERM (cleaning up what it made), and prints the
// summary.
func benchCommand(env *environment, f *benchFlags, cmd *cobra.Command, run func(ctx context.Context, b *bencher) (*benchSummary, error)) *cobra.Command {
	cmd.Args = cobra.NoArgs
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := f.validate(); err != nil {
			return err
		}
		ctx, cancel := context.WithCancelCause(cmd.Context())
		defer cancel(nil)
		sigs := make(chan os.Signal, 1)
		stopSignals := env.notifySignals(sigs)
		defer stopSignals()
		done := make(chan struct{})
		var wg sync.WaitGroup
		defer wg.Wait()
		defer close(done)
		wg.Go(func() {
			select {
			case <-sigs:
				cancel(errInterrupted)
			case <-done:
			}
		})

		b := &bencher{
			flags:  *f,
			stderr: env.stderr,
			logger: slog.New(slog.NewTextHandler(env.stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		}
		stopProfile, err := startCPUProfile(f.cpuProfile)
		if err != nil {
			return err
		}
		summary, err := run(ctx, b)
		err = errors.Join(err, stopProfile())
		if errors.Is(context.Cause(ctx), errInterrupted) {
			return errors.New("bench interrupted")
		}
		if err != nil {
			return err
		}
		return summary.write(env.stdout, f.json)
	}
	return cmd
}

func newBenchBurndownCommand(env *environment, f *benchFlags) *cobra.Command {
	var n, batch int
	cmd := benchCommand(env, f, &cobra.Command{
		Use:   "burndown [-n N] [--batch K]",
		Short: "Insert N jobs, then time how fast the workers finish them",
		Long: `Insert N no-op jobs with SubmitBatch, K at a time, while the workers are held
at the start line; then release them and time the burn-down until every job is
stored as completed. Reports the insert rate, the burn-down rate (the work-off
alone) and the total time. The ready queue is sized to hold all N jobs.`,
	}, func(ctx context.Context, b *bencher) (*benchSummary, error) {
		if n < 1 {
			return nil, fmt.Errorf("invalid -n %d: must be at least 1", n)
		}
		if batch < 1 {
			return nil, fmt.Errorf("invalid --batch %d: must be at least 1", batch)
		}
		return b.burndown(ctx, n, batch)
	})
	cmd.Flags().IntVarP(&n, "jobs", "n", benchBurndownJobsDefault, "jobs to insert and burn down")
	cmd.Flags().IntVar(&batch, "batch", benchBatchDefault, "jobs per SubmitBatch call")
	return cmd
}

func newBenchSteadyCommand(env *environment, f *benchFlags) *cobra.Command {
	var (
		rate     float64
		duration time.Duration
	)
	cmd := benchCommand(env, f, &cobra.Command{
		Use:   "steady [--rate R] [--duration D]",
		Short: "Submit at a fixed rate and measure enqueue-to-start and enqueue-to-done latency",
		Long: `Submit no-op jobs at a fixed rate for a duration (a ticker; several jobs per
tick in one SubmitBatch when the rate is high), then wait for every job to be
stored as completed. Reports the latency from submission to the handler's
start (latency) and to the completed state being stored (doneLatency) as
p50/p90/p99/max, and the throughput achieved. Submissions refused because the
queue is full count as errors.`,
	}, func(ctx context.Context, b *bencher) (*benchSummary, error) {
		if rate <= 0 || math.IsInf(rate, 0) || math.IsNaN(rate) {
			return nil, fmt.Errorf("invalid --rate %v: must be a positive number of jobs per second", rate)
		}
		if duration <= 0 {
			return nil, fmt.Errorf("invalid --duration %s: must be positive", duration)
		}
		if total := rate * duration.Seconds(); total < 1 {
			return nil, fmt.Errorf("--rate %v for --duration %s submits no job; raise either", rate, duration)
		}
		return b.steady(ctx, rate, duration)
	})
	cmd.Flags().Float64Var(&rate, "rate", benchRateDefault, "jobs submitted per second")
	cmd.Flags().DurationVar(&duration, "duration", benchDurationDefault, "how long to submit")
	return cmd
}

func newBenchHTTPCommand(env *environment, f *benchFlags) *cobra.Command {
	var h httpBenchParams
	cmd := benchCommand(env, f, &cobra.Command{
		Use:   "http [--concurrency C] [--duration D] [--batch K] [--server URL --token T]",
		Short: "Load the HTTP API with concurrent submissions",
		Long: `Submit no-op jobs over HTTP from C goroutines, each with a keep-alive
connection, for a duration: one job per POST /jobs, or K per POST /jobs/batch
with --batch K. Reports requests/s, jobs/s, request latency p50/p90/p99/max
and the failed requests by status.

Without --server the bench starts a server in this process on 127.0.0.1 with
the memory store, --workers workers and its no-op handler, wired exactly as
troupe serve is. With --server it loads that server, which must have a noop
handler (troupe serve registers one unless --demo=false).`,
	}, func(ctx context.Context, b *bencher) (*benchSummary, error) {
		if h.concurrency < 1 {
			return nil, fmt.Errorf("invalid --concurrency %d: must be at least 1", h.concurrency)
		}
		if h.duration <= 0 {
			return nil, fmt.Errorf("invalid --duration %s: must be positive", h.duration)
		}
		if h.batch < 0 || h.batch > http.MaxBatchJobs {
			return nil, fmt.Errorf("invalid --batch %d: must be from 1 to %d, or 0 for single submissions", h.batch, http.MaxBatchJobs)
		}
		if h.server == "" && b.flags.store != StoreMemory {
			return nil, fmt.Errorf("the in-process server of bench http runs on the memory store; to load a %s store, start troupe serve --store %s and pass --server", b.flags.store, b.flags.store)
		}
		return b.loadHTTP(ctx, h)
	})
	token := env.getenv("TROUPE_API_TOKEN")
	if token == "" {
		if tokens, _ := toStrings(env.getenv(envName("api_tokens"))); len(tokens) > 0 {
			token = tokens[0]
		}
	}
	cmd.Flags().IntVar(&h.concurrency, "concurrency", benchConcurrencyDefault, "goroutines submitting at once")
	cmd.Flags().DurationVar(&h.duration, "duration", benchDurationDefault, "how long to submit")
	cmd.Flags().IntVar(&h.batch, "batch", 0, fmt.Sprintf("jobs per POST /jobs/batch, 1 to %d; 0 submits one job per POST /jobs", http.MaxBatchJobs))
	cmd.Flags().StringVar(&h.server, "server", "", "URL or host:port of a running server; default: start one in this process")
	cmd.Flags().StringVar(&h.token, "token", token, "bearer token for --server (env TROUPE_API_TOKEN, or the first of TROUPE_API_TOKENS)")
	cmd.Flags().Lookup("token").DefValue = ""
	return cmd
}

// bencher runs the modes with the shared flags.
type bencher struct {
	flags  benchFlags
	stderr io.Writer
	logger *slog.Logger
}

// benchSummary is a mode's result. Its JSON member names are stable, for
// scripts; fields of other modes are left out.
type benchSummary struct {
	// Mode is burndown, steady or http.
	Mode string `json:"mode"`
	// Store is memory, badger or postgres, or remote for bench http
	// --server.
	Store string `json:"store"`
	// Workers is the size of the worker pool; 0 when unknown.
	Workers int `json:"workers"`
	// Jobs counts the jobs accepted (stored and queued).
	Jobs int64 `json:"jobs"`
	// Completed counts the jobs stored as completed, where the bench can see
	// it: not on a server given with bench http --server.
	Completed *int64 `json:"completed,omitempty"`
	// Seconds is the time measured: the burn-down alone (burndown), from the
	// first submission to the last completion (steady), or the load (http).
	Seconds float64 `json:"seconds"`
	// JobsPerSecond is the mode's throughput over Seconds: jobs completed
	// (burndown, steady) or accepted (http).
	JobsPerSecond float64 `json:"jobsPerSecond"`
	// Latency is the enqueue-to-start latency (steady) or the request
	// latency (http).
	Latency *latencySummary `json:"latency,omitempty"`
	// Errors counts failures by kind: an HTTP status, "transport", or
	// "queue full"; empty when there were none.
	Errors map[string]int64 `json:"errors"`

	// InsertSeconds is how long the inserts took (burndown).
	InsertSeconds float64 `json:"insertSeconds,omitempty"`
	// InsertsPerSecond is the insert rate (burndown).
	InsertsPerSecond float64 `json:"insertsPerSecond,omitempty"`
	// TotalSeconds is the inserts and the burn-down together (burndown).
	TotalSeconds float64 `json:"totalSeconds,omitempty"`
	// Batch is the jobs per SubmitBatch call (burndown) or per HTTP request
	// (http; 0 for POST /jobs).
	Batch int `json:"batch,omitempty"`

	// Rate is the submission rate asked for, jobs/s (steady).
	Rate float64 `json:"rate,omitempty"`
	// SubmitRate is the submission rate achieved, jobs/s (steady).
	SubmitRate float64 `json:"submitRate,omitempty"`
	// DoneLatency is the enqueue-to-done latency (steady).
	DoneLatency *latencySummary `json:"doneLatency,omitempty"`

	// Concurrency is the number of submitting goroutines (http).
	Concurrency int `json:"concurrency,omitempty"`
	// Requests counts the requests answered, whatever the status (http).
	Requests int64 `json:"requests,omitempty"`
	// RequestsPerSecond is Requests over Seconds (http).
	RequestsPerSecond float64 `json:"requestsPerSecond,omitempty"`
	// Server is the API's base URL (http).
	Server string `json:"server,omitempty"`
}

// latencySummary describes a latency distribution in milliseconds.
type latencySummary struct {
	P50Ms float64 `json:"p50Ms"`
	P90Ms float64 `json:"p90Ms"`
	P99Ms float64 `json:"p99Ms"`
	MaxMs float64 `json:"maxMs"`
}

// summarizeLatency sorts ds and returns its percentiles (nearest rank), or
// nil when there is none.
func summarizeLatency(ds []time.Duration) *latencySummary {
	if len(ds) == 0 {
		return nil
	}
	slices.Sort(ds)
	at := func(p float64) float64 {
		i := min(max(int(math.Ceil(p*float64(len(ds))))-1, 0), len(ds)-1)
		return millis(ds[i])
	}
	return &latencySummary{P50Ms: at(0.50), P90Ms: at(0.90), P99Ms: at(0.99), MaxMs: millis(ds[len(ds)-1])}
}

// millis is d in milliseconds, to the microsecond.
func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// perSecond is n over d, or 0 for no time at all.
func perSecond(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// write prints the summary as JSON or as a table.
func (s *benchSummary) write(w io.Writer, asJSON bool) error {
	if asJSON {
		b, err := json.MarshalIndent(s, "", "  ")
		if err != nil {
			return fmt.Errorf("encode summary: %w", err)
		}
		b = append(b, '\n')
		if _, err := w.Write(b); err != nil {
			return fmt.Errorf("write summary: %w", err)
		}
		return nil
	}
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	for _, r := range s.rows() {
		fmt.Fprintf(tw, "%s\t%s\n", r[0], r[1])
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("format summary: %w", err)
	}
	if _, err := w.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("write summary: %w", err)
	}
	return nil
}

// rows lays the summary out for people, mode by mode.
func (s *benchSummary) rows() [][2]string {
	num := func(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) }
	secs := func(v float64) string { return strconv.FormatFloat(v, 'f', 3, 64) + " s" }
	lat := func(l *latencySummary) string {
		if l == nil {
			return "-"
		}
		return fmt.Sprintf("p50 %.3f ms  p90 %.3f ms  p99 %.3f ms  max %.3f ms", l.P50Ms, l.P90Ms, l.P99Ms, l.MaxMs)
	}
	workers := strconv.Itoa(s.Workers)
	if s.Workers == 0 {
		workers = "unknown"
	}
	rows := [][2]string{{"mode", s.Mode}, {"store", s.Store}, {"workers", workers}}
	switch s.Mode {
	case "burndown":
		rows = append(rows,
			[2]string{"jobs", strconv.FormatInt(s.Jobs, 10)},
			[2]string{"insert", fmt.Sprintf("%s  (%s jobs/s, %d per batch)", secs(s.InsertSeconds), num(s.InsertsPerSecond), s.Batch)},
			[2]string{"burn-down", fmt.Sprintf("%s  (%s jobs/s)", secs(s.Seconds), num(s.JobsPerSecond))},
			[2]string{"total", secs(s.TotalSeconds)})
	case "steady":
		rows = append(rows,
			[2]string{"rate", fmt.Sprintf("%s jobs/s asked, %s achieved", num(s.Rate), num(s.SubmitRate))},
			[2]string{"jobs", strconv.FormatInt(s.Jobs, 10)},
			[2]string{"throughput", fmt.Sprintf("%s jobs/s over %s", num(s.JobsPerSecond), secs(s.Seconds))},
			[2]string{"enqueue→start", lat(s.Latency)},
			[2]string{"enqueue→done", lat(s.DoneLatency)})
	case "http":
		batch := "1 per POST /jobs"
		if s.Batch > 0 {
			batch = fmt.Sprintf("%d per POST /jobs/batch", s.Batch)
		}
		rows = append(rows,
			[2]string{"server", s.Server},
			[2]string{"concurrency", strconv.Itoa(s.Concurrency)},
			[2]string{"jobs", fmt.Sprintf("%d (%s)", s.Jobs, batch)},
			[2]string{"requests", fmt.Sprintf("%d in %s  (%s requests/s)", s.Requests, secs(s.Seconds), num(s.RequestsPerSecond))},
			[2]string{"throughput", num(s.JobsPerSecond) + " jobs/s"},
			[2]string{"latency", lat(s.Latency)})
	}
	if s.Completed != nil {
		rows = append(rows, [2]string{"completed", strconv.FormatInt(*s.Completed, 10)})
	}
	errs := "none"
	if len(s.Errors) > 0 {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(s.Errors)) {
			parts = append(parts, fmt.Sprintf("%s: %d", k, s.Errors[k]))
		}
		errs = strings.Join(parts, ", ")
	}
	return append(rows, [2]string{"errors", errs})
}

// benchRecorder is the bench's handler and what it observes: how many jobs
// were stored as completed and, when asked, when each job started and when
// its completion was stored.
type benchRecorder struct {
	// gate, when set, holds every handler until it is closed, so that a
	// backlog can be inserted before any work starts.
	gate      chan struct{}
	openGate  sync.Once
	withTimes bool

	completed atomic.Int64
	// progressed wakes a waiter after a completion; a full buffer means
	// one wake-up is already pending.
	progressed chan struct{}

	mu      sync.Mutex
	startAt map[uuid.UUID]time.Time
	doneAt  map[uuid.UUID]time.Time
}

func newBenchRecorder(gated, withTimes bool) *benchRecorder {
	r := &benchRecorder{withTimes: withTimes, progressed: make(chan struct{}, 1)}
	if gated {
		r.gate = make(chan struct{})
	}
	if withTimes {
		r.startAt = make(map[uuid.UUID]time.Time)
		r.doneAt = make(map[uuid.UUID]time.Time)
	}
	return r
}

// Execute is the no-op handler. It notes its start by job ID: joining that
// with the submission times afterwards measures enqueue-to-start without
// holding a worker until the submitter has recorded the ID.
func (r *benchRecorder) Execute(ctx context.Context, _ []byte) error {
	if r.gate != nil {
		select {
		case <-r.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	now := time.Now()
	if r.withTimes {
		if id, ok := actors.JobIDFromContext(ctx); ok {
			r.mu.Lock()
			r.startAt[id] = now
			r.mu.Unlock()
		}
	}
	return nil
}

// release opens the gate; it is safe to call more than once.
func (r *benchRecorder) release() {
	if r.gate != nil {
		r.openGate.Do(func() { close(r.gate) })
	}
}

// storedCompleted records jobs whose completed snapshot was just stored.
func (r *benchRecorder) storedCompleted(jobs []*domain.Job) {
	now := time.Now()
	n := int64(0)
	for _, j := range jobs {
		if j.Status != domain.StatusCompleted {
			continue
		}
		n++
		if r.withTimes {
			r.mu.Lock()
			r.doneAt[j.ID] = now
			r.mu.Unlock()
		}
	}
	if n == 0 {
		return
	}
	r.completed.Add(n)
	select {
	case r.progressed <- struct{}{}:
	default:
	}
}

// waitCompleted waits until n jobs are stored as completed. It gives up
// when ctx ends or when none completes for benchStallTimeout, which means
// the runtime is stuck.
func (r *benchRecorder) waitCompleted(ctx context.Context, n int64) error {
	stall := time.NewTimer(benchStallTimeout)
	defer stall.Stop()
	last := r.completed.Load()
	for last < n {
		select {
		case <-r.progressed:
		case <-stall.C:
			return fmt.Errorf("no job completed for %s: %d of %d done", benchStallTimeout, last, n)
		case <-ctx.Done():
			return context.Cause(ctx)
		}
		if now := r.completed.Load(); now != last {
			last = now
			stall.Reset(benchStallTimeout)
		}
	}
	return nil
}

// recordingStore is the store under test, plus a note to the recorder each
// time a completed snapshot is stored. The runtime writes that snapshot
// before it considers the job done, so this is when the job is done.
type recordingStore struct {
	domain.Store
	rec *benchRecorder
}

// Update stores the snapshots and notes the completed ones.
func (s recordingStore) Update(ctx context.Context, jobs ...*domain.Job) error {
	if err := s.Store.Update(ctx, jobs...); err != nil {
		return err
	}
	s.rec.storedCompleted(jobs)
	return nil
}

// openStore opens the store the flags name and returns it with the
// function that closes it and removes what the bench made. A store that
// holds unfinished jobs is refused: the runtime would run them as bench
// jobs, with the wrong handler.
func (b *bencher) openStore(ctx context.Context) (domain.Store, func() error, error) {
	f := b.flags
	var (
		store   domain.Store
		cleanup func() error
		where   string
		reused  bool
		schema  string
	)
	switch f.store {
	case StoreMemory:
		s := memstore.New()
		store, cleanup = s, s.Close
	case StoreBadger:
		dir := f.dataDir
		reused = dir != ""
		if !reused {
			tmp, err := os.MkdirTemp("", "troupe-bench-")
			if err != nil {
				return nil, nil, fmt.Errorf("bench data directory: %w", err)
			}
			dir = tmp
		}
		s, err := badgerstore.Open(badgerstore.Options{Dir: dir, Logger: b.logger.With(slog.String("component", "badgerstore"))})
		if err != nil {
			if !reused {
				_ = os.RemoveAll(dir)
			}
			return nil, nil, fmt.Errorf("open badger store in %s: %w", dir, err)
		}
		where = "data directory " + dir
		store, cleanup = s, func() error {
			err := s.Close()
			if !reused {
				err = errors.Join(err, os.RemoveAll(dir))
			}
			return err
		}
	case StorePostgres:
		// The schema is always checked: even the bench's own holds jobs
		// after a run that was killed.
		schema, reused = f.schema, true
		s, err := pgstore.Open(ctx, pgstore.Options{URL: f.databaseURL, Schema: schema, Logger: b.logger.With(slog.String("component", "pgstore"))})
		if err != nil {
			return nil, nil, fmt.Errorf("open postgres store: %w", err)
		}
		where = fmt.Sprintf("schema %s (DROP SCHEMA %s CASCADE clears it)", schema, schema)
		store, cleanup = s, func() error {
			err := s.Close()
			if schema == benchSchemaDefault {
				// Only the tables go; the empty schema stays, as Migrate
				// leaves it, for the next run.
				mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), benchStopTimeout)
				defer cancel()
				err = errors.Join(err, pgstore.Migrate(mctx, f.databaseURL, schema, pgstore.MigrationDown))
			}
			return err
		}
	}
	if reused {
		page, err := store.List(ctx, domain.Filter{Statuses: []domain.Status{domain.StatusPending, domain.StatusRunning}, Limit: 1})
		if err == nil && page.Total > 0 {
			err = fmt.Errorf("the %s holds %d unfinished jobs, which the bench would run with its no-op handler; use an empty one", where, page.Total)
		}
		if err != nil {
			return nil, nil, errors.Join(err, cleanup())
		}
	}
	return store, cleanup, nil
}

// startSystem opens the store and starts a System on it with the bench's
// handler, and returns the function that stops both.
func (b *bencher) startSystem(ctx context.Context, rec *benchRecorder, queueSize int) (*actors.System, func() error, error) {
	store, closeStore, err := b.openStore(ctx)
	if err != nil {
		return nil, nil, err
	}
	sys, err := actors.New(recordingStore{Store: store, rec: rec},
		actors.WithWorkers(b.flags.workers),
		actors.WithQueueSize(queueSize),
		actors.WithLogger(b.logger))
	if err == nil {
		err = sys.Register(benchJobType, rec)
	}
	if err == nil {
		err = sys.Start(ctx)
	}
	if err != nil {
		return nil, nil, errors.Join(fmt.Errorf("start job system: %w", err), closeStore())
	}
	stop := func() error {
		// Held handlers would keep the stop waiting.
		rec.release()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), benchStopTimeout)
		defer cancel()
		return errors.Join(sys.Stop(sctx), closeStore())
	}
	return sys, stop, nil
}

// burndown inserts n jobs while the workers are held, then releases them
// and times the work-off.
func (b *bencher) burndown(ctx context.Context, n, batch int) (summary *benchSummary, err error) {
	rec := newBenchRecorder(true, false)
	sys, stop, err := b.startSystem(ctx, rec, max(actors.QueueSizeDefault, n))
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, stop()) }()

	var inserted atomic.Int64
	// burnStart is set when the workers are released.
	var burnStart atomic.Pointer[time.Time]
	insertMeter := newRateMeter()
	var burnMeter *rateMeter
	stopProgress := startProgress(b.stderr, func() (string, float64) {
		if at := burnStart.Load(); at != nil {
			if burnMeter == nil {
				burnMeter = &rateMeter{at: *at}
			}
			done := rec.completed.Load()
			return fmt.Sprintf("burndown: %d/%d done (%.0f jobs/s)", done, n, burnMeter.rate(done)), float64(done) / float64(n)
		}
		ins := inserted.Load()
		return fmt.Sprintf("burndown: %d/%d inserted (%.0f jobs/s)", ins, n, insertMeter.rate(ins)), float64(ins) / float64(n)
	})
	defer stopProgress()

	params := make([]actors.SubmitParams, min(batch, n))
	for i := range params {
		params[i] = actors.SubmitParams{Type: benchJobType, Payload: benchPayload}
	}
	start := time.Now()
	for left := n; left > 0; {
		k := min(left, len(params))
		if _, err := sys.SubmitBatch(ctx, params[:k]); err != nil {
			return nil, fmt.Errorf("insert jobs: %w", err)
		}
		left -= k
		inserted.Add(int64(k))
	}
	insertTook := time.Since(start)

	released := time.Now()
	burnStart.Store(&released)
	rec.release()
	if err := rec.waitCompleted(ctx, int64(n)); err != nil {
		return nil, fmt.Errorf("burn down: %w", err)
	}
	burnTook := time.Since(released)
	stopProgress()

	completed := rec.completed.Load()
	return &benchSummary{
		Mode:             "burndown",
		Store:            b.flags.store,
		Workers:          b.flags.workers,
		Jobs:             int64(n),
		Completed:        &completed,
		Seconds:          burnTook.Seconds(),
		JobsPerSecond:    perSecond(completed, burnTook),
		Errors:           map[string]int64{},
		InsertSeconds:    insertTook.Seconds(),
		InsertsPerSecond: perSecond(int64(n), insertTook),
		TotalSeconds:     (insertTook + burnTook).Seconds(),
		Batch:            batch,
	}, nil
}

// steady submits at rate jobs/s for d, then waits for every job to be
// done, and measures each job's latency to its start and to its end.
func (b *bencher) steady(ctx context.Context, rate float64, d time.Duration) (summary *benchSummary, err error) {
	rec := newBenchRecorder(false, true)
	sys, stop, err := b.startSystem(ctx, rec, actors.QueueSizeDefault)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, stop()) }()

	total := int64(math.Round(rate * d.Seconds()))
	// A tick per job up to 1,000 jobs/s; beyond, a tick a millisecond with
	// a batch each, since tickers do not keep up with shorter periods.
	interval := max(time.Duration(float64(time.Second)/rate), time.Millisecond)
	submitAt := make(map[uuid.UUID]time.Time, total)
	errs := map[string]int64{}
	var accepted atomic.Int64
	var submitting atomic.Bool
	submitting.Store(true)
	begin := time.Now()
	meter := newRateMeter()
	stopProgress := startProgress(b.stderr, func() (string, float64) {
		done := rec.completed.Load()
		if submitting.Load() {
			elapsed := time.Since(begin)
			return fmt.Sprintf("steady: %s/%s submitted %d, done %d (%.0f jobs/s)",
				elapsed.Truncate(time.Second), d, accepted.Load(), done, meter.rate(done)), elapsed.Seconds() / d.Seconds()
		}
		acc := accepted.Load()
		return fmt.Sprintf("steady: waiting for the last jobs: %d/%d done", done, acc), float64(done) / float64(max(acc, 1))
	})
	defer stopProgress()

	params := make([]actors.SubmitParams, http.MaxBatchJobs)
	for i := range params {
		params[i] = actors.SubmitParams{Type: benchJobType, Payload: benchPayload}
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	sent := int64(0)
	for sent < total {
		select {
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		case <-ticker.C:
		}
		due := min(total, int64(rate*time.Since(begin).Seconds()))
		for sent < due {
			k := min(due-sent, int64(len(params)))
			at := time.Now()
			jobs, err := sys.SubmitBatch(ctx, params[:k])
			sent += k
			switch {
			case errors.Is(err, domain.ErrQueueFull):
				errs["queue full"] += k
				continue
			case err != nil:
				return nil, fmt.Errorf("submit: %w", err)
			}
			for _, j := range jobs {
				submitAt[j.ID] = at
			}
			accepted.Add(k)
		}
	}
	submitTook := time.Since(begin)
	submitting.Store(false)
	if err := rec.waitCompleted(ctx, accepted.Load()); err != nil {
		return nil, fmt.Errorf("wait for the jobs: %w", err)
	}
	stopProgress()

	rec.mu.Lock()
	defer rec.mu.Unlock()
	toStart := make([]time.Duration, 0, len(submitAt))
	toDone := make([]time.Duration, 0, len(submitAt))
	last := begin
	for id, at := range submitAt {
		if s, ok := rec.startAt[id]; ok {
			toStart = append(toStart, s.Sub(at))
		}
		if e, ok := rec.doneAt[id]; ok {
			toDone = append(toDone, e.Sub(at))
			if e.After(last) {
				last = e
			}
		}
	}
	completed := rec.completed.Load()
	took := last.Sub(begin)
	return &benchSummary{
		Mode:          "steady",
		Store:         b.flags.store,
		Workers:       b.flags.workers,
		Jobs:          accepted.Load(),
		Completed:     &completed,
		Seconds:       took.Seconds(),
		JobsPerSecond: perSecond(completed, took),
		Latency:       summarizeLatency(toStart),
		Errors:        errs,
		Rate:          rate,
		SubmitRate:    perSecond(accepted.Load(), submitTook),
		DoneLatency:   summarizeLatency(toDone),
	}, nil
}

// httpBenchParams are the flags of bench http.
type httpBenchParams struct {
	concurrency int
	duration    time.Duration
	batch       int
	server      string
	token       string
}

// httpTarget is the API under load.
type httpTarget struct {
	base    *url.URL
	store   string
	workers int
	// rec sees the jobs of an in-process server; nil for a remote one.
	rec  *benchRecorder
	stop func() error
}

// startServer runs a server in this process with exactly the wiring of
// troupe serve, on the memory store, with the bench's handler in place of
// the demo handlers, and its store decorated so that the bench sees jobs
// complete.
func (b *bencher) startServer(ctx context.Context) (*httpTarget, error) {
	rec := newBenchRecorder(false, false)
	cfg := DefaultConfig()
	cfg.Store = StoreMemory
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.Workers = b.flags.workers
	cfg.Demo = false
	cfg.LogLevel = "warn"
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := NewMain(cfg, b.logger)
	var srv *http.Server
	app := fx.New(m.Options(ctx),
		actors.ProvideHandler(benchJobType, rec),
		fx.Decorate(func(s domain.Store) domain.Store { return recordingStore{Store: s, rec: rec} }),
		fx.Populate(&srv))
	if err := app.Err(); err != nil {
		return nil, fmt.Errorf("build the server: %w", err)
	}
	startCtx, cancel := context.WithTimeout(ctx, app.StartTimeout())
	defer cancel()
	if err := app.Start(startCtx); err != nil {
		return nil, fmt.Errorf("start the server: %w", err)
	}
	base, err := serverURL(srv.Addr().String())
	if err != nil {
		return nil, errors.Join(err, app.Stop(context.WithoutCancel(ctx)))
	}
	return &httpTarget{base: base, store: StoreMemory, workers: cfg.Workers, rec: rec, stop: func() error {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), app.StopTimeout())
		defer cancel()
		return app.Stop(sctx)
	}}, nil
}

// remoteTarget describes a running server; its pool size comes from its
// health answer, when it gives one.
func (b *bencher) remoteTarget(ctx context.Context, client *nethttp.Client, server string) (*httpTarget, error) {
	base, err := serverURL(server)
	if err != nil {
		return nil, err
	}
	t := &httpTarget{base: base, store: "remote", stop: func() error { return nil }}
	req, err := nethttp.NewRequestWithContext(ctx, nethttp.MethodGet, base.String()+"/health", nil)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the server at %s: %w", base, err)
	}
	defer resp.Body.Close()
	var h http.HealthResponse
	if json.NewDecoder(io.LimitReader(resp.Body, maxResponseBytes)).Decode(&h) == nil {
		t.workers = h.Workers.Size
	}
	return t, nil
}

// httpWorkerResult is what one submitting goroutine saw.
type httpWorkerResult struct {
	latencies []time.Duration
	errors    map[string]int64
}

// loadHTTP loads the API from p.concurrency goroutines for p.duration.
func (b *bencher) loadHTTP(ctx context.Context, p httpBenchParams) (summary *benchSummary, err error) {
	transport := nethttp.DefaultTransport.(*nethttp.Transport).Clone()
	// One kept-alive connection per goroutine: the default keeps two idle
	// per host, and the others would reconnect for every request.
	transport.MaxIdleConns = 2 * p.concurrency
	transport.MaxIdleConnsPerHost = p.concurrency
	client := &nethttp.Client{Transport: transport, Timeout: benchHTTPRequestTimeout}
	defer client.CloseIdleConnections()

	var target *httpTarget
	if p.server == "" {
		target, err = b.startServer(ctx)
	} else {
		target, err = b.remoteTarget(ctx, client, p.server)
	}
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, target.stop()) }()

	path, body, perRequest := "/jobs", []byte(`{"type":"noop","payload":{}}`), int64(1)
	if p.batch > 0 {
		jobs := make([]http.SubmitRequest, p.batch)
		for i := range jobs {
			jobs[i] = http.SubmitRequest{Type: string(benchJobType), Payload: benchPayload}
		}
		if body, err = json.Marshal(http.BatchSubmitRequest{Jobs: jobs}); err != nil {
			return nil, fmt.Errorf("encode batch: %w", err)
		}
		path, perRequest = "/jobs/batch", int64(p.batch)
	}
	endpoint := target.base.String() + path

	var requests, accepted, failed atomic.Int64
	var draining atomic.Bool
	begin := time.Now()
	deadline := begin.Add(p.duration)
	meter := newRateMeter()
	stopProgress := startProgress(b.stderr, func() (string, float64) {
		jobs := accepted.Load()
		if draining.Load() {
			done := target.rec.completed.Load()
			return fmt.Sprintf("http: waiting for the server to finish its jobs: %d/%d done", done, jobs), float64(done) / float64(max(jobs, 1))
		}
		elapsed := time.Since(begin)
		return fmt.Sprintf("http: %s/%s %d requests, %d jobs (%.0f jobs/s), %d errors",
			elapsed.Truncate(time.Second), p.duration, requests.Load(), jobs, meter.rate(jobs), failed.Load()), elapsed.Seconds() / p.duration.Seconds()
	})
	defer stopProgress()

	results := make([]httpWorkerResult, p.concurrency)
	var wg sync.WaitGroup
	for i := range p.concurrency {
		wg.Go(func() {
			res := httpWorkerResult{errors: map[string]int64{}}
			for ctx.Err() == nil && time.Now().Before(deadline) {
				start := time.Now()
				status, err := b.post(ctx, client, endpoint, p.token, body)
				took := time.Since(start)
				switch {
				case err != nil && ctx.Err() != nil:
					// Interrupted: not the server's failure.
				case err != nil:
					res.errors["transport"]++
					failed.Add(1)
				case status == nethttp.StatusCreated:
					requests.Add(1)
					accepted.Add(perRequest)
					res.latencies = append(res.latencies, took)
				default:
					requests.Add(1)
					res.errors[strconv.Itoa(status)]++
					failed.Add(1)
					res.latencies = append(res.latencies, took)
				}
			}
			results[i] = res
		})
	}
	wg.Wait()
	took := time.Since(begin)
	var completed *int64
	if target.rec != nil {
		// The server stops only once it has worked off what it accepted:
		// the figure says whether it kept up, and a stop under load would
		// measure the hand-back instead.
		draining.Store(true)
		if err := target.rec.waitCompleted(ctx, accepted.Load()); err != nil {
			return nil, fmt.Errorf("wait for the server's jobs: %w", err)
		}
		n := target.rec.completed.Load()
		completed = &n
	}
	stopProgress()
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}

	var latencies []time.Duration
	errs := map[string]int64{}
	for _, r := range results {
		latencies = append(latencies, r.latencies...)
		for k, v := range r.errors {
			errs[k] += v
		}
	}
	return &benchSummary{
		Mode:              "http",
		Store:             target.store,
		Workers:           target.workers,
		Jobs:              accepted.Load(),
		Completed:         completed,
		Seconds:           took.Seconds(),
		JobsPerSecond:     perSecond(accepted.Load(), took),
		Latency:           summarizeLatency(latencies),
		Errors:            errs,
		Batch:             p.batch,
		Concurrency:       p.concurrency,
		Requests:          requests.Load(),
		RequestsPerSecond: perSecond(requests.Load(), took),
		Server:            target.base.String(),
	}, nil
}

// post sends one submission and reads the answer to its end, so that the
// connection is kept alive for the next.
func (b *bencher) post(ctx context.Context, client *nethttp.Client, endpoint, token string, body []byte) (int, error) {
	req, err := nethttp.NewRequestWithContext(ctx, nethttp.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, fmt.Errorf("read answer: %w", err)
	}
	return resp.StatusCode, nil
}

// startCPUProfile profiles the process into the file at path until the
// returned function is called; an empty path profiles nothing.
func startCPUProfile(path string) (stop func() error, err error) {
	if path == "" {
		return func() error { return nil }, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		return nil, errors.Join(fmt.Errorf("cpu profile: %w", err), f.Close())
	}
	return func() error {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		return nil
	}, nil
}

// rateMeter turns a growing count into a rate since its previous reading.
type rateMeter struct {
	last int64
	at   time.Time
}

// newRateMeter returns a meter whose first reading counts from now and 0.
func newRateMeter() *rateMeter { return &rateMeter{at: time.Now()} }

// rate returns the count's growth per second since the previous reading.
func (m *rateMeter) rate(count int64) float64 {
	now := time.Now()
	r := perSecond(count-m.last, now.Sub(m.at))
	m.at, m.last = now, count
	return r
}

// startProgress reports status() on w until the returned function is
// called (which is safe to call more than once): a line a second, or a
// one-line bar redrawn in place when w is a terminal. status returns the
// text and the fraction done, 0 to 1.
func startProgress(w io.Writer, status func() (text string, fraction float64)) (stop func()) {
	tty := isTerminal(w)
	every := benchProgressEvery
	if tty {
		every = benchProgressEveryOnTTY
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		ticker := time.NewTicker(every)
		defer ticker.Stop()
		for {
			select {
			case <-done:
				if tty {
					fmt.Fprint(w, "\r\x1b[K")
				}
				return
			case <-ticker.C:
				text, fraction := status()
				if tty {
					fmt.Fprintf(w, "\r%s %s\x1b[K", progressBar(fraction), text)
				} else {
					fmt.Fprintln(w, text)
				}
			}
		}
	})
	var once sync.Once
	return func() {
		once.Do(func() {
			close(done)
			wg.Wait()
		})
	}
}

// progressBar draws fraction (clamped to 0..1) as a bar with a percentage.
func progressBar(fraction float64) string {
	fraction = min(max(fraction, 0), 1)
	filled := int(fraction * benchProgressBarWidth)
	return fmt.Sprintf("[%s%s] %3.0f%%", strings.Repeat("#", filled), strings.Repeat(".", benchProgressBarWidth-filled), fraction*100)
}

// isTerminal reports whether w is a terminal (a character device), where
// a progress bar can be redrawn in place.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}
