package reconciler

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/drover-project/drover/probes"
)

// settleAttempts is how many failed passes make a node count as settled
// for RunUntilSettled: an apply reports it rather than retrying forever.
const settleAttempts = 3

// RunUntilSettled runs the controller until every node has converged
// (nil), or until nothing more can happen without someone's help: the
// rollout halted (ErrHalted), or nodes stay unknown, failing or blocked
// (an error that names them). This is `drover apply`.
func (c *Controller) RunUntilSettled(ctx context.Context, grace time.Duration) error {
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Run(rctx, grace)
	}()
	defer func() { cancel(); <-done }()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.changed:
		case <-tick.C:
		}
		if settled, err := c.settled(); settled {
			return err
		}
	}
}

func (c *Controller) settled() (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d := c.desired
	if d == nil || len(c.inflight) > 0 {
		return false, nil
	}
	var stuck []string
	for _, n := range d.Nodes {
		st := c.nodes[n.Name]
		if st == nil || !st.probed {
			return false, nil
		}
		switch {
		case st.obs.Known && len(st.plan.Actions) == 0:
			continue
		case st.failures >= settleAttempts:
			if !st.obs.Known {
				stuck = append(stuck, fmt.Sprintf("%s: unknown (%s: %s)", n.Name, st.obs.Reason, st.obs.Error))
			} else {
				stuck = append(stuck, fmt.Sprintf("%s: failed %d times", n.Name, st.failures))
			}
		// A node whose action failed and halted the rollout keeps its
		// failure count, but it is waiting like the others now.
		case (st.failures == 0 || c.halt.Halted) && st.seenProgress == c.progress && (st.waiting != "" || d.Paused || n.Paused):
			why := st.waiting
			if d.Paused || n.Paused {
				why = "paused"
			}
			stuck = append(stuck, fmt.Sprintf("%s: %d action(s) pending, %s", n.Name, len(st.plan.Actions), why))
		default:
			return false, nil
		}
	}
	if c.halt.Halted {
		return true, fmt.Errorf("%w: %s", ErrHalted, c.halt.Reason)
	}
	if len(stuck) > 0 && c.releasableLocked(d) {
		return false, nil
	}
	if len(stuck) > 0 {
		return true, fmt.Errorf("not converged:\n  %s", strings.Join(stuck, "\n  "))
	}
	return true, nil
}

// releasableLocked reports whether the rollout, given what the controller
// knows now, would start an action on a node that has not failed
// settleAttempts times. A node is told to wait against the observations
// of that moment; when it asked before the nodes it waits for were probed
// (they count as unavailable until then), or before they turned healthy,
// no action ends to wake it, yet its next pass will be admitted: that is
// not settled.
func (c *Controller) releasableLocked(d *Desired) bool {
	plan := Plan{Generation: d.Generation, Paused: d.Paused}
	obs := make(map[string]probes.Observed, len(d.Nodes))
	for _, n := range d.Nodes {
		st := c.nodes[n.Name]
		plan.Nodes = append(plan.Nodes, st.plan)
		obs[n.Name] = st.obs
	}
	for _, a := range NextWave(d, plan, obs, RolloutState{Halt: c.halt}).Actions {
		if st := c.nodes[a.Node]; st != nil && st.failures < settleAttempts {
			return true
		}
	}
	return false
}

// Status is a snapshot of the cluster for the API, the CLI and metrics.
func (c *Controller) Status() ClusterStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	cs := ClusterStatus{
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
	if HaltActive(c.halt, d.Generation) {
		cs.Rollout = c.halt
	}
	cs.Cluster, cs.Hash, cs.Paused = d.Cluster, d.Generation, d.Paused
	plan := Plan{Generation: d.Generation}
	obs := map[string]probes.Observed{}
	for _, n := range d.Nodes {
		st := c.nodes[n.Name]
		if st == nil || !st.probed {
			plan.Nodes = append(plan.Nodes, NodePlan{Node: n.Name, Reason: "not probed yet"})
			continue
		}
		plan.Nodes = append(plan.Nodes, st.plan)
		obs[n.Name] = st.obs
	}
	cs.Nodes = NodeStatuses(d, obs, plan)
	for i := range cs.Nodes {
		ns := &cs.Nodes[i]
		st := c.nodes[ns.Name]
		if st == nil {
			continue
		}
		ns.ConsecutiveFailures = st.failures
		ns.LastConverged = st.lastConverged
		ns.LastProbe = st.lastGoodProbe // the last successful probe: staleness alerts rely on it
		ns.History = append([]ActionRecord(nil), st.history...)
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
				cs.Rollout.Waiting = append(cs.Rollout.Waiting, NodeWaiting{Node: ns.Name, Reason: st.waiting})
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
func pendingBesides(actions []Action, inFlight *Action) int {
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
func (c *Controller) CurrentPlan() Plan {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.desired == nil {
		return Plan{}
	}
	p := Plan{Generation: c.desired.Generation}
	for _, n := range c.desired.Nodes {
		if st := c.nodes[n.Name]; st != nil && st.probed {
			p.Nodes = append(p.Nodes, st.plan)
		} else {
			p.Nodes = append(p.Nodes, NodePlan{Node: n.Name, Reason: "not probed yet"})
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

// RequestFor is the probe request of one node: the components it should
// have, with the files to hash and the health and leader checks to run.
func RequestFor(d *Desired, n *DesiredNode) probes.Request {
	req := probes.Request{InstallRoot: d.InstallRoot, Components: make([]probes.Want, 0, len(n.Components))}
	for _, comp := range n.Components {
		w := probes.Want{Name: comp.Name, Version: comp.Version, Service: comp.Unit != nil, Health: comp.Health, Leader: comp.Leader}
		for _, f := range comp.Files {
			w.Files = append(w.Files, f.Path)
		}
		req.Components = append(req.Components, w)
	}
	return req
}

// DiffNode diffs one node; the daemon calls it after each probe.
func DiffNode(d *Desired, n *DesiredNode, obs probes.Observed) NodePlan {
	return diffNode(d, n, map[string]probes.Observed{n.Name: obs})
}
