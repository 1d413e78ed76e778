package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	nethttp "net/http"

	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/http"
	"github.com/troupe-go/troupe/http/client"
	"github.com/troupe-go/troupe/internal/storeopen"
)

// HTTPParams say how to load the API.
type HTTPParams struct {
	// Concurrency is the number of goroutines submitting at once.
	Concurrency int
	// Duration is how long to submit.
	Duration time.Duration
	// Batch is the jobs per POST /jobs/batch; 0 submits one job per
	// POST /jobs.
	Batch int
	// Server is the base URL of a running server; nil starts one in this
	// process with Bencher.StartServer.
	Server *url.URL
	// Token is the bearer token for Server.
	Token string
}

// ServerStarter starts an API server in this process on the memory store,
// wired as `troupe serve` is, with workers workers and handler registered
// for JobType in place of the demo handlers, and its store wrapped by wrap
// so that the bench sees jobs complete.
type ServerStarter func(ctx context.Context, workers int, handler domain.Handler, wrap func(domain.Store) domain.Store) (*Server, error)

// Server is an API server that ServerStarter started.
type Server struct {
	// URL is the API's base URL.
	URL *url.URL
	// Stop stops the server.
	Stop func() error
}

// loadTarget is the API under load.
type loadTarget struct {
	base    *url.URL
	store   string
	workers int
	// rec sees the jobs of an in-process server; nil for a remote one.
	rec  *recorder
	stop func() error
}

// startServer runs a server in this process with StartServer, its store
// decorated so that the bench sees jobs complete.
func (b *Bencher) startServer(ctx context.Context) (*loadTarget, error) {
	if b.StartServer == nil {
		return nil, errors.New("bench: no in-process server: set Bencher.StartServer or give a server")
	}
	rec := newRecorder(false, false)
	srv, err := b.StartServer(ctx, b.Workers, rec, func(s domain.Store) domain.Store { return recording(s, rec) })
	if err != nil {
		return nil, err
	}
	return &loadTarget{base: srv.URL, store: storeopen.Memory, workers: b.Workers, rec: rec, stop: srv.Stop}, nil
}

// remoteTarget describes a running server; its pool size comes from its
// health answer, when it gives one.
func (b *Bencher) remoteTarget(ctx context.Context, c *client.Client, base *url.URL) (*loadTarget, error) {
	t := &loadTarget{base: base, store: "remote", stop: func() error { return nil }}
	h, err := c.Health(ctx)
	var p *client.Problem
	switch {
	case err == nil:
		t.workers = h.Workers.Size
	case !errors.As(err, &p):
		return nil, fmt.Errorf("cannot reach the server at %s: %w", base, err)
	}
	return t, nil
}

// workerResult is what one submitting goroutine saw.
type workerResult struct {
	latencies []time.Duration
	errors    map[string]int64
}

// HTTP loads the API from p.Concurrency goroutines for p.Duration.
func (b *Bencher) HTTP(ctx context.Context, p HTTPParams) (summary *Summary, err error) {
	transport := nethttp.DefaultTransport.(*nethttp.Transport).Clone()
	// One kept-alive connection per goroutine: the default keeps two idle
	// per host, and the others would reconnect for every request.
	transport.MaxIdleConns = 2 * p.Concurrency
	transport.MaxIdleConnsPerHost = p.Concurrency
	hc := &nethttp.Client{Transport: transport, Timeout: httpRequestTimeout}
	defer hc.CloseIdleConnections()

	var target *loadTarget
	if p.Server == nil {
		target, err = b.startServer(ctx)
	} else {
		var c *client.Client
		if c, err = newLoadClient(p.Server.String(), p.Token, hc); err == nil {
			target, err = b.remoteTarget(ctx, c, p.Server)
		}
	}
	if err != nil {
		return nil, err
	}
	// Each request is measured as it is: no retries.
	c, err := newLoadClient(target.base.String(), p.Token, hc)
	if err != nil {
		return nil, errors.Join(err, target.stop())
	}
	defer func() { err = errors.Join(err, target.stop()) }()

	path, body, perRequest := "/jobs", []byte(`{"type":"noop","payload":{}}`), int64(1)
	if p.Batch > 0 {
		jobs := make([]http.SubmitRequest, p.Batch)
		for i := range jobs {
			jobs[i] = http.SubmitRequest{Type: string(JobType), Payload: payload}
		}
		if body, err = json.Marshal(http.BatchSubmitRequest{Jobs: jobs}); err != nil {
			return nil, fmt.Errorf("encode batch: %w", err)
		}
		path, perRequest = "/jobs/batch", int64(p.Batch)
	}

	var requests, accepted, failed atomic.Int64
	var draining atomic.Bool
	begin := time.Now()
	deadline := begin.Add(p.Duration)
	meter := newRateMeter()
	stopProgress := startProgress(b.Progress, func() (string, float64) {
		jobs := accepted.Load()
		if draining.Load() {
			done := target.rec.completed.Load()
			return fmt.Sprintf("http: waiting for the server to finish its jobs: %d/%d done", done, jobs), float64(done) / float64(max(jobs, 1))
		}
		elapsed := time.Since(begin)
		return fmt.Sprintf("http: %s/%s %d requests, %d jobs (%.0f jobs/s), %d errors",
			elapsed.Truncate(time.Second), p.Duration, requests.Load(), jobs, meter.rate(jobs), failed.Load()), elapsed.Seconds() / p.Duration.Seconds()
	})
	defer stopProgress()

	results := make([]workerResult, p.Concurrency)
	var wg sync.WaitGroup
	for i := range p.Concurrency {
		wg.Go(func() {
			res := workerResult{errors: map[string]int64{}}
			for ctx.Err() == nil && time.Now().Before(deadline) {
				start := time.Now()
				status, err := post(ctx, c, path, body)
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
	nodes := 0
	if target.rec != nil {
		nodes = 1
	}
	return describe(&Summary{
		Mode:              "http",
		Store:             target.store,
		Workers:           target.workers,
		Jobs:              accepted.Load(),
		Completed:         completed,
		Seconds:           took.Seconds(),
		JobsPerSecond:     perSecond(accepted.Load(), took),
		Latency:           summarizeLatency(latencies),
		Errors:            errs,
		Batch:             p.Batch,
		Concurrency:       p.Concurrency,
		Requests:          requests.Load(),
		RequestsPerSecond: perSecond(requests.Load(), took),
		Server:            target.base.String(),
	}, nodes, storeFacts{}, DoneAccepted, nil), nil
}

// newLoadClient returns the API client of the load: the bench's own
// transport, and no retries, so that each request is measured as it is.
func newLoadClient(base, token string, hc *nethttp.Client) (*client.Client, error) {
	c, err := client.New(base, client.WithToken(token), client.WithHTTPClient(hc), client.WithRetries(0),
		client.WithUserAgent("troupe-bench"))
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	return c, nil
}

// post sends one submission and returns the answer's status; an error
// only when there was no answer.
func post(ctx context.Context, c *client.Client, path string, body json.RawMessage) (int, error) {
	status, err := c.Do(ctx, nethttp.MethodPost, path, nil, body, nil)
	var p *client.Problem
	if errors.As(err, &p) {
		return p.Status, nil
	}
	return status, err
}
