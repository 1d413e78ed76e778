package http

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	nethttp "net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/actors"
	"github.com/troupe-go/troupe/domain"
)

// testLastJobID is the latest job of testSchedule.
var testLastJobID = uuid.MustParse("0195a3c4-7b1e-7c3a-9f1d-2b8e4a6c0d11")

// testSchedule returns a schedule as the runtime would describe it, having
// run once.
func testSchedule(name string) actors.ScheduleInfo {
	return actors.ScheduleInfo{
		Schedule: domain.Schedule{
			Name: name, Cron: "*/5 * * * *", Timezone: "Europe/Paris",
			Job: domain.ScheduledJob{Type: "send_email", Payload: []byte(`{"to":"ops@example.com"}`),
				Queue: "email", Priority: 3, MaxAttempts: 5, Timeout: 30 * time.Second},
			CatchUp: domain.CatchUpSkip, Source: domain.SourceAPI,
			CreatedAt: testTime, UpdatedAt: testTime,
			LastSlot: testTime.Add(time.Minute), LastRunAt: testTime.Add(time.Minute), LastJobID: testLastJobID,
		},
		NextRunAt:     testTime.Add(6 * time.Minute),
		Description:   "every 5 minutes",
		LastJobStatus: domain.StatusCompleted,
	}
}

// fromParams is the schedule the runtime would make of p, fresh.
func fromParams(p actors.ScheduleParams) actors.ScheduleInfo {
	return actors.ScheduleInfo{
		Schedule: domain.Schedule{Name: p.Name, Cron: p.Cron, Timezone: p.Timezone, Job: p.Job,
			Paused: p.Paused, CatchUp: p.CatchUp, Source: domain.SourceAPI, CreatedAt: testTime, UpdatedAt: testTime},
		NextRunAt:   testTime.Add(5 * time.Minute),
		Description: "every 5 minutes",
	}
}

const fullScheduleBody = `{"cron":"*/5 * * * *","timezone":"Europe/Paris","catchUp":"one","paused":false,
	"job":{"type":"send_email","payload":{"to":"ops@example.com","n":[1,2]},"queue":"email","priority":3,"maxAttempts":5,"timeout":"30s"}}`

