package main

import (
	"context"
	"encoding/json"
	"fmt"
	nethttp "net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// The dashboard in a real browser: headless Chromium, driven with chromedp
// against the troupe binary with its demo handlers.

// chromiumPath is where Debian installs Chromium; .ci/run installs it.
const chromiumPath = "/usr/bin/chromium"

// browserStepTimeout bounds each wait in the page: for an element, a
// condition or a navigation.
const browserStepTimeout = 20 * time.Second

// screenshotEnv names the file that TestDashboardScreenshot writes; the
// test is skipped without it. `make screenshot` sets it.
const screenshotEnv = "DASHBOARD_SCREENSHOT"

// browser is one tab of a headless Chromium of its own.
type browser struct {
	t   *testing.T
	ctx context.Context

	mu sync.Mutex
	// thrown holds the page's uncaught exceptions; any fails the test.
	thrown []string
}

// newBrowser starts Chromium with a fresh profile and a window of width ×
// height. Without Chromium the test is skipped, or fails on CI, where
// .ci/run installs it.
func newBrowser(t *testing.T, width, height int) *browser {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("Chromium is missing at %s: .ci/run installs it (apt-get install chromium)", chromiumPath)
		}
		t.Skipf("Chromium is missing at %s; install it with apt-get install chromium", chromiumPath)
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(width, height),
	)
	ctx, cancel := chromedp.NewContext(allocCtx)
	b := &browser{t: t, ctx: ctx}
	watching := make(chan struct{}) // closed when the exception watch ends
	t.Cleanup(func() {
		if t.Failed() {
			logPage(t, ctx)
		}
		cancel()
		<-watching
		cancelAlloc() // waits for the browser to exit
	})
	// The first call starts the browser, with a context that lives as long
	// as the browser: a timeout on it would stop the browser. The steps
	// after it have timeouts of their own.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(int64(width), int64(height))); err != nil {
		close(watching)
		require.NoError(t, err)
	}
	exceptions := chromedp.Events(ctx, runtime.ExceptionThrown)
	go func() {
		defer close(watching)
		for ev, err := range exceptions {
			if err != nil {
				return // the tab is closed
			}
			text := ev.ExceptionDetails.Text
			if e := ev.ExceptionDetails.Exception; e != nil {
				text += " " + e.Description
			}
			b.mu.Lock()
			b.thrown = append(b.thrown, text)
			b.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		require.Empty(t, b.thrown, "uncaught exceptions in the page")
	})
	return b
}

// logPage logs what the page shows, to tell why a test failed.
func logPage(t *testing.T, ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + "\n" + document.body.innerText`))
	if err != nil {
		t.Logf("the page could not be read: %v", err)
		return
	}
	t.Logf("the page at the failure:\n%s", text)
}

// do runs actions, failing the test on the first error.
func (b *browser) do(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserStepTimeout)
	defer cancel()
	require.NoError(b.t, chromedp.Do(ctx, actions...))
}

// waitVisible waits until the CSS selector matches a visible element.
func (b *browser) waitVisible(css string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserStepTimeout)
	defer cancel()
	require.NoError(b.t, chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(css))), "waiting for %s to be visible", css)
}

// poll waits until the JavaScript expression is truthy.
func (b *browser) poll(what, expr string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserStepTimeout+time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr,
		chromedp.WithPollingTimeout(browserStepTimeout), chromedp.WithPollingInterval(20*time.Millisecond)))
	require.NoError(b.t, err, "waiting for %s", what)
}

// eval evaluates a JavaScript expression and decodes its value.
func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserStepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	require.NoError(b.t, err, "evaluating %s", expr)
	return v
}

// text returns the text content of the first element the selector matches.
func (b *browser) text(css string) string {
	b.t.Helper()
	return eval[string](b, fmt.Sprintf(`document.querySelector(%q).textContent`, css))
}

// choose selects value in a <select> as a user would, firing change.
func (b *browser) choose(css, value string) {
	b.t.Helper()
	b.do(chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => {
		const s = document.querySelector(%q);
		s.value = %q;
		s.dispatchEvent(new Event('change', { bubbles: true }));
	})()`, css, value)))
}

