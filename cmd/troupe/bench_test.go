package main

import (
	"encoding/json"
	"fmt"
	nethttp "net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/internal/bench"
	"github.com/troupe-go/troupe/internal/pgtest"
	"github.com/troupe-go/troupe/persistence/badgerstore"
)

// runBench runs `troupe bench args...` in-process, as the binary does, and
// returns its exit status, stdout and stderr.
func runBench(t *testing.T, environ []string, args ...string) (int, string, string) {
	t.Helper()
	env, stdout, stderr, _ := testEnv(environ...)
	code := run(t.Context(), append([]string{"bench"}, args...), env)
	return code, stdout.String(), stderr.String()
}

// benchJSON runs a bench that must succeed with --json and decodes its
// summary, checking the members every mode has.
func benchJSON(t *testing.T, args ...string) map[string]any {
	t.Helper()
	code, stdout, stderr := runBench(t, nil, append(args, "--json")...)
	require.Equal(t, 0, code, "stderr: %s", stderr)
	var summary map[string]any
	require.NoError(t, json.Unmarshal([]byte(stdout), &summary), stdout)
	for _, key := range []string{"mode", "store", "workers", "jobs", "seconds", "jobsPerSecond", "errors"} {
		require.Contains(t, summary, key)
	}
	require.Empty(t, summary["errors"], "no errors")
	return summary
}

// requireLatency checks that member key is a latency summary whose
// percentiles are in order.
func requireLatency(t *testing.T, summary map[string]any, key string) {
	t.Helper()
	lat, ok := summary[key].(map[string]any)
	require.True(t, ok, "%s: %v", key, summary[key])
	var last float64
	for _, p := range []string{"p50Ms", "p90Ms", "p99Ms", "maxMs"} {
		v, ok := lat[p].(float64)
		require.True(t, ok, "%s.%s", key, p)
		require.GreaterOrEqual(t, v, last, "%s.%s is not below the percentile before it", key, p)
		last = v
	}
}

func TestBenchScheduled(t *testing.T) {
	t.Parallel()
	s := benchJSON(t, "scheduled", "--jobs", "300", "--window", "300ms", "--store", "memory", "--workers", "4")
	require.Equal(t, "scheduled", s["mode"])
	require.EqualValues(t, 300, s["jobs"])
	require.EqualValues(t, 300, s["completed"])
	require.InDelta(t, 0.3, s["seconds"], 1e-9, "the window")
	requireLatency(t, s, "lateness")
	lateness := s["lateness"].(map[string]any)
	require.GreaterOrEqual(t, lateness["p50Ms"], 0.0, "no job starts before its runAt")

	code, _, stderr := runBench(t, nil, "scheduled", "--window", "0s")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "--window")
}