func TestSchedulePut(t *testing.T) {
	t.Parallel()

	t.Run("Creates201WithLocation", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		var got actors.ScheduleParams
		b.svc.ScheduleFunc = func(_ context.Context, p actors.ScheduleParams) (actors.ScheduleInfo, bool, error) {
			got = p
			return fromParams(p), true, nil
		}

		rec := b.do(t, request{method: "PUT", target: "/schedules/email-digest", body: fullScheduleBody})

		s := requireJSON[ScheduleResponse](t, rec, nethttp.StatusCreated)
		require.Equal(t, "/schedules/email-digest", rec.Header().Get("Location"))
		require.Equal(t, actors.ScheduleParams{
			Name: "email-digest", Cron: "*/5 * * * *", Timezone: "Europe/Paris", CatchUp: domain.CatchUpOne,
			Job: domain.ScheduledJob{Type: "send_email", Payload: []byte(`{"to":"ops@example.com","n":[1,2]}`),
				Queue: "email", Priority: 3, MaxAttempts: 5, Timeout: 30 * time.Second},
		}, got)
		require.Equal(t, "email-digest", s.Name)
		require.Equal(t, "Europe/Paris", s.Timezone)
		require.Equal(t, "every 5 minutes", s.Description)
		require.Equal(t, domain.CatchUpOne, s.CatchUp)
		require.Equal(t, domain.SourceAPI, s.Source)
		require.Equal(t, "30s", s.Job.Timeout)
		require.JSONEq(t, `{"to":"ops@example.com","n":[1,2]}`, string(s.Job.Payload))
		require.Equal(t, testTime.Add(5*time.Minute), s.NextRunAt.Time)
		require.Nil(t, s.LastJobID, "no job yet")
		require.NotContains(t, rec.Body.String(), "lastRunAt")
		require.NotContains(t, rec.Body.String(), "lastJobStatus")
	})

	t.Run("Replaces200WithoutLocation", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		b.svc.ScheduleFunc = func(_ context.Context, p actors.ScheduleParams) (actors.ScheduleInfo, bool, error) {
			return testSchedule(p.Name), false, nil
		}

		rec := b.do(t, request{method: "PUT", target: "/schedules/email-digest", body: fullScheduleBody})

		s := requireJSON[ScheduleResponse](t, rec, nethttp.StatusOK)
		require.Empty(t, rec.Header().Get("Location"))
		require.Equal(t, testLastJobID, *s.LastJobID)
		require.Equal(t, domain.StatusCompleted, s.LastJobStatus)
	})

	t.Run("DefaultsAndNoTimeout", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		var got actors.ScheduleParams
		b.svc.ScheduleFunc = func(_ context.Context, p actors.ScheduleParams) (actors.ScheduleInfo, bool, error) {
			got = p
			return fromParams(p), true, nil
		}

		rec := b.do(t, request{method: "PUT", target: "/schedules/tick",
			body: `{"name":"tick","cron":"@every 30s","paused":true,"job":{"type":"noop","timeout":"0s"}}`})

		s := requireJSON[ScheduleResponse](t, rec, nethttp.StatusCreated)
		require.Equal(t, []byte("null"), got.Job.Payload, "an absent payload is null")
		require.Equal(t, actors.NoTimeout, got.Job.Timeout, `"0s" is no timeout`)
		require.True(t, got.Paused)
		require.Empty(t, got.Timezone)
		require.Equal(t, "UTC", s.Timezone)
		require.Equal(t, domain.CatchUpSkip, s.CatchUp)
		require.Equal(t, domain.DefaultQueue, s.Job.Queue)
		require.Equal(t, domain.DefaultPriority, s.Job.Priority)
		require.Equal(t, "0s", s.Job.Timeout)
		require.Zero(t, s.NextRunAt, "a paused schedule has no next run")
		require.NotContains(t, rec.Body.String(), "nextRunAt")
		require.NotContains(t, rec.Body.String(), "maxAttempts")
	})

	t.Run("FieldsAtFault", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			name, path, body string
			fields           []string
		}{
			{"NoCron", "/schedules/a", `{"job":{"type":"noop"}}`, []string{"cron"}},
			{"BlankCron", "/schedules/a", `{"cron":"  ","job":{"type":"noop"}}`, []string{"cron"}},
			{"UnknownZone", "/schedules/a", `{"cron":"@daily","timezone":"Mars/Olympus","job":{"type":"noop"}}`, []string{"timezone"}},
			{"LocalZone", "/schedules/a", `{"cron":"@daily","timezone":"Local","job":{"type":"noop"}}`, []string{"timezone"}},
			{"CatchUp", "/schedules/a", `{"cron":"@daily","catchUp":"all","job":{"type":"noop"}}`, []string{"catchUp"}},
			{"NoJob", "/schedules/a", `{"cron":"@daily"}`, []string{"job"}},
			{"NullJob", "/schedules/a", `{"cron":"@daily","job":null}`, []string{"job"}},
			{"JobNotObject", "/schedules/a", `{"cron":"@daily","job":"noop"}`, []string{"job"}},
			{"NoType", "/schedules/a", `{"cron":"@daily","job":{}}`, []string{"job.type"}},
			{"LongType", "/schedules/a", `{"cron":"@daily","job":{"type":"` + strings.Repeat("t", 129) + `"}}`, []string{"job.type"}},
			{"Priority", "/schedules/a", `{"cron":"@daily","job":{"type":"noop","priority":10}}`, []string{"job.priority"}},
			{"PriorityType", "/schedules/a", `{"cron":"@daily","job":{"type":"noop","priority":"high"}}`, []string{"job.priority"}},
			{"Queue", "/schedules/a", `{"cron":"@daily","job":{"type":"noop","queue":"Mail Queue"}}`, []string{"job.queue"}},
			{"MaxAttempts", "/schedules/a", `{"cron":"@daily","job":{"type":"noop","maxAttempts":101}}`, []string{"job.maxAttempts"}},
			{"Timeout", "/schedules/a", `{"cron":"@daily","job":{"type":"noop","timeout":"soon"}}`, []string{"job.timeout"}},
			{"NegativeTimeout", "/schedules/a", `{"cron":"@daily","job":{"type":"noop","timeout":"-1s"}}`, []string{"job.timeout"}},
			{"PayloadTooDeep", "/schedules/a", `{"cron":"@daily","job":{"type":"noop","payload":` + strings.Repeat("[", 65) + strings.Repeat("]", 65) + `}}`, []string{"job.payload"}},
			{"UnknownMember", "/schedules/a", `{"cron":"@daily","crons":"x","job":{"type":"noop"}}`, []string{"crons"}},
			{"UnknownJobMember", "/schedules/a", `{"cron":"@daily","job":{"type":"noop","delay":"1s"}}`, []string{"job.delay"}},
			{"CronType", "/schedules/a", `{"cron":5,"job":{"type":"noop"}}`, []string{"cron"}},
			{"NameMismatch", "/schedules/a", `{"name":"b","cron":"@daily","job":{"type":"noop"}}`, []string{"name"}},
			{"PathName", "/schedules/Nightly", `{"cron":"@daily","job":{"type":"noop"}}`, []string{"name"}},
			{"Several", "/schedules/a", `{"timezone":"Nowhere","catchUp":"x","job":{"type":"noop","priority":0,"timeout":"x"}}`,
				[]string{"cron", "timezone", "catchUp", "job.priority", "job.timeout"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				b := setup(t, Config{}) // Schedule must not be called

				requireInvalidFields(t, b.do(t, request{method: "PUT", target: tc.path, body: tc.body}), tc.fields)
			})
		}
	})

	t.Run("RuntimeRefusalNamesTheField", func(t *testing.T) {
		t.Parallel()
		// The runtime names the field with an actors.FieldError,
		// however deep it wraps it.
		for field, err := range map[string]error{
			"cron":         fmt.Errorf("schedule %q: %w", "a", &actors.FieldError{Field: "cron", Err: fmt.Errorf("%w: %q: expected 5 to 6 fields, found 3", domain.ErrInvalid, "* * *")}),
			"timezone":     &actors.FieldError{Field: "timezone", Err: fmt.Errorf("%w: unknown time zone %q", domain.ErrInvalid, "X/Y")},
			"catchUp":      fmt.Errorf("schedule %q: %w", "a", &actors.FieldError{Field: "catchUp", Err: fmt.Errorf("%w: must be %q or %q", domain.ErrInvalid, "skip", "one")}),
			"job.priority": fmt.Errorf("schedule %q: %w", "a", &actors.FieldError{Field: "job.priority", Err: fmt.Errorf("%w: priority must be from 1 to 9", domain.ErrInvalid)}),
		} {
			t.Run(field, func(t *testing.T) {
				t.Parallel()
				b := setup(t, Config{})
				b.svc.ScheduleFunc = func(context.Context, actors.ScheduleParams) (actors.ScheduleInfo, bool, error) {
					return actors.ScheduleInfo{}, false, err
				}

				p := requireProblem(t, b.do(t, request{method: "PUT", target: "/schedules/a", body: `{"cron":"* * *","job":{"type":"noop"}}`}),
					400, ProblemTypeValidation)

				require.Len(t, p.Errors, 1)
				require.Equal(t, field, p.Errors[0].Field)
				require.NotContains(t, p.Errors[0].Message, "invalid input", "the message follows the field's name")
				require.NotContains(t, p.Errors[0].Message, field+":")
			})
		}
	})

	t.Run("RuntimeRefusalWithoutField", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		b.svc.ScheduleFunc = func(context.Context, actors.ScheduleParams) (actors.ScheduleInfo, bool, error) {
			return actors.ScheduleInfo{}, false, fmt.Errorf("%w: never fires", domain.ErrInvalid)
		}

		requireProblem(t, b.do(t, request{method: "PUT", target: "/schedules/a", body: `{"cron":"0 0 30 2 *","job":{"type":"noop"}}`}),
			400, ProblemTypeInvalidRequest)
	})

	t.Run("UnknownJobType", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		b.svc.ScheduleFunc = func(context.Context, actors.ScheduleParams) (actors.ScheduleInfo, bool, error) {
			return actors.ScheduleInfo{}, false, fmt.Errorf("schedule %q: %w", "a", domain.ErrUnknownJobType)
		}

		p := requireProblem(t, b.do(t, request{method: "PUT", target: "/schedules/a", body: `{"cron":"@daily","job":{"type":"send_mail"}}`}),
			400, ProblemTypeUnknownJobType)

		require.Contains(t, p.Detail, `"send_mail"`)
		require.Contains(t, p.Detail, "noop, send_email")
	})

	t.Run("ConfigScheduleIsAConflict", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		b.svc.ScheduleFunc = func(context.Context, actors.ScheduleParams) (actors.ScheduleInfo, bool, error) {
			return actors.ScheduleInfo{}, false, fmt.Errorf("schedule %q is declared in the configuration file: %w", "a", domain.ErrConflict)
		}

		requireProblem(t, b.do(t, request{method: "PUT", target: "/schedules/a", body: `{"cron":"@daily","job":{"type":"noop"}}`}),
			409, ProblemTypeConflict)
	})

	t.Run("PayloadOverTheLimit", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{MaxPayloadBytes: 16})

		p := requireProblem(t, b.do(t, request{method: "PUT", target: "/schedules/a",
			body: `{"cron":"@daily","job":{"type":"noop","payload":"` + strings.Repeat("x", 32) + `"}}`}), 413, ProblemTypePayloadTooLarge)

		require.Equal(t, "job.payload", p.Errors[0].Field)
	})

	t.Run("BodyNotJSON", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})

		requireProblem(t, b.do(t, request{method: "PUT", target: "/schedules/a", body: `{"cron":`}), 400, ProblemTypeInvalidRequest)
		requireProblem(t, b.do(t, request{method: "PUT", target: "/schedules/a"}), 400, ProblemTypeInvalidRequest)
		requireProblem(t, b.do(t, request{method: "PUT", target: "/schedules/a", body: `{}`,
			header: map[string]string{"Content-Type": "text/plain"}}), 415, ProblemTypeUnsupportedMediaType)
	})

	t.Run("NeedsAToken", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{APITokens: []string{"secret"}})

		requireProblem(t, b.do(t, request{method: "PUT", target: "/schedules/a", body: fullScheduleBody}), 401, ProblemTypeUnauthorized)
		requireProblem(t, b.do(t, request{method: "GET", target: "/schedules"}), 401, ProblemTypeUnauthorized)
		requireProblem(t, b.do(t, request{method: "POST", target: "/schedules/a/trigger"}), 401, ProblemTypeUnauthorized)
	})
}

