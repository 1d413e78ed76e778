package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Summary is a mode's result. Its JSON member names are stable, for
// scripts; fields of other modes are left out.
type Summary struct {
	// Mode is burndown, steady, scheduled, soak or http.
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
	// first submission to the last completion (steady), the window the
	// RunAts spread over (scheduled), or the load (http).
	Seconds float64 `json:"seconds"`
	// JobsPerSecond is the mode's throughput over Seconds: jobs completed
	// (burndown, steady) or accepted (http).
	JobsPerSecond float64 `json:"jobsPerSecond"`
	// Latency is the enqueue-to-start latency (steady), the request
	// latency (http), or a single job's claim→complete round trip on an
	// idle server (external).
	Latency *Latency `json:"latency,omitempty"`
	// Errors counts failures by kind: an HTTP status, "transport", or
	// "queue full"; empty when there were none.
	Errors map[string]int64 `json:"errors"`

	// What was measured, so that figures can be compared: the machine the
	// bench ran on (for bench http --server, the load's, not the
	// server's), the runtime and the store.
	//
	// CPUs is runtime.NumCPU, GOMAXPROCS the Go scheduler's.
	CPUs       int `json:"cpus"`
	GOMAXPROCS int `json:"gomaxprocs"`
	// Nodes is the number of nodes in this process sharing the queue:
	// 1 except with --nodes on postgres; 0 (left out) when unknown.
	Nodes int `json:"nodes,omitempty"`
	// CompletedByNode counts the completed outcomes each node committed,
	// by node name, when several nodes shared the queue (--nodes).
	CompletedByNode map[string]int64 `json:"completedByNode,omitempty"`
	// Durability is Badger's: full, sync-all or none (badger).
	Durability string `json:"durability,omitempty"`
	// SynchronousCommit is the PostgreSQL server's synchronous_commit as
	// the bench's connections see it, ServerVersion its server_version
	// (postgres).
	SynchronousCommit string `json:"synchronousCommit,omitempty"`
	ServerVersion     string `json:"serverVersion,omitempty"`
	// DoneWhen says when a job counts in Completed and JobsPerSecond:
	// DoneOutcomeCommitted, or DoneAccepted (http, which counts accepted
	// submissions).
	DoneWhen string `json:"doneWhen,omitempty"`

	// InsertSeconds is how long the inserts took (burndown, scheduled).
	InsertSeconds float64 `json:"insertSeconds,omitempty"`
	// InsertsPerSecond is the insert rate (burndown, scheduled).
	InsertsPerSecond float64 `json:"insertsPerSecond,omitempty"`
	// TotalSeconds is the inserts and the burn-down together (burndown).
	TotalSeconds float64 `json:"totalSeconds,omitempty"`
	// Batch is the jobs per SubmitBatch call (burndown, scheduled) or per HTTP request
	// (http; 0 for POST /jobs).
	Batch int `json:"batch,omitempty"`

	// Rate is the submission rate asked for, jobs/s (steady, soak).
	Rate float64 `json:"rate,omitempty"`
	// SubmitRate is the submission rate achieved, jobs/s (steady, soak).
	SubmitRate float64 `json:"submitRate,omitempty"`
	// DoneLatency is the enqueue-to-done latency (steady).
	DoneLatency *Latency `json:"doneLatency,omitempty"`

	// Lateness is how long after its RunAt each job's handler started:
	// start time − RunAt (scheduled).
	Lateness *Latency `json:"lateness,omitempty"`

	// RetentionCompleted is how long completed jobs were kept (soak).
	RetentionCompleted string `json:"retentionCompleted,omitempty"`
	// Samples are the store's measurements over time (soak).
	Samples []SoakSample `json:"samples,omitempty"`

	// Concurrency is the number of submitting goroutines (http).
	Concurrency int `json:"concurrency,omitempty"`
	// Requests counts the requests answered, whatever the status (http).
	Requests int64 `json:"requests,omitempty"`
	// RequestsPerSecond is Requests over Seconds (http).
	RequestsPerSecond float64 `json:"requestsPerSecond,omitempty"`
	// Server is the API's base URL (http, external).
	Server string `json:"server,omitempty"`

	// ExternalWorkers is the number of client.Workers (external).
	ExternalWorkers int `json:"externalWorkers,omitempty"`
	// RoundTrips is how many single-job claim→complete round trips Latency
	// describes (external).
	RoundTrips int `json:"roundTrips,omitempty"`
	// Claims counts the workers' claims, OutcomeReports their outcome
	// reports, empty ones included (external).
	Claims         int64 `json:"claims,omitempty"`
	OutcomeReports int64 `json:"outcomeReports,omitempty"`
	// CPUSeconds is the CPU time the process (server and workers) used
	// over Seconds (external): on a busy machine, what the work costs
	// whatever share of the cores it got.
	CPUSeconds float64 `json:"cpuSeconds,omitempty"`
	// CPUMicrosPerJob is CPUSeconds per job completed, in microseconds.
	CPUMicrosPerJob float64 `json:"cpuMicrosPerJob,omitempty"`
}

// The values of Summary.DoneWhen.
const (
	// DoneOutcomeCommitted counts a job once the store committed its
	// completed outcome: the handler returning is not enough.
	DoneOutcomeCommitted = "outcome committed"
	// DoneAccepted counts a job once its submission was accepted.
	DoneAccepted = "submission accepted"
)