// fill sets the value of a field as typing would, firing input.
func (b *browser) fill(css, value string) {
	b.t.Helper()
	b.do(chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => {
		const f = document.querySelector(%q);
		f.value = %q;
		f.dispatchEvent(new Event('input', { bubbles: true }));
	})()`, css, value)))
}

// refreshListContinually makes the dashboard reload its list of jobs again
// as soon as it has shown it, as a busy server's live updates would, until
// the page leaves the dashboard. A reload that brings nothing new must
// leave the rows alone, or a click on one of their buttons can be lost.
func (b *browser) refreshListContinually() {
	b.t.Helper()
	// Each reload ends by writing the page info; the next one starts then,
	// since a reload started before the last one answers discards it.
	b.do(chromedp.Evaluate[chromedp.Void](`(() => {
		const onDashboard = () => !document.querySelector('#view-dashboard').hidden;
		const reload = () => {
			if (onDashboard()) document.querySelector('#filters').dispatchEvent(new Event('change', { bubbles: true }));
		};
		const watch = new MutationObserver(() => {
			if (!onDashboard()) {
				watch.disconnect();
				return;
			}
			setTimeout(reload);
		});
		watch.observe(document.querySelector('#page-info'), { childList: true, characterData: true, subtree: true });
		reload();
	})()`))
}

// row is the selector of a job's row in the jobs table, in status if given.
func row(id, status string) string {
	sel := fmt.Sprintf(`#jobs-body tr[data-job-id=%q]`, id)
	if status != "" {
		sel += fmt.Sprintf(`[data-status=%q]`, status)
	}
	return sel
}

// requireNoOverflow checks that nothing sticks out of the window sideways,
// naming the elements that do when something does.
func (b *browser) requireNoOverflow(what string) {
	b.t.Helper()
	offenders := eval[[]string](b, `[...document.querySelectorAll('body *')]
		.filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5 && !e.closest('.table-wrap, .visually-hidden'))
		.map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (e.className && typeof e.className === 'string' ? '.' + e.className.split(' ').join('.') : '') + ' ' + Math.round(e.getBoundingClientRect().right))`)
	require.Empty(b.t, offenders, "elements wider than the window on %s", what)
	require.True(b.t, eval[bool](b, `document.documentElement.scrollWidth <= window.innerWidth`), "the page scrolls sideways on %s", what)
}

// startDashboardServer runs the binary with the memory store and the demo
// handlers, and returns the base URL and an API client.
func startDashboardServer(t *testing.T, env ...string) (string, *apiClient) {
	t.Helper()
	srv := startServer(t, childEnv(env...), "--store", "memory", "--http-addr", "127.0.0.1:0", "--workers", "4")
	base := srv.waitReady()
	return base, newAPIClient(t, base)
}

