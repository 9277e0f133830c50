package reconciler

import (
	"fmt"
	"strings"
	"testing"

	"github.com/drover-project/drover/manifests"
	"github.com/drover-project/drover/probes"
	"github.com/drover-project/drover/reconciler/plan"
)

// BenchmarkWave10k is the rollout planner's pass a node's admission pays
// at 10,000 nodes, each running an older config of its one component (so
// each has a reconfigure to do, as after a manifest edit).
func BenchmarkWave10k(b *testing.B) {
	var m strings.Builder
	m.WriteString("apiVersion: drover/v1\nkind: Cluster\nmetadata: {name: fleet}\nspec:\n  rollout: {maxUnavailable: \"10%\"}\n  nodes:\n")
	for i := range 10000 {
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
		b.Fatal(err)
	}
	d, err := plan.Compile(l)
	if err != nil {
		b.Fatal(err)
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
