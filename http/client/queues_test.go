package client_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/http/client"
)

// fakeQueues serves PUT and GET /queues and the job routes that carry a
// key, as the contract describes them, and records the requests.
type fakeQueues struct {
	mu       sync.Mutex
	settings map[string]json.RawMessage
	methods  []string
	bodies   []string
	queries  []string
}

func (f *fakeQueues) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.methods = append(f.methods, r.Method+" "+r.URL.EscapedPath())
	f.bodies = append(f.bodies, string(body))
	f.queries = append(f.queries, r.URL.RawQuery)
	w.Header().Set("Content-Type", "application/json")
	queue := func(name string) map[string]any {
		q := map[string]any{"name": name, "paused": false, "limit": 0, "ordered": false, "fair": false, "nodeLimit": 2,
			"scheduled": 0, "pending": 7, "running": 3,
			"waiting": map[string]int{"queue limit": 4, "queue rate": 0, "key limit": 2, "key order": 1, "key rate": 0}}
		var s map[string]any
		_ = json.Unmarshal(f.settings[name], &s)
		for k, v := range s {
			if k == "rate" {
				// The server renders per with time.Duration.String.
				rate := v.(map[string]any)
				d, _ := time.ParseDuration(rate["per"].(string))
				rate["per"] = d.String()
			}
			q[k] = v
		}
		return q
	}
	switch {
	case r.Method == http.MethodPut && r.URL.Path == "/queues/emails":
		var s map[string]any
		if err := json.Unmarshal(body, &s); err != nil {
			problem(w, 400, client.ProblemValidation, "bad body")
			return
		}
		if rate, ok := s["rate"].(map[string]any); ok {
			if d, err := time.ParseDuration(rate["per"].(string)); err != nil || d <= 0 {
				w.Header().Set("Content-Type", "application/problem+json")
				w.WriteHeader(400)
				_, _ = io.WriteString(w, `{"type":"urn:troupe:problem:validation","title":"Validation failed","status":400,"detail":"bad settings","errors":[{"field":"rate.per","message":"want a duration"}]}`)
				return
			}
		}
		f.settings["emails"] = body
		_ = json.NewEncoder(w).Encode(queue("emails"))
	case r.Method == http.MethodGet && r.URL.Path == "/queues":
		_ = json.NewEncoder(w).Encode(map[string]any{"queues": []any{queue("emails")}})
	case r.Method == http.MethodPost && r.URL.Path == "/jobs":
		var req map[string]any
		_ = json.Unmarshal(body, &req)
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(map[string]any{"id": uuid.New(), "type": req["type"], "status": "pending",
			"queue": "emails", "key": req["key"], "waitingFor": "key order"})
	case r.Method == http.MethodGet && r.URL.Path == "/jobs":
		_ = json.NewEncoder(w).Encode(map[string]any{"jobs": []any{map[string]any{"id": uuid.New(), "type": "noop", "status": "pending",
			"key": r.URL.Query().Get("key")}}, "total": 1, "limit": 50, "offset": 0})
	default:
		problem(w, 404, client.ProblemNotFound, "no route "+r.URL.Path)
	}
}

func (f *fakeQueues) last() (method, body, query string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := len(f.methods) - 1
	return f.methods[n], f.bodies[n], f.queries[n]
}

func TestSetQueueSendsEverySettingAndReadsTheQueue(t *testing.T) {
	t.Parallel()
	fake := &fakeQueues{settings: map[string]json.RawMessage{}}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	c := newTestClient(t, srv.URL)

	q, err := c.SetQueue(t.Context(), "emails", client.QueueSettings{
		Limit:   10,
		Rate:    &client.Rate{Count: 20, Per: time.Second},
		PerKey:  &client.KeyLimits{Limit: 1, Rate: &client.Rate{Count: 5, Per: time.Minute, Burst: 2}},
		Ordered: true,
		Fair:    true,
	})
	require.NoError(t, err)
	method, body, _ := fake.last()
	require.Equal(t, "PUT /queues/emails", method)
	require.JSONEq(t, `{"limit":10,"rate":{"count":20,"per":"1s"},
		"perKey":{"limit":1,"rate":{"count":5,"per":"1m0s","burst":2}},"ordered":true,"fair":true}`, body)

	want := client.Queue{
		Name: "emails",
		QueueSettings: client.QueueSettings{
			Limit:   10,
			Rate:    &client.Rate{Count: 20, Per: time.Second},
			PerKey:  &client.KeyLimits{Limit: 1, Rate: &client.Rate{Count: 5, Per: time.Minute, Burst: 2}},
			Ordered: true,
			Fair:    true,
		},
		NodeLimit: 2, Pending: 7, Running: 3,
		Waiting: map[domain.WaitReason]int{
			domain.WaitQueueLimit: 4, domain.WaitQueueRate: 0, domain.WaitKeyLimit: 2, domain.WaitKeyOrder: 1, domain.WaitKeyRate: 0,
		},
	}
	require.Equal(t, want, *q)
	queues, err := c.Queues(t.Context())
	require.NoError(t, err)
	require.Equal(t, []client.Queue{want}, queues)

	// The zero settings clear them all: PUT replaces every setting.
	q, err = c.SetQueue(t.Context(), "emails", client.QueueSettings{})
	require.NoError(t, err)
	_, body, _ = fake.last()
	require.JSONEq(t, `{}`, body)
	require.Zero(t, q.QueueSettings)

	// A refused setting is a validation problem naming the field.
	_, err = c.SetQueue(t.Context(), "emails", client.QueueSettings{Rate: &client.Rate{Count: 1, Per: -time.Second}})
	require.True(t, client.IsInvalid(err), "%v", err)
	var p *client.Problem
	require.ErrorAs(t, err, &p)
	require.Equal(t, "rate.per", p.Errors[0].Field)
}

func TestJobKeys(t *testing.T) {
	t.Parallel()
	fake := &fakeQueues{settings: map[string]json.RawMessage{}}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	c := newTestClient(t, srv.URL)

	job, created, err := c.Submit(t.Context(), client.SubmitRequest{Type: "sync", Key: "customer-42"})
	require.NoError(t, err)
	require.True(t, created)
	_, body, _ := fake.last()
	require.JSONEq(t, `{"type":"sync","key":"customer-42"}`, body)
	require.Equal(t, "customer-42", job.Key)
	require.Equal(t, domain.WaitKeyOrder, job.WaitingFor)

	_, _, err = c.Submit(t.Context(), client.SubmitRequest{Type: "sync"})
	require.NoError(t, err)
	_, body, _ = fake.last()
	require.JSONEq(t, `{"type":"sync"}`, body, "no key sends none")

	page, err := c.List(t.Context(), client.Filter{Key: "customer-42", Queue: "emails"})
	require.NoError(t, err)
	_, _, query := fake.last()
	require.Equal(t, "key=customer-42&queue=emails", query)
	require.Equal(t, "customer-42", page.Jobs[0].Key)
	require.Empty(t, page.Jobs[0].WaitingFor)
}

func TestRateJSON(t *testing.T) {
	t.Parallel()
	var r client.Rate
	require.NoError(t, json.Unmarshal([]byte(`{"count":3,"per":"1h0m0s","burst":9}`), &r))
	require.Equal(t, client.Rate{Count: 3, Per: time.Hour, Burst: 9}, r)
	require.Error(t, json.Unmarshal([]byte(`{"count":3,"per":"hourly"}`), &r))
	out, err := json.Marshal(client.Rate{Count: 10, Per: 90 * time.Second})
	require.NoError(t, err)
	require.JSONEq(t, `{"count":10,"per":"1m30s"}`, string(out))
}
