package manifests

import (
	"maps"
	"net/url"
	"path"
	"slices"
	"strings"
)

// components checks each component on its own; how components relate to
// nodes and to each other is in placement and dependencies.
func (v *validator) components() {
	names := map[string]string{}
	for i := range v.c.Spec.Components {
		comp := &v.c.Spec.Components[i]
		p := at("spec.components", i)
		v.name(p+".name", comp.Name)
		if first, dup := names[comp.Name]; dup && comp.Name != "" {
			v.errorf(p+".name", "duplicate name %q (also %s)", comp.Name, first)
		} else {
			names[comp.Name] = p
		}
		v.component(p, comp)
	}
}

func (v *validator) component(p string, comp *Component) {
	v.oneOf(p+".state", comp.State, StatePresent, StateAbsent)
	// An absent component is only removed: it needs a name, nothing more.
	present := comp.State != StateAbsent
	if present || comp.Version != "" {
		v.version(p+".version", comp.Version)
	}
	for j, r := range comp.Roles {
		v.name(at(p+".roles", j), r)
	}
	v.labelKeys(p+".selector", comp.Selector)
	if present && comp.Artifact == nil && len(comp.Files) == 0 {
		v.errorf(p, "needs an artifact or files")
	}
	if comp.Artifact != nil {
		v.artifact(p+".artifact", comp.Artifact)
	}
	v.files(p, comp)
	if comp.Service != nil {
		v.service(p+".service", comp.Service)
	}
	if comp.Hooks != nil {
		v.hooks(p+".hooks", comp)
	}
	if comp.Health != nil {
		v.health(p+".health", comp.Health)
	}
	if comp.Leader != nil {
		v.leader(p+".leader", comp)
	}
	if comp.Rollout != nil {
		v.maxUnavailable(p+".rollout.maxUnavailable", comp.Rollout.MaxUnavailable)
	}
}

func (v *validator) artifact(p string, a *Artifact) {
	switch {
	case a.Path != "" && a.URL != "":
		v.errorf(p, "set path or url, not both")
	case a.Path == "" && a.URL == "":
		v.errorf(p, "set path or url")
	case hasControl(a.Path):
		v.errorf(p+".path", "%q must not contain control characters", a.Path)
	case a.URL != "":
		if u, err := url.Parse(a.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.errorf(p+".url", "%q must be an http or https URL", a.URL)
		}
	}
	if !isSHA256(a.SHA256) {
		v.errorf(p+".sha256", "must be 64 hex characters")
	}
	if a.StripComponents != 0 {
		v.between(p+".stripComponents", a.StripComponents, 0, MaxStripComponents)
	}
}

func isSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	return strings.Trim(s, "0123456789abcdefABCDEF") == ""
}

func (v *validator) files(p string, comp *Component) {
	seen := map[string]string{}
	for j, f := range comp.Files {
		fp := at(p+".files", j)
		if v.filePath(fp+".path", f.Path) {
			key := path.Clean(f.Path)
			if first, dup := seen[key]; dup {
				v.errorf(fp+".path", "duplicate path %q (also %s)", f.Path, first)
			} else {
				seen[key] = fp
			}
		}
		if f.Mode != "" {
			if _, err := ParseMode(f.Mode); err != nil {
				v.errorf(fp+".mode", "%q must be an octal file mode no greater than 07777, such as 0644", f.Mode)
			}
		}
		if _, err := ParseTemplate(f.Path, f.Template); err != nil {
			v.errorf(fp+".template", "%v", err)
		}
		v.oneOf(fp+".onChange", f.OnChange, OnChangeRestart, OnChangeReload, OnChangeNone)
		switch {
		case f.OnChange == OnChangeReload && comp.Service == nil:
			v.errorf(fp+".onChange", "reload needs a service to reload")
		case f.OnChange == OnChangeReload && comp.Service.Reload == "" && comp.Service.ReloadArgs == nil:
			v.errorf(fp+".onChange", "reload needs service.reload, the command systemd runs to reload")
		}
	}
}

