package http

import (
	"context"
	"errors"
	"fmt"
	nethttp "net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/actors"
	"github.com/troupe-go/troupe/domain"
)

func twoQueues(context.Context) ([]actors.QueueInfo, error) {
	return []actors.QueueInfo{
		{QueueInfo: domain.QueueInfo{Name: "default", Scheduled: 1, Pending: 2, Running: 3}},
		{QueueInfo: domain.QueueInfo{Name: "email", Paused: true, Pending: 7}, Limit: 2},
	}, nil
}

func TestQueues(t *testing.T) {
	t.Parallel()

	t.Run("List", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		b.svc.QueuesFunc = twoQueues

		rec := b.do(t, request{method: "GET", target: "/queues"})

		require.Equal(t, nethttp.StatusOK, rec.Code)
		require.JSONEq(t, `{"queues":[
			{"name":"default","paused":false,"limit":0,"ordered":false,"fair":false,"nodeLimit":0,"scheduled":1,"pending":2,"running":3,
			 "waiting":{"queue limit":0,"queue rate":0,"key limit":0,"key order":0,"key rate":0}},
			{"name":"email","paused":true,"limit":0,"ordered":false,"fair":false,"nodeLimit":2,"scheduled":0,"pending":7,"running":0,
			 "waiting":{"queue limit":0,"queue rate":0,"key limit":0,"key order":0,"key rate":0}}]}`, rec.Body.String())
		require.Equal(t, "no-store", rec.Header().Get("Cache-Control"))
	})

	t.Run("NoneIsAnEmptyList", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})

		rec := b.do(t, request{method: "GET", target: "/queues"})

		require.JSONEq(t, `{"queues":[]}`, rec.Body.String())
	})

	t.Run("PauseAndResume", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		var calls []string
		b.svc.PauseFunc = func(_ context.Context, name string, pause bool) (actors.QueueInfo, error) {
			calls = append(calls, fmt.Sprint(name, " ", pause))
			return actors.QueueInfo{QueueInfo: domain.QueueInfo{Name: name, Paused: pause, Pending: 4}, Limit: 1}, nil
		}

		paused := b.do(t, request{method: "POST", target: "/queues/email/pause"})
		resumed := b.do(t, request{method: "POST", target: "/queues/email/resume"})

		got := requireJSON[QueueResponse](t, paused, nethttp.StatusOK)
		require.Equal(t, QueueResponse{Name: "email", Paused: true, NodeLimit: 1, Pending: 4}, got)
		got = requireJSON[QueueResponse](t, resumed, nethttp.StatusOK)
		require.False(t, got.Paused)
		require.Equal(t, []string{"email true", "email false"}, calls)
	})

	t.Run("BadName", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{}) // nothing may reach the service

		for _, target := range []string{"/queues/Email/pause", "/queues/-x/resume", "/queues/a%20b/pause"} {
			rec := b.do(t, request{method: "POST", target: target})
			p := requireProblem(t, rec, nethttp.StatusBadRequest, ProblemTypeValidation)
			require.Equal(t, []FieldError{{Field: "name", Message: queueNameRule}}, p.Errors, target)
		}
	})

	t.Run("StoreErrors", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		b.svc.QueuesFunc = func(context.Context) ([]actors.QueueInfo, error) { return nil, domain.ErrUnavailable }
		b.svc.PauseFunc = func(context.Context, string, bool) (actors.QueueInfo, error) {
			return actors.QueueInfo{}, errors.New("disk on fire")
		}

		requireProblem(t, b.do(t, request{method: "GET", target: "/queues"}), nethttp.StatusServiceUnavailable, ProblemTypeUnavailable)
		requireProblem(t, b.do(t, request{method: "POST", target: "/queues/email/pause"}), nethttp.StatusInternalServerError, ProblemTypeInternal)
	})

	t.Run("NeedAToken", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{APITokens: []string{"secret"}})

		requireProblem(t, b.do(t, request{method: "GET", target: "/queues"}), nethttp.StatusUnauthorized, ProblemTypeUnauthorized)
		requireProblem(t, b.do(t, request{method: "POST", target: "/queues/email/pause"}), nethttp.StatusUnauthorized, ProblemTypeUnauthorized)
	})
}

