package http

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/troupe-go/troupe/actors"
	"github.com/troupe-go/troupe/domain"
)

// The wire contract lives here, apart from the domain, so that either can
// change without the other. openapi.yaml describes the same shapes, and a
// test checks real responses against it.

// Bounds of the API's inputs. The binding tags below repeat the numbers,
// because struct tags cannot name constants; a test keeps them in step.
const (
	// MaxAttemptsLimit bounds SubmitRequest.MaxAttempts: more attempts than
	// this is a mistake, not a retry policy.
	MaxAttemptsLimit = 100
	// ListLimitDefault is the page size of GET /jobs without a limit.
	ListLimitDefault = 50
	// ListLimitMax bounds the page size of GET /jobs.
	ListLimitMax = 1000
)

// PayloadEncodingBase64 marks a job whose stored payload is not valid JSON
// (a program embedding Troupe may submit any bytes): its payload is then a
// base64 string of those bytes.
const PayloadEncodingBase64 = "base64"

// SubmitRequest is the body of POST /jobs.
type SubmitRequest struct {
	// Type selects the handler; it must be registered.
	Type string `json:"type" binding:"required,max=128"`
	// Payload is any JSON value, handed to the handler as its JSON text.
	// Absent means null.
	Payload json.RawMessage `json:"payload,omitempty"`
	// MaxAttempts caps the attempts, 1 to 100; absent or 0 means the
	// server's default.
	MaxAttempts int `json:"maxAttempts,omitempty" binding:"min=0,max=100"`
	// RunAt is an RFC 3339 time before which the job does not start; in
	// the past means now. Not with Delay.
	RunAt *string `json:"runAt,omitempty"`
	// Delay is a Go duration ("90s", "1h30m"): the job starts no sooner
	// than this long after submission. At most a year.
	Delay *string `json:"delay,omitempty"`
	// Priority orders jobs within a queue, 1 first, 9 last; absent means 5.
	Priority *int `json:"priority,omitempty"`
	// Queue is the queue the job waits in; absent means "default".
	Queue *string `json:"queue,omitempty"`
	// UniqueKey, 1 to 255 bytes, admits at most one unfinished job with
	// it: a duplicate submission answers the existing job.
	UniqueKey *string `json:"uniqueKey,omitempty"`
	// UniqueFor (a Go duration) keeps the key held this long after the job
	// finished. Only with UniqueKey.
	UniqueFor *string `json:"uniqueFor,omitempty"`
	// Timeout (a Go duration) ends each attempt's context after this long;
	// "0s" means none, absent the type's or the server's default.
	Timeout *string `json:"timeout,omitempty"`
	// Key, 1 to 255 bytes of UTF-8 without NUL, groups the job for its
	// queue's per-key flow settings (one customer, one tenant).
	Key *string `json:"key,omitempty"`

	// sched holds the fields above once checkSchedule has parsed them.
	sched actors.SubmitParams
}

// params turns the request into the service's input. An absent payload is
// stored as the JSON text null, so that a handler can always decode it.
func (r SubmitRequest) params() actors.SubmitParams {
	payload := r.Payload
	if len(payload) == 0 {
		payload = json.RawMessage("null")
	}
	p := r.sched
	p.Type, p.Payload, p.MaxAttempts = domain.JobType(r.Type), payload, r.MaxAttempts
	return p
}

