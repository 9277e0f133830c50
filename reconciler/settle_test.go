package reconciler

import (
	"errors"
	"strings"
	"testing"

	"github.com/drover-project/drover/manifests"
	"github.com/drover-project/drover/probes"
	"github.com/drover-project/drover/reconciler/plan"
)

// appPair is a cluster of two nodes, n1 and n2, that should run app at
// version 2 under maxUnavailable 1, and their observation: both run
// version 1, healthy. Tests then spoil the observation.
func appPair() (*plan.Desired, map[string]probes.Observed) {
	d := &plan.Desired{
		Generation: "gen-1",
		Order:      []string{"app"},
		Components: map[string]*plan.DesiredComponentInfo{"app": {Name: "app", Version: "2", Present: true, Members: []string{"n1", "n2"}}},
		Rollout:    plan.RolloutPolicy{MaxUnavailable: *manifests.NewCount(1)},
	}
	obs := map[string]probes.Observed{}
	for _, name := range []string{"n1", "n2"} {
		d.Nodes = append(d.Nodes, &plan.DesiredNode{Name: name, Components: []*plan.DesiredComponent{{
			Name: "app", Version: "2", ConfigHash: "c", Unit: []byte("u"), UnitHash: "u",
			Health: &manifests.Health{TCP: &manifests.TCPCheck{Port: 1}},
		}}})
		obs[name] = probes.Observed{Node: name, Known: true, Components: map[string]*probes.Component{"app": {
			Name:     "app",
			Receipt:  &probes.Receipt{Component: "app", Version: "1", ConfigHash: "old", UnitHash: "old"},
			Active:   "1",
			Packages: map[string]bool{"1": true},
			Unit:     probes.UnitState{Exists: true, Hash: "old", ActiveState: "active", SubState: "running", Enabled: true},
			Health:   probes.HealthResult{Checked: true, OK: true},
		}}}
	}
	d.IndexNodes()
	return d, obs
}

// settleWorld is a controller whose every node has been through a pass
// against obs: those with actions were told why they wait (as their pass
// said then) and have seen the current progress.
func settleWorld(d *plan.Desired, obs map[string]probes.Observed, waiting map[string]string) *Controller {
	c := NewController(ControllerOptions{})
	c.desired = d
	p := plan.Diff(d, obs)
	for i, n := range d.Nodes {
		c.nodes[n.Name] = &nodeTrack{obs: obs[n.Name], plan: p.Nodes[i], probed: true, waiting: waiting[n.Name], seenProgress: c.progress}
	}
	return c
}

// A node told to wait while the others were not probed yet has not
// settled once they turn out healthy: its next pass will start its action.
func TestSettledNotWhileTheRolloutWouldRelease(t *testing.T) {
	d, obs := appPair()
	// n1 is current; n2 still has its upgrade to do.
	n1 := obs["n1"].Components["app"]
	n1.Receipt = &probes.Receipt{Component: "app", Version: "2", ConfigHash: "c", UnitHash: "u"}
	n1.Active, n1.Packages, n1.Unit.Hash, n1.FilesHash = "2", map[string]bool{"2": true}, "u", "c"
	if np := plan.DiffNode(d, d.Node("n1"), obs["n1"]); len(np.Actions) != 0 {
		t.Fatalf("n1 should be current, plan: %+v", np.Actions)
	}
	c := settleWorld(d, obs, map[string]string{"n2": "app: 1 action waits for maxUnavailable 1 (unavailable: n1)"})
	if ok, err := c.settled(); ok {
		t.Fatalf("settled (%v) while n2's upgrade may start", err)
	}

	// With n1 down, n2 may not start: that is settled, and says why.
	n1.Health = probes.HealthResult{Checked: true, Message: "refused"}
	n1.Unit.ActiveState = "failed"
	c = settleWorld(d, obs, map[string]string{"n2": "app: 1 action waits for maxUnavailable 1 (unavailable: n1)"})
	c.nodes["n1"].failures = settleAttempts
	ok, err := c.settled()
	if !ok || err == nil || !strings.Contains(err.Error(), "n2: 1 action(s) pending") {
		t.Fatalf("settled = %v, %v; want not converged with n2 pending", ok, err)
	}
}

// A node whose action failed its health gate and halted the rollout keeps
// its failure count; the apply must still end, with ErrHalted.
func TestSettledWhenHaltedAfterAFailure(t *testing.T) {
	d, obs := appPair()
	c := settleWorld(d, obs, map[string]string{"n1": "rollout halted: x", "n2": "rollout halted: x"})
	c.nodes["n1"].failures = 1
	c.halt = plan.RolloutStatus{Halted: true, Reason: "x", Generation: d.Generation}
	if ok, err := c.settled(); !ok || !errors.Is(err, ErrHalted) {
		t.Fatalf("settled = %v, %v; want ErrHalted", ok, err)
	}
}
