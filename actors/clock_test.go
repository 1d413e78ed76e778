package actors

import "time"

// stoppedClock never fires its timers: a job waiting for its retry stays
// waiting until the test acts.
type stoppedClock struct{}

func (stoppedClock) Now() time.Time { return time.Now() }

func (stoppedClock) AfterFunc(time.Duration, func()) func() bool {
	return func() bool { return true }
}