// TestDashboardInBrowser drives the dashboard as an operator would: submit
// through the form and watch the job complete without reloading, see the
// form's validation, cancel a running job, filter by status, open a job's
// page, re-run a failed job, and use it all in a narrow window.
func TestDashboardInBrowser(t *testing.T) {
	t.Parallel()
	base, api := startDashboardServer(t)
	b := newBrowser(t, 1280, 900)

	b.do(chromedp.Navigate(base + "/"))
	b.waitVisible(`#connection[data-state="live"]`)
	b.poll("the job types in the form", `document.querySelector('#submit-type option[value="noop"]') !== null`)

	// Submit a noop job through the form; it appears and completes live.
	b.choose("#submit-type", "noop")
	b.fill("#submit-payload", `{"hello": "world"}`)
	b.do(chromedp.Click(chromedp.CSS("#submit-button")))
	b.waitVisible(`#submit-result a[data-job-id]`)
	noopID := eval[string](b, `document.querySelector('#submit-result a').dataset.jobId`)
	b.waitVisible(row(noopID, "completed"))
	require.Equal(t, "noop", b.text(row(noopID, "")+" .type-name"))

	// Validation: a payload that is not JSON is caught in the page, and a
	// field the server rejects is shown from its problem+json answer.
	b.fill("#submit-payload", `{"ms": `)
	b.do(chromedp.Click(chromedp.CSS("#submit-button")))
	b.waitVisible("#submit-payload-error")
	require.Contains(t, b.text("#submit-payload-error"), "not valid JSON")
	require.Equal(t, "true", eval[string](b, `document.querySelector('#submit-payload').getAttribute('aria-invalid')`))
	b.fill("#submit-payload", `{}`)
	b.fill("#submit-max", "101")
	b.do(chromedp.Click(chromedp.CSS("#submit-button")))
	b.waitVisible("#submit-max-error")
	require.Equal(t, "Max attempts must be at most 100.", b.text("#submit-max-error"))
	require.Empty(t, b.text("#submit-payload-error"))
	b.fill("#submit-max", "")

	// Cancel a running job with a click.
	sleeper := api.submit("sleep", `{"ms":60000}`, 0)
	b.waitVisible(row(sleeper.ID, "running"))
	b.do(chromedp.Click(chromedp.CSS(row(sleeper.ID, "running") + ` button[data-action="cancel"]`)))
	b.waitVisible(row(sleeper.ID, "canceled"))
	api.waitStatus(sleeper.ID, "canceled")

	// A job's page shows every field, with the payload pretty-printed.
	b.do(chromedp.Click(chromedp.CSS(row(sleeper.ID, "") + " a.job-link")))
	b.poll("the job's page", fmt.Sprintf(`location.pathname === '/ui/jobs/%s' && document.querySelector('#job-status').dataset.status === 'canceled'`, sleeper.ID))
	require.Equal(t, sleeper.ID, b.text("#job-id"))
	require.Equal(t, "sleep", b.text("#job-title"))
	require.Equal(t, "{\n  \"ms\": 60000\n}", b.text("#job-payload"))
	fields := b.text("#job-fields")
	for _, label := range []string{"Status", "Attempts", "Created", "Updated", "Started", "Finished"} {
		require.Contains(t, fields, label)
	}
	require.Contains(t, fields, "1 of 3")
	b.do(chromedp.Click(chromedp.CSS("#job-back")))
	b.waitVisible("#view-dashboard")

	// Filter by status: only failed jobs are listed, and the URL says so.
	failed := api.submit("panic", `{}`, 1)
	api.waitStatus(failed.ID, "failed")
	b.choose("#filter-status", "failed")
	b.waitVisible(row(failed.ID, "failed"))
	b.poll("only failed jobs", `[...document.querySelectorAll('#jobs-body tr')].every(r => r.dataset.status === 'failed')`)
	require.Equal(t, "?status=failed", eval[string](b, `location.search`))

	// Re-run the failed job: the page of the new job says what it re-runs.
	// Live updates refresh the list at any moment; the click must work
	// while they do, so the list is refreshed over and over meanwhile.
	b.refreshListContinually()
	b.do(chromedp.Click(chromedp.CSS(row(failed.ID, "failed") + ` button[data-action="rerun"]`)))
	b.waitVisible("#job-retry-of")
	require.Equal(t, failed.ID, b.text("#job-retry-of"))
	newID := b.text("#job-id")
	require.NotEqual(t, failed.ID, newID)
	require.Equal(t, "/ui/jobs/"+newID, eval[string](b, `location.pathname`))
	b.poll("the re-run to fail as its original did", `document.querySelector('#job-status').dataset.status === 'failed'`)
	rerun, err := api.get(newID)
	require.NoError(t, err)
	require.Equal(t, "panic", rerun.Type)
	require.Equal(t, 1, rerun.MaxAttempts)
	b.do(chromedp.Click(chromedp.CSS("#job-retry-of")))
	b.poll("the original's page, linking to its re-run", fmt.Sprintf(
		`document.querySelector('#job-id').textContent === %q && document.querySelector('#job-relation').textContent.includes(%q)`,
		failed.ID, newID))

	// Keyboard: the filters and the table's controls take the focus.
	b.do(chromedp.Navigate(base + "/"))
	b.waitVisible(`#connection[data-state="live"]`)
	b.do(chromedp.Focus(chromedp.CSS("#filter-status")))
	require.Equal(t, "filter-status", eval[string](b, `document.activeElement.id`))

	// A narrow window: nothing overflows, on the dashboard or a job's page.
	b.do(chromedp.EmulateViewport(420, 800))
	b.waitVisible(row(noopID, "completed"))
	b.requireNoOverflow("the dashboard at 420 px")
	b.do(chromedp.Navigate(base + "/ui/jobs/" + sleeper.ID))
	b.waitVisible(`#job-status[data-status="canceled"]`)
	b.requireNoOverflow("a job's page at 420 px")
}

