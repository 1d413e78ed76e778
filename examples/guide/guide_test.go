package guide_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/troupe-go/troupe/actors"
	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/examples/guide"
	"github.com/troupe-go/troupe/internal/leaktest"
	"github.com/troupe-go/troupe/persistence/memstore"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, leaktest.ProtoactorOptions()...)
}

// fakeGateway is an in-memory payment gateway that keeps the promise of a
// real one: a repeated idempotency key is charged once.
type fakeGateway struct {
	mu       sync.Mutex
	receipts map[string]guide.Receipt
	calls    int
	// fail holds the errors of the next calls, in order; nil means none.
	fail []error
}

func newFakeGateway(fail ...error) *fakeGateway {
	return &fakeGateway{receipts: make(map[string]guide.Receipt), fail: fail}
}

// Charge implements guide.Gateway.
func (g *fakeGateway) Charge(ctx context.Context, req guide.ChargeRequest) (guide.Receipt, error) {
	if err := ctx.Err(); err != nil {
		return guide.Receipt{}, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls++
	if len(g.fail) > 0 {
		err := g.fail[0]
		g.fail = g.fail[1:]
		return guide.Receipt{}, err
	}
	if r, ok := g.receipts[req.IdempotencyKey]; ok {
		return r, nil
	}
	r := guide.Receipt{ID: fmt.Sprintf("rcpt_%d", len(g.receipts)+1)}
	g.receipts[req.IdempotencyKey] = r
	return r, nil
}

// charges returns how many distinct charges were made, and the calls.
func (g *fakeGateway) charges() (charges, calls int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.receipts), g.calls
}

var _ guide.Gateway = (*fakeGateway)(nil)

// errGatewayTimeout is an error of unknown outcome: the charge may or may
// not have happened, so the handler must let the runtime retry it.
var errGatewayTimeout = errors.New("gateway: timeout")

const validPayload = `{"orderId":"A-1001","customerId":"cus_42","amountCents":1999,"currency":"EUR"}`

func TestChargeCard_Execute(t *testing.T) {
	t.Parallel()

	t.Run("charges once, however often it runs", func(t *testing.T) {
		t.Parallel()
		gw := newFakeGateway()
		h := guide.NewChargeCard(gw, nil)
		require.NoError(t, h.Execute(context.Background(), []byte(validPayload)))
		require.NoError(t, h.Execute(context.Background(), []byte(validPayload)), "a second delivery")
		charges, calls := gw.charges()
		require.Equal(t, 1, charges)
		require.Equal(t, 2, calls)
	})

	t.Run("a bad payload fails at once, without a call", func(t *testing.T) {
		t.Parallel()
		for name, payload := range map[string]string{
			"empty":           ``,
			"not JSON":        `{`,
			"not an object":   `[1]`,
			"unknown field":   `{"orderId":"A","customerId":"c","amountCents":1,"currency":"EUR","amount":1}`,
			"trailing data":   validPayload + `{}`,
			"null":            `null`,
			"no order":        `{"customerId":"c","amountCents":1,"currency":"EUR"}`,
			"no customer":     `{"orderId":"A","amountCents":1,"currency":"EUR"}`,
			"zero amount":     `{"orderId":"A","customerId":"c","amountCents":0,"currency":"EUR"}`,
			"amount a string": `{"orderId":"A","customerId":"c","amountCents":"1","currency":"EUR"}`,
			"bad currency":    `{"orderId":"A","customerId":"c","amountCents":1,"currency":"eur"}`,
		} {
			gw := newFakeGateway()
			err := guide.NewChargeCard(gw, nil).Execute(context.Background(), []byte(payload))
			require.Error(t, err, name)
			require.True(t, domain.IsPermanent(err), "%s: %v", name, err)
			require.ErrorIs(t, err, domain.ErrInvalid, name)
			_, calls := gw.charges()
			require.Zero(t, calls, name)
		}
	})

	t.Run("a declined card fails at once", func(t *testing.T) {
		t.Parallel()
		gw := newFakeGateway(fmt.Errorf("insufficient funds: %w", guide.ErrDeclined))
		err := guide.NewChargeCard(gw, nil).Execute(context.Background(), []byte(validPayload))
		require.ErrorIs(t, err, guide.ErrDeclined)
		require.True(t, domain.IsPermanent(err))
		require.Contains(t, err.Error(), "order A-1001")
	})

	t.Run("an unknown outcome is retryable", func(t *testing.T) {
		t.Parallel()
		gw := newFakeGateway(errGatewayTimeout)
		err := guide.NewChargeCard(gw, nil).Execute(context.Background(), []byte(validPayload))
		require.ErrorIs(t, err, errGatewayTimeout)
		require.False(t, domain.IsPermanent(err))
	})

	t.Run("a canceled context stops it before the charge", func(t *testing.T) {
		t.Parallel()
		gw := newFakeGateway()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err := guide.NewChargeCard(gw, nil).Execute(ctx, []byte(validPayload))
		require.ErrorIs(t, err, context.Canceled)
		require.False(t, domain.IsPermanent(err), "a cancel is not the payload's fault")
		_, calls := gw.charges()
		require.Zero(t, calls)
	})
}

