package actors

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"

	"github.com/troupe-go/troupe/domain"
)

// Flow control on a local store: the dispatcher enforces each queue's
// settings (domain.QueueSettings) when it hands out a job, to a Go worker
// or to an external claim. A queue without settings keeps its plain ready
// queue (queueState.ready) and never reaches this file's code per job.
//
// A queue with settings keeps its ready jobs in a flowQueue instead, one
// readyQueue per key (keyless jobs form the key ""), and the keys whose
// next Go job may start now in a lane: a heap by the usual order
// (priority, RunAt, submission) or, for a fair queue, a ring taken in
// turn. A key leaves the lane while its limit, order or bucket holds it
// back and comes back when that changes, so a start costs O(log keys)
// however many keys wait. External jobs of such a queue wait in their
// keys too, apart from the Go jobs, and a claim looks through the keys
// that hold some.
//
// Buckets refill on the System's Clock; one timer, for the earliest token
// due of a bucket that holds back ready jobs, wakes the dispatcher. After
// a restart the buckets start empty: a restart never lets more starts
// through than the rate allows.

// Messages of flow control, received by the dispatcher.
type (
	// flowSettingsChanged gives a queue's settings: read at recover
	// (restart: the buckets start empty) or changed at runtime. holds are
	// the queue's keyed jobs scheduled for a retry, read from the store
	// when the queue is ordered.
	flowSettingsChanged struct {
		name     string
		settings domain.QueueSettings
		restart  bool
		holds    []*domain.Job
	}
	// flowHeld gives keyed jobs scheduled for a retry (recover).
	flowHeld struct{ jobs []*domain.Job }
	// flowTokenDue is the rate timer: a bucket may hold a token now.
	flowTokenDue struct{}
	// flowWaitingRequest asks why jobs wait; the reply is []WaitReason,
	// one per job.
	flowWaitingRequest struct{ jobs []*domain.Job }
	// waitingCountsRequest asks for []domain.WaitingCount.
	waitingCountsRequest struct{}
	// countFlowKeys asks how many keys a queue's flow state keeps (an
	// int), for tests.
	countFlowKeys struct{ queue string }
)

// holdKey names a key of a queue.
type holdKey struct{ queue, key string }

// flowState is the dispatcher's flow bookkeeping beyond each queue.
type flowState struct {
	// queues counts the queues with settings; extJobs the external ready
	// jobs they hold.
	queues  int
	extJobs int
	// holdOf maps each keyed job scheduled for a retry to its key, and
	// holds counts them per key: in an ordered queue such a job holds its
	// key until it falls due (and then, pending again, goes first).
	// early holds jobs whose promotion overtook their actor's passivation.
	holdOf map[uuid.UUID]holdKey
	holds  map[holdKey]int
	early  map[uuid.UUID]struct{}
	// The rate timer: when it fires, and how to stop it.
	timerAt   time.Time
	stopTimer func() bool
}

// tokenBucket is a rate's bucket: tokens at at.
type tokenBucket struct {
	tokens float64
	at     time.Time
}

func (b *tokenBucket) level(r *domain.Rate, now time.Time) float64 {
	return r.Refill(b.tokens, b.at, now)
}

func (b *tokenBucket) take(r *domain.Rate, now time.Time) {
	b.tokens = b.level(r, now) - 1
	if now.After(b.at) {
		b.at = now
	}
}

// newBucket returns a full bucket, or, with born set (a restart), one
// that started empty at born.
func newBucket(r *domain.Rate, born, now time.Time) *tokenBucket {
	if born.IsZero() {
		return &tokenBucket{tokens: float64(r.BurstSize()), at: now}
	}
	return &tokenBucket{tokens: r.Refill(0, born, now), at: now}
}

// flowQueue is the flow state of a queue with settings.
type flowQueue struct {
	s     domain.QueueSettings
	clock Clock
	// born is when the buckets started empty (a restart); zero means a
	// key's bucket starts full.
	born   time.Time
	bucket *tokenBucket
	keys   map[string]*flowKey
	// The lane of keys whose next Go job may start: heap, or ring[ringHead:]
	// for a fair queue (entries no longer inLane are skipped); laneN
	// counts the keys in it.
	heap     []*flowKey
	ring     []*flowKey
	ringHead int
	laneN    int
	// n counts the Go jobs ready, ext the external ones.
	n, ext int
	// starts counts the starts, for fair turns among external claims.
	starts uint64
	// rateKeys are the keys with ready jobs held back by their bucket.
	rateKeys map[*flowKey]struct{}
	// sweepAt is the number of keys at which idle ones are forgotten.
	sweepAt int
}

