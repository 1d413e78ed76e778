package actors

import (
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/troupe-go/troupe/domain"
)

// progressInterval is the least time between two progress writes of one
// job: a handler may report thousands of times a second, the store sees a
// few writes.
const progressInterval = 250 * time.Millisecond

// progressDue is the job actor's progress timer firing: the latest
// progress is written. seq ties it to its timer.
type progressDue struct{ seq int }

// progressState is what a job actor knows of its running attempt's
// progress.
type progressState struct {
	// reporter is the Go attempt's reporter, nil for other runners; the
	// actor takes the latest report from it when it writes.
	reporter *attemptReporter
	// latest is the newest progress known (has says there is one); dirty
	// says it is not written yet.
	latest domain.Progress
	has    bool
	dirty  bool
	// writtenAt is when the last progress write was tried.
	writtenAt time.Time
	// stop cancels the timer of a coalesced write; seq ties the timer's
	// message to it.
	stop func() bool
	seq  int
}

// ReportProgress implements domain.AttemptReporter: it keeps the report
// and, unless the actor knows of an earlier one it has not taken yet,
// tells the job actor. So a tight loop sends about one message per
// progressInterval, and costs a lock and no allocation per call.
func (r *attemptReporter) ReportProgress(percent float64, message string) {
	p := domain.NewProgress(percent, message, r.rt.clock.Now())
	r.mu.Lock()
	if r.ended {
		r.mu.Unlock()
		return
	}
	r.progress, r.fresh = p, true
	notify := !r.notified
	r.notified = true
	r.mu.Unlock()
	if notify {
		r.rt.actors.Root.Send(r.owner, &progressReport{progress: p})
	}
}

// take returns the latest report if the actor has not taken it yet; the
// next report will tell the actor again.
func (r *attemptReporter) take() (domain.Progress, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.progress, r.fresh
	r.fresh, r.notified = false, false
	return p, ok
}

// note keeps p if it is not older than the latest progress known.
func (s *progressState) note(p domain.Progress) {
	if !s.has || !p.UpdatedAt.Before(s.latest.UpdatedAt) {
		s.latest, s.has, s.dirty = p, true, true
	}
}

// startProgress resets the progress state for a new attempt; r is its
// reporter when a Go handler runs it.
func (a *jobActor) startProgress(r *attemptReporter) {
	a.stopProgressTimer()
	a.progress = progressState{reporter: r, seq: a.progress.seq}
}

func (a *jobActor) stopProgressTimer() {
	if a.progress.stop != nil {
		a.progress.stop()
		a.progress.stop = nil
	}
	a.progress.seq++
}

// progressDue writes the progress a timer held back.
func (a *jobActor) progressDue(msg *progressDue) {
	if msg.seq != a.progress.seq {
		return
	}
	a.progress.stop = nil
	if a.attemptRunning {
		a.writeProgress()
	}
}

// writeProgress writes the job with the latest progress, if not written
// yet, and publishes it. A failed write is dropped: progress is advice,
// the next report or the outcome carries it again.
func (a *jobActor) writeProgress() {
	s := &a.progress
	if s.reporter != nil {
		if p, ok := s.reporter.take(); ok {
			s.note(p)
		}
	}
	if !s.dirty || a.leaseLost {
		return
	}
	s.dirty = false
	s.writtenAt = a.rt.clock.Now()
	next := a.job.Clone()
	p := s.latest
	next.Progress = &p
	if err := a.write(next); err != nil {
		a.debug("progress not stored", slog.Int("attempt", next.Attempts), slog.Any("error", err))
		return
	}
	a.job = next
	a.rt.events.publish(next)
}

// endProgress stops the progress timer of an attempt that ended and
// returns the job to take the outcome from: the last snapshot written, or
// a copy of it carrying the attempt's latest progress if that was not
// written.
func (a *jobActor) endProgress() *domain.Job {
	a.stopProgressTimer()
	s := &a.progress
	if s.reporter != nil {
		if p, ok := s.reporter.take(); ok {
			s.note(p)
		}
		s.reporter = nil
	}
	if !s.has || a.job == nil || (a.job.Progress != nil && *a.job.Progress == s.latest) {
		return a.job
	}
	job := a.job.Clone()
	p := s.latest
	job.Progress = &p
	return job
}

// reportProgress records a running attempt's progress on the job, written
// at most every progressInterval (the first at once; coalesced), and
// published once written. A report after the attempt ended is ignored.
func (a *jobActor) reportProgress(ctx actor.Context, p domain.Progress) {
	if !a.attemptRunning {
		return
	}
	s := &a.progress
	s.note(p)
	if s.stop != nil {
		return // the timer writes the latest
	}
	now := a.rt.clock.Now()
	wait := s.writtenAt.Add(progressInterval).Sub(now)
	if s.writtenAt.IsZero() || wait <= 0 {
		a.writeProgress()
		return
	}
	s.seq++
	msg, self, root := &progressDue{seq: s.seq}, ctx.Self(), a.rt.actors.Root
	s.stop = a.rt.clock.AfterFunc(wait, func() { root.Send(self, msg) })
}
