package wizard

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/drover-project/drover/manifests"
)

// presetRoleOrder is the rollout order for the roles the page offers as
// presets; other roles follow in the order nodes first use them.
var presetRoleOrder = []string{"master", "agent", "public_agent"}

// build turns the operator's setup into a manifest. Problems it finds that
// the manifest's own validation cannot (an artifact that is not in the
// folder, a template that needs one role) come back with the field path
// of the manifest they concern; everything else is left to Validate, so
// the wizard and a hand-written manifest are judged by the same rules.
func (w *Wizard) build(s Setup) (*manifests.Cluster, manifests.Problems) {
	var ps manifests.Problems
	c := &manifests.Cluster{
		APIVersion: manifests.APIVersion,
		Kind:       manifests.Kind,
		Metadata:   manifests.Metadata{Name: strings.TrimSpace(s.Cluster)},
		Spec: manifests.Spec{
			InstallRoot:   strings.TrimSpace(s.InstallRoot),
			ProbeInterval: manifests.Duration(strings.TrimSpace(s.ProbeInterval)),
			SSH: manifests.SSH{
				User:           strings.TrimSpace(s.SSH.User),
				Port:           s.SSH.Port,
				KnownHostsFile: w.opts.KnownHostsFile,
			},
			Components: []manifests.Component{},
		},
	}
	if id := strings.TrimSpace(s.SSH.IdentityFile); id != "" {
		c.Spec.SSH.IdentityFiles = []string{id}
	}
	if spec := strings.TrimSpace(s.SSH.Bastion); spec != "" {
		b, err := manifests.ParseJumpHost(spec)
		if err != nil {
			ps = append(ps, manifests.Problem{Path: "spec.ssh.bastion", Message: err.Error(), Severity: manifests.SeverityError})
		} else {
			c.Spec.SSH.Bastion = &b
		}
	}
	for _, n := range s.Nodes {
		node := manifests.Node{Name: strings.TrimSpace(n.Name), Address: strings.TrimSpace(n.Address), Roles: cleanList(n.Roles)}
		if n.Port != 0 && n.Port != s.SSH.Port {
			node.Port = n.Port
		}
		c.Spec.Nodes = append(c.Spec.Nodes, node)
	}
	for i, cs := range s.Components {
		p := fmt.Sprintf("spec.components[%d]", i)
		comp, cps := w.buildComponent(p, cs)
		ps = append(ps, cps...)
		c.Spec.Components = append(c.Spec.Components, comp)
	}
	c.Spec.Rollout.RoleOrder = roleOrder(c.Spec.Nodes)
	return c, ps
}

func (w *Wizard) buildComponent(p string, cs ComponentSetup) (manifests.Component, manifests.Problems) {
	var ps manifests.Problems
	errorf := func(path, format string, args ...any) {
		ps = append(ps, manifests.Problem{Path: path, Message: fmt.Sprintf(format, args...), Severity: manifests.SeverityError})
	}
	comp := manifests.Component{
		Name:    strings.TrimSpace(cs.Name),
		Version: strings.TrimSpace(cs.Version),
		Roles:   cleanList(cs.Roles),
	}
	if cs.Artifact != "" {
		a, err := w.artifacts.find(cs.Artifact)
		if err != nil {
			errorf(p+".artifact", "%v", err)
		} else {
			comp.Artifact = &manifests.Artifact{Path: w.artifactRef(a.Path), SHA256: a.SHA256}
		}
	}
	tmpl, known := templateByName(cs.Template)
	if cs.Template != "" && !known {
		errorf(p, "unknown template %q", cs.Template)
	}
	switch {
	case strings.TrimSpace(cs.FilesYAML) != "":
		var files []manifests.File
		if err := yaml.UnmarshalStrict([]byte(cs.FilesYAML), &files); err != nil {
			errorf(p+".files", "the advanced files YAML is not a list of {path, mode, template}: %v", err)
		}
		comp.Files = files
	case known && tmpl.files != nil:
		if tmpl.OneRole && len(comp.Roles) != 1 {
			errorf(p+".roles", "the %s template builds its config from one role's nodes: choose exactly one role", tmpl.Name)
		} else {
			role := ""
			if len(comp.Roles) == 1 {
				role = comp.Roles[0]
			}
			comp.Files = tmpl.files(role)
		}
	}
	if exec := strings.TrimSpace(cs.Exec); exec != "" {
		comp.Service = &manifests.Service{Exec: exec}
		if known {
			comp.Service.User = tmpl.ServiceUser
		}
	}
	if known {
		comp.Quorum = tmpl.Quorum
	}
	switch cs.Health.Kind {
	case "":
	case "tcp":
		comp.Health = &manifests.Health{TCP: &manifests.TCPCheck{Port: cs.Health.Port}}
	case "http":
		comp.Health = &manifests.Health{HTTP: &manifests.HTTPCheck{Port: cs.Health.Port, Path: strings.TrimSpace(cs.Health.Path)}}
	default:
		errorf(p+".health", "kind %q: choose tcp, http or none", cs.Health.Kind)
	}
	return comp, ps
}

// artifactRef is how the manifest names an artifact: relative to the
// manifest's directory when the artifact lives under it, so the two can
// move together, and absolute otherwise.
func (w *Wizard) artifactRef(path string) string {
	dir := filepath.Dir(w.opts.ManifestPath)
	if rel, err := filepath.Rel(dir, path); err == nil && filepath.IsLocal(rel) {
		return rel
	}
	return path
}

// roleOrder is the rollout order: the preset roles first (masters before
// agents), then the others in the order nodes first use them.
func roleOrder(nodes []manifests.Node) []string {
	seen := map[string]bool{}
	for _, n := range nodes {
		for _, r := range n.Roles {
			seen[r] = true
		}
	}
	var order []string
	for _, r := range presetRoleOrder {
		if seen[r] {
			order = append(order, r)
		}
	}
	for _, n := range nodes {
		for _, r := range n.Roles {
			if !slices.Contains(order, r) {
				order = append(order, r)
			}
		}
	}
	return order
}

// cleanList trims entries and drops empty and repeated ones.
func cleanList(in []string) []string {
	var out []string
	for _, s := range in {
		s = strings.TrimSpace(s)
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// marshalManifest is the manifest file the wizard writes: a header saying
// where it came from, then the cluster as YAML in the schema's field order.
func marshalManifest(c *manifests.Cluster) ([]byte, error) {
	body, err := orderedYAML(c)
	if err != nil {
		return nil, fmt.Errorf("marshal manifest: %w", err)
	}
	header := "# Written by the drover setup wizard. Edit freely: editing this file is\n" +
		"# how the cluster is changed, and the daemon validates every edit.\n"
	return append([]byte(header), body...), nil
}
