package actors

import (
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"

	"github.com/troupe-go/troupe/domain"
)

// activation says why a job actor comes to life.
type activation int

const (
	// activateRun: start an attempt on the given worker.
	activateRun activation = iota
	// activateCancel: load the job and cancel it if still pending.
	activateCancel
)

// activateJob asks the supervisor to spawn a job actor.
type activateJob struct {
	job     *domain.Job // the snapshot; nil for activateCancel
	id      uuid.UUID   // for activateCancel
	mode    activation
	worker  *actor.PID // for activateRun
	replyTo *actor.PID // for activateCancel
	// claimed, for activateRun, says the shared store already marked the
	// job running and counted the attempt.
	claimed bool
	// external, for activateRun, is the claim of an external worker that
	// runs the attempt instead of worker (local source).
	external *externalClaim
}

// passivateJob is a job actor done with its work; see jobActor.passivate.
type passivateJob struct {
	id  uuid.UUID
	pid *actor.PID
}

// toJob asks the supervisor to pass msg to the actor of job id, if live.
type toJob struct {
	id  uuid.UUID
	msg any
}

func (a *activateJob) jobID() uuid.UUID {
	if a.job != nil {
		return a.job.ID
	}
	return a.id
}

// Supervision of job actors: a job actor that panics is restarted from its
// last snapshot, at most jobRestartLimit times within jobRestartWindow; past
// that it is stopped, and the job stays at its last stored snapshot for the
// next start to recover. One job's failure never touches its siblings.
const (
	jobRestartLimit  = 3
	jobRestartWindow = 10 * time.Second
)

// jobSupervisor is the parent of every job actor.
type jobSupervisor struct {
	rt       *core
	children map[uuid.UUID]*actor.PID
	ids      map[string]uuid.UUID // child PID ID → job ID, for Terminated
}

func newJobSupervisor(rt *core) *jobSupervisor {
	return &jobSupervisor{
		rt:       rt,
		children: make(map[uuid.UUID]*actor.PID),
		ids:      make(map[string]uuid.UUID),
	}
}

func jobSupervisorStrategy(logger *slog.Logger) actor.SupervisorStrategy {
	return actor.NewOneForOneStrategy(jobRestartLimit, jobRestartWindow, func(reason any) actor.Directive {
		logger.Error("job actor failed; restarting it from its last snapshot", slog.Any("reason", reason))
		return actor.RestartDirective
	})
}

// Receive implements actor.Actor.
func (s *jobSupervisor) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *activateJob:
		s.spawn(ctx, msg)
	case *passivateJob:
		if s.children[msg.id] == msg.pid {
			delete(s.children, msg.id)
		}
		ctx.Poison(msg.pid)
	case *toJob:
		if pid, ok := s.children[msg.id]; ok {
			ctx.Send(pid, msg.msg)
		}
	case *externalCall:
		if pid, ok := s.children[msg.id]; ok {
			ctx.Send(pid, msg)
			return
		}
		msg.reply <- externalReply{err: errJobGone}
	case *cancelJob:
		if pid, ok := s.children[msg.id]; ok {
			ctx.Forward(pid)
			return
		}
		ctx.Respond(&cancelReply{err: errJobGone})
	case *actor.Terminated:
		if id, ok := s.ids[msg.Who.Id]; ok {
			delete(s.ids, msg.Who.Id)
			if s.children[id] == msg.Who {
				delete(s.children, id)
			}
			s.rt.jobActors.Add(-1)
		}
	}
}

func (s *jobSupervisor) spawn(ctx actor.Context, a *activateJob) {
	ja := newJobActor(s.rt, a)
	// The producer hands back the same instance on a restart, so the actor
	// resumes from its last persisted snapshot (see jobActor.started).
	pid := ctx.Spawn(actor.PropsFromProducer(func() actor.Actor { return ja }, actor.WithDispatcher(s.rt.pool)))
	id := a.jobID()
	s.children[id] = pid
	s.ids[pid.Id] = id
	s.rt.jobActors.Add(1)
}
