package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"runtime/pprof"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/fx"

	"github.com/troupe-go/troupe/actors"
	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/http"
	"github.com/troupe-go/troupe/internal/bench"
	"github.com/troupe-go/troupe/persistence/badgerstore"
)

// Defaults of the bench's flags.
const (
	benchBurndownJobsDefault = 100_000
	benchBatchDefault        = 1000
	benchRateDefault         = 1000.0
	benchDurationDefault     = 10 * time.Second
	benchConcurrencyDefault  = 16
	benchScheduledJobs       = 10_000
	benchWindowDefault       = 10 * time.Second
	benchSoakDurationDefault = 10 * time.Minute
	benchSoakRateDefault     = 2000.0
	benchSoakRetention       = 30 * time.Second
	benchSoakSampleDefault   = 30 * time.Second

	benchExternalJobsDefault       = 100_000
	benchExternalWorkersDefault    = 8
	benchExternalBatchDefault      = 50
	benchExternalRoundTripsDefault = 1000
)

// benchFlags are the flags every bench mode shares.
type benchFlags struct {
	store       string
	dataDir     string
	databaseURL string
	schema      string
	workers     int
	nodes       int
	durability  string
	json        bool
	cpuProfile  string
	// durabilitySet says --durability was given: it applies to badger
	// only, even with its default value.
	durabilitySet bool
}

// validate checks the shared flags with the rules serve's options follow,
// naming the flags.
func (f benchFlags) validate() error {
	name := func(key string) string {
		switch key {
		case "database_url":
			return "--database-url (or TROUPE_DATABASE_URL)"
		case "database_schema":
			return "--schema"
		}
		return "--" + flagName(key)
	}
	errs := checkStore(storeOptions{
		store:           f.store,
		dataDir:         f.dataDir,
		dataDirOptional: true, // a temporary directory
		databaseURL:     f.databaseURL,
		schema:          f.schema,
	}, name, func(store string) string { return "with --store " + store })
	if len(errs) > 0 {
		return errs[0]
	}
	cfg := actors.Config{}.WithDefaults()
	cfg.Workers = f.workers
	if errs := actorsErrors(cfg.Validate(), name); len(errs) > 0 {
		return errs[0].err
	}
	if f.nodes < 1 {
		return fmt.Errorf("invalid --nodes %d: must be at least 1", f.nodes)
	}
	if f.nodes > 1 && f.store != StorePostgres {
		return fmt.Errorf("--nodes %d needs --store postgres, not %s: only PostgreSQL's queue is shared by several nodes", f.nodes, f.store)
	}
	if f.durabilitySet {
		if f.store != StoreBadger {
			return fmt.Errorf("--durability applies to --store badger, not %s", f.store)
		}
		if err := badgerstore.Durability(f.durability).Valid(); err != nil {
			return fmt.Errorf("invalid --durability %q: must be one of %s", f.durability, durabilityNames())
		}
	}
	return nil
}

// durabilityNames lists Badger's durabilities for messages and help.
func durabilityNames() string {
	names := make([]string, 0, len(badgerstore.Durabilities()))
	for _, d := range badgerstore.Durabilities() {
		names = append(names, string(d))
	}
	return strings.Join(names, ", ")
}

// storeDefaultAnnotation names, in a mode's annotations, the store it
// runs on when --store is not given, if not memory.
const storeDefaultAnnotation = "troupe.bench.store-default"

