package main

import (
	"strings"
	"testing"

	"github.com/drover-project/drover/manifests"
	"github.com/drover-project/drover/probes"
	"github.com/drover-project/drover/reconciler/plan"
)

// demoCluster is examples/demo (three masters, a ZooKeeper ensemble and
// node_exporter, maxUnavailable 1) with every node synced and healthy.
func demoCluster(t *testing.T) (*plan.Desired, map[string]probes.Observed) {
	t.Helper()
	l, err := manifests.Load("../../examples/demo/cluster.yaml")
	if err != nil {
		t.Fatal(err)
	}
	d, err := plan.Compile(l)
	if err != nil {
		t.Fatal(err)
	}
	obs := map[string]probes.Observed{}
	for _, n := range d.Nodes {
		o := probes.Observed{Node: n.Name, Known: true, Components: map[string]*probes.Component{}}
		for _, c := range n.Components {
			o.Components[c.Name] = syncedSvc(c, "active", "running")
		}
		obs[n.Name] = o
	}
	return d, obs
}

// TestLimitCountsNodesOutside: apply --node n1 refuses a disruptive change
// on n1 when a node outside the limit already takes what the rule allows
// (a quorum member down, the one maxUnavailable slot), naming that node;
// and goes ahead when nothing outside is down.
func TestLimitCountsNodesOutside(t *testing.T) {
	for _, tc := range []struct {
		name      string
		component string // edited on n1 (a disruptive reconfigure) and failed on n2
		downOnN2  bool
		refusal   string // "" when apply may start
	}{
		{"quorum, all healthy", "zookeeper", false, ""},
		{"quorum member outside down", "zookeeper", true, "zookeeper: quorum: 1 action waits for n2 to be healthy (unit failed)"},
		{"maxUnavailable, all healthy", "node-exporter", false, ""},
		{"maxUnavailable taken outside", "node-exporter", true, "node-exporter: 1 action waits for maxUnavailable 1 (unavailable: n2)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, obs := demoCluster(t)
			obs["n1"].Components[tc.component].Unit.Hash = "edited on the node"
			if tc.downOnN2 {
				obs["n2"].Components[tc.component] = syncedSvc(d.Node("n2").Component(tc.component), "failed", "failed")
			}
			targeted, err := (&targetFlags{nodes: []string{"n1"}}).selectNodes(d)
			if err != nil {
				t.Fatal(err)
			}
			limited := limitDesired(d, targeted, nil)
			if d.Node("n2").Paused || !limited.Node("n2").Paused || limited.Node("n1").Paused {
				t.Fatal("limitDesired must pause the nodes outside, in a copy")
			}
			p := plan.Diff(limited, obs)
			err = limitRefusal(limited, p, obs, targeted)
			switch {
			case tc.refusal == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.refusal != "" && err == nil:
				t.Errorf("not refused; the change on n1 would break the rule with n2 down")
			case tc.refusal != "" && !strings.Contains(err.Error(), tc.refusal):
				t.Errorf("refusal %q does not say %q", err, tc.refusal)
			}
		})
	}
}

// TestLimitComponentCountsHeld: apply --component node-exporter, with
// both components edited on n1: zookeeper's action is held, not run;
// node-exporter goes ahead on its own, but once it dependsOn zookeeper
// apply refuses, naming the held work it would wait for.
func TestLimitComponentCountsHeld(t *testing.T) {
	for _, dependsOn := range []bool{false, true} {
		d, obs := demoCluster(t)
		if dependsOn {
			d.Components["node-exporter"].DependsOn = []string{"zookeeper"}
		}
		obs["n1"].Components["zookeeper"].Unit.Hash = "edited on the node"
		obs["n1"].Components["node-exporter"].Unit.Hash = "edited on the node"
		tf := &targetFlags{components: []string{"node-exporter"}}
		targeted, err := tf.selectNodes(d)
		if err != nil {
			t.Fatal(err)
		}
		limited := limitDesired(d, targeted, tf.components)
		if d.OnlyComponents != nil || len(limited.OnlyComponents) != 1 {
			t.Fatal("limitDesired must hold the other components in a copy")
		}
		p := plan.Diff(limited, obs)
		w := plan.NextWave(limited, p, obs, plan.RolloutState{})
		for _, a := range w.Actions {
			if a.Component != "node-exporter" {
				t.Errorf("dependsOn %v: released %s %s, a held component", dependsOn, a.Kind, a.Component)
			}
		}
		err = limitRefusal(limited, p, obs, targeted)
		switch {
		case !dependsOn && err != nil:
			t.Errorf("refused without a dependency: %v", err)
		case dependsOn && (err == nil || !strings.Contains(err.Error(), "node-exporter: 1 action waits for zookeeper to finish")):
			t.Errorf("with node-exporter dependsOn zookeeper: %v, want the wait for the held zookeeper", err)
		case dependsOn && strings.Contains(err.Error(), "held: not a targeted component"):
			t.Errorf("the refusal lists the held actions themselves: %v", err)
		}
	}
}
