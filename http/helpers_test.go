package http

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/actors"
	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/internal/syncbuf"
	"github.com/troupe-go/troupe/persistence/memstore"
)

// fakeService is a JobService whose methods call the function fields.
// Submit, SubmitBatch, Get, List and Cancel fail the test when called
// without a function; JobTypes, Stats and Health answer a healthy, idle
// system, and Subscribe a subscription that receives nothing.
type fakeService struct {
	t            testing.TB
	SubmitFunc   func(ctx context.Context, p actors.SubmitParams) (*domain.Job, error)
	GetFunc      func(ctx context.Context, id uuid.UUID) (*domain.Job, error)
	ListFunc     func(ctx context.Context, f domain.Filter) (domain.Page, error)
	CancelFunc   func(ctx context.Context, id uuid.UUID) (*domain.Job, error)
	JobTypesFunc func() []domain.JobType
	StatsFunc    func() actors.Stats
	HealthFunc   func(ctx context.Context) actors.Health

	SubmitBatchFunc func(ctx context.Context, ps []actors.SubmitParams) ([]actors.SubmitResult, error)
	// QueuesFunc answers Queues; without it there are none.
	QueuesFunc func(ctx context.Context) ([]actors.QueueInfo, error)
	// PauseFunc answers PauseQueue (pause true) and ResumeQueue.
	PauseFunc func(ctx context.Context, name string, pause bool) (actors.QueueInfo, error)
	// SetQueueSettingsFunc answers SetQueueSettings.
	SetQueueSettingsFunc func(ctx context.Context, name string, settings domain.QueueSettings) (actors.QueueInfo, error)
	// WaitingCountsFunc answers WaitingCounts; without it no job waits.
	WaitingCountsFunc func(ctx context.Context) ([]domain.WaitingCount, error)
	// ScheduleFunc answers Schedule.
	ScheduleFunc func(ctx context.Context, p actors.ScheduleParams) (actors.ScheduleInfo, bool, error)
	// SchedulesFunc answers Schedules; without it there are none.
	SchedulesFunc func(ctx context.Context) ([]actors.ScheduleInfo, error)
	// GetScheduleFunc answers GetSchedule.
	GetScheduleFunc func(ctx context.Context, name string) (actors.ScheduleInfo, error)
	// DeleteScheduleFunc answers DeleteSchedule.
	DeleteScheduleFunc func(ctx context.Context, name string) error
	// PauseScheduleFunc answers PauseSchedule (pause true) and ResumeSchedule.
	PauseScheduleFunc func(ctx context.Context, name string, pause bool) (actors.ScheduleInfo, error)
	// TriggerScheduleFunc answers TriggerSchedule.
	TriggerScheduleFunc func(ctx context.Context, name string) (*domain.Job, error)
	// RetentionValue answers Retention; zero fields read as kept for ever.
	RetentionValue actors.Retention
	// requests is the store's request log, for Idempotency-Key.
	requests *memstore.Store
	// BackupFunc answers Backup; without it the store cannot back up.
	BackupFunc func(ctx context.Context, w io.Writer) error
	// SubscribeFunc answers Subscribe; without it a subscription that
	// receives nothing.
	SubscribeFunc func(buffer int) Subscription
	// JobTypeInfoFunc answers JobTypeInfo; without it every type of
	// JobTypes runs by Go.
	JobTypeInfoFunc func() []actors.JobTypeInfo
	// The worker protocol; each fails the test when called without a
	// function.
	ClaimFunc     func(ctx context.Context, p actors.ClaimParams) ([]actors.ClaimedJob, error)
	HeartbeatFunc func(ctx context.Context, id uuid.UUID, token string, progress *domain.Progress) (actors.LeaseState, error)
	CompleteFunc  func(ctx context.Context, id uuid.UUID, token string, result json.RawMessage) (*domain.Job, error)
	FailFunc      func(ctx context.Context, id uuid.UUID, token string, p actors.FailParams) (*domain.Job, error)
	OutcomesFunc  func(ctx context.Context, outcomes []actors.Outcome) ([]actors.OutcomeResult, error)
}

