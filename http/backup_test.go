package http

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	nethttp "net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestBackupStreamsWhatTheStoreWrites(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	want := bytes.Repeat([]byte("backup bytes "), 100_000)
	b.svc.BackupFunc = func(_ context.Context, w io.Writer) error {
		for chunk := range slices.Chunk(want, 64<<10) {
			if _, err := w.Write(chunk); err != nil {
				return err
			}
		}
		return nil
	}
	rec := b.do(t, request{method: "GET", target: BackupPath})
	require.Equal(t, nethttp.StatusOK, rec.Code)
	require.Equal(t, BackupContentType, rec.Header().Get("Content-Type"))
	require.Regexp(t, `^attachment; filename="troupe-\d{8}T\d{6}Z\.backup"$`, rec.Header().Get("Content-Disposition"))
	require.Equal(t, "no-store", rec.Header().Get("Cache-Control"))
	require.Equal(t, want, rec.Body.Bytes())
}

func TestBackupWithoutABackuperSaysSo(t *testing.T) {
	t.Parallel()
	s, err := NewServer(Config{Addr: "127.0.0.1:0"}, &fakeService{t: t}, WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", BackupPath, nil))
	p := requireProblem(t, rec, nethttp.StatusConflict, ProblemTypeConflict)
	require.Equal(t, ErrBackupUnsupported.Error(), p.Detail)
}

func TestBackupUnsupportedByTheStoreSaysHow(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	b.svc.BackupFunc = func(context.Context, io.Writer) error {
		return fmt.Errorf("%w: back up its database with pg_dump", ErrBackupUnsupported)
	}
	rec := b.do(t, request{method: "GET", target: BackupPath})
	p := requireProblem(t, rec, nethttp.StatusConflict, ProblemTypeConflict)
	require.Contains(t, p.Detail, "pg_dump")
}

// A failure after the first byte cannot change the status; the client must
// see the body cut off, never a short body that looks complete.
func TestBackupFailingMidStreamCutsTheConnection(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	b.svc.BackupFunc = func(_ context.Context, w io.Writer) error {
		// More than the server buffers, so that the status is sent.
		if _, err := w.Write(bytes.Repeat([]byte("x"), 256<<10)); err != nil {
			return err
		}
		return errors.New("disk read failed")
	}
	srv := httptest.NewServer(b.server.Handler())
	t.Cleanup(srv.Close)

	resp, err := srv.Client().Get(srv.URL + BackupPath)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, nethttp.StatusOK, resp.StatusCode)
	_, err = io.ReadAll(resp.Body)
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	require.Eventually(t, func() bool {
		return bytes.Contains([]byte(b.logs.String()), []byte("disk read failed"))
	}, 10*time.Second, 10*time.Millisecond)
	require.Contains(t, b.logs.String(), `"msg":"http: backup cut off"`)
	require.Contains(t, b.logs.String(), `"level":"ERROR"`)
}
