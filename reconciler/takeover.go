package reconciler

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/drover-project/drover/reconciler/execute"
	"github.com/drover-project/drover/reconciler/plan"
	"go.uber.org/zap"
)

// What a leader of several daemons (ControllerOptions.Fence set) leaves
// on a node so that its successor counts an action it began: before an
// action's first step it writes <root>/.inflight with the action's start
// and deadline (Unix seconds), and removes it once the action has ended.
// A leader killed or fenced mid-action leaves the record behind. A new
// controller reads it once per node before acting there (takeoverScan)
// and, until the node's components are all Healthy again or the deadline
// has passed, counts the node as running a disruptive action of each of
// its components: against maxUnavailable and quorum, and no new action
// on the node itself while it comes up by its own. Then the node is an
// ordinary node again: whatever the old action left undone is pending,
// and the rollout does it.

// foreignAction is an action a deposed leader began on a node.
type foreignAction struct {
	deadline time.Time
}

// takeoverScan reads, once per node per controller, the record a former
// leader may have left (only with a Fence: a lone daemon writes none).
func (c *Controller) takeoverScan(ctx context.Context, d *plan.Desired, dn *plan.DesiredNode) {
	if c.Fence == nil {
		return
	}
	c.mu.Lock()
	st := c.nodes[dn.Name]
	done := st == nil || st.scanned
	c.mu.Unlock()
	if done {
		return
	}
	qctx, cancel := context.WithTimeout(ctx, c.ReconcileTimeout)
	res, err := c.Runner.Run(qctx, dn.Target, execute.InflightQuery(d.InstallRoot), nil)
	cancel()
	if err != nil || res.ExitCode != 0 {
		// The probe reports the node (unknown: unavailable to the
		// rollout); scan again next pass.
		c.mu.Lock()
		if st := c.nodes[dn.Name]; st != nil {
			st.scanTried = true
		}
		c.mu.Unlock()
		return
	}
	var fa *foreignAction
	if f := strings.Fields(string(res.Stdout)); len(f) == 2 {
		if end, err := strconv.ParseInt(f[1], 10, 64); err == nil && time.Unix(end, 0).After(c.Now()) {
			fa = &foreignAction{deadline: time.Unix(end, 0)}
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if st := c.nodes[dn.Name]; st != nil {
		st.scanned, st.scanTried = true, true
		if fa != nil {
			st.foreign = fa
			c.Log.Warn("an action a former leader began is still in flight on the node: it counts against the rollout until the node is healthy",
				zap.String("node", dn.Name), zap.Time("until", fa.deadline))
		}
	}
}

// foreignLocked are the actions former leaders began and that still
// count, for each component of the node (under mu).
// A node whose components are all Healthy again, or past the deadline,
// no longer counts.
func (c *Controller) foreignLocked(d *plan.Desired) []plan.Action {
	var out []plan.Action
	now := c.Now()
	for _, n := range d.Nodes {
		st := c.nodes[n.Name]
		if st == nil || st.foreign == nil {
			continue
		}
		if now.After(st.foreign.deadline) || st.probed && allHealthy(n, st) {
			st.foreign = nil
			continue
		}
		if _, own := c.inflight[n.Name]; own {
			continue
		}
		// Which action it was is not known: it counts against both of
		// the planner's budgets, as a disruptive action (the members
		// down, quorum) and as a quiet one (actions at once).
		for _, comp := range n.Components {
			for _, disruptive := range []bool{true, false} {
				out = append(out, plan.Action{Node: n.Name, Component: comp.Name, Kind: plan.ActionRestart, Disruptive: disruptive,
					Reason: "begun by a former leader"})
			}
		}
	}
	return out
}

// allHealthy says whether the node's last probe saw each of its wanted
// components present and healthy.
func allHealthy(n *plan.DesiredNode, st *nodeTrack) bool {
	if !st.obs.Known {
		return false
	}
	for _, want := range n.Components {
		if h, _ := plan.ComponentHealth(want, st.obs.Components[want.Name]); h != plan.Healthy {
			return false
		}
	}
	return true
}

// scanPendingLocked says why no action may start yet: with a fence, not
// before every node was looked at for a former leader's action, or one
// started elsewhere could take the slot of one still running (under mu).
func (c *Controller) scanPendingLocked(d *plan.Desired) string {
	if c.Fence == nil {
		return ""
	}
	n := 0
	for _, dn := range d.Nodes {
		if st := c.nodes[dn.Name]; st == nil || !st.scanTried {
			n++
		}
	}
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("waiting to read on %d more nodes what a former leader left in flight", n)
}
