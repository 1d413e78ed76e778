package http

import (
	"context"
	"encoding/json"

	"github.com/google/uuid"

	"github.com/troupe-go/troupe/actors"
	"github.com/troupe-go/troupe/domain"
)

// JobService is what the HTTP API needs from the runtime. Runtime adapts
// an actors.System to it; tests use a fake. Errors wrap the domain sentinels and are
// told apart with errors.Is:
//
//   - domain.ErrNotFound: no job has the ID.
//   - domain.ErrInvalid: the input breaks a rule (maxAttempts, type length).
//   - domain.ErrPayloadTooLarge (an ErrInvalid): a payload is over the
//     runtime's limit; answered 413.
//   - domain.ErrUnknownJobType: no handler is registered for the type.
//   - domain.ErrNotCancelable: the job already completed or failed.
//   - domain.ErrQueueFull: the ready queue is at its bound; retry later.
//   - domain.ErrNotRunning: the system is not started, or is stopping.
//   - domain.ErrConflict: a schedule of the configuration file changed
//     through the API.
//   - domain.ErrLeaseLost: a lease token does not hold the job's running
//     attempt (the worker protocol); answered 409.
//   - domain.ErrResultTooLarge: a result is over the runtime's limit;
//     answered 413.
type JobService interface {
	// Submit stores a new pending job and queues it.
	Submit(ctx context.Context, p actors.SubmitParams) (*domain.Job, error)
	// SubmitBatch stores several new pending jobs in one write, all or
	// none, and queues them in order; the jobs come back in that order. An
	// invalid job or an unknown type fails the whole batch with an error
	// naming its index ("job 3: ...") when the batch holds more than one.
	SubmitBatch(ctx context.Context, ps []actors.SubmitParams) ([]actors.SubmitResult, error)
	// Get returns the job with the ID.
	Get(ctx context.Context, id uuid.UUID) (*domain.Job, error)
	// List returns one page of the jobs matching f, oldest first, and the
	// number matching in all.
	List(ctx context.Context, f domain.Filter) (domain.Page, error)
	// Cancel cancels a pending job at once, or cancels the context of a
	// running one, whose returned snapshot may still say running. Canceling
	// a canceled job returns it unchanged.
	Cancel(ctx context.Context, id uuid.UUID) (*domain.Job, error)
	// Queues lists the queues with unfinished jobs, paused, with flow
	// settings or capped on this node, by name.
	Queues(ctx context.Context) ([]actors.QueueInfo, error)
	// PauseQueue stops the queue's jobs from starting, on every node and
	// for good, and returns the queue; a bad name wraps domain.ErrInvalid.
	PauseQueue(ctx context.Context, name string) (actors.QueueInfo, error)
	// ResumeQueue lets a paused queue's jobs start again.
	ResumeQueue(ctx context.Context, name string) (actors.QueueInfo, error)
	// SetQueueSettings replaces a queue's flow settings, on every node and
	// for good, and returns the queue; a bad name wraps domain.ErrInvalid,
	// and bad settings are one *actors.FieldError per refused field,
	// joined (errors.Join), each wrapping domain.ErrInvalid.
	SetQueueSettings(ctx context.Context, name string, settings domain.QueueSettings) (actors.QueueInfo, error)
	// WaitingCounts counts the pending, due jobs that flow settings hold
	// back, by queue and reason.
	WaitingCounts(ctx context.Context) ([]domain.WaitingCount, error)
	// Schedule creates or replaces a schedule (source "api") and reports
	// whether it created it; a rule broken wraps domain.ErrInvalid and
	// names the field ("cron: ..."), a config schedule domain.ErrConflict.
	Schedule(ctx context.Context, p actors.ScheduleParams) (actors.ScheduleInfo, bool, error)
	// Schedules lists every schedule, by name.
	Schedules(ctx context.Context) ([]actors.ScheduleInfo, error)
	// GetSchedule returns the named schedule.
	GetSchedule(ctx context.Context, name string) (actors.ScheduleInfo, error)
	// DeleteSchedule removes a schedule; the jobs it submitted stay.
	DeleteSchedule(ctx context.Context, name string) error
	// PauseSchedule stops a schedule's slots, on every node.
	PauseSchedule(ctx context.Context, name string) (actors.ScheduleInfo, error)
	// ResumeSchedule lets a paused schedule submit again.
	ResumeSchedule(ctx context.Context, name string) (actors.ScheduleInfo, error)
	// TriggerSchedule submits the schedule's job now, outside its slots.
	TriggerSchedule(ctx context.Context, name string) (*domain.Job, error)
	// Retention says how long finished jobs are kept before the pruner
	// deletes them.
	Retention() actors.Retention
	// JobTypes lists the registered job types, sorted.
	JobTypes() []domain.JobType
	// JobTypeInfo lists the job types with what runs each, sorted.
	JobTypeInfo() []actors.JobTypeInfo

	// The worker protocol, for external workers (actors/external.go).

	// ClaimJobs leases up to p.Max ready jobs of external types, waiting
	// up to p.Wait (or until ctx ends) when none is ready; a field out of
	// bounds is an *actors.FieldError.
	ClaimJobs(ctx context.Context, p actors.ClaimParams) ([]actors.ClaimedJob, error)
	// Heartbeat extends a lease, records progress when not nil, and says
	// whether the job was canceled.
	Heartbeat(ctx context.Context, id uuid.UUID, token string, progress *domain.Progress) (actors.LeaseState, error)
	// CompleteJob ends the leased attempt as a success with result (nil
	// for none).
	CompleteJob(ctx context.Context, id uuid.UUID, token string, result json.RawMessage) (*domain.Job, error)
	// FailJob ends the leased attempt as a failure.
	FailJob(ctx context.Context, id uuid.UUID, token string, p actors.FailParams) (*domain.Job, error)
	// ReportOutcomes applies several outcomes, each on its own, and says
	// what became of each, in order.
	ReportOutcomes(ctx context.Context, outcomes []actors.Outcome) ([]actors.OutcomeResult, error)
	// Stats is a cheap snapshot of the runtime, read at every metrics scrape.
	Stats() actors.Stats
	// Health checks each part of the runtime.
	Health(ctx context.Context) actors.Health
	// Subscribe returns a subscription to every job change, published
	// once stored, with room for buffer events in flight; a full one drops
	// events and counts them. The event streams close it when they end.
	Subscribe(buffer int) Subscription
}

// Subscription is what the event streams need of a subscription to job
// changes.
type Subscription interface {
	// Events delivers the changes; it is closed by Close.
	Events() <-chan actors.Event
	// Dropped counts the events missed because the buffer was full.
	Dropped() int64
	// Close ends the subscription. It is safe to call twice.
	Close()
}

// Runtime adapts the runtime to JobService. Its methods are the System's,
// with the subscription behind the Subscription interface.
func Runtime(sys *actors.System) JobService {
	return runtimeService{sys}
}

type runtimeService struct {
	*actors.System
}

func (r runtimeService) Retention() actors.Retention {
	return r.System.Config().Retention
}

func (r runtimeService) Subscribe(buffer int) Subscription {
	return runtimeSubscription{r.System.Subscribe(buffer)}
}

// runtimeSubscription gives the runtime's subscription, whose channel is a
// field, the Events method.
type runtimeSubscription struct {
	*actors.Subscription
}

func (s runtimeSubscription) Events() <-chan actors.Event {
	return s.C
}
