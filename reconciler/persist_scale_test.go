package reconciler

import (
	"fmt"
	"testing"

	"github.com/drover-project/drover/inventory"
	"github.com/drover-project/drover/reconciler/plan"
	"github.com/drover-project/drover/state"
)

// scaleDesired is a manifest of n nodes, enough for the controller's
// bookkeeping (no components: nothing is probed here).
func scaleDesired(n int, gen string) *plan.Desired {
	d := &plan.Desired{Cluster: "scale", Generation: gen, InstallRoot: "/opt/drover", Components: map[string]*plan.DesiredComponentInfo{}}
	for i := range n {
		name := fmt.Sprintf("n%05d", i)
		d.Nodes = append(d.Nodes, &plan.DesiredNode{Name: name, Target: inventory.Target{Name: name, Address: "127.1.0.1"}})
	}
	return d
}

// TestSaveClusterSweepsOncePerManifest: the records of nodes a manifest
// dropped are looked for once per manifest, not after every probe (the
// worker saves the cluster after each): that look reads every key
// written, and after every probe it was most of the daemon's CPU at
// thousands of nodes. Records of nodes that left still go.
func TestSaveClusterSweepsOncePerManifest(t *testing.T) {
	store := state.NewMemory()
	c := NewController(ControllerOptions{Store: store})
	c.SetDesired(scaleDesired(50, "g1"))
	for i := range 50 {
		c.saveNode(fmt.Sprintf("n%05d", i))
	}
	for range 100 { // a hundred probes
		c.saveCluster()
	}
	if c.persist.sweeps != 1 {
		t.Errorf("%d sweeps for one manifest and 100 saves, want 1", c.persist.sweeps)
	}
	c.SetDesired(scaleDesired(10, "g2"))
	c.saveCluster()
	if c.persist.sweeps != 2 {
		t.Errorf("%d sweeps after a second manifest, want 2", c.persist.sweeps)
	}
	recs, err := store.List(keyNodePrefix)
	if err != nil || len(recs) != 10 {
		t.Errorf("%d node records after 40 nodes left (%v), want 10", len(recs), err)
	}
}

// BenchmarkSaveCluster10k is what the worker pays after each probe at
// 10,000 nodes for the cluster record.
func BenchmarkSaveCluster10k(b *testing.B) {
	c := NewController(ControllerOptions{Store: state.NewMemory()})
	c.SetDesired(scaleDesired(10000, "g1"))
	for i := range 10000 {
		c.saveNode(fmt.Sprintf("n%05d", i))
	}
	b.ResetTimer()
	for b.Loop() {
		c.saveCluster()
	}
}

// BenchmarkSetDesired10k is a manifest load's bookkeeping at 10,000 nodes.
func BenchmarkSetDesired10k(b *testing.B) {
	c := NewController(ControllerOptions{Store: state.NewMemory()})
	d1, d2 := scaleDesired(10000, "g1"), scaleDesired(10000, "g2")
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if i%2 == 0 {
			c.SetDesired(d1)
		} else {
			c.SetDesired(d2)
		}
	}
}

// TestDesiredNodeIndex: Node finds every node through its index, nil for
// a stranger, and nodes added or replaced after the first call.
func TestDesiredNodeIndex(t *testing.T) {
	d := scaleDesired(100, "g1")
	d.IndexNodes()
	for _, n := range d.Nodes {
		if d.Node(n.Name) != n {
			t.Fatalf("Node(%s) is not the manifest's node", n.Name)
		}
	}
	if d.Node("stranger") != nil {
		t.Error("Node(stranger) found something")
	}
	extra := &plan.DesiredNode{Name: "late"}
	d.Nodes = append(d.Nodes, extra)
	if d.Node("late") != extra {
		t.Error("a node appended after the first Node call is not found")
	}
	swapped := &plan.DesiredNode{Name: "swapped"}
	d.Nodes[3] = swapped
	if d.Node("swapped") != swapped || d.Node("n00003") != nil {
		t.Error("a node replaced in place is not found, or the old one still is")
	}
}

// BenchmarkDesiredNode10k is one lookup at 10,000 nodes (per probe).
func BenchmarkDesiredNode10k(b *testing.B) {
	d := scaleDesired(10000, "g1")
	d.IndexNodes()
	for i := 0; b.Loop(); i++ {
		d.Node(d.Nodes[i%len(d.Nodes)].Name)
	}
}
