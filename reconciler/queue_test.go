package reconciler

import (
	"strings"
	"sync"
	"testing"
	"time"
)

func TestQueueCollapsesWaitingDuplicates(t *testing.T) {
	q := NewQueue()
	q.Add("a")
	q.Add("b")
	q.Add("a")
	if got := q.Len(); got != 2 {
		t.Fatalf("Len = %d, want 2", got)
	}
	n, _ := q.Get()
	if n != "a" {
		t.Fatalf("first = %q, want a (FIFO)", n)
	}
}

func TestQueueNeverHandsOutANodeTwice(t *testing.T) {
	q := NewQueue()
	q.Add("a")
	n, _ := q.Get()
	q.Add("a") // arrives while a is processed: marked dirty, not handed out
	if q.Len() != 0 {
		t.Fatalf("node in progress was queued again")
	}
	q.Done(n)
	if q.Len() != 1 {
		t.Fatalf("dirty node not requeued after Done")
	}
}

func TestQueueAddAfterKeepsEarliestAndAddWins(t *testing.T) {
	q := NewQueue()
	q.AddAfter("a", time.Hour)
	q.AddAfter("a", 10*time.Millisecond)
	deadline := time.Now().Add(2 * time.Second)
	for q.Len() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if q.Len() != 1 {
		t.Fatalf("earlier AddAfter did not fire")
	}
	q.Get()
	q.Done("a")
	q.AddAfter("b", time.Hour)
	q.Add("b")
	if q.Len() != 1 {
		t.Fatalf("Add did not supersede a pending AddAfter")
	}
	q.ShutDown()
}

func TestQueueShutDownReleasesWorkers(t *testing.T) {
	q := NewQueue()
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, ok := q.Get(); ok {
				t.Errorf("Get returned ok after shutdown")
			}
		}()
	}
	time.Sleep(20 * time.Millisecond)
	q.ShutDown()
	wg.Wait()
}

// TestDueTime: long waits end on a whole second, never early and at most
// a second late; short ones (backoffs, retries) are not moved.
func TestDueTime(t *testing.T) {
	base := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		now  time.Duration // after base
		d    time.Duration
		want time.Duration // after base
	}{
		{0, 30 * time.Second, 30 * time.Second},
		{250 * time.Millisecond, 30 * time.Second, 31 * time.Second},
		{999 * time.Millisecond, 24*time.Second + 1, 25 * time.Second},
		{100 * time.Millisecond, 2 * time.Second, 3 * time.Second},
		{100 * time.Millisecond, 1999 * time.Millisecond, 2099 * time.Millisecond},
		{100 * time.Millisecond, 50 * time.Millisecond, 150 * time.Millisecond},
	} {
		got := dueTime(base.Add(tc.now), tc.d).Sub(base)
		if got != tc.want {
			t.Errorf("dueTime(+%v, %v) = +%v, want +%v", tc.now, tc.d, got, tc.want)
		}
	}
}

// TestQueueAddFirst: AddFirst puts a node ahead of those waiting, moves
// one already waiting to the front, and marks one being worked on dirty.
func TestQueueAddFirst(t *testing.T) {
	q := NewQueue()
	defer q.ShutDown()
	for _, n := range []string{"a", "b", "c"} {
		q.Add(n)
	}
	q.AddFirst("d")
	q.AddFirst("c")
	var got []string
	for range 4 {
		n, _ := q.Get()
		got = append(got, n)
	}
	if strings.Join(got, "") != "cdab" {
		t.Errorf("order %v, want c d a b", got)
	}
	q.AddFirst("a") // being worked on
	if q.Len() != 0 {
		t.Errorf("a node in progress was queued again before Done")
	}
	q.Done("a")
	if n, _ := q.Get(); n != "a" {
		t.Errorf("got %s after Done, want the dirty a", n)
	}
}
