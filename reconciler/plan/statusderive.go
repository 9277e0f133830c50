package plan

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/drover-project/drover/probes"
)

// maxReasons bounds how many component problems a node's Reason lists.
const maxReasons = 3

// NodeStatuses derives the status of every node, in manifest order, from
// what it should have, what its probe saw and the plan Diff made of the
// two. Only what follows from those is filled in: LastConverged,
// ConsecutiveFailures, LastAction and History belong to the daemon, which
// carries them over between probes. ObservedGeneration is the generation
// the node was compared against, set only when the node was reachable.
//
// Sync and health are separate axes (docs/DESIGN.md): a pending restart leaves
// a component Synced but not Healthy; every other pending action makes it
// OutOfSync. A node is converged when it is reachable, every component it
// should have is Synced and Healthy, and nothing is left to remove.
func NodeStatuses(d *Desired, obs map[string]probes.Observed, plan Plan) []NodeStatus {
	plans := make(map[string]NodePlan, len(plan.Nodes))
	for _, np := range plan.Nodes {
		// A join or leave reads as one (MembershipOf): the daemon's
		// plans are made node by node, without the others' observations.
		if slices.ContainsFunc(np.Actions, func(a Action) bool { return d.Components[a.Component] != nil && d.Components[a.Component].Quorum }) {
			np.Actions = slices.Clone(np.Actions)
			for j, a := range np.Actions {
				np.Actions[j] = MembershipOf(d, obs, a)
			}
		}
		plans[np.Node] = np
	}
	out := make([]NodeStatus, 0, len(d.Nodes))
	for _, n := range d.Nodes {
		o, probed := obs[n.Name]
		out = append(out, nodeStatus(d, n, o, probed, plans[n.Name]))
	}
	return out
}

func nodeStatus(d *Desired, n *DesiredNode, o probes.Observed, probed bool, np NodePlan) NodeStatus {
	ns := NodeStatus{
		Name:             n.Name,
		Address:          n.Target.Address,
		Paused:           d.Paused || n.Paused,
		LastProbe:        o.ProbedAt,
		Components:       make([]ComponentStatus, 0, len(n.Components)),
		Roles:            slices.Clone(n.Roles),
		Labels:           maps.Clone(n.Labels),
		LastProbeAttempt: o.ProbedAt,
		ProbeDuration:    o.Duration,
	}
	if !probed || !o.Known {
		ns.Reason = unknownReason(o, probed)
		if probed {
			ns.ProbeError = probeErrorText(o)
		}
		for _, want := range n.Components {
			ns.Components = append(ns.Components, ComponentStatus{
				Name: want.Name, DesiredVersion: want.Version,
				Sync: SyncUnknown, Health: HealthUnknown, Reason: ns.Reason,
			})
		}
		return ns
	}
	ns.Reachable = true
	ns.ObservedGeneration = d.Generation
	ns.Facts = FactsOf(o.OS)
	actions := make(map[string]Action, len(np.Actions))
	for _, a := range np.Actions {
		actions[a.Component] = a
	}
	var problems []string
	for _, want := range n.Components {
		oc := o.Components[want.Name]
		cs := ComponentStatus{Name: want.Name, DesiredVersion: want.Version, ObservedVersion: observedVersion(oc), Sync: Synced}
		cs.Health, cs.Reason = ComponentHealth(want, oc)
		cs.Receipt, cs.Active, cs.Unit = observedDetail(oc, want.Unit != nil)
		cs.Leader = oc != nil && oc.Leader.OK
		if a, ok := actions[want.Name]; ok {
			if a.Kind != ActionRestart {
				cs.Sync = OutOfSync
			}
			cs.Reason = pendingText(a)
		}
		if cs.Sync != Synced || cs.Health != Healthy {
			if cs.Reason == "" {
				cs.Reason = string(cs.Health)
			}
			problems = append(problems, want.Name+": "+cs.Reason)
		}
		ns.Components = append(ns.Components, cs)
	}
	for _, a := range np.Actions {
		if a.Kind != ActionRemove {
			continue
		}
		oc := o.Components[a.Component]
		cs := ComponentStatus{
			Name: a.Component, ObservedVersion: a.From, Sync: OutOfSync,
			Health: unwantedHealth(oc), Reason: pendingText(a),
		}
		cs.Receipt, cs.Active, cs.Unit = observedDetail(oc, oc != nil && oc.Unit.Exists)
		problems = append(problems, a.Component+": "+cs.Reason)
		ns.Components = append(ns.Components, cs)
	}
	ns.Converged = len(problems) == 0
	if len(problems) > maxReasons {
		problems = append(problems[:maxReasons], fmt.Sprintf("and %d more", len(problems)-maxReasons))
	}
	ns.Reason = strings.Join(problems, "; ")
	if ns.Paused && !ns.Converged {
		ns.Reason = np.Reason + "; " + ns.Reason
	}
	return ns
}