// flowKey is one key of a flowQueue.
type flowKey struct {
	name    string
	ready   readyQueue
	ext     map[domain.JobType]*readyQueue
	extN    int
	running int
	bucket  *tokenBucket
	// inLane: in the lane; inRing: in the ring's slice (maybe stale).
	inLane, inRing bool
	idx            int
	lastStart      uint64
}

func newFlowQueue(s domain.QueueSettings, clock Clock) *flowQueue {
	return &flowQueue{s: s, clock: clock, keys: make(map[string]*flowKey),
		rateKeys: make(map[*flowKey]struct{}), sweepAt: 64}
}

// ordered reports whether k's jobs start in order.
func (fq *flowQueue) ordered(k *flowKey) bool { return fq.s.Ordered && k.name != "" }

// sortKey is job's place in its key: the usual order, or for an ordered
// key, a started job first, then RunAt (priority does not count).
func (fq *flowQueue) sortKey(k *flowKey, j *domain.Job) uint64 {
	if !fq.ordered(k) {
		return readyKey(j)
	}
	var fresh uint64 = 1
	if j.Attempts > 0 {
		fresh = 0
	}
	us := min(max(j.RunAt.UnixMicro(), 0), 1<<runAtBits-1)
	return fresh<<runAtBits | uint64(us)
}

func (fq *flowQueue) key(name string) *flowKey {
	k, ok := fq.keys[name]
	if !ok {
		k = &flowKey{name: name, idx: -1}
		fq.keys[name] = k
	}
	return k
}

// keyBucket returns k's bucket, made when first needed.
func (fq *flowQueue) keyBucket(k *flowKey, now time.Time) *tokenBucket {
	if k.bucket == nil {
		k.bucket = newBucket(fq.s.PerKey.Rate, fq.born, now)
	}
	return k.bucket
}

// head returns the entry k starts next, Go or external; nil when none.
func (fq *flowQueue) head(k *flowKey) *readyEntry {
	best, _ := k.ready.peek()
	for _, rq := range k.ext {
		if e, ok := rq.peek(); ok && (best == nil || e.before(best)) {
			best = e
		}
	}
	return best
}

// crossKey is k's head's place among the queue's keys: the usual order.
func (fq *flowQueue) crossKey(k *flowKey, e *readyEntry) uint64 {
	if fq.ordered(k) {
		return readyKey(e.job)
	}
	return e.key
}

func (fq *flowQueue) crossBefore(a *flowKey, ea *readyEntry, b *flowKey, eb *readyEntry) bool {
	ka, kb := fq.crossKey(a, ea), fq.crossKey(b, eb)
	return ka < kb || ka == kb && ea.seq < eb.seq
}

// The lane's heap, by each key's next Go job.

func (fq *flowQueue) heapLess(i, j int) bool {
	a, b := fq.heap[i], fq.heap[j]
	ea, _ := a.ready.peek()
	eb, _ := b.ready.peek()
	return fq.crossBefore(a, ea, b, eb)
}

func (fq *flowQueue) heapSwap(i, j int) {
	h := fq.heap
	h[i], h[j] = h[j], h[i]
	h[i].idx, h[j].idx = i, j
}

func (fq *flowQueue) heapUp(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !fq.heapLess(i, p) {
			return
		}
		fq.heapSwap(i, p)
		i = p
	}
}

func (fq *flowQueue) heapDown(i int) {
	n := len(fq.heap)
	for {
		c := 2*i + 1
		if c >= n {
			return
		}
		if r := c + 1; r < n && fq.heapLess(r, c) {
			c = r
		}
		if !fq.heapLess(c, i) {
			return
		}
		fq.heapSwap(i, c)
		i = c
	}
}

func (fq *flowQueue) heapFix(i int) {
	fq.heapUp(i)
	fq.heapDown(i)
}

