package manifests

import (
	"context"
	"fmt"
	"maps"
	"slices"
)

// Validate returns every problem with the manifest, errors and warnings,
// each with its field path, in roughly field order. Call SetDefaults
// first: a field left at its zero value is taken to mean its default and
// is not reported.
func (c *Cluster) Validate() Problems {
	return c.ValidateContext(context.Background())
}

// ValidateContext is Validate that ctx can stop early (it renders every
// template for every node); stopped, it reports ctx's error as a problem.
func (c *Cluster) ValidateContext(ctx context.Context) Problems {
	ps, _ := c.validate(ctx)
	return ps
}

// validate is ValidateContext that also returns the renderer every
// template was rendered with (nil when none was), its outputs kept.
func (c *Cluster) validate(ctx context.Context) (Problems, *Renderer) {
	v := &validator{c: c, ctx: ctx, roles: map[string]bool{}}
	for _, n := range c.Spec.Nodes {
		for _, r := range n.Roles {
			v.roles[r] = true
		}
	}
	v.problems = append(v.problems, c.decodeProblems...)
	v.header()
	v.spec()
	v.ssh()
	v.nodes()
	v.components()
	v.dependencies()
	v.placement()
	v.later()
	v.rollout()
	return v.problems, v.renderer
}

// validator collects problems; each rule area is one method in its own file.
type validator struct {
	c        *Cluster
	ctx      context.Context
	problems Problems
	// roles is every role at least one node has.
	roles map[string]bool
	// rendered: the values checked are templates already rendered for a
	// node, so a value with {{ is checked as it is, never skipped.
	rendered bool
	// renderer rendered every template for every node (placement).
	renderer *Renderer
}

// literal reports whether s is checked now: not a template left to be
// checked once rendered per node (templated.go).
func (v *validator) literal(s string) bool { return v.rendered || !isTemplate(s) }

func (v *validator) errorf(path, format string, args ...any) {
	v.problems = append(v.problems, Problem{Path: path, Message: fmt.Sprintf(format, args...), Severity: SeverityError})
}

func (v *validator) warnf(path, format string, args ...any) {
	v.problems = append(v.problems, Problem{Path: path, Message: fmt.Sprintf(format, args...), Severity: SeverityWarning})
}

// header checks apiVersion, kind and metadata.
func (v *validator) header() {
	c := v.c
	if c.APIVersion != APIVersion {
		v.errorf("apiVersion", "must be %s, not %q", APIVersion, c.APIVersion)
	}
	if c.Kind != Kind {
		v.errorf("kind", "must be %s, not %q", Kind, c.Kind)
	}
	v.name("metadata.name", c.Metadata.Name)
	v.labelKeys("metadata.labels", c.Metadata.Labels)
}

// spec checks the cluster-wide scalars.
func (v *validator) spec() {
	s := &v.c.Spec
	v.installRoot("spec.installRoot", s.InstallRoot)
	v.duration("spec.probeInterval", s.ProbeInterval)
}

// ssh checks how drover reaches nodes.
func (v *validator) ssh() {
	s := &v.c.Spec.SSH
	v.account("spec.ssh.user", s.User, "user")
	v.port("spec.ssh.port", s.Port, true)
	v.paths("spec.ssh.identityFiles", s.IdentityFiles)
	v.duration("spec.ssh.connectTimeout", s.ConnectTimeout)
	if s.Concurrency != 0 {
		v.between("spec.ssh.concurrency", s.Concurrency, 1, MaxConcurrency)
	}
	v.jumpHosts("spec.ssh", s.Bastion, s.Jump)
	for _, role := range slices.Sorted(maps.Keys(s.Roles)) {
		p := "spec.ssh.roles." + role
		if v.name(p, role) && !v.roles[role] {
			v.warnf(p, "no node has role %s", role)
		}
		v.access(p, s.Roles[role])
	}
}

// MaxConcurrency bounds spec.ssh.concurrency.
const MaxConcurrency = 10000