func newBenchCommand(env *environment) *cobra.Command {
	f := &benchFlags{}
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure the job runtime, its store and the HTTP API",
		Long: `Measure the real runtime in this process, on the store of your choice, with
a no-op handler (the demo handlers are not registered):

  troupe bench burndown   insert N jobs, then time how fast the workers finish them
  troupe bench steady     submit at a fixed rate; enqueue-to-start and -done latency
  troupe bench scheduled  submit jobs to run later; how late each one starts
  troupe bench http       load the HTTP API (an in-process server, or --server)
  troupe bench soak       submit for minutes with a short retention; the store's size over time
  troupe bench external   work jobs off through the worker protocol with Go client.Workers

Progress goes to stderr every second (a one-line bar on a terminal); the
summary goes to stdout as a table, or as JSON with --json.

With --store badger the data lives in a temporary directory that is removed
afterwards, unless --data-dir names one. With --store postgres the jobs go to
the schema troupe_bench, whose tables are dropped afterwards, or to the schema
named by --schema, which is left as it is. Either way a store that already
holds unfinished jobs is refused, since the bench would run them; run one
bench at a time per schema. With --durability, Badger syncs as troupe serve's
durability option says (full by default, as with serve).

On postgres the bench runs the queue shared in the database, as troupe serve
does. With --nodes N it runs N nodes in this process, each with its own
connection pool and --workers workers, on the same schema: the jobs are
submitted through the first, and every node claims and runs them.

A job counts as done once the store committed its completed outcome, not when
its handler returned (bench http counts accepted submissions). The summary says what was measured: the CPUs and
GOMAXPROCS, the workers and nodes, the store with Badger's durability or
PostgreSQL's version and synchronous_commit, and when a job counted as done
(doneWhen in JSON).`,
		Example: `  troupe bench burndown -n 100000 --store badger
  troupe bench steady --rate 1000 --duration 10s --store badger
  troupe bench scheduled --jobs 10000 --window 10s --store badger
  troupe bench http --concurrency 32 --duration 10s --batch 100
  troupe bench burndown --store postgres --database-url postgres://localhost/troupe --json
  troupe bench burndown --store postgres --database-url postgres://localhost/troupe --nodes 3
  troupe bench burndown --store badger --durability none
  troupe bench soak --duration 10m --rate 2000 --retention-completed 30s`,
		Args: cobra.NoArgs,
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.store, "store", StoreMemory, "job store: memory, badger or postgres")
	pf.StringVar(&f.dataDir, "data-dir", "", "badger directory; default: a temporary directory, removed afterwards")
	pf.StringVar(&f.databaseURL, "database-url", env.getenv(envName("database_url")), "PostgreSQL connection string, required with --store postgres (env TROUPE_DATABASE_URL)")
	// The URL may hold a password: keep it out of --help.
	pf.Lookup("database-url").DefValue = ""
	pf.StringVar(&f.schema, "schema", bench.SchemaDefault, "PostgreSQL schema; the tables of the default one are dropped afterwards")
	pf.IntVar(&f.workers, "workers", actors.WorkersDefault(), "size of the worker pool (of each node)")
	pf.IntVar(&f.nodes, "nodes", 1, "with --store postgres: nodes in this process sharing the queue, each with its own connection pool")
	pf.StringVar(&f.durability, "durability", string(badgerstore.DurabilityFull), "with --store badger: which writes wait for fsync: "+durabilityNames())
	pf.BoolVar(&f.json, "json", false, "print the summary as JSON instead of a table")
	pf.StringVar(&f.cpuProfile, "cpuprofile", "", "write a CPU profile of the run to this file, for go tool pprof")
	cmd.AddCommand(
		newBenchBurndownCommand(env, f),
		newBenchSteadyCommand(env, f),
		newBenchScheduledCommand(env, f),
		newBenchHTTPCommand(env, f),
		newBenchSoakCommand(env, f),
		newBenchExternalCommand(env, f),
	)
	return cmd
}

