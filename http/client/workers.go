package client

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/google/uuid"
)

// Claim asks for up to req.Max ready jobs of req.Types (external types),
// waiting up to req.Wait when none is ready; an empty slice, not an
// error, when the wait ends empty. Each job is held by its LeaseToken:
// heartbeat within the lease, then Complete or Fail it.
func (c *Client) Claim(ctx context.Context, req ClaimRequest) ([]ClaimedJob, error) {
	var out struct {
		Jobs []ClaimedJob `json:"jobs"`
	}
	if _, err := c.send(ctx, call{method: http.MethodPost, path: "/workers/claim", body: req}, &out); err != nil {
		return nil, err
	}
	return out.Jobs, nil
}

// Heartbeat extends the lease of a claimed job, sends progress when not
// nil, and says whether a user canceled the job. IsLeaseLost: the job is
// no longer this worker's; stop and report nothing.
func (c *Client) Heartbeat(ctx context.Context, id uuid.UUID, token string, progress *ProgressReport) (*LeaseState, error) {
	body := struct {
		LeaseToken string          `json:"leaseToken"`
		Progress   *ProgressReport `json:"progress,omitempty"`
	}{token, progress}
	out := new(LeaseState)
	if _, err := c.send(ctx, call{method: http.MethodPost, path: jobPath(id, "/heartbeat"), body: body}, out); err != nil {
		return nil, err
	}
	return out, nil
}

// Complete ends the attempt held by token as a success with result (JSON,
// nil for none) and returns the job. IsLeaseLost: not applied, do not
// retry; IsResultTooLarge: the attempt goes on, fail it or send less.
func (c *Client) Complete(ctx context.Context, id uuid.UUID, token string, result json.RawMessage) (*Job, error) {
	body := struct {
		LeaseToken string          `json:"leaseToken"`
		Result     json.RawMessage `json:"result,omitempty"`
	}{token, result}
	job := new(Job)
	if _, err := c.send(ctx, call{method: http.MethodPost, path: jobPath(id, "/complete"), body: body}, job); err != nil {
		return nil, err
	}
	return job, nil
}

// Fail ends the attempt held by token as a failure and returns the job:
// it retries (after f.RetryIn, or the backoff) while attempts remain
// unless f is permanent. Errors as Complete's.
func (c *Client) Fail(ctx context.Context, id uuid.UUID, token string, f Failure) (*Job, error) {
	body := struct {
		LeaseToken string `json:"leaseToken"`
		Error      string `json:"error"`
		Permanent  bool   `json:"permanent,omitempty"`
		RetryIn    string `json:"retryIn,omitempty"`
	}{token, f.Error, f.Permanent, durationText(f.RetryIn)}
	job := new(Job)
	if _, err := c.send(ctx, call{method: http.MethodPost, path: jobPath(id, "/fail"), body: body}, job); err != nil {
		return nil, err
	}
	return job, nil
}

// ReportOutcomes reports 1 to 1,000 attempts' ends in one request and
// returns what became of each, in order; each is applied or refused on
// its own (OutcomeResult.Err).
func (c *Client) ReportOutcomes(ctx context.Context, outcomes []Outcome) ([]OutcomeResult, error) {
	body := struct {
		Outcomes []Outcome `json:"outcomes"`
	}{outcomes}
	var out struct {
		Outcomes []OutcomeResult `json:"outcomes"`
	}
	if _, err := c.send(ctx, call{method: http.MethodPost, path: "/workers/outcomes", body: body}, &out); err != nil {
		return nil, err
	}
	return out.Outcomes, nil
}