// filePath checks one file's path and reports whether it is usable.
func (v *validator) filePath(p, s string) bool {
	clean := path.Clean(s)
	root := v.c.Spec.InstallRoot
	switch {
	case s == "":
		v.errorf(p, "required")
	case hasControl(s):
		v.errorf(p, "%q must not contain control characters", s)
	case clean == "/" || clean == ".":
		v.errorf(p, "%q must name a file", s)
	case path.IsAbs(s) && root != "" && (clean == root || strings.HasPrefix(clean, strings.TrimSuffix(root, "/")+"/")):
		v.errorf(p, "%q is inside installRoot %s, which drover manages; give a path relative to the component directory", s, root)
	case !path.IsAbs(s) && (clean == ".." || strings.HasPrefix(clean, "../")):
		v.errorf(p, "%q escapes the component directory", s)
	case !path.IsAbs(s) && reservedTop(clean) != "":
		v.errorf(p, "%q is inside %s, which drover keeps for itself in the version directory", s, reservedTop(clean))
	case strings.HasPrefix(path.Base(clean), ReservedPrefix):
		v.errorf(p, "%q: names starting with %s are drover's temporary files", s, ReservedPrefix)
	default:
		return true
	}
	return false
}

// restartValues are systemd's Restart= settings.
func restartValues() []string {
	return []string{"no", "on-success", "on-failure", "on-abnormal", "on-watchdog", "on-abort", "always"}
}

func (v *validator) service(p string, s *Service) {
	v.command(p+".exec", s.Exec, s.ExecArgs, true)
	v.command(p+".reload", s.Reload, s.ReloadArgs, false)
	v.account(p+".user", s.User, "user")
	v.account(p+".group", s.Group, "group")
	v.oneOf(p+".restart", s.Restart, restartValues()...)
	for _, k := range slices.Sorted(maps.Keys(s.Environment)) {
		if !isEnvName(k) {
			v.errorf(p+".environment", "%q is not a valid variable name", k)
		}
		if hasControl(s.Environment[k]) {
			v.errorf(p+".environment", "value of %s must not contain control characters", k)
		}
	}
}

// command checks a command given as one line or as a list of arguments.
func (v *validator) command(p, line string, args []string, required bool) {
	switch {
	case args != nil && len(args) == 0:
		v.errorf(p, "the list of arguments must not be empty")
	case args != nil:
		if strings.TrimSpace(args[0]) == "" {
			v.errorf(at(p, 0), "the program must not be empty")
		}
		for i, a := range args {
			if _, err := ParseTemplate("exec", a); err != nil {
				v.errorf(at(p, i), "%v", err)
			}
		}
	case strings.TrimSpace(line) == "":
		if required || line != "" {
			v.errorf(p, "required")
		}
	default:
		if _, err := ParseTemplate("exec", line); err != nil {
			v.errorf(p, "%v", err)
		}
	}
}

// hooks checks each hook: an argv like an exec check, and a timeout.
func (v *validator) hooks(p string, comp *Component) {
	for _, name := range HookNames {
		h := comp.Hooks.ByName(name)
		if h == nil {
			continue
		}
		hp := p + "." + name
		switch {
		case len(h.Command) == 0:
			v.errorf(hp+".command", "required")
		case h.Command[0] == "":
			v.errorf(hp+".command[0]", "the program must not be empty")
		}
		v.parseFields(listFields(hp+".command", h.Command))
		v.duration(hp+".timeout", h.Timeout)
		if (name == "preStop" || name == "postStart") && comp.Service == nil {
			v.errorf(hp, "%s runs around the service, and the component has none", name)
		}
		if slices.Contains(MembershipHooks, name) && !comp.Quorum {
			v.errorf(hp, "%s changes a quorum group's membership, and the component is not one (set quorum: true)", name)
		}
	}
}

// leader checks a quorum component's leader check: an exec check, run on
// the node with the probe, like an exec health check.
func (v *validator) leader(p string, comp *Component) {
	h := comp.Leader
	if !comp.Quorum {
		v.errorf(p, "only a quorum component has a leader (set quorum: true)")
	}
	if kind, err := h.Kind(); err != nil || kind != HealthExec {
		v.errorf(p, "set exec: a leader check runs a command on the node")
		return
	}
	v.health(p, h)
}

// checkHost checks an optional host (empty: the node's own address).
func (v *validator) checkHost(p, s string) {
	if s != "" {
		v.host(p, s)
	}
}