// benchCommand wraps a mode: it validates the shared flags, stops the
// bench on SIGINT or SIGTERM (cleaning up what it made), and prints the
// summary.
func benchCommand(env *environment, f *benchFlags, cmd *cobra.Command, run func(ctx context.Context, b *bench.Bencher) (*bench.Summary, error)) *cobra.Command {
	cmd.Args = cobra.NoArgs
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if d := cmd.Annotations[storeDefaultAnnotation]; d != "" && !cmd.Flags().Changed("store") {
			f.store = d
		}
		f.durabilitySet = cmd.Flags().Changed("durability")
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
				cancel(bench.ErrInterrupted)
			case <-done:
			}
		})

		logger := slog.New(slog.NewTextHandler(env.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		b := &bench.Bencher{
			Store:       f.store,
			DataDir:     f.dataDir,
			Durability:  f.durability,
			DatabaseURL: f.databaseURL,
			Schema:      f.schema,
			Workers:     f.workers,
			Nodes:       f.nodes,
			Progress:    env.stderr,
			Logger:      logger,
			StartServer: startBenchServer(logger),

			StartExternalServer: startExternalBenchServer(logger),
		}
		stopProfile, err := startCPUProfile(f.cpuProfile)
		if err != nil {
			return err
		}
		summary, err := run(ctx, b)
		err = errors.Join(err, stopProfile())
		if errors.Is(context.Cause(ctx), bench.ErrInterrupted) {
			return errors.New("bench interrupted")
		}
		if err != nil {
			return err
		}
		return summary.Write(env.stdout, f.json)
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
	}, func(ctx context.Context, b *bench.Bencher) (*bench.Summary, error) {
		if n < 1 {
			return nil, fmt.Errorf("invalid -n %d: must be at least 1", n)
		}
		if batch < 1 {
			return nil, fmt.Errorf("invalid --batch %d: must be at least 1", batch)
		}
		return b.Burndown(ctx, n, batch)
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
	}, func(ctx context.Context, b *bench.Bencher) (*bench.Summary, error) {
		if rate <= 0 || math.IsInf(rate, 0) || math.IsNaN(rate) {
			return nil, fmt.Errorf("invalid --rate %v: must be a positive number of jobs per second", rate)
		}
		if duration <= 0 {
			return nil, fmt.Errorf("invalid --duration %s: must be positive", duration)
		}
		if total := rate * duration.Seconds(); total < 1 {
			return nil, fmt.Errorf("--rate %v for --duration %s submits no job; raise either", rate, duration)
		}
		return b.Steady(ctx, rate, duration)
	})
	cmd.Flags().Float64Var(&rate, "rate", benchRateDefault, "jobs submitted per second")
	cmd.Flags().DurationVar(&duration, "duration", benchDurationDefault, "how long to submit")
	return cmd
}

func newBenchScheduledCommand(env *environment, f *benchFlags) *cobra.Command {
	var (
		n      int
		window time.Duration
	)
	cmd := benchCommand(env, f, &cobra.Command{
		Use:   "scheduled [--jobs N] [--window D]",
		Short: "Submit jobs to run later and measure how late each one starts",
		Long: `Submit N no-op jobs whose runAt is spread evenly over a window (submitted in
a random order, 1000 per SubmitBatch), the window starting about a second
after the submissions end. The jobs wait scheduled in the store until the
runtime's scheduler makes them pending, as with troupe serve. Reports each
job's lateness, the time its handler started minus its runAt, as
p50/p90/p99/max.`,
	}, func(ctx context.Context, b *bench.Bencher) (*bench.Summary, error) {
		if n < 1 {
			return nil, fmt.Errorf("invalid --jobs %d: must be at least 1", n)
		}
		if window <= 0 {
			return nil, fmt.Errorf("invalid --window %s: must be positive", window)
		}
		return b.Scheduled(ctx, n, window, benchBatchDefault)
	})
	cmd.Flags().IntVarP(&n, "jobs", "n", benchScheduledJobs, "jobs to schedule")
	cmd.Flags().DurationVar(&window, "window", benchWindowDefault, "how long a window the jobs' runAt spread over")
	return cmd
}

