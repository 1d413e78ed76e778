package http

import (
	"encoding/json"
	"errors"
	"fmt"
	nethttp "net/http"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/troupe-go/troupe/actors"
	"github.com/troupe-go/troupe/domain"
)

// QueueResponse is one queue on the wire: an element of GET /queues and
// the answer of pausing, resuming or setting it.
type QueueResponse struct {
	// Name is the queue's name.
	Name string `json:"name"`
	// Paused says the queue starts none of its jobs, on any node.
	Paused bool `json:"paused"`
	// Limit caps how many of its jobs run at once across all nodes (the
	// queue's flow setting); 0 means no cap.
	Limit int `json:"limit"`
	// Rate caps how many of its attempts start per period, across all
	// nodes; absent when unset.
	Rate *RateSetting `json:"rate,omitempty"`
	// PerKey applies a limit and a rate to each job key separately;
	// absent when unset.
	PerKey *KeyLimitsSetting `json:"perKey,omitempty"`
	// Ordered starts each key's jobs one after the other, in order.
	Ordered bool `json:"ordered"`
	// Fair takes ready jobs round-robin across keys.
	Fair bool `json:"fair"`
	// NodeLimit caps how many of its jobs run at once on the node that
	// answered (its configured queue limits); 0 means no cap but the
	// worker pool.
	NodeLimit int `json:"nodeLimit"`
	// Scheduled, Pending and Running count the queue's unfinished jobs.
	Scheduled int `json:"scheduled"`
	Pending   int `json:"pending"`
	Running   int `json:"running"`
	// Waiting counts the pending, due jobs that the flow settings hold
	// back, by reason; every reason is present, 0 when none wait for it.
	Waiting QueueWaiting `json:"waiting"`
}

// RateSetting is a token bucket on the wire: Count starts per Per (a Go
// duration, "1s", "1m0s"), in bursts of up to Burst.
type RateSetting struct {
	Count int    `json:"count"`
	Per   string `json:"per"`
	// Burst is the bucket's capacity; absent (0) means Count.
	Burst int `json:"burst,omitempty"`
}

// KeyLimitsSetting is a queue's per-key limits on the wire.
type KeyLimitsSetting struct {
	// Limit caps how many jobs of one key run at once; 0 means no cap.
	Limit int `json:"limit"`
	// Rate caps how many attempts of one key start per period; absent
	// when unset.
	Rate *RateSetting `json:"rate,omitempty"`
}

// QueueWaiting counts a queue's jobs held back by its flow settings, one
// member per domain.WaitReason, named by the reason's text. A struct, not
// a map, so that every reason is always on the wire.
type QueueWaiting struct {
	QueueLimit int `json:"queue limit"`
	QueueRate  int `json:"queue rate"`
	KeyLimit   int `json:"key limit"`
	KeyOrder   int `json:"key order"`
	KeyRate    int `json:"key rate"`
}

// newQueueWaiting converts the runtime's counts by reason; a reason this
// package does not know is left out rather than misfiled.
func newQueueWaiting(counts map[domain.WaitReason]int) QueueWaiting {
	return QueueWaiting{
		QueueLimit: counts[domain.WaitQueueLimit],
		QueueRate:  counts[domain.WaitQueueRate],
		KeyLimit:   counts[domain.WaitKeyLimit],
		KeyOrder:   counts[domain.WaitKeyOrder],
		KeyRate:    counts[domain.WaitKeyRate],
	}
}

// QueuesResponse is the body of GET /queues.
type QueuesResponse struct {
	// Queues lists the queues by name; empty, never null.
	Queues []QueueResponse `json:"queues"`
}

func newQueueResponse(q actors.QueueInfo) QueueResponse {
	s := q.Settings
	r := QueueResponse{
		Name: q.Name, Paused: q.Paused,
		Limit: s.Limit, Rate: newRateSetting(s.Rate), Ordered: s.Ordered, Fair: s.Fair,
		NodeLimit: q.Limit,
		Scheduled: q.Scheduled, Pending: q.Pending, Running: q.Running,
		Waiting: newQueueWaiting(q.Waiting),
	}
	if s.PerKey != nil {
		r.PerKey = &KeyLimitsSetting{Limit: s.PerKey.Limit, Rate: newRateSetting(s.PerKey.Rate)}
	}
	return r
}

func newRateSetting(r *domain.Rate) *RateSetting {
	if r == nil {
		return nil
	}
	return &RateSetting{Count: r.Count, Per: r.Per.String(), Burst: r.Burst}
}

func newQueueResponses(qs []actors.QueueInfo) []QueueResponse {
	out := make([]QueueResponse, len(qs))
	for i, q := range qs {
		out[i] = newQueueResponse(q)
	}
	return out
}

// registerQueueRoutes adds the /queues resource to r.
func (s *Server) registerQueueRoutes(r gin.IRoutes) {
	r.GET("/queues", s.handleQueues)
	r.PUT("/queues/:name", s.acceptJSONBody, s.handleQueuePut)
	r.POST("/queues/:name/pause", s.handleQueuePause(true))
	r.POST("/queues/:name/resume", s.handleQueuePause(false))
}