func (f *fakeService) JobTypeInfo() []actors.JobTypeInfo {
	if f.JobTypeInfoFunc != nil {
		return f.JobTypeInfoFunc()
	}
	var infos []actors.JobTypeInfo
	for _, t := range f.JobTypes() {
		infos = append(infos, actors.JobTypeInfo{Type: t, RunBy: actors.RunByGo})
	}
	return infos
}

func (f *fakeService) ClaimJobs(ctx context.Context, p actors.ClaimParams) ([]actors.ClaimedJob, error) {
	require.NotNil(f.t, f.ClaimFunc, "unexpected call to ClaimJobs")
	return f.ClaimFunc(ctx, p)
}

func (f *fakeService) Heartbeat(ctx context.Context, id uuid.UUID, token string, progress *domain.Progress) (actors.LeaseState, error) {
	require.NotNil(f.t, f.HeartbeatFunc, "unexpected call to Heartbeat")
	return f.HeartbeatFunc(ctx, id, token, progress)
}

func (f *fakeService) CompleteJob(ctx context.Context, id uuid.UUID, token string, result json.RawMessage) (*domain.Job, error) {
	require.NotNil(f.t, f.CompleteFunc, "unexpected call to CompleteJob")
	return f.CompleteFunc(ctx, id, token, result)
}

func (f *fakeService) FailJob(ctx context.Context, id uuid.UUID, token string, p actors.FailParams) (*domain.Job, error) {
	require.NotNil(f.t, f.FailFunc, "unexpected call to FailJob")
	return f.FailFunc(ctx, id, token, p)
}

func (f *fakeService) ReportOutcomes(ctx context.Context, outcomes []actors.Outcome) ([]actors.OutcomeResult, error) {
	require.NotNil(f.t, f.OutcomesFunc, "unexpected call to ReportOutcomes")
	return f.OutcomesFunc(ctx, outcomes)
}

var _ JobService = (*fakeService)(nil)

// Backup makes the fake the server's Backuper too.
func (f *fakeService) Backup(ctx context.Context, w io.Writer) error {
	if f.BackupFunc == nil {
		return fmt.Errorf("%w: the fake store has no backup", ErrBackupUnsupported)
	}
	return f.BackupFunc(ctx, w)
}

func (f *fakeService) Submit(ctx context.Context, p actors.SubmitParams) (*domain.Job, error) {
	require.NotNil(f.t, f.SubmitFunc, "unexpected call to Submit")
	return f.SubmitFunc(ctx, p)
}

func (f *fakeService) SubmitBatch(ctx context.Context, ps []actors.SubmitParams) ([]actors.SubmitResult, error) {
	require.NotNil(f.t, f.SubmitBatchFunc, "unexpected call to SubmitBatch")
	return f.SubmitBatchFunc(ctx, ps)
}

func (f *fakeService) Get(ctx context.Context, id uuid.UUID) (*domain.Job, error) {
	require.NotNil(f.t, f.GetFunc, "unexpected call to Get")
	return f.GetFunc(ctx, id)
}

func (f *fakeService) List(ctx context.Context, flt domain.Filter) (domain.Page, error) {
	require.NotNil(f.t, f.ListFunc, "unexpected call to List")
	return f.ListFunc(ctx, flt)
}

func (f *fakeService) Cancel(ctx context.Context, id uuid.UUID) (*domain.Job, error) {
	require.NotNil(f.t, f.CancelFunc, "unexpected call to Cancel")
	return f.CancelFunc(ctx, id)
}

func (f *fakeService) Queues(ctx context.Context) ([]actors.QueueInfo, error) {
	if f.QueuesFunc == nil {
		return nil, nil
	}
	return f.QueuesFunc(ctx)
}

func (f *fakeService) PauseQueue(ctx context.Context, name string) (actors.QueueInfo, error) {
	require.NotNil(f.t, f.PauseFunc, "unexpected call to PauseQueue")
	return f.PauseFunc(ctx, name, true)
}

func (f *fakeService) ResumeQueue(ctx context.Context, name string) (actors.QueueInfo, error) {
	require.NotNil(f.t, f.PauseFunc, "unexpected call to ResumeQueue")
	return f.PauseFunc(ctx, name, false)
}

func (f *fakeService) SetQueueSettings(ctx context.Context, name string, settings domain.QueueSettings) (actors.QueueInfo, error) {
	require.NotNil(f.t, f.SetQueueSettingsFunc, "unexpected call to SetQueueSettings")
	return f.SetQueueSettingsFunc(ctx, name, settings)
}

