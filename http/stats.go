package http

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	nethttp "net/http"
	"slices"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/troupe-go/troupe/actors"
	"github.com/troupe-go/troupe/domain"
)

// statsMaxAge is how long a stats sample is reused. Every open dashboard
// receives the stats every two seconds, and counting the jobs of a status
// costs the store an index scan; one sample a second serves them all.
const statsMaxAge = time.Second

// statsTimeout bounds the counting, so that a slow store delays a sample
// rather than every stream waiting for it.
const statsTimeout = 5 * time.Second

// registerStatsRoutes adds GET /stats and GET /job-types to r.
func (s *Server) registerStatsRoutes(r gin.IRoutes) {
	r.GET("/stats", s.handleStats)
	r.GET("/job-types", s.handleJobTypes)
}

// StatusCounts counts jobs by status.
type StatusCounts struct {
	// Scheduled counts jobs waiting for a future runAt: submitted for
	// later, or waiting out a retry's backoff.
	Scheduled int `json:"scheduled"`
	// Pending counts jobs due to run, waiting for a worker.
	Pending int `json:"pending"`
	// Running counts jobs whose handler is executing.
	Running int `json:"running"`
	// Completed counts jobs that succeeded.
	Completed int `json:"completed"`
	// Failed counts jobs that used up their attempts or failed for good.
	Failed int `json:"failed"`
	// Canceled counts jobs canceled by a user.
	Canceled int `json:"canceled"`
}

// set records the count of one status.
func (c *StatusCounts) set(st domain.Status, n int) {
	switch st {
	case domain.StatusScheduled:
		c.Scheduled = n
	case domain.StatusPending:
		c.Pending = n
	case domain.StatusRunning:
		c.Running = n
	case domain.StatusCompleted:
		c.Completed = n
	case domain.StatusFailed:
		c.Failed = n
	case domain.StatusCanceled:
		c.Canceled = n
	}
}

// StatsResponse is the body of GET /stats and the data of the stats event
// of GET /events: what an operator's overview shows.
type StatsResponse struct {
	// Counts counts the stored jobs by status.
	Counts StatusCounts `json:"counts"`
	// Workers describes the worker pool of this server.
	Workers WorkersResponse `json:"workers"`
	// QueueDepth counts jobs waiting in this server's ready queue.
	QueueDepth int `json:"queueDepth"`
	// Stuck counts this server's attempts running past their timeout,
	// whose handlers ignore their context and keep their workers.
	Stuck int `json:"stuck"`
	// Queues is the state of each queue, as GET /queues has it.
	Queues []QueueResponse `json:"queues"`
	// Retention says how long finished jobs are kept.
	Retention RetentionResponse `json:"retention"`
	// SampledAt is when the figures were read; they may be up to a second
	// old, since one sample serves every caller for that long.
	SampledAt Timestamp `json:"sampledAt"`
}

// RetentionResponse says how long finished jobs are kept, per status, as
// Go durations counted from finishedAt; null for a status kept for ever.
type RetentionResponse struct {
	Completed *string `json:"completed"`
	Failed    *string `json:"failed"`
	Canceled  *string `json:"canceled"`
}

func newRetentionResponse(r actors.Retention) RetentionResponse {
	keep := func(status domain.Status) *string {
		d, ok := r.For(status)
		if !ok {
			return nil
		}
		s := d.String()
		return &s
	}
	return RetentionResponse{
		Completed: keep(domain.StatusCompleted),
		Failed:    keep(domain.StatusFailed),
		Canceled:  keep(domain.StatusCanceled),
	}
}

// statsCache holds the latest stats sample.
type statsCache struct {
	mu   sync.Mutex
	last StatsResponse
	err  error
	// at is when last was read, with the monotonic clock, so that a step
	// of the wall clock cannot freeze the sample.
	at time.Time
	// reading is closed when the read in progress ends; nil when none is.
	reading chan struct{}
}

