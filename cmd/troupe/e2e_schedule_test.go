package main

import (
	"encoding/json"
	nethttp "net/http"
	"net/url"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/http"
)

// TestServeSchedulingSurvivesAKill drives the binary on Badger through
// what a kill -9 must not lose: a job scheduled a few seconds out runs at
// its time after the restart, a paused queue stays paused (its job waits),
// a unique key still refuses a second job, and a retried Idempotency-Key
// gets the answer given before the kill.
func TestServeSchedulingSurvivesAKill(t *testing.T) {
	t.Parallel()
	env := childEnv("TROUPE_DATA_DIR=" + t.TempDir())
	srv := startServer(t, env, "--http-addr", "127.0.0.1:0", "--workers", "2")
	base := srv.waitReady()
	api := newAPIClient(t, base)

	decode := func(body []byte) (job struct {
		ID, Status string
		RunAt      time.Time
	}) {
		require.NoError(t, json.Unmarshal(body, &job))
		return job
	}
	soon := decode(api.mustCall(nethttp.MethodPost, "/jobs", `{"type":"noop","delay":"4s"}`, nethttp.StatusCreated))
	require.Equal(t, "scheduled", soon.Status)
	unique := decode(api.mustCall(nethttp.MethodPost, "/jobs", `{"type":"noop","delay":"1h","uniqueKey":"survives"}`, nethttp.StatusCreated))
	api.mustCall(nethttp.MethodPost, "/queues/held/pause", "", nethttp.StatusOK)
	held := decode(api.mustCall(nethttp.MethodPost, "/jobs", `{"type":"noop","queue":"held"}`, nethttp.StatusCreated))
	key := map[string]string{http.HeaderIdempotencyKey: "survives-1"}
	status, _, answered := post(t, base+"/jobs", `{"type":"noop","delay":"1h"}`, key)
	require.Equal(t, nethttp.StatusCreated, status, answered)

	srv.signal(syscall.SIGKILL)
	require.NotZero(t, srv.waitExit())
	srv = startServer(t, env, "--http-addr", "127.0.0.1:0", "--workers", "2")
	base = srv.waitReady()
	api = newAPIClient(t, base)

	// The idempotency record and the unique key were durable.
	status, header, again := post(t, base+"/jobs", `{"type":"noop","delay":"1h"}`, key)
	require.Equal(t, nethttp.StatusCreated, status)
	require.Equal(t, answered, again)
	require.Equal(t, "true", header.Get(http.HeaderIdempotentReplayed))
	dup := decode(api.mustCall(nethttp.MethodPost, "/jobs", `{"type":"noop","uniqueKey":"survives"}`, nethttp.StatusOK))
	require.Equal(t, unique.ID, dup.ID)

	// The scheduled job runs at its time, not before.
	api.waitStatus(soon.ID, "completed")
	ran := api.getScheduled(soon.ID)
	require.False(t, ran.StartedAt.Before(soon.RunAt), "it started at %s, before its runAt %s", ran.StartedAt, soon.RunAt)

	// The pause held: the queue's job is still pending, until resumed.
	q := queueNamed(t, api.mustCall(nethttp.MethodGet, "/queues", "", nethttp.StatusOK), "held")
	require.Equal(t, queueJSON{Name: "held", Paused: true, Pending: 1}, withoutWaiting(q))
	got, err := api.get(held.ID)
	require.NoError(t, err)
	require.Equal(t, "pending", got.Status)
	api.mustCall(nethttp.MethodPost, "/queues/held/resume", "", nethttp.StatusOK)
	api.waitStatus(held.ID, "completed")

	api.waitTotal(url.Values{"status": {"scheduled"}}, 2, waitTimeout)
}