func TestScheduleRead(t *testing.T) {
	t.Parallel()

	t.Run("ListEmpty", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})

		rec := b.do(t, request{method: "GET", target: "/schedules"})

		requireJSON[SchedulesResponse](t, rec, nethttp.StatusOK)
		require.JSONEq(t, `{"schedules":[]}`, rec.Body.String())
		require.Equal(t, "no-store", rec.Header().Get("Cache-Control"))
	})

	t.Run("ListInTheRuntimesOrder", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		paused := testSchedule("b-paused")
		paused.Paused, paused.Source = true, domain.SourceConfig
		paused.LastJobID, paused.LastRunAt, paused.LastJobStatus = uuid.Nil, time.Time{}, ""
		b.svc.SchedulesFunc = func(context.Context) ([]actors.ScheduleInfo, error) {
			return []actors.ScheduleInfo{testSchedule("a-digest"), paused}, nil
		}

		rec := b.do(t, request{method: "GET", target: "/schedules"})

		list := requireJSON[SchedulesResponse](t, rec, nethttp.StatusOK)
		require.Len(t, list.Schedules, 2)
		require.Equal(t, "a-digest", list.Schedules[0].Name)
		require.Equal(t, testTime.Add(6*time.Minute), list.Schedules[0].NextRunAt.Time)
		require.Equal(t, domain.SourceConfig, list.Schedules[1].Source)
		require.Zero(t, list.Schedules[1].NextRunAt, "paused")
		require.Nil(t, list.Schedules[1].LastJobID)
		var raw struct{ Schedules []map[string]any }
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &raw))
		for _, member := range []string{"nextRunAt", "lastRunAt", "lastJobId", "lastJobStatus"} {
			require.Contains(t, raw.Schedules[0], member)
			require.NotContains(t, raw.Schedules[1], member)
		}
	})

	t.Run("ListFails", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		b.svc.SchedulesFunc = func(context.Context) ([]actors.ScheduleInfo, error) { return nil, domain.ErrNotRunning }

		requireProblem(t, b.do(t, request{method: "GET", target: "/schedules"}), 503, ProblemTypeUnavailable)
	})

	t.Run("GetOne", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		b.svc.GetScheduleFunc = func(_ context.Context, name string) (actors.ScheduleInfo, error) {
			if name != "email-digest" {
				return actors.ScheduleInfo{}, fmt.Errorf("schedule %q: %w", name, domain.ErrNotFound)
			}
			return testSchedule(name), nil
		}

		s := requireJSON[ScheduleResponse](t, b.do(t, request{method: "GET", target: "/schedules/email-digest"}), nethttp.StatusOK)
		require.Equal(t, newScheduleResponse(testSchedule("email-digest")).Job, s.Job)
		requireProblem(t, b.do(t, request{method: "GET", target: "/schedules/other"}), 404, ProblemTypeNotFound)
		p := requireProblem(t, b.do(t, request{method: "GET", target: "/schedules/-bad"}), 400, ProblemTypeValidation)
		require.Equal(t, "name", p.Errors[0].Field)
	})
}