// describe fills in what was measured besides the mode's figures: the
// machine, the nodes (with what each completed) and the store's facts.
func describe(s *Summary, nodes int, f storeFacts, doneWhen string, byNode map[string]int64) *Summary {
	s.CompletedByNode = byNode
	s.CPUs = runtime.NumCPU()
	s.GOMAXPROCS = runtime.GOMAXPROCS(0)
	s.Nodes = nodes
	s.Durability = f.durability
	s.SynchronousCommit = f.synchronousCommit
	s.ServerVersion = f.serverVersion
	s.DoneWhen = doneWhen
	return s
}

// Latency describes a latency distribution in milliseconds.
type Latency struct {
	P50Ms float64 `json:"p50Ms"`
	P90Ms float64 `json:"p90Ms"`
	P99Ms float64 `json:"p99Ms"`
	MaxMs float64 `json:"maxMs"`
}

// summarizeLatency sorts ds and returns its percentiles (nearest rank), or
// nil when there is none.
func summarizeLatency(ds []time.Duration) *Latency {
	if len(ds) == 0 {
		return nil
	}
	slices.Sort(ds)
	at := func(p float64) float64 {
		i := min(max(int(math.Ceil(p*float64(len(ds))))-1, 0), len(ds)-1)
		return millis(ds[i])
	}
	return &Latency{P50Ms: at(0.50), P90Ms: at(0.90), P99Ms: at(0.99), MaxMs: millis(ds[len(ds)-1])}
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
func (s *Summary) Write(w io.Writer, asJSON bool) error {
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
func (s *Summary) rows() [][2]string {
	num := func(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) }
	secs := func(v float64) string { return strconv.FormatFloat(v, 'f', 3, 64) + " s" }
	lat := func(l *Latency) string {
		if l == nil {
			return "-"
		}
		return fmt.Sprintf("p50 %.3f ms  p90 %.3f ms  p99 %.3f ms  max %.3f ms", l.P50Ms, l.P90Ms, l.P99Ms, l.MaxMs)
	}
	workers := strconv.Itoa(s.Workers)
	if s.Workers == 0 {
		workers = "unknown"
	}
	store := s.Store
	switch {
	case s.Durability != "":
		store += ", durability " + s.Durability
	case s.SynchronousCommit != "":
		store += fmt.Sprintf(", PostgreSQL %s, synchronous_commit %s", s.ServerVersion, s.SynchronousCommit)
	}
	rows := [][2]string{{"mode", s.Mode}, {"store", store}, {"workers", workers}}
	if s.Nodes > 0 {
		nodes := strconv.Itoa(s.Nodes)
		if len(s.CompletedByNode) > 0 {
			var parts []string
			for _, k := range slices.Sorted(maps.Keys(s.CompletedByNode)) {
				parts = append(parts, fmt.Sprintf("%s %d", k, s.CompletedByNode[k]))
			}
			nodes += " (completed: " + strings.Join(parts, ", ") + ")"
		}
		rows = append(rows, [2]string{"nodes", nodes})
	}
	if s.CPUs > 0 {
		rows = append(rows, [2]string{"cpus", fmt.Sprintf("%d (GOMAXPROCS %d)", s.CPUs, s.GOMAXPROCS)})
	}
	if s.DoneWhen != "" {
		rows = append(rows, [2]string{"done when", s.DoneWhen})
	}
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
	case "scheduled":
		rows = append(rows,
			[2]string{"jobs", fmt.Sprintf("%d, RunAt spread over %s", s.Jobs, secs(s.Seconds))},
			[2]string{"insert", fmt.Sprintf("%s  (%s jobs/s, %d per batch)", secs(s.InsertSeconds), num(s.InsertsPerSecond), s.Batch)},
			[2]string{"lateness", lat(s.Lateness)})
	case "soak":
		rows = append(rows,
			[2]string{"rate", fmt.Sprintf("%s jobs/s asked, %s achieved", num(s.Rate), num(s.SubmitRate))},
			[2]string{"jobs", fmt.Sprintf("%d over %s", s.Jobs, secs(s.Seconds))},
			[2]string{"retention", s.RetentionCompleted + " (completed)"},
			[2]string{"samples", strconv.Itoa(len(s.Samples))})
		count := func(n int64) string { return strconv.FormatInt(n, 10) }
		for _, m := range []struct {
			name string
			get  func(SoakSample) *int64
			show func(int64) string
		}{
			{"finished kept", func(x SoakSample) *int64 { return &x.Finished }, count},
			{"data dir", func(x SoakSample) *int64 { return x.DirBytes }, humanBytes},
			{"troupe_jobs rows", func(x SoakSample) *int64 { return x.Rows }, count},
			{"troupe_jobs size", func(x SoakSample) *int64 { return x.TableBytes }, humanBytes},
		} {
			if b := band(s.Samples, m.get, m.show); b != "" {
				rows = append(rows, [2]string{m.name, b})
			}
		}
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
	case "external":
		rows = append(rows,
			[2]string{"server", s.Server},
			[2]string{"jobs", fmt.Sprintf("%d, inserted in %s  (%s jobs/s)", s.Jobs, secs(s.InsertSeconds), num(s.InsertsPerSecond))},
			[2]string{"client workers", fmt.Sprintf("%d, claiming %d at a time", s.ExternalWorkers, s.Batch)},
			[2]string{"throughput", fmt.Sprintf("%s jobs/s over %s (outcome committed)", num(s.JobsPerSecond), secs(s.Seconds))},
			[2]string{"requests", fmt.Sprintf("%d claims, %d outcome reports", s.Claims, s.OutcomeReports)},
			[2]string{"cpu", fmt.Sprintf("%s (server and workers), %.0f µs a job", secs(s.CPUSeconds), s.CPUMicrosPerJob)},
			[2]string{"claim→complete", fmt.Sprintf("%s  (%d round trips, idle server)", lat(s.Latency), s.RoundTrips)})
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