// ComponentHealth maps what the probe saw of a component the node should
// have to the health axis, with a short reason when not Healthy: no
// receipt is Missing, a starting unit Progressing, a stopped or crashing
// unit or a failing check Degraded.
func ComponentHealth(want *DesiredComponent, oc *probes.Component) (Health, string) {
	if oc == nil || oc.Receipt == nil {
		return Missing, "not installed"
	}
	if want.Unit != nil {
		if !oc.Unit.Exists {
			return Degraded, "unit file missing"
		}
		if h, why := unitHealth(oc.Unit); h != Healthy {
			return h, why
		}
	}
	if want.Health != nil && oc.Health.Checked && !oc.Health.OK {
		if oc.Health.Message == "" {
			return Degraded, "health check failed"
		}
		return Degraded, "health check failed: " + oc.Health.Message
	}
	return Healthy, ""
}

// unwantedHealth is the health of a component the node should not have;
// its health check is not run, so only the unit says anything.
func unwantedHealth(oc *probes.Component) Health {
	if oc == nil || !oc.Unit.Exists {
		return Healthy
	}
	h, _ := unitHealth(oc.Unit)
	return h
}

// unitHealth is the one reading of a systemd unit's state, for status,
// diff and rollout alike (docs/ARCHITECTURE.md, "One status model"):
//   - active, and reloading (it re-reads its configuration while it
//     serves), are Healthy;
//   - activating is Progressing, on its way up;
//   - activating (auto-restart) is Degraded: the unit crashed and systemd
//     waits to start it again, so it serves nothing and may be looping;
//   - anything else (inactive, failed, deactivating, unknown) is Degraded.
func unitHealth(u probes.UnitState) (Health, string) {
	switch {
	case u.ActiveState == "active" || u.ActiveState == "reloading":
		return Healthy, ""
	case u.ActiveState == "activating" && u.SubState == "auto-restart":
		return Degraded, "unit restarting after a failure"
	case u.ActiveState == "activating":
		return Progressing, "unit activating"
	default:
		return Degraded, unitStateText(u)
	}
}

// unitStateText is e.g. "unit inactive (dead)" or "unit failed".
func unitStateText(u probes.UnitState) string {
	state := u.ActiveState
	if state == "" {
		state = "inactive"
	}
	if u.SubState != "" && u.SubState != state {
		return fmt.Sprintf("unit %s (%s)", state, u.SubState)
	}
	return "unit " + state
}

// observedVersion is what the node has: the receipt's version, or the
// active link's when there is no receipt.
func observedVersion(oc *probes.Component) string {
	switch {
	case oc == nil:
		return ""
	case oc.Receipt != nil:
		return oc.Receipt.Version
	default:
		return oc.Active
	}
}

// pendingText is a pending action as a status reason, e.g.
// "upgrade 1.8.2 -> 1.9.1 pending".
func pendingText(a Action) string {
	s := string(a.Kind)
	if v := actionVersions(a); v != "" {
		s += " " + v
	}
	if a.Membership != "" {
		s += " (" + a.Membership + ")"
	}
	s += " pending"
	if a.Reason != "" && a.Reason != "version changed in manifest" && a.Reason != "not installed" {
		s += " (" + a.Reason + ")"
	}
	return s
}

// FactsOf is the status form of a probe's OS facts.
func FactsOf(os probes.OS) *NodeFacts {
	return &NodeFacts{OSID: os.ID, OSVersion: os.VersionID, Arch: os.Arch, Hostname: os.Hostname, FreeBytes: os.FreeBytes}
}

// probeErrorText is why a probe learnt nothing, e.g. "unreachable: dial
// tcp 127.0.2.3:22: i/o timeout".
func probeErrorText(o probes.Observed) string {
	switch {
	case o.Reason != "" && o.Error != "":
		return o.Reason + ": " + o.Error
	case o.Error != "":
		return o.Error
	default:
		return o.Reason
	}
}

// observedDetail is what a node has of a component for the status: its
// receipt (a copy), active version and, when it has a unit, the unit's
// state.
func observedDetail(oc *probes.Component, hasUnit bool) (*probes.Receipt, string, string) {
	if oc == nil {
		return nil, "", ""
	}
	var r *probes.Receipt
	if oc.Receipt != nil {
		c := *oc.Receipt
		c.Files = slices.Clone(c.Files)
		r = &c
	}
	unit := ""
	if hasUnit {
		if oc.Unit.Exists {
			unit = strings.TrimPrefix(unitStateText(oc.Unit), "unit ")
		} else {
			unit = "no unit file"
		}
	}
	return r, oc.Active, unit
}

// StatusOf is the status of every node of d, in manifest order, as the
// observations in obs show it, with the plan Diff makes of them: what the
// daemon would report after probing those nodes. A node with no
// observation is "not probed yet".
func StatusOf(d *Desired, obs map[string]probes.Observed) []NodeStatus {
	return NodeStatuses(d, obs, Diff(d, obs))
}
