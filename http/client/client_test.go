package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/http/client"
)

func TestNewChecksTheBaseURL(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"", "127.0.0.1:8080", "ftp://h", "http://", "://x"} {
		_, err := client.New(bad)
		require.Error(t, err, bad)
	}
	c, err := client.New("https://troupe.example/api/")
	require.NoError(t, err)
	require.Equal(t, "https://troupe.example/api", c.BaseURL())
}

func TestProblems(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/jobs/" + uuid.Nil.String():
			problem(w, 404, client.ProblemNotFound, "job "+uuid.Nil.String()+" not found")
		case "/jobs":
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(400)
			_, _ = io.WriteString(w, `{"type":"urn:troupe:problem:validation","title":"Validation failed","status":400,"detail":"bad","errors":[{"field":"priority","message":"must be from 1 to 9"}]}`)
		default:
			http.Error(w, "upstream gone", http.StatusBadGateway)
		}
	}))
	t.Cleanup(srv.Close)
	c, err := client.New(srv.URL, client.WithRetries(0))
	require.NoError(t, err)

	_, err = c.Get(t.Context(), uuid.Nil)
	var p *client.Problem
	require.ErrorAs(t, err, &p)
	require.Equal(t, client.ProblemNotFound, p.Type)
	require.Equal(t, 404, p.Status)
	require.True(t, client.IsNotFound(err))
	require.False(t, client.IsLeaseLost(err))
	require.Equal(t, "job "+uuid.Nil.String()+" not found (404 Not Found)", err.Error())

	_, _, err = c.Submit(t.Context(), client.SubmitRequest{Type: "noop", Priority: 12})
	require.ErrorAs(t, err, &p)
	require.True(t, client.IsInvalid(err))
	require.Equal(t, []client.FieldError{{Field: "priority", Message: "must be from 1 to 9"}}, p.Errors)

	_, err = c.Stats(t.Context())
	require.ErrorAs(t, err, &p)
	require.Equal(t, "about:blank", p.Type)
	require.Equal(t, 502, p.Status)
	require.Equal(t, "the server answered 502 Bad Gateway: upstream gone", err.Error())
}

func TestSubmitRetriesWithTheSameIdempotencyKey(t *testing.T) {
	t.Parallel()
	var (
		mu   sync.Mutex
		keys []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		keys = append(keys, r.Header.Get(client.HeaderIdempotencyKey))
		n := len(keys)
		mu.Unlock()
		if n%2 == 1 {
			// The first try of each call finds the server busy.
			w.Header().Set("Retry-After", "0")
			problem(w, 503, client.ProblemUnavailable, "starting")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(201)
		_ = json.NewEncoder(w).Encode(map[string]any{"id": uuid.New(), "type": "noop", "status": "pending"})
	}))
	t.Cleanup(srv.Close)
	c := newTestClient(t, srv.URL)
	job, created, err := c.Submit(t.Context(), client.SubmitRequest{Type: "noop"})
	require.NoError(t, err)
	require.True(t, created)
	require.Equal(t, domain.StatusPending, job.Status)
	_, _, err = c.Submit(t.Context(), client.SubmitRequest{Type: "noop"})
	require.NoError(t, err)
	_, _, err = c.Submit(t.Context(), client.SubmitRequest{Type: "noop"}, client.IdempotencyKey("mine"))
	require.NoError(t, err)

	mu.Lock()
	defer mu.Unlock()
	require.Len(t, keys, 6)
	require.NotEmpty(t, keys[0])
	require.Equal(t, keys[0], keys[1], "a retry sends the call's key again")
	require.Equal(t, keys[2], keys[3])
	require.NotEqual(t, keys[0], keys[2], "each call has its own key")
	require.Equal(t, []string{"mine", "mine"}, keys[4:])
}