// handleQueues handles GET /queues.
func (s *Server) handleQueues(c *gin.Context) {
	qs, err := s.svc.Queues(c.Request.Context())
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	writeJSON(c, nethttp.StatusOK, QueuesResponse{Queues: newQueueResponses(qs)})
}

// queueName reads the queue's name from the path; a name no queue can
// have is the client's mistake, found before any call.
func queueName(c *gin.Context) (string, error) {
	name := c.Param("name")
	if domain.ValidateQueueName(name) != nil {
		return "", validationFailed(FieldError{Field: "name", Message: queueNameRule})
	}
	return name, nil
}

// handleQueuePause handles POST /queues/{name}/pause (pause true) and
// /resume: 200 with the queue. Both are idempotent; a queue need not hold
// jobs to be paused.
func (s *Server) handleQueuePause(pause bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		name, err := queueName(c)
		if err != nil {
			s.writeError(c, err)
			return
		}
		change := s.svc.ResumeQueue
		if pause {
			change = s.svc.PauseQueue
		}
		q, err := change(c.Request.Context(), name)
		if err != nil {
			s.writeError(c, err)
			return
		}
		writeJSON(c, nethttp.StatusOK, newQueueResponse(q))
	}
}

// QueueSettingsRequest is the body of PUT /queues/{name}: the queue's
// flow settings, which replace all those before it; every member is
// optional, and {} clears them. The nested objects are kept raw so that
// their members are checked as strictly as the top level's, and named
// with their path ("rate.per").
type QueueSettingsRequest struct {
	// Limit caps the queue's running jobs across all nodes; 0 means none.
	Limit int `json:"limit,omitempty"`
	// Rate is a RateRequest; absent or null means none.
	Rate json.RawMessage `json:"rate,omitempty"`
	// PerKey is a KeyLimitsRequest; absent or null means none.
	PerKey json.RawMessage `json:"perKey,omitempty"`
	// Ordered runs each key's jobs in order (needs perKey.limit 1).
	Ordered bool `json:"ordered,omitempty"`
	// Fair takes ready jobs round-robin across keys.
	Fair bool `json:"fair,omitempty"`
}

// RateRequest is a rate of a QueueSettingsRequest.
type RateRequest struct {
	Count int `json:"count"`
	// Per is a Go duration: "1s", "1m", "1h", "500ms".
	Per string `json:"per"`
	// Burst absent or 0 means Count.
	Burst int `json:"burst,omitempty"`
}

// KeyLimitsRequest is the perKey member of a QueueSettingsRequest.
type KeyLimitsRequest struct {
	Limit int `json:"limit,omitempty"`
	// Rate is a RateRequest; absent or null means none.
	Rate json.RawMessage `json:"rate,omitempty"`
}

// settingFieldOrder is the order in which a refused settings body names
// its fields: the order of domain.QueueSettings.Validate, so that the
// fields this package refuses (a period that is no duration) fall in
// place among the runtime's.
var settingFieldOrder = []string{
	"limit", "rate", "rate.count", "rate.per", "rate.burst",
	"perKey", "perKey.limit", "perKey.rate", "perKey.rate.count", "perKey.rate.per", "perKey.rate.burst",
	"ordered", "fair",
}

// handleQueuePut handles PUT /queues/{name}: 200 with the queue and its
// new settings.
func (s *Server) handleQueuePut(c *gin.Context) {
	name, err := queueName(c)
	if err != nil {
		s.writeError(c, err)
		return
	}
	data, err := readBody(c.Request.Body)
	if err != nil {
		s.writeError(c, decodeError(err))
		return
	}
	settings, err := decodeQueueSettings(data)
	if err != nil {
		s.writeError(c, err)
		return
	}
	q, err := s.svc.SetQueueSettings(c.Request.Context(), name, settings)
	if err != nil {
		s.writeError(c, fieldErrors(err))
		return
	}
	writeJSON(c, nethttp.StatusOK, newQueueResponse(q))
}

// decodeQueueSettings decodes and checks the body of PUT /queues/{name}.
// What only the wire can get wrong (unknown members, wrong types, a
// period that is no duration) is found here; the rules of the settings
// are the runtime's, but when the body is refused here they are checked
// too (domain.QueueSettings.Validate), so that one answer names every
// field at fault.
func decodeQueueSettings(data []byte) (domain.QueueSettings, error) {
	var req QueueSettingsRequest
	if err := decodeStrict(data, &req); err != nil {
		return domain.QueueSettings{}, err
	}
	settings := domain.QueueSettings{Limit: req.Limit, Ordered: req.Ordered, Fair: req.Fair}
	var fields []FieldError
	var rateFields []FieldError
	settings.Rate, rateFields = decodeRate("rate", req.Rate)
	fields = append(fields, rateFields...)
	if !isAbsent(req.PerKey) {
		var keyReq KeyLimitsRequest
		if fe := decodeMember("perKey", req.PerKey, &keyReq); fe != nil {
			fields = append(fields, fe...)
			// A placeholder that no rule refuses, so that a field that
			// depends on it (ordered) is not named for it.
			settings.PerKey = &domain.KeyLimits{Limit: 1}
		} else {
			settings.PerKey = &domain.KeyLimits{Limit: keyReq.Limit}
			settings.PerKey.Rate, rateFields = decodeRate("perKey.rate", keyReq.Rate)
			fields = append(fields, rateFields...)
		}
	}
	if len(fields) == 0 {
		return settings, nil
	}
	// The fields refused here hold placeholders that pass; the rest are
	// named by the runtime's own rules.
	for _, fe := range settingFields(settings.Validate()) {
		if !slices.ContainsFunc(fields, func(f FieldError) bool { return f.Field == fe.Field }) {
			fields = append(fields, fe)
		}
	}
	slices.SortStableFunc(fields, func(a, b FieldError) int {
		return settingFieldRank(a.Field) - settingFieldRank(b.Field)
	})
	return domain.QueueSettings{}, validationFailed(fields...)
}

