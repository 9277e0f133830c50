package reconciler

import (
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
