package actors

import "github.com/troupe-go/troupe/domain"

// readyQueue is a FIFO ring buffer of jobs ready to run. A slice that only
// grows at the tail and shrinks at the head would keep its backing array
// forever; the ring reuses it, so a backlog costs one pointer a job here.
type readyQueue struct {
	buf        []*domain.Job
	head, size int
}

func (q *readyQueue) push(j *domain.Job) {
	if q.size == len(q.buf) {
		q.grow()
	}
	q.buf[(q.head+q.size)%len(q.buf)] = j
	q.size++
}

func (q *readyQueue) pop() (*domain.Job, bool) {
	if q.size == 0 {
		return nil, false
	}
	j := q.buf[q.head]
	q.buf[q.head] = nil
	q.head = (q.head + 1) % len(q.buf)
	q.size--
	if q.size == 0 {
		q.head = 0
	}
	return j, true
}

func (q *readyQueue) grow() {
	n := max(2*len(q.buf), 64)
	buf := make([]*domain.Job, n)
	for i := range q.size {
		buf[i] = q.buf[(q.head+i)%len(q.buf)]
	}
	q.buf, q.head = buf, 0
}
