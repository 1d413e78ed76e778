package actors

import (
	"context"
	"errors"

	"github.com/troupe-go/troupe/domain"
)

var errFlowNotImplemented = errors.New("flow control not implemented")

func (l *localSource) settingsChanged(string, domain.QueueSettings) {}

func (l *localSource) flowWaiting(context.Context, []*domain.Job) error {
	return errFlowNotImplemented
}

func (l *localSource) waitingCounts(context.Context) ([]domain.WaitingCount, error) {
	return nil, errFlowNotImplemented
}
