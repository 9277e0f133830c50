package reconciler

import (
	"testing"
	"time"

	"github.com/drover-project/drover/reconciler/plan"
)

// TestControllerStatusShowsRollout: during a rolling upgrade the status
// names the batch in flight, the work left and why the others wait; an
// unreachable node keeps the facts of its last good probe.
func TestControllerStatusShowsRollout(t *testing.T) {
	f := newFleet(t, 3)
	c, _ := f.controller(ControllerOptions{})
	c.SetDesired(f.desired(spec{app: "1.0", maxUnavailable: "3", probeInterval: "500ms"}))
	waitFor(t, 4*time.Minute, "app 1.0", func() bool { return converged(c) && f.allAt("app", "1.0") })
	st := c.Status()
	for _, n := range st.Nodes {
		app := n.Components[0]
		if n.Facts == nil || app.Receipt == nil || app.Receipt.Version != "1.0" || app.Active != "1.0" {
			t.Errorf("%s converged: facts %+v receipt %+v active %q", n.Name, n.Facts, app.Receipt, app.Active)
		}
	}
	if r := st.Rollout; len(r.InFlight) != 0 || r.Pending != 0 || len(r.Waiting) != 0 {
		t.Errorf("converged cluster has a rollout: %+v", r)
	}

	f.RestartDelay = 300 * time.Millisecond
	c.SetDesired(f.desired(spec{app: "2.0", maxUnavailable: "1", probeInterval: "500ms"}))
	var during plan.ClusterStatus
	waitFor(t, 4*time.Minute, "one upgrade in flight, two waiting", func() bool {
		during = c.Status()
		return len(during.Rollout.InFlight) == 1 && len(during.Rollout.Waiting) == 2
	})
	a := during.Rollout.InFlight[0]
	if a.Kind != plan.ActionUpgrade || a.Component != "app" || a.To != "2.0" || during.Rollout.Pending != 2 {
		t.Errorf("rollout during the upgrade: %+v", during.Rollout)
	}
	for _, n := range during.Nodes {
		switch {
		case n.Name == a.Node && (n.InFlight == nil || n.InFlight.Component != "app" || n.Waiting != ""):
			t.Errorf("node in flight: %+v waiting %q", n.InFlight, n.Waiting)
		case n.Name != a.Node && (n.InFlight != nil || n.Waiting == ""):
			t.Errorf("%s: in flight %+v, waiting %q", n.Name, n.InFlight, n.Waiting)
		}
	}
	waitFor(t, 4*time.Minute, "app 2.0", func() bool { return converged(c) && f.allAt("app", "2.0") })

	f.set(func() { f.unreachable["n2"] = true })
	waitFor(t, time.Minute, "n2 unreachable", func() bool { return !c.Status().Nodes[1].Reachable })
	n2 := c.Status().Nodes[1]
	if n2.Facts == nil || n2.ProbeError != "dial: connection refused" {
		t.Errorf("unreachable n2: facts %+v probe error %q", n2.Facts, n2.ProbeError)
	}
}
