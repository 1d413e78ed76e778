package pgstore

import (
	"context"

	"github.com/troupe-go/troupe/domain"
)

var _ domain.SharedQueue = (*Store)(nil)

// Watch implements domain.SharedQueue on top of Listen, translating each
// notification into the domain's notice.
func (s *Store) Watch(ctx context.Context, fn func(domain.QueueNotice)) error {
	return s.Listen(ctx, func(n Notification) {
		notice := domain.QueueNotice{JobID: n.JobID, Node: n.Node, RunAt: n.RunAt}
		switch n.Kind {
		case JobsAvailable:
			notice.Kind = domain.NoticeJobsAvailable
		case CancelRequested:
			notice.Kind = domain.NoticeCancelRequested
		case ListenerReady:
			notice.Kind = domain.NoticeWatching
		default:
			return
		}
		fn(notice)
	})
}
