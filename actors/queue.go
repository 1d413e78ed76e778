package actors

import "github.com/troupe-go/troupe/domain"

// readyQueue holds one named queue's jobs ready to run, in the order they
// must start: priority (1 first), then RunAt, then arrival. It is a binary
// min-heap, O(log n) a push or a pop. Nine FIFO rings (one a priority)
// would be O(1), but they keep RunAt order only if jobs arrive in it, and
// they do not: a promoted job or a retry comes due with a RunAt older than
// the fresh submissions already waiting, and must go before them. The
// sort key lives in the entry, so comparisons touch no job.
type readyQueue struct {
	items []readyEntry
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

func (q *readyQueue) len() int { return len(q.items) }

func (q *readyQueue) push(j *domain.Job, seq uint64) {
	q.items = append(q.items, readyEntry{key: readyKey(j), seq: seq, job: j})
	items := q.items
	i := len(items) - 1
	e := items[i]
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

func (q *readyQueue) pop() (*domain.Job, bool) {
	n := len(q.items)
	if n == 0 {
		return nil, false
	}
	items := q.items
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
	// A flood leaves a large backing array behind; give it back once the
	// queue is down to a quarter of it.
	if c := cap(items); c > 4096 && len(items) <= c/4 {
		items = append(make([]readyEntry, 0, c/2), items...)
	}
	q.items = items
	return top, true
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
}

// canStart reports whether a worker may take the queue's next job now.
func (q *queueState) canStart() bool {
	return q.ready.len() > 0 && !q.paused && (q.limit == 0 || q.running < q.limit)
}

// idle reports whether the state holds nothing worth keeping.
func (q *queueState) idle() bool {
	return q.ready.len() == 0 && q.running == 0 && !q.paused && q.limit == 0
}
