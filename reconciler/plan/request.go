package plan

import "github.com/drover-project/drover/probes"

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