// settingFieldRank is a field's place in settingFieldOrder; unknown
// fields come last.
func settingFieldRank(field string) int {
	if i := slices.Index(settingFieldOrder, field); i >= 0 {
		return i
	}
	return len(settingFieldOrder)
}

// isAbsent reports whether a raw member was left out or null.
func isAbsent(raw json.RawMessage) bool {
	return len(raw) == 0 || string(raw) == "null"
}

// decodeMember decodes the object member field strictly into obj, naming
// its errors under field ("rate.count"), or the member itself when it is
// not an object.
func decodeMember(field string, raw json.RawMessage, obj any) []FieldError {
	err := decodeStrict(raw, obj)
	if err == nil {
		return nil
	}
	var reqErr *requestError
	if errors.As(err, &reqErr) && len(reqErr.fields) > 0 {
		fields := make([]FieldError, len(reqErr.fields))
		for i, f := range reqErr.fields {
			fields[i] = FieldError{Field: field + "." + f.Field, Message: f.Message}
		}
		return fields
	}
	return []FieldError{{Field: field, Message: "must be a JSON object"}}
}

// decodeRate decodes a rate named field; a period that is no Go duration
// is refused here, and the placeholder left in its place (or in the
// rate's, when it does not decode) passes the runtime's rules, so that
// they name the other fields and only them.
func decodeRate(field string, raw json.RawMessage) (*domain.Rate, []FieldError) {
	if isAbsent(raw) {
		return nil, nil
	}
	var req RateRequest
	if fields := decodeMember(field, raw, &req); fields != nil {
		// A placeholder that no rule refuses, as for the period below.
		return &domain.Rate{Count: 1, Per: domain.MinRatePer}, fields
	}
	r := &domain.Rate{Count: req.Count, Burst: req.Burst}
	per, err := time.ParseDuration(req.Per)
	if err != nil {
		r.Per = domain.MinRatePer
		return r, []FieldError{{Field: field + ".per", Message: fmt.Sprintf(
			`must be a Go duration between %s and %s, such as "1s", "1m" or "500ms"`, domain.MinRatePer, domain.MaxRatePer)}}
	}
	r.Per = per
	return r, nil
}

// settingFields lists the fields of the domain's refusal of settings
// (each a *domain.SettingError).
func settingFields(err error) []FieldError {
	var fields []FieldError
	walkErrors(err, func(e error) bool {
		se, ok := e.(*domain.SettingError) //nolint:errorlint // walkErrors unwraps the chain itself, one error at a time
		if !ok {
			return false
		}
		fields = append(fields, FieldError{Field: se.Field, Message: invalidMessage(se.Err)})
		return true
	})
	return fields
}

// fieldErrors turns the runtime's refusal of several input fields (each
// an *actors.FieldError wrapping domain.ErrInvalid, joined with
// errors.Join) into one 400 naming them all, in order. Any other error is
// returned as it is.
func fieldErrors(err error) error {
	if !errors.Is(err, domain.ErrInvalid) {
		return err
	}
	var fields []FieldError
	walkErrors(err, func(e error) bool {
		fe, ok := e.(*actors.FieldError) //nolint:errorlint // walkErrors unwraps the chain itself, one error at a time
		if ok {
			fields = append(fields, FieldError{Field: fe.Field, Message: invalidMessage(fe.Err)})
		}
		return ok
	})
	if len(fields) == 0 {
		return err
	}
	ve := newValidationError(fields...)
	ve.cause = err
	return ve
}

// walkErrors calls visit on err and, unless visit says it took it, on
// what it wraps, depth first, in order: the errors of errors.Join too.
func walkErrors(err error, visit func(error) bool) {
	if err == nil || visit(err) {
		return
	}
	switch u := err.(type) { //nolint:errorlint // this is the unwrapping errors.As would do, keeping every error of a join
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			walkErrors(e, visit)
		}
	case interface{ Unwrap() error }:
		walkErrors(u.Unwrap(), visit)
	}
}

// invalidMessage is a refusal's text without the sentinel's, to be read
// after the field's name.
func invalidMessage(err error) string {
	return strings.TrimPrefix(err.Error(), domain.ErrInvalid.Error()+": ")
}
