package http

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	nethttp "net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/troupe-go/troupe/actors"
	"github.com/troupe-go/troupe/domain"
)

// triggerRoute is the route of POST /schedules/{name}/trigger, whose
// answer, a new job, has a Location.
const triggerRoute = "/schedules/:name/trigger"

// scheduleNameRule is the message of a schedule name that breaks the rule.
const scheduleNameRule = "must match ^[a-z0-9][a-z0-9_.-]{0,127}$"

// ScheduleRequest is the body of PUT /schedules/{name}: the whole
// definition, which replaces any before it.
type ScheduleRequest struct {
	// Name, if given, must be the path's.
	Name *string `json:"name,omitempty"`
	// Cron is a 5-field expression, optionally with a leading seconds
	// field, or a descriptor (@hourly, @every 30s).
	Cron *string `json:"cron,omitempty"`
	// Timezone is the IANA zone the expression is read in; absent means UTC.
	Timezone *string `json:"timezone,omitempty"`
	// CatchUp is "skip" (the default) or "one".
	CatchUp *string `json:"catchUp,omitempty"`
	// Paused creates or keeps the schedule paused.
	Paused bool `json:"paused,omitempty"`
	// Job is the job submitted at each slot, a ScheduledJobRequest; kept
	// raw so that its members are checked as strictly as the top level's.
	Job json.RawMessage `json:"job,omitempty"`
}

// ScheduledJobRequest is the job of a ScheduleRequest: the fields of a
// submission that make sense at every slot.
type ScheduledJobRequest struct {
	// Type selects the handler; it must be registered.
	Type string `json:"type"`
	// Payload is any JSON value, stored as its text; absent means null.
	Payload json.RawMessage `json:"payload,omitempty"`
	// Queue absent means "default".
	Queue *string `json:"queue,omitempty"`
	// Priority, 1 first to 9 last; absent means 5.
	Priority *int `json:"priority,omitempty"`
	// MaxAttempts, 1 to 100; absent or 0 means the server's default.
	MaxAttempts int `json:"maxAttempts,omitempty"`
	// Timeout is a Go duration; "0s" means none, absent the default.
	Timeout *string `json:"timeout,omitempty"`
}

// ScheduledJobResponse is the job of a ScheduleResponse.
type ScheduledJobResponse struct {
	Type domain.JobType `json:"type"`
	// Payload is the JSON value given; a base64 string when the stored
	// bytes are not JSON (PayloadEncoding "base64"), as for jobs.
	Payload         json.RawMessage `json:"payload"`
	PayloadEncoding string          `json:"payloadEncoding,omitempty"`
	Queue           string          `json:"queue"`
	Priority        int             `json:"priority"`
	// MaxAttempts is absent when the server's default applies.
	MaxAttempts int `json:"maxAttempts,omitempty"`
	// Timeout is a Go duration, "0s" for none; absent when the type's or
	// the server's default applies.
	Timeout string `json:"timeout,omitempty"`
}

// ScheduleResponse is a schedule on the wire: the body of PUT, GET, pause
// and resume of /schedules/{name}, and each element of GET /schedules.
type ScheduleResponse struct {
	Name string `json:"name"`
	Cron string `json:"cron"`
	// Timezone is always set: "UTC" when none was given.
	Timezone string `json:"timezone"`
	// Description is the expression in words ("every 5 minutes").
	Description string                `json:"description"`
	CatchUp     domain.CatchUp        `json:"catchUp"`
	Paused      bool                  `json:"paused"`
	Source      domain.ScheduleSource `json:"source"`
	Job         ScheduledJobResponse  `json:"job"`
	// NextRunAt is the next slot; absent while paused.
	NextRunAt Timestamp `json:"nextRunAt,omitzero"`
	// LastRunAt, LastJobID and LastJobStatus are the latest job submitted,
	// by a slot or a trigger; absent before the first. The status is
	// absent too once that job was pruned.
	LastRunAt     Timestamp     `json:"lastRunAt,omitzero"`
	LastJobID     *uuid.UUID    `json:"lastJobId,omitempty"`
	LastJobStatus domain.Status `json:"lastJobStatus,omitempty"`
	CreatedAt     Timestamp     `json:"createdAt"`
	UpdatedAt     Timestamp     `json:"updatedAt"`
}

