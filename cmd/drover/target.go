package main

import (
	"fmt"
	"path"
	"slices"

	"github.com/drover-project/drover/reconciler/plan"
	"github.com/spf13/cobra"
)

// targetFlags choose part of the cluster: --node (repeatable, a glob such
// as 'agent-*'), --role and --component. Nodes must match a --node and
// have a --role when those are given; --component keeps only those
// components' actions and rows.
type targetFlags struct {
	nodes, roles, components []string
}

func (tf *targetFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringArrayVar(&tf.nodes, "node", nil, "only nodes matching this name or glob, e.g. 'agent-*' (repeatable)")
	cmd.Flags().StringArrayVar(&tf.roles, "role", nil, "only nodes with this role (repeatable)")
	cmd.Flags().StringArrayVar(&tf.components, "component", nil, "only this component (repeatable)")
}

// selectNodes is the targeted nodes, in manifest order. A pattern or role
// that matches no node, or a component the manifest lacks, is an error,
// not an empty (and so reassuring) report.
func (tf *targetFlags) selectNodes(d *plan.Desired) ([]*plan.DesiredNode, error) {
	for _, pat := range tf.nodes {
		if _, err := path.Match(pat, ""); err != nil {
			return nil, fmt.Errorf("--node %s: %w", pat, err)
		}
		if !slices.ContainsFunc(d.Nodes, func(n *plan.DesiredNode) bool { return matchName(pat, n.Name) }) {
			return nil, fmt.Errorf("--node %s: no such node in the manifest", pat)
		}
	}
	for _, r := range tf.roles {
		if !slices.ContainsFunc(d.Nodes, func(n *plan.DesiredNode) bool { return slices.Contains(n.Roles, r) }) {
			return nil, fmt.Errorf("--role %s: no node has it", r)
		}
	}
	for _, c := range tf.components {
		if _, ok := d.Components[c]; !ok {
			return nil, fmt.Errorf("--component %s: no such component in the manifest", c)
		}
	}
	var out []*plan.DesiredNode
	for _, n := range d.Nodes {
		if tf.matches(n) {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no node is both a --node and has a --role given")
	}
	return out, nil
}

func (tf *targetFlags) matches(n *plan.DesiredNode) bool {
	if len(tf.nodes) > 0 && !slices.ContainsFunc(tf.nodes, func(p string) bool { return matchName(p, n.Name) }) {
		return false
	}
	return len(tf.roles) == 0 || slices.ContainsFunc(tf.roles, func(r string) bool { return slices.Contains(n.Roles, r) })
}

func matchName(pattern, name string) bool {
	ok, _ := path.Match(pattern, name)
	return ok
}

// wantsComponent reports whether component c is targeted.
func (tf *targetFlags) wantsComponent(c string) bool {
	return len(tf.components) == 0 || slices.Contains(tf.components, c)
}

// filterPlan keeps the targeted nodes, and on them the targeted
// components' actions and changes.
func (tf *targetFlags) filterPlan(p plan.Plan, nodes []*plan.DesiredNode) plan.Plan {
	out := p
	out.Nodes = nil
	for _, np := range p.Nodes {
		if !slices.ContainsFunc(nodes, func(n *plan.DesiredNode) bool { return n.Name == np.Node }) {
			continue
		}
		actions := []plan.Action{}
		for _, a := range np.Actions {
			if tf.wantsComponent(a.Component) {
				actions = append(actions, a)
			}
		}
		np.Actions = actions
		if np.Changes != nil {
			changes := map[string][]plan.FileChange{}
			for c, fc := range np.Changes {
				if tf.wantsComponent(c) {
					changes[c] = fc
				}
			}
			np.Changes = changes
		}
		out.Nodes = append(out.Nodes, np)
	}
	return out
}

// filterStatus keeps the targeted components' rows of each node.
func (tf *targetFlags) filterStatus(report []plan.NodeStatus) []plan.NodeStatus {
	if len(tf.components) == 0 {
		return report
	}
	for i := range report {
		var comps []plan.ComponentStatus
		for _, c := range report[i].Components {
			if tf.wantsComponent(c.Name) {
				comps = append(comps, c)
			}
		}
		report[i].Components = comps
	}
	return report
}
