package http

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	nethttp "net/http"
	"time"

	"github.com/gin-gonic/gin"
)

// BackupPath is the route of online backups.
const BackupPath = "/admin/backup"

// BackupContentType is the media type of a backup.
const BackupContentType = "application/octet-stream"

// backupWriteTimeout bounds one write of a backup to the client. A backup
// lasts as long as the store is large, so the server's write timeout,
// meant for ordinary answers, is replaced by this one at every write: a
// client that keeps reading gets the whole backup, one that stops does not
// hold the store's snapshot forever.
const backupWriteTimeout = time.Minute

// Backuper writes a full backup of the store while it serves. The Badger
// store implements it; the wiring provides it to the server with
// WithBackup.
type Backuper interface {
	// Backup writes a backup to w. It holds every write acknowledged before
	// the call. It fails with an error wrapping ErrBackupUnsupported before
	// writing anything when the store cannot be backed up this way.
	Backup(ctx context.Context, w io.Writer) error
}

// ErrBackupUnsupported means that the store cannot be backed up through the
// API; the error's text says how to back it up instead.
var ErrBackupUnsupported = errors.New("this store cannot be backed up through the API")

type backupOption struct{ backup Backuper }

func (o backupOption) apply(opts *options) { opts.backup = o.backup }

// WithBackup sets what GET /admin/backup streams. Without it, that route
// answers 409 saying that this store cannot be backed up through the API.
func WithBackup(b Backuper) Option { return backupOption{backup: b} }

// registerBackupRoutes adds the backup route to the protected group.
func (s *Server) registerBackupRoutes(api gin.IRoutes) {
	api.GET(BackupPath, s.handleBackup)
}

// handleBackup streams a backup. An error before the first byte is a
// problem answer; one after it can no longer change the status, so the
// connection is dropped, and the client sees a cut-off body instead of a
// complete-looking one.
func (s *Server) handleBackup(c *gin.Context) {
	if s.backup == nil {
		writeProblem(c, kindConflict.problem(ErrBackupUnsupported.Error(), nil))
		return
	}
	w := &backupResponse{c: c, rc: nethttp.NewResponseController(c.Writer), now: time.Now,
		headOnly: c.Request.Method == nethttp.MethodHead}
	err := s.backup.Backup(c.Request.Context(), w)
	switch {
	case w.headOnly && errors.Is(err, errHeadOnly):
		// HEAD: the headers GET would send; the stream stopped at its
		// first byte.
	case err == nil:
		w.start()
		s.logger.InfoContext(c.Request.Context(), "http: backup sent",
			slog.Int64("bytes", w.written), slog.String("requestID", requestID(c)))
	case !w.started && errors.Is(err, ErrBackupUnsupported):
		writeProblem(c, kindConflict.problem(err.Error(), nil))
	case !w.started:
		s.writeError(c, fmt.Errorf("back up: %w", err))
	default:
		level := slog.LevelError
		if c.Request.Context().Err() != nil {
			level = slog.LevelInfo // the client went away
		}
		s.logger.Log(c.Request.Context(), level, "http: backup cut off",
			slog.Int64("bytes", w.written), slog.String("requestID", requestID(c)), slog.Any("error", err))
		panic(nethttp.ErrAbortHandler)
	}
}

// backupResponse sends the headers of a backup with its first bytes, so
// that an error before them can still be a problem answer.
type backupResponse struct {
	c       *gin.Context
	rc      *nethttp.ResponseController
	now     func() time.Time
	started bool
	written int64
	// headOnly stops the stream at its first write, so that HEAD learns
	// whether a backup would start without reading the whole store.
	headOnly bool
}

func (w *backupResponse) start() {
	if w.started {
		return
	}
	w.started = true
	name := "troupe-" + w.now().UTC().Format("20060102T150405Z") + ".backup"
	h := w.c.Writer.Header()
	h.Set("Content-Type", BackupContentType)
	h.Set("Content-Disposition", `attachment; filename="`+name+`"`)
	h.Set("Cache-Control", "no-store")
	w.c.Status(nethttp.StatusOK)
}

func (w *backupResponse) Write(p []byte) (int, error) {
	w.start()
	if w.headOnly {
		return 0, errHeadOnly
	}
	if err := w.rc.SetWriteDeadline(w.now().Add(backupWriteTimeout)); err != nil && !errors.Is(err, nethttp.ErrNotSupported) {
		return 0, fmt.Errorf("set write deadline: %w", err)
	}
	n, err := w.c.Writer.Write(p)
	w.written += int64(n)
	return n, err
}
