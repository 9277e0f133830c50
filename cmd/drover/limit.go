package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/drover-project/drover/probes"
	"github.com/drover-project/drover/reconciler/plan"
)

// limitDesired is d with every node outside the target paused: apply
// --node changes only the targeted nodes, while the others are probed and
// counted by the rollout as they are (a paused member that is down still
// holds a slot of maxUnavailable and still stops a quorum change). d is
// not changed.
func limitDesired(d *plan.Desired, targeted []*plan.DesiredNode) *plan.Desired {
	out := *d
	out.Nodes = make([]*plan.DesiredNode, len(d.Nodes))
	for i, n := range d.Nodes {
		c := *n
		if !slices.ContainsFunc(targeted, func(t *plan.DesiredNode) bool { return t.Name == n.Name }) {
			c.Paused = true
		}
		out.Nodes[i] = &c
	}
	return &out
}

// limitRefusal is why apply with a limit must not start: the rollout,
// counting every node inside and outside the limit, would start nothing
// on the targeted nodes though they have work. The reasons are the
// rollout's own (a quorum member outside the limit unhealthy,
// maxUnavailable taken by nodes outside it), so apply --limit can never
// break a rule the daemon keeps. nil when the first wave starts.
func limitRefusal(limited *plan.Desired, p plan.Plan, obs map[string]probes.Observed, targeted []*plan.DesiredNode) error {
	pending := 0
	for _, np := range p.Nodes {
		if np.Known && slices.ContainsFunc(targeted, func(t *plan.DesiredNode) bool { return t.Name == np.Node }) {
			pending += len(np.Actions)
		}
	}
	if pending == 0 {
		return nil
	}
	w := plan.NextWave(limited, p, obs, plan.RolloutState{})
	if len(w.Actions) > 0 {
		return nil
	}
	var why []string
	for _, line := range w.Waiting {
		// The held actions of the nodes outside the limit are the point of it.
		if !strings.Contains(line, ": paused, ") {
			why = append(why, line)
		}
	}
	if len(why) == 0 {
		why = []string{"the rollout starts nothing"}
	}
	return fmt.Errorf("refusing to apply to the limited nodes: the rollout rules, counting the nodes outside the limit, allow no change now:\n  %s",
		strings.Join(why, "\n  "))
}

// targetedConverged reports whether every targeted node converged.
func targetedConverged(nodes []plan.NodeStatus, targeted []*plan.DesiredNode) bool {
	for _, n := range nodes {
		if slices.ContainsFunc(targeted, func(t *plan.DesiredNode) bool { return t.Name == n.Name }) && !n.Converged {
			return false
		}
	}
	return true
}
