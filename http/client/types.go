package client

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/troupe-go/troupe/domain"
)

// The client's wire types mirror the server's JSON (see the server's
// GET /openapi.yaml); they are the client's own, so that a program using
// them depends on no server code.

// Job is a job as the server renders it.
type Job struct {
	ID   uuid.UUID      `json:"id"`
	Type domain.JobType `json:"type"`
	// Payload is the JSON value submitted. When PayloadEncoding is
	// "base64" it is a JSON string of base64 bytes (a payload that an
	// embedding program stored without it being JSON).
	Payload         json.RawMessage `json:"payload"`
	PayloadEncoding string          `json:"payloadEncoding,omitempty"`
	Status          domain.Status   `json:"status"`
	// Attempts counts the attempts started so far.
	Attempts    int    `json:"attempts"`
	MaxAttempts int    `json:"maxAttempts"`
	LastError   string `json:"lastError"`
	Queue       string `json:"queue"`
	Priority    int    `json:"priority"`
	// Timeout is each attempt's timeout as a Go duration ("30m0s"), empty
	// for none.
	Timeout   string `json:"timeout,omitempty"`
	UniqueKey string `json:"uniqueKey,omitempty"`
	UniqueFor string `json:"uniqueFor,omitempty"`
	// Schedule names the schedule that submitted the job, if one did.
	Schedule string `json:"schedule,omitempty"`
	// Key is the job's flow key, which its queue's per-key settings
	// (QueueSettings.PerKey, Ordered, Fair) apply to; empty for none.
	Key string `json:"key,omitempty"`
	// WaitingFor says why a pending job due now does not start: its
	// queue's or its key's flow settings hold it back ("queue limit",
	// "queue rate", "key limit", "key order", "key rate"). Empty when
	// nothing does.
	WaitingFor domain.WaitReason `json:"waitingFor,omitempty"`
	// RetryOf is the job that POST /jobs/{id}/retry copied, if any.
	RetryOf *uuid.UUID `json:"retryOf,omitempty"`
	// Result is the JSON result of a completed job, nil for none.
	Result json.RawMessage `json:"result,omitempty"`
	// Progress is what the running (or last) attempt reported, nil for none.
	Progress   *Progress `json:"progress,omitempty"`
	CreatedAt  time.Time `json:"createdAt"`
	UpdatedAt  time.Time `json:"updatedAt"`
	RunAt      time.Time `json:"runAt,omitzero"`
	StartedAt  time.Time `json:"startedAt,omitzero"`
	FinishedAt time.Time `json:"finishedAt,omitzero"`
}

// Finished reports whether the job is completed, failed or canceled.
func (j *Job) Finished() bool { return j.Status.IsTerminal() }

// Progress is how far an attempt said it got.
type Progress struct {
	// Percent is 0 to 100.
	Percent   float64   `json:"percent"`
	Message   string    `json:"message,omitempty"`
	UpdatedAt time.Time `json:"updatedAt,omitzero"`
}

// SubmitRequest is a job to submit: the body of POST /jobs. Zero fields
// are left out, so that the server's defaults apply.
type SubmitRequest struct {
	// Type is the job type; required.
	Type domain.JobType `json:"type"`
	// Payload is any JSON value; nil sends none (the job's payload is null).
	Payload json.RawMessage `json:"payload,omitempty"`
	// MaxAttempts caps the attempts, 1 to 100; 0 means the server's default.
	MaxAttempts int `json:"maxAttempts,omitempty"`
	// RunAt: the job does not start before it. Not with Delay.
	RunAt time.Time `json:"runAt,omitzero"`
	// Delay is a Go duration ("90s"): the job starts no sooner than this
	// long after submission.
	Delay string `json:"delay,omitempty"`
	// Priority, 1 (first) to 9 (last); 0 means 5.
	Priority int `json:"priority,omitempty"`
	// Queue is the queue the job waits in; "" means "default".
	Queue string `json:"queue,omitempty"`
	// UniqueKey admits one unfinished job with it; a duplicate submission
	// answers the job that holds it (Submitted.Created false).
	UniqueKey string `json:"uniqueKey,omitempty"`
	// UniqueFor (a Go duration) keeps the key held after the job finished.
	UniqueFor string `json:"uniqueFor,omitempty"`
	// Timeout (a Go duration) bounds each attempt; "0s" means none, ""
	// the type's or the server's default.
	Timeout string `json:"timeout,omitempty"`
	// Key (1 to 255 bytes) is the job's flow key: a queue's per-key limit,
	// rate, order and fairness apply to each key separately, such as one
	// customer's jobs. Unlike UniqueKey it admits any number of jobs.
	Key string `json:"key,omitempty"`
}

