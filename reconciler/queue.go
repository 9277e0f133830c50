package reconciler

import (
	"slices"
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

// AddFirst queues node now, ahead of the nodes already waiting (a node
// the rollout admits once a slot frees must not wait for a sweep of the
// fleet).
func (q *Queue) AddFirst(node string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.waiting[node] {
		if i := slices.Index(q.order, node); i > 0 {
			q.order = slices.Insert(slices.Delete(q.order, i, i+1), 0, node)
		}
		return
	}
	q.addLocked(node)
	if q.waiting[node] {
		q.order = slices.Insert(q.order[:len(q.order)-1], 0, node)
	}
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
// node wins; Add supersedes both. A wait of coalesceAfter or more ends on
// a whole coalesceGrain (up to one grain late), so the probes of many
// nodes due within the same grain start together.
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
	at := dueTime(time.Now(), d)
	if e, ok := q.timers[node]; ok {
		if !e.at.After(at) {
			return
		}
		e.t.Stop()
	}
	var t *time.Timer
	t = time.AfterFunc(time.Until(at), func() {
		q.mu.Lock()
		defer q.mu.Unlock()
		if e, ok := q.timers[node]; ok && e.t == t {
			delete(q.timers, node)
			q.addLocked(node)
		}
	})
	q.timers[node] = timerEntry{at: at, t: t}
}

// Timer coalescing, as in the kernel's timer slack: each timer that fires
// wakes the daemon, and on a VM a wake-up (a context switch or two, the Go
// runtime's sysmon thread coming back for a while) costs more CPU than the
// probe it starts. Probe intervals are jittered by ±20% anyway; a second
// more on a 30 s interval changes nothing, and 500 nodes at 30 s wake the
// daemon once a second, not 17 times.
const (
	coalesceAfter = 2 * time.Second
	coalesceGrain = time.Second
)

// dueTime is when a wait of d from now ends: now+d, rounded up to a whole
// coalesceGrain for a wait of coalesceAfter or more.
func dueTime(now time.Time, d time.Duration) time.Time {
	at := now.Add(d)
	if d < coalesceAfter {
		return at
	}
	if r := at.Truncate(coalesceGrain); r.Before(at) {
		at = r.Add(coalesceGrain)
	}
	return at
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