func (fq *flowQueue) laneAdd(k *flowKey) {
	k.inLane = true
	fq.laneN++
	if fq.s.Fair {
		if !k.inRing {
			k.inRing = true
			fq.ring = append(fq.ring, k)
		}
		return
	}
	k.idx = len(fq.heap)
	fq.heap = append(fq.heap, k)
	fq.heapUp(k.idx)
}

func (fq *flowQueue) laneRemove(k *flowKey) {
	k.inLane = false
	fq.laneN--
	if fq.s.Fair {
		return // skipped when the ring reaches it
	}
	i, last := k.idx, len(fq.heap)-1
	if i != last {
		fq.heapSwap(i, last)
	}
	fq.heap[last] = nil
	fq.heap = fq.heap[:last]
	k.idx = -1
	if i != last {
		fq.heapFix(i)
	}
}

// laneFront returns the key whose Go job starts next; a fair queue's key
// leaves the ring, to come back at its end if it may start again.
func (fq *flowQueue) laneFront() *flowKey {
	if !fq.s.Fair {
		return fq.heap[0]
	}
	for fq.ringHead < len(fq.ring) {
		k := fq.ring[fq.ringHead]
		fq.ring[fq.ringHead] = nil
		fq.ringHead++
		k.inRing = false
		if fq.ringHead >= 1024 && fq.ringHead*2 >= len(fq.ring) {
			n := copy(fq.ring, fq.ring[fq.ringHead:])
			clear(fq.ring[n:])
			fq.ring, fq.ringHead = fq.ring[:n], 0
		}
		if k.inLane {
			k.inLane = false
			fq.laneN--
			return k
		}
	}
	fq.ring, fq.ringHead = fq.ring[:0], 0
	return nil
}

// flowCanStart reports whether a Go worker may take the queue's next job.
func (q *queueState) flowCanStart() bool {
	fq := q.flow
	if fq.laneN == 0 || q.paused || q.limit > 0 && q.running >= q.limit ||
		fq.s.Limit > 0 && q.running >= fq.s.Limit {
		return false
	}
	return fq.bucket == nil || fq.bucket.level(fq.s.Rate, fq.clock.Now()) >= 1
}

// flowMayStart reports whether any job of q may start now, before its
// key is looked at: for external claims.
func (q *queueState) flowMayStart(now time.Time) bool {
	fq := q.flow
	if q.paused || q.limit > 0 && q.running >= q.limit || fq.s.Limit > 0 && q.running >= fq.s.Limit {
		return false
	}
	return fq.bucket == nil || fq.bucket.level(fq.s.Rate, now) >= 1
}

// keyReason says what of k's own settings holds back its job (its head
// or not): the key's limit, order or bucket, or nothing.
func (d *dispatcher) keyReason(q *queueState, k *flowKey, isHead bool, now time.Time) domain.WaitReason {
	fq := q.flow
	pk := fq.s.PerKey
	if k.name == "" || pk == nil {
		return ""
	}
	if pk.Limit > 0 && k.running >= pk.Limit {
		return domain.WaitKeyLimit
	}
	if fq.s.Ordered && (!isHead || len(d.flow.holds) > 0 && d.flow.holds[holdKey{q.name, k.name}] > 0) {
		return domain.WaitKeyOrder
	}
	if pk.Rate != nil && fq.keyBucket(k, now).level(pk.Rate, now) < 1 {
		return domain.WaitKeyRate
	}
	return ""
}

// refreshKey puts k in the lane if its next Go job may start, out of it
// otherwise, watches its bucket if that holds it back, and forgets it
// when it holds nothing.
func (d *dispatcher) refreshKey(q *queueState, k *flowKey, now time.Time) {
	fq := q.flow
	var reason domain.WaitReason
	goOK := false
	if k.ready.len()+k.extN > 0 {
		reason = d.keyReason(q, k, true, now)
		if reason == "" && k.ready.len() > 0 {
			goOK = true
			if fq.ordered(k) && k.extN > 0 {
				e, _ := k.ready.peek()
				goOK = fq.head(k) == e
			}
		}
	}
	switch {
	case goOK && !k.inLane:
		fq.laneAdd(k)
	case goOK && !fq.s.Fair:
		fq.heapFix(k.idx)
	case !goOK && k.inLane:
		fq.laneRemove(k)
	}
	if reason == domain.WaitKeyRate {
		fq.rateKeys[k] = struct{}{}
		r := fq.s.PerKey.Rate
		d.armFlowTimer(now, now.Add(r.TokenDue(k.bucket.level(r, now))))
	} else {
		delete(fq.rateKeys, k)
	}
	if k.ready.len()+k.extN == 0 && k.running == 0 && !k.inRing {
		if fq.keyFull(k, now) {
			delete(fq.keys, k.name)
		} else if len(fq.keys) >= fq.sweepAt {
			fq.sweep(now)
		}
	}
}

