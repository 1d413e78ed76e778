package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/actors"
	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/http"
	"github.com/troupe-go/troupe/persistence/memstore"
)

// TestDashboardShowsPayloadsItCannotFormat opens the page of jobs whose
// payloads the API refuses today but a store may hold (stored before the
// limits, or through the Go API, which takes any bytes): nested 9,990
// levels deep, and just past the depth the dashboard formats. Each page
// shows the payload as raw text with a note, never an empty box, and
// throws nothing.
func TestDashboardShowsPayloadsItCannotFormat(t *testing.T) {
	t.Parallel()
	b := newBrowser(t, 1280, 900)
	quiet := slog.New(slog.DiscardHandler)

	sys, err := actors.New(memstore.New(), actors.WithWorkers(1), actors.WithLogger(quiet))
	require.NoError(t, err)
	require.NoError(t, sys.Register("noop", domain.HandlerFunc(func(context.Context, []byte) error { return nil })))
	require.NoError(t, sys.Start(t.Context()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, sys.Stop(ctx))
	})
	srv, err := http.NewServer(http.Config{Addr: "127.0.0.1:0"}, http.Runtime(sys), http.WithLogger(quiet))
	require.NoError(t, err)
	require.NoError(t, srv.Start(t.Context()))
	t.Cleanup(func() { require.NoError(t, srv.Stop(context.Background())) })
	base := "http://" + srv.Addr().String()

	nested := func(depth int) string {
		return `{"a":` + strings.Repeat("[", depth-1) + strings.Repeat("]", depth-1) + `}`
	}
	for _, tt := range []struct {
		name    string
		depth   int
		payload string
	}{
		{"VeryDeep", 9990, nested(9990)},
		{"JustTooDeep", 65, nested(65)},
	} {
		job, err := sys.Submit(t.Context(), actors.SubmitParams{Type: "noop", Payload: []byte(tt.payload)})
		require.NoError(t, err, tt.name)

		b.do(chromedp.Navigate(base + "/ui/jobs/" + job.ID.String()))
		b.poll(tt.name+": the job's page", fmt.Sprintf(`document.querySelector('#job-id').textContent === %q && document.querySelector('#job-title').textContent === 'noop'`, job.ID))
		b.waitVisible("#job-payload-note")
		require.Contains(t, b.text("#job-payload-note"), "shown as raw text", tt.name)
		require.Contains(t, b.text("#job-payload-note"), "more than 64 levels deep", tt.name)
		require.Equal(t, tt.payload, b.text("#job-payload"), tt.name)
	}

	// A payload the dashboard can format is formatted, without a note.
	job, err := sys.Submit(t.Context(), actors.SubmitParams{Type: "noop", Payload: []byte(nested(64))})
	require.NoError(t, err)
	b.do(chromedp.Navigate(base + "/ui/jobs/" + job.ID.String()))
	b.poll("the job's page", fmt.Sprintf(`document.querySelector('#job-id').textContent === %q && document.querySelector('#job-payload').textContent !== ''`, job.ID))
	require.True(t, eval[bool](b, `document.querySelector('#job-payload-note').hidden`))
	require.True(t, strings.HasPrefix(b.text("#job-payload"), "{\n  \"a\": [\n    [\n"))
}
