package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/drover-project/drover/manifests"
	"github.com/drover-project/drover/reconciler/plan"
)

func dcosDesired(t *testing.T) *plan.Desired {
	t.Helper()
	l, err := manifests.Load("../../examples/dcos/cluster.yaml")
	if err != nil {
		t.Fatal(err)
	}
	d, err := plan.Compile(l)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func names(nodes []*plan.DesiredNode) string {
	var out []string
	for _, n := range nodes {
		out = append(out, n.Name)
	}
	return strings.Join(out, ",")
}

func TestTargetSelectNodes(t *testing.T) {
	d := dcosDesired(t)
	for _, tc := range []struct {
		name string
		tf   targetFlags
		want string // node names, or "error: ..." for a refusal
	}{
		{"all", targetFlags{}, "m1,m2,m3,a1,a2,p1"},
		{"one", targetFlags{nodes: []string{"m2"}}, "m2"},
		{"glob", targetFlags{nodes: []string{"m*"}}, "m1,m2,m3"},
		{"repeated", targetFlags{nodes: []string{"a*", "p1"}}, "a1,a2,p1"},
		{"role", targetFlags{roles: []string{"agent"}}, "a1,a2"},
		{"glob and role", targetFlags{nodes: []string{"*1"}, roles: []string{"master", "agent"}}, "m1,a1"},
		{"unknown node", targetFlags{nodes: []string{"x*"}}, "error: --node x*: no such node"},
		{"bad glob", targetFlags{nodes: []string{"m["}}, "error: --node m[: syntax error"},
		{"unknown role", targetFlags{roles: []string{"db"}}, "error: --role db: no node has it"},
		{"unknown component", targetFlags{components: []string{"nginx"}}, "error: --component nginx: no such component"},
		{"disjoint", targetFlags{nodes: []string{"m1"}, roles: []string{"agent"}}, "error: no node is both"},
	} {
		got, err := tc.tf.selectNodes(d)
		s := names(got)
		if err != nil {
			s = "error: " + err.Error()
		}
		if !strings.HasPrefix(s, tc.want) {
			t.Errorf("%s: %s, want %s", tc.name, s, tc.want)
		}
	}
}

func TestTargetFilterPlan(t *testing.T) {
	p := plan.Plan{Nodes: []plan.NodePlan{
		{Node: "m1", Known: true, Actions: []plan.Action{{Component: "zookeeper", Kind: plan.ActionReconfigure}, {Component: "mesos-master", Kind: plan.ActionInstall}},
			Changes: map[string][]plan.FileChange{"zookeeper": {{Path: "zoo.cfg"}}, "mesos-master": {{Path: "m"}}}},
		{Node: "a1", Known: true, Actions: []plan.Action{{Component: "mesos-agent", Kind: plan.ActionInstall}}},
	}}
	d := dcosDesired(t)
	tf := targetFlags{nodes: []string{"m1"}, components: []string{"zookeeper"}}
	nodes, err := tf.selectNodes(d)
	if err != nil {
		t.Fatal(err)
	}
	got := tf.filterPlan(p, nodes)
	if len(got.Nodes) != 1 || got.Nodes[0].Node != "m1" {
		t.Fatalf("nodes %+v, want m1 alone", got.Nodes)
	}
	if a := got.Nodes[0].Actions; len(a) != 1 || a[0].Component != "zookeeper" {
		t.Errorf("actions %+v, want zookeeper's alone", a)
	}
	if c := got.Nodes[0].Changes; len(c) != 1 || c["zookeeper"] == nil {
		t.Errorf("changes %+v, want zookeeper's alone", c)
	}
	if len(p.Nodes[0].Actions) != 2 {
		t.Error("filterPlan changed the plan it was given")
	}
}

// TestPlanTargetsNodes: plan --node probes and reports only that node:
// the others are neither in the output nor counted as unprobed.
func TestPlanTargetsNodes(t *testing.T) {
	manifest := refusingManifest(t)
	code, out, errOut := runDrover(t, "plan", "-f", manifest, "--node", "n1", "-o", "json")
	if code != 1 {
		t.Fatalf("exit %d (n1 refuses SSH: want 1)\n%s", code, errOut)
	}
	var got planReport
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Nodes) != 1 || got.Nodes[0].Node != "n1" || len(got.Unprobed) != 1 {
		t.Errorf("plan --node n1: nodes %+v, unprobed %+v", got.Nodes, got.Unprobed)
	}
	if code, _, errOut := runDrover(t, "plan", "-f", manifest, "--node", "nope"); code != 1 || !strings.Contains(errOut, "--node nope: no such node") {
		t.Errorf("plan --node nope: exit %d, %s", code, errOut)
	}
}