func TestStatsShowQueuesScheduledAndStuck(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	b.svc.QueuesFunc = twoQueues
	b.svc.StatsFunc = func() actors.Stats { return actors.Stats{Stuck: 2, Running: true} }
	b.svc.ListFunc = func(_ context.Context, f domain.Filter) (domain.Page, error) {
		if f.Statuses[0] == domain.StatusScheduled {
			return domain.Page{Total: 11}, nil
		}
		return domain.Page{}, nil
	}

	st := requireJSON[StatsResponse](t, b.do(t, request{method: "GET", target: "/stats"}), nethttp.StatusOK)

	require.Equal(t, 11, st.Counts.Scheduled)
	require.Equal(t, 2, st.Stuck)
	require.Equal(t, []QueueResponse{
		{Name: "default", Scheduled: 1, Pending: 2, Running: 3},
		{Name: "email", Paused: true, NodeLimit: 2, Pending: 7},
	}, st.Queues)
}

func TestQueueMetrics(t *testing.T) {
	t.Parallel()

	t.Run("Gauges", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		b.svc.QueuesFunc = twoQueues
		b.svc.StatsFunc = func() actors.Stats { return actors.Stats{Stuck: 3} }
		m := NewMetrics(b.registry)
		m.AttemptTimedOut(&domain.Job{Type: "report", Queue: "reports"})
		m.AttemptTimedOut(&domain.Job{Type: "report", Queue: "reports"})
		m.JobCreated(&domain.Job{Type: "send_email", Queue: "email"})

		body := b.do(t, request{method: "GET", target: "/metrics"}).Body.String()

		for _, line := range []string{
			`troupe_queue_depth{queue="default"} 2`,
			`troupe_queue_depth{queue="email"} 7`,
			`troupe_queue_paused{queue="default"} 0`,
			`troupe_queue_paused{queue="email"} 1`,
			`troupe_jobs_stuck 3`,
			`troupe_jobs_timed_out_total{queue="reports",type="report"} 2`,
			`troupe_jobs_created_total{queue="email",type="send_email"} 1`,
		} {
			require.Contains(t, body, line+"\n")
		}
	})

	t.Run("AStoreThatCannotListFailsTheQueueSeriesOnly", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		b.svc.QueuesFunc = func(context.Context) ([]actors.QueueInfo, error) { return nil, domain.ErrUnavailable }

		rec := b.do(t, request{method: "GET", target: "/metrics"})

		require.Contains(t, rec.Body.String(), "troupe_active_workers ")
		require.NotContains(t, rec.Body.String(), "troupe_queue_paused{")
	})
}

// settingsRefused is the runtime's refusal of settings, as
// actors.System.SetQueueSettings gives it: one *actors.FieldError per
// field that domain.QueueSettings.Validate refuses, joined.
func settingsRefused(s domain.QueueSettings) error {
	var out []error
	err := s.Validate()
	if err == nil {
		return nil
	}
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var se *domain.SettingError
		if errors.As(e, &se) {
			out = append(out, &actors.FieldError{Field: se.Field, Err: se.Err})
		}
	}
	return errors.Join(out...)
}

// settingsStored makes the fake's SetQueueSettings act as the runtime's:
// it refuses what the domain refuses, and otherwise records the settings
// in *got and answers the queue with them.
func settingsStored(got *domain.QueueSettings) func(context.Context, string, domain.QueueSettings) (actors.QueueInfo, error) {
	return func(_ context.Context, name string, s domain.QueueSettings) (actors.QueueInfo, error) {
		if err := settingsRefused(s); err != nil {
			return actors.QueueInfo{}, err
		}
		*got = s
		return actors.QueueInfo{QueueInfo: domain.QueueInfo{Name: name, Settings: s, Pending: 3}, Limit: 4}, nil
	}
}