func TestScheduleChange(t *testing.T) {
	t.Parallel()

	notFound := func(name string) error { return fmt.Errorf("schedule %q: %w", name, domain.ErrNotFound) }
	conflict := func(name string) error {
		return fmt.Errorf("schedule %q is declared in the configuration file: %w", name, domain.ErrConflict)
	}

	t.Run("Delete", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		var deleted []string
		b.svc.DeleteScheduleFunc = func(_ context.Context, name string) error {
			switch name {
			case "gone":
				return notFound(name)
			case "from-file":
				return conflict(name)
			}
			deleted = append(deleted, name)
			return nil
		}

		rec := b.do(t, request{method: "DELETE", target: "/schedules/email-digest"})
		require.Equal(t, nethttp.StatusNoContent, rec.Code, rec.Body.String())
		require.Empty(t, rec.Body.String())
		require.Equal(t, []string{"email-digest"}, deleted)
		requireProblem(t, b.do(t, request{method: "DELETE", target: "/schedules/gone"}), 404, ProblemTypeNotFound)
		requireProblem(t, b.do(t, request{method: "DELETE", target: "/schedules/from-file"}), 409, ProblemTypeConflict)
		requireProblem(t, b.do(t, request{method: "DELETE", target: "/schedules/A"}), 400, ProblemTypeValidation)
	})

	t.Run("PauseAndResume", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		b.svc.PauseScheduleFunc = func(_ context.Context, name string, pause bool) (actors.ScheduleInfo, error) {
			switch name {
			case "gone":
				return actors.ScheduleInfo{}, notFound(name)
			case "from-file":
				return actors.ScheduleInfo{}, conflict(name)
			}
			s := testSchedule(name)
			s.Paused = pause
			return s, nil
		}

		paused := requireJSON[ScheduleResponse](t, b.do(t, request{method: "POST", target: "/schedules/digest/pause"}), nethttp.StatusOK)
		require.True(t, paused.Paused)
		require.Zero(t, paused.NextRunAt)
		resumed := requireJSON[ScheduleResponse](t, b.do(t, request{method: "POST", target: "/schedules/digest/resume"}), nethttp.StatusOK)
		require.False(t, resumed.Paused)
		require.NotZero(t, resumed.NextRunAt)
		for _, action := range []string{"pause", "resume"} {
			requireProblem(t, b.do(t, request{method: "POST", target: "/schedules/gone/" + action}), 404, ProblemTypeNotFound)
			requireProblem(t, b.do(t, request{method: "POST", target: "/schedules/from-file/" + action}), 409, ProblemTypeConflict)
			requireProblem(t, b.do(t, request{method: "POST", target: "/schedules/_x/" + action}), 400, ProblemTypeValidation)
		}
	})

	t.Run("Trigger", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		b.svc.TriggerScheduleFunc = func(_ context.Context, name string) (*domain.Job, error) {
			if name == "gone" {
				return nil, notFound(name)
			}
			j := newTestJob(t, domain.StatusPending)
			j.Schedule = name
			return j, nil
		}

		rec := b.do(t, request{method: "POST", target: "/schedules/from-file/trigger"})

		job := requireJSON[JobResponse](t, rec, nethttp.StatusCreated)
		require.Equal(t, "from-file", job.Schedule)
		require.Equal(t, "/jobs/"+job.ID.String(), rec.Header().Get("Location"))
		requireProblem(t, b.do(t, request{method: "POST", target: "/schedules/gone/trigger"}), 404, ProblemTypeNotFound)
		requireProblem(t, b.do(t, request{method: "POST", target: "/schedules/" + strings.Repeat("x", 129) + "/trigger"}), 400, ProblemTypeValidation)
	})

	t.Run("TriggerWithAnIdempotencyKeyRunsOnce", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		calls := 0
		b.svc.TriggerScheduleFunc = func(_ context.Context, name string) (*domain.Job, error) {
			calls++
			j := newTestJob(t, domain.StatusPending)
			j.ID, j.Schedule = uuid.Must(uuid.NewV7()), name
			return j, nil
		}
		trigger := request{method: "POST", target: "/schedules/digest/trigger", header: map[string]string{HeaderIdempotencyKey: "k-1"}}

		first := b.do(t, trigger)
		again := b.do(t, trigger)

		require.Equal(t, nethttp.StatusCreated, first.Code, first.Body.String())
		require.Equal(t, nethttp.StatusCreated, again.Code, again.Body.String())
		require.Equal(t, 1, calls, "a retry submits nothing")
		require.Equal(t, "true", again.Header().Get(HeaderIdempotentReplayed))
		require.Equal(t, first.Body.String(), again.Body.String())
		require.Equal(t, first.Header().Get("Location"), again.Header().Get("Location"))
		require.NotEmpty(t, again.Header().Get("Location"))
		other := b.do(t, request{method: "POST", target: "/schedules/other/trigger", header: map[string]string{HeaderIdempotencyKey: "k-1"}})
		requireProblem(t, other, 422, ProblemTypeIdempotencyKeyReused)
	})

	t.Run("TriggerFails", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		b.svc.TriggerScheduleFunc = func(context.Context, string) (*domain.Job, error) {
			return nil, fmt.Errorf("submit: %w", domain.ErrQueueFull)
		}

		rec := b.do(t, request{method: "POST", target: "/schedules/a/trigger"})

		requireProblem(t, rec, 503, ProblemTypeQueueFull)
		require.Equal(t, queueFullRetryAfter, rec.Header().Get("Retry-After"))
	})
}

