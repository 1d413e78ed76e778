package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	nethttp "net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/actors"
	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/persistence/pgstore"
)

// configTableHeader starts the configuration reference of README.md.
const configTableHeader = "| flag | environment | YAML key | default | meaning |"

// readmeRow is one option as the README's configuration reference lists it.
type readmeRow struct {
	flag, env, key, def, meaning string
}

// readReadme returns cmd/troupe/README.md.
func readReadme(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("README.md")
	require.NoError(t, err)
	return string(b)
}

// configTable parses the configuration reference out of the README: the
// rows of the table under configTableHeader.
func configTable(t *testing.T, readme string) []readmeRow {
	t.Helper()
	var rows []readmeRow
	in := false
	for line := range strings.Lines(readme) {
		line = strings.TrimSpace(line)
		switch {
		case line == configTableHeader:
			require.False(t, in || rows != nil, "README.md has two configuration tables")
			in = true
		case in && strings.HasPrefix(line, "|---"):
		case in && strings.HasPrefix(line, "|"):
			cells := strings.Split(strings.Trim(line, "|"), "|")
			require.Len(t, cells, 5, "a row of the configuration table: %s", line)
			for i := range cells {
				cells[i] = strings.TrimSpace(cells[i])
			}
			rows = append(rows, readmeRow{flag: cells[0], env: cells[1], key: cells[2], def: cells[3], meaning: cells[4]})
		default:
			in = false
		}
	}
	require.NotEmpty(t, rows, "README.md has no table headed %q", configTableHeader)
	return rows
}

// codeSpan matches the first `code span` of a cell.
var codeSpan = regexp.MustCompile("^`([^`]*)`")

// machineDefault is an option whose default depends on the machine or the
// process, so that the README describes it in words rather than as a value.
type machineDefault struct {
	// text is the README's default cell.
	text string
	// value is the option's value in DefaultConfig.
	value any
	// resolved, if set, checks what the runtime makes of that value.
	resolved func(t *testing.T)
}

func machineDefaults() map[string]machineDefault {
	return map[string]machineDefault{
		"workers": {text: "CPUs × 4", value: actors.WorkersDefault()},
		"node": {text: "hostname-pid", value: "", resolved: func(t *testing.T) {
			host, err := os.Hostname()
			require.NoError(t, err)
			require.Equal(t, fmt.Sprintf("%s-%d", host, os.Getpid()), DefaultConfig().ActorsConfig().Node)
		}},
	}
}

func TestReadmeConfigReference(t *testing.T) {
	t.Parallel()
	rows := configTable(t, readReadme(t))
	fields := configFields()

	var keys, documented []string
	for _, f := range fields {
		keys = append(keys, f.key)
	}
	for _, r := range rows {
		m := codeSpan.FindStringSubmatch(r.key)
		require.NotNil(t, m, "the YAML key cell %q has no `key`", r.key)
		documented = append(documented, m[1])
	}
	require.Equal(t, keys, documented, "the README must list exactly Config's options, in the order of its fields")

	defaults := reflect.ValueOf(DefaultConfig())
	for i, f := range fields {
		r := rows[i]
		t.Run(f.key, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, "`--"+flagName(f.key)+"`", r.flag)
			require.True(t, strings.HasPrefix(r.env, "`"+envName(f.key)+"`"), "environment cell %q", r.env)
			require.NotEmpty(t, r.meaning)

			want := defaults.Field(f.index).Interface()
			if special, ok := machineDefaults()[f.key]; ok {
				require.Equal(t, special.text, r.def)
				require.Equal(t, special.value, want)
				if special.resolved != nil {
					special.resolved(t)
				}
				return
			}
			m := codeSpan.FindStringSubmatch(r.def)
			if m == nil {
				require.True(t, strings.HasPrefix(r.def, "none"), "default cell %q: want `value` or none", r.def)
				require.True(t, defaults.Field(f.index).IsZero(), "the README says none, but the default is %v", want)
				return
			}
			// The default is read as the environment variable would be.
			got, err := convert(m[1], f.typ)
			require.NoError(t, err, "default cell %q", r.def)
			require.Equal(t, want, got.Interface(), "default cell %q", r.def)
		})
	}
}

// knownNonOptionVars are the TROUPE_ variables that are not options of
// serve: the config file, the client's token, the tests' database, and the
// settings of the example workers (examples/workers).
func knownNonOptionVars() []string {
	return []string{
		envConfigFile, "TROUPE_API_TOKEN", "TROUPE_TEST_DATABASE_URL",
		"TROUPE_URL", "TROUPE_TOKEN", "TROUPE_WORKER_TYPES", "TROUPE_WORKER_CONCURRENCY",
		"TROUPE_WORKER_LEASE", "TROUPE_WORKER_WAIT", "TROUPE_WORKER_NAME",
	}
}

// envVarPattern matches a TROUPE_ variable name.
var envVarPattern = regexp.MustCompile(`\bTROUPE_[A-Z][A-Z_]*[A-Z]\b`)

func TestDeploymentFilesNameRealVariables(t *testing.T) {
	t.Parallel()
	valid := knownNonOptionVars()
	for _, f := range configFields() {
		valid = append(valid, envName(f.key))
	}
	for _, path := range []string{
		"README.md",
		"Dockerfile",
		filepath.Join("..", "..", "examples", "compose", "docker-compose.yml"),
		filepath.Join("..", "..", "examples", "compose", "README.md"),
		filepath.Join("..", "..", "examples", "README.md"),
	} {
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		for _, name := range envVarPattern.FindAllString(string(b), -1) {
			require.Contains(t, valid, name, "%s names a variable that troupe does not read", path)
		}
	}
}