func (f *fakeService) WaitingCounts(ctx context.Context) ([]domain.WaitingCount, error) {
	if f.WaitingCountsFunc == nil {
		return nil, nil
	}
	return f.WaitingCountsFunc(ctx)
}

func (f *fakeService) Schedule(ctx context.Context, p actors.ScheduleParams) (actors.ScheduleInfo, bool, error) {
	require.NotNil(f.t, f.ScheduleFunc, "unexpected call to Schedule")
	return f.ScheduleFunc(ctx, p)
}

func (f *fakeService) Schedules(ctx context.Context) ([]actors.ScheduleInfo, error) {
	if f.SchedulesFunc == nil {
		return nil, nil
	}
	return f.SchedulesFunc(ctx)
}

func (f *fakeService) GetSchedule(ctx context.Context, name string) (actors.ScheduleInfo, error) {
	require.NotNil(f.t, f.GetScheduleFunc, "unexpected call to GetSchedule")
	return f.GetScheduleFunc(ctx, name)
}

func (f *fakeService) DeleteSchedule(ctx context.Context, name string) error {
	require.NotNil(f.t, f.DeleteScheduleFunc, "unexpected call to DeleteSchedule")
	return f.DeleteScheduleFunc(ctx, name)
}

func (f *fakeService) PauseSchedule(ctx context.Context, name string) (actors.ScheduleInfo, error) {
	require.NotNil(f.t, f.PauseScheduleFunc, "unexpected call to PauseSchedule")
	return f.PauseScheduleFunc(ctx, name, true)
}

func (f *fakeService) ResumeSchedule(ctx context.Context, name string) (actors.ScheduleInfo, error) {
	require.NotNil(f.t, f.PauseScheduleFunc, "unexpected call to ResumeSchedule")
	return f.PauseScheduleFunc(ctx, name, false)
}

func (f *fakeService) TriggerSchedule(ctx context.Context, name string) (*domain.Job, error) {
	require.NotNil(f.t, f.TriggerScheduleFunc, "unexpected call to TriggerSchedule")
	return f.TriggerScheduleFunc(ctx, name)
}

func (f *fakeService) Retention() actors.Retention { return f.RetentionValue }

func (f *fakeService) JobTypes() []domain.JobType {
	if f.JobTypesFunc == nil {
		return []domain.JobType{"noop", "send_email"}
	}
	return f.JobTypesFunc()
}

func (f *fakeService) Stats() actors.Stats {
	if f.StatsFunc == nil {
		return actors.Stats{Workers: actors.WorkerStats{Size: 4}, Running: true}
	}
	return f.StatsFunc()
}

func (f *fakeService) Health(ctx context.Context) actors.Health {
	if f.HealthFunc == nil {
		return actors.Health{Stats: f.Stats()}
	}
	return f.HealthFunc(ctx)
}

// Subscribe returns a subscription that receives nothing. Tests of events
// that must arrive use the real runtime (events_test.go).
func (f *fakeService) Subscribe(buffer int) Subscription {
	if f.SubscribeFunc != nil {
		return f.SubscribeFunc(buffer)
	}
	return newQuietSubscription()
}

// quietSubscription receives no events; Close closes its channel.
type quietSubscription struct {
	ch   chan actors.Event
	once sync.Once
}

func newQuietSubscription() *quietSubscription {
	return &quietSubscription{ch: make(chan actors.Event)}
}

func (s *quietSubscription) Events() <-chan actors.Event { return s.ch }
func (s *quietSubscription) Dropped() int64              { return 0 }
func (s *quietSubscription) Close()                      { s.once.Do(func() { close(s.ch) }) }

// testBundle is one server under test and what it talks to.
type testBundle struct {
	svc      *fakeService
	server   *Server
	logs     *syncbuf.Buffer
	registry *prometheus.Registry
}

