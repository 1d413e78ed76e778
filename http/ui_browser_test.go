package http

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/actors"
	"github.com/troupe-go/troupe/domain"
)

// The dashboard's progress bar and result in a real browser: headless
// Chromium, driven with chromedp, against the API over a fake runtime
// whose job changes the test publishes on the event stream.

// uiChromiumPath is where Debian installs Chromium; .ci/run installs it.
const uiChromiumPath = "/usr/bin/chromium"

// uiStepTimeout bounds each wait in the page.
const uiStepTimeout = 20 * time.Second

// liveJob is one job that the fake runtime holds and changes, and the
// subscriptions that hear of each change.
type liveJob struct {
	mu   sync.Mutex
	job  *domain.Job
	subs map[*scriptedSubscription]bool
	// opened counts the subscriptions ever opened.
	opened int
}

// set stores j as the job's state and publishes it.
func (l *liveJob) set(j *domain.Job) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.job = j.Clone()
	for sub := range l.subs {
		select {
		case sub.ch <- actors.Event{Job: j.Clone()}:
		default: // a stalled stream misses it, as a real one would
		}
	}
}

func (l *liveJob) get() *domain.Job {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.job.Clone()
}

// openedSubscriptions counts the subscriptions ever opened: one per
// event stream a page opened.
func (l *liveJob) openedSubscriptions() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.opened
}

// serve makes svc hold the job and publish its changes.
func (l *liveJob) serve(svc *fakeService) {
	svc.GetFunc = func(_ context.Context, id uuid.UUID) (*domain.Job, error) {
		if j := l.get(); j.ID == id {
			return j, nil
		}
		return nil, domain.ErrNotFound
	}
	svc.ListFunc = func(_ context.Context, f domain.Filter) (domain.Page, error) {
		j := l.get()
		if len(f.Statuses) > 0 && f.Statuses[0] != j.Status {
			return domain.Page{Jobs: []*domain.Job{}}, nil
		}
		return domain.Page{Jobs: []*domain.Job{j}, Total: 1}, nil
	}
	svc.SubscribeFunc = func(int) Subscription {
		l.mu.Lock()
		defer l.mu.Unlock()
		sub := &closingSubscription{scriptedSubscription: &scriptedSubscription{ch: make(chan actors.Event, 16)}, l: l}
		l.subs[sub.scriptedSubscription] = true
		l.opened++
		return sub
	}
}

// closingSubscription leaves the job's subscribers when closed.
type closingSubscription struct {
	*scriptedSubscription
	l    *liveJob
	once sync.Once
}

func (s *closingSubscription) Close() {
	s.once.Do(func() {
		s.l.mu.Lock()
		defer s.l.mu.Unlock()
		delete(s.l.subs, s.scriptedSubscription)
	})
}

// newChromium starts a headless Chromium with a fresh profile, or skips
// the test where there is none (and fails on CI, which installs it).
func newChromium(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(uiChromiumPath); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("Chromium is missing at %s: .ci/run installs it (apt-get install chromium)", uiChromiumPath)
		}
		t.Skipf("Chromium is missing at %s; install it with apt-get install chromium", uiChromiumPath)
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(uiChromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc() // waits for the browser to exit
	})
	// The first call starts the browser; a timeout on it would stop it.
	require.NoError(t, chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900)))
	return ctx
}

// navigate opens the page at url.
func navigate(t *testing.T, ctx context.Context, url string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, uiStepTimeout)
	defer cancel()
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(url)))
}