func newBenchHTTPCommand(env *environment, f *benchFlags) *cobra.Command {
	var h httpBenchFlags
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
	}, func(ctx context.Context, b *bench.Bencher) (*bench.Summary, error) {
		if h.concurrency < 1 {
			return nil, fmt.Errorf("invalid --concurrency %d: must be at least 1", h.concurrency)
		}
		if h.duration <= 0 {
			return nil, fmt.Errorf("invalid --duration %s: must be positive", h.duration)
		}
		if h.batch < 0 || h.batch > http.MaxBatchJobs {
			return nil, fmt.Errorf("invalid --batch %d: must be from 1 to %d, or 0 for single submissions", h.batch, http.MaxBatchJobs)
		}
		if b.Nodes > 1 {
			return nil, fmt.Errorf("bench http takes no --nodes: its in-process server is one node on the memory store; to load several, start troupe serve nodes and pass --server")
		}
		if h.server == "" && b.Store != StoreMemory {
			return nil, fmt.Errorf("the in-process server of bench http runs on the memory store; to load a %s store, start troupe serve --store %s and pass --server", b.Store, b.Store)
		}
		p := bench.HTTPParams{Concurrency: h.concurrency, Duration: h.duration, Batch: h.batch, Token: h.token}
		if h.server != "" {
			server, err := serverURL(h.server)
			if err != nil {
				return nil, err
			}
			p.Server = server
		}
		return b.HTTP(ctx, p)
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

func newBenchSoakCommand(env *environment, f *benchFlags) *cobra.Command {
	var (
		p   bench.SoakParams
		cmd *cobra.Command
	)
	cmd = benchCommand(env, f, &cobra.Command{
		Use:   "soak [--duration D] [--rate R] [--retention-completed D] [--sample D]",
		Short: "Submit for minutes with a short retention and watch the store's size",
		Long: `Submit no-op jobs at a fixed rate (in batches) for a duration, with completed
jobs kept only --retention-completed, and measure the store every --sample:
on Badger the size of the data directory (every file under it), on PostgreSQL
the row count of troupe_jobs and its pg_total_relation_size. Each sample is a
line, with the time elapsed and the jobs completed so far (on stderr with
--json, whose summary holds them as samples). The runtime and its pruner are
troupe serve's: with a working pruner the size stays within a band instead of
growing with every job.

The store is badger unless --store says postgres; the memory store has no
size to measure.`,
		Annotations: map[string]string{storeDefaultAnnotation: StoreBadger},
	}, func(ctx context.Context, b *bench.Bencher) (*bench.Summary, error) {
		if p.Rate <= 0 || math.IsInf(p.Rate, 0) || math.IsNaN(p.Rate) {
			return nil, fmt.Errorf("invalid --rate %v: must be a positive number of jobs per second", p.Rate)
		}
		if p.Duration <= 0 {
			return nil, fmt.Errorf("invalid --duration %s: must be positive", p.Duration)
		}
		if p.RetentionCompleted <= 0 {
			return nil, fmt.Errorf("invalid --retention-completed %s: must be positive (the soak measures pruning)", p.RetentionCompleted)
		}
		if p.Sample <= 0 {
			return nil, fmt.Errorf("invalid --sample %s: must be positive", p.Sample)
		}
		if b.Store == StoreMemory {
			return nil, errors.New("the soak measures a store on disk: use --store badger or --store postgres")
		}
		p.Out = env.stdout
		if f.json {
			p.Out = env.stderr
		}
		return b.Soak(ctx, p)
	})
	fs := cmd.Flags()
	fs.DurationVar(&p.Duration, "duration", benchSoakDurationDefault, "how long to submit")
	fs.Float64Var(&p.Rate, "rate", benchSoakRateDefault, "jobs submitted per second")
	fs.DurationVar(&p.RetentionCompleted, "retention-completed", benchSoakRetention, "how long completed jobs are kept before the pruner deletes them")
	fs.DurationVar(&p.Sample, "sample", benchSoakSampleDefault, "how often the store's size is measured")
	return cmd
}

func newBenchExternalCommand(env *environment, f *benchFlags) *cobra.Command {
	var (
		p   bench.ExternalParams
		cmd *cobra.Command
	)
	cmd = benchCommand(env, f, &cobra.Command{
		Use:   "external [-n N] [--clients C] [--batch K] [--round-trips R]",
		Short: "Work jobs off through the worker protocol with Go client.Workers",
		Long: `Start a server in this process wired as troupe serve is, on 127.0.0.1, with a
job type declared external; insert N jobs of it; then run C client.Workers
(package http/client), each claiming K jobs at a time over POST /workers/claim
and reporting outcomes in batches over POST /workers/outcomes, and time them
until every job's completion is committed (the server answered its outcome
with "completed"; the store's count is checked afterwards). Then, on the idle
server, time R single-job round trips: a claim of one ready job and its
complete, as p50/p90/p99/max.

The store is badger (in a temporary directory unless --data-dir) unless
--store says memory.`,
		Annotations: map[string]string{storeDefaultAnnotation: StoreBadger},
	}, func(ctx context.Context, b *bench.Bencher) (*bench.Summary, error) {
		if b.Store == StorePostgres {
			return nil, errors.New("bench external runs on badger or memory; on postgres, start troupe serve --store postgres --external-types and run client.Workers against it")
		}
		if p.Jobs < 1 {
			return nil, fmt.Errorf("invalid --jobs %d: must be at least 1", p.Jobs)
		}
		if p.Workers < 1 {
			return nil, fmt.Errorf("invalid --clients %d: must be at least 1", p.Workers)
		}
		if p.Batch < 1 || p.Batch > actors.MaxClaim {
			return nil, fmt.Errorf("invalid --batch %d: must be from 1 to %d", p.Batch, actors.MaxClaim)
		}
		if p.RoundTrips < 0 {
			return nil, fmt.Errorf("invalid --round-trips %d: must be 0 or more", p.RoundTrips)
		}
		return b.External(ctx, p)
	})
	fs := cmd.Flags()
	fs.IntVarP(&p.Jobs, "jobs", "n", benchExternalJobsDefault, "jobs to work off")
	fs.IntVar(&p.Workers, "clients", benchExternalWorkersDefault, "client.Workers claiming at once")
	fs.IntVar(&p.Batch, "batch", benchExternalBatchDefault, "jobs per claim (and outcomes per report) of each client.Worker")
	fs.IntVar(&p.RoundTrips, "round-trips", benchExternalRoundTripsDefault, "single-job claim→complete round trips timed on the idle server; 0 for none")
	return cmd
}

// startExternalBenchServer is bench external's in-process server: the
// wiring of troupe serve on the bench's store, with the bench's type
// declared external, no demo handlers, and the ready queue sized for the
// whole backlog.
func startExternalBenchServer(logger *slog.Logger) bench.ExternalServerStarter {
	return func(ctx context.Context, b *bench.Bencher, p bench.ExternalServer) (*bench.RuntimeServer, error) {
		cfg := DefaultConfig()
		cfg.Store = b.Store
		cfg.HTTPAddr = "127.0.0.1:0"
		cfg.Workers = p.Workers
		cfg.QueueSize = p.QueueSize
		cfg.Demo = false
		cfg.LogLevel = "warn"
		cleanup := func() error { return nil }
		if cfg.Store == StoreBadger {
			cfg.Durability = cmp.Or(b.Durability, cfg.Durability)
			cfg.DataDir = b.DataDir
			if cfg.DataDir == "" {
				dir, err := os.MkdirTemp("", "troupe-bench-external-*")
				if err != nil {
					return nil, fmt.Errorf("bench data directory: %w", err)
				}
				cfg.DataDir = dir
				cleanup = func() error { return os.RemoveAll(dir) }
			}
		}
		if err := cfg.Validate(); err != nil {
			return nil, errors.Join(err, cleanup())
		}
		m := NewMain(cfg, logger)
		var (
			srv *http.Server
			sys *actors.System
		)
		app := fx.New(m.Options(ctx),
			fx.Decorate(func(c actors.Config) actors.Config {
				c.ExternalTypes = append(c.ExternalTypes, p.Type)
				return c
			}),
			fx.Populate(&srv, &sys))
		if err := app.Err(); err != nil {
			return nil, errors.Join(fmt.Errorf("build the server: %w", err), cleanup())
		}
		startCtx, cancel := context.WithTimeout(ctx, app.StartTimeout())
		defer cancel()
		if err := app.Start(startCtx); err != nil {
			return nil, errors.Join(fmt.Errorf("start the server: %w", err), cleanup())
		}
		stop := func() error {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), app.StopTimeout())
			defer cancel()
			return errors.Join(app.Stop(sctx), cleanup())
		}
		base, err := serverURL(srv.Addr().String())
		if err != nil {
			return nil, errors.Join(err, stop())
		}
		return &bench.RuntimeServer{URL: base, System: sys, Stop: stop}, nil
	}
}

// httpBenchFlags are the flags of bench http.
type httpBenchFlags struct {
	concurrency int
	duration    time.Duration
	batch       int
	server      string
	token       string
}

// startBenchServer is bench http's in-process server: exactly the wiring
// of troupe serve, on the memory store, with the bench's handler in place
// of the demo handlers.
func startBenchServer(logger *slog.Logger) bench.ServerStarter {
	return func(ctx context.Context, workers int, handler domain.Handler, wrap func(domain.Store) domain.Store) (*bench.Server, error) {
		cfg := DefaultConfig()
		cfg.Store = StoreMemory
		cfg.HTTPAddr = "127.0.0.1:0"
		cfg.Workers = workers
		cfg.Demo = false
		cfg.LogLevel = "warn"
		if err := cfg.Validate(); err != nil {
			return nil, err
		}
		m := NewMain(cfg, logger)
		var srv *http.Server
		app := fx.New(m.Options(ctx),
			actors.ProvideHandler(bench.JobType, handler),
			fx.Decorate(wrap),
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
		return &bench.Server{URL: base, Stop: func() error {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), app.StopTimeout())
			defer cancel()
			return app.Stop(sctx)
		}}, nil
	}
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
