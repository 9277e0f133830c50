package reconciler

import (
	"fmt"
	"strings"
	"testing"

	"github.com/drover-project/drover/manifests"
	"github.com/drover-project/drover/probes"
	"github.com/drover-project/drover/reconciler/plan"
)

// pendingFleet is a controller over n nodes, each probed running an
// older config of its one component, so each has a disruptive
// reconfigure to do, as after a manifest edit; maxUnavailable is 10%.
func pendingFleet(tb testing.TB, n int) (*Controller, *plan.Desired) {
	tb.Helper()
	var m strings.Builder
	m.WriteString("apiVersion: drover/v1\nkind: Cluster\nmetadata: {name: fleet}\nspec:\n  rollout: {maxUnavailable: \"10%\"}\n  nodes:\n")
	for i := range n {
		fmt.Fprintf(&m, "    - {name: sim-%05d, address: 10.%d.%d.%d}\n", i, i/65536, i/256%256, i%256)
	}
	m.WriteString(`  components:
    - name: app
      version: "1.0"
      artifact: {url: "https://example.com/app.tar.gz", sha256: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa}
      files:
        - {path: conf/app.conf, template: "address={{ .Node.Address }}\n"}
      service: {exec: "{{ .Dir }}/bin/app"}
      health: {exec: {command: [/opt/drover/active/app/bin/app, --check]}, timeout: 5s}
`)
	l, err := manifests.LoadBytes("fleet.yaml", []byte(m.String()))
	if err != nil {
		tb.Fatal(err)
	}
	d, err := plan.Compile(l)
	if err != nil {
		tb.Fatal(err)
	}
	c := NewController(ControllerOptions{})
	c.SetDesired(d)
	for _, dn := range d.Nodes {
		want := dn.Components[0]
		obs := probes.Observed{Node: dn.Name, Known: true, Components: map[string]*probes.Component{"app": {
			Name:    "app",
			Receipt: &probes.Receipt{Component: "app", Version: "1.0", ArtifactSHA256: want.ArtifactSHA256, ConfigHash: "older", UnitHash: want.UnitHash},
			Active:  "1.0", Packages: map[string]bool{"1.0": true},
			FilesHash: "older",
			Unit:      probes.UnitState{Exists: true, Hash: want.UnitHash, ActiveState: "active", SubState: "running", Enabled: true},
			Health:    probes.HealthResult{Checked: true, OK: true},
		}}}
		st := c.nodes[dn.Name]
		st.obs, st.probed, st.probedFor, st.plan = obs, true, d, plan.DiffNode(d, dn, obs)
		c.observed[dn.Name] = obs
	}
	return c, d
}

// TestReservedSlotsCountAsInFlight: slots a wake reserved count against
// maxUnavailable in every plan until their nodes take them, and a node
// whose pass does not take its slot frees it.
func TestReservedSlotsCountAsInFlight(t *testing.T) {
	c, d := pendingFleet(t, 20) // maxUnavailable 10%: 2
	c.mu.Lock()
	first := c.waveLocked(d)
	if len(first.Actions) != 2 {
		c.mu.Unlock()
		t.Fatalf("a wave of %d, want 2", len(first.Actions))
	}
	for _, a := range first.Actions {
		c.reserved[a.Node] = a
	}
	again := c.waveLocked(d)
	c.mu.Unlock()
	if len(again.Actions) != 0 {
		t.Fatalf("with both slots reserved the planner still starts %v", again.Actions)
	}
	// The first reserved node's probe finds it has nothing to do (changed
	// by hand, say): its slot goes back.
	gone := first.Actions[0].Node
	c.mu.Lock()
	obs := c.nodes[gone].obs
	c.mu.Unlock()
	if a, _, _, _ := c.afterProbe(d, gone, obs, nil, plan.NodePlan{Node: gone, Known: true, Generation: d.Generation}, 0); a != nil {
		t.Fatalf("a node with nothing to do was given %v", a)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, still := c.reserved[gone]; still {
		t.Fatal("the slot of a node whose pass did not take it is still reserved")
	}
	if w := c.waveLocked(d); len(w.Actions) != 1 {
		t.Fatalf("after one slot came back the planner starts %d, want 1", len(w.Actions))
	}
}

// BenchmarkWave10k is the rollout planner's pass (waveLocked) at 10,000
// nodes that each have a reconfigure to do, as after a manifest edit.
func BenchmarkWave10k(b *testing.B) {
	c, d := pendingFleet(b, 10000)
	if w := c.waveLocked(d); len(w.Actions) != 1000 {
		b.Fatalf("a wave of %d actions, want 1000 (10%%): %v", len(w.Actions), w.Waiting)
	}
	b.ReportAllocs()
	for b.Loop() {
		c.mu.Lock()
		c.waveLocked(d)
		c.mu.Unlock()
	}
}
