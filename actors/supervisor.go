package actors

import (
	"log/slog"
	"slices"
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

// jobSupervisor is the parent of every job actor. It keeps up to idleCap
// passivated job actors and hands each the next job to activate, instead
// of stopping one and spawning another: the spawn, the stop and their
// system messages cost more CPU than a no-op job's own work. An idle
// actor holds no job; a job waiting in the queue is still data. Two per
// worker: a worker takes its next job while the actor of its last one
// still writes the outcome.
type jobSupervisor struct {
	rt       *core
	children map[uuid.UUID]*actor.PID
	ids      map[string]uuid.UUID // active child PID ID → job ID
	idle     []*actor.PID
	idleCap  int
}

func newJobSupervisor(rt *core) *jobSupervisor {
	return &jobSupervisor{
		rt:       rt,
		children: make(map[uuid.UUID]*actor.PID),
		ids:      make(map[string]uuid.UUID),
		idleCap:  2 * rt.cfg.Workers,
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
		s.activate(ctx, msg)
	case *passivateJob:
		s.passivated(ctx, msg)
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
		s.idle = slices.DeleteFunc(s.idle, func(pid *actor.PID) bool { return pid.Id == msg.Who.Id })
	}
}

// activate hands the job to an idle job actor, or to a new one.
func (s *jobSupervisor) activate(ctx actor.Context, a *activateJob) {
	var pid *actor.PID
	if n := len(s.idle); n > 0 {
		pid, s.idle = s.idle[n-1], s.idle[:n-1]
		// Its mailbox holds nothing of its last job but what that job's
		// passivation already answers; this comes after.
		ctx.Send(pid, a)
	} else {
		ja := newJobActor(s.rt, a)
		// The producer hands back the same instance on a restart, so the
		// actor resumes from its last persisted snapshot (see
		// jobActor.started).
		pid = ctx.Spawn(actor.PropsFromProducer(func() actor.Actor { return ja }, actor.WithDispatcher(s.rt.pool)))
	}
	id := a.jobID()
	s.children[id] = pid
	s.ids[pid.Id] = id
	s.rt.jobActors.Add(1)
}

// passivated stops routing to a job actor done with its job, and keeps it
// for the next job or stops it. A stop reaches it only after the requests
// already routed to it, which it answers from its final state.
func (s *jobSupervisor) passivated(ctx actor.Context, msg *passivateJob) {
	if s.children[msg.id] == msg.pid {
		delete(s.children, msg.id)
	}
	if _, ok := s.ids[msg.pid.Id]; !ok {
		return // stopped meanwhile
	}
	delete(s.ids, msg.pid.Id)
	s.rt.jobActors.Add(-1)
	if len(s.idle) < s.idleCap {
		s.idle = append(s.idle, msg.pid)
		return
	}
	ctx.Poison(msg.pid)
}