func TestAllPages(t *testing.T) {
	t.Parallel()
	const total = 125
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		var limit, offset int
		_, _ = fmt.Sscan(r.URL.Query().Get("limit"), &limit)
		_, _ = fmt.Sscan(r.URL.Query().Get("offset"), &offset)
		require.Equal(t, []string{"failed", "canceled"}, r.URL.Query()["status"])
		jobs := []map[string]any{}
		for i := offset; i < min(offset+limit, total); i++ {
			jobs = append(jobs, map[string]any{"id": uuid.NewSHA1(uuid.Nil, fmt.Append(nil, i)), "type": "noop", "priority": i})
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"jobs": jobs, "total": total, "limit": limit, "offset": offset})
	}))
	t.Cleanup(srv.Close)
	c := newTestClient(t, srv.URL)
	f := client.Filter{Statuses: []domain.Status{domain.StatusFailed, domain.StatusCanceled}, Limit: 50}
	n := 0
	for job, err := range c.All(t.Context(), f) {
		require.NoError(t, err)
		require.Equal(t, n, job.Priority, "in order, none twice")
		n++
	}
	require.Equal(t, total, n)
	require.EqualValues(t, 3, requests.Load())

	n = 0
	for _, err := range c.All(t.Context(), f) {
		require.NoError(t, err)
		if n++; n == 10 {
			break
		}
	}
	require.EqualValues(t, 4, requests.Load(), "stopping early reads no more pages")
}

func TestWaitReconnectsAndFallsBackToGet(t *testing.T) {
	t.Parallel()
	id := uuid.New()
	jobJSON := func(status string) string {
		return fmt.Sprintf(`{"id":%q,"type":"noop","status":%q,"result":{"ok":true}}`, id, status)
	}

	t.Run("the stream breaks before the end: reconnect", func(t *testing.T) {
		t.Parallel()
		var streams atomic.Int64
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/jobs/" + id.String() + "/events":
				w.Header().Set("Content-Type", "text/event-stream")
				if streams.Add(1) == 1 {
					fmt.Fprintf(w, "retry: 2000\n\n: hi\n\nevent: job\nid: 1\ndata: %s\n\n", jobJSON("running"))
					return // cut
				}
				fmt.Fprintf(w, "event: job\ndata: %s\n\n", jobJSON("running"))
				fmt.Fprintf(w, "event: job\ndata: %s\n\n", jobJSON("completed"))
			case "/jobs/" + id.String():
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(w, jobJSON("running"))
			}
		}))
		t.Cleanup(srv.Close)
		job, err := newTestClient(t, srv.URL).Wait(t.Context(), id)
		require.NoError(t, err)
		require.Equal(t, domain.StatusCompleted, job.Status)
		require.JSONEq(t, `{"ok":true}`, string(job.Result))
		require.EqualValues(t, 2, streams.Load())
	})

	t.Run("no stream: Get says it is over", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/jobs/"+id.String() {
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(w, jobJSON("failed"))
				return
			}
			http.Error(w, "streams are not allowed here", http.StatusServiceUnavailable)
		}))
		t.Cleanup(srv.Close)
		c, err := client.New(srv.URL, client.WithRetries(0))
		require.NoError(t, err)
		job, err := c.Wait(t.Context(), id)
		require.NoError(t, err)
		require.Equal(t, domain.StatusFailed, job.Status)
	})

	t.Run("an unknown job is an error at once; a context end stops the wait", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/jobs/"+uuid.Nil.String()+"/events" {
				problem(w, 404, client.ProblemNotFound, "no such job")
				return
			}
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprintf(w, "event: job\ndata: %s\n\n", jobJSON("running"))
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		}))
		t.Cleanup(srv.Close)
		c := newTestClient(t, srv.URL)
		_, err := c.Wait(t.Context(), uuid.Nil)
		require.True(t, client.IsNotFound(err), "%v", err)
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		_, err = c.Wait(ctx, id)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.False(t, errors.As(err, new(*client.Problem)))
	})
}

func TestAFailureWithoutAnErrorIsRefused(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, "http://127.0.0.1:1")
	_, err := c.ReportOutcomes(t.Context(), []client.Outcome{{ID: uuid.Nil, LeaseToken: "t", Failure: &client.Failure{}}})
	require.ErrorContains(t, err, "a failure needs an error message")
}