func TestReadmeMetricsExist(t *testing.T) {
	t.Parallel()
	readme := readReadme(t)
	_, monitoring, ok := strings.Cut(readme, "\n## Monitoring\n")
	require.True(t, ok, "README.md has no Monitoring section")
	monitoring, _, _ = strings.Cut(monitoring, "\n## ")
	documented := regexp.MustCompile(`\btroupe_[a-z_]+\b`).FindAllString(monitoring, -1)
	require.NotEmpty(t, documented)

	// Make every series exist: a vector shows up only after its first event.
	cfg := memoryConfig()
	cfg.RetryBaseDelay, cfg.RetryMaxDelay = time.Millisecond, time.Millisecond
	// Completed jobs are pruned at once, so that the pruner's series exist.
	cfg.RetentionCompleted = time.Millisecond
	m := startMain(t, cfg)
	events := m.System().Subscribe(256)
	defer events.Close()
	api := newAPIClient(t, "http://"+m.Addr())
	waitEvent(t, events, api.submit("noop", `{}`, 1).ID, domain.StatusCompleted)
	waitEvent(t, events, api.submit("flaky", `{"failTimes": 1}`, 2).ID, domain.StatusCompleted)
	waitEvent(t, events, api.submit("flaky", `{"failTimes": 1}`, 1).ID, domain.StatusFailed)
	sleeper := api.submit("sleep", `{"ms": 600000}`, 1)
	waitEvent(t, events, sleeper.ID, domain.StatusRunning)
	api.mustCall(nethttp.MethodDelete, "/jobs/"+sleeper.ID, "", nethttp.StatusOK)
	waitEvent(t, events, sleeper.ID, domain.StatusCanceled)
	// A timeout, and a paused queue, so that the queue series exist.
	var timedOut jobJSON
	require.NoError(t, json.Unmarshal(api.mustCall(nethttp.MethodPost, "/jobs",
		`{"type":"sleep","payload":{"ms":600000},"maxAttempts":1,"timeout":"50ms"}`, nethttp.StatusCreated), &timedOut))
	waitEvent(t, events, timedOut.ID, domain.StatusFailed)
	api.mustCall(nethttp.MethodPost, "/queues/readme/pause", "", nethttp.StatusOK)

	var families map[string]string
	waitFor(t, waitTimeout, "the pruner to delete the completed jobs", func() (bool, error) {
		families = scrapeFamilies(t, "http://"+m.Addr()+"/metrics")
		_, ok := families["troupe_jobs_pruned_total"]
		return ok, errNotYet
	})
	tables := pgTables(t)
	for _, name := range documented {
		if slices.Contains(tables, name) {
			continue // the SQL that measures the backlog on PostgreSQL
		}
		base := name
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if trimmed, ok := strings.CutSuffix(name, suffix); ok && families[trimmed] == "histogram" {
				base = trimmed
			}
		}
		require.Contains(t, families, base, "README.md documents %s, which /metrics does not serve", name)
	}
	for name := range families {
		if strings.HasPrefix(name, "troupe_") {
			require.Contains(t, monitoring, "`"+name+"`", "/metrics serves %s, which README.md does not document", name)
		}
	}
}

// pgTables returns the names of the PostgreSQL store's tables, which the
// README names beside the metrics.
func pgTables(t *testing.T) []string {
	t.Helper()
	tables := []string{pgstore.MigrationsTable}
	paths, err := filepath.Glob(filepath.Join("..", "..", "persistence", "pgstore", "migrations", "*.up.sql"))
	require.NoError(t, err)
	require.NotEmpty(t, paths)
	create := regexp.MustCompile(`(?i)\bCREATE TABLE (?:IF NOT EXISTS )?(\w+)`)
	for _, path := range paths {
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		for _, m := range create.FindAllStringSubmatch(string(b), -1) {
			tables = append(tables, m[1])
		}
	}
	return tables
}

// waitEvent waits for the event that shows job id in status.
func waitEvent(t *testing.T, events *actors.Subscription, id string, status domain.Status) {
	t.Helper()
	// The timer only bounds a broken test; a passing one ends on the event.
	timeout := time.NewTimer(waitTimeout)
	defer timeout.Stop()
	for {
		select {
		case ev := <-events.C:
			if ev.Job.ID.String() == id && ev.Job.Status == status {
				return
			}
		case <-timeout.C:
			t.Fatalf("job %s did not become %s (events dropped: %d)", id, status, events.Dropped())
		}
	}
}

// scrapeFamilies returns the metric families that url serves, by name,
// with their types, read from the exposition's # TYPE lines.
func scrapeFamilies(t *testing.T, url string) map[string]string {
	t.Helper()
	resp, err := nethttp.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, nethttp.StatusOK, resp.StatusCode)
	families := make(map[string]string)
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 16<<20))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 4 && fields[0] == "#" && fields[1] == "TYPE" {
			families[fields[2]] = fields[3]
		}
	}
	require.NoError(t, sc.Err())
	require.True(t, slices.ContainsFunc(slices.Collect(maps.Keys(families)), func(k string) bool { return strings.HasPrefix(k, "troupe_") }))
	return families
}