func TestQueueSettings(t *testing.T) {
	t.Parallel()

	t.Run("ListShowsSettingsAndWaiting", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		b.svc.QueuesFunc = func(context.Context) ([]actors.QueueInfo, error) {
			return []actors.QueueInfo{{
				QueueInfo: domain.QueueInfo{Name: "api", Pending: 9, Running: 10, Settings: domain.QueueSettings{
					Limit:   10,
					Rate:    &domain.Rate{Count: 20, Per: time.Second, Burst: 40},
					PerKey:  &domain.KeyLimits{Limit: 1, Rate: &domain.Rate{Count: 5, Per: time.Minute}},
					Ordered: true, Fair: true,
				}},
				Limit:   3,
				Waiting: map[domain.WaitReason]int{domain.WaitQueueLimit: 6, domain.WaitKeyOrder: 2, domain.WaitKeyRate: 1},
			}}, nil
		}

		rec := b.do(t, request{method: "GET", target: "/queues"})

		require.Equal(t, nethttp.StatusOK, rec.Code)
		require.JSONEq(t, `{"queues":[{"name":"api","paused":false,"limit":10,
			"rate":{"count":20,"per":"1s","burst":40},
			"perKey":{"limit":1,"rate":{"count":5,"per":"1m0s"}},
			"ordered":true,"fair":true,"nodeLimit":3,"scheduled":0,"pending":9,"running":10,
			"waiting":{"queue limit":6,"queue rate":0,"key limit":0,"key order":2,"key rate":1}}]}`, rec.Body.String())
	})

	t.Run("PutReplacesAll", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		var got domain.QueueSettings
		b.svc.SetQueueSettingsFunc = settingsStored(&got)

		rec := b.do(t, request{method: "PUT", target: "/queues/api", body: `{"limit":10,
			"rate":{"count":20,"per":"1s","burst":20},
			"perKey":{"limit":1,"rate":{"count":5,"per":"1m"}},"ordered":true,"fair":true}`})

		require.Equal(t, domain.QueueSettings{
			Limit:   10,
			Rate:    &domain.Rate{Count: 20, Per: time.Second, Burst: 20},
			PerKey:  &domain.KeyLimits{Limit: 1, Rate: &domain.Rate{Count: 5, Per: time.Minute}},
			Ordered: true, Fair: true,
		}, got)
		q := requireJSON[QueueResponse](t, rec, nethttp.StatusOK)
		require.Equal(t, QueueResponse{
			Name: "api", Limit: 10,
			Rate:    &RateSetting{Count: 20, Per: "1s", Burst: 20},
			PerKey:  &KeyLimitsSetting{Limit: 1, Rate: &RateSetting{Count: 5, Per: "1m0s"}},
			Ordered: true, Fair: true, NodeLimit: 4, Pending: 3,
		}, q)
	})

	t.Run("PutPeriods", func(t *testing.T) {
		t.Parallel()
		for per, want := range map[string]time.Duration{"1s": time.Second, "1m": time.Minute, "1h": time.Hour, "500ms": 500 * time.Millisecond} {
			b := setup(t, Config{})
			var got domain.QueueSettings
			b.svc.SetQueueSettingsFunc = settingsStored(&got)

			rec := b.do(t, request{method: "PUT", target: "/queues/api", body: `{"rate":{"count":1,"per":"` + per + `"}}`})

			require.Equal(t, nethttp.StatusOK, rec.Code, rec.Body.String())
			require.Equal(t, &domain.Rate{Count: 1, Per: want}, got.Rate, per)
		}
	})

	t.Run("EmptyObjectClears", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		got := domain.QueueSettings{Limit: 99}
		b.svc.SetQueueSettingsFunc = settingsStored(&got)

		for _, body := range []string{`{}`, `{"rate":null,"perKey":null}`} {
			got = domain.QueueSettings{Limit: 99}
			rec := b.do(t, request{method: "PUT", target: "/queues/api", body: body})

			require.Equal(t, domain.QueueSettings{}, got, body)
			require.JSONEq(t, `{"name":"api","paused":false,"limit":0,"ordered":false,"fair":false,"nodeLimit":4,
				"scheduled":0,"pending":3,"running":0,
				"waiting":{"queue limit":0,"queue rate":0,"key limit":0,"key order":0,"key rate":0}}`, rec.Body.String())
		}
	})

	t.Run("EveryInvalidFieldIsNamed", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			name, body string
			fields     []string
		}{
			{"LimitNegative", `{"limit":-1}`, []string{"limit"}},
			{"LimitTooLarge", `{"limit":1000001}`, []string{"limit"}},
			{"RateCountZero", `{"rate":{"count":0,"per":"1s"}}`, []string{"rate.count"}},
			{"RatePerNegative", `{"rate":{"count":1,"per":"-1s"}}`, []string{"rate.per"}},
			{"RatePerTooShort", `{"rate":{"count":1,"per":"1us"}}`, []string{"rate.per"}},
			{"RatePerTooLong", `{"rate":{"count":1,"per":"25h"}}`, []string{"rate.per"}},
			{"RateBurstNegative", `{"rate":{"count":1,"per":"1s","burst":-1}}`, []string{"rate.burst"}},
			{"PerKeyEmpty", `{"perKey":{}}`, []string{"perKey"}},
			{"PerKeyLimitNegative", `{"perKey":{"limit":-2}}`, []string{"perKey.limit"}},
			{"PerKeyRateCount", `{"perKey":{"rate":{"count":-1,"per":"1m"}}}`, []string{"perKey.rate.count"}},
			{"PerKeyRatePer", `{"perKey":{"rate":{"count":1,"per":"0s"}}}`, []string{"perKey.rate.per"}},
			{"PerKeyRateBurst", `{"perKey":{"rate":{"count":1,"per":"1m","burst":-3}}}`, []string{"perKey.rate.burst"}},
			{"OrderedWithoutPerKey", `{"ordered":true}`, []string{"ordered"}},
			{"OrderedWithPerKeyLimit2", `{"perKey":{"limit":2},"ordered":true}`, []string{"ordered"}},
			{"All", `{"limit":-1,"rate":{"count":0,"per":"0s","burst":-1},
				"perKey":{"limit":-1,"rate":{"count":0,"per":"48h","burst":-1}},"ordered":true}`,
				[]string{"limit", "rate.count", "rate.per", "rate.burst", "perKey.limit",
					"perKey.rate.count", "perKey.rate.per", "perKey.rate.burst", "ordered"}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				b := setup(t, Config{})
				called := false
				b.svc.SetQueueSettingsFunc = func(ctx context.Context, name string, s domain.QueueSettings) (actors.QueueInfo, error) {
					called = true
					return settingsStored(new(domain.QueueSettings))(ctx, name, s)
				}

				rec := b.do(t, request{method: "PUT", target: "/queues/api", body: tt.body})

				requireInvalidFields(t, rec, tt.fields)
				require.True(t, called, "the runtime's rules name these fields")
			})
		}
	})

	t.Run("TheRuntimesMessagesAreKept", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		b.svc.SetQueueSettingsFunc = settingsStored(new(domain.QueueSettings))

		rec := b.do(t, request{method: "PUT", target: "/queues/api", body: `{"limit":-1}`})

		p := requireProblem(t, rec, nethttp.StatusBadRequest, ProblemTypeValidation)
		require.Equal(t, []FieldError{{Field: "limit", Message: "must be between 0 and 1000000, got -1"}}, p.Errors)
	})

	t.Run("PerNotADuration", func(t *testing.T) {
		t.Parallel()
		perMsg := `must be a Go duration between 1ms and 24h0m0s, such as "1s", "1m" or "500ms"`
		tests := []struct {
			name, body string
			want       []FieldError
		}{
			{"Words", `{"rate":{"count":1,"per":"a second"}}`, []FieldError{{"rate.per", perMsg}}},
			{"BareNumber", `{"rate":{"count":1,"per":"60"}}`, []FieldError{{"rate.per", perMsg}}},
			{"Absent", `{"rate":{"count":1}}`, []FieldError{{"rate.per", perMsg}}},
			{"NotAString", `{"rate":{"count":1,"per":60}}`, []FieldError{{"rate.per", "must be a string"}}},
			{"PerKey", `{"perKey":{"rate":{"count":5,"per":"minute"}}}`, []FieldError{{"perKey.rate.per", perMsg}}},
			{"WithTheRuntimesRules", `{"limit":-1,"rate":{"count":0,"per":"x"},"ordered":true}`, []FieldError{
				{"limit", "must be between 0 and 1000000, got -1"},
				{"rate.count", "must be between 1 and 1000000, got 0"},
				{"rate.per", perMsg},
				{"ordered", "needs perKey.limit 1: a key's jobs run one at a time to run in order"},
			}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				b := setup(t, Config{}) // nothing may reach the service

				rec := b.do(t, request{method: "PUT", target: "/queues/api", body: tt.body})

				p := requireProblem(t, rec, nethttp.StatusBadRequest, ProblemTypeValidation)
				require.Equal(t, tt.want, p.Errors)
			})
		}
	})

	t.Run("MalformedBodies", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			name, body string
			typ        string
			fields     []string
		}{
			{"UnknownMember", `{"limit":1,"concurrency":2}`, ProblemTypeValidation, []string{"concurrency"}},
			{"MemberInTheWrongCase", `{"Limit":1}`, ProblemTypeValidation, []string{"Limit"}},
			{"UnknownRateMember", `{"rate":{"count":1,"per":"1s","window":"1m"}}`, ProblemTypeValidation, []string{"rate.window"}},
			{"UnknownPerKeyMember", `{"perKey":{"limit":1,"ordered":true}}`, ProblemTypeValidation, []string{"perKey.ordered"}},
			{"UnknownPerKeyRateMember", `{"perKey":{"rate":{"count":1,"per":"1s","x":1}}}`, ProblemTypeValidation, []string{"perKey.rate.x"}},
			{"DuplicateMember", `{"limit":1,"limit":2}`, ProblemTypeValidation, []string{"limit"}},
			{"LimitNotAnInteger", `{"limit":"ten"}`, ProblemTypeValidation, []string{"limit"}},
			{"RateNotAnObject", `{"rate":"20/s"}`, ProblemTypeValidation, []string{"rate"}},
			{"PerKeyNotAnObject", `{"perKey":1}`, ProblemTypeValidation, []string{"perKey"}},
			{"CountNotAnInteger", `{"rate":{"count":1.5,"per":"1s"}}`, ProblemTypeValidation, []string{"rate.count"}},
			{"PerKeyNotAnObjectWithOrdered", `{"perKey":[1],"ordered":true}`, ProblemTypeValidation, []string{"perKey"}},
			{"WithTheRuntimesRules", `{"limit":-1,"rate":{"count":1,"per":"1s","x":1}}`, ProblemTypeValidation, []string{"limit", "rate.x"}},
			{"NotAnObject", `[]`, ProblemTypeInvalidRequest, nil},
			{"NotJSON", `{limit:1}`, ProblemTypeInvalidRequest, nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				b := setup(t, Config{}) // nothing may reach the service

				rec := b.do(t, request{method: "PUT", target: "/queues/api", body: tt.body})

				p := requireProblem(t, rec, nethttp.StatusBadRequest, tt.typ)
				if tt.fields != nil {
					requireInvalidFields(t, rec, tt.fields)
				} else {
					require.Empty(t, p.Errors)
				}
			})
		}
	})

	t.Run("EmptyBody", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})

		rec := b.do(t, request{method: "PUT", target: "/queues/api", header: map[string]string{"Content-Type": "application/json"}})

		requireProblem(t, rec, nethttp.StatusBadRequest, ProblemTypeInvalidRequest)
	})

	t.Run("BadName", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})

		for _, target := range []string{"/queues/Email", "/queues/-x", "/queues/a%20b"} {
			rec := b.do(t, request{method: "PUT", target: target, body: `{}`})
			p := requireProblem(t, rec, nethttp.StatusBadRequest, ProblemTypeValidation)
			require.Equal(t, []FieldError{{Field: "name", Message: queueNameRule}}, p.Errors, target)
		}
	})

	t.Run("StoreErrors", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		b.svc.SetQueueSettingsFunc = func(context.Context, string, domain.QueueSettings) (actors.QueueInfo, error) {
			return actors.QueueInfo{}, fmt.Errorf("set queue api settings: %w", domain.ErrUnavailable)
		}

		requireProblem(t, b.do(t, request{method: "PUT", target: "/queues/api", body: `{"limit":1}`}),
			nethttp.StatusServiceUnavailable, ProblemTypeUnavailable)
	})

	t.Run("AnInvalidErrorWithoutFieldsIsARequestError", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		b.svc.SetQueueSettingsFunc = func(context.Context, string, domain.QueueSettings) (actors.QueueInfo, error) {
			return actors.QueueInfo{}, fmt.Errorf("%w: queue name", domain.ErrInvalid)
		}

		requireProblem(t, b.do(t, request{method: "PUT", target: "/queues/api", body: `{}`}),
			nethttp.StatusBadRequest, ProblemTypeInvalidRequest)
	})

	t.Run("NotJSON", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})

		rec := b.do(t, request{method: "PUT", target: "/queues/api", body: `{}`, header: map[string]string{"Content-Type": "text/plain"}})

		requireProblem(t, rec, nethttp.StatusUnsupportedMediaType, ProblemTypeUnsupportedMediaType)
	})

	t.Run("NeedsAToken", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{APITokens: []string{"secret"}})

		requireProblem(t, b.do(t, request{method: "PUT", target: "/queues/api", body: `{}`}), nethttp.StatusUnauthorized, ProblemTypeUnauthorized)
	})
}

