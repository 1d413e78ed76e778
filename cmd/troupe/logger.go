package main

import (
	"io"
	"log/slog"
)

// NewLogger returns the logger that every component of the server shares:
// JSON lines by default, or text for people, at cfg's level, written to w
// (stderr in the binary, so stdout stays free for command output).
func NewLogger(w io.Writer, cfg Config) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.SlogLevel()}
	if cfg.LogFormat == LogFormatText {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
