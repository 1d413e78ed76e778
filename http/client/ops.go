package client

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
)

// Queues lists the queues with their counts.
func (c *Client) Queues(ctx context.Context) ([]Queue, error) {
	var out struct {
		Queues []Queue `json:"queues"`
	}
	if _, err := c.send(ctx, call{method: http.MethodGet, path: "/queues"}, &out); err != nil {
		return nil, err
	}
	return out.Queues, nil
}

// PauseQueue pauses the queue on every node and returns it.
func (c *Client) PauseQueue(ctx context.Context, name string) (*Queue, error) {
	return c.queueVerb(ctx, name, "pause")
}

// ResumeQueue resumes a paused queue and returns it.
func (c *Client) ResumeQueue(ctx context.Context, name string) (*Queue, error) {
	return c.queueVerb(ctx, name, "resume")
}

// SetQueue replaces the queue's flow settings on every node, durably,
// and returns the queue: every setting at once, so that the zero
// QueueSettings clears them. The queue's pause is left alone. Settings the
// server refuses give a validation problem naming each field
// ("rate.per", "perKey.limit"...).
func (c *Client) SetQueue(ctx context.Context, name string, settings QueueSettings) (*Queue, error) {
	q := new(Queue)
	if _, err := c.send(ctx, call{method: http.MethodPut, path: "/queues/" + url.PathEscape(name), body: settings}, q); err != nil {
		return nil, err
	}
	return q, nil
}

func (c *Client) queueVerb(ctx context.Context, name, verb string) (*Queue, error) {
	q := new(Queue)
	if _, err := c.send(ctx, call{method: http.MethodPost, path: "/queues/" + url.PathEscape(name) + "/" + verb}, q); err != nil {
		return nil, err
	}
	return q, nil
}

func schedulePath(name, suffix string) string { return "/schedules/" + url.PathEscape(name) + suffix }

// Schedules lists the schedules.
func (c *Client) Schedules(ctx context.Context) ([]Schedule, error) {
	var out struct {
		Schedules []Schedule `json:"schedules"`
	}
	if _, err := c.send(ctx, call{method: http.MethodGet, path: "/schedules"}, &out); err != nil {
		return nil, err
	}
	return out.Schedules, nil
}

// Schedule returns the named schedule.
func (c *Client) Schedule(ctx context.Context, name string) (*Schedule, error) {
	return c.scheduleCall(ctx, http.MethodGet, name, "", nil)
}

// PutSchedule creates or replaces the named schedule and returns it.
func (c *Client) PutSchedule(ctx context.Context, name string, req ScheduleRequest) (*Schedule, error) {
	return c.scheduleCall(ctx, http.MethodPut, name, "", req)
}

// DeleteSchedule deletes the named schedule; the jobs it submitted stay.
func (c *Client) DeleteSchedule(ctx context.Context, name string) error {
	_, err := c.send(ctx, call{method: http.MethodDelete, path: schedulePath(name, "")}, nil)
	return err
}

// PauseSchedule stops the schedule's slots from submitting jobs.
func (c *Client) PauseSchedule(ctx context.Context, name string) (*Schedule, error) {
	return c.scheduleCall(ctx, http.MethodPost, name, "/pause", nil)
}

// ResumeSchedule resumes a paused schedule from its next slot.
func (c *Client) ResumeSchedule(ctx context.Context, name string) (*Schedule, error) {
	return c.scheduleCall(ctx, http.MethodPost, name, "/resume", nil)
}

// TriggerSchedule submits the schedule's job now and returns it, with an
// Idempotency-Key as Submit.
func (c *Client) TriggerSchedule(ctx context.Context, name string, opts ...CallOption) (*Job, error) {
	job := new(Job)
	if _, err := c.send(ctx, call{method: http.MethodPost, path: schedulePath(name, "/trigger"), submit: true, opts: opts}, job); err != nil {
		return nil, err
	}
	return job, nil
}

func (c *Client) scheduleCall(ctx context.Context, method, name, suffix string, body any) (*Schedule, error) {
	s := new(Schedule)
	if _, err := c.send(ctx, call{method: method, path: schedulePath(name, suffix), body: body}, s); err != nil {
		return nil, err
	}
	return s, nil
}

// Stats returns the server's figures.
func (c *Client) Stats(ctx context.Context) (*Stats, error) {
	s := new(Stats)
	if _, err := c.send(ctx, call{method: http.MethodGet, path: "/stats"}, s); err != nil {
		return nil, err
	}
	return s, nil
}

// JobTypes lists the job types submissions accept, and what runs each.
func (c *Client) JobTypes(ctx context.Context) (*JobTypes, error) {
	t := new(JobTypes)
	if _, err := c.send(ctx, call{method: http.MethodGet, path: "/job-types"}, t); err != nil {
		return nil, err
	}
	return t, nil
}

// Health returns the server's health. A server that answers 503 with its
// health is not an error: see Health.OK.
func (c *Client) Health(ctx context.Context) (*Health, error) {
	h := new(Health)
	if _, err := c.send(ctx, call{method: http.MethodGet, path: "/health", opts: []CallOption{noRetry}}, h); err != nil {
		var p *Problem
		if errors.As(err, &p) && p.Status == http.StatusServiceUnavailable && json.Unmarshal(p.body, h) == nil && h.Status != "" {
			return h, nil
		}
		return nil, err
	}
	return h, nil
}

// Metrics returns the server's Prometheus text.
func (c *Client) Metrics(ctx context.Context) ([]byte, error) {
	var out []byte
	if _, err := c.send(ctx, call{method: http.MethodGet, path: "/metrics", accept: "text/plain"}, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// OpenAPI returns the server's API description (YAML).
func (c *Client) OpenAPI(ctx context.Context) ([]byte, error) {
	var out []byte
	if _, err := c.send(ctx, call{method: http.MethodGet, path: "/openapi.yaml", accept: "application/yaml, */*"}, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// Backup opens a backup of the server's store, streamed as the server
// takes it; the caller reads it to the end and closes it. Only a server
// on Badger serves one.
func (c *Client) Backup(ctx context.Context) (io.ReadCloser, error) {
	resp, err := c.open(ctx, call{method: http.MethodGet, path: "/admin/backup", accept: "application/octet-stream, application/problem+json"})
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}
