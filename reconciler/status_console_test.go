package reconciler

import (
	"strings"
	"testing"
	"time"

	"github.com/drover-project/drover/probes"
)

// TestNodeStatusesDetail: the facts, placement, receipts and probe error
// the console shows come from the desired node and its probe.
func TestNodeStatusesDetail(t *testing.T) {
	d, err := compileYAML(t, "/srv/c.yaml", strings.Replace(diffManifest,
		"{name: m1, address: 127.0.2.1, roles: [master]}", "{name: m1, address: 127.0.2.1, roles: [master], labels: {zone: b}}", 1))
	if err != nil {
		t.Fatal(err)
	}
	obs := diffObserved(d)
	m1 := obs["m1"]
	m1.OS = probes.OS{ID: "debian", VersionID: "12", Arch: "x86_64", Hostname: "m1", FreeBytes: 5 << 30}
	m1.Duration = 120 * time.Millisecond
	m1.Components["zk"] = oldVersion("zk", "3.8.0")
	obs["m1"] = m1

	st := NodeStatuses(d, obs, Diff(d, obs))[0]
	if f := st.Facts; f == nil || *f != (NodeFacts{OSID: "debian", OSVersion: "12", Arch: "x86_64", Hostname: "m1", FreeBytes: 5 << 30}) {
		t.Errorf("facts = %+v", st.Facts)
	}
	if len(st.Roles) != 1 || st.Roles[0] != "master" || st.Labels["zone"] != "b" {
		t.Errorf("roles %v labels %v", st.Roles, st.Labels)
	}
	if st.ProbeDuration != 120*time.Millisecond || st.ProbeError != "" {
		t.Errorf("probe duration %s error %q", st.ProbeDuration, st.ProbeError)
	}
	zk := st.Components[0]
	if zk.Receipt == nil || zk.Receipt.Version != "3.8.0" || zk.Receipt.ConfigHash != "old" || zk.Active != "3.8.0" || zk.Unit != "active (running)" {
		t.Errorf("zk detail: receipt %+v active %q unit %q", zk.Receipt, zk.Active, zk.Unit)
	}
	// The status holds a copy: changing it leaves the observation alone.
	zk.Receipt.Version = "x"
	if obs["m1"].Components["zk"].Receipt.Version != "3.8.0" {
		t.Error("the status shares the probe's receipt")
	}

	obs["m1"] = probes.Observed{Node: "m1", Reason: "unreachable", Error: "dial tcp 127.0.2.1:22: i/o timeout", ProbedAt: time.Now()}
	st = NodeStatuses(d, obs, Diff(d, obs))[0]
	if st.ProbeError != "unreachable: dial tcp 127.0.2.1:22: i/o timeout" || st.Facts != nil || st.LastProbeAttempt.IsZero() {
		t.Errorf("unreachable: probe error %q facts %+v attempt %v", st.ProbeError, st.Facts, st.LastProbeAttempt)
	}
}

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
	var during ClusterStatus
	waitFor(t, 4*time.Minute, "one upgrade in flight, two waiting", func() bool {
		during = c.Status()
		return len(during.Rollout.InFlight) == 1 && len(during.Rollout.Waiting) == 2
	})
	a := during.Rollout.InFlight[0]
	if a.Kind != ActionUpgrade || a.Component != "app" || a.To != "2.0" || during.Rollout.Pending != 2 {
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
