package badgerstore

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
)

// badgerLogger routes Badger's log lines to slog. Badger reports every
// compaction and table flush at info level: useful when debugging Badger,
// noise for an operator, so only warnings and errors pass.
type badgerLogger struct{ log *slog.Logger }

// Errorf logs at error level.
func (l badgerLogger) Errorf(format string, args ...any) {
	l.emit(slog.LevelError, format, args)
}

// Warningf logs at warn level.
func (l badgerLogger) Warningf(format string, args ...any) {
	l.emit(slog.LevelWarn, format, args)
}

// Infof drops the line.
func (badgerLogger) Infof(string, ...any) {}

// Debugf drops the line.
func (badgerLogger) Debugf(string, ...any) {}

func (l badgerLogger) emit(level slog.Level, format string, args []any) {
	ctx := context.Background()
	if !l.log.Enabled(ctx, level) {
		return
	}
	l.log.Log(ctx, level, strings.TrimSpace(fmt.Sprintf(format, args...)), slog.String("component", "badger"))
}
