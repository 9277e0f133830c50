package reconciler

import (
	"sync"
	"time"
)

// Queue is the daemon's per-node work queue, in the manner of client-go's
// workqueue: a node is handed to at most one worker at a time; adding a
// node that is already waiting collapses into one entry; adding a node
// that is being worked on marks it dirty, and it comes back once Done.
type Queue struct {
	mu         sync.Mutex
	cond       *sync.Cond
	order      []string
	waiting    map[string]bool
	processing map[string]bool
	dirty      map[string]bool
	timers     map[string]timerEntry
	shutdown   bool
}

type timerEntry struct {
	at time.Time
	t  *time.Timer
}

// NewQueue returns an empty queue.
func NewQueue() *Queue {
	q := &Queue{
		waiting:    map[string]bool{},
		processing: map[string]bool{},
		dirty:      map[string]bool{},
		timers:     map[string]timerEntry{},
	}
	q.cond = sync.NewCond(&q.mu)
	return q
}

// Add queues node now.
func (q *Queue) Add(node string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.addLocked(node)
}

func (q *Queue) addLocked(node string) {
	if q.shutdown {
		return
	}
	if e, ok := q.timers[node]; ok {
		e.t.Stop()
		delete(q.timers, node)
	}
	if q.processing[node] {
		q.dirty[node] = true
		return
	}
	if q.waiting[node] {
		return
	}
	q.waiting[node] = true
	q.order = append(q.order, node)
	q.cond.Signal()
}

// AddAfter queues node after d. An earlier pending AddAfter for the same
// node wins; Add supersedes both.
func (q *Queue) AddAfter(node string, d time.Duration) {
	if d <= 0 {
		q.Add(node)
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.shutdown || q.waiting[node] {
		return
	}
	at := time.Now().Add(d)
	if e, ok := q.timers[node]; ok {
		if !e.at.After(at) {
			return
		}
		e.t.Stop()
	}
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		q.mu.Lock()
		defer q.mu.Unlock()
		if e, ok := q.timers[node]; ok && e.t == t {
			delete(q.timers, node)
			q.addLocked(node)
		}
	})
	q.timers[node] = timerEntry{at: at, t: t}
}

// Get blocks until a node is ready and hands it out; ok is false once the
// queue is shut down.
func (q *Queue) Get() (node string, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.order) == 0 && !q.shutdown {
		q.cond.Wait()
	}
	if q.shutdown {
		return "", false
	}
	node = q.order[0]
	q.order = q.order[1:]
	delete(q.waiting, node)
	q.processing[node] = true
	return node, true
}

// Done ends the work on node; it is queued again if it was added meanwhile.
func (q *Queue) Done(node string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.processing, node)
	if q.dirty[node] {
		delete(q.dirty, node)
		q.addLocked(node)
	}
}

// Len is the number of nodes waiting (not in progress, not delayed).
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.order)
}

// ShutDown wakes every Get with ok=false and drops pending timers.
func (q *Queue) ShutDown() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.shutdown = true
	for n, e := range q.timers {
		e.t.Stop()
		delete(q.timers, n)
	}
	q.cond.Broadcast()
}