// testBundle is a running System on the memory store with charge_card
// registered, and a subscription to its job events.
type testBundle struct {
	gateway *fakeGateway
	sys     *actors.System
	events  *actors.Subscription
}

// setup starts a System whose retries are immediate, so that a test of a
// retry waits for no backoff; it is stopped when the test ends.
func setup(t *testing.T, gw *fakeGateway) *testBundle {
	t.Helper()
	sys, err := actors.New(memstore.New(),
		actors.WithWorkers(2),
		actors.WithRetryBackoff(time.Millisecond, time.Millisecond, actors.NoJitter),
		actors.WithLogger(slog.New(slog.DiscardHandler)),
	)
	require.NoError(t, err)
	require.NoError(t, sys.Register(guide.TypeChargeCard, guide.NewChargeCard(gw, nil)))
	require.NoError(t, sys.Start(context.Background()))
	events := sys.Subscribe(64)
	t.Cleanup(func() {
		events.Close()
		require.NoError(t, sys.Stop(context.Background()))
	})
	return &testBundle{gateway: gw, sys: sys, events: events}
}

// run submits a charge_card job and returns it once it is completed, failed
// or canceled, as its last event reports it.
func (b *testBundle) run(t *testing.T, payload string, maxAttempts int) *domain.Job {
	t.Helper()
	job, err := b.sys.Submit(context.Background(), actors.SubmitParams{
		Type: guide.TypeChargeCard, Payload: []byte(payload), MaxAttempts: maxAttempts,
	})
	require.NoError(t, err)
	// The timer only bounds a broken test; a passing one ends on the event.
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	for {
		select {
		case ev := <-b.events.C:
			if ev.Job.ID == job.ID && ev.Job.Status.IsTerminal() {
				require.Zero(t, b.events.Dropped())
				return ev.Job
			}
		case <-timeout.C:
			t.Fatalf("job %s did not finish", job.ID)
		}
	}
}

func TestChargeCard_System(t *testing.T) {
	t.Parallel()

	t.Run("completes", func(t *testing.T) {
		t.Parallel()
		b := setup(t, newFakeGateway())
		job := b.run(t, validPayload, 0)
		require.Equal(t, domain.StatusCompleted, job.Status)
		require.Equal(t, 1, job.Attempts)
		charges, _ := b.gateway.charges()
		require.Equal(t, 1, charges)
	})

	t.Run("retries an unknown outcome, and charges once", func(t *testing.T) {
		t.Parallel()
		b := setup(t, newFakeGateway(errGatewayTimeout))
		job := b.run(t, validPayload, 3)
		require.Equal(t, domain.StatusCompleted, job.Status)
		require.Equal(t, 2, job.Attempts)
		charges, calls := b.gateway.charges()
		require.Equal(t, 1, charges)
		require.Equal(t, 2, calls)
	})

	t.Run("fails at once on a declined card", func(t *testing.T) {
		t.Parallel()
		b := setup(t, newFakeGateway(guide.ErrDeclined))
		job := b.run(t, validPayload, 3)
		require.Equal(t, domain.StatusFailed, job.Status)
		require.Equal(t, 1, job.Attempts, "a permanent error skips the remaining attempts")
		require.Contains(t, job.LastError, "card declined")
	})

	t.Run("fails at once on an invalid payload", func(t *testing.T) {
		t.Parallel()
		b := setup(t, newFakeGateway())
		job := b.run(t, `{"orderId":"A-1"}`, 3)
		require.Equal(t, domain.StatusFailed, job.Status)
		require.Equal(t, 1, job.Attempts)
		require.Contains(t, job.LastError, `field "customerId" is required`)
		_, calls := b.gateway.charges()
		require.Zero(t, calls)
	})

	t.Run("fails after its attempts when the gateway keeps timing out", func(t *testing.T) {
		t.Parallel()
		b := setup(t, newFakeGateway(errGatewayTimeout, errGatewayTimeout))
		job := b.run(t, validPayload, 2)
		require.Equal(t, domain.StatusFailed, job.Status)
		require.Equal(t, 2, job.Attempts)
		require.Contains(t, job.LastError, "gateway: timeout")
	})
}