func TestBenchBurndown(t *testing.T) {
	t.Parallel()

	t.Run("memory", func(t *testing.T) {
		t.Parallel()
		s := benchJSON(t, "burndown", "-n", "2000", "--store", "memory", "--workers", "4")

		require.Equal(t, "burndown", s["mode"])
		require.Equal(t, "memory", s["store"])
		require.EqualValues(t, 4, s["workers"])
		require.EqualValues(t, 2000, s["jobs"])
		require.EqualValues(t, 2000, s["completed"])
		require.EqualValues(t, 1000, s["batch"])
		for _, key := range []string{"insertSeconds", "insertsPerSecond", "totalSeconds"} {
			require.Contains(t, s, key)
		}
		require.NotContains(t, s, "latency", "burndown measures rates, not latency")
		requireMeasured(t, s, 1)
		for _, key := range []string{"durability", "synchronousCommit", "serverVersion", "completedByNode"} {
			require.NotContains(t, s, key, "not of the memory store, one node")
		}
	})

	t.Run("badger in a directory of one's own, twice", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		for _, durability := range []string{"none", ""} {
			args := []string{"burndown", "-n", "500", "--batch", "64", "--store", "badger", "--data-dir", dir, "--workers", "2"}
			if durability != "" {
				args = append(args, "--durability", durability)
			}
			s := benchJSON(t, args...)
			require.Equal(t, "badger", s["store"])
			require.EqualValues(t, 500, s["jobs"])
			require.EqualValues(t, 500, s["completed"], "only this run's jobs are counted")
			requireMeasured(t, s, 1)
			if durability == "" {
				durability = "full" // troupe serve's default
			}
			require.Equal(t, durability, s["durability"])
			require.NotContains(t, s, "synchronousCommit")
		}
		entries, err := os.ReadDir(dir)
		require.NoError(t, err)
		require.NotEmpty(t, entries, "a directory given with --data-dir is kept")
	})

	t.Run("a store with unfinished jobs is refused", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		store, err := badgerstore.Open(badgerstore.Options{Dir: dir})
		require.NoError(t, err)
		job, err := domain.NewJob("send_email", []byte(`{}`), 3, time.Now())
		require.NoError(t, err)
		require.NoError(t, store.Create(t.Context(), job))
		require.NoError(t, store.Close())

		code, stdout, stderr := runBench(t, nil, "burndown", "-n", "10", "--store", "badger", "--data-dir", dir)

		require.Equal(t, 1, code)
		require.Empty(t, stdout)
		require.Contains(t, stderr, "holds 1 unfinished jobs")
		store, err = badgerstore.Open(badgerstore.Options{Dir: dir})
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, store.Close()) })
		got, err := store.Get(t.Context(), job.ID)
		require.NoError(t, err)
		require.Equal(t, domain.StatusPending, got.Status, "the job was not run")
	})

	t.Run("writes a CPU profile", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "cpu.prof")
		code, _, stderr := runBench(t, nil, "burndown", "-n", "100", "--workers", "2", "--cpuprofile", path)

		require.Equal(t, 0, code, stderr)
		info, err := os.Stat(path)
		require.NoError(t, err)
		require.Positive(t, info.Size())
	})

	t.Run("prints a table without --json", func(t *testing.T) {
		t.Parallel()
		code, stdout, stderr := runBench(t, nil, "burndown", "-n", "100", "--workers", "2")

		require.Equal(t, 0, code, stderr)
		for _, row := range []string{"mode", "burndown", "store", "memory", "insert", "burn-down", "total", "completed  100", "errors     none",
			"nodes      1\n", fmt.Sprintf("cpus       %d (GOMAXPROCS %d)\n", runtime.NumCPU(), runtime.GOMAXPROCS(0)),
			"done when  outcome committed\n"} {
			require.Contains(t, stdout, row)
		}
	})
}

func TestBenchSteady(t *testing.T) {
	t.Parallel()
	s := benchJSON(t, "steady", "--rate", "200", "--duration", "1s", "--store", "memory", "--workers", "4")

	require.Equal(t, "steady", s["mode"])
	require.EqualValues(t, 200, s["jobs"], "200 jobs/s for 1s")
	require.EqualValues(t, 200, s["completed"])
	require.EqualValues(t, 200, s["rate"])
	require.Contains(t, s, "submitRate")
	requireLatency(t, s, "latency")
	requireLatency(t, s, "doneLatency")
	requireMeasured(t, s, 1)
}

// requireMeasured checks that a summary says what was measured: the
// machine, the nodes, and that a job counted once its outcome was
// committed.
func requireMeasured(t *testing.T, s map[string]any, nodes int) {
	t.Helper()
	require.EqualValues(t, runtime.NumCPU(), s["cpus"])
	require.EqualValues(t, runtime.GOMAXPROCS(0), s["gomaxprocs"])
	require.EqualValues(t, nodes, s["nodes"])
	require.Equal(t, "outcome committed", s["doneWhen"])
}