func TestJobsOfASchedule(t *testing.T) {
	t.Parallel()

	t.Run("FilterAndField", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		var got domain.Filter
		b.svc.ListFunc = func(_ context.Context, f domain.Filter) (domain.Page, error) {
			got = f
			j := newTestJob(t, domain.StatusCompleted)
			j.Schedule = "nightly.report"
			return domain.Page{Jobs: []*domain.Job{j}, Total: 1}, nil
		}

		rec := b.do(t, request{method: "GET", target: "/jobs?schedule=nightly.report&queue=reports"})

		list := requireJSON[ListResponse](t, rec, nethttp.StatusOK)
		require.Equal(t, "nightly.report", got.Schedule)
		require.Equal(t, "reports", got.Queue)
		require.Equal(t, "nightly.report", list.Jobs[0].Schedule)
	})

	t.Run("BadName", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{}) // List must not be called

		p := requireProblem(t, b.do(t, request{method: "GET", target: "/jobs?schedule=Nightly&queue=A"}), 400, ProblemTypeValidation)

		require.Equal(t, []FieldError{{Field: "queue", Message: queueNameRule}, {Field: "schedule", Message: scheduleNameRule}}, p.Errors)
	})

	t.Run("NoScheduleNoField", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		b.svc.holdOnly(newTestJob(t, domain.StatusPending))

		rec := b.do(t, request{method: "GET", target: "/jobs"})

		require.Equal(t, nethttp.StatusOK, rec.Code)
		require.NotContains(t, rec.Body.String(), `"schedule"`)
	})
}