// TestDashboardQueuesAndScheduling checks what the dashboard shows of
// queues and scheduling: the queues panel with its counts, pausing and
// resuming a queue with a click, a scheduled job in the table with its
// time, its queue and priority, and the queue filter.
func TestDashboardQueuesAndScheduling(t *testing.T) {
	t.Parallel()
	base, api := startDashboardServer(t)
	var later struct {
		ID    string `json:"id"`
		RunAt string `json:"runAt"`
	}
	require.NoError(t, json.Unmarshal(api.mustCall(nethttp.MethodPost, "/jobs",
		`{"type":"noop","delay":"1h","queue":"reports","priority":2}`, nethttp.StatusCreated), &later))
	other := api.submit("noop", `{}`, 0)
	api.waitStatus(other.ID, "completed")
	b := newBrowser(t, 1280, 900)

	b.do(chromedp.Navigate(base + "/"))
	b.waitVisible(`#connection[data-state="live"]`)

	// The queues panel lists the queue with its scheduled job.
	reports := `#queues-body tr[data-queue="reports"]`
	b.waitVisible(reports)
	b.poll("the scheduled count of reports", `document.querySelector('#queues-body tr[data-queue="reports"] [data-count="scheduled"]').textContent === '1'`)
	require.Equal(t, "false", eval[string](b, `document.querySelector('#queues-body tr[data-queue="reports"]').dataset.paused`))
	require.Equal(t, "0", b.text("#stuck-value"))
	b.poll("the scheduled card", `document.querySelector('[data-count="scheduled"]').textContent === '1'`)

	// The scheduled job is listed with its time, queue and priority.
	b.waitVisible(row(later.ID, "scheduled"))
	require.Equal(t, later.RunAt, eval[string](b, `document.querySelector('`+row(later.ID, "scheduled")+` .col-runat time').getAttribute('datetime')`))
	require.NotEmpty(t, b.text(row(later.ID, "scheduled")+" .col-runat time"))
	require.Contains(t, b.text(row(later.ID, "scheduled")+" .col-runat"), "in 59 min")
	require.Equal(t, "reports", b.text(row(later.ID, "scheduled")+" .col-queue"))
	require.Equal(t, "2", b.text(row(later.ID, "scheduled")+" .col-priority"))

	// Pause the queue from the dashboard: the server says it is paused,
	// and the button resumes it.
	b.do(chromedp.Click(chromedp.CSS(reports + ` button[data-action="pause-queue"]`)))
	b.waitVisible(reports + `[data-paused="true"] button[data-action="resume-queue"]`)
	var queues struct {
		Queues []struct {
			Name   string `json:"name"`
			Paused bool   `json:"paused"`
		} `json:"queues"`
	}
	require.NoError(t, json.Unmarshal(api.mustCall(nethttp.MethodGet, "/queues", "", nethttp.StatusOK), &queues))
	require.Contains(t, queues.Queues, struct {
		Name   string `json:"name"`
		Paused bool   `json:"paused"`
	}{"reports", true})
	b.do(chromedp.Click(chromedp.CSS(reports + ` button[data-action="resume-queue"]`)))
	b.waitVisible(reports + `[data-paused="false"] button[data-action="pause-queue"]`)
	require.NoError(t, json.Unmarshal(api.mustCall(nethttp.MethodGet, "/queues", "", nethttp.StatusOK), &queues))
	for _, q := range queues.Queues {
		require.False(t, q.Paused, q.Name)
	}

	// The queue filter lists only that queue's jobs, and the URL says so.
	b.choose("#filter-queue", "reports")
	b.poll("only the reports queue", `[...document.querySelectorAll('#jobs-body tr')].length === 1 && document.querySelector('#jobs-body tr').dataset.jobId === '`+later.ID+`'`)
	require.Equal(t, "?queue=reports", eval[string](b, `location.search`))

	// The form submits a job for later, in a queue, at a priority; a queue
	// name that cannot be is caught in the page.
	b.poll("the job types in the form", `document.querySelector('#submit-type option[value="noop"]') !== null`)
	b.choose("#submit-type", "noop")
	b.fill("#submit-queue", "Forms")
	b.do(chromedp.Click(chromedp.CSS("#submit-button")))
	b.waitVisible("#submit-queue-error")
	require.Contains(t, b.text("#submit-queue-error"), "lower-case")
	b.fill("#submit-queue", "forms")
	b.choose("#submit-priority", "1")
	b.fill("#submit-delay", "2h")
	b.do(chromedp.Click(chromedp.CSS("#submit-button")))
	b.waitVisible(`#submit-result a[data-job-id]`)
	formID := eval[string](b, `document.querySelector('#submit-result a').dataset.jobId`)
	formJob, err := api.get(formID)
	require.NoError(t, err)
	require.Equal(t, "scheduled", formJob.Status)
	var formFields struct {
		Queue    string `json:"queue"`
		Priority int    `json:"priority"`
	}
	require.NoError(t, json.Unmarshal(api.mustCall(nethttp.MethodGet, "/jobs/"+formID, "", nethttp.StatusOK), &formFields))
	require.Equal(t, "forms", formFields.Queue)
	require.Equal(t, 1, formFields.Priority)
	b.waitVisible(`#queues-body tr[data-queue="forms"]`)

	// The job's page says when it runs, in which queue, at which priority.
	b.do(chromedp.Click(chromedp.CSS(row(later.ID, "") + " a.job-link")))
	b.waitVisible(`#job-status[data-status="scheduled"]`)
	fields := b.text("#job-fields")
	for _, want := range []string{"Runs at", "Queue", "reports", "Priority", "2 (1 runs first, 9 last)", "Timeout", "30m0s per attempt"} {
		require.Contains(t, fields, want)
	}
	require.False(t, eval[bool](b, `document.querySelector('#job-cancel').hidden`), "a scheduled job can be canceled")
}

