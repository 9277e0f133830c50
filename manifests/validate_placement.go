package manifests

import (
	"fmt"
	"strings"
)

// placement checks what depends on which nodes a present component lands
// on: that it lands somewhere, quorum sizes, templates rendering for every
// node, and two components writing one absolute path on the same node.
func (v *validator) placement() {
	if len(v.c.Spec.Nodes) == 0 {
		return // already an error; every component would repeat it
	}
	r := v.c.NewRenderer(v.ctx)
	v.renderer = r
	written := map[string][]writer{}
	for i := range v.c.Spec.Components {
		comp := &v.c.Spec.Components[i]
		if comp.State == StateAbsent {
			continue
		}
		p := componentPath(i)
		for j, r := range comp.Roles {
			if IsName(r) && !v.roles[r] {
				v.warnf(at(p+".roles", j), "no node has role %q", r)
			}
		}
		nodes := v.c.NodesFor(comp)
		if len(nodes) == 0 {
			v.errorf(selectorPath(p, comp), "matches no node")
			continue
		}
		if comp.Quorum && len(nodes)%2 == 0 {
			v.warnf(p+".quorum", "%d members tolerate no more failures than %d", len(nodes), len(nodes)-1)
		}
		if r.budget.err == nil { // the one over budget is reported; the rest would repeat it
			before := len(v.problems)
			v.renders(r, p, comp, nodes)
			if comp.Quorum && len(v.problems) == before {
				v.membershipRenders(r, p, comp, nodes)
			}
		}
		v.sharedFiles(written, i, comp, nodes)
	}
}

// selectorPath is the field that chose no node.
func selectorPath(p string, comp *Component) string {
	switch {
	case len(comp.Roles) > 0 && len(comp.Selector) > 0:
		return p
	case len(comp.Roles) > 0:
		return p + ".roles"
	default:
		return p + ".selector"
	}
}

// renders executes every template for every node it is rendered for, so
// a missing key or a bad call fails here and not halfway through a rollout.
// Each template reports its first failing node only.
func (v *validator) renders(r *Renderer, p string, comp *Component, nodes []*Node) {
	for j, f := range comp.Files {
		if r.budget.err != nil {
			return // the template over budget is reported; the rest would repeat it
		}
		if _, err := ParseTemplate(f.Path, f.Template); err != nil {
			continue // reported by files
		}
		for _, n := range nodes {
			if _, err := r.Execute(f.Path, f.Template, n, comp); err != nil {
				v.errorf(at(p+".files", j)+".template", "node %s: %v", n.Name, err)
				break
			}
		}
	}
	v.renderChecks(r, p, comp, nodes)
	s := comp.Service
	if s == nil {
		return
	}
	v.renderCommand(r, p, "exec", s.Exec, s.ExecArgs, comp, nodes)
	v.renderCommand(r, p, "reload", s.Reload, s.ReloadArgs, comp, nodes)
}

// membershipRenders renders a quorum component's templates again as a
// change of its membership sees them (a node joining, a node leaving:
// .Component.Joining, .Member), so the branch a template takes only then
// fails here too. The first node stands for the one that changes.
func (v *validator) membershipRenders(r *Renderer, p string, comp *Component, nodes []*Node) {
	names := make([]string, len(nodes))
	for i, n := range nodes {
		names[i] = n.Name
	}
	for _, joining := range []bool{true, false} {
		before := len(v.problems)
		v.renders(r.ForMembership(Membership{Joining: joining, Member: names[0], Members: names}), p, comp, nodes)
		if len(v.problems) > before || r.budget.err != nil {
			change := map[bool]string{true: "joins", false: "leaves"}[joining]
			for i := before; i < len(v.problems); i++ {
				v.problems[i].Message += fmt.Sprintf(" (rendered as when %s %s the group)", names[0], change)
			}
			return
		}
	}
}

// renderCommand renders service.exec or service.reload (field), in
// either form, for every node: each must render to one line without
// control characters.
func (v *validator) renderCommand(r *Renderer, p, field, line string, args []string, comp *Component, nodes []*Node) {
	p += ".service." + field
	texts, paths, names := []string{line}, []string{p}, []string{CommandTemplate(field, -1)}
	if args != nil {
		texts, paths, names = args, nil, nil
		for i := range args {
			paths = append(paths, at(p, i))
			names = append(names, CommandTemplate(field, i))
		}
	}
	for i, text := range texts {
		if text == "" {
			continue
		}
		if _, err := ParseTemplate(names[i], text); err != nil || r.budget.err != nil {
			return // reported by service, or the budget is spent
		}
		for _, n := range nodes {
			out, err := r.Execute(names[i], text, n, comp)
			if err != nil {
				v.errorf(paths[i], "node %s: %v", n.Name, err)
				break
			}
			if hasControl(string(out)) {
				v.errorf(paths[i], "node %s: must render to one line without control characters", n.Name)
				break
			}
			// One line is systemd's syntax (quotes, backslashes); a list
			// is quoted by drover.
			if args == nil {
				if err := CheckCommandLine(strings.TrimSpace(string(out))); err != nil && (err != ErrCommandEmpty || strings.TrimSpace(line) != "") {
					v.errorf(paths[i], "node %s: %q %v", n.Name, strings.TrimSpace(string(out)), err)
					break
				}
			}
		}
	}
}

// writer is a component file written at an absolute path.
type writer struct {
	path  string // field path of the file
	comp  int
	nodes map[string]bool
}

// sharedFiles reports an absolute path that two components write on the same node.
func (v *validator) sharedFiles(written map[string][]writer, i int, comp *Component, nodes []*Node) {
	on := make(map[string]bool, len(nodes))
	for _, n := range nodes {
		on[n.Name] = true
	}
	for j, f := range comp.Files {
		if !isAbsFile(f.Path) {
			continue
		}
		key := FilePath(v.c.Spec.InstallRoot, comp, f)
		fp := at(componentPath(i)+".files", j) + ".path"
		for _, w := range written[key] {
			if w.comp == i {
				continue // a duplicate within a component is reported by files
			}
			if shared := firstShared(nodes, w.nodes); shared != "" {
				v.errorf(fp, "%q is also written by %s on node %s", f.Path, w.path, shared)
				break
			}
		}
		written[key] = append(written[key], writer{path: fp, comp: i, nodes: on})
	}
}

func isAbsFile(p string) bool { return len(p) > 1 && p[0] == '/' }

func firstShared(nodes []*Node, other map[string]bool) string {
	for _, n := range nodes {
		if other[n.Name] {
			return n.Name
		}
	}
	return ""
}

// componentPath is the field path of a component by index.
func componentPath(i int) string { return fmt.Sprintf("spec.components[%d]", i) }

// componentPathOf is comp's field path (spec.components[i]); comp is one
// of c's own.
func (c *Cluster) componentPathOf(comp *Component) string {
	for i := range c.Spec.Components {
		if &c.Spec.Components[i] == comp {
			return componentPath(i)
		}
	}
	return "component " + comp.Name
}

// CommandTemplate names the template of service.exec or service.reload
// (field): the one line (i < 0) or argument i. Validation and the compile
// both name it so, so the compile finds what validation rendered.
func CommandTemplate(field string, i int) string {
	if i < 0 {
		return "service." + field
	}
	return fmt.Sprintf("service.%s[%d]", field, i)
}