// SchedulesResponse is the body of GET /schedules.
type SchedulesResponse struct {
	// Schedules lists every schedule by name; empty, never null.
	Schedules []ScheduleResponse `json:"schedules"`
}

// newScheduleResponse converts a schedule for the wire.
func newScheduleResponse(info actors.ScheduleInfo) ScheduleResponse {
	s := info.Schedule
	r := ScheduleResponse{
		Name:          s.Name,
		Cron:          s.Cron,
		Timezone:      cmp.Or(s.Timezone, "UTC"),
		Description:   info.Description,
		CatchUp:       cmp.Or(s.CatchUp, domain.CatchUpSkip),
		Paused:        s.Paused,
		Source:        cmp.Or(s.Source, domain.SourceAPI),
		Job:           newScheduledJobResponse(s.Job),
		NextRunAt:     Timestamp{info.NextRunAt},
		LastRunAt:     Timestamp{s.LastRunAt},
		LastJobStatus: info.LastJobStatus,
		CreatedAt:     Timestamp{s.CreatedAt},
		UpdatedAt:     Timestamp{s.UpdatedAt},
	}
	if s.Paused {
		r.NextRunAt = Timestamp{}
	}
	if s.LastJobID != uuid.Nil {
		id := s.LastJobID
		r.LastJobID = &id
	}
	return r
}

func newScheduledJobResponse(j domain.ScheduledJob) ScheduledJobResponse {
	r := ScheduledJobResponse{
		Type:        j.Type,
		Queue:       cmp.Or(j.Queue, domain.DefaultQueue),
		Priority:    cmp.Or(j.Priority, domain.DefaultPriority),
		MaxAttempts: j.MaxAttempts,
	}
	switch {
	case j.Timeout > 0:
		r.Timeout = j.Timeout.String()
	case j.Timeout == actors.NoTimeout:
		r.Timeout = "0s"
	}
	switch {
	case len(j.Payload) == 0:
		r.Payload = json.RawMessage("null")
	case json.Valid(j.Payload):
		r.Payload = json.RawMessage(j.Payload)
	default:
		r.Payload, _ = json.Marshal(j.Payload)
		r.PayloadEncoding = PayloadEncodingBase64
	}
	return r
}

func newScheduleResponses(infos []actors.ScheduleInfo) []ScheduleResponse {
	out := make([]ScheduleResponse, len(infos))
	for i, info := range infos {
		out[i] = newScheduleResponse(info)
	}
	return out
}

// registerScheduleRoutes adds the /schedules resource to r.
func (s *Server) registerScheduleRoutes(r gin.IRoutes) {
	r.GET("/schedules", s.handleSchedules)
	r.PUT("/schedules/:name", s.acceptJSONBody, s.handleSchedulePut)
	r.GET("/schedules/:name", s.handleScheduleView)
	r.DELETE("/schedules/:name", s.handleScheduleDelete)
	r.POST("/schedules/:name/pause", s.handleSchedulePause(true))
	r.POST("/schedules/:name/resume", s.handleSchedulePause(false))
	// A trigger creates a job: like a submission, it takes an
	// Idempotency-Key, so that a retried trigger makes one job.
	r.POST(triggerRoute, s.idempotent, s.handleScheduleTrigger)
}

// scheduleName reads the schedule's name from the path; a name no
// schedule can have is the client's mistake, found before any call.
func scheduleName(c *gin.Context) (string, error) {
	name := c.Param("name")
	if domain.ValidateScheduleName(name) != nil {
		return "", validationFailed(FieldError{Field: "name", Message: scheduleNameRule})
	}
	return name, nil
}

// handleSchedules handles GET /schedules.
func (s *Server) handleSchedules(c *gin.Context) {
	infos, err := s.svc.Schedules(c.Request.Context())
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	writeJSON(c, nethttp.StatusOK, SchedulesResponse{Schedules: newScheduleResponses(infos)})
}