// TestDashboardSchedules drives the schedules page against the real
// runtime: a schedule is listed with its expression in words, its zone and
// its next run; pausing it from the page pauses it on the server; running
// it now submits a job that the page links to, whose page links back to
// the schedule; its jobs are one click away, filtered; and the dashboard
// says how long finished jobs are kept.
func TestDashboardSchedules(t *testing.T) {
	t.Parallel()
	base, api := startDashboardServer(t)
	api.mustCall(nethttp.MethodPut, "/schedules/nightly-digest",
		`{"cron":"30 3 * * *","timezone":"Europe/Paris","job":{"type":"noop","payload":{"digest":true}}}`, nethttp.StatusCreated)
	b := newBrowser(t, 1280, 900)

	// The retention is on the dashboard, with the defaults of a day and a week.
	b.do(chromedp.Navigate(base + "/"))
	b.waitVisible(`#connection[data-state="live"]`)
	b.waitVisible("#retention")
	require.Equal(t, "Finished jobs are kept: completed 24 h, failed 7 days, canceled 7 days.", b.text("#retention"))

	// The nav leads to the schedules page, which lists the schedule.
	b.do(chromedp.Click(chromedp.CSS(`.nav a[href="/ui/schedules"]`)))
	digest := `#schedules-body tr[data-schedule="nightly-digest"]`
	b.waitVisible(digest)
	require.Equal(t, "/ui/schedules", eval[string](b, `location.pathname`))
	require.Equal(t, "30 3 * * *", b.text(digest+" .cron"))
	require.NotEmpty(t, b.text(digest+" .schedule-description"))
	require.NotEqual(t, "30 3 * * *", b.text(digest+" .schedule-description"), "the expression is put in words")
	require.Equal(t, "Europe/Paris", b.text(digest+" .col-tz"))
	require.NotEmpty(t, eval[string](b, `document.querySelector('`+digest+` .schedule-next time').getAttribute('datetime')`))
	require.Equal(t, "never", b.text(digest+" .col-last"))
	require.Equal(t, "api", b.text(digest+" .col-source"))

	// Pause from the page: the server has it paused, and no next run shows.
	b.do(chromedp.Click(chromedp.CSS(digest + ` button[data-action="pause-schedule"]`)))
	b.waitVisible(digest + `[data-paused="true"] button[data-action="resume-schedule"]`)
	var sched struct {
		Paused    bool   `json:"paused"`
		NextRunAt string `json:"nextRunAt"`
		LastJobID string `json:"lastJobId"`
	}
	require.NoError(t, json.Unmarshal(api.mustCall(nethttp.MethodGet, "/schedules/nightly-digest", "", nethttp.StatusOK), &sched))
	require.True(t, sched.Paused)
	require.Empty(t, sched.NextRunAt)
	require.Equal(t, "paused", b.text(digest+" .schedule-next"))

	// Run it now, paused as it is: the page links to the new job, and the
	// row shows it as the last run once it completed.
	b.do(chromedp.Click(chromedp.CSS(digest + ` button[data-action="trigger-schedule"]`)))
	b.waitVisible(`#schedules-result a[data-job-id]`)
	jobID := eval[string](b, `document.querySelector('#schedules-result a').dataset.jobId`)
	api.waitStatus(jobID, "completed")
	b.poll("the last run to be the triggered job, completed", fmt.Sprintf(
		`document.querySelector('%s .col-last a[data-job-id="%s"]') !== null && document.querySelector('%s .col-last .badge').dataset.status === 'completed'`,
		digest, jobID, digest))
	require.NoError(t, json.Unmarshal(api.mustCall(nethttp.MethodGet, "/schedules/nightly-digest", "", nethttp.StatusOK), &sched))
	require.Equal(t, jobID, sched.LastJobID)

	// The job's page names its schedule, linked back to the page.
	b.do(chromedp.Click(chromedp.CSS(`#schedules-result a[data-job-id]`)))
	b.waitVisible(`#job-status[data-status="completed"]`)
	require.Equal(t, "nightly-digest", b.text("#job-schedule"))
	b.do(chromedp.Click(chromedp.CSS("#job-schedule")))
	b.waitVisible(digest + "[data-target]")

	// Its jobs, one click away: the list filtered by the schedule.
	other := api.submit("noop", `{}`, 0)
	api.waitStatus(other.ID, "completed")
	b.do(chromedp.Click(chromedp.CSS(digest + " a.schedule-jobs")))
	b.waitVisible(row(jobID, "completed"))
	b.poll("only the schedule's jobs", `[...document.querySelectorAll('#jobs-body tr')].length === 1`)
	require.Equal(t, "?schedule=nightly-digest", eval[string](b, `location.search`))
	require.Equal(t, "nightly-digest", eval[string](b, `document.querySelector('#filter-schedule').value`))

	// Resume it from the page.
	b.do(chromedp.Navigate(base + "/ui/schedules"))
	b.waitVisible(digest + ` button[data-action="resume-schedule"]`)
	b.do(chromedp.Click(chromedp.CSS(digest + ` button[data-action="resume-schedule"]`)))
	b.waitVisible(digest + `[data-paused="false"] button[data-action="pause-schedule"]`)
	require.NoError(t, json.Unmarshal(api.mustCall(nethttp.MethodGet, "/schedules/nightly-digest", "", nethttp.StatusOK), &sched))
	require.False(t, sched.Paused)

	// A narrow window: nothing sticks out of the schedules page.
	b.do(chromedp.EmulateViewport(420, 800))
	b.waitVisible(digest)
	b.requireNoOverflow("the schedules page at 420 px")
}