// stats returns the latest sample, or reads a new one when it is older than
// statsMaxAge. One read serves everyone: callers that arrive during it wait
// for it, or for their own context to end. A failed read is kept as long as
// a sample, so a slow store is asked once a second, not once a caller.
func (s *Server) stats(ctx context.Context) (StatsResponse, error) {
	c := &s.statsCache
	for {
		c.mu.Lock()
		if !c.at.IsZero() && time.Since(c.at) < statsMaxAge {
			st, err := c.last, c.err
			c.mu.Unlock()
			return st, err
		}
		if wait := c.reading; wait != nil {
			c.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return StatsResponse{}, ctx.Err()
			}
		}
		done := make(chan struct{})
		c.reading = done
		c.mu.Unlock()

		// Detached from the caller, who may leave while others wait.
		st, err := s.readStats(context.WithoutCancel(ctx))
		c.mu.Lock()
		c.last, c.err, c.at, c.reading = st, err, time.Now(), nil
		c.mu.Unlock()
		close(done)
		return st, err
	}
}

// readStats reads one sample from the service, within statsTimeout.
func (s *Server) readStats(ctx context.Context) (StatsResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, statsTimeout)
	defer cancel()
	rt := s.svc.Stats()
	st := StatsResponse{
		Workers:    WorkersResponse{Size: rt.Workers.Size, Busy: rt.Workers.Busy},
		QueueDepth: rt.QueueDepth,
		Stuck:      rt.Stuck,
		Retention:  newRetentionResponse(s.svc.Retention()),
		SampledAt:  Timestamp{time.Now().UTC()},
	}
	for _, status := range domain.Statuses() {
		// Limit 1: the total is what counts, and 0 would mean "no limit".
		page, err := s.svc.List(ctx, domain.Filter{Statuses: []domain.Status{status}, Limit: 1})
		if errors.Is(err, context.DeadlineExceeded) {
			// The store is too slow to count: unavailable, not broken.
			err = fmt.Errorf("%w: %w", domain.ErrUnavailable, err)
		}
		if err != nil {
			return StatsResponse{}, fmt.Errorf("count %s jobs: %w", status, err)
		}
		st.Counts.set(status, page.Total)
	}
	queues, err := s.svc.Queues(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("%w: %w", domain.ErrUnavailable, err)
	}
	if err != nil {
		return StatsResponse{}, fmt.Errorf("list queues: %w", err)
	}
	st.Queues = newQueueResponses(queues)
	return st, nil
}

// handleStats handles GET /stats: jobs by status, the worker pool, the
// queue depth, the stuck attempts, the queues and the retention.
func (s *Server) handleStats(c *gin.Context) {
	st, err := s.stats(c.Request.Context())
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	writeJSON(c, nethttp.StatusOK, st)
}

// JobTypesResponse is the body of GET /job-types.
type JobTypesResponse struct {
	// Types lists the registered job types, sorted; empty, never null,
	// when none is registered.
	Types []domain.JobType `json:"types"`
	// JobTypes lists the same types with what runs each, sorted by type.
	JobTypes []JobTypeResponse `json:"jobTypes"`
}

// JobTypeResponse is one job type of GET /job-types.
type JobTypeResponse struct {
	Type domain.JobType `json:"type"`
	// RunBy is "go", "external" or "webhook".
	RunBy actors.RunBy `json:"runBy"`
}

// handleJobTypes handles GET /job-types: the types a job can be submitted
// with.
func (s *Server) handleJobTypes(c *gin.Context) {
	types := slices.Sorted(slices.Values(s.svc.JobTypes()))
	if types == nil {
		types = []domain.JobType{}
	}
	infos := slices.SortedFunc(slices.Values(s.svc.JobTypeInfo()), func(a, b actors.JobTypeInfo) int { return cmp.Compare(a.Type, b.Type) })
	jobTypes := make([]JobTypeResponse, len(infos))
	for i, info := range infos {
		jobTypes[i] = JobTypeResponse{Type: info.Type, RunBy: info.RunBy}
	}
	writeJSON(c, nethttp.StatusOK, JobTypesResponse{Types: types, JobTypes: jobTypes})
}
