package manifests

// rollout checks the cluster-wide rollout policy.
func (v *validator) rollout() {
	r := &v.c.Spec.Rollout
	seen := map[string]bool{}
	for i, role := range r.RoleOrder {
		p := at("spec.rollout.roleOrder", i)
		switch {
		case !v.name(p, role):
		case seen[role]:
			v.errorf(p, "duplicate role %q", role)
		case !v.roles[role] && len(v.c.Spec.Nodes) > 0:
			v.errorf(p, "no node has role %q", role)
		}
		seen[role] = true
	}
	v.maxUnavailable("spec.rollout.maxUnavailable", r.MaxUnavailable)
	v.duration("spec.rollout.healthTimeout", r.HealthTimeout)
	v.oneOf("spec.rollout.onFailure", r.OnFailure, OnFailureRollback, OnFailureHalt)
	if r.MaxFailures < 0 {
		v.errorf("spec.rollout.maxFailures", "%d must be 0 (halt at the first failed step) or more", r.MaxFailures)
	}
}
