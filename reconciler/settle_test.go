package reconciler

import (
	"errors"
	"strings"
	"testing"

	"github.com/drover-project/drover/manifests"
)

// settleWorld is a controller whose every node has been through a pass
// against the waveWorld's observations: those with actions were told why
// they wait (as their pass said then) and have seen the current progress.
func settleWorld(w *waveWorld, waiting map[string]string) *Controller {
	c := NewController(ControllerOptions{})
	c.desired = w.d
	plan := Diff(w.d, w.obs)
	for i, n := range w.d.Nodes {
		c.nodes[n.Name] = &nodeTrack{obs: w.obs[n.Name], plan: plan.Nodes[i], probed: true, waiting: waiting[n.Name], seenProgress: c.progress}
	}
	return c
}

// A node told to wait while the others were not probed yet has not
// settled once they turn out healthy: its next pass will start its action.
func TestSettledNotWhileTheRolloutWouldRelease(t *testing.T) {
	w := newWaveWorld(*manifests.NewCount(1), nil, []string{"n1", "n2"}, waveComp{name: "app", members: []string{"n1", "n2"}})
	w.synced("n1", "app") // n2 still has its upgrade to do
	c := settleWorld(w, map[string]string{"n2": "app: 1 action waits for maxUnavailable 1 (unavailable: n1)"})
	if ok, err := c.settled(); ok {
		t.Fatalf("settled (%v) while n2's upgrade may start", err)
	}

	// With n1 down, n2 may not start: that is settled, and says why.
	w.failing("n1", "app")
	w.comp("n1", "app").Unit.ActiveState = "failed"
	c = settleWorld(w, map[string]string{"n2": "app: 1 action waits for maxUnavailable 1 (unavailable: n1)"})
	c.nodes["n1"].failures = settleAttempts
	ok, err := c.settled()
	if !ok || err == nil || !strings.Contains(err.Error(), "n2: 1 action(s) pending") {
		t.Fatalf("settled = %v, %v; want not converged with n2 pending", ok, err)
	}
}

// A node whose action failed its health gate and halted the rollout keeps
// its failure count; the apply must still end, with ErrHalted.
func TestSettledWhenHaltedAfterAFailure(t *testing.T) {
	w := newWaveWorld(*manifests.NewCount(1), nil, []string{"n1", "n2"}, waveComp{name: "app", members: []string{"n1", "n2"}})
	c := settleWorld(w, map[string]string{"n1": "rollout halted: x", "n2": "rollout halted: x"})
	c.nodes["n1"].failures = 1
	c.halt = RolloutStatus{Halted: true, Reason: "x", Generation: w.d.Generation}
	if ok, err := c.settled(); !ok || !errors.Is(err, ErrHalted) {
		t.Fatalf("settled = %v, %v; want ErrHalted", ok, err)
	}
}
