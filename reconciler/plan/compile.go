package plan

import (
	"context"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/drover-project/drover/inventory"
	"github.com/drover-project/drover/manifests"
)

// Compile turns a loaded manifest into Desired: the dependsOn order, and
// for every node the components it should have with files and unit
// already rendered. It is pure apart from resolving a relative manifest
// directory against the working directory; every error names the node and
// component it comes from.
func Compile(l *manifests.Loaded) (*Desired, error) {
	c := l.Cluster
	if err := checkNames(c); err != nil {
		return nil, err
	}
	order, err := dependencyOrder(c.Spec.Components)
	if err != nil {
		return nil, err
	}
	maxUnavailable := manifests.NewCount(1)
	if c.Spec.Rollout.MaxUnavailable != nil {
		maxUnavailable = c.Spec.Rollout.MaxUnavailable
	}
	d := &Desired{
		Cluster:     c.Metadata.Name,
		Generation:  l.Hash,
		InstallRoot: c.Spec.InstallRoot,
		Paused:      c.Spec.Paused,
		Order:       order,
		Components:  make(map[string]*DesiredComponentInfo, len(c.Spec.Components)),
		loaded:      l,
		Rollout: RolloutPolicy{
			RoleOrder:      slices.Clone(c.Spec.Rollout.RoleOrder),
			MaxUnavailable: *maxUnavailable,
			HealthTimeout:  c.Spec.Rollout.HealthTimeout.Get(5 * time.Minute),
			OnFailure:      c.Spec.Rollout.OnFailure,
			MaxFailures:    c.Spec.Rollout.MaxFailures,
		},
	}
	d.ProbeInterval = c.Spec.ProbeInterval.Get(30 * time.Second)
	for i := range c.Spec.Components {
		comp := &c.Spec.Components[i]
		info := &DesiredComponentInfo{
			Name:      comp.Name,
			Version:   comp.Version,
			Present:   comp.State != manifests.StateAbsent,
			Quorum:    comp.Quorum,
			DependsOn: slices.Clone(comp.DependsOn),
			Roles:     slices.Clone(comp.Roles),
		}
		if comp.Rollout != nil && comp.Rollout.MaxUnavailable != nil {
			mu := *comp.Rollout.MaxUnavailable
			info.MaxUnavailable = &mu
		}
		if info.Present {
			for _, n := range c.NodesFor(comp) {
				info.Members = append(info.Members, n.Name)
			}
		}
		d.Components[comp.Name] = info
	}
	for _, name := range order {
		info := d.Components[name]
		if !info.Present {
			continue
		}
		for _, dep := range info.DependsOn {
			if !d.Components[dep].Present {
				return nil, fmt.Errorf("component %s depends on %s, which is absent", name, dep)
			}
		}
	}
	nodes, err := compileNodes(l, order)
	if err != nil {
		return nil, err
	}
	d.Nodes = nodes
	d.IndexNodes()
	return d, nil
}

// compileNodes compiles every node, in order, with one renderer (the
// cluster's view is built once and a template that does not depend on
// the node is rendered once) and one set of units.
func compileNodes(l *manifests.Loaded, order []string) ([]*DesiredNode, error) {
	c := l.Cluster
	r := l.Renderer(context.Background())
	units := units{}
	var nodes []*DesiredNode
	for i := range c.Spec.Nodes {
		n, err := compileNode(l, r, units, &c.Spec.Nodes[i], order)
		if err != nil {
			return nil, err
		}
		nodes = append(nodes, n)
	}
	return nodes, nil
}

func compileNode(l *manifests.Loaded, r *manifests.Renderer, units units, node *manifests.Node, order []string) (*DesiredNode, error) {
	c := l.Cluster
	dn := &DesiredNode{
		Name:   node.Name,
		Target: inventory.TargetOf(&c.Spec, node),
		Roles:  slices.Clone(node.Roles),
		Labels: maps.Clone(node.Labels),
		Paused: node.Paused,
	}
	for _, name := range order {
		comp, _ := c.ComponentByName(name)
		if comp.State == manifests.StateAbsent || !comp.Matches(node) {
			continue
		}
		dc, err := compileComponent(l, r, units, node, comp)
		if err != nil {
			return nil, err
		}
		dn.Components = append(dn.Components, dc)
	}
	return dn, nil
}

