package actors

import (
	"time"

	"github.com/troupe-go/troupe/domain"
)

// attemptEnd is how a running attempt ended, whoever ran it: a worker of
// this node, an external worker, a webhook.
type attemptEnd struct {
	// err is the attempt's error; nil is a success.
	err error
	// result is the success's result (JSON), nil for none.
	result []byte
	// canceled says a user canceled the job while the attempt ran: a
	// failure then cancels the job.
	canceled bool
	// shutdown says the runtime is stopping: a failure then hands the
	// job back, its attempt not counted.
	shutdown bool
}

// attemptOutcome returns what job, running, becomes after its attempt
// ended as end, at now: completed with its result; canceled; handed back;
// retried after the attempt's own delay (domain.RetryAfter) or the
// backoff while attempts remain and the error is not permanent; failed
// otherwise. The rules are the same for every runner, so they live here.
func (c *core) attemptOutcome(job *domain.Job, end attemptEnd, now time.Time) (*domain.Job, error) {
	next := job.Clone()
	var err error
	switch {
	case end.err == nil:
		next.Result = end.result
		err = next.Complete(now)
	case end.canceled:
		next.SetError(end.err)
		err = next.Cancel(now)
	case end.shutdown:
		err = next.HandBack(now)
	case next.IsRetryable(end.err):
		delay, ok := domain.RetryDelay(end.err)
		if !ok {
			delay = c.backoff.Delay(next.Attempts)
		}
		err = next.Retry(end.err, now.Add(min(delay, MaxDelay)), now)
	default:
		err = next.Fail(end.err, now)
	}
	return next, err
}