// keyFull reports whether k's bucket, if any, is full: forgetting it
// then changes nothing.
func (fq *flowQueue) keyFull(k *flowKey, now time.Time) bool {
	if k.bucket == nil || fq.s.PerKey == nil || fq.s.PerKey.Rate == nil {
		return true
	}
	r := fq.s.PerKey.Rate
	return k.bucket.level(r, now) >= float64(r.BurstSize())
}

// sweep forgets the idle keys whose buckets refilled since, so that the
// keys kept stay within twice those in use.
func (fq *flowQueue) sweep(now time.Time) {
	for name, k := range fq.keys {
		if k.ready.len()+k.extN == 0 && k.running == 0 && !k.inRing && fq.keyFull(k, now) {
			delete(fq.keys, name)
		}
	}
	fq.sweepAt = max(2*len(fq.keys), 64)
}

// armFlowTimer makes sure the rate timer fires by due.
func (d *dispatcher) armFlowTimer(now, due time.Time) {
	f := &d.flow
	if d.draining {
		return
	}
	if f.stopTimer != nil && !due.Before(f.timerAt) {
		return
	}
	if f.stopTimer != nil {
		f.stopTimer()
	}
	f.timerAt = due
	pid, root := d.rt.dispatcher, d.rt.actors.Root
	f.stopTimer = d.rt.clock.AfterFunc(max(due.Sub(now), 0), func() { root.Send(pid, &flowTokenDue{}) })
}

// stopFlowTimer stops the rate timer: nothing starts after a drain.
func (d *dispatcher) stopFlowTimer() {
	if d.flow.stopTimer != nil {
		d.flow.stopTimer()
		d.flow.stopTimer, d.flow.timerAt = nil, time.Time{}
	}
}

// armQueueRate sets the timer for q's bucket if it holds back ready jobs.
func (d *dispatcher) armQueueRate(q *queueState) {
	fq := q.flow
	if fq.bucket == nil || fq.n+fq.ext == 0 || q.paused {
		return
	}
	now := fq.clock.Now()
	if lvl := fq.bucket.level(fq.s.Rate, now); lvl < 1 {
		d.armFlowTimer(now, now.Add(fq.s.Rate.TokenDue(lvl)))
	}
}

// flowWoken re-checks the buckets that held jobs back, and hands out what
// they let start.
func (d *dispatcher) flowWoken(ctx actor.Context) {
	d.flow.stopTimer, d.flow.timerAt = nil, time.Time{}
	for _, q := range d.queues {
		if q.flow == nil {
			continue
		}
		now := q.flow.clock.Now()
		for k := range q.flow.rateKeys {
			d.refreshKey(q, k, now)
		}
		d.refresh(q)
	}
	d.assign(ctx)
	d.serveClaims(ctx)
}

// flowEnqueue queues job in its queue's flow state if the queue has
// settings, reporting whether it did and whether the job is external.
func (d *dispatcher) flowEnqueue(job *domain.Job) (queued, external bool) {
	q := d.queues[job.Queue]
	if q == nil || q.flow == nil {
		return false, false
	}
	d.arrivals++
	external = d.rt.registry.isExternal(job.Type)
	k := d.flowPush(q, readyEntry{seq: d.arrivals, job: job}, external)
	d.refreshKey(q, k, q.flow.clock.Now())
	d.refresh(q)
	return true, external
}