// TestDashboardAsksForAToken checks the dashboard of a server with API
// tokens: it asks for one in a dialog, says when one is wrong, keeps it out
// of the page and the address bar, and goes live with it.
func TestDashboardAsksForAToken(t *testing.T) {
	t.Parallel()
	const token = "dashboard-secret-token"
	base, _ := startDashboardServer(t, "TROUPE_API_TOKENS="+token)
	b := newBrowser(t, 1280, 800)

	b.do(chromedp.Navigate(base + "/"))
	b.waitVisible("#token-dialog[open] #token-input")
	require.Equal(t, "password", eval[string](b, `document.querySelector('#token-input').type`))

	b.do(
		chromedp.SendKeys(chromedp.CSS("#token-input"), "wrong-token"),
		chromedp.Click(chromedp.CSS(`#token-form button[type="submit"]`)),
	)
	b.poll("the wrong token to be refused", `document.querySelector('#token-error').textContent.includes('not accepted')`)
	b.waitVisible("#token-dialog[open]")

	b.do(
		chromedp.SendKeys(chromedp.CSS("#token-input"), token),
		chromedp.Click(chromedp.CSS(`#token-form button[type="submit"]`)),
	)
	b.waitVisible(`#connection[data-state="live"]`)
	b.poll("the counts", `document.querySelector('[data-count="completed"]').textContent !== '–'`)
	require.False(t, eval[bool](b, `document.querySelector('#token-dialog').open`))
	require.Empty(t, eval[string](b, `document.querySelector('#token-input').value`))
	require.NotContains(t, eval[string](b, `location.href`), token)
	require.NotContains(t, eval[string](b, `document.documentElement.outerHTML`), token)
	require.True(t, eval[bool](b, `!document.querySelector('#sign-out').hidden`))
}

