package reconciler

import (
	"fmt"
	"time"

	"github.com/drover-project/drover/probes"
	"github.com/drover-project/drover/reconciler/plan"
)

// Status is a snapshot of the cluster for the API, the CLI and metrics.
func (c *Controller) Status() plan.ClusterStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	cs := plan.ClusterStatus{
		Generation:   c.gen,
		LoadSuccess:  c.load.ok,
		LoadError:    c.load.err,
		LastLoadTime: c.load.time,
		Suspended:    c.persist.suspended,
	}
	d := c.desired
	if d == nil {
		return cs
	}
	if plan.HaltActive(c.halt, d.Generation) {
		cs.Rollout = c.halt
	}
	cs.Cluster, cs.Hash, cs.Paused = d.Cluster, d.Generation, d.Paused
	p := plan.Plan{Generation: d.Generation}
	obs := map[string]probes.Observed{}
	for _, n := range d.Nodes {
		st := c.nodes[n.Name]
		if st == nil || !st.probed {
			p.Nodes = append(p.Nodes, plan.NodePlan{Node: n.Name, Reason: "not probed yet"})
			continue
		}
		p.Nodes = append(p.Nodes, st.plan)
		obs[n.Name] = st.obs
	}
	cs.Nodes = plan.NodeStatuses(d, obs, p)
	for i := range cs.Nodes {
		ns := &cs.Nodes[i]
		st := c.nodes[ns.Name]
		if st == nil {
			continue
		}
		ns.ConsecutiveFailures = st.failures
		ns.LastConverged = st.lastConverged
		ns.LastProbe = st.lastGoodProbe // the last successful probe: staleness alerts rely on it
		ns.History = append([]plan.ActionRecord(nil), st.history...)
		if len(st.history) > 0 {
			last := st.history[len(st.history)-1]
			ns.LastAction = &last
		}
		if !ns.Converged && st.waiting != "" && ns.Reason != "" {
			ns.Reason += "; " + st.waiting
		}
		if !ns.Converged && ns.Reachable && st.retryAt.After(c.Now()) {
			ns.Reason += fmt.Sprintf("; retrying at %s after %d failed attempt(s)", st.retryAt.Format(time.TimeOnly), st.failures)
		}
		if ns.Facts == nil && st.facts != nil {
			f := *st.facts
			ns.Facts = &f
		}
		if a, ok := c.inflight[ns.Name]; ok {
			ns.InFlight = &a
			cs.Rollout.InFlight = append(cs.Rollout.InFlight, a)
		}
		if !ns.Converged && len(st.plan.Actions) > 0 {
			ns.Waiting = st.waiting
			if st.waiting != "" {
				cs.Rollout.Waiting = append(cs.Rollout.Waiting, plan.NodeWaiting{Node: ns.Name, Reason: st.waiting})
			}
		}
		if st.probed && st.obs.Known {
			cs.Rollout.Pending += pendingBesides(st.plan.Actions, ns.InFlight)
		}
	}
	return cs
}

// pendingBesides counts the actions of a node's plan other than the one
// in flight (which stays in the plan until a probe sees its effect).
func pendingBesides(actions []plan.Action, inFlight *plan.Action) int {
	n := len(actions)
	if inFlight == nil {
		return n
	}
	for _, a := range actions {
		if a.Component == inFlight.Component && a.Kind == inFlight.Kind {
			return n - 1
		}
	}
	return n
}

// CurrentPlan is the plan as of each node's last probe.
func (c *Controller) CurrentPlan() plan.Plan {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.desired == nil {
		return plan.Plan{}
	}
	p := plan.Plan{Generation: c.desired.Generation}
	for _, n := range c.desired.Nodes {
		if st := c.nodes[n.Name]; st != nil && st.probed {
			p.Nodes = append(p.Nodes, st.plan)
		} else {
			p.Nodes = append(p.Nodes, plan.NodePlan{Node: n.Name, Reason: "not probed yet"})
		}
	}
	return p
}

// Ready reports whether every node has been probed at least once.
func (c *Controller) Ready() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.desired == nil {
		return false
	}
	for _, n := range c.desired.Nodes {
		if st := c.nodes[n.Name]; st == nil || !st.probed {
			return false
		}
	}
	return true
}