// handleSchedulePut handles PUT /schedules/{name}: 201 with the new
// schedule and its Location, or 200 with the replaced one.
func (s *Server) handleSchedulePut(c *gin.Context) {
	name, err := scheduleName(c)
	if err != nil {
		s.writeError(c, err)
		return
	}
	data, err := readBody(c.Request.Body)
	if err != nil {
		s.writeError(c, decodeError(err))
		return
	}
	p, err := s.decodeSchedule(name, data)
	if err != nil {
		s.writeError(c, err)
		return
	}
	info, created, err := s.svc.Schedule(c.Request.Context(), p)
	if err != nil {
		s.writeError(c, s.scheduleError(p, err))
		return
	}
	status := nethttp.StatusOK
	if created {
		status = nethttp.StatusCreated
		c.Header("Location", "/schedules/"+name)
	}
	writeJSON(c, status, newScheduleResponse(info))
}

// decodeSchedule decodes and checks the body of PUT /schedules/{name},
// reporting every field at fault at once, as a job's submission does. The
// cron expression is only checked for presence here: the runtime reads it
// (with the library that fires it), and scheduleError names the field of
// what it refuses.
func (s *Server) decodeSchedule(name string, data []byte) (actors.ScheduleParams, error) {
	var req ScheduleRequest
	if err := decodeStrict(data, &req); err != nil {
		return actors.ScheduleParams{}, err
	}
	p := actors.ScheduleParams{Name: name, Paused: req.Paused}
	var fields []FieldError
	bad := func(field, msg string, args ...any) {
		fields = append(fields, FieldError{Field: field, Message: fmt.Sprintf(msg, args...)})
	}
	if req.Name != nil && *req.Name != name {
		bad("name", "must be the name in the path, %q", name)
	}
	switch {
	case req.Cron == nil || strings.TrimSpace(*req.Cron) == "":
		bad("cron", `is required: a cron expression such as "*/5 * * * *" or "@every 30s"`)
	default:
		p.Cron = *req.Cron
	}
	if req.Timezone != nil {
		if msg := timezoneError(*req.Timezone); msg != "" {
			bad("timezone", "%s", msg)
		} else {
			p.Timezone = *req.Timezone
		}
	}
	if req.CatchUp != nil {
		switch c := domain.CatchUp(*req.CatchUp); c {
		case domain.CatchUpSkip, domain.CatchUpOne:
			p.CatchUp = c
		default:
			bad("catchUp", `must be "skip" or "one"`)
		}
	}
	job, jobFields, tooLarge := s.decodeScheduledJob(req.Job)
	p.Job = job
	fields = append(fields, jobFields...)
	if len(fields) == 0 {
		return p, nil
	}
	err := newValidationError(fields...)
	if tooLarge {
		err.kind = kindPayloadTooLarge
	}
	return actors.ScheduleParams{}, err
}

// timezoneError says what is wrong with an IANA zone name, or "".
// "Local" is refused: it would be a different zone on each node.
func timezoneError(tz string) string {
	if tz == "" || tz == "Local" {
		return `must be an IANA time zone name such as "Europe/Paris" or "UTC"`
	}
	if _, err := time.LoadLocation(tz); err != nil {
		return fmt.Sprintf("names no known IANA time zone (%q)", tz)
	}
	return ""
}