// TestDashboardScreenshot saves screenshots of the dashboard with a few
// jobs of each kind, for the README. It runs only when DASHBOARD_SCREENSHOT
// names the PNG file to write; `make screenshot` sets it. Next to it go the
// same page in a narrow window and in the dark theme, and a job's page.
func TestDashboardScreenshot(t *testing.T) {
	t.Parallel()
	out := os.Getenv(screenshotEnv)
	if out == "" {
		t.Skipf("set %s to the PNG file to write (make screenshot)", screenshotEnv)
	}
	base, api := startDashboardServer(t)
	b := newBrowser(t, 1280, 800)
	b.do(chromedp.Navigate(base + "/"))
	b.waitVisible(`#connection[data-state="live"]`)

	// Waves of work, one per stats sample (every 2 s), draw the chart: a
	// mix of quick noop jobs and the samples, with a panic now and then.
	sleeper := api.submit("sleep", `{"ms":600000}`, 0)
	samples := []struct{ typ, payload string }{
		{"send_email", `{"to":"ada@example.com","subject":"Welcome aboard"}`},
		{"generate_report", `{"reportType":"sales","from":"2025-01-01","to":"2025-03-31","format":"pdf"}`},
		{"process_file", `{"path":"uploads/invoice-0042.pdf","operation":"scan"}`},
		{"flaky", `{"failTimes":1}`},
	}
	for i, size := range []int{3, 6, 9, 7, 12, 10, 6, 4, 8, 13, 16, 11, 7, 9} {
		for j := range size {
			switch {
			case j == 0 && i%5 == 3:
				api.submit("panic", `{}`, 1)
			case j < 2:
				sample := samples[(i+j)%len(samples)]
				api.submit(sample.typ, sample.payload, 0)
			default:
				api.submit("noop", `{}`, 0)
			}
		}
		b.poll("the next stats sample", fmt.Sprintf(`Number(document.querySelector('#chart').dataset.samples) > %d`, i+1))
	}
	api.submit("sleep", `{"ms":600000}`, 0)
	canceled := api.submit("sleep", `{"ms":600000}`, 0)
	api.mustCall("DELETE", "/jobs/"+canceled.ID, "", 200)
	for range 3 {
		api.submit("sleep", `{"ms":600000}`, 0)
	}
	b.poll("the chart", `document.querySelector('#chart .line-finished') !== null`)
	b.poll("the table", `document.querySelectorAll('#jobs-body tr').length >= 15`)
	b.poll("the stats to catch up", `Number(document.querySelector('[data-count="pending"]').textContent) > 0`)

	scheme := func(value string) {
		ctx, cancel := context.WithTimeout(b.ctx, browserStepTimeout)
		defer cancel()
		_, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: value}},
		})
		require.NoError(t, err)
	}
	shots := []struct {
		name    string
		prepare func()
		// full takes the whole page rather than the window.
		full bool
	}{
		{out, func() { scheme("light") }, false},
		{suffixed(out, "dark"), func() { scheme("dark") }, false},
		{suffixed(out, "narrow"), func() {
			scheme("light")
			b.do(chromedp.EmulateViewport(420, 800))
		}, true},
		{suffixed(out, "job"), func() {
			b.do(chromedp.EmulateViewport(1280, 800), chromedp.Navigate(base+"/ui/jobs/"+sleeper.ID))
			b.waitVisible(`#job-status[data-status="running"]`)
		}, false},
	}
	for _, shot := range shots {
		shot.prepare()
		b.requireNoOverflow(shot.name)
		ctx, cancel := context.WithTimeout(b.ctx, browserStepTimeout)
		capture := chromedp.CaptureScreenshot()
		if shot.full {
			capture = chromedp.FullScreenshot(100) // 100: PNG
		}
		png, err := chromedp.Run(ctx, capture)
		cancel()
		require.NoError(t, err)
		require.NoError(t, os.MkdirAll(filepath.Dir(shot.name), 0o755))
		require.NoError(t, os.WriteFile(shot.name, png, 0o644))
		t.Logf("wrote %s", shot.name)
	}
}

// suffixed returns path with -suffix before its extension.
func suffixed(path, suffix string) string {
	ext := filepath.Ext(path)
	return strings.TrimSuffix(path, ext) + "-" + suffix + ext
}
