package http

import (
	"context"
	"fmt"
	"log/slog"
	nethttp "net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/actors"
	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/internal/syncbuf"
	"github.com/troupe-go/troupe/persistence/memstore"
)

// fakeDSN is what a database driver says when it cannot connect: the
// database's address, user and name. No client may ever read it.
const fakeDSN = "host=db.internal port=5432 user=admin database=troupe"

// outageStore is a store whose database is out of reach while down is
// set: every call fails with a driver's message around ErrUnavailable.
type outageStore struct {
	*memstore.Store
	down atomic.Bool
}

func (s *outageStore) fail(op string) error {
	if !s.down.Load() {
		return nil
	}
	return fmt.Errorf("pgstore: %s: %w (failed to connect to `%s`: dial tcp 10.9.8.7:5432: connect: connection refused)", op, domain.ErrUnavailable, fakeDSN)
}

func (s *outageStore) Create(ctx context.Context, jobs ...*domain.Job) error {
	if err := s.fail("create"); err != nil {
		return err
	}
	return s.Store.Create(ctx, jobs...)
}

func (s *outageStore) Insert(ctx context.Context, now time.Time, jobs []*domain.Job) ([]*domain.Job, error) {
	if err := s.fail("insert"); err != nil {
		return nil, err
	}
	return s.Store.Insert(ctx, now, jobs)
}

func (s *outageStore) Get(ctx context.Context, id uuid.UUID) (*domain.Job, error) {
	if err := s.fail("get"); err != nil {
		return nil, err
	}
	return s.Store.Get(ctx, id)
}

func (s *outageStore) Update(ctx context.Context, jobs ...*domain.Job) error {
	if err := s.fail("update"); err != nil {
		return err
	}
	return s.Store.Update(ctx, jobs...)
}

func (s *outageStore) List(ctx context.Context, f domain.Filter) (domain.Page, error) {
	if err := s.fail("list"); err != nil {
		return domain.Page{}, err
	}
	return s.Store.List(ctx, f)
}

func (s *outageStore) Ping(ctx context.Context) error {
	if err := s.fail("ping"); err != nil {
		return err
	}
	return s.Store.Ping(ctx)
}

// TestOutageAnswers runs the API over a real runtime whose store's
// database is down: every answer is a 503 with Retry-After in Troupe's
// words, and the driver's text is in the log under the request ID.
func TestOutageAnswers(t *testing.T) {
	t.Parallel()
	store := &outageStore{Store: memstore.New()}
	sys, err := actors.New(store, actors.WithWorkers(1), actors.WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)
	require.NoError(t, sys.Register("noop", domain.HandlerFunc(func(context.Context, []byte) error { return nil })))
	require.NoError(t, sys.Start(t.Context()))
	t.Cleanup(func() {
		store.down.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, sys.Stop(ctx))
		waitForActorsToSettle(t)
	})
	logs := &syncbuf.Buffer{}
	// No tokens: anyone may read /health's reasons.
	s, err := NewServer(Config{Addr: "127.0.0.1:0"}, Runtime(sys),
		WithLogger(slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	require.NoError(t, err)

	// Due later, so that it waits in the store: a job that ran before the
	// store went down would be answered by its actor without the store.
	stored, err := sys.Submit(t.Context(), actors.SubmitParams{Type: "noop", MaxAttempts: 1, Delay: time.Hour})
	require.NoError(t, err)
	store.down.Store(true)

	for _, r := range []request{
		{method: "POST", target: "/jobs", body: `{"type":"noop"}`},
		{method: "POST", target: "/jobs/batch", body: `{"jobs":[{"type":"noop"},{"type":"noop"}]}`},
		{method: "GET", target: "/jobs"},
		{method: "GET", target: jobsPath(stored.ID)},
		{method: "DELETE", target: jobsPath(stored.ID)},
		{method: "POST", target: jobsPath(stored.ID) + "/retry"},
		{method: "GET", target: "/health"},
	} {
		t.Run(r.method+" "+r.target, func(t *testing.T) {
			var body *strings.Reader
			if r.body != "" {
				body = strings.NewReader(r.body)
			} else {
				body = strings.NewReader("")
			}
			req := httptest.NewRequest(r.method, r.target, body)
			if r.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			rec := httptest.NewRecorder()
			s.Handler().ServeHTTP(rec, req)

			require.Equal(t, nethttp.StatusServiceUnavailable, rec.Code, "body: %s", rec.Body.String())
			require.Equal(t, unavailableRetryAfter, rec.Header().Get("Retry-After"))
			for _, secret := range []string{"db.internal", "admin", "10.9.8.7", "5432", "connection refused"} {
				require.NotContains(t, rec.Body.String(), secret)
			}
			id := rec.Header().Get(HeaderRequestID)
			if r.target == "/health" {
				require.Contains(t, rec.Body.String(), `"store":"down: unavailable"`)
			} else {
				p := requireProblem(t, rec, nethttp.StatusServiceUnavailable, ProblemTypeUnavailable)
				require.Equal(t, "the store is unavailable; retry later; the server's log has the details under request ID "+id, p.Detail)
			}
			var logged bool
			for _, line := range strings.Split(logs.String(), "\n") {
				if strings.Contains(line, `"requestID":"`+id+`"`) && strings.Contains(line, fakeDSN) {
					require.Contains(t, line, `"level":"WARN"`)
					logged = true
				}
			}
			require.True(t, logged, "the log has the driver's text under request ID %s:\n%s", id, logs.String())
		})
	}
}

// TestNotRunningAnswer: a runtime starting or stopping is Troupe's own
// state, said as it is, with Retry-After and no log line.
func TestNotRunningAnswer(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	b.svc.ListFunc = func(context.Context, domain.Filter) (domain.Page, error) {
		return domain.Page{}, fmt.Errorf("list: %w", domain.ErrNotRunning)
	}

	rec := b.do(t, request{method: "GET", target: "/jobs"})

	p := requireProblem(t, rec, nethttp.StatusServiceUnavailable, ProblemTypeUnavailable)
	require.Equal(t, "the job system is not running (starting or stopping); retry later", p.Detail)
	require.Equal(t, unavailableRetryAfter, rec.Header().Get("Retry-After"))
	require.NotContains(t, b.logs.String(), "http: store fault")
}
