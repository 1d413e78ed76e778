package client_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/troupe-go/troupe/domain"
)

// fakeWorkers serves the worker protocol from memory, as the contract
// describes it, so that the Worker can be tested before and apart from
// the real server.
type fakeWorkers struct {
	t     *testing.T
	mu    sync.Mutex
	jobs  map[uuid.UUID]*fakeJob
	order []uuid.UUID
	// claims and reports record the size of each request.
	claims, reports []int
	heartbeats      int
	changed         chan struct{}
}

type fakeJob struct {
	id              uuid.UUID
	typ             string
	payload         string
	status          domain.Status
	attempts        int
	token           string
	cancelRequested bool
	progress        *struct {
		Percent float64 `json:"percent"`
		Message string  `json:"message"`
	}
	result    json.RawMessage
	lastError string
	permanent bool
	retryIn   string
}

func newFakeWorkers(t *testing.T) (*fakeWorkers, *httptest.Server) {
	f := &fakeWorkers{t: t, jobs: map[uuid.UUID]*fakeJob{}, changed: make(chan struct{}, 1)}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakeWorkers) add(typ, payload string) uuid.UUID {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := uuid.New()
	f.jobs[id] = &fakeJob{id: id, typ: typ, payload: payload, status: domain.StatusPending}
	f.order = append(f.order, id)
	return id
}

// job returns a copy of the job's state.
func (f *fakeWorkers) job(id uuid.UUID) fakeJob {
	f.mu.Lock()
	defer f.mu.Unlock()
	return *f.jobs[id]
}

// update changes a job under the lock.
func (f *fakeWorkers) update(id uuid.UUID, change func(*fakeJob)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	change(f.jobs[id])
}

// waitFor waits until cond holds of the fake's state, or fails the test.
func (f *fakeWorkers) waitFor(what string, cond func() bool) {
	f.t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		f.mu.Lock()
		ok := cond()
		f.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-f.changed:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			f.t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func (f *fakeWorkers) notify() {
	select {
	case f.changed <- struct{}{}:
	default:
	}
}

func problem(w http.ResponseWriter, status int, typ, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"type": typ, "title": http.StatusText(status), "status": status, "detail": detail})
}

func (f *fakeWorkers) render(j *fakeJob) map[string]any {
	m := map[string]any{
		"id": j.id, "type": j.typ, "payload": json.RawMessage(j.payload), "status": j.status, "attempts": j.attempts,
		"maxAttempts": 3, "lastError": j.lastError, "queue": "default", "priority": 5,
		"createdAt": time.Now().UTC(), "updatedAt": time.Now().UTC(),
	}
	if j.result != nil {
		m["result"] = j.result
	}
	return m
}

func (f *fakeWorkers) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	defer f.notify()
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/workers/claim":
		var req struct {
			Types  []string `json:"types"`
			Max    int      `json:"max"`
			Wait   string   `json:"wait"`
			Lease  string   `json:"lease"`
			Worker string   `json:"worker"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Types) == 0 || req.Max < 1 || req.Max > 100 {
			problem(w, 400, "urn:troupe:problem:validation", "bad claim")
			return
		}
		lease, err := time.ParseDuration(req.Lease)
		if err != nil {
			lease = 30 * time.Second
		}
		jobs := []map[string]any{}
		for _, id := range f.order {
			j := f.jobs[id]
			if len(jobs) == req.Max {
				break
			}
			if j.status != domain.StatusPending || !contains(req.Types, j.typ) {
				continue
			}
			j.status, j.attempts, j.token = domain.StatusRunning, j.attempts+1, uuid.NewString()
			m := f.render(j)
			m["attempt"], m["leaseToken"], m["leaseExpiresAt"] = j.attempts, j.token, time.Now().Add(lease).UTC()
			jobs = append(jobs, m)
		}
		f.claims = append(f.claims, len(jobs))
		if len(jobs) == 0 {
			// A short long-poll, enough for the tests.
			f.mu.Unlock()
			time.Sleep(20 * time.Millisecond)
			f.mu.Lock()
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"jobs": jobs})
	case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/heartbeat"):
		id, err := uuid.Parse(strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/jobs/"), "/heartbeat"))
		j := f.jobs[id]
		if err != nil || j == nil {
			problem(w, 404, "urn:troupe:problem:not-found", "no such job")
			return
		}
		var req struct {
			LeaseToken string `json:"leaseToken"`
			Progress   *struct {
				Percent float64 `json:"percent"`
				Message string  `json:"message"`
			} `json:"progress"`
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		f.heartbeats++
		if j.status != domain.StatusRunning || req.LeaseToken != j.token {
			problem(w, 409, "urn:troupe:problem:lease-lost", "the token does not hold the job's running attempt")
			return
		}
		if req.Progress != nil {
			j.progress = req.Progress
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"leaseExpiresAt": time.Now().Add(time.Minute).UTC(), "cancelRequested": j.cancelRequested})
	case r.Method == http.MethodPost && r.URL.Path == "/workers/outcomes":
		var req struct {
			Outcomes []struct {
				ID         uuid.UUID       `json:"id"`
				LeaseToken string          `json:"leaseToken"`
				Result     json.RawMessage `json:"result"`
				Error      string          `json:"error"`
				Permanent  bool            `json:"permanent"`
				RetryIn    string          `json:"retryIn"`
			} `json:"outcomes"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Outcomes) == 0 {
			problem(w, 400, "urn:troupe:problem:validation", "bad outcomes")
			return
		}
		f.reports = append(f.reports, len(req.Outcomes))
		out := []map[string]any{}
		for _, o := range req.Outcomes {
			j := f.jobs[o.ID]
			if j == nil || j.status != domain.StatusRunning || j.token != o.LeaseToken {
				out = append(out, map[string]any{"id": o.ID, "problem": map[string]any{
					"type": "urn:troupe:problem:lease-lost", "title": "Lease lost", "status": 409, "detail": "lost"}})
				continue
			}
			switch {
			case o.Error == "":
				j.status, j.result = domain.StatusCompleted, o.Result
			case j.cancelRequested:
				j.status, j.lastError = domain.StatusCanceled, o.Error
			case o.Permanent:
				j.status, j.lastError, j.permanent = domain.StatusFailed, o.Error, true
			default:
				j.status, j.lastError, j.retryIn = domain.StatusScheduled, o.Error, o.RetryIn
			}
			j.token = ""
			out = append(out, map[string]any{"id": o.ID, "status": j.status})
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"outcomes": out})
	default:
		problem(w, 404, "urn:troupe:problem:not-found", "no route "+r.URL.Path)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