func TestBenchSoak(t *testing.T) {
	t.Parallel()

	t.Run("badger by default, a sample a period, on stderr with --json", func(t *testing.T) {
		t.Parallel()
		code, stdout, stderr := runBench(t, nil, "soak", "--duration", "1s", "--rate", "300", "--sample", "300ms",
			"--retention-completed", "1s", "--workers", "2", "--json")
		require.Equal(t, 0, code, stderr)
		var s struct {
			Mode, Store, RetentionCompleted string
			Jobs                            int64
			Samples                         []bench.SoakSample
		}
		require.NoError(t, json.Unmarshal([]byte(stdout), &s), stdout)
		require.Equal(t, "soak", s.Mode)
		require.Equal(t, "badger", s.Store)
		require.Equal(t, "1s", s.RetentionCompleted)
		require.EqualValues(t, 300, s.Jobs)
		require.GreaterOrEqual(t, len(s.Samples), 2, "one before the first job and one after the last")
		require.Zero(t, s.Samples[0].Submitted)
		last := s.Samples[len(s.Samples)-1]
		require.EqualValues(t, 300, last.Submitted)
		require.LessOrEqual(t, last.Finished, last.Submitted, "the store keeps no more finished jobs than were submitted")
		for i, sample := range s.Samples {
			require.NotNil(t, sample.DirBytes, "sample %d measures the data directory", i)
			require.Nil(t, sample.Rows)
			if i > 0 {
				require.GreaterOrEqual(t, sample.ElapsedSeconds, s.Samples[i-1].ElapsedSeconds)
				require.GreaterOrEqual(t, sample.Completed, s.Samples[i-1].Completed)
			}
		}
		require.Equal(t, len(s.Samples), strings.Count(stderr, "soak: "), "a line a sample: %s", stderr)
	})

	t.Run("the lines and the table on stdout without --json", func(t *testing.T) {
		t.Parallel()
		code, stdout, stderr := runBench(t, nil, "soak", "--duration", "300ms", "--rate", "100", "--sample", "1h", "--workers", "2")
		require.Equal(t, 0, code, stderr)
		require.Equal(t, 2, strings.Count(stdout, "soak: "), stdout)
		for _, row := range []string{`mode\s+soak\n`, `retention\s+30s \(completed\)\n`, `samples\s+2\n`, `finished kept\s+first 0, `, `data dir\s+first `} {
			require.Regexp(t, row, stdout)
		}
	})

	t.Run("mistakes", func(t *testing.T) {
		t.Parallel()
		for args, want := range map[string]string{
			"--store memory":              "--store badger or --store postgres",
			"--rate 0":                    "invalid --rate 0",
			"--duration 0s":               "invalid --duration 0s",
			"--retention-completed 0s":    "invalid --retention-completed 0s",
			"--sample 0s":                 "invalid --sample 0s",
			"--store postgres --schema x": "--database-url",
		} {
			code, stdout, stderr := runBench(t, nil, append([]string{"soak"}, strings.Fields(args)...)...)
			require.Equal(t, 1, code, args)
			require.Empty(t, stdout)
			require.Contains(t, stderr, want, args)
		}
	})
}

func TestBenchHTTP(t *testing.T) {
	t.Parallel()

	t.Run("in-process server, single submissions", func(t *testing.T) {
		t.Parallel()
		s := benchJSON(t, "http", "--concurrency", "2", "--duration", "1s", "--workers", "2")

		require.Equal(t, "http", s["mode"])
		require.Equal(t, "memory", s["store"])
		require.EqualValues(t, 2, s["workers"])
		require.Positive(t, s["jobs"])
		require.Equal(t, s["jobs"], s["requests"], "one job a request")
		require.EqualValues(t, 2, s["concurrency"])
		require.NotContains(t, s, "batch")
		requireLatency(t, s, "latency")
	})

	t.Run("in-process server, batches", func(t *testing.T) {
		t.Parallel()
		s := benchJSON(t, "http", "--concurrency", "2", "--duration", "1s", "--batch", "10", "--workers", "2")

		jobs, requests := s["jobs"].(float64), s["requests"].(float64)
		require.Positive(t, jobs)
		require.Equal(t, 10*requests, jobs, "ten jobs a request")
		require.EqualValues(t, 10, s["batch"])
	})

	t.Run("a running server", func(t *testing.T) {
		t.Parallel()
		cfg := memoryConfig()
		cfg.APITokens = []string{"bench-token"}
		m := startMain(t, cfg)

		s := benchJSON(t, "http", "--concurrency", "2", "--duration", "1s", "--server", m.Addr(), "--token", "bench-token")

		require.Equal(t, "remote", s["store"])
		require.EqualValues(t, cfg.Workers, s["workers"], "read from /health")
		require.Positive(t, s["jobs"])
		require.NotContains(t, s, "completed", "not visible over HTTP")
		require.Equal(t, "http://"+m.Addr(), s["server"])
		// The server stops when the test ends; let it finish the backlog
		// first, since a stop under load is not what this test is about.
		waitFor(t, 2*waitTimeout, "the server to finish the bench's jobs", func() (bool, error) {
			st := m.System().Stats()
			return st.QueueDepth == 0 && st.Workers.Busy == 0 && st.JobActors == 0, fmt.Errorf("stats %+v", st)
		})
	})

	t.Run("errors are counted by status", func(t *testing.T) {
		t.Parallel()
		cfg := memoryConfig()
		cfg.Demo = false // no noop handler: every submission is a 400
		m := startMain(t, cfg)

		code, stdout, stderr := runBench(t, nil, "http", "--concurrency", "1", "--duration", "1s", "--server", m.Addr(), "--json")

		require.Equal(t, 0, code, stderr)
		var s bench.Summary
		require.NoError(t, json.Unmarshal([]byte(stdout), &s))
		require.Zero(t, s.Jobs)
		require.Positive(t, s.Errors["400"])
		require.Equal(t, s.Requests, s.Errors["400"])
	})
}