// JobList is one page of GET /jobs.
type JobList struct {
	Jobs   []*Job `json:"jobs"`
	Total  int    `json:"total"`
	Limit  int    `json:"limit"`
	Offset int    `json:"offset"`
}

// Filter selects the jobs List and All return. Zero fields match any job.
type Filter struct {
	Statuses []domain.Status
	Type     domain.JobType
	Queue    string
	Schedule string
	// Key selects the jobs with this flow key.
	Key string
	// Limit is the page size, 1 to 1000; 0 means the server's default (50).
	Limit int
	// Offset skips that many matching jobs.
	Offset int
}

// BatchResult is the answer of POST /jobs/batch: the jobs in the order
// submitted, and whether each was created (false: its unique key was held
// and Jobs[i] is the job holding it).
type BatchResult struct {
	Jobs    []*Job `json:"jobs"`
	Results []struct {
		Created bool `json:"created"`
	} `json:"results"`
}

// Queue is one queue of GET /queues: its flow settings, shared by every
// node, and its counts.
type Queue struct {
	Name   string `json:"name"`
	Paused bool   `json:"paused"`
	// QueueSettings are the queue's flow settings; Limit is the limit
	// across all nodes (0 for none), not this node's cap (NodeLimit).
	QueueSettings
	// NodeLimit is the cap of the node that answered on the queue's
	// running jobs (its TROUPE_QUEUE_LIMITS), 0 for none.
	NodeLimit int `json:"nodeLimit"`
	Scheduled int `json:"scheduled"`
	Pending   int `json:"pending"`
	Running   int `json:"running"`
	// Waiting counts the pending jobs due now that the flow settings hold
	// back, by reason ("queue limit", "queue rate", "key limit", "key
	// order", "key rate").
	Waiting map[domain.WaitReason]int `json:"waiting,omitempty"`
}

// QueueSettings are a queue's flow settings, the body of PUT
// /queues/{name}: every field is optional, and the zero value sets
// nothing (the queue's jobs start as fast as workers take them). See
// domain.QueueSettings for their meaning.
type QueueSettings struct {
	// Limit caps how many of the queue's jobs run at once across all
	// nodes; 0 means no cap.
	Limit int `json:"limit,omitempty"`
	// Rate caps how many of the queue's attempts start per period across
	// all nodes.
	Rate *Rate `json:"rate,omitempty"`
	// PerKey applies a limit and a rate to each job key separately.
	PerKey *KeyLimits `json:"perKey,omitempty"`
	// Ordered (with PerKey.Limit 1) starts each key's jobs one at a time,
	// in submission order.
	Ordered bool `json:"ordered,omitempty"`
	// Fair takes ready jobs round-robin across keys.
	Fair bool `json:"fair,omitempty"`
}

// Rate is a token bucket: Count starts per Per, with bursts of up to
// Burst (0 means Count).
type Rate struct {
	Count int
	Per   time.Duration
	Burst int
}

// rateJSON is Rate on the wire: Per as a Go duration ("1s", "1m0s").
type rateJSON struct {
	Count int    `json:"count"`
	Per   string `json:"per"`
	Burst int    `json:"burst,omitempty"`
}

// MarshalJSON writes Per as a Go duration.
func (r Rate) MarshalJSON() ([]byte, error) {
	return json.Marshal(rateJSON{Count: r.Count, Per: r.Per.String(), Burst: r.Burst})
}

// UnmarshalJSON reads Per as a Go duration.
func (r *Rate) UnmarshalJSON(data []byte) error {
	var w rateJSON
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	per, err := time.ParseDuration(w.Per)
	if err != nil {
		return fmt.Errorf("client: rate.per %q: %w", w.Per, err)
	}
	*r = Rate{Count: w.Count, Per: per, Burst: w.Burst}
	return nil
}

