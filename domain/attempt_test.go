package domain_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
)

// A retried job's new attempt must not show the progress the failed one
// reached: the dashboard would draw a bar for work not yet redone.
func TestStartClearsProgress(t *testing.T) {
	t.Parallel()
	now := time.Now()
	job, err := domain.NewJob("t", nil, 2, now)
	require.NoError(t, err)
	require.NoError(t, job.Start(now))
	p := domain.NewProgress(60, "half way", now)
	job.Progress = &p
	require.NoError(t, job.Retry(errBoom, now, now))
	require.NotNil(t, job.Progress, "a failed attempt keeps the progress it reached")

	require.NoError(t, job.Start(now.Add(time.Second)))
	require.Nil(t, job.Progress, "a new attempt starts with no progress")
	require.Equal(t, 2, job.Attempts)
}

var errBoom = errorString("boom")

type errorString string

func (e errorString) Error() string { return string(e) }