// flowPush puts an entry in its key, sorted as the key's jobs are.
func (d *dispatcher) flowPush(q *queueState, e readyEntry, external bool) *flowKey {
	fq := q.flow
	k := fq.key(e.job.Key)
	e.key = fq.sortKey(k, e.job)
	if !external {
		k.ready.pushEntry(e)
		fq.n++
		return k
	}
	if k.ext == nil {
		k.ext = make(map[domain.JobType]*readyQueue, 1)
	}
	rq, ok := k.ext[e.job.Type]
	if !ok {
		rq = &readyQueue{}
		k.ext[e.job.Type] = rq
	}
	rq.pushEntry(e)
	k.extN++
	fq.ext++
	d.flow.extJobs++
	return k
}

// flowStart counts a start of one of k's jobs: tokens, running count.
func (d *dispatcher) flowStart(q *queueState, k *flowKey, now time.Time) {
	fq := q.flow
	if fq.bucket != nil {
		fq.bucket.take(fq.s.Rate, now)
	}
	if k.name != "" && fq.s.PerKey != nil && fq.s.PerKey.Rate != nil {
		fq.keyBucket(k, now).take(fq.s.PerKey.Rate, now)
	}
	k.running++
	fq.starts++
	k.lastStart = fq.starts
	d.refreshKey(q, k, now)
}

// nextFlowReady pops the next Go job of a queue with settings, skipping
// jobs canceled while queued; with none, the next queue's.
func (d *dispatcher) nextFlowReady(q *queueState) (*domain.Job, bool) {
	fq := q.flow
	now := fq.clock.Now()
	for fq.laneN > 0 {
		k := fq.laneFront()
		if k == nil {
			break
		}
		job, _ := k.ready.pop()
		fq.n--
		d.rt.queued.Add(-1)
		if _, ok := d.canceled[job.ID]; ok {
			delete(d.canceled, job.ID)
			d.refreshKey(q, k, now)
			continue
		}
		d.flowStart(q, k, now)
		d.refresh(q)
		return job, true
	}
	d.refresh(q)
	return d.nextReady()
}

// flowPassivated ends an attempt of a queue with settings: its key may
// start another job, and so may the queue; a retry due now goes back
// first, before anything else of its key may start.
func (d *dispatcher) flowPassivated(ctx actor.Context, l liveJob, msg *jobPassivated) {
	q := l.queue
	q.running--
	delete(d.live, msg.id)
	switch {
	case msg.canceledScheduled:
		d.canceledScheduled = append(d.canceledScheduled, msg.id)
	case !msg.canceledQueued:
		delete(d.canceled, msg.id)
	}
	fq := q.flow
	if k := fq.keys[l.key]; k != nil {
		k.running--
	}
	if msg.requeue != nil && !d.draining {
		d.rt.queued.Add(1)
		d.enqueue(ctx, []*domain.Job{msg.requeue})
	}
	if k := fq.keys[l.key]; k != nil {
		d.refreshKey(q, k, fq.clock.Now())
	}
	d.refresh(q)
	d.assign(ctx)
	d.serveClaims(ctx)
}

// addHold records a keyed job scheduled for a retry.
func (d *dispatcher) addHold(j *domain.Job) {
	f := &d.flow
	if _, ok := f.early[j.ID]; ok {
		// Due and queued already.
		delete(f.early, j.ID)
		return
	}
	if _, ok := f.holdOf[j.ID]; ok {
		return
	}
	if f.holdOf == nil {
		f.holdOf = make(map[uuid.UUID]holdKey)
		f.holds = make(map[holdKey]int)
	}
	hk := holdKey{queue: j.Queue, key: j.Key}
	f.holdOf[j.ID] = hk
	f.holds[hk]++
	if q := d.queues[j.Queue]; q != nil && q.flow != nil {
		if k := q.flow.keys[j.Key]; k != nil {
			d.refreshKey(q, k, q.flow.clock.Now())
			d.refresh(q)
		}
	}
}

// dropHold forgets a job's hold, if it had one, and reports whether.
func (d *dispatcher) dropHold(id uuid.UUID) bool {
	f := &d.flow
	hk, ok := f.holdOf[id]
	if !ok {
		return false
	}
	delete(f.holdOf, id)
	if f.holds[hk]--; f.holds[hk] <= 0 {
		delete(f.holds, hk)
	}
	if q := d.queues[hk.queue]; q != nil && q.flow != nil {
		if k := q.flow.keys[hk.key]; k != nil {
			d.refreshKey(q, k, q.flow.clock.Now())
		}
		d.refresh(q)
	}
	return true
}

