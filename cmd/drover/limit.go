package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/drover-project/drover/probes"
	"github.com/drover-project/drover/reconciler/plan"
)

// limitDesired is d with every node outside the target paused and, when
// components are given, every other component's actions held
// (Desired.OnlyComponents): apply --node/--component changes only the
// targeted part, while the rest is probed and counted by the rollout as
// it is (a paused member that is down still holds a slot of
// maxUnavailable and still stops a quorum change; a held component with
// work still holds back what dependsOn it). d is not changed.
func limitDesired(d *plan.Desired, targeted []*plan.DesiredNode, components []string) *plan.Desired {
	out := *d
	out.Nodes = make([]*plan.DesiredNode, len(d.Nodes))
	for i, n := range d.Nodes {
		c := *n
		if !slices.ContainsFunc(targeted, func(t *plan.DesiredNode) bool { return t.Name == n.Name }) {
			c.Paused = true
		}
		out.Nodes[i] = &c
	}
	if len(components) > 0 {
		out.OnlyComponents = slices.Clone(components)
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
			for _, a := range np.Actions {
				if limited.OnlyComponents == nil || slices.Contains(limited.OnlyComponents, a.Component) {
					pending++
				}
			}
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
		if !strings.Contains(line, ": paused, ") && !strings.HasSuffix(line, " held: not a targeted component") {
			why = append(why, line)
		}
	}
	if len(why) == 0 {
		why = []string{"the rollout starts nothing"}
	}
	return fmt.Errorf("refusing to apply to the limited nodes: the rollout rules, counting the nodes outside the limit, allow no change now:\n  %s",
		strings.Join(why, "\n  "))
}

// targetedConverged reports whether every targeted node converged; with
// components targeted, whether those are Synced and Healthy there (nodes
// holds only their rows: targetFlags.filterStatus).
func targetedConverged(nodes []plan.NodeStatus, targeted []*plan.DesiredNode, components []string) bool {
	for _, n := range nodes {
		if !slices.ContainsFunc(targeted, func(t *plan.DesiredNode) bool { return t.Name == n.Name }) {
			continue
		}
		if len(components) == 0 {
			if !n.Converged {
				return false
			}
			continue
		}
		if !n.Reachable {
			return false
		}
		for _, c := range n.Components {
			if c.Sync != plan.Synced || c.Health != plan.Healthy {
				return false
			}
		}
	}
	return true
}
