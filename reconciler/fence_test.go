package reconciler

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
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

// The fence closes while an install's first batch runs: the batch, one
// session already under way, ends; no step after it starts (not the
// restart, not the receipt), and the action fails with ErrFenced and the
// fence's reason.
func TestExecutorFenceStopsStepsOnceClosed(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	fence := &testFence{}
	f.e.Fence = fence
	var mu sync.Mutex
	var after []string
	f.n.Runner.Hook = func(label, script string, _ []byte) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		if fence.closed.Load() {
			after = append(after, label)
		}
		if label == "step: switch active" {
			fence.closed.Store(true)
		}
		return script, nil
	}
	err := f.do(t, ActionInstall, f.component(t, "1.0.0", false))
	if !errors.Is(err, ErrFenced) || !errors.Is(err, errLostLead) {
		t.Fatalf("install under a closed fence: %v, want ErrFenced wrapping the reason", err)
	}
	if !strings.Contains(err.Error(), "restart unit") {
		t.Errorf("error %q does not name the step that did not start", err)
	}
	for _, l := range after {
		if strings.HasPrefix(l, "step") {
			t.Errorf("step ran after the fence closed: %q", l)
		}
	}
	// Nothing runs at all once it is closed.
	f.n.Runner.Hook = func(label, script string, _ []byte) (string, error) {
		if strings.HasPrefix(label, "step") {
			t.Errorf("step %q ran under a closed fence", label)
		}
		return script, nil
	}
	if err := f.do(t, ActionInstall, f.component(t, "1.0.0", false)); !errors.Is(err, ErrFenced) {
		t.Fatalf("second install: %v", err)
	}
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
		if n.ConsecutiveFailures != 0 || slices.ContainsFunc(n.History, func(r ActionRecord) bool { return r.Result == "failure" }) {
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
	if !strings.Contains(ev.Message, ErrFenced.Error()) {
		t.Fatalf("failed action says %q, want the fence", ev.Message)
	}
	if n := c.Status().Nodes[0]; n.ConsecutiveFailures != 0 {
		t.Errorf("fenced step counted as the node's failure: %d", n.ConsecutiveFailures)
	}
	fence.closed.Store(false)
	waitFor(t, time.Minute, "convergence once the fence opens", func() bool { return converged(c) && f.allAt("app", "1.0") })
}
