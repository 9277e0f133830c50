package manifests

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Checks, hooks and exec lines are templates with the context files have
// (TemplateContext): a check can name .Node.Address, a hook
// {{ .Dir }}/bin/etcdctl. Validation renders each for every node it runs
// on, Compile renders the copies the reconciler runs, both through a
// Renderer, so one manifest's budget covers them all.

// templateField is one templated string and its field path.
type templateField struct {
	path string
	get  func() string
	set  func(string)
}

func textField(path string, s *string) templateField {
	return templateField{path: path, get: func() string { return *s }, set: func(v string) { *s = v }}
}

func listFields(path string, list []string) []templateField {
	out := make([]templateField, len(list))
	for i := range list {
		out[i] = textField(at(path, i), &list[i])
	}
	return out
}

func mapFields(path string, m map[string]string) []templateField {
	var out []templateField
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, templateField{path: path + "." + k, get: func() string { return m[k] }, set: func(v string) { m[k] = v }})
	}
	return out
}

// isTemplate reports whether s holds an action ({{ ... }}): such a field
// is checked once rendered, per node.
func isTemplate(s string) bool { return strings.Contains(s, "{{") }

// clone is a deep copy of h, so rendering one node's copy leaves the
// manifest and the other nodes' copies alone.
func (h *Health) clone() *Health {
	if h == nil {
		return nil
	}
	c := *h
	if h.Exec != nil {
		e := *h.Exec
		e.Command = slices.Clone(e.Command)
		c.Exec = &e
	}
	if h.HTTP != nil {
		t := *h.HTTP
		t.ExpectStatuses = slices.Clone(t.ExpectStatuses)
		t.Headers = maps.Clone(t.Headers)
		t.BodyJSON = maps.Clone(t.BodyJSON)
		c.HTTP = &t
	}
	if h.TCP != nil {
		t := *h.TCP
		c.TCP = &t
	}
	return &c
}

// templateFields are h's templated strings, for every kind it sets.
func (h *Health) templateFields(p string) []templateField {
	var out []templateField
	for _, k := range healthKinds {
		if k.set(h) {
			out = append(out, k.templates(h, p)...)
		}
	}
	return out
}

func (h *Hook) clone() *Hook {
	c := *h
	c.Command = slices.Clone(h.Command)
	return &c
}

// RenderHealth is h with every template rendered for node: what the
// probe runs there. field is h's path (health, leader) for errors. A
// check without templates is h itself, shared by every node: callers
// must not change what they get.
func (r *Renderer) RenderHealth(field string, h *Health, node *Node, comp *Component) (*Health, error) {
	if h == nil {
		return nil, nil
	}
	if !r.templated(h, func() []templateField { return h.templateFields("") }) {
		return h, nil
	}
	c := h.clone()
	if err := r.renderFields(c.templateFields(field), node, comp); err != nil {
		return nil, err
	}
	return c, nil
}

// RenderHook is h with its command rendered for node; like RenderHealth,
// h itself when it has no templates.
func (r *Renderer) RenderHook(field string, h *Hook, node *Node, comp *Component) (*Hook, error) {
	if h == nil {
		return nil, nil
	}
	if !r.templated(h, func() []templateField { return listFields("", h.Command) }) {
		return h, nil
	}
	c := h.clone()
	if err := r.renderFields(listFields(field+".command", c.Command), node, comp); err != nil {
		return nil, err
	}
	return c, nil
}

// RenderArgs renders each argument of a command given as a list.
func (r *Renderer) RenderArgs(field string, args []string, node *Node, comp *Component) ([]string, error) {
	c := slices.Clone(args)
	if err := r.renderFields(listFields(field, c), node, comp); err != nil {
		return nil, err
	}
	return c, nil
}

// templated reports whether any of the fields of v (a *Health or *Hook
// of the manifest) is a template, found once per renderer: at 10,000
// nodes, cloning and walking a plain check for every node was a tenth of
// the compile.
func (r *Renderer) templated(v any, fields func() []templateField) bool {
	if t, ok := r.hasTemplates[v]; ok {
		return t
	}
	t := false
	for _, f := range fields() {
		t = t || isTemplate(f.get())
	}
	r.hasTemplates[v] = t
	return t
}