func TestJobsWaitingMetric(t *testing.T) {
	t.Parallel()

	t.Run("ByQueueAndReason", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		calls := 0
		b.svc.WaitingCountsFunc = func(context.Context) ([]domain.WaitingCount, error) {
			calls++
			return []domain.WaitingCount{
				{Queue: "api", Reason: domain.WaitQueueLimit, Count: 7},
				{Queue: "api", Reason: domain.WaitKeyOrder, Count: 2},
				{Queue: "sync", Reason: domain.WaitKeyRate, Count: 1},
			}, nil
		}

		body := b.do(t, request{method: "GET", target: "/metrics"}).Body.String()

		for _, line := range []string{
			"# TYPE troupe_jobs_waiting gauge",
			`troupe_jobs_waiting{queue="api",reason="queue limit"} 7`,
			`troupe_jobs_waiting{queue="api",reason="key order"} 2`,
			`troupe_jobs_waiting{queue="sync",reason="key rate"} 1`,
		} {
			require.Contains(t, body, line+"\n")
		}
		require.Equal(t, 1, calls, "one call per scrape")
	})

	t.Run("NoneWaitingNoSeries", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})

		body := b.do(t, request{method: "GET", target: "/metrics"}).Body.String()

		require.NotContains(t, body, "troupe_jobs_waiting{")
	})

	t.Run("AnErrorGivesNoSamplesAndADebugLog", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		b.svc.QueuesFunc = twoQueues
		b.svc.WaitingCountsFunc = func(context.Context) ([]domain.WaitingCount, error) {
			return nil, errors.New("count waiting jobs: flow control not implemented")
		}

		rec := b.do(t, request{method: "GET", target: "/metrics"})

		require.Equal(t, nethttp.StatusOK, rec.Code)
		require.NotContains(t, rec.Body.String(), "troupe_jobs_waiting{")
		require.Contains(t, rec.Body.String(), `troupe_queue_depth{queue="email"} 7`+"\n", "the rest of the scrape is served")
		require.Contains(t, b.logs.String(), "flow control not implemented")
		require.Contains(t, b.logs.String(), `"level":"DEBUG"`)
	})
}