// TestBenchPostgres runs a small burn-down of two nodes sharing the queue
// on PostgreSQL when one answers (TROUPE_TEST_DATABASE_URL, or the local
// one .ci/run starts), in a schema of its own.
func TestBenchPostgres(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.URL(t)
	schema := pgtest.RandomSchema(t)
	pgtest.DropSchemaOnCleanup(t, dbURL, schema)

	// Two nodes sharing the queue, each with its own pool and workers;
	// each claims its share while the workers are held, so both complete
	// jobs.
	code, stdout, stderr := runBench(t, []string{"TROUPE_DATABASE_URL=" + dbURL}, "burndown", "-n", "200", "--store", "postgres",
		"--schema", schema, "--nodes", "2", "--workers", "4", "--json")

	require.Equal(t, 0, code, stderr)
	var s bench.Summary
	require.NoError(t, json.Unmarshal([]byte(stdout), &s))
	require.Equal(t, "postgres", s.Store)
	require.EqualValues(t, 200, s.Jobs)
	require.EqualValues(t, 200, *s.Completed)
	require.Equal(t, 2, s.Nodes)
	require.Equal(t, runtime.NumCPU(), s.CPUs)
	require.Equal(t, runtime.GOMAXPROCS(0), s.GOMAXPROCS)
	require.Equal(t, bench.DoneOutcomeCommitted, s.DoneWhen)
	require.Empty(t, s.Durability)
	require.Contains(t, []string{"on", "off", "local", "remote_write", "remote_apply"}, s.SynchronousCommit)
	require.NotEmpty(t, s.ServerVersion)
	require.Len(t, s.CompletedByNode, 2, "%v", s.CompletedByNode)
	total := int64(0)
	for node, n := range s.CompletedByNode {
		require.Positive(t, n, node)
		total += n
	}
	require.EqualValues(t, 200, total)

	// The schema given with --schema is left as it is: empty.
	code, _, stderr = runBench(t, []string{"TROUPE_DATABASE_URL=" + dbURL}, "burndown", "-n", "10", "--store", "postgres",
		"--schema", schema, "--workers", "2")
	require.Equal(t, 0, code, "no job left unfinished: %s", stderr)
}

func TestBenchFlags(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"burndown", "-n", "0"}, "invalid -n 0: must be at least 1"},
		{[]string{"burndown", "--batch", "0"}, "invalid --batch 0"},
		{[]string{"steady", "--rate", "0"}, "invalid --rate 0: must be a positive number"},
		{[]string{"steady", "--rate", "-5"}, "invalid --rate -5"},
		{[]string{"steady", "--duration", "0s"}, "invalid --duration 0s: must be positive"},
		{[]string{"steady", "--rate", "0.5", "--duration", "1s"}, "submits no job"},
		{[]string{"http", "--duration", "-1s"}, "invalid --duration -1s"},
		{[]string{"http", "--concurrency", "0"}, "invalid --concurrency 0"},
		{[]string{"http", "--batch", "1001"}, "invalid --batch 1001: must be from 1 to 1000"},
		{[]string{"http", "--store", "badger"}, "runs on the memory store"},
		{[]string{"burndown", "--store", "sqlite"}, `invalid --store "sqlite": must be one of badger, memory, postgres`},
		{[]string{"steady", "--store", "postgres"}, "--database-url (or TROUPE_DATABASE_URL) is required with --store postgres"},
		{[]string{"burndown", "--store", "postgres", "--database-url", "postgres://localhost/x", "--schema", ""}, "--schema must not be empty"},
		{[]string{"burndown", "--workers", "0"}, "invalid --workers 0"},
		{[]string{"burndown", "extra"}, `unknown command "extra"`},
		{[]string{"burndown", "--nodes", "0"}, "invalid --nodes 0: must be at least 1"},
		{[]string{"burndown", "--nodes", "2"}, "--nodes 2 needs --store postgres, not memory"},
		{[]string{"steady", "--nodes", "3", "--store", "badger"}, "--nodes 3 needs --store postgres, not badger"},
		{[]string{"http", "--nodes", "2", "--store", "postgres", "--database-url", "postgres://localhost/x", "--server", "127.0.0.1:1"}, "bench http takes no --nodes"},
		{[]string{"burndown", "--store", "badger", "--durability", "fast"}, `invalid --durability "fast": must be one of full, sync-all, none`},
		{[]string{"soak", "--durability", "fast"}, `invalid --durability "fast"`},
		{[]string{"burndown", "--durability", "none"}, "--durability applies to --store badger, not memory"},
		{[]string{"burndown", "--durability", "full", "--store", "postgres", "--database-url", "postgres://localhost/x"}, "--durability applies to --store badger, not postgres"},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := runBench(t, nil, tt.args...)

			require.Equal(t, 1, code)
			require.Empty(t, stdout)
			require.Contains(t, stderr, tt.want)
			require.True(t, strings.HasPrefix(stderr, "troupe: "), stderr)
			require.Equal(t, 1, strings.Count(stderr, "\n"), "one line: %q", stderr)
		})
	}

	t.Run("help names the modes, the nodes and what a figure depends on", func(t *testing.T) {
		t.Parallel()
		code, stdout, _ := runBench(t, nil, "--help")

		require.Equal(t, 0, code)
		for _, s := range []string{"burndown", "steady", "http", "--store", "--data-dir", "--database-url", "--workers", "--json",
			"--nodes", "--durability", "full, sync-all, none", "shared in the database, as troupe serve", "committed its completed outcome",
			"synchronous_commit", "GOMAXPROCS"} {
			require.Contains(t, stdout, s)
		}
		require.NotContains(t, stdout, "one node using\nthe database as a plain store")
	})
}