func TestStatsRetention(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	b.svc.ListFunc = func(context.Context, domain.Filter) (domain.Page, error) {
		return domain.Page{Jobs: []*domain.Job{}}, nil
	}
	b.svc.RetentionValue = actors.Retention{Completed: 30 * time.Second, Failed: actors.KeepForever, Canceled: 168 * time.Hour}

	rec := b.do(t, request{method: "GET", target: "/stats"})

	require.Equal(t, nethttp.StatusOK, rec.Code, rec.Body.String())
	var body struct{ Retention map[string]*string }
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
	require.Len(t, body.Retention, 3)
	require.Equal(t, "30s", *body.Retention["completed"])
	require.Nil(t, body.Retention["failed"], "kept for ever")
	require.Equal(t, "168h0m0s", *body.Retention["canceled"])
}

// scheduleConformanceCases are the exchanges of the /schedules routes and
// of GET /jobs?schedule=, checked against the spec by
// TestOpenAPIConformance.
func scheduleConformanceCases() []conformanceCase {
	internal := errors.New("something broke")
	conflict := fmt.Errorf("schedule %q is declared in the configuration file: %w", "digest", domain.ErrConflict)
	notFound := fmt.Errorf("schedule %q: %w", "digest", domain.ErrNotFound)
	put := func(created bool, err error) func(*testing.T, *fakeService) {
		return func(_ *testing.T, svc *fakeService) {
			svc.ScheduleFunc = func(_ context.Context, p actors.ScheduleParams) (actors.ScheduleInfo, bool, error) {
				if err != nil {
					return actors.ScheduleInfo{}, false, err
				}
				if created {
					return fromParams(p), true, nil
				}
				return testSchedule(p.Name), false, nil
			}
		}
	}
	list := func(err error) func(*testing.T, *fakeService) {
		return func(_ *testing.T, svc *fakeService) {
			svc.SchedulesFunc = func(context.Context) ([]actors.ScheduleInfo, error) {
				paused := testSchedule("nightly")
				paused.Paused, paused.Source, paused.LastJobStatus = true, domain.SourceConfig, ""
				paused.Job = domain.ScheduledJob{Type: "generate_report", Payload: []byte{0xff}}
				return []actors.ScheduleInfo{testSchedule("digest"), paused}, err
			}
		}
	}
	get := func(err error) func(*testing.T, *fakeService) {
		return func(_ *testing.T, svc *fakeService) {
			svc.GetScheduleFunc = func(_ context.Context, name string) (actors.ScheduleInfo, error) {
				return testSchedule(name), err
			}
		}
	}
	del := func(err error) func(*testing.T, *fakeService) {
		return func(_ *testing.T, svc *fakeService) {
			svc.DeleteScheduleFunc = func(context.Context, string) error { return err }
		}
	}
	pause := func(err error) func(*testing.T, *fakeService) {
		return func(_ *testing.T, svc *fakeService) {
			svc.PauseScheduleFunc = func(_ context.Context, name string, pause bool) (actors.ScheduleInfo, error) {
				s := testSchedule(name)
				s.Paused = pause
				return s, err
			}
		}
	}
	trigger := func(err error) func(*testing.T, *fakeService) {
		return func(t *testing.T, svc *fakeService) {
			svc.TriggerScheduleFunc = func(_ context.Context, name string) (*domain.Job, error) {
				if err != nil {
					return nil, err
				}
				j := newTestJob(t, domain.StatusPending)
				j.Schedule, j.Queue, j.Priority = name, "email", 3
				return j, nil
			}
		}
	}
	listJobsOf := func(t *testing.T, svc *fakeService) {
		svc.ListFunc = func(_ context.Context, f domain.Filter) (domain.Page, error) {
			j := newTestJob(t, domain.StatusCompleted)
			j.Schedule = f.Schedule
			return domain.Page{Jobs: []*domain.Job{j}, Total: 1}, nil
		}
	}
	body := `{"cron":"*/5 * * * *","timezone":"Europe/Paris","catchUp":"skip","job":{"type":"send_email","payload":{"to":"ops@example.com"},"queue":"email","priority":3,"maxAttempts":5,"timeout":"30s"}}`
	const path = "/schedules/digest"
	return []conformanceCase{
		{name: "ScheduleList", arrange: list(nil), requestValid: true, status: 200, req: request{method: "GET", target: "/schedules"}},
		{name: "ScheduleListEmpty", requestValid: true, status: 200, req: request{method: "GET", target: "/schedules"}},
		{name: "ScheduleListUnauthorized", anonymous: true, status: 401, req: request{method: "GET", target: "/schedules"}},
		{name: "ScheduleListInternal", arrange: list(internal), requestValid: true, status: 500, req: request{method: "GET", target: "/schedules"}},
		{name: "ScheduleListNotRunning", arrange: list(domain.ErrNotRunning), requestValid: true, status: 503, req: request{method: "GET", target: "/schedules"}},

		{name: "SchedulePutCreated", arrange: put(true, nil), requestValid: true, status: 201, req: request{method: "PUT", target: path, body: body}},
		{name: "SchedulePutMinimal", arrange: put(true, nil), requestValid: true, status: 201,
			req: request{method: "PUT", target: path, body: `{"name":"digest","cron":"@every 30s","paused":true,"job":{"type":"noop","timeout":"0s"}}`}},
		{name: "SchedulePutReplaced", arrange: put(false, nil), requestValid: true, status: 200, req: request{method: "PUT", target: path, body: body}},
		{name: "SchedulePutBadCatchUp", requestValid: false, status: 400,
			req: request{method: "PUT", target: path, body: `{"cron":"@daily","catchUp":"all","job":{"type":"noop"}}`}},
		{name: "SchedulePutNoJob", requestValid: false, status: 400, req: request{method: "PUT", target: path, body: `{"cron":"@daily"}`}},
		{name: "SchedulePutUnknownMember", requestValid: false, status: 400,
			req: request{method: "PUT", target: path, body: `{"cron":"@daily","job":{"type":"noop","delay":"1s"}}`}},
		{name: "SchedulePutBadPriority", requestValid: false, status: 400,
			req: request{method: "PUT", target: path, body: `{"cron":"@daily","job":{"type":"noop","priority":10}}`}},
		{name: "SchedulePutBadName", requestValid: false, status: 400, req: request{method: "PUT", target: "/schedules/Digest", body: body}},
		{name: "SchedulePutBadCron", arrange: put(false, fmt.Errorf("%w: cron: %q: expected 5 to 6 fields, found 3", domain.ErrInvalid, "* * *")),
			requestValid: true, status: 400, req: request{method: "PUT", target: path, body: `{"cron":"* * *","job":{"type":"noop"}}`}},
		{name: "SchedulePutBadZone", requestValid: true, status: 400,
			req: request{method: "PUT", target: path, body: `{"cron":"@daily","timezone":"Mars/Olympus","job":{"type":"noop"}}`}},
		{name: "SchedulePutUnknownType", arrange: put(false, domain.ErrUnknownJobType), requestValid: true, status: 400,
			req: request{method: "PUT", target: path, body: `{"cron":"@daily","job":{"type":"send_mail"}}`}},
		{name: "SchedulePutUnauthorized", anonymous: true, status: 401, req: request{method: "PUT", target: path, body: body}},
		{name: "SchedulePutConfig", arrange: put(false, conflict), requestValid: true, status: 409, req: request{method: "PUT", target: path, body: body}},
		{name: "SchedulePutPayloadTooLarge", requestValid: true, status: 413,
			req: request{method: "PUT", target: path, body: `{"cron":"@daily","job":{"type":"noop","payload":"` + strings.Repeat("x", 1<<20) + `"}}`}},
		{name: "SchedulePutTextPlain", requestValid: false, status: 415,
			req: request{method: "PUT", target: path, body: body, header: map[string]string{"Content-Type": "text/plain"}}},
		{name: "SchedulePutInternal", arrange: put(false, internal), requestValid: true, status: 500, req: request{method: "PUT", target: path, body: body}},
		{name: "SchedulePutNotRunning", arrange: put(false, domain.ErrNotRunning), requestValid: true, status: 503, req: request{method: "PUT", target: path, body: body}},

		{name: "ScheduleGet", arrange: get(nil), requestValid: true, status: 200, req: request{method: "GET", target: path}},
		{name: "ScheduleGetBadName", requestValid: false, status: 400, req: request{method: "GET", target: "/schedules/.x"}},
		{name: "ScheduleGetUnauthorized", anonymous: true, status: 401, req: request{method: "GET", target: path}},
		{name: "ScheduleGetNotFound", arrange: get(notFound), requestValid: true, status: 404, req: request{method: "GET", target: path}},
		{name: "ScheduleGetInternal", arrange: get(internal), requestValid: true, status: 500, req: request{method: "GET", target: path}},
		{name: "ScheduleGetNotRunning", arrange: get(domain.ErrNotRunning), requestValid: true, status: 503, req: request{method: "GET", target: path}},

		{name: "ScheduleDelete", arrange: del(nil), requestValid: true, status: 204, req: request{method: "DELETE", target: path}},
		{name: "ScheduleDeleteBadName", requestValid: false, status: 400, req: request{method: "DELETE", target: "/schedules/.x"}},
		{name: "ScheduleDeleteUnauthorized", anonymous: true, status: 401, req: request{method: "DELETE", target: path}},
		{name: "ScheduleDeleteNotFound", arrange: del(notFound), requestValid: true, status: 404, req: request{method: "DELETE", target: path}},
		{name: "ScheduleDeleteConfig", arrange: del(conflict), requestValid: true, status: 409, req: request{method: "DELETE", target: path}},
		{name: "ScheduleDeleteInternal", arrange: del(internal), requestValid: true, status: 500, req: request{method: "DELETE", target: path}},
		{name: "ScheduleDeleteNotRunning", arrange: del(domain.ErrNotRunning), requestValid: true, status: 503, req: request{method: "DELETE", target: path}},

		{name: "SchedulePause", arrange: pause(nil), requestValid: true, status: 200, req: request{method: "POST", target: path + "/pause"}},
		{name: "SchedulePauseBadName", requestValid: false, status: 400, req: request{method: "POST", target: "/schedules/.x/pause"}},
		{name: "SchedulePauseUnauthorized", anonymous: true, status: 401, req: request{method: "POST", target: path + "/pause"}},
		{name: "SchedulePauseNotFound", arrange: pause(notFound), requestValid: true, status: 404, req: request{method: "POST", target: path + "/pause"}},
		{name: "SchedulePauseConfig", arrange: pause(conflict), requestValid: true, status: 409, req: request{method: "POST", target: path + "/pause"}},
		{name: "SchedulePauseInternal", arrange: pause(internal), requestValid: true, status: 500, req: request{method: "POST", target: path + "/pause"}},
		{name: "SchedulePauseNotRunning", arrange: pause(domain.ErrNotRunning), requestValid: true, status: 503, req: request{method: "POST", target: path + "/pause"}},

		{name: "ScheduleResume", arrange: pause(nil), requestValid: true, status: 200, req: request{method: "POST", target: path + "/resume"}},
		{name: "ScheduleResumeBadName", requestValid: false, status: 400, req: request{method: "POST", target: "/schedules/.x/resume"}},
		{name: "ScheduleResumeUnauthorized", anonymous: true, status: 401, req: request{method: "POST", target: path + "/resume"}},
		{name: "ScheduleResumeNotFound", arrange: pause(notFound), requestValid: true, status: 404, req: request{method: "POST", target: path + "/resume"}},
		{name: "ScheduleResumeConfig", arrange: pause(conflict), requestValid: true, status: 409, req: request{method: "POST", target: path + "/resume"}},
		{name: "ScheduleResumeInternal", arrange: pause(internal), requestValid: true, status: 500, req: request{method: "POST", target: path + "/resume"}},
		{name: "ScheduleResumeNotRunning", arrange: pause(domain.ErrNotRunning), requestValid: true, status: 503, req: request{method: "POST", target: path + "/resume"}},

		{name: "ScheduleTrigger", arrange: trigger(nil), requestValid: true, status: 201, req: request{method: "POST", target: path + "/trigger"}},
		{name: "ScheduleTriggerBadName", requestValid: false, status: 400, req: request{method: "POST", target: "/schedules/.x/trigger"}},
		{name: "ScheduleTriggerUnknownType", arrange: trigger(domain.ErrUnknownJobType), requestValid: true, status: 400,
			req: request{method: "POST", target: path + "/trigger"}},
		{name: "ScheduleTriggerUnauthorized", anonymous: true, status: 401, req: request{method: "POST", target: path + "/trigger"}},
		{name: "ScheduleTriggerNotFound", arrange: trigger(notFound), requestValid: true, status: 404, req: request{method: "POST", target: path + "/trigger"}},
		{name: "ScheduleTriggerInternal", arrange: trigger(internal), requestValid: true, status: 500, req: request{method: "POST", target: path + "/trigger"}},
		{name: "ScheduleTriggerQueueFull", arrange: trigger(domain.ErrQueueFull), requestValid: true, status: 503, req: request{method: "POST", target: path + "/trigger"}},
		{name: "ScheduleTriggerStorageFull", arrange: trigger(domain.ErrStorageFull), requestValid: true, status: 507, req: request{method: "POST", target: path + "/trigger"}},

		{name: "ListOfSchedule", arrange: listJobsOf, requestValid: true, status: 200, req: request{method: "GET", target: "/jobs?schedule=nightly.report"}},
		{name: "ListBadSchedule", requestValid: false, status: 400, req: request{method: "GET", target: "/jobs?schedule=Nightly"}},
	}
}
