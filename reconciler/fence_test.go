package reconciler

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drover-project/drover/reconciler/execute"
	"github.com/drover-project/drover/reconciler/plan"
)

// testFence is a Fence a test closes.
type testFence struct{ closed atomic.Bool }

var errLostLead = errors.New("lease lost")

func (f *testFence) MayAct() error {
	if f.closed.Load() {
		return errLostLead
	}
	return nil
}

// The controller admits no action while the fence is closed, says why in
// the node's status, and does not count it as the node's failure: when
// the fence opens the nodes converge without waiting out a backoff.
func TestControllerClosedFenceAdmitsNothing(t *testing.T) {
	f := newFleet(t, 2)
	fence := &testFence{}
	fence.closed.Store(true)
	c, _ := f.controller(ControllerOptions{Fence: fence, BackoffBase: time.Hour, BackoffMax: time.Hour})
	c.SetDesired(f.desired(spec{app: "1.0", maxUnavailable: "2"}))
	waitFor(t, time.Minute, "status to say why nothing starts", func() bool {
		st := c.Status()
		for _, n := range st.Nodes {
			if !strings.Contains(n.Waiting, errLostLead.Error()) {
				return false
			}
		}
		return len(st.Nodes) == 2
	})
	f.mu.Lock()
	attempts := len(f.attempts)
	f.mu.Unlock()
	if attempts != 0 || len(f.eventsOf(EventActionStart)) != 0 {
		t.Fatalf("actions started under a closed fence: %d", attempts)
	}
	for _, n := range c.Status().Nodes {
		if n.ConsecutiveFailures != 0 || slices.ContainsFunc(n.History, func(r plan.ActionRecord) bool { return r.Result == "failure" }) {
			t.Errorf("%s: closed fence counted as a failure: %+v", n.Name, n)
		}
	}
	fence.closed.Store(false)
	// A backoff of an hour would show: the nodes converge at once.
	waitFor(t, time.Minute, "convergence once the fence opens", func() bool { return converged(c) && f.allAt("app", "1.0") })
}

// A step fenced between admission and its start fails the action without
// counting as the node's failure (no backoff, no failure count).
func TestControllerFencedStepIsNoNodeFailure(t *testing.T) {
	f := newFleet(t, 1)
	fence := &testFence{}
	var once sync.Once
	c, _ := f.controller(ControllerOptions{Fence: fence, BackoffBase: time.Hour, BackoffMax: time.Hour, OnEvent: func(e Event) {
		if e.Kind == EventActionStart {
			once.Do(func() { fence.closed.Store(true) })
		}
	}})
	c.SetDesired(f.desired(spec{app: "1.0", maxUnavailable: "1"}))
	waitFor(t, time.Minute, "the fenced action to end", func() bool { return len(f.eventsOf(EventActionFailed)) > 0 })
	ev := f.eventsOf(EventActionFailed)[0]
	if !strings.Contains(ev.Message, execute.ErrFenced.Error()) {
		t.Fatalf("failed action says %q, want the fence", ev.Message)
	}
	if n := c.Status().Nodes[0]; n.ConsecutiveFailures != 0 {
		t.Errorf("fenced step counted as the node's failure: %d", n.ConsecutiveFailures)
	}
	fence.closed.Store(false)
	waitFor(t, time.Minute, "convergence once the fence opens", func() bool { return converged(c) && f.allAt("app", "1.0") })
}