// holdDue ends the hold of a retry that fell due; a promotion can reach
// the dispatcher before the passivation of the attempt that scheduled it,
// which then must not hold the key.
func (d *dispatcher) holdDue(j *domain.Job) {
	if d.dropHold(j.ID) {
		return
	}
	if _, live := d.live[j.ID]; live {
		if d.flow.early == nil {
			d.flow.early = make(map[uuid.UUID]struct{})
		}
		d.flow.early[j.ID] = struct{}{}
	}
}

// takeFlowExternal takes ready jobs of queues with settings for a claim,
// from n taken so far up to its Max, and returns the new count.
func (d *dispatcher) takeFlowExternal(ctx actor.Context, req *claimRequest, n int) int {
	spec := req.spec
	for _, q := range d.queues {
		if n >= spec.max {
			break
		}
		fq := q.flow
		if fq == nil || fq.ext == 0 || !spec.allowsQueue(q.name) {
			continue
		}
		now := fq.clock.Now()
		for n < spec.max && fq.ext > 0 && q.flowMayStart(now) {
			k, rq := d.pickExternal(q, spec, now)
			if k == nil {
				break
			}
			e, _ := rq.peek()
			job := e.job
			rq.pop()
			if rq.len() == 0 {
				delete(k.ext, job.Type)
			}
			k.extN--
			fq.ext--
			d.flow.extJobs--
			d.rt.queued.Add(-1)
			if _, ok := d.canceled[job.ID]; ok {
				delete(d.canceled, job.ID)
				d.refreshKey(q, k, now)
				continue
			}
			d.flowStart(q, k, now)
			d.runExternal(ctx, job, req, n)
			n++
		}
		d.refresh(q)
		d.armQueueRate(q)
	}
	return n
}

// pickExternal chooses the key and type of q whose external job a claim
// of spec takes next: round-robin across keys (the one that started
// longest ago) when fair, else the usual order.
func (d *dispatcher) pickExternal(q *queueState, spec *claimSpec, now time.Time) (*flowKey, *readyQueue) {
	fq := q.flow
	var bestK *flowKey
	var bestQ *readyQueue
	var bestE *readyEntry
	for _, k := range fq.keys {
		if k.extN == 0 || d.keyReason(q, k, true, now) != "" {
			continue
		}
		var head *readyEntry
		if fq.ordered(k) {
			head = fq.head(k)
		}
		for _, t := range spec.types {
			rq, ok := k.ext[t]
			if !ok {
				continue
			}
			e, _ := rq.peek()
			if head != nil && e != head {
				continue
			}
			better := bestE == nil
			if !better && fq.s.Fair && k != bestK {
				better = k.lastStart < bestK.lastStart || k.lastStart == bestK.lastStart && fq.crossBefore(k, e, bestK, bestE)
			} else if !better {
				better = fq.crossBefore(k, e, bestK, bestE)
			}
			if better {
				bestK, bestQ, bestE = k, rq, e
			}
		}
	}
	return bestK, bestQ
}

