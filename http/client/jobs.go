package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/google/uuid"
)

// Submit submits a job and returns it, with created false when a job
// holding req.UniqueKey was answered instead. The call carries a random
// Idempotency-Key (or the one given with IdempotencyKey), so that the
// client's own retries after a lost answer create one job.
func (c *Client) Submit(ctx context.Context, req SubmitRequest, opts ...CallOption) (job *Job, created bool, err error) {
	job = new(Job)
	status, err := c.send(ctx, call{method: http.MethodPost, path: "/jobs", body: req, submit: true, opts: opts}, job)
	if err != nil {
		return nil, false, err
	}
	return job, status == http.StatusCreated, nil
}

// SubmitBatch submits 1 to 1,000 jobs in one write, all or nothing, with
// an Idempotency-Key as Submit.
func (c *Client) SubmitBatch(ctx context.Context, reqs []SubmitRequest, opts ...CallOption) (*BatchResult, error) {
	body := struct {
		Jobs []SubmitRequest `json:"jobs"`
	}{reqs}
	out := new(BatchResult)
	if _, err := c.send(ctx, call{method: http.MethodPost, path: "/jobs/batch", body: body, submit: true, opts: opts}, out); err != nil {
		return nil, err
	}
	return out, nil
}

func jobPath(id uuid.UUID, suffix string) string { return "/jobs/" + id.String() + suffix }

// Get returns the job.
func (c *Client) Get(ctx context.Context, id uuid.UUID) (*Job, error) {
	job := new(Job)
	if _, err := c.send(ctx, call{method: http.MethodGet, path: jobPath(id, "")}, job); err != nil {
		return nil, err
	}
	return job, nil
}

// Cancel cancels the job and returns it: a running job may still be
// running until its handler stops.
func (c *Client) Cancel(ctx context.Context, id uuid.UUID) (*Job, error) {
	job := new(Job)
	if _, err := c.send(ctx, call{method: http.MethodDelete, path: jobPath(id, "")}, job); err != nil {
		return nil, err
	}
	return job, nil
}

// Retry submits a copy of a failed or canceled job and returns the copy
// (its RetryOf is id).
func (c *Client) Retry(ctx context.Context, id uuid.UUID) (*Job, error) {
	job := new(Job)
	if _, err := c.send(ctx, call{method: http.MethodPost, path: jobPath(id, "/retry")}, job); err != nil {
		return nil, err
	}
	return job, nil
}

// Query returns the query string of GET /jobs for the filter.
func (f Filter) Query() url.Values {
	q := url.Values{}
	for _, s := range f.Statuses {
		q.Add("status", string(s))
	}
	if f.Type != "" {
		q.Set("type", string(f.Type))
	}
	if f.Queue != "" {
		q.Set("queue", f.Queue)
	}
	if f.Schedule != "" {
		q.Set("schedule", f.Schedule)
	}
	if f.Key != "" {
		q.Set("key", f.Key)
	}
	if f.Limit != 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	if f.Offset != 0 {
		q.Set("offset", strconv.Itoa(f.Offset))
	}
	return q
}

// List returns one page of the jobs that match f, oldest first.
func (c *Client) List(ctx context.Context, f Filter) (*JobList, error) {
	out := new(JobList)
	if _, err := c.send(ctx, call{method: http.MethodGet, path: "/jobs", query: f.Query()}, out); err != nil {
		return nil, err
	}
	return out, nil
}

// All iterates over every job that matches f from f.Offset on, page by
// page (f.Limit jobs a page). It stops at the first error, which it
// yields. Jobs that change status while it runs may be skipped or seen
// twice, as with any offset paging.
func (c *Client) All(ctx context.Context, f Filter) iter.Seq2[*Job, error] {
	return func(yield func(*Job, error) bool) {
		for {
			page, err := c.List(ctx, f)
			if err != nil {
				yield(nil, err)
				return
			}
			for _, j := range page.Jobs {
				if !yield(j, nil) {
					return
				}
			}
			f.Offset += len(page.Jobs)
			if len(page.Jobs) == 0 || f.Offset >= page.Total {
				return
			}
		}
	}
}

