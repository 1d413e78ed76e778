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

// progressSlot is a Go attempt's latest progress report, in its reporter.
type progressSlot struct {
	progress domain.Progress
	// fresh says the actor has not taken progress yet; notified that a
	// progressReport is on its way to the actor or the actor will take it
	// on a timer, so that no other message is needed until it does.
	fresh    bool
	notified bool
}

// progressState is what a job actor knows of its running attempt's
// progress.
type progressState struct {
	// latest is the newest progress known; dirty says it is not written.
	latest domain.Progress
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
	if r.slot == nil {
		r.slot = &progressSlot{}
	}
	s := r.slot
	s.progress, s.fresh = p, true
	notify := !s.notified
	s.notified = true
	r.mu.Unlock()
	if notify {
		r.rt.actors.Root.Send(r.owner, &progressReport{gen: r.gen, progress: p})
	}
}

// take returns the latest report if the actor has not taken it yet; the
// next report will tell the actor again.
func (r *attemptReporter) take() (domain.Progress, bool) {
	if r == nil {
		return domain.Progress{}, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.slot
	if s == nil {
		return domain.Progress{}, false
	}
	p, ok := s.progress, s.fresh
	s.fresh, s.notified = false, false
	return p, ok
}

// note keeps p if it is not older than the latest progress known.
func (a *jobActor) noteProgress(p domain.Progress) {
	s := a.progress
	if s == nil {
		a.progress = &progressState{latest: p, dirty: true}
		return
	}
	if !p.UpdatedAt.Before(s.latest.UpdatedAt) {
		s.latest, s.dirty = p, true
	}
}

// takeReported notes the latest report of the Go attempt's reporter.
func (a *jobActor) takeReported() {
	if p, ok := a.reporter.take(); ok {
		a.noteProgress(p)
	}
}

// startProgress starts the progress of a new attempt; r is its reporter
// when a Go handler runs it.
func (a *jobActor) startProgress(r *attemptReporter) {
	a.stopProgressTimer()
	a.reporter = r
	if a.progress != nil {
		*a.progress = progressState{seq: a.progress.seq}
	}
}

func (a *jobActor) stopProgressTimer() {
	if s := a.progress; s != nil {
		if s.stop != nil {
			s.stop()
			s.stop = nil
		}
		s.seq++
	}
}

// progressDue writes the progress a timer held back.
func (a *jobActor) progressDue(ctx actor.Context, msg *progressDue) {
	s := a.progress
	if s == nil || msg.seq != s.seq {
		return
	}
	s.stop = nil
	if a.attemptRunning {
		a.writeProgress(ctx)
	}
}

// writeProgress writes the job with the latest progress, if not written
// yet, and publishes it. A failed write is tried again after
// progressInterval, unless a newer report or the outcome carries it
// first: a handler that reports once and then works for an hour must not
// show no progress for an hour because the store refused one write.
func (a *jobActor) writeProgress(ctx actor.Context) {
	a.takeReported()
	s := a.progress
	if s == nil || !s.dirty || a.leaseLost {
		return
	}
	s.dirty = false
	s.writtenAt = a.rt.clock.Now()
	next := a.job.Clone()
	p := s.latest
	next.Progress = &p
	if err := a.write(next); err != nil {
		a.debug("progress not stored; trying again", slog.Int("attempt", next.Attempts), slog.Any("error", err))
		if !a.leaseLost {
			s.dirty = true
			a.armProgressTimer(ctx, progressInterval)
		}
		return
	}
	a.job = next
	a.rt.events.publish(next)
}

// armProgressTimer writes the latest progress after wait, unless a timer
// is already armed.
func (a *jobActor) armProgressTimer(ctx actor.Context, wait time.Duration) {
	s := a.progress
	if s.stop != nil {
		return
	}
	s.seq++
	msg, self, root := &progressDue{seq: s.seq}, ctx.Self(), a.rt.actors.Root
	s.stop = a.rt.clock.AfterFunc(wait, func() { root.Send(self, msg) })
}

// endProgress stops the progress timer of an attempt that ended and
// returns the job to take the outcome from: the last snapshot written, or
// a copy of it carrying the attempt's latest progress if that was not
// written.
func (a *jobActor) endProgress() *domain.Job {
	a.stopProgressTimer()
	job := a.withLatestProgress()
	a.reporter = nil
	return job
}

// withLatestProgress returns the last snapshot written, or a copy of it
// carrying the attempt's latest progress if that was not written: the
// job an outcome starts from.
func (a *jobActor) withLatestProgress() *domain.Job {
	a.takeReported()
	s := a.progress
	if s == nil || s.latest.UpdatedAt.IsZero() || a.job == nil || (a.job.Progress != nil && *a.job.Progress == s.latest) {
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
	a.noteProgress(p)
	s := a.progress
	if s.stop != nil {
		return // the timer writes the latest
	}
	now := a.rt.clock.Now()
	wait := s.writtenAt.Add(progressInterval).Sub(now)
	if s.writtenAt.IsZero() || wait <= 0 {
		a.writeProgress(ctx)
		return
	}
	a.armProgressTimer(ctx, wait)
}
