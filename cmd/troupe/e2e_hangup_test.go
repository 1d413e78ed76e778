package main

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/internal/pgtest"
)

// TestServeClientsThatHangUp submits hundreds of jobs, single and in
// batches, from clients that hang up at random points of their request:
// mid-request, right after writing it, a moment later, or after an
// `Expect: 100-continue` answer. Whatever each client saw, every job the
// server stored must complete, on the same server, with no restart.
func TestServeClientsThatHangUp(t *testing.T) {
	t.Parallel()
	t.Run("Badger", func(t *testing.T) {
		t.Parallel()
		env := childEnv("TROUPE_DATA_DIR="+t.TempDir(), "TROUPE_WORKERS=4")
		hangUpAndCheck(t, startServer(t, env, "--http-addr", "127.0.0.1:0"))
	})
	t.Run("Postgres", func(t *testing.T) {
		t.Parallel()
		dbURL := pgtest.URL(t)
		schema := pgtest.RandomSchema(t)
		pgtest.DropSchemaOnCleanup(t, dbURL, schema)
		env := childEnv("TROUPE_STORE=postgres", "TROUPE_DATABASE_URL="+dbURL, "TROUPE_DATABASE_SCHEMA="+schema,
			"TROUPE_WORKERS=4", "TROUPE_POLL_INTERVAL=1s")
		hangUpAndCheck(t, startServer(t, env, "--http-addr", "127.0.0.1:0"))
	})
}

func hangUpAndCheck(t *testing.T, srv *serverProcess) {
	base := srv.waitReady()
	api := newAPIClient(t, base)
	u, err := url.Parse(base)
	require.NoError(t, err)

	const (
		clients     = 8
		submissions = 400
	)
	var (
		wg   sync.WaitGroup
		next = make(chan int)
	)
	for c := range clients {
		wg.Go(func() {
			rnd := rand.New(rand.NewPCG(uint64(c), 10))
			for range next {
				hangUp(t, u.Host, rnd)
			}
		})
	}
	for i := range submissions {
		next <- i
	}
	close(next)
	wg.Wait()

	// A last, patient client: once its job completes, the server has long
	// finished with the requests before it.
	last := api.submit("noop", `{}`, 0)
	api.waitStatus(last.ID, "completed")
	all, err := api.list(url.Values{"limit": {"1"}})
	require.NoError(t, err)
	t.Logf("%d jobs stored from %d submissions whose clients hung up", all.Total-1, submissions)
	require.Greater(t, all.Total, 1, "some hung-up submissions are stored")
	api.waitTotal(url.Values{"status": {"completed"}, "limit": {"1"}}, all.Total, waitTimeout)
	stuck, err := api.list(url.Values{"status": {"pending", "running"}})
	require.NoError(t, err)
	require.Zero(t, stuck.Total, "stored jobs left behind: %+v", stuck.Jobs)
}

// hangUp sends one submission, single or a batch, and hangs up at a
// random point; some wait for the first byte of the answer, so that some
// submissions are surely stored.
func hangUp(t *testing.T, host string, rnd *rand.Rand) {
	path, body := "/jobs", `{"type":"noop","payload":{"n":1}}`
	if rnd.IntN(2) == 0 {
		jobs := make([]string, 1+rnd.IntN(5))
		for i := range jobs {
			jobs[i] = `{"type":"noop","payload":{"n":1}}`
		}
		path, body = "/jobs/batch", `{"jobs":[`+strings.Join(jobs, ",")+`]}`
	}
	conn, err := net.DialTimeout("tcp", host, 5*time.Second)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
	if rnd.IntN(2) == 0 {
		// A reset rather than an orderly close.
		require.NoError(t, conn.(*net.TCPConn).SetLinger(0))
	}
	head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n", path, host, len(body))

	switch rnd.IntN(6) {
	case 0: // the whole request, then gone at once
		_, _ = conn.Write([]byte(head + "\r\n" + body))
	case 1: // the whole request, gone a moment later: during the write, or after
		_, _ = conn.Write([]byte(head + "\r\n" + body))
		time.Sleep(time.Duration(rnd.IntN(20000)) * time.Microsecond)
	case 2: // cut somewhere in the request
		req := head + "\r\n" + body
		_, _ = conn.Write([]byte(req[:1+rnd.IntN(len(req)-1)]))
	case 3: // Expect: 100-continue; once told to go on, the body, then gone
		if _, err := conn.Write([]byte(head + "Expect: 100-continue\r\n\r\n")); err != nil {
			return
		}
		line, err := bufio.NewReader(conn).ReadString('\n')
		if err != nil || !strings.Contains(line, "100") {
			return
		}
		_, _ = conn.Write([]byte(body))
	case 5: // the whole request, gone as soon as the answer begins
		_, _ = conn.Write([]byte(head + "\r\n" + body))
		_, _ = conn.Read(make([]byte, 1))
	case 4: // Expect: 100-continue, and gone without a body
		_, _ = conn.Write([]byte(head + "Expect: 100-continue\r\n\r\n"))
		if rnd.IntN(2) == 0 {
			_, _ = bufio.NewReader(conn).ReadString('\n')
		}
	}
}