// renderFields renders each field in place; the error names the field
// and the node.
func (r *Renderer) renderFields(fields []templateField, node *Node, comp *Component) error {
	for _, f := range fields {
		text := f.get()
		if !isTemplate(text) {
			continue
		}
		out, err := r.Execute(f.path, text, node, comp)
		if err != nil {
			return &FieldError{Path: f.path, Node: node.Name, Err: err}
		}
		f.set(string(out))
	}
	return nil
}

// parseFields reports each field that does not parse as a template.
func (v *validator) parseFields(fields []templateField) {
	for _, f := range fields {
		if !isTemplate(f.get()) {
			continue
		}
		if _, err := ParseTemplate(f.path, f.get()); err != nil {
			v.errorf(f.path, "%v", err)
		}
	}
}

// checkTemplates is one check or hook of a component and its field
// path; renders has the files and the exec line.
type checkTemplates struct {
	field  string
	health *Health
	hook   *Hook
}

func (comp *Component) checkTemplates(p string) []checkTemplates {
	var out []checkTemplates
	if comp.Health != nil {
		out = append(out, checkTemplates{field: p + ".health", health: comp.Health})
	}
	if comp.Leader != nil {
		out = append(out, checkTemplates{field: p + ".leader", health: comp.Leader})
	}
	for _, name := range HookNames {
		if h := comp.Hooks.ByName(name); h != nil {
			out = append(out, checkTemplates{field: p + ".hooks." + name, hook: h})
		}
	}
	return out
}

// renderChecks renders every check and hook for every node, and checks
// what each renders to as validation checks a literal value, reporting
// the first failing node of each.
func (v *validator) renderChecks(r *Renderer, p string, comp *Component, nodes []*Node) {
	for _, ct := range comp.checkTemplates(p) {
		if !ct.parses() {
			continue // reported where the field is checked
		}
		for _, n := range nodes {
			if r.budget.err != nil {
				return
			}
			if ct.health != nil {
				h, err := r.RenderHealth(ct.field, ct.health, n, comp)
				if err != nil {
					v.problems = append(v.problems, fieldProblem(err, ct.field))
					break
				}
				if bad := v.renderedHealth(ct.field, ct.health, h); bad != nil {
					v.errorf(bad.Path, "node %s: renders %s", n.Name, bad.Message)
					break
				}
				continue
			}
			if _, err := r.RenderHook(ct.field, ct.hook, n, comp); err != nil {
				v.problems = append(v.problems, fieldProblem(err, ct.field))
				break
			}
		}
	}
}

// parses reports whether every templated field of the check or hook parses.
func (ct checkTemplates) parses() bool {
	var fields []templateField
	if ct.health != nil {
		fields = ct.health.templateFields(ct.field)
	} else {
		fields = listFields(ct.field+".command", ct.hook.Command)
	}
	for _, f := range fields {
		if isTemplate(f.get()) {
			if _, err := ParseTemplate(f.path, f.get()); err != nil {
				return false
			}
		}
	}
	return true
}

// renderedHealth is the first problem of a rendered check h in a field
// that is a template in the manifest's check (the others are checked as
// written), nil when there is none.
func (v *validator) renderedHealth(field string, written, h *Health) *Problem {
	templated := map[string]bool{}
	for _, f := range written.templateFields(field) {
		if isTemplate(f.get()) {
			templated[f.path] = true
		}
	}
	if len(templated) == 0 {
		return nil
	}
	scratch := &validator{c: v.c, ctx: v.ctx, roles: v.roles, rendered: true}
	scratch.health(field, h)
	for _, p := range scratch.problems {
		if p.Severity == SeverityError && templated[p.Path] {
			return &p
		}
	}
	return nil
}

// FieldError is a template of a check, hook or exec argument that
// failed to render for a node.
type FieldError struct {
	Path string // field path, such as spec.components[0].health.http.path
	Node string
	Err  error
}

func (e *FieldError) Error() string { return fmt.Sprintf("%s: node %s: %v", e.Path, e.Node, e.Err) }
func (e *FieldError) Unwrap() error { return e.Err }

// fieldProblem is a render error as a validation problem at its field.
func fieldProblem(err error, def string) Problem {
	var fe *FieldError
	if errors.As(err, &fe) {
		return Problem{Path: fe.Path, Message: fmt.Sprintf("node %s: %v", fe.Node, fe.Err), Severity: SeverityError}
	}
	return Problem{Path: def, Message: err.Error(), Severity: SeverityError}
}