// KeyLimits are the limits a queue applies to each job key separately.
type KeyLimits struct {
	// Limit caps how many jobs of one key run at once; 0 means no cap.
	Limit int   `json:"limit,omitempty"`
	Rate  *Rate `json:"rate,omitempty"`
}

// Stats is the body of GET /stats.
type Stats struct {
	Counts     map[domain.Status]int `json:"counts"`
	Workers    Workers               `json:"workers"`
	QueueDepth int                   `json:"queueDepth"`
	Stuck      int                   `json:"stuck"`
	Queues     []Queue               `json:"queues"`
	Retention  struct {
		Completed string `json:"completed"`
		Failed    string `json:"failed"`
		Canceled  string `json:"canceled"`
	} `json:"retention"`
	SampledAt time.Time `json:"sampledAt"`
}

// Workers describes a server's worker pool.
type Workers struct {
	Size int `json:"size"`
	Busy int `json:"busy"`
}

// Health is the body of GET /health (200 or 503: Health does not treat a
// 503 as an error).
type Health struct {
	Status     string  `json:"status"`
	Workers    Workers `json:"workers"`
	QueueDepth int     `json:"queueDepth"`
	Dispatcher string  `json:"dispatcher"`
	Store      string  `json:"store"`
}

// OK reports whether every part of the server is up.
func (h *Health) OK() bool { return h.Status == "ok" }

// JobTypes is the body of GET /job-types.
type JobTypes struct {
	// Types lists every type submissions accept, sorted.
	Types []domain.JobType `json:"types"`
	// JobTypes says what runs each: "go", "external" or "webhook".
	JobTypes []JobTypeInfo `json:"jobTypes,omitempty"`
}

// JobTypeInfo says what runs a job type.
type JobTypeInfo struct {
	Type  domain.JobType `json:"type"`
	RunBy string         `json:"runBy"`
}

// ScheduleJob is the job a schedule submits at each slot.
type ScheduleJob struct {
	Type            domain.JobType  `json:"type"`
	Payload         json.RawMessage `json:"payload,omitempty"`
	PayloadEncoding string          `json:"payloadEncoding,omitempty"`
	Queue           string          `json:"queue,omitempty"`
	Priority        int             `json:"priority,omitempty"`
	MaxAttempts     int             `json:"maxAttempts,omitempty"`
	// Timeout is a Go duration; "0s" means none.
	Timeout string `json:"timeout,omitempty"`
}

// ScheduleRequest is the body of PUT /schedules/{name}.
type ScheduleRequest struct {
	// Cron is 5 fields, 6 with seconds first, or @hourly, @every 30s...
	Cron string `json:"cron"`
	// Timezone is an IANA zone; "" means UTC.
	Timezone string `json:"timezone,omitempty"`
	// CatchUp is "skip" (default) or "one".
	CatchUp string      `json:"catchUp,omitempty"`
	Paused  bool        `json:"paused,omitempty"`
	Job     ScheduleJob `json:"job"`
}

// Schedule is a periodic job as the server renders it.
type Schedule struct {
	Name          string        `json:"name"`
	Cron          string        `json:"cron"`
	Timezone      string        `json:"timezone"`
	Description   string        `json:"description"`
	CatchUp       string        `json:"catchUp"`
	Paused        bool          `json:"paused"`
	Source        string        `json:"source"`
	Job           ScheduleJob   `json:"job"`
	NextRunAt     time.Time     `json:"nextRunAt,omitzero"`
	LastRunAt     time.Time     `json:"lastRunAt,omitzero"`
	LastJobID     *uuid.UUID    `json:"lastJobId,omitempty"`
	LastJobStatus domain.Status `json:"lastJobStatus,omitempty"`
	CreatedAt     time.Time     `json:"createdAt"`
	UpdatedAt     time.Time     `json:"updatedAt"`
}