// decodeScheduledJob decodes and checks the job of a schedule. Its field
// errors are named "job.<member>"; tooLarge tells a payload over the
// limit (413) from other errors (400).
func (s *Server) decodeScheduledJob(raw json.RawMessage) (job domain.ScheduledJob, fields []FieldError, tooLarge bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return job, []FieldError{{Field: "job", Message: "is required: the job to submit at each slot"}}, false
	}
	var req ScheduledJobRequest
	if err := decodeStrict(raw, &req); err != nil {
		var reqErr *requestError
		if errors.As(err, &reqErr) && len(reqErr.fields) > 0 {
			for _, f := range reqErr.fields {
				fields = append(fields, FieldError{Field: "job." + f.Field, Message: f.Message})
			}
			return job, fields, false
		}
		return job, []FieldError{{Field: "job", Message: "must be a JSON object"}}, false
	}
	bad := func(field, msg string, args ...any) {
		fields = append(fields, FieldError{Field: "job." + field, Message: fmt.Sprintf(msg, args...)})
	}
	switch {
	case req.Type == "":
		bad("type", "is required")
	case len(req.Type) > domain.MaxJobTypeLength:
		bad("type", "must be at most %d characters", domain.MaxJobTypeLength)
	default:
		job.Type = domain.JobType(req.Type)
	}
	job.Payload = req.Payload
	if len(job.Payload) == 0 {
		job.Payload = json.RawMessage("null")
	}
	if fe, large := payloadError("job.payload", job.Payload, s.cfg.MaxPayloadBytes); fe != nil {
		fields, tooLarge = append(fields, *fe), large
	}
	job.Queue = checkQueue(req.Queue, bad)
	job.Priority = checkPriority(req.Priority, bad)
	if req.MaxAttempts < 0 || req.MaxAttempts > MaxAttemptsLimit {
		bad("maxAttempts", "must be from 1 to %d, or 0 for the server's default", MaxAttemptsLimit)
	} else {
		job.MaxAttempts = req.MaxAttempts
	}
	job.Timeout = checkTimeout(req.Timeout, bad)
	return job, fields, tooLarge
}

// scheduleError turns the runtime's refusal of a schedule into the
// client's error: an unknown job type names the registered ones, and a
// rule broken names its field (actors.FieldError).
func (s *Server) scheduleError(p actors.ScheduleParams, err error) error {
	switch {
	case errors.Is(err, domain.ErrUnknownJobType):
		return unknownJobType(string(p.Job.Type), s.svc.JobTypes(), err)
	case errors.Is(err, domain.ErrPayloadTooLarge):
		return err
	case errors.Is(err, domain.ErrInvalid):
		var fe *actors.FieldError
		if errors.As(err, &fe) {
			ve := newValidationError(FieldError{Field: fe.Field, Message: strings.TrimPrefix(fe.Err.Error(), domain.ErrInvalid.Error()+": ")})
			ve.cause = err
			return ve
		}
	}
	return err
}

// handleScheduleView handles GET /schedules/{name}.
func (s *Server) handleScheduleView(c *gin.Context) {
	name, err := scheduleName(c)
	if err != nil {
		s.writeError(c, err)
		return
	}
	info, err := s.svc.GetSchedule(c.Request.Context(), name)
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	writeJSON(c, nethttp.StatusOK, newScheduleResponse(info))
}

// handleScheduleDelete handles DELETE /schedules/{name}: 204; the jobs it
// submitted stay.
func (s *Server) handleScheduleDelete(c *gin.Context) {
	name, err := scheduleName(c)
	if err != nil {
		s.writeError(c, err)
		return
	}
	if err := s.svc.DeleteSchedule(c.Request.Context(), name); err != nil {
		s.writeError(c, err)
		return
	}
	c.Status(nethttp.StatusNoContent)
}

// handleSchedulePause handles POST /schedules/{name}/pause (pause true)
// and /resume: 200 with the schedule.
func (s *Server) handleSchedulePause(pause bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		name, err := scheduleName(c)
		if err != nil {
			s.writeError(c, err)
			return
		}
		change := s.svc.ResumeSchedule
		if pause {
			change = s.svc.PauseSchedule
		}
		info, err := change(c.Request.Context(), name)
		if err != nil {
			s.writeError(c, err)
			return
		}
		writeJSON(c, nethttp.StatusOK, newScheduleResponse(info))
	}
}

// handleScheduleTrigger handles POST /schedules/{name}/trigger: 201 with
// the job submitted now, outside the slots, and its Location.
func (s *Server) handleScheduleTrigger(c *gin.Context) {
	name, err := scheduleName(c)
	if err != nil {
		s.writeError(c, err)
		return
	}
	job, err := s.svc.TriggerSchedule(c.Request.Context(), name)
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.Header("Location", "/jobs/"+job.ID.String())
	writeJSON(c, nethttp.StatusCreated, newJobResponse(job))
}