// Wait follows the job over GET /jobs/{id}/events until it is completed,
// failed or canceled, and returns it. When the stream breaks it reads the
// job with Get and reconnects, so a restarting server or a proxy that cuts
// streams only slows it down; it returns when ctx ends, or at once on an
// error answer (an unknown job: IsNotFound).
func (c *Client) Wait(ctx context.Context, id uuid.UUID) (*Job, error) {
	backoff := 100 * time.Millisecond
	for {
		job, err := c.followJob(ctx, id)
		if job != nil && job.Finished() {
			return job, nil
		}
		var p *Problem
		if errors.As(err, &p) && p.Status != http.StatusBadGateway && p.Status != http.StatusServiceUnavailable &&
			p.Status != http.StatusGatewayTimeout && p.Status != http.StatusNotAcceptable {
			return nil, err
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("client: wait for job %s: %w", id, context.Cause(ctx))
		}
		// The stream broke or is not served: read the job, then try again.
		if job, err := c.Get(ctx, id); err == nil && job.Finished() {
			return job, nil
		} else if err != nil && !retryAfterGet(err) {
			return nil, err
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("client: wait for job %s: %w", id, context.Cause(ctx))
		case <-t.C:
		}
		backoff = min(backoff*2, 2*time.Second)
	}
}

// retryAfterGet reports whether Wait may go on after Get failed with err:
// the server was out of reach or unavailable.
func retryAfterGet(err error) bool {
	var p *Problem
	return !errors.As(err, &p) || p.Status >= 500
}

// followJob reads the job's event stream until it ends and returns the
// last state seen (nil if none).
func (c *Client) followJob(ctx context.Context, id uuid.UUID) (*Job, error) {
	resp, err := c.open(ctx, call{method: http.MethodGet, path: jobPath(id, "/events"), accept: "text/event-stream"})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var last *Job
	for ev, err := range readEvents(resp.Body) {
		if err != nil {
			return last, err
		}
		if ev.Name != "job" {
			continue
		}
		job := new(Job)
		if err := json.Unmarshal(ev.Data, job); err != nil {
			return last, fmt.Errorf("client: job %s: decode event: %w", id, err)
		}
		last = job
		if job.Finished() {
			return job, nil
		}
	}
	return last, nil
}

// Event is one Server-Sent Event of GET /events: Name "job" (Data is a
// Job), "stats" (Data is Stats) or "resync" (Data is {"missed": N}).
type Event struct {
	Name string
	ID   string
	Data json.RawMessage
}

// Job decodes a "job" event's data.
func (e Event) Job() (*Job, error) {
	j := new(Job)
	if err := json.Unmarshal(e.Data, j); err != nil {
		return nil, fmt.Errorf("client: decode %s event: %w", e.Name, err)
	}
	return j, nil
}

// Events streams GET /events (every job change and the stats) until ctx
// ends or the stream breaks; the error, if any, is the last item.
func (c *Client) Events(ctx context.Context) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		resp, err := c.open(ctx, call{method: http.MethodGet, path: "/events", accept: "text/event-stream"})
		if err != nil {
			yield(Event{}, err)
			return
		}
		defer resp.Body.Close()
		for ev, err := range readEvents(resp.Body) {
			if err != nil && ctx.Err() != nil {
				return
			}
			if !yield(ev, err) || err != nil {
				return
			}
		}
	}
}

// JobEvents streams GET /jobs/{id}/events: the job's states until a
// terminal one.
func (c *Client) JobEvents(ctx context.Context, id uuid.UUID) iter.Seq2[*Job, error] {
	return func(yield func(*Job, error) bool) {
		resp, err := c.open(ctx, call{method: http.MethodGet, path: jobPath(id, "/events"), accept: "text/event-stream"})
		if err != nil {
			yield(nil, err)
			return
		}
		defer resp.Body.Close()
		for ev, err := range readEvents(resp.Body) {
			if err != nil {
				yield(nil, err)
				return
			}
			if ev.Name != "job" {
				continue
			}
			j, err := ev.Job()
			if !yield(j, err) || err != nil {
				return
			}
		}
	}
}