// compileComponent renders one component for one node, its unit through
// units (nil: none kept). Render errors already name the node and
// component; the others are wrapped so they do too.
func compileComponent(l *manifests.Loaded, r *manifests.Renderer, units units, node *manifests.Node, comp *manifests.Component) (*DesiredComponent, error) {
	c := l.Cluster
	files, err := r.Render(node, comp)
	if err != nil {
		return nil, err
	}
	where := func(err error) error { return fmt.Errorf("node %s, component %s: %w", node.Name, comp.Name, err) }
	env, err := RenderEnvironmentFile(comp.Service)
	if err != nil {
		return nil, where(err)
	}
	configHash := manifests.ConfigHash(manifests.Digests(files))
	legacyConfigHash := configHash
	if env != nil {
		files = append(files, manifests.RenderedFile{
			Path: path.Join(manifests.VersionDir(c.Spec.InstallRoot, comp.Name, comp.Version), manifests.EnvFileName),
			Mode: 0o600, Content: env,
		})
		configHash = manifests.ConfigHash(manifests.Digests(files))
	}
	dc := &DesiredComponent{
		Name:       comp.Name,
		Version:    comp.Version,
		Files:      files,
		ConfigHash: configHash,
	}
	// Checks and hooks are templates like files: each node gets its own.
	p := r.ComponentPath(comp)
	if dc.Health, err = r.RenderHealth(p+".health", comp.Health, node, comp); err != nil {
		return nil, err
	}
	if dc.Leader, err = r.RenderHealth(p+".leader", comp.Leader, node, comp); err != nil {
		return nil, err
	}
	for _, name := range manifests.HookNames {
		if slices.Contains(manifests.MembershipHooks, name) {
			continue // rendered for the change they run for (ForMembership)
		}
		h, err := r.RenderHook(p+".hooks."+name, comp.Hooks.ByName(name), node, comp)
		if err != nil {
			return nil, err
		}
		if h != nil {
			if dc.Hooks == nil {
				dc.Hooks = map[string]*manifests.Hook{}
			}
			dc.Hooks[name] = h
		}
	}
	if a := comp.Artifact; a != nil {
		dc.ArtifactStrip = a.StripComponents
		dc.ArtifactSHA256 = strings.ToLower(a.SHA256)
		dc.ArtifactURL = a.URL
		if a.Path != "" {
			dc.ArtifactPath = l.ArtifactPath(a.Path)
			dc.ArtifactSize = l.ArtifactSizes[dc.ArtifactPath]
		}
	}
	if comp.Service != nil {
		deps := serviceDeps(c, node, comp)
		u, err := renderUnit(r, units, comp, node, deps, false)
		if err != nil {
			return nil, where(err)
		}
		dc.Unit, dc.UnitHash = u.text, u.hash
		dc.Reload = comp.Service.Reload != "" || comp.Service.ReloadArgs != nil
		if env != nil {
			inline, err := renderUnit(r, units, comp, node, deps, true)
			if err != nil {
				return nil, where(err)
			}
			dc.EnvMigration = &EnvMigration{UnitHash: inline.hash, ConfigHash: legacyConfigHash}
		}
	}
	return dc, nil
}

// serviceDeps are the dependsOn components that run a unit on this same
// node: only those can be ordered with After=/Wants=. A dependency placed
// on other nodes is a rollout ordering, not a boot ordering.
func serviceDeps(c *manifests.Cluster, node *manifests.Node, comp *manifests.Component) []string {
	var out []string
	for _, name := range comp.DependsOn {
		dep, ok := c.ComponentByName(name)
		if ok && dep.Service != nil && dep.State != manifests.StateAbsent && dep.Matches(node) {
			out = append(out, name)
		}
	}
	return out
}

// checkNames refuses duplicate node and component names: everything
// downstream is keyed by name. Validate reports them too; Compile must
// not depend on it having run.
func checkNames(c *manifests.Cluster) error {
	seen := map[string]bool{}
	for _, n := range c.Spec.Nodes {
		if seen[n.Name] {
			return fmt.Errorf("node %s is listed twice", n.Name)
		}
		seen[n.Name] = true
	}
	seen = map[string]bool{}
	for _, comp := range c.Spec.Components {
		if seen[comp.Name] {
			return fmt.Errorf("component %s is listed twice", comp.Name)
		}
		seen[comp.Name] = true
	}
	return nil
}

// dependencyOrder sorts components so that every one comes after all it
// dependsOn. Among components whose dependencies are met, manifest order
// wins, so the result is stable under unrelated edits.
func dependencyOrder(comps []manifests.Component) ([]string, error) {
	index := make(map[string]int, len(comps))
	for i, comp := range comps {
		index[comp.Name] = i
	}
	for _, comp := range comps {
		for _, dep := range comp.DependsOn {
			if _, ok := index[dep]; !ok {
				return nil, fmt.Errorf("component %s depends on unknown component %s", comp.Name, dep)
			}
			if dep == comp.Name {
				return nil, fmt.Errorf("component %s depends on itself", comp.Name)
			}
		}
	}
	placed := make([]bool, len(comps))
	order := make([]string, 0, len(comps))
	for len(order) < len(comps) {
		progress := false
		for i, comp := range comps {
			if placed[i] || !allPlaced(comp.DependsOn, index, placed) {
				continue
			}
			placed[i] = true
			order = append(order, comp.Name)
			progress = true
			break // restart from the top: manifest order among the ready ones
		}
		if !progress {
			return nil, fmt.Errorf("dependsOn cycle: %s", describeCycle(comps, index, placed))
		}
	}
	return order, nil
}

func allPlaced(deps []string, index map[string]int, placed []bool) bool {
	for _, dep := range deps {
		if !placed[index[dep]] {
			return false
		}
	}
	return true
}

// describeCycle follows unplaced dependencies from the first unplaced
// component until a name repeats, and prints that loop.
func describeCycle(comps []manifests.Component, index map[string]int, placed []bool) string {
	start := slices.Index(placed, false)
	var path []string
	seenAt := map[string]int{}
	cur := start
	for {
		name := comps[cur].Name
		if at, ok := seenAt[name]; ok {
			return strings.Join(append(path[at:], name), " -> ")
		}
		seenAt[name] = len(path)
		path = append(path, name)
		for _, dep := range comps[cur].DependsOn {
			if !placed[index[dep]] {
				cur = index[dep]
				break
			}
		}
	}
}
