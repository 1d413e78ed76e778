package actors

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/internal/syncbuf"
)

func eventually(t *testing.T, cond func() bool, msg string) {
	t.Helper()
	require.Eventually(t, cond, 5*time.Second, time.Millisecond, msg)
}

func TestNoticeWatcher_DeliversNoticesAndWatchesAgainAfterAFailure(t *testing.T) {
	clock, queue := newManualClock(), newFakeSharedQueue()
	queue.watchFailures = 1
	got := make(chan domain.QueueNotice, 1)
	w := &noticeWatcher{queue: queue, clock: clock, logger: testLogger(t), deliver: func(n domain.QueueNotice) { got <- n }}
	require.NoError(t, w.Start(context.Background()))
	t.Cleanup(w.Stop)

	// The failed watch waits its pause on the clock before the next one.
	eventually(t, func() bool { return clock.pendingAt(clock.Now().Add(watchRetryDelay)) }, "the pause is a timer of the clock")
	require.Equal(t, 1, queue.watchCount())
	clock.advance(watchRetryDelay)
	eventually(t, func() bool { return queue.watchCount() == 2 }, "watches again after the pause")

	sent := domain.QueueNotice{Kind: domain.NoticeCancelRequested, Node: "node-1"}
	queue.notices <- sent
	require.Equal(t, sent, <-got)

	// Stop ends the watch, which blocks until its context ends.
	w.Stop()
	select {
	case queue.notices <- sent:
		t.Fatal("a stopped watcher still reads notices")
	default:
	}
}

// testEveryInterval checks a service that calls back each interval of the
// clock, and only while it runs.
func testEveryInterval(t *testing.T, newService func(Clock, time.Duration, func()) service) {
	t.Helper()
	clock := newManualClock()
	var calls atomic.Int32
	s := newService(clock, time.Minute, func() { calls.Add(1) })
	require.NoError(t, s.Start(context.Background()))
	require.ErrorIs(t, s.Start(context.Background()), errServiceRunning)

	for want := int32(1); want <= 3; want++ {
		eventually(t, func() bool { return clock.pending() == 1 }, "waits for the next interval")
		require.Equal(t, want-1, calls.Load(), "no call before the interval ends")
		clock.advance(time.Minute)
		eventually(t, func() bool { return calls.Load() == want }, "calls back once the interval ends")
	}

	eventually(t, func() bool { return clock.pending() == 1 }, "waits for the next interval")
	s.Stop()
	require.Zero(t, clock.pending(), "Stop cancels the timer")
	s.Stop() // a second Stop does nothing

	// A stopped service starts again.
	require.NoError(t, s.Start(context.Background()))
	eventually(t, func() bool { return clock.pending() == 1 }, "waits for the next interval")
	s.Stop()
}

func TestClaimPoller_PollsEachInterval(t *testing.T) {
	testEveryInterval(t, func(clock Clock, d time.Duration, fn func()) service {
		return &claimPoller{clock: clock, interval: d, poll: fn}
	})
}

func TestLeaseRenewer_RenewsEachInterval(t *testing.T) {
	testEveryInterval(t, func(clock Clock, d time.Duration, fn func()) service {
		return &leaseRenewer{clock: clock, interval: d, renew: fn}
	})
}

func TestLeaseRescuer_RescuesAtStartAndEachInterval(t *testing.T) {
	clock, queue := newManualClock(), newFakeSharedQueue()
	logs := &syncbuf.Buffer{}
	r := &leaseRescuer{queue: queue, clock: clock, interval: time.Minute, logger: slog.New(slog.NewTextHandler(logs, nil))}
	require.NoError(t, r.Start(context.Background()))
	t.Cleanup(r.Stop)

	eventually(t, func() bool { return queue.rescueCount() == 1 && clock.pending() == 1 }, "rescues at start, then waits")
	queue.mu.Lock()
	queue.rescueErr = errors.New("connection lost")
	queue.mu.Unlock()
	clock.advance(time.Minute)
	eventually(t, func() bool { return queue.rescueCount() == 2 && clock.pending() == 1 }, "rescues each interval")
	eventually(t, func() bool { return strings.Count(logs.String(), "rescuing expired leases failed") == 1 }, "a failed rescue is logged")
}

// recordingService records its starts and stops in a shared log; fail
// makes its Start fail.
type recordingService struct {
	name string
	log  *[]string
	fail bool
}

func (s *recordingService) Start(context.Context) error {
	if s.fail {
		return errors.New("cannot start")
	}
	*s.log = append(*s.log, "start "+s.name)
	return nil
}

func (s *recordingService) Stop() { *s.log = append(*s.log, "stop "+s.name) }

func TestServiceGroup_StartsInOrderAndStopsInReverse(t *testing.T) {
	var log []string
	g := serviceGroup{&recordingService{name: "a", log: &log}, &recordingService{name: "b", log: &log}}
	require.NoError(t, g.start(context.Background()))
	g.stop()
	require.Equal(t, []string{"start a", "start b", "stop b", "stop a"}, log)
}

func TestServiceGroup_StopsTheStartedOnesWhenOneFails(t *testing.T) {
	var log []string
	g := serviceGroup{
		&recordingService{name: "a", log: &log},
		&recordingService{name: "b", log: &log, fail: true},
		&recordingService{name: "c", log: &log},
	}
	require.ErrorContains(t, g.start(context.Background()), "cannot start")
	require.Equal(t, []string{"start a", "stop a"}, log)
}
