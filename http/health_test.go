package http

import (
	"context"
	"errors"
	nethttp "net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/actors"
)

func TestHealth(t *testing.T) {
	t.Parallel()

	running := actors.Stats{Workers: actors.WorkerStats{Size: 16, Busy: 3}, QueueDepth: 42, Running: true}
	storeDown := errors.New("ping: connection refused")

	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		b.svc.HealthFunc = func(ctx context.Context) actors.Health {
			_, hasDeadline := ctx.Deadline()
			require.True(t, hasDeadline, "a health check is bounded in time")
			return actors.Health{Stats: running}
		}

		rec := b.do(t, request{method: "GET", target: "/health"})

		h := requireJSON[HealthResponse](t, rec, nethttp.StatusOK)
		require.Equal(t, HealthResponse{
			Status:     "ok",
			Workers:    WorkersResponse{Size: 16, Busy: 3},
			QueueDepth: 42,
			Dispatcher: "up",
			Store:      "up",
		}, h)
		require.Equal(t, "no-store", rec.Header().Get("Cache-Control"))
	})

	t.Run("Unavailable", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			name       string
			health     actors.Health
			dispatcher string
			store      string
		}{
			{"StoreDown", actors.Health{Stats: running, Store: storeDown}, "up", "down: ping: connection refused"},
			{"DispatcherDown", actors.Health{Stats: running, Dispatcher: errors.New("no answer within 1s")}, "down: no answer within 1s", "up"},
			{"NotRunning", actors.Health{}, "down: job system is not running", "up"},
			{"EverythingDown", actors.Health{Dispatcher: errors.New("stopped"), Store: storeDown}, "down: stopped", "down: ping: connection refused"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				b := setup(t, Config{})
				b.svc.HealthFunc = func(context.Context) actors.Health { return tt.health }

				rec := b.do(t, request{method: "GET", target: "/health"})

				h := requireJSON[HealthResponse](t, rec, nethttp.StatusServiceUnavailable)
				require.Equal(t, "unavailable", h.Status)
				require.Equal(t, tt.dispatcher, h.Dispatcher)
				require.Equal(t, tt.store, h.Store)
			})
		}
	})

	t.Run("ReasonsNeedATokenWhenAuthIsOn", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{APITokens: []string{"s3cret"}})
		b.svc.HealthFunc = func(context.Context) actors.Health { return actors.Health{Stats: running, Store: storeDown} }

		anonymous := requireJSON[HealthResponse](t, b.do(t, request{method: "GET", target: "/health"}), nethttp.StatusServiceUnavailable)
		require.Equal(t, "down", anonymous.Store)
		require.Equal(t, "up", anonymous.Dispatcher)

		wrong := requireJSON[HealthResponse](t, b.do(t, request{method: "GET", target: "/health",
			header: map[string]string{"Authorization": "Bearer nope"}}), nethttp.StatusServiceUnavailable)
		require.Equal(t, "down", wrong.Store)

		authorized := requireJSON[HealthResponse](t, b.do(t, request{method: "GET", target: "/health",
			header: map[string]string{"Authorization": "Bearer s3cret"}}), nethttp.StatusServiceUnavailable)
		require.Equal(t, "down: ping: connection refused", authorized.Store)
	})
}
