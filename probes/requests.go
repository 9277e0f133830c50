package probes

import "github.com/drover-project/drover/manifests"

// RequestsFromManifest says, for every node of the cluster, what a probe
// should look at: each present component that matches the node, with its
// version, the absolute paths of its rendered files, whether it has a
// service, its health check and, for a quorum component, its leader
// check. Components that must be absent are not asked for: a probe finds
// them by their receipts.
func RequestsFromManifest(c *manifests.Cluster) map[string]Request {
	out := make(map[string]Request, len(c.Spec.Nodes))
	for i := range c.Spec.Nodes {
		n := &c.Spec.Nodes[i]
		req := Request{InstallRoot: c.Spec.InstallRoot}
		for j := range c.Spec.Components {
			comp := &c.Spec.Components[j]
			if comp.State == manifests.StateAbsent || !comp.Matches(n) {
				continue
			}
			w := Want{Name: comp.Name, Version: comp.Version, Service: comp.Service != nil, Health: comp.Health, Leader: comp.Leader}
			for _, f := range comp.Files {
				w.Files = append(w.Files, manifests.FilePath(c.Spec.InstallRoot, comp, f))
			}
			req.Components = append(req.Components, w)
		}
		out[n.Name] = req
	}
	return out
}
