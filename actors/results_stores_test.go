package actors

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/persistence/badgerstore"
)

// On Badger, the result and the last progress are stored with the
// completed job.
func TestResult_OnBadger(t *testing.T) {
	t.Parallel()
	bs, err := badgerstore.Open(badgerstore.Options{Dir: t.TempDir(), Logger: quietLogger()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = bs.Close() })
	h := domain.HandlerFunc(func(ctx context.Context, _ []byte) error {
		ReportProgress(ctx, 99, "almost")
		return SetResult(ctx, map[string]int{"n": 7})
	})
	sys, rec := startOnWith(t, bs, "r", h)
	job, err := sys.Submit(context.Background(), SubmitParams{Type: "r"})
	require.NoError(t, err)
	rec.waitFinished(t, 1)
	got, err := bs.Get(context.Background(), job.ID)
	require.NoError(t, err)
	require.Equal(t, domain.StatusCompleted, got.Status)
	require.JSONEq(t, `{"n":7}`, string(got.Result))
	require.NotNil(t, got.Progress)
	require.Equal(t, "almost", got.Progress.Message)
}

// On a shared store the progress is written as an owned update, read by
// any node, and the result is stored on completion.
func TestProgress_OnASharedStore(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	nodes := startNodes(t, 2, func(node string) map[domain.JobType]domain.Handler {
		if node != "node-1" {
			return nil
		}
		return map[domain.JobType]domain.Handler{"p": domain.HandlerFunc(func(ctx context.Context, _ []byte) error {
			ReportProgress(ctx, 30, "a third")
			<-release
			return SetResult(ctx, "done")
		})}
	})
	job, err := nodes[0].sys.Submit(context.Background(), SubmitParams{Type: "p"})
	require.NoError(t, err)
	waitFor(t, func() bool {
		j, err := nodes[1].sys.Get(context.Background(), job.ID)
		require.NoError(t, err)
		return j.Progress != nil
	})
	j, err := nodes[1].sys.Get(context.Background(), job.ID)
	require.NoError(t, err)
	require.Equal(t, domain.StatusRunning, j.Status)
	require.Equal(t, "a third", j.Progress.Message)
	close(release)
	waitForStatus(t, nodes[1].store, domain.StatusCompleted, 1)
	j, err = nodes[1].sys.Get(context.Background(), job.ID)
	require.NoError(t, err)
	require.JSONEq(t, `"done"`, string(j.Result))
}