// pagePoll waits until the JavaScript expression is true.
func pagePoll(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, uiStepTimeout+time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr,
		chromedp.WithPollingTimeout(uiStepTimeout), chromedp.WithPollingInterval(20*time.Millisecond)))
	if err != nil {
		text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + "\n" + document.body.innerText`))
		t.Fatalf("waiting for %s: %v\nthe page:\n%s", what, err, text)
	}
}

// pageEval evaluates a JavaScript expression and decodes its value.
func pageEval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, uiStepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	require.NoError(t, err, "evaluating %s", expr)
	return v
}

// waitSubscribed waits until a page loaded after before subscriptions
// were opened has opened its event stream, so that the next change
// published reaches it. The stream of the page before may still be open.
func waitSubscribed(t *testing.T, l *liveJob, before int) {
	t.Helper()
	deadline := time.Now().Add(uiStepTimeout)
	for l.openedSubscriptions() <= before {
		require.True(t, time.Now().Before(deadline), "the page never opened its event stream")
		time.Sleep(10 * time.Millisecond)
	}
}

// TestDashboardProgressAndResult shows a running job's progress in the
// jobs table and on its page, moving live as the event stream reports
// it, and then the result it completed with, formatted and escaped.
func TestDashboardProgressAndResult(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	job := newTestJob(t, domain.StatusRunning)
	job.Type = "resize_image"
	job.UpdatedAt = domain.Timestamp(time.Now())
	report := func(pct float64, msg string) *domain.Job {
		j := job.Clone()
		p := domain.NewProgress(pct, msg, time.Now())
		j.Progress, j.UpdatedAt = &p, p.UpdatedAt
		return j
	}
	live := &liveJob{job: report(25, "frame 100 of 400"), subs: map[*scriptedSubscription]bool{}}
	live.serve(b.svc)
	b.svc.JobTypeInfoFunc = func() []actors.JobTypeInfo {
		return []actors.JobTypeInfo{{Type: "noop", RunBy: actors.RunByGo}, {Type: "resize_image", RunBy: actors.RunByExternal}}
	}
	b.svc.JobTypesFunc = func() []domain.JobType { return []domain.JobType{"noop", "resize_image"} }
	srv := httptest.NewServer(b.server.Handler())
	t.Cleanup(func() {
		_ = b.server.Stop(context.Background()) // ends the event streams
		srv.Close()
	})

	ctx := newChromium(t)
	navigate(t, ctx, srv.URL+"/")
	bar := fmt.Sprintf(`document.querySelector('#jobs-body tr[data-job-id=%q] progress.row-progress')`, job.ID)

	// The table: the bar, its percentage and message in the tooltip.
	pagePoll(t, ctx, "the row's progress bar", bar+` !== null && `+bar+`.value === 25`)
	require.Equal(t, "25% — frame 100 of 400", pageEval[string](t, ctx, bar+`.title`))
	require.Contains(t, pageEval[string](t, ctx, `document.querySelector('#submit-type option[value="resize_image"]').textContent`), "(external)")

	// A progress report on the stream moves it, without a reload.
	waitSubscribed(t, live, 0)
	live.set(report(60, "frame 240 of 400"))
	pagePoll(t, ctx, "the row's bar at 60%", bar+` !== null && `+bar+`.value === 60 && `+bar+`.title === "60% — frame 240 of 400"`)

	// The job's page: the bar and the message.
	opened := live.openedSubscriptions()
	navigate(t, ctx, srv.URL+"/ui/jobs/"+job.ID.String())
	pagePoll(t, ctx, "the job page's progress", `!document.querySelector('#job-progress-panel').hidden && document.querySelector('#job-progress').value === 60`)
	require.Equal(t, "60% — frame 240 of 400", pageEval[string](t, ctx, `document.querySelector('#job-progress-text').textContent`))
	require.True(t, pageEval[bool](t, ctx, `document.querySelector('#job-output-panel').hidden`), "no result before the job completes")

	waitSubscribed(t, live, opened)
	live.set(report(90, "uploading"))
	pagePoll(t, ctx, "the job page's progress at 90%", `document.querySelector('#job-progress').value === 90 && document.querySelector('#job-progress-text').textContent === "90% — uploading"`)

	// It completes with a result, which appears formatted, as text: the
	// markup in it is shown, never parsed.
	done := report(100, "done")
	done.Status, done.FinishedAt = domain.StatusCompleted, time.Now()
	done.Result = []byte(`{"url":"https://cdn.example.com/a.png","note":"<img src=x onerror=alert(1)>","size":[640,480]}`)
	live.set(done)
	want := "{\n  \"url\": \"https://cdn.example.com/a.png\",\n  \"note\": \"<img src=x onerror=alert(1)>\",\n  \"size\": [\n    640,\n    480\n  ]\n}"
	pagePoll(t, ctx, "the result", `!document.querySelector('#job-output-panel').hidden && document.querySelector('#job-status').textContent === 'completed'`)
	require.Equal(t, want, pageEval[string](t, ctx, `document.querySelector('#job-output').textContent`))
	require.Equal(t, 0, pageEval[int](t, ctx, `document.querySelectorAll('#job-output *').length`), "the result is text, not markup")
	require.Equal(t, "Last progress", pageEval[string](t, ctx, `document.querySelector('#job-progress-title').textContent`))

	// Back in the table a finished job has no bar.
	navigate(t, ctx, srv.URL+"/")
	pagePoll(t, ctx, "the completed row", fmt.Sprintf(`document.querySelector('#jobs-body tr[data-job-id=%q][data-status="completed"]') !== null`, job.ID))
	require.True(t, pageEval[bool](t, ctx, bar+` === null`))
}

// TestDashboardFlowControl shows a limited queue's settings and how many
// of its jobs wait for each reason in the queue panel, and a waiting
// job's key and reason in the jobs table and on its page, as text.
func TestDashboardFlowControl(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	job := newTestJob(t, domain.StatusPending)
	job.Queue, job.Key, job.WaitingFor = "api", "<b>customer</b>:42", domain.WaitQueueLimit
	job.UpdatedAt = domain.Timestamp(time.Now())
	live := &liveJob{job: job, subs: map[*scriptedSubscription]bool{}}
	live.serve(b.svc)
	b.svc.QueuesFunc = func(context.Context) ([]actors.QueueInfo, error) {
		return []actors.QueueInfo{{
			QueueInfo: domain.QueueInfo{Name: "api", Pending: 7, Running: 2, Settings: domain.QueueSettings{
				Limit:   2,
				Rate:    &domain.Rate{Count: 20, Per: time.Second, Burst: 40},
				PerKey:  &domain.KeyLimits{Limit: 1},
				Ordered: true,
			}},
			Limit:   1,
			Waiting: map[domain.WaitReason]int{domain.WaitQueueLimit: 5, domain.WaitKeyOrder: 2},
		}}, nil
	}
	srv := httptest.NewServer(b.server.Handler())
	t.Cleanup(func() {
		_ = b.server.Stop(context.Background()) // ends the event streams
		srv.Close()
	})

	ctx := newChromium(t)
	navigate(t, ctx, srv.URL+"/")
	row := `document.querySelector('#queues-body tr[data-queue="api"]')`

	// The queue panel: its limit (and this node's cap), its settings, and
	// the jobs waiting for each reason, the reasons none waits for left out.
	pagePoll(t, ctx, "the limited queue's row", row+` !== null`)
	require.Equal(t, "2node 1", pageEval[string](t, ctx, row+`.querySelector('[data-count="limit"]').textContent`))
	require.Equal(t, "rate 20 / 1s (burst 40)", pageEval[string](t, ctx, row+`.querySelector('[data-flow="rate"]').textContent`))
	require.Equal(t, "per key: 1 at a time", pageEval[string](t, ctx, row+`.querySelector('[data-flow="per-key"]').textContent`))
	require.Equal(t, "ordered per key", pageEval[string](t, ctx, row+`.querySelector('[data-flow="ordered"]').textContent`))
	require.Equal(t, "queue limit: 5", pageEval[string](t, ctx, row+`.querySelector('[data-reason="queue limit"]').textContent`))
	require.Equal(t, "key order: 2", pageEval[string](t, ctx, row+`.querySelector('[data-reason="key order"]').textContent`))
	require.Equal(t, 2, pageEval[int](t, ctx, row+`.querySelectorAll('[data-reason]').length`))

	// The jobs table: the key, as text, and why the job waits.
	jobRow := fmt.Sprintf(`document.querySelector('#jobs-body tr[data-job-id=%q]')`, job.ID)
	pagePoll(t, ctx, "the waiting job's row", jobRow+` !== null`)
	require.Equal(t, "<b>customer</b>:42", pageEval[string](t, ctx, jobRow+`.querySelector('.job-key').textContent`))
	require.Equal(t, 0, pageEval[int](t, ctx, jobRow+`.querySelectorAll('.job-key *').length`), "the key is text, not markup")
	require.Equal(t, "waits: queue limit", pageEval[string](t, ctx, jobRow+`.querySelector('.waiting-for').textContent`))

	// The job's page says the same, in words.
	opened := live.openedSubscriptions()
	navigate(t, ctx, srv.URL+"/ui/jobs/"+job.ID.String())
	pagePoll(t, ctx, "the job page's key", `document.querySelector('#job-key') !== null`)
	require.Equal(t, "<b>customer</b>:42", pageEval[string](t, ctx, `document.querySelector('#job-key').textContent`))
	require.Equal(t, 0, pageEval[int](t, ctx, `document.querySelectorAll('#job-key *, #job-waiting-for *').length`))
	require.Equal(t, "queue limit: its queue runs as many jobs as its limit allows",
		pageEval[string](t, ctx, `document.querySelector('#job-waiting-for').textContent`))

	// A job that no longer waits says nothing of it.
	started := job.Clone()
	started.WaitingFor, started.UpdatedAt = "", domain.Timestamp(time.Now().Add(time.Second))
	waitSubscribed(t, live, opened)
	live.set(started)
	pagePoll(t, ctx, "the reason gone", `document.querySelector('#job-waiting-for') === null`)
}
