package handlers_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/actors"
	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/examples/handlers"
	"github.com/troupe-go/troupe/persistence/memstore"
)

// reportRecorder is a domain.AttemptReporter that keeps what a handler
// reports.
type reportRecorder struct {
	mu       sync.Mutex
	progress []domain.Progress
	result   []byte
}

func (r *reportRecorder) SetResult(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.result = b
	r.mu.Unlock()
	return nil
}

func (r *reportRecorder) ReportProgress(percent float64, message string) {
	r.mu.Lock()
	r.progress = append(r.progress, domain.NewProgress(percent, message, time.Now()))
	r.mu.Unlock()
}

// generate_report reports its progress day by day, rising to 100 %, and
// ends with a result describing the report.
func TestGenerateReport_ProgressAndResult(t *testing.T) {
	t.Parallel()
	h := handlers.NewGenerateReport(discard(), handlers.WithDelay(0))
	rec := &reportRecorder{}
	ctx := domain.WithAttemptReporter(context.Background(), rec)
	require.NoError(t, h.Execute(ctx, []byte(`{"reportType":"sales","from":"2024-01-01","to":"2024-01-10","format":"csv"}`)))

	require.Len(t, rec.progress, 11, "the start, then each of 10 days")
	require.Equal(t, 0.0, rec.progress[0].Percent)
	require.Equal(t, "rendering 10 days", rec.progress[0].Message)
	for i := 1; i < len(rec.progress); i++ {
		require.Greater(t, rec.progress[i].Percent, rec.progress[i-1].Percent)
	}
	last := rec.progress[len(rec.progress)-1]
	require.Equal(t, 100.0, last.Percent)
	require.Equal(t, "rendered 10 of 10 days", last.Message)
	require.JSONEq(t, `{"reportType":"sales","format":"csv","from":"2024-01-01","to":"2024-01-10","days":10,
		"file":"reports/sales-2024-01-01-2024-01-10.csv"}`, string(rec.result))

	// A long range is rendered in at most 20 steps.
	rec = &reportRecorder{}
	ctx = domain.WithAttemptReporter(context.Background(), rec)
	require.NoError(t, h.Execute(ctx, []byte(`{"reportType":"sales","from":"2020-01-01","to":"2024-12-31"}`)))
	require.Len(t, rec.progress, 21)
	require.Equal(t, "rendered 1827 of 1827 days", rec.progress[20].Message)

	// Without a runtime's reporter it still succeeds.
	require.NoError(t, h.Execute(context.Background(), []byte(`{"reportType":"sales","from":"2024-01-01","to":"2024-01-01"}`)))
}

// Run by the runtime, the job ends completed with the result and its last
// progress stored.
func TestGenerateReport_InTheRuntime(t *testing.T) {
	t.Parallel()
	sys, err := actors.New(memstore.New(), actors.WithLogger(discard()))
	require.NoError(t, err)
	require.NoError(t, sys.Register(handlers.TypeGenerateReport, handlers.NewGenerateReport(discard(), handlers.WithDelay(20*time.Millisecond))))
	require.NoError(t, sys.Start(context.Background()))
	t.Cleanup(func() { require.NoError(t, sys.Stop(context.Background())) })
	job, err := sys.Submit(context.Background(), actors.SubmitParams{Type: handlers.TypeGenerateReport,
		Payload: []byte(`{"reportType":"ops","from":"2024-03-01","to":"2024-03-31","format":"pdf"}`)})
	require.NoError(t, err)
	deadline := time.Now().Add(30 * time.Second)
	for !job.Status.IsTerminal() {
		require.True(t, time.Now().Before(deadline), "job did not finish")
		time.Sleep(5 * time.Millisecond)
		job, err = sys.Get(context.Background(), job.ID)
		require.NoError(t, err)
	}
	require.Equal(t, domain.StatusCompleted, job.Status)
	var result handlers.GenerateReportResult
	require.NoError(t, json.Unmarshal(job.Result, &result))
	require.Equal(t, 31, result.Days)
	require.Equal(t, "reports/ops-2024-03-01-2024-03-31.pdf", result.File)
	require.NotNil(t, job.Progress)
	require.Equal(t, 100.0, job.Progress.Percent)
	require.Equal(t, "rendered 31 of 31 days", job.Progress.Message)
}
