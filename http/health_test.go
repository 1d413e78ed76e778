package http

import (
	"context"
	"errors"
	"fmt"
	nethttp "net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/actors"
	"github.com/troupe-go/troupe/domain"
)

func TestHealth(t *testing.T) {
	t.Parallel()

	running := actors.Stats{Workers: actors.WorkerStats{Size: 16, Busy: 3}, QueueDepth: 42, Running: true}
	// A driver's error names the database's host and user: the log may
	// have it, a response never.
	storeDown := fmt.Errorf("pgstore: ping: %w (failed to connect to `host=db.internal user=admin database=troupe`: dial error)", domain.ErrUnavailable)

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
			{"StoreDown", actors.Health{Stats: running, Store: storeDown}, "up", "down: unavailable"},
			{"DispatcherDown", actors.Health{Stats: running, Dispatcher: domain.Public(errors.New("no answer within 1s"))}, "down: no answer within 1s", "up"},
			{"NotRunning", actors.Health{}, "down: not running", "up"},
			{"EverythingDown", actors.Health{Dispatcher: errors.New("stopped at 10.0.0.7"), Store: storeDown}, "down", "down: unavailable"},
			// Troupe's own words about the disk and the data show as they are.
			{"DiskFull", actors.Health{Stats: running, Store: domain.Public(fmt.Errorf("disk full (4096 bytes free): %w", domain.ErrStorageFull))}, "up", "down: disk full (4096 bytes free): store is out of disk space"},
			{"DiskFullUnmarked", actors.Health{Stats: running, Store: fmt.Errorf("write /var/lib/troupe/000001.vlog: %w", domain.ErrStorageFull)}, "up", "down: disk full"},
			{"Corrupt", actors.Health{Stats: running, Store: fmt.Errorf("table /var/lib/troupe/000007.sst: checksum mismatch: %w", domain.ErrCorrupt)}, "up", "down: corrupt"},
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
				require.Equal(t, "5", rec.Header().Get("Retry-After"), "every 503 says when to try again")
				require.NotContains(t, rec.Body.String(), "internal", "no host or path reaches the body")
				require.NotContains(t, rec.Body.String(), "/var/lib", "no host or path reaches the body")
				require.Contains(t, b.logs.String(), rec.Header().Get(HeaderRequestID), "the log has the cause under the request ID")
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
		require.Equal(t, "down: unavailable", authorized.Store)
	})

	t.Run("DriverTextOnlyInTheLog", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		b.svc.HealthFunc = func(context.Context) actors.Health { return actors.Health{Stats: running, Store: storeDown} }

		rec := b.do(t, request{method: "GET", target: "/health"})

		requireJSON[HealthResponse](t, rec, nethttp.StatusServiceUnavailable)
		require.NotContains(t, rec.Body.String(), "db.internal")
		require.NotContains(t, rec.Body.String(), "admin")
		lines := logLines(t, b.logs.String(), "http: health: part down")
		require.Len(t, lines, 1)
		line := lines[0]
		require.Equal(t, "WARN", line["level"])
		require.Equal(t, "store", line["part"])
		require.Equal(t, rec.Header().Get(HeaderRequestID), line["requestID"])
		require.Contains(t, line["error"], "host=db.internal user=admin")
	})
}