// setFlow applies a queue's new settings: its ready jobs are sorted again
// under them, its keys' running jobs counted again, its buckets kept when
// their rate did not change.
func (d *dispatcher) setFlow(ctx actor.Context, msg *flowSettingsChanged) {
	q := d.queue(msg.name)
	now := d.rt.clock.Now()
	old := q.flow
	var goJobs, extJobs []readyEntry
	collect := func(to *[]readyEntry) func(readyEntry) {
		return func(e readyEntry) { *to = append(*to, e) }
	}
	q.ready.drain(collect(&goJobs))
	if old != nil {
		for _, k := range old.keys {
			k.ready.drain(collect(&goJobs))
			for _, rq := range k.ext {
				rq.drain(collect(&extJobs))
			}
		}
		d.flow.extJobs -= old.ext
		d.flow.queues--
	} else if eq := d.ext.queues[msg.name]; eq != nil {
		for _, rq := range eq.byType {
			rq.drain(collect(&extJobs))
		}
		clear(eq.byType)
		eq.n = 0
		d.ext.prune()
	}
	// Submission order first: a key's jobs go back in the order they came.
	bySeq := func(a, b readyEntry) int { return cmp.Compare(a.seq, b.seq) }
	slices.SortFunc(goJobs, bySeq)
	slices.SortFunc(extJobs, bySeq)
	s := msg.settings
	if s.IsZero() {
		q.flow = nil
		for _, e := range goJobs {
			q.ready.push(e.job, e.seq)
		}
		for _, e := range extJobs {
			d.ext.push(e.job, e.seq)
		}
	} else {
		fq := newFlowQueue(s.Clone(), d.rt.clock)
		if msg.restart {
			fq.born = now
		}
		if s.Rate != nil {
			switch {
			case old != nil && old.bucket != nil && ratesEqual(old.s.Rate, s.Rate):
				fq.bucket = old.bucket
			default:
				fq.bucket = newBucket(s.Rate, fq.born, now)
			}
		}
		if old != nil && old.s.PerKey != nil && s.PerKey != nil && s.PerKey.Rate != nil &&
			ratesEqual(old.s.PerKey.Rate, s.PerKey.Rate) {
			fq.born = old.born
			for name, k := range old.keys {
				if k.bucket != nil {
					fq.key(name).bucket = k.bucket
				}
			}
		}
		q.flow = fq
		d.flow.queues++
		for _, l := range d.live {
			if l.queue == q {
				fq.key(l.key).running++
			}
		}
		for _, e := range goJobs {
			d.flowPush(q, e, false)
		}
		for _, e := range extJobs {
			d.flowPush(q, e, true)
		}
	}
	for _, j := range msg.holds {
		d.addHold(j)
	}
	if q.flow != nil {
		for _, k := range q.flow.keys {
			d.refreshKey(q, k, now)
		}
	}
	d.refresh(q)
	d.assign(ctx)
	d.serveClaims(ctx)
}

func ratesEqual(a, b *domain.Rate) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// flowReason says why job, pending in q, waits: the first reason of
// domain.WaitReasons that holds now.
func (d *dispatcher) flowReason(q *queueState, job *domain.Job, now time.Time) domain.WaitReason {
	fq := q.flow
	if fq.s.Limit > 0 && q.running >= fq.s.Limit {
		return domain.WaitQueueLimit
	}
	if fq.bucket != nil && fq.bucket.level(fq.s.Rate, now) < 1 {
		return domain.WaitQueueRate
	}
	if job.Key == "" || fq.s.PerKey == nil {
		return ""
	}
	k := fq.keys[job.Key]
	if k == nil {
		// Not queued here yet: the key holds nothing else.
		k = &flowKey{name: job.Key, idx: -1}
	}
	isHead := true
	if head := fq.head(k); head != nil {
		isHead = head.job.ID == job.ID
	}
	return d.keyReason(q, k, isHead, now)
}

// flowKeys counts the keys the named queue's flow state keeps.
func (d *dispatcher) flowKeys(name string) int {
	if q := d.queues[name]; q != nil && q.flow != nil {
		return len(q.flow.keys)
	}
	return 0
}

// flowWaiting answers why each job waits ("" for those not held back).
func (d *dispatcher) flowWaiting(jobs []*domain.Job) []domain.WaitReason {
	out := make([]domain.WaitReason, len(jobs))
	now := d.rt.clock.Now()
	for i, j := range jobs {
		if j.Status != domain.StatusPending || j.RunAt.After(now) {
			continue
		}
		if q := d.queues[j.Queue]; q != nil && q.flow != nil {
			out[i] = d.flowReason(q, j, now)
		}
	}
	return out
}

// waitingCounts counts the ready jobs held back, by queue and reason.
func (d *dispatcher) waitingCounts() []domain.WaitingCount {
	var out []domain.WaitingCount
	now := d.rt.clock.Now()
	for _, q := range d.queues {
		fq := q.flow
		if fq == nil {
			continue
		}
		counts := make(map[domain.WaitReason]int)
		for _, k := range fq.keys {
			count := func(e *readyEntry) {
				if _, ok := d.canceled[e.job.ID]; ok {
					return
				}
				if r := d.flowReason(q, e.job, now); r != "" {
					counts[r]++
				}
			}
			k.ready.each(count)
			for _, rq := range k.ext {
				rq.each(count)
			}
		}
		for _, r := range domain.WaitReasons {
			if counts[r] > 0 {
				out = append(out, domain.WaitingCount{Queue: q.name, Reason: r, Count: counts[r]})
			}
		}
	}
	slices.SortStableFunc(out, func(a, b domain.WaitingCount) int { return cmp.Compare(a.Queue, b.Queue) })
	return out
}

