package bench

import (
	"context"
	"errors"
	"fmt"
	nethttp "net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/troupe-go/troupe/actors"
	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/http/client"
)

// ExternalType is the job type bench external declares external: no Go
// handler runs it, only the bench's client.Workers.
const ExternalType domain.JobType = "bench_external"

// ExternalParams say how to run bench external.
type ExternalParams struct {
	// Jobs is how many jobs the workers work off.
	Jobs int
	// Workers is the number of client.Workers.
	Workers int
	// Batch is each worker's claim (and outcome report) size.
	Batch int
	// RoundTrips is how many single-job claim→complete round trips time
	// the latency on the idle server afterwards; 0 skips them.
	RoundTrips int
}

// ExternalServer is what an ExternalServerStarter needs to know.
type ExternalServer struct {
	// Workers is the server's Go worker pool (idle: no Go job is submitted).
	Workers int
	// QueueSize is the ready queue's size, enough for every job at once.
	QueueSize int
	// Type is declared external.
	Type domain.JobType
}

// ExternalServerStarter starts an API server in this process wired as
// `troupe serve` is, on the Bencher's store, with the runtime reachable for
// submissions.
type ExternalServerStarter func(ctx context.Context, b *Bencher, p ExternalServer) (*RuntimeServer, error)

// RuntimeServer is a server an ExternalServerStarter started.
type RuntimeServer struct {
	// URL is the API's base URL.
	URL *url.URL
	// System is the runtime behind it.
	System *actors.System
	// Stop stops the server and its store.
	Stop func() error
}

// External measures the worker protocol: it submits p.Jobs jobs of an
// external type, then runs p.Workers client.Workers (claims of p.Batch)
// against a server in this process and times them until every job's
// completion is committed (the server answered its outcome with
// "completed"). Then, on the idle server, it times p.RoundTrips single-job
// claim→complete round trips.
func (b *Bencher) External(ctx context.Context, p ExternalParams) (summary *Summary, err error) {
	if b.StartExternalServer == nil {
		return nil, errors.New("bench: no in-process server: set Bencher.StartExternalServer")
	}
	srv, err := b.StartExternalServer(ctx, b, ExternalServer{
		Workers: b.Workers, QueueSize: max(actors.QueueSizeDefault, p.Jobs), Type: ExternalType,
	})
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, srv.Stop()) }()
	transport := nethttp.DefaultTransport.(*nethttp.Transport).Clone()
	transport.MaxIdleConnsPerHost = 4 * p.Workers
	counted := &countingTransport{next: transport}
	c, err := client.New(srv.URL.String(), client.WithUserAgent("troupe-bench"), client.WithHTTPClient(&nethttp.Client{Transport: counted}))
	if err != nil {
		return nil, err
	}
	defer c.CloseIdleConnections()

	// The backlog goes in first, straight into the runtime: what is timed
	// is the work-off through the protocol alone.
	insertStart := time.Now()
	params := make([]actors.SubmitParams, min(benchExternalInsertBatch, p.Jobs))
	for i := range params {
		params[i] = actors.SubmitParams{Type: ExternalType, Payload: payload}
	}
	for left := p.Jobs; left > 0; {
		k := min(left, len(params))
		if _, err := srv.System.SubmitBatch(ctx, params[:k]); err != nil {
			return nil, fmt.Errorf("insert jobs: %w", err)
		}
		left -= k
	}
	insertTook := time.Since(insertStart)

	var (
		completed atomic.Int64
		allDone   = make(chan struct{})
		closeOnce sync.Once
		errMu     sync.Mutex
		errs      = map[string]int64{}
	)
	onReported := func(_ uuid.UUID, st domain.Status, err error) {
		switch {
		case err != nil:
			errMu.Lock()
			errs[errorKind(err)]++
			errMu.Unlock()
		case st == domain.StatusCompleted:
			if completed.Add(1) == int64(p.Jobs) {
				closeOnce.Do(func() { close(allDone) })
			}
		}
	}
	meter := newRateMeter()
	stopProgress := startProgress(b.Progress, func() (string, float64) {
		done := completed.Load()
		return fmt.Sprintf("external: %d/%d done (%.0f jobs/s)", done, p.Jobs, meter.rate(done)), float64(done) / float64(p.Jobs)
	})
	defer stopProgress()

	wctx, stopWorkers := context.WithCancel(ctx)
	var running sync.WaitGroup
	workerErrs := make([]error, p.Workers)
	start, cpuStart := time.Now(), processCPU()
	for i := range p.Workers {
		w := client.NewWorker(c, client.WorkerOptions{
			Batch: p.Batch, Wait: time.Second, Name: fmt.Sprintf("bench-%d", i), Logger: b.Logger, OnReported: onReported,
		})
		w.Handle(ExternalType, domain.HandlerFunc(func(context.Context, []byte) error { return nil }))
		running.Go(func() { workerErrs[i] = w.Run(wctx) })
	}
	var took, cpu time.Duration
	select {
	case <-allDone:
		took = time.Since(start)
		cpu = processCPU() - cpuStart
	case <-ctx.Done():
	}
	stopWorkers()
	running.Wait()
	stopProgress()
	if err := errors.Join(workerErrs...); err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		return nil, context.Cause(ctx)
	}
	// The store agrees: every job is completed.
	stats, err := c.Stats(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the stats: %w", err)
	}
	if got := stats.Counts[domain.StatusCompleted]; got != p.Jobs {
		return nil, fmt.Errorf("the workers saw %d jobs completed, the store holds %d", p.Jobs, got)
	}

	claims, reports := counted.claims.Load(), counted.reports.Load()
	latency, err := roundTrips(ctx, c, srv.System, p.RoundTrips)
	if err != nil {
		return nil, err
	}
	n := completed.Load()
	facts, err := b.factsOf(ctx)
	if err != nil {
		return nil, err
	}
	return describe(&Summary{
		Mode:             "external",
		Store:            b.Store,
		Workers:          b.Workers,
		Jobs:             int64(p.Jobs),
		Completed:        &n,
		Seconds:          took.Seconds(),
		JobsPerSecond:    perSecond(n, took),
		Latency:          latency,
		Errors:           errs,
		InsertSeconds:    insertTook.Seconds(),
		InsertsPerSecond: perSecond(int64(p.Jobs), insertTook),
		Batch:            p.Batch,
		ExternalWorkers:  p.Workers,
		RoundTrips:       p.RoundTrips,
		Claims:           claims,
		OutcomeReports:   reports,
		CPUSeconds:       cpu.Seconds(),
		CPUMicrosPerJob:  float64(cpu.Microseconds()) / float64(max(n, 1)),
		Server:           srv.URL.String(),
	}, 1, facts, DoneOutcomeCommitted, nil), nil
}