// setup builds a server over a fresh fake with cfg (port 0 unless cfg
// says otherwise), logging at debug level into the bundle.
// holdOnly makes the fake service hold job alone: Get finds it, List
// lists it, and any other ID is not found.
func (f *fakeService) holdOnly(job *domain.Job) {
	f.GetFunc = func(_ context.Context, id uuid.UUID) (*domain.Job, error) {
		if id == job.ID {
			return job, nil
		}
		return nil, domain.ErrNotFound
	}
	f.ListFunc = func(context.Context, domain.Filter) (domain.Page, error) {
		return domain.Page{Jobs: []*domain.Job{job}, Total: 1}, nil
	}
}

func setup(t testing.TB, cfg Config) *testBundle {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	b := &testBundle{svc: &fakeService{t: t, requests: memstore.New()}, logs: &syncbuf.Buffer{}, registry: NewRegistry()}
	logger := slog.New(slog.NewJSONHandler(b.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := NewServer(cfg, b.svc, WithLogger(logger), WithRegistry(b.registry), WithBackup(b.svc), WithRequestLog(b.svc.requests))
	require.NoError(t, err)
	b.server = s
	return b
}

// request describes one call to the handler.
type request struct {
	method string
	target string
	body   string
	header map[string]string
}

// do serves r through the handler and returns the recorded response.
func (b *testBundle) do(t *testing.T, r request) *httptest.ResponseRecorder {
	t.Helper()
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	req := httptest.NewRequest(r.method, r.target, body)
	if r.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	b.server.Handler().ServeHTTP(rec, req)
	return rec
}

// requireJSON checks the status and JSON content type, and decodes the body.
func requireJSON[T any](t *testing.T, rec *httptest.ResponseRecorder, status int) T {
	t.Helper()
	require.Equal(t, status, rec.Code, "body: %s", rec.Body.String())
	require.Equal(t, "application/json; charset=utf-8", rec.Header().Get("Content-Type"))
	var v T
	dec := json.NewDecoder(bytes.NewReader(rec.Body.Bytes()))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&v))
	return v
}

// requireProblem checks an error response: status, problem content type,
// problem type, and a body with exactly the RFC 9457 members.
func requireProblem(t *testing.T, rec *httptest.ResponseRecorder, status int, typ string) Problem {
	t.Helper()
	require.Equal(t, status, rec.Code, "body: %s", rec.Body.String())
	require.Equal(t, ProblemContentType, rec.Header().Get("Content-Type"))
	require.NotEmpty(t, rec.Header().Get(HeaderRequestID))
	var p Problem
	dec := json.NewDecoder(bytes.NewReader(rec.Body.Bytes()))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&p), "body: %s", rec.Body.String())
	require.Equal(t, typ, p.Type)
	require.Equal(t, status, p.Status)
	require.NotEmpty(t, p.Title)
	require.NotEmpty(t, p.Detail)
	return p
}

// testTime is a fixed instant with microseconds, like stored times.
var testTime = time.Date(2025, 3, 1, 9, 30, 0, 123456000, time.UTC)

// newTestJob returns a job as the runtime would store it.
func newTestJob(t testing.TB, status domain.Status) *domain.Job {
	t.Helper()
	j, err := domain.NewJob("send_email", []byte(`{"to":"ada@example.com"}`), 3, testTime)
	require.NoError(t, err)
	j.Status = status
	switch status {
	case domain.StatusRunning:
		j.Attempts = 1
		j.StartedAt = testTime.Add(time.Second)
	case domain.StatusCompleted, domain.StatusFailed, domain.StatusCanceled:
		j.Attempts = 1
		j.StartedAt = testTime.Add(time.Second)
		j.FinishedAt = testTime.Add(2 * time.Second)
	}
	if status == domain.StatusFailed {
		j.LastError = "smtp: connection refused"
	}
	j.UpdatedAt = domain.Timestamp(testTime.Add(2 * time.Second))
	return j
}

// jobsPath is the path of a job.
func jobsPath(id uuid.UUID) string { return "/jobs/" + id.String() }

// requireInvalidFields checks that rec is a 400 validation problem naming
// exactly fields, in order, each with a message.
func requireInvalidFields(t *testing.T, rec *httptest.ResponseRecorder, fields []string) {
	t.Helper()
	p := requireProblem(t, rec, 400, ProblemTypeValidation)
	var got []string
	for _, f := range p.Errors {
		got = append(got, f.Field)
		require.NotEmpty(t, f.Message, "field %s", f.Field)
	}
	require.Equal(t, fields, got, p.Detail)
}