// settingsChanged tells the dispatcher, with the queue's keyed jobs
// scheduled for a retry when it is ordered.
func (l *localSource) settingsChanged(name string, settings domain.QueueSettings) {
	l.noteSettings(name, settings)
	msg := &flowSettingsChanged{name: name, settings: settings}
	if settings.Ordered {
		holds, err := l.retryHolds(l.rt.storeCtx, name)
		if err != nil {
			l.rt.logger.Error("read the retries that hold keys; the queue's order may let a key's next job start before them",
				slog.String("queue", name), slog.Any("error", err))
		}
		msg.holds = holds
	}
	l.rt.actors.Root.Send(l.rt.dispatcher, msg)
}

// noteSettings records whether the queue has settings.
func (l *localSource) noteSettings(name string, settings domain.QueueSettings) {
	l.settledMu.Lock()
	defer l.settledMu.Unlock()
	if settings.IsZero() {
		delete(l.settled, name)
		return
	}
	if l.settled == nil {
		l.settled = make(map[string]struct{})
	}
	l.settled[name] = struct{}{}
}

// anySettled reports whether a queue has flow settings.
func (l *localSource) anySettled() bool {
	l.settledMu.Lock()
	defer l.settledMu.Unlock()
	return len(l.settled) > 0
}

// retryHolds reads the queue's keyed jobs scheduled for a retry.
func (l *localSource) retryHolds(ctx context.Context, queue string) ([]*domain.Job, error) {
	var holds []*domain.Job
	f := domain.Filter{Statuses: []domain.Status{domain.StatusScheduled}, Queue: queue}
	err := l.rt.store.Scan(ctx, f, func(j *domain.Job) error {
		if j.Key != "" && j.Attempts > 0 {
			holds = append(holds, j)
		}
		return nil
	})
	if err != nil {
		return holds, fmt.Errorf("queue %s: scan scheduled jobs: %w", queue, err)
	}
	return holds, nil
}

// retryHeld returns the keyed jobs among jobs scheduled for a retry.
func retryHeld(jobs []*domain.Job) []*domain.Job {
	var held []*domain.Job
	for _, j := range jobs {
		if j.Status == domain.StatusScheduled && j.Key != "" && j.Attempts > 0 {
			held = append(held, j)
		}
	}
	return held
}

func (l *localSource) flowWaiting(ctx context.Context, jobs []*domain.Job) error {
	now := l.rt.clock.Now()
	due := false
	for _, j := range jobs {
		j.WaitingFor = ""
		due = due || j.Status == domain.StatusPending && !j.RunAt.After(now)
	}
	if !due || !l.anySettled() {
		return nil
	}
	res, err := l.rt.actors.Root.RequestFuture(l.rt.dispatcher, &flowWaitingRequest{jobs: jobs}, requestTimeout(ctx)).Result()
	if err != nil {
		return fmt.Errorf("ask why jobs wait: %w: %w", domain.ErrUnavailable, err)
	}
	reasons, ok := res.([]domain.WaitReason)
	if !ok {
		return fmt.Errorf("ask why jobs wait: %w: unexpected answer %T", domain.ErrUnavailable, res)
	}
	for i, j := range jobs {
		j.WaitingFor = reasons[i]
	}
	return nil
}

func (l *localSource) waitingCounts(ctx context.Context) ([]domain.WaitingCount, error) {
	if !l.anySettled() {
		return nil, nil
	}
	res, err := l.rt.actors.Root.RequestFuture(l.rt.dispatcher, &waitingCountsRequest{}, requestTimeout(ctx)).Result()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", domain.ErrUnavailable, err)
	}
	counts, ok := res.([]domain.WaitingCount)
	if !ok {
		return nil, fmt.Errorf("%w: unexpected answer %T", domain.ErrUnavailable, res)
	}
	return counts, nil
}