// TestGuideCodeIsReal checks that every Go block of examples/README.md is
// code that compiles: each must appear, line for line (indentation aside),
// in this package or in the source it quotes.
func TestGuideCodeIsReal(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	require.NoError(t, err)
	sources := []string{
		"guide.go", "guide_test.go", "example_test.go",
		filepath.Join("..", "..", "domain", "handler.go"),
		filepath.Join("..", "..", "domain", "errors.go"),
	}
	var files [][]string
	for _, name := range sources {
		b, err := os.ReadFile(name)
		require.NoError(t, err)
		files = append(files, trimmedLines(string(b)))
	}
	blocks := goBlocks(string(readme))
	require.NotEmpty(t, blocks)
	for _, block := range blocks {
		lines := trimmedLines(block)
		found := false
		for _, file := range files {
			if containsRun(file, lines) {
				found = true
				break
			}
		}
		require.True(t, found, "this block of examples/README.md is in none of %v:\n%s", sources, block)
	}
}

// TestGuideDiffApplies checks that the guide's edit of cmd/troupe/app.go
// still fits that file: the lines it keeps or removes are there, in order.
func TestGuideDiffApplies(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	require.NoError(t, err)
	app, err := os.ReadFile(filepath.Join("..", "..", "cmd", "troupe", "app.go"))
	require.NoError(t, err)
	blocks := fencedBlocks(string(readme), "diff")
	require.Len(t, blocks, 1)
	var before []string
	for line := range strings.Lines(blocks[0]) {
		if strings.HasPrefix(line, "+") || strings.TrimSpace(line) == "" {
			continue
		}
		before = append(before, strings.TrimSpace(line[1:]))
	}
	require.True(t, containsRun(trimmedLines(string(app)), before),
		"the diff of examples/README.md no longer fits cmd/troupe/app.go:\n%s", blocks[0])
}

// goBlocks returns the bodies of the ```go fences of a Markdown text.
func goBlocks(md string) []string { return fencedBlocks(md, "go") }

// fencedBlocks returns the bodies of the fences of a Markdown text whose
// info string is lang.
func fencedBlocks(md, lang string) []string {
	var blocks []string
	var cur *strings.Builder
	for line := range strings.Lines(md) {
		trimmed := strings.TrimSpace(line)
		switch {
		case cur == nil && trimmed == "```"+lang:
			cur = &strings.Builder{}
		case cur != nil && trimmed == "```":
			blocks = append(blocks, cur.String())
			cur = nil
		case cur != nil:
			cur.WriteString(line)
		}
	}
	return blocks
}

// trimmedLines splits text into lines without their indentation, and
// without leading and trailing blank lines.
func trimmedLines(text string) []string {
	var lines []string
	for line := range strings.Lines(text) {
		lines = append(lines, strings.TrimSpace(line))
	}
	for len(lines) > 0 && lines[0] == "" {
		lines = lines[1:]
	}
	for len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

// containsRun reports whether want appears in lines as a contiguous run.
func containsRun(lines, want []string) bool {
	for i := 0; i+len(want) <= len(lines); i++ {
		match := true
		for j := range want {
			if lines[i+j] != want[j] {
				match = false
				break
			}
		}
		if match {
			return true
		}
	}
	return false
}

// TestGuideSubmitParams runs the guide's submission with every field that
// says when, where and how a job runs, and its duplicate.
func TestGuideSubmitParams(t *testing.T) {
	t.Parallel()
	b := setup(t, newFakeGateway())
	sys, ctx, payload := b.sys, context.Background(), []byte(validPayload)
	submit := func() (*domain.Job, bool, error) {
		job, err := sys.Submit(ctx, actors.SubmitParams{
			Type:      guide.TypeChargeCard,
			Payload:   payload,
			Delay:     time.Hour,       // or RunAt: a time; the job is scheduled until then
			Queue:     "payments",      // default "default"; TROUPE_QUEUE_LIMITS caps a queue per node
			Priority:  1,               // 1 runs first, 9 last; default 5
			UniqueKey: "charge:A-1001", // no second unfinished job with this key
			Timeout:   30 * time.Second,
		})
		if errors.Is(err, actors.ErrDuplicate) {
			return job, true, nil // nothing was stored: job is the one that holds the key
		}
		return job, false, err
	}

	first, duplicate, err := submit()
	require.NoError(t, err)
	require.False(t, duplicate)
	require.Equal(t, domain.StatusScheduled, first.Status)
	require.Equal(t, "payments", first.Queue)
	require.Equal(t, 1, first.Priority)
	require.Equal(t, 30*time.Second, first.Timeout)
	again, duplicate, err := submit()
	require.NoError(t, err)
	require.True(t, duplicate)
	require.Equal(t, first.ID, again.ID)
}
