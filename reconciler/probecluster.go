package reconciler

import (
	"context"

	"github.com/drover-project/drover/inventory"
	"github.com/drover-project/drover/probes"
	"github.com/drover-project/drover/reconciler/plan"
)

// ProbeNodes probes the given nodes of d, at most parallel at a time,
// each with its RequestFor request: the one probe round of `drover
// probe`, `drover plan`, the wizard's review and the bench. The daemon
// probes node by node through its own queue, with the same requests.
func ProbeNodes(ctx context.Context, r inventory.Runner, d *plan.Desired, nodes []*plan.DesiredNode, parallel int) map[string]probes.Observed {
	reqs := make(map[string]probes.Request, len(nodes))
	targets := make([]inventory.Target, 0, len(nodes))
	for _, n := range nodes {
		reqs[n.Name] = plan.RequestFor(d, n)
		targets = append(targets, n.Target)
	}
	return probes.ProbeAll(ctx, r, targets, reqs, parallel)
}

// ProbeAndDiff probes every node of d and diffs the cluster: the plan as
// of now, with nothing run.
func ProbeAndDiff(ctx context.Context, r inventory.Runner, d *plan.Desired, parallel int) plan.Plan {
	return plan.Diff(d, ProbeNodes(ctx, r, d, d.Nodes, parallel))
}
