package actors

import (
	"context"
	"log/slog"
	"time"

	"github.com/troupe-go/troupe/domain"
)

// watchRetryDelay is the pause before watching again after the watch failed.
const watchRetryDelay = time.Second

// noticeWatcher passes the notices of a shared store to the dispatcher
// (deliver sends them), watching again after a pause when the watch fails.
type noticeWatcher struct {
	serviceLoop
	queue   domain.SharedQueue
	deliver func(domain.QueueNotice)
	clock   Clock
	logger  *slog.Logger
}

// Start implements service.
func (w *noticeWatcher) Start(ctx context.Context) error {
	if !w.run(ctx, w.watch) {
		return errServiceRunning
	}
	return nil
}

func (w *noticeWatcher) watch(ctx context.Context) {
	for ctx.Err() == nil {
		err := w.queue.Watch(ctx, w.deliver)
		if err != nil && ctx.Err() == nil {
			w.logger.Error("watching the shared store failed; retrying", slog.Any("error", err))
			sleepCtx(ctx, w.clock, watchRetryDelay)
		}
	}
}