// ClaimRequest is the body of POST /workers/claim.
type ClaimRequest struct {
	// Types are the external job types to claim; 1 to 100, required.
	Types []domain.JobType `json:"types"`
	// Queues, when given, restricts the claim to them.
	Queues []string `json:"queues,omitempty"`
	// Max is how many jobs to claim at most, 1 to 100; 0 means 1.
	Max int `json:"max,omitempty"`
	// Wait is how long the server waits for a job when none is ready, 0 to
	// 60 s.
	Wait time.Duration `json:"-"`
	// Worker names the worker in the server's log.
	Worker string `json:"worker,omitempty"`
	// Lease is how long the worker owns each job without a heartbeat,
	// 5 s to 10 min; 0 means 30 s.
	Lease time.Duration `json:"-"`
}

// MarshalJSON writes the durations as Go durations.
func (r ClaimRequest) MarshalJSON() ([]byte, error) {
	type plain ClaimRequest
	return json.Marshal(struct {
		plain
		Wait  string `json:"wait,omitempty"`
		Lease string `json:"lease,omitempty"`
	}{plain(r), durationText(r.Wait), durationText(r.Lease)})
}

func durationText(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	return d.String()
}

// ClaimedJob is a job a claim handed over: running, its attempt counted,
// and held by whoever has LeaseToken until LeaseExpiresAt.
type ClaimedJob struct {
	Job
	// Attempt is this attempt's number, from 1.
	Attempt        int       `json:"attempt"`
	LeaseToken     string    `json:"leaseToken"`
	LeaseExpiresAt time.Time `json:"leaseExpiresAt"`
}

// LeaseState is the answer to a heartbeat.
type LeaseState struct {
	LeaseExpiresAt time.Time `json:"leaseExpiresAt"`
	// CancelRequested says a user canceled the job: stop and report.
	CancelRequested bool `json:"cancelRequested"`
}

// ProgressReport is progress to send with a heartbeat.
type ProgressReport struct {
	Percent float64 `json:"percent"`
	Message string  `json:"message,omitempty"`
}

// Failure is a failed attempt's report.
type Failure struct {
	// Error says what went wrong; required.
	Error string `json:"error"`
	// Permanent fails the job at once.
	Permanent bool `json:"permanent,omitempty"`
	// RetryIn, when positive, is the wait before the next attempt instead
	// of the backoff.
	RetryIn time.Duration `json:"-"`
}

// MarshalJSON writes RetryIn as a Go duration.
func (f Failure) MarshalJSON() ([]byte, error) {
	type plain Failure
	return json.Marshal(struct {
		plain
		RetryIn string `json:"retryIn,omitempty"`
	}{plain(f), durationText(f.RetryIn)})
}

// Outcome is one attempt's end for ReportOutcomes: a completion with
// Result (nil for none) when Failure is nil, else a failure.
type Outcome struct {
	ID         uuid.UUID
	LeaseToken string
	Result     json.RawMessage
	Failure    *Failure
}

// MarshalJSON writes the outcome as POST /workers/outcomes takes it.
func (o Outcome) MarshalJSON() ([]byte, error) {
	w := struct {
		ID         uuid.UUID       `json:"id"`
		LeaseToken string          `json:"leaseToken"`
		Result     json.RawMessage `json:"result,omitempty"`
		Error      string          `json:"error,omitempty"`
		Permanent  bool            `json:"permanent,omitempty"`
		RetryIn    string          `json:"retryIn,omitempty"`
	}{ID: o.ID, LeaseToken: o.LeaseToken, Result: o.Result}
	if o.Failure != nil {
		if o.Failure.Error == "" {
			// Sent without its error, a failure would read as a completion.
			return nil, fmt.Errorf("outcome of job %s: a failure needs an error message", o.ID)
		}
		w.Result = nil
		w.Error, w.Permanent, w.RetryIn = o.Failure.Error, o.Failure.Permanent, durationText(o.Failure.RetryIn)
	}
	return json.Marshal(w)
}

// OutcomeResult is what became of one outcome: the job's status after it,
// or the problem that kept it from being applied (a lost lease, say).
type OutcomeResult struct {
	ID      uuid.UUID     `json:"id"`
	Status  domain.Status `json:"status,omitempty"`
	Problem *Problem      `json:"problem,omitempty"`
}

// Err returns the outcome's problem as an error, or nil if it was applied.
func (r OutcomeResult) Err() error {
	if r.Problem == nil {
		return nil
	}
	r.Problem.fromServer = true
	return r.Problem
}