// JobResponse is a job on the wire: the body of POST /jobs, GET and DELETE
// /jobs/{id}, and each element of a listing.
type JobResponse struct {
	// ID is the job's UUID.
	ID uuid.UUID `json:"id"`
	// Type names the handler.
	Type domain.JobType `json:"type"`
	// Payload is the JSON value submitted, as it was sent. If the stored
	// payload is not valid JSON, it is a base64 string of the bytes and
	// PayloadEncoding says so.
	Payload json.RawMessage `json:"payload"`
	// PayloadEncoding is "base64" when Payload is base64-encoded bytes, and
	// absent when Payload is the submitted JSON value itself.
	PayloadEncoding string `json:"payloadEncoding,omitempty"`
	// Status is where the job is in its life.
	Status domain.Status `json:"status"`
	// Attempts counts the attempts started so far.
	Attempts int `json:"attempts"`
	// MaxAttempts is how many attempts the job may use.
	MaxAttempts int `json:"maxAttempts"`
	// LastError is the error of the latest failed attempt, or empty.
	LastError string `json:"lastError"`
	// CreatedAt is when the job was submitted.
	CreatedAt Timestamp `json:"createdAt"`
	// UpdatedAt is when the job last changed.
	UpdatedAt Timestamp `json:"updatedAt"`
	// RunAt is when the job's next attempt may start (or, once it ran,
	// when its last one fell due): the submission time of a job due at
	// once, a later time for a scheduled job or a retry's backoff.
	RunAt Timestamp `json:"runAt,omitzero"`
	// Queue is the queue the job waits in.
	Queue string `json:"queue"`
	// Priority orders jobs within a queue, 1 first, 9 last.
	Priority int `json:"priority"`
	// Timeout is each attempt's timeout as a Go duration ("30m0s"); absent
	// when attempts have none.
	Timeout string `json:"timeout,omitempty"`
	// UniqueKey is the job's unique key; absent when it has none.
	UniqueKey string `json:"uniqueKey,omitempty"`
	// UniqueFor is how long the key stays held after the job finished, as
	// a Go duration; absent when zero.
	UniqueFor string `json:"uniqueFor,omitempty"`
	// Schedule names the schedule that submitted the job; absent for a
	// job submitted otherwise.
	Schedule string `json:"schedule,omitempty"`
	// Key groups the job for its queue's per-key flow settings; absent
	// when it has none.
	Key string `json:"key,omitempty"`
	// WaitingFor says why a pending job, due now, does not start: "queue
	// limit", "queue rate", "key limit", "key order" or "key rate" (its
	// queue's flow settings hold it back); absent otherwise.
	WaitingFor domain.WaitReason `json:"waitingFor,omitempty"`
	// StartedAt is when the latest attempt started; absent before the first.
	StartedAt Timestamp `json:"startedAt,omitzero"`
	// FinishedAt is when the job became terminal; absent until then.
	FinishedAt Timestamp `json:"finishedAt,omitzero"`
	// Result is the JSON value the job completed with; absent when none.
	Result json.RawMessage `json:"result,omitempty"`
	// Progress is what the running (or last) attempt last reported;
	// absent when none.
	Progress *ProgressResponse `json:"progress,omitempty"`
}

// ProgressResponse is a job's progress on the wire.
type ProgressResponse struct {
	// Percent is 0 to 100.
	Percent float64 `json:"percent"`
	// Message says what the attempt is doing; may be empty.
	Message string `json:"message"`
	// UpdatedAt is when the attempt reported it.
	UpdatedAt Timestamp `json:"updatedAt"`
}

// newJobResponse converts a job for the wire.
func newJobResponse(j *domain.Job) JobResponse {
	r := JobResponse{
		ID:          j.ID,
		Type:        j.Type,
		Status:      j.Status,
		Attempts:    j.Attempts,
		MaxAttempts: j.MaxAttempts,
		LastError:   j.LastError,
		CreatedAt:   Timestamp{j.CreatedAt},
		UpdatedAt:   Timestamp{j.UpdatedAt},
		RunAt:       Timestamp{j.RunAt},
		StartedAt:   Timestamp{j.StartedAt},
		FinishedAt:  Timestamp{j.FinishedAt},
		Queue:       j.Queue,
		Priority:    j.Priority,
		UniqueKey:   j.UniqueKey,
		Schedule:    j.Schedule,
		Key:         j.Key,
		WaitingFor:  j.WaitingFor,
	}
	if j.Timeout > 0 {
		r.Timeout = j.Timeout.String()
	}
	if j.UniqueFor > 0 {
		r.UniqueFor = j.UniqueFor.String()
	}
	// A stored result is JSON by construction; one that is not (a store
	// damaged by hand) is left out rather than breaking the whole answer.
	if len(j.Result) > 0 && json.Valid(j.Result) {
		r.Result = json.RawMessage(j.Result)
	}
	if p := j.Progress; p != nil {
		r.Progress = &ProgressResponse{Percent: p.Percent, Message: p.Message, UpdatedAt: Timestamp{p.UpdatedAt}}
	}
	switch {
	case len(j.Payload) == 0:
		r.Payload = json.RawMessage("null")
	case json.Valid(j.Payload):
		r.Payload = json.RawMessage(j.Payload)
	default:
		// Marshaling bytes cannot fail; it yields a base64 JSON string.
		r.Payload, _ = json.Marshal(j.Payload)
		r.PayloadEncoding = PayloadEncodingBase64
	}
	return r
}

// ListResponse is the body of GET /jobs.
type ListResponse struct {
	// Jobs is the page, oldest first; empty, never null, when none match.
	Jobs []JobResponse `json:"jobs"`
	// Total counts every matching job, ignoring limit and offset.
	Total int `json:"total"`
	// Limit is the page size that was applied.
	Limit int `json:"limit"`
	// Offset is how many matching jobs were skipped.
	Offset int `json:"offset"`
}

// newListResponse converts a page for the wire.
func newListResponse(p domain.Page, limit, offset int) ListResponse {
	jobs := make([]JobResponse, len(p.Jobs))
	for i, j := range p.Jobs {
		jobs[i] = newJobResponse(j)
	}
	return ListResponse{Jobs: jobs, Total: p.Total, Limit: limit, Offset: offset}
}