// benchExternalInsertBatch is the jobs per SubmitBatch of the backlog.
const benchExternalInsertBatch = 1000

// roundTrips times n single-job claim→complete round trips on an idle
// server: each job is submitted (untimed), then claimed and completed.
func roundTrips(ctx context.Context, c *client.Client, sys *actors.System, n int) (*Latency, error) {
	if n <= 0 {
		return nil, nil
	}
	ds := make([]time.Duration, 0, n)
	req := client.ClaimRequest{Types: []domain.JobType{ExternalType}, Max: 1, Wait: 5 * time.Second}
	for range n {
		if _, err := sys.Submit(ctx, actors.SubmitParams{Type: ExternalType, Payload: payload}); err != nil {
			return nil, fmt.Errorf("submit: %w", err)
		}
		start := time.Now()
		jobs, err := c.Claim(ctx, req)
		if err != nil {
			return nil, fmt.Errorf("claim: %w", err)
		}
		if len(jobs) != 1 {
			return nil, fmt.Errorf("claim: %d jobs, want 1", len(jobs))
		}
		if _, err := c.Complete(ctx, jobs[0].ID, jobs[0].LeaseToken, nil); err != nil {
			return nil, fmt.Errorf("complete job %s: %w", jobs[0].ID, err)
		}
		ds = append(ds, time.Since(start))
	}
	return summarizeLatency(ds), nil
}

// errorKind names an error for Summary.Errors: a problem's type, or
// "transport".
func errorKind(err error) string {
	var p *client.Problem
	if errors.As(err, &p) {
		return p.Type
	}
	return "transport"
}

// countingTransport counts the claims and outcome reports the workers
// send, to tell how full their batches were.
type countingTransport struct {
	next            nethttp.RoundTripper
	claims, reports atomic.Int64
}

func (t *countingTransport) RoundTrip(r *nethttp.Request) (*nethttp.Response, error) {
	switch r.URL.Path {
	case "/workers/claim":
		t.claims.Add(1)
	case "/workers/outcomes":
		t.reports.Add(1)
	}
	return t.next.RoundTrip(r)
}
