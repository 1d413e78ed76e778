package handlers_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/examples/handlers"
)

// attemptKey is where the tests put the attempt number that the runtime
// would put in a handler's context.
type attemptKey struct{}

func fakeAttempt(ctx context.Context) int {
	n, _ := ctx.Value(attemptKey{}).(int)
	return n
}

func withAttempt(n int) context.Context {
	return context.WithValue(context.Background(), attemptKey{}, n)
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// instant returns every handler with no simulated work.
func instant() map[domain.JobType]domain.Handler {
	return handlers.All(discard(), fakeAttempt, handlers.WithDelay(0))
}

// validPayloads returns, for each type, a payload that succeeds.
func validPayloads() map[domain.JobType]string {
	return map[domain.JobType]string{
		handlers.TypeSendEmail:      `{"to":"ada@example.com","subject":"Hello","body":"Hi Ada"}`,
		handlers.TypeGenerateReport: `{"reportType":"sales","from":"2024-01-01","to":"2024-01-31","format":"csv"}`,
		handlers.TypeProcessFile:    `{"path":"uploads/cat.png","operation":"thumbnail"}`,
		handlers.TypeNoop:           `{}`,
		handlers.TypeSleep:          `{"ms":0}`,
		handlers.TypeFlaky:          `{"failTimes":0}`,
		handlers.TypePanic:          `{}`,
	}
}

// waitingPayloads returns, for each type that waits, a payload that would
// keep it busy for an hour when the samples' delay is an hour.
func waitingPayloads() map[domain.JobType]string {
	valid := validPayloads()
	return map[domain.JobType]string{
		handlers.TypeSendEmail:      valid[handlers.TypeSendEmail],
		handlers.TypeGenerateReport: valid[handlers.TypeGenerateReport],
		handlers.TypeProcessFile:    valid[handlers.TypeProcessFile],
		handlers.TypeSleep:          `{"ms":3600000}`,
	}
}

// cancelOnceWaiting is a context that stays live until someone asks for its
// Done channel, which a handler does only once it starts to wait, and is
// canceled from then on. It reaches the "canceled while working" path
// without depending on timing.
type cancelOnceWaiting struct {
	context.Context
	cancel context.CancelCauseFunc
	cause  error
	waited *atomic.Bool
}

func newCancelOnceWaiting(cause error) cancelOnceWaiting {
	ctx, cancel := context.WithCancelCause(context.Background())
	return cancelOnceWaiting{Context: ctx, cancel: cancel, cause: cause, waited: new(atomic.Bool)}
}

func (c cancelOnceWaiting) Done() <-chan struct{} {
	c.waited.Store(true)
	c.cancel(c.cause)
	return c.Context.Done()
}

func TestRegistries(t *testing.T) {
	t.Parallel()
	samples := handlers.Samples(discard())
	demo := handlers.Demo(discard(), fakeAttempt)
	all := handlers.All(discard(), fakeAttempt)

	require.ElementsMatch(t, []domain.JobType{"send_email", "generate_report", "process_file"}, keys(samples))
	require.ElementsMatch(t, []domain.JobType{"noop", "sleep", "flaky", "panic"}, keys(demo))
	require.ElementsMatch(t, append(keys(samples), keys(demo)...), keys(all))
	for typ, h := range all {
		require.NotNil(t, h, typ)
	}
	require.IsType(t, &handlers.SendEmail{}, all[handlers.TypeSendEmail])
	require.IsType(t, &handlers.GenerateReport{}, all[handlers.TypeGenerateReport])
	require.IsType(t, &handlers.ProcessFile{}, all[handlers.TypeProcessFile])
	require.IsType(t, &handlers.Noop{}, all[handlers.TypeNoop])
	require.IsType(t, &handlers.Sleep{}, all[handlers.TypeSleep])
	require.IsType(t, &handlers.Flaky{}, all[handlers.TypeFlaky])
	require.IsType(t, &handlers.Panic{}, all[handlers.TypePanic])
}

func keys(m map[domain.JobType]domain.Handler) []domain.JobType {
	out := make([]domain.JobType, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestValidPayloadsSucceed(t *testing.T) {
	t.Parallel()
	all := instant()
	for typ, payload := range validPayloads() {
		if typ == handlers.TypePanic {
			continue // it panics by design; see TestPanic
		}
		t.Run(string(typ), func(t *testing.T) {
			t.Parallel()
			require.NoError(t, all[typ].Execute(withAttempt(1), []byte(payload)))
		})
	}
}

func TestSamplesAcceptVariants(t *testing.T) {
	t.Parallel()
	all := instant()
	cases := []struct {
		name    string
		typ     domain.JobType
		payload string
	}{
		{"email with display name", handlers.TypeSendEmail, `{"to":"Ada Lovelace <ada@example.com>","subject":"Hi"}`},
		{"email without body", handlers.TypeSendEmail, `{"to":"ada@example.com","subject":"Hi"}`},
		{"email subject of 200 multibyte chars", handlers.TypeSendEmail, `{"to":"ada@example.com","subject":"` + strings.Repeat("é", 200) + `"}`},
		{"report default format", handlers.TypeGenerateReport, `{"reportType":"sales","from":"2024-01-01","to":"2024-12-31"}`},
		{"report one day", handlers.TypeGenerateReport, `{"reportType":"sales","from":"2024-02-29","to":"2024-02-29","format":"pdf"}`},
		{"report xlsx", handlers.TypeGenerateReport, `{"reportType":"sales","from":"2024-01-01","to":"2024-01-02","format":"xlsx"}`},
		{"file compress", handlers.TypeProcessFile, `{"path":"a/b.txt","operation":"compress"}`},
		{"file scan with dots in names", handlers.TypeProcessFile, `{"path":"./a..b/c.tar.gz","operation":"scan"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.NoError(t, all[tc.typ].Execute(context.Background(), []byte(tc.payload)))
		})
	}
}

func TestInvalidPayloadsArePermanent(t *testing.T) {
	t.Parallel()
	all := instant()
	const email, report, file = handlers.TypeSendEmail, handlers.TypeGenerateReport, handlers.TypeProcessFile
	const sleep, flaky = handlers.TypeSleep, handlers.TypeFlaky
	cases := []struct {
		name    string
		typ     domain.JobType
		payload string
		field   string // must appear in the message
	}{
		// Decoding, shared by all typed payloads.
		{"email empty", email, ``, "payload"},
		{"email blank", email, " \n", "payload"},
		{"email bad JSON", email, `{"to":`, "payload"},
		{"email array", email, `[1,2]`, "payload"},
		{"email string", email, `"ada@example.com"`, "payload"},
		{"email trailing data", email, `{"to":"ada@example.com","subject":"Hi"} {}`, "payload"},
		{"email unknown field", email, `{"to":"ada@example.com","subject":"Hi","cc":"bob@example.com"}`, `"cc"`},
		{"email wrong type", email, `{"to":42,"subject":"Hi"}`, `"to"`},
		// send_email rules.
		{"email null", email, `null`, `"to"`},
		{"email to missing", email, `{"subject":"Hi"}`, `"to"`},
		{"email to blank", email, `{"to":"  ","subject":"Hi"}`, `"to"`},
		{"email to invalid", email, `{"to":"not an address","subject":"Hi"}`, `"to"`},
		{"email to two addresses", email, `{"to":"a@example.com, b@example.com","subject":"Hi"}`, `"to"`},
		{"email subject missing", email, `{"to":"ada@example.com"}`, `"subject"`},
		{"email subject blank", email, `{"to":"ada@example.com","subject":" \t"}`, `"subject"`},
		{"email subject too long", email, `{"to":"ada@example.com","subject":"` + strings.Repeat("x", 201) + `"}`, `"subject"`},
		{"email subject two lines", email, `{"to":"ada@example.com","subject":"Hi\r\nBcc: eve@example.com"}`, `"subject"`},
		// generate_report rules.
		{"report type missing", report, `{"from":"2024-01-01","to":"2024-01-31"}`, `"reportType"`},
		{"report from missing", report, `{"reportType":"sales","to":"2024-01-31"}`, `"from"`},
		{"report from not a date", report, `{"reportType":"sales","from":"01/02/2024","to":"2024-01-31"}`, `"from"`},
		{"report from impossible", report, `{"reportType":"sales","from":"2024-13-01","to":"2024-12-31"}`, `"from"`},
		{"report to missing", report, `{"reportType":"sales","from":"2024-01-01"}`, `"to"`},
		{"report to with time", report, `{"reportType":"sales","from":"2024-01-01","to":"2024-01-31T00:00:00Z"}`, `"to"`},
		{"report from after to", report, `{"reportType":"sales","from":"2024-02-01","to":"2024-01-31"}`, `"from"`},
		{"report format unknown", report, `{"reportType":"sales","from":"2024-01-01","to":"2024-01-31","format":"docx"}`, `"format"`},
		{"report format upper case", report, `{"reportType":"sales","from":"2024-01-01","to":"2024-01-31","format":"PDF"}`, `"format"`},
		// process_file rules.
		{"file path missing", file, `{"operation":"scan"}`, `"path"`},
		{"file path absolute", file, `{"path":"/etc/passwd","operation":"scan"}`, `"path"`},
		{"file path backslash absolute", file, `{"path":"\\\\server\\share\\x","operation":"scan"}`, `"path"`},
		{"file path drive letter", file, `{"path":"C:\\x.txt","operation":"scan"}`, `"path"`},
		{"file path parent", file, `{"path":"..","operation":"scan"}`, `"path"`},
		{"file path escapes", file, `{"path":"uploads/../../etc/passwd","operation":"scan"}`, `"path"`},
		{"file path escapes with backslashes", file, `{"path":"uploads\\..\\secret","operation":"scan"}`, `"path"`},
		{"file path NUL", file, `{"path":"a\u0000b","operation":"scan"}`, `"path"`},
		{"file operation missing", file, `{"path":"a.txt"}`, `"operation"`},
		{"file operation unknown", file, `{"path":"a.txt","operation":"delete"}`, `"operation"`},
		// sleep rules.
		{"sleep null", sleep, `null`, `"ms"`},
		{"sleep ms missing", sleep, `{}`, `"ms"`},
		{"sleep ms negative", sleep, `{"ms":-1}`, `"ms"`},
		{"sleep ms too long", sleep, `{"ms":3600001}`, `"ms"`},
		{"sleep ms fraction", sleep, `{"ms":1.5}`, `"ms"`},
		{"sleep ms string", sleep, `{"ms":"10"}`, `"ms"`},
		{"sleep ms overflow", sleep, `{"ms":1e30}`, `"ms"`},
		{"sleep unknown field", sleep, `{"ms":1,"seconds":1}`, `"seconds"`},
		{"sleep bad JSON", sleep, `{ms:1}`, "payload"},
		// flaky rules.
		{"flaky empty", flaky, ``, "payload"},
		{"flaky failTimes missing", flaky, `{}`, `"failTimes"`},
		{"flaky failTimes negative", flaky, `{"failTimes":-2}`, `"failTimes"`},
		{"flaky failTimes string", flaky, `{"failTimes":"2"}`, `"failTimes"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := all[tc.typ].Execute(withAttempt(1), []byte(tc.payload))
			require.Error(t, err)
			require.True(t, domain.IsPermanent(err), "want a permanent error, got %v", err)
			require.ErrorIs(t, err, domain.ErrInvalid)
			require.Contains(t, err.Error(), tc.field)
			require.True(t, strings.HasPrefix(err.Error(), string(tc.typ)+": "), "message %q should start with the job type", err)
		})
	}
}

func TestCanceledBeforeStart(t *testing.T) {
	t.Parallel()
	all := instant()
	for typ, payload := range validPayloads() {
		t.Run(string(typ), func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancel(withAttempt(1))
			cancel()
			err := all[typ].Execute(ctx, []byte(payload))
			require.ErrorIs(t, err, context.Canceled)
			require.False(t, domain.IsPermanent(err))
		})
	}
}

func TestCanceledBeforeStartWinsOverInvalidPayload(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := handlers.NewSendEmail(discard()).Execute(ctx, []byte(`{`))
	require.ErrorIs(t, err, context.Canceled)
	require.False(t, domain.IsPermanent(err))
}

func TestDeadlinePassedBeforeStart(t *testing.T) {
	t.Parallel()
	all := instant()
	ctx, cancel := context.WithDeadline(withAttempt(1), time.Unix(0, 0))
	defer cancel()
	for typ, payload := range validPayloads() {
		require.ErrorIs(t, all[typ].Execute(ctx, []byte(payload)), context.DeadlineExceeded, typ)
	}
}

func TestCanceledWhileWorking(t *testing.T) {
	t.Parallel()
	slow := handlers.All(discard(), fakeAttempt, handlers.WithDelay(time.Hour))
	for typ, payload := range waitingPayloads() {
		t.Run(string(typ), func(t *testing.T) {
			t.Parallel()
			cause := fmt.Errorf("user canceled %s", typ)
			ctx := newCancelOnceWaiting(cause)
			err := slow[typ].Execute(ctx, []byte(payload))
			require.True(t, ctx.waited.Load(), "the handler returned before it started to wait")
			require.ErrorIs(t, err, context.Canceled)
			require.ErrorIs(t, err, cause, "the cancel's cause should be kept")
			require.False(t, domain.IsPermanent(err))
		})
	}
}

func TestSamplesWithDefaultDelayAreCancelable(t *testing.T) {
	t.Parallel()
	for typ, h := range handlers.Samples(discard()) {
		t.Run(string(typ), func(t *testing.T) {
			t.Parallel()
			ctx := newCancelOnceWaiting(context.Canceled)
			err := h.Execute(ctx, []byte(validPayloads()[typ]))
			require.True(t, ctx.waited.Load(), "the default delay should make the sample wait")
			require.ErrorIs(t, err, context.Canceled)
		})
	}
}

func TestShortWorkCompletes(t *testing.T) {
	t.Parallel()
	all := handlers.All(discard(), fakeAttempt, handlers.WithDelay(time.Millisecond))
	for _, typ := range []domain.JobType{handlers.TypeSendEmail, handlers.TypeGenerateReport, handlers.TypeProcessFile} {
		require.NoError(t, all[typ].Execute(context.Background(), []byte(validPayloads()[typ])), typ)
	}
	require.NoError(t, all[handlers.TypeSleep].Execute(context.Background(), []byte(`{"ms":1}`)))
}

func TestNoopAcceptsAnyPayload(t *testing.T) {
	t.Parallel()
	noop := handlers.NewNoop()
	for _, payload := range []string{"", "null", "{}", `{"anything":[1,2,3]}`, "not JSON at all"} {
		require.NoError(t, noop.Execute(context.Background(), []byte(payload)), payload)
	}
	require.NoError(t, noop.Execute(context.Background(), nil))
}

func TestFlakySucceedsFromAttemptFailTimesPlusOne(t *testing.T) {
	t.Parallel()
	for failTimes := range 4 {
		t.Run(fmt.Sprint("failTimes=", failTimes), func(t *testing.T) {
			t.Parallel()
			flaky := handlers.NewFlaky(discard(), fakeAttempt)
			payload := []byte(fmt.Sprintf(`{"failTimes":%d}`, failTimes))
			for attempt := 1; attempt <= failTimes+3; attempt++ {
				err := flaky.Execute(withAttempt(attempt), payload)
				if attempt <= failTimes {
					require.EqualError(t, err, fmt.Sprintf("flaky: failing attempt %d of %d", attempt, failTimes))
					require.False(t, domain.IsPermanent(err), "flaky's failures must be retryable")
				} else {
					require.NoError(t, err, "attempt %d", attempt)
				}
			}
		})
	}
}

func TestFlakyIsStatelessAcrossJobs(t *testing.T) {
	t.Parallel()
	// One handler serves every job; only the attempt number in the context
	// decides, so a second job starts failing again from its own attempt 1.
	flaky := handlers.NewFlaky(discard(), fakeAttempt)
	payload := []byte(`{"failTimes":1}`)
	require.Error(t, flaky.Execute(withAttempt(1), payload))
	require.NoError(t, flaky.Execute(withAttempt(2), payload))
	require.Error(t, flaky.Execute(withAttempt(1), payload))
}

func TestFlakyWithoutAttemptNumber(t *testing.T) {
	t.Parallel()
	flaky := handlers.NewFlaky(discard(), fakeAttempt)
	err := flaky.Execute(context.Background(), []byte(`{"failTimes":2}`))
	require.Error(t, err)
	require.True(t, domain.IsPermanent(err))
	require.Contains(t, err.Error(), "attempt number")
	// Nothing to fail, so no attempt number is needed.
	require.NoError(t, flaky.Execute(context.Background(), []byte(`{"failTimes":0}`)))
}

func TestNewFlakyRejectsNilAttempt(t *testing.T) {
	t.Parallel()
	require.Panics(t, func() { handlers.NewFlaky(discard(), nil) })
	require.Panics(t, func() { handlers.Demo(discard(), nil) })
}

func TestPanic(t *testing.T) {
	t.Parallel()
	h := handlers.All(discard(), fakeAttempt)[handlers.TypePanic]
	for _, payload := range []string{"", "{}", "null"} {
		require.PanicsWithValue(t, handlers.PanicMessage, func() { _ = h.Execute(context.Background(), []byte(payload)) })
	}
}

func TestPayloadValidateMethods(t *testing.T) {
	t.Parallel()
	require.NoError(t, handlers.SendEmailPayload{To: "ada@example.com", Subject: "Hi"}.Validate())
	require.ErrorIs(t, handlers.SendEmailPayload{To: "ada@example.com"}.Validate(), domain.ErrInvalid)
	// Validate describes the input; only Execute decides it is permanent.
	require.False(t, domain.IsPermanent(handlers.SendEmailPayload{}.Validate()))

	report := handlers.GenerateReportPayload{ReportType: "sales", From: "2024-01-01", To: "2024-01-01"}
	require.NoError(t, report.Validate())
	require.Equal(t, handlers.ReportFormatPDF, report.FormatOrDefault())
	report.Format = handlers.ReportFormatXLSX
	require.Equal(t, handlers.ReportFormatXLSX, report.FormatOrDefault())

	require.NoError(t, handlers.ProcessFilePayload{Path: "a", Operation: handlers.FileOperationScan}.Validate())
	require.NoError(t, handlers.SleepPayload{Ms: handlers.MaxSleepMs}.Validate())
	require.ErrorIs(t, handlers.SleepPayload{Ms: handlers.MaxSleepMs + 1}.Validate(), domain.ErrInvalid)
	require.NoError(t, handlers.FlakyPayload{}.Validate())
	require.ErrorIs(t, handlers.FlakyPayload{FailTimes: -1}.Validate(), domain.ErrInvalid)
}

func TestHandlersLogAtDebugThroughTheirLogger(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	all := handlers.All(logger, fakeAttempt, handlers.WithDelay(0))
	for _, typ := range []domain.JobType{handlers.TypeSendEmail, handlers.TypeGenerateReport, handlers.TypeProcessFile, handlers.TypeSleep} {
		require.NoError(t, all[typ].Execute(context.Background(), []byte(validPayloads()[typ])))
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	require.NotEmpty(t, lines)
	for _, line := range lines {
		require.Contains(t, line, "level=DEBUG")
	}
	for _, typ := range []string{"send_email", "generate_report", "process_file", "sleep"} {
		require.True(t, slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, "jobType="+typ) }), typ)
	}
}

func TestNilLoggerDiscards(t *testing.T) {
	t.Parallel()
	all := handlers.All(nil, fakeAttempt, handlers.WithDelay(0))
	for typ, payload := range validPayloads() {
		if typ == handlers.TypePanic {
			continue
		}
		require.NoError(t, all[typ].Execute(withAttempt(1), []byte(payload)), typ)
	}
}

func TestErrorsAreNotConfusedWithCancellation(t *testing.T) {
	t.Parallel()
	err := instant()[handlers.TypeSendEmail].Execute(context.Background(), []byte(`{}`))
	require.False(t, errors.Is(err, context.Canceled))
}
