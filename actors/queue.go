package actors

import "github.com/troupe-go/troupe/domain"

// readyQueue holds one named queue's jobs ready to run, in the order they
// must start: priority (1 first), then RunAt, then arrival. Jobs mostly
// arrive in that order (a stream of submissions at one priority), and
// those wait in a FIFO at O(1) a push or a pop; a job that arrives before
// the FIFO's last (a higher priority, or a promoted job or a retry whose
// RunAt is older than fresh submissions) goes to a binary min-heap at
// O(log n). A pop takes the earlier of the two heads. Nine FIFO rings
// (one a priority) would not do: they keep RunAt order only if jobs
// arrive in it. The sort key lives in the entry, so comparisons touch no
// job.
type readyQueue struct {
	// inOrder[head:] is the FIFO: each entry is not before the one ahead.
	inOrder []readyEntry
	head    int
	// heap holds the entries that arrived out of order.
	heap []readyEntry
}

type readyEntry struct {
	// key is the priority above bit 52 and RunAt in microseconds below:
	// one comparison orders by both.
	key uint64
	// seq is the arrival order, for jobs of equal priority and RunAt (a
	// batch shares its submission time).
	seq uint64
	job *domain.Job
}

// runAtBits holds RunAt in microseconds since 1970: 2^52 µs reach 2112.
const runAtBits = 52

func readyKey(j *domain.Job) uint64 {
	us := min(max(j.RunAt.UnixMicro(), 0), 1<<runAtBits-1)
	return uint64(j.Priority)<<runAtBits | uint64(us)
}

func (e *readyEntry) before(o *readyEntry) bool {
	return e.key < o.key || e.key == o.key && e.seq < o.seq
}

func (q *readyQueue) len() int { return len(q.inOrder) - q.head + len(q.heap) }

func (q *readyQueue) push(j *domain.Job, seq uint64) {
	q.pushEntry(readyEntry{key: readyKey(j), seq: seq, job: j})
}

// pushEntry queues an entry whose key the caller chose (an ordered key's
// jobs sort without their priority; flow_local.go).
func (q *readyQueue) pushEntry(e readyEntry) {
	if n := len(q.inOrder); n == q.head || !e.before(&q.inOrder[n-1]) {
		q.inOrder = append(q.inOrder, e)
		return
	}
	q.heap = append(q.heap, e)
	items := q.heap
	i := len(items) - 1
	for i > 0 {
		parent := (i - 1) / 2
		if !e.before(&items[parent]) {
			break
		}
		items[i] = items[parent]
		i = parent
	}
	items[i] = e
}

// peek returns the entry pop would take, without taking it.
func (q *readyQueue) peek() (*readyEntry, bool) {
	fifo := q.head < len(q.inOrder)
	switch {
	case fifo && (len(q.heap) == 0 || !q.heap[0].before(&q.inOrder[q.head])):
		return &q.inOrder[q.head], true
	case len(q.heap) > 0:
		return &q.heap[0], true
	}
	return nil, false
}

func (q *readyQueue) pop() (*domain.Job, bool) {
	fifo := q.head < len(q.inOrder)
	switch {
	case fifo && (len(q.heap) == 0 || !q.heap[0].before(&q.inOrder[q.head])):
		return q.popInOrder(), true
	case len(q.heap) > 0:
		return q.popHeap(), true
	}
	return nil, false
}

// each calls f on every entry, in no particular order.
func (q *readyQueue) each(f func(*readyEntry)) {
	for i := q.head; i < len(q.inOrder); i++ {
		f(&q.inOrder[i])
	}
	for i := range q.heap {
		f(&q.heap[i])
	}
}

// drain empties the queue, calling f on every entry.
func (q *readyQueue) drain(f func(readyEntry)) {
	q.each(func(e *readyEntry) { f(*e) })
	*q = readyQueue{}
}

func (q *readyQueue) popInOrder() *domain.Job {
	top := q.inOrder[q.head].job
	q.inOrder[q.head] = readyEntry{}
	q.head++
	switch n := len(q.inOrder) - q.head; {
	case n == 0:
		q.inOrder, q.head = q.inOrder[:0], 0
	case q.head >= 4096 && q.head >= n:
		// Slide the rest down rather than let the head walk the array
		// for ever; each entry moves at most once per doubling.
		copy(q.inOrder, q.inOrder[q.head:])
		clear(q.inOrder[n:])
		q.inOrder, q.head = q.inOrder[:n], 0
	}
	q.inOrder = shrunk(q.inOrder)
	return top
}

func (q *readyQueue) popHeap() *domain.Job {
	items := q.heap
	n := len(items)
	top := items[0].job
	last := items[n-1]
	items[n-1] = readyEntry{}
	items = items[:n-1]
	if n--; n > 0 {
		i := 0
		for {
			child := 2*i + 1
			if child >= n {
				break
			}
			if r := child + 1; r < n && items[r].before(&items[child]) {
				child = r
			}
			if !items[child].before(&last) {
				break
			}
			items[i] = items[child]
			i = child
		}
		items[i] = last
	}
	q.heap = shrunk(items)
	return top
}

// shrunk gives back the backing array a flood left behind, once the
// entries are down to a quarter of it.
func shrunk(items []readyEntry) []readyEntry {
	if c := cap(items); c > 4096 && len(items) <= c/4 {
		return append(make([]readyEntry, 0, c/2), items...)
	}
	return items
}

// queueState is what the dispatcher knows of one named queue on this node.
type queueState struct {
	name  string
	ready readyQueue
	// running counts the queue's jobs handed to a worker here whose actor
	// has not yet passivated: an attempt ends with its outcome written.
	running int
	// limit caps running (Config.QueueLimits); 0 means no cap.
	limit  int
	paused bool
	// listed says the queue is in the dispatcher's round-robin.
	listed bool
	// flow is the state of the queue's flow settings, nil without any:
	// then ready holds the queue's jobs and nothing else is looked at.
	// With settings, flow holds them (flow_local.go).
	flow *flowQueue
}

// canStart reports whether a worker may take the queue's next job now.
func (q *queueState) canStart() bool {
	if q.flow != nil {
		return q.flowCanStart()
	}
	return q.ready.len() > 0 && !q.paused && (q.limit == 0 || q.running < q.limit)
}

// idle reports whether the state holds nothing worth keeping.
func (q *queueState) idle() bool {
	return q.flow == nil && q.ready.len() == 0 && q.running == 0 && !q.paused && q.limit == 0
}