func TestBenchInterrupted(t *testing.T) {
	t.Parallel()
	env, stdout, stderr, sigs := testEnv()
	code := make(chan int, 1)
	go func() {
		code <- run(t.Context(), []string{"bench", "steady", "--rate", "100", "--duration", "10m"}, env)
	}()

	sigs.send(syscall.SIGINT)

	require.Equal(t, 1, <-code)
	require.Empty(t, stdout.String())
	require.Contains(t, stderr.String(), "troupe: bench interrupted")
}

// TestBatchEndpointOnTheRealSystem submits batches to a server wired as
// troupe serve is: the jobs come back in order, and a batch with a bad job
// stores nothing.
func TestBatchEndpointOnTheRealSystem(t *testing.T) {
	t.Parallel()
	m := startMain(t, memoryConfig())
	api := newAPIClient(t, "http://"+m.Addr())

	var created struct {
		Jobs []jobJSON `json:"jobs"`
	}
	body := api.mustCall(nethttp.MethodPost, "/jobs/batch", `{"jobs":[{"type":"noop","payload":{"n":0}},{"type":"noop","payload":{"n":1}},{"type":"noop","payload":{"n":2}}]}`, nethttp.StatusCreated)
	require.NoError(t, json.Unmarshal(body, &created))
	require.Len(t, created.Jobs, 3)
	for i, j := range created.Jobs {
		require.JSONEq(t, fmt.Sprintf(`{"n":%d}`, i), string(j.Payload))
		stored := api.waitStatus(j.ID, "completed")
		require.JSONEq(t, fmt.Sprintf(`{"n":%d}`, i), string(stored.Payload))
		if i > 0 {
			require.Less(t, created.Jobs[i-1].ID, j.ID, "IDs in submission order")
		}
	}

	for _, bad := range []string{
		`{"jobs":[{"type":"noop"},{"type":"nope"}]}`,
		`{"jobs":[{"type":"noop"},{"type":"noop","maxAttempts":101}]}`,
		`{"jobs":[` + strings.Repeat(`{"type":"noop"},`, 1000) + `{"type":"noop"}]}`,
	} {
		var problem struct {
			Errors []struct {
				Field string `json:"field"`
			} `json:"errors"`
		}
		require.NoError(t, json.Unmarshal(api.mustCall(nethttp.MethodPost, "/jobs/batch", bad, nethttp.StatusBadRequest), &problem))
		require.NotEmpty(t, problem.Errors)
		require.True(t, strings.HasPrefix(problem.Errors[0].Field, "jobs"), problem.Errors[0].Field)
	}
	page, err := api.list(url.Values{})
	require.NoError(t, err)
	require.Equal(t, 3, page.Total, "nothing of the bad batches was stored")
}
