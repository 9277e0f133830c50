package manifests

import (
	"fmt"
	"strings"
)

// later runs the checks the probe and the unit writer make of a manifest
// (nodecheck.go), so validate refuses what a node would refuse later: a
// path the probe cannot read back (GoodNodePath: control characters and
// relative roots are reported by files and installRoot already, so only
// the backslash is left), a NUL in an exec check's argument.
// The rendered service.exec line is checked where it is rendered
// (renders, in validate_placement.go).
func (v *validator) later() {
	for i := range v.c.Spec.Components {
		comp := &v.c.Spec.Components[i]
		p := componentPath(i)
		for j, f := range comp.Files {
			if f.Path == "" || hasControl(f.Path) {
				continue // reported by files
			}
			if strings.Contains(f.Path, `\`) {
				v.errorf(at(p+".files", j)+".path", "%q: must not contain a backslash (the probe could not read the file back)", f.Path)
			}
		}
		for _, check := range []struct {
			field string
			h     *Health
		}{{"health", comp.Health}, {"leader", comp.Leader}} {
			if check.h == nil || check.h.Exec == nil {
				continue
			}
			for k, a := range check.h.Exec.Command {
				if !GoodExecArg(a) {
					v.errorf(fmt.Sprintf("%s.%s.exec.command[%d]", p, check.field, k), "must not contain NUL")
				}
			}
		}
	}
	if r := v.c.Spec.InstallRoot; strings.Contains(r, `\`) {
		v.errorf("spec.installRoot", "%q: must not contain a backslash", r)
	}
}
