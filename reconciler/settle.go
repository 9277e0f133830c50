package reconciler

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/drover-project/drover/probes"
	"github.com/drover-project/drover/reconciler/plan"
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
func (c *Controller) releasableLocked(d *plan.Desired) bool {
	p := plan.Plan{Generation: d.Generation, Paused: d.Paused}
	obs := make(map[string]probes.Observed, len(d.Nodes))
	for _, n := range d.Nodes {
		st := c.nodes[n.Name]
		p.Nodes = append(p.Nodes, st.plan)
		obs[n.Name] = st.obs
	}
	for _, a := range plan.NextWave(d, p, obs, plan.RolloutState{Halt: c.halt}).Actions {
		if st := c.nodes[a.Node]; st != nil && st.failures < settleAttempts {
			return true
		}
	}
	return false
}