// listQuery is the query string of GET /jobs. Status may repeat
// (status=pending&status=running); empty parameters count as absent.
type listQuery struct {
	Status []string `form:"status" binding:"dive,oneof=scheduled pending running completed failed canceled"`
	Type   string   `form:"type" binding:"max=128"`
	Queue  string   `form:"queue"`
	// Schedule keeps the jobs of one schedule.
	Schedule string `form:"schedule"`
	// Key keeps the jobs with this key.
	Key    string `form:"key"`
	Limit  int    `form:"limit,default=50" binding:"min=1,max=1000"`
	Offset int    `form:"offset" binding:"min=0"`
}

// filter turns the validated query into the service's filter.
func (q listQuery) filter() domain.Filter {
	var statuses []domain.Status // nil: any status
	for _, s := range q.Status {
		statuses = append(statuses, domain.Status(s))
	}
	return domain.Filter{Statuses: statuses, Type: domain.JobType(q.Type), Queue: q.Queue, Schedule: q.Schedule, Key: q.Key, Limit: q.Limit, Offset: q.Offset}
}

// check reports what the binding tags cannot say: a queue or schedule
// name that no queue or schedule can have, or a key no job can have.
func (q listQuery) check() error {
	var fields []FieldError
	if q.Queue != "" && domain.ValidateQueueName(q.Queue) != nil {
		fields = append(fields, FieldError{Field: "queue", Message: queueNameRule})
	}
	if q.Schedule != "" && domain.ValidateScheduleName(q.Schedule) != nil {
		fields = append(fields, FieldError{Field: "schedule", Message: scheduleNameRule})
	}
	if q.Key != "" {
		if msg := keyError(q.Key); msg != "" {
			fields = append(fields, FieldError{Field: "key", Message: msg})
		}
	}
	if len(fields) > 0 {
		return validationFailed(fields...)
	}
	return nil
}

// The values of HealthResponse's status and of each part.
const (
	// HealthOK is the status of a server whose parts are all up.
	HealthOK = "ok"
	// HealthUnavailable is the status when any part is down.
	HealthUnavailable = "unavailable"
	// HealthUp is the state of a part that answers.
	HealthUp = "up"
	// HealthDown is the state of a part that does not, followed by
	// ": <reason>" when the caller may see the reason.
	HealthDown = "down"
)

// HealthResponse is the body of GET /health, 200 or 503.
type HealthResponse struct {
	// Status is "ok" or "unavailable".
	Status string `json:"status"`
	// Workers describes the worker pool.
	Workers WorkersResponse `json:"workers"`
	// QueueDepth counts jobs waiting in the ready queue.
	QueueDepth int `json:"queueDepth"`
	// Dispatcher is "up", or "down: <reason>".
	Dispatcher string `json:"dispatcher"`
	// Store is "up", or "down: <reason>".
	Store string `json:"store"`
}

// WorkersResponse describes the worker pool in HealthResponse.
type WorkersResponse struct {
	// Size is the number of workers.
	Size int `json:"size"`
	// Busy is the number of workers running a handler now.
	Busy int `json:"busy"`
}

// newHealthResponse converts the runtime's health. A system that is not
// running has no working dispatcher, whatever the dispatcher itself says.
// Reasons are left out when the caller may not see them.
func newHealthResponse(h actors.Health, withReasons bool) HealthResponse {
	dispatcher := h.Dispatcher
	if dispatcher == nil && !h.Running {
		dispatcher = domain.ErrNotRunning
	}
	status := HealthOK
	if !h.OK() {
		status = HealthUnavailable
	}
	return HealthResponse{
		Status:     status,
		Workers:    WorkersResponse{Size: h.Workers.Size, Busy: h.Workers.Busy},
		QueueDepth: h.QueueDepth,
		Dispatcher: partState(dispatcher, withReasons),
		Store:      partState(h.Store, withReasons),
	}
}

// partState is "up", or "down" with the part's public state when the
// caller may see it: never the error's own text, which may be a driver's.
func partState(err error, withReason bool) string {
	if err == nil {
		return HealthUp
	}
	if reason := publicState(err); withReason && reason != "" {
		return HealthDown + ": " + reason
	}
	return HealthDown
}

// timestampLayout is RFC 3339 with microseconds, the precision Troupe
// stores; a fixed width keeps the strings sortable.
const timestampLayout = "2006-01-02T15:04:05.000000Z07:00"

// Timestamp is a time on the wire: RFC 3339 in UTC with fractional seconds,
// such as "2025-03-01T09:30:00.123456Z". The zero Timestamp is "not yet",
// and fields tagged omitzero leave it out.
type Timestamp struct {
	time.Time
}

// MarshalJSON writes the time in UTC with microseconds.
func (t Timestamp) MarshalJSON() ([]byte, error) {
	return []byte(`"` + t.UTC().Format(timestampLayout) + `"`), nil
}

// UnmarshalJSON reads any RFC 3339 time, so that clients can decode
// responses with the same type.
func (t *Timestamp) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("timestamp: %w", err)
	}
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("timestamp: %w", err)
	}
	t.Time = v
	return nil
}