func TestJobKeyAndWaitingFor(t *testing.T) {
	t.Parallel()

	t.Run("OnTheWire", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		job := newTestJob(t, domain.StatusPending)
		job.Key, job.WaitingFor = "customer:42", domain.WaitKeyLimit
		b.svc.holdOnly(job)

		view := b.do(t, request{method: "GET", target: jobsPath(job.ID)})
		list := b.do(t, request{method: "GET", target: "/jobs?key=customer:42"})

		got := requireJSON[JobResponse](t, view, nethttp.StatusOK)
		require.Equal(t, "customer:42", got.Key)
		require.Equal(t, domain.WaitKeyLimit, got.WaitingFor)
		require.Contains(t, view.Body.String(), `"key":"customer:42"`)
		require.Contains(t, view.Body.String(), `"waitingFor":"key limit"`)
		page := requireJSON[ListResponse](t, list, nethttp.StatusOK)
		require.Equal(t, "customer:42", page.Jobs[0].Key)
		require.Equal(t, domain.WaitKeyLimit, page.Jobs[0].WaitingFor)
	})

	t.Run("AbsentWhenEmpty", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		job := newTestJob(t, domain.StatusPending)
		b.svc.holdOnly(job)

		rec := b.do(t, request{method: "GET", target: jobsPath(job.ID)})

		require.Equal(t, nethttp.StatusOK, rec.Code)
		require.NotContains(t, rec.Body.String(), `"key"`)
		require.NotContains(t, rec.Body.String(), `"waitingFor"`)
	})
}
