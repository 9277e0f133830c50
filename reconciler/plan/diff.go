package plan

import (
	"fmt"
	"path"
	"reflect"
	"slices"
	"strings"

	"github.com/drover-project/drover/manifests"
	"github.com/drover-project/drover/probes"
)

// Diff compares what every node should have with what its probe saw and
// returns the actions that would converge it. It is pure: the same
// inputs always give the same plan.
//
// Per component the first matching rule decides:
//   - nothing of it on the node: install;
//   - another version received or active: upgrade (From is that version);
//   - receipt, active link or complete package dir missing: install
//     again (repair; every step of an install is idempotent);
//   - artifact sha256 changed: upgrade in place (From == To);
//   - rendered files or unit differ, in the manifest or on disk: reconfigure;
//   - synced but the unit is not running, disabled, or failing its health
//     check: restart;
//   - otherwise nothing.
//
// An install or remove that grows or shrinks a quorum group is marked as
// the join or leave it is (MembershipOf), from every node's observation.
//
// Components the node has a receipt for but should not have (absent,
// placed elsewhere now, or unknown to the manifest) are removed, after
// every other action and in reverse dependency order.
//
// A node without a Known observation gets no actions at all: drover never
// acts on a guess. Paused nodes (and every node of a paused cluster) are
// planned and reported with Paused set; the rollout never releases them.
//
// Disruptive marks actions that stop or restart a unit that exists on the
// node now: the node is unavailable for that component until healthy.
// A first install has nothing to lose and is not disruptive, nor is any
// change to a component without a service.
func Diff(d *Desired, obs map[string]probes.Observed) Plan {
	p := Plan{Generation: d.Generation, Paused: d.Paused, Nodes: make([]NodePlan, 0, len(d.Nodes))}
	for _, n := range d.Nodes {
		p.Nodes = append(p.Nodes, diffNode(d, n, obs))
	}
	markMembership(d, obs, &p)
	return p
}

func diffNode(d *Desired, n *DesiredNode, obs map[string]probes.Observed) NodePlan {
	np := NodePlan{Node: n.Name, Generation: d.Generation, Address: n.Target.Address, Actions: []Action{}}
	switch {
	case d.Paused:
		np.Paused, np.Reason = true, "cluster paused"
	case n.Paused:
		np.Paused, np.Reason = true, "node paused"
	}
	o, ok := obs[n.Name]
	if !ok || !o.Known {
		np.Reason = unknownReason(o, ok)
		return np
	}
	np.Known = true
	for _, want := range n.Components {
		if a, ok := diffComponent(n.Name, want, o.Components[want.Name]); ok {
			a.Reason += wontFit(a, want, o)
			np.Actions = append(np.Actions, a)
		}
	}
	np.Actions = append(np.Actions, removals(d, n, o)...)
	return np
}

// wontFit is a note for an action that uploads an artifact larger than
// the free space the probe last saw in the node's cache, or "".
func wontFit(a Action, want *DesiredComponent, o probes.Observed) string {
	if a.Kind != ActionInstall && a.Kind != ActionUpgrade || want.ArtifactPath == "" || want.ArtifactSize == 0 || o.OS.FreeBytes < 0 {
		return ""
	}
	if oc := o.Components[want.Name]; oc != nil && oc.Packages[want.Version] && (oc.Receipt == nil || oc.Receipt.ArtifactSHA256 == want.ArtifactSHA256) {
		return "" // unpacked already: nothing to upload
	}
	if want.ArtifactSize <= o.OS.FreeBytes {
		return ""
	}
	return fmt.Sprintf("; the artifact will not fit (%s free in the cache, artifact %s)", mib(o.OS.FreeBytes), mib(want.ArtifactSize))
}

// mib is a byte count for people: "175 MiB", or KiB below 1 MiB.
func mib(n int64) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d KiB", (n+1023)>>10)
}

// unknownReason is why a node could not be planned, e.g.
// "unreachable (dial tcp 10.0.0.1:22: connection refused)".
func unknownReason(o probes.Observed, probed bool) string {
	if !probed {
		return "not probed yet"
	}
	r := o.Reason
	if r == "" {
		r = "unknown"
	}
	if o.Error != "" {
		r += " (" + o.Error + ")"
	}
	return r
}

func diffComponent(node string, want *DesiredComponent, oc *probes.Component) (Action, bool) {
	a := Action{Node: node, Component: want.Name, To: want.Version}
	set := func(kind ActionKind, from, reason string) (Action, bool) {
		a.Kind, a.From, a.Reason = kind, from, reason
		a.Disruptive = unitRunning(oc)
		a.Downgrade = kind == ActionUpgrade && IsDowngrade(from, a.To)
		return a, true
	}
	if oc == nil || (oc.Receipt == nil && oc.Active == "") {
		return set(ActionInstall, "", "not installed")
	}
	rc := oc.Receipt
	switch {
	case rc != nil && rc.Version != want.Version:
		return set(ActionUpgrade, rc.Version, "version changed in manifest")
	case rc == nil && oc.Active != want.Version:
		return set(ActionUpgrade, oc.Active, "receipt missing, "+oc.Active+" active")
	case rc == nil:
		return set(ActionInstall, "", "receipt missing (interrupted install?)")
	case oc.Active == "":
		return set(ActionInstall, rc.Version, "active link missing")
	case oc.Active != want.Version:
		return set(ActionUpgrade, oc.Active, "active link points at "+oc.Active)
	}
	if complete, found := oc.Packages[want.Version]; !complete {
		reason := "package dir missing"
		if found {
			reason = "package dir incomplete"
		}
		return set(ActionInstall, rc.Version, reason)
	}
	if rc.ArtifactSHA256 != want.ArtifactSHA256 || rc.ArtifactStrip != want.ArtifactStrip {
		return set(ActionUpgrade, rc.Version, "artifact changed in manifest")
	}
	if EnvMigrates(want, oc) {
		a, _ := set(ActionReconfigure, rc.Version, "environment moves out of the unit (no restart)")
		a.Disruptive = false
		return a, true
	}
	if reason := configDrift(want, oc); reason != "" {
		a, _ := set(ActionReconfigure, rc.Version, reason)
		if want.Unit != nil {
			a.Effect = changeEffect(want, oc)
			a.Disruptive = a.Disruptive && a.Effect == manifests.OnChangeRestart
		}
		return a, true
	}
	if !reflect.DeepEqual(rc.Hooks, KeptHooks(want)) {
		// Only the receipt changes: a later remove runs the new hooks.
		a, _ := set(ActionReconfigure, rc.Version, "hooks changed in manifest")
		a.Disruptive = false
		if want.Unit != nil {
			a.Effect = manifests.OnChangeNone
		}
		return a, true
	}
	if want.Unit == nil {
		return a, false
	}
	if h, _ := unitHealth(oc.Unit); !oc.Unit.Enabled && h == Healthy {
		return set(ActionRestart, rc.Version, "unit disabled")
	}
	if h, reason := ComponentHealth(want, oc); h == Degraded {
		return set(ActionRestart, rc.Version, reason)
	}
	return a, false
}

// EnvMigrates reports whether the component on the node is the one want
// describes with only the environment still inline in the unit: receipt
// and disk at EnvMigration's hashes (the environment file not written
// yet).
func EnvMigrates(want *DesiredComponent, oc *probes.Component) bool {
	m := want.EnvMigration
	if m == nil || oc == nil || oc.Receipt == nil {
		return false
	}
	rc := oc.Receipt
	return rc.UnitHash == m.UnitHash && rc.ConfigHash == m.ConfigHash &&
		oc.Unit.Exists && oc.Unit.Hash == m.UnitHash && oc.FilesHash == m.ConfigHash
}

// configDrift says why the rendered files or the unit on the node are not
// what the manifest wants, or "" when they are. A change in the manifest
// is named before drift on disk: both would be fixed by the same action.
func configDrift(want *DesiredComponent, oc *probes.Component) string {
	rc := oc.Receipt
	if rc.ConfigHash != want.ConfigHash {
		return "config changed in manifest"
	}
	if len(want.Files) > 0 && oc.FilesHash != want.ConfigHash {
		return fileDrift(want.Files, oc.Files)
	}
	if want.Unit == nil {
		if rc.UnitHash != "" || oc.Unit.Exists {
			return "service removed from manifest"
		}
		return ""
	}
	switch {
	case rc.UnitHash != want.UnitHash:
		return "unit changed in manifest"
	case !oc.Unit.Exists:
		return "unit file missing"
	case oc.Unit.Hash != want.UnitHash:
		return "unit file changed on disk"
	}
	return ""
}

// fileDrift names the files whose content or mode on disk is not the
// rendered one, e.g. "zoo.cfg changed on disk".
// changeEffect is what a reconfigure of a service needs of it: the
// strongest onChange among the files that differ on disk from the
// manifest (restart > reload > none). A changed unit, a file the
// manifest dropped, or a difference the files on disk do not show (the
// receipt alone differs: an earlier change cut off before its restart)
// need a restart.
func changeEffect(want *DesiredComponent, oc *probes.Component) string {
	rc := oc.Receipt
	if rc.UnitHash != want.UnitHash || !oc.Unit.Exists || oc.Unit.Hash != want.UnitHash {
		return manifests.OnChangeRestart
	}
	wanted := make(map[string]bool, len(want.Files))
	for _, f := range want.Files {
		wanted[f.Path] = true
	}
	for _, p := range rc.Files {
		if !wanted[p] {
			return manifests.OnChangeRestart
		}
	}
	onDisk := make(map[string]manifests.FileDigest, len(oc.Files))
	for _, f := range oc.Files {
		onDisk[f.Path] = f
	}
	rank := map[string]int{manifests.OnChangeNone: 1, manifests.OnChangeReload: 2, manifests.OnChangeRestart: 3}
	effect := ""
	for _, f := range want.Files {
		got, ok := onDisk[f.Path]
		if ok && got.SHA256 == f.Digest() && got.Mode&manifests.ModeBits == f.Mode&manifests.ModeBits {
			continue
		}
		policy := f.OnChange
		if policy == "" || (policy == manifests.OnChangeReload && !want.Reload) {
			policy = manifests.OnChangeRestart
		}
		if rank[policy] > rank[effect] {
			effect = policy
		}
	}
	if effect == "" {
		return manifests.OnChangeRestart
	}
	return effect
}

func fileDrift(files []manifests.RenderedFile, seen []manifests.FileDigest) string {
	onDisk := make(map[string]manifests.FileDigest, len(seen))
	for _, f := range seen {
		onDisk[f.Path] = f
	}
	var missing, changed []string
	for _, f := range files {
		got, ok := onDisk[f.Path]
		switch {
		case !ok:
			missing = append(missing, path.Base(f.Path))
		case got.SHA256 != f.Digest():
			changed = append(changed, path.Base(f.Path))
		case got.Mode&manifests.ModeBits != f.Mode&manifests.ModeBits:
			changed = append(changed, path.Base(f.Path)+" mode")
		}
	}
	var parts []string
	if len(changed) > 0 {
		parts = append(parts, strings.Join(changed, ", ")+" changed on disk")
	}
	if len(missing) > 0 {
		parts = append(parts, strings.Join(missing, ", ")+" missing on disk")
	}
	if len(parts) == 0 {
		return "files changed on disk"
	}
	return strings.Join(parts, "; ")
}

// removals lists components on the node that it should not have, in
// reverse dependency order: components unknown to the manifest first
// (by name), then known ones last-in-Order first.
func removals(d *Desired, n *DesiredNode, o probes.Observed) []Action {
	var unknown, known []string
	for name, oc := range o.Components {
		if n.Component(name) != nil || oc == nil || (oc.Receipt == nil && oc.Active == "" && !oc.Unit.Exists) {
			continue
		}
		if _, ok := d.Components[name]; ok {
			known = append(known, name)
		} else {
			unknown = append(unknown, name)
		}
	}
	slices.Sort(unknown)
	pos := func(name string) int { return slices.Index(d.Order, name) }
	slices.SortFunc(known, func(a, b string) int { return pos(b) - pos(a) })

	out := make([]Action, 0, len(unknown)+len(known))
	for _, name := range append(unknown, known...) {
		oc := o.Components[name]
		from := oc.Active
		if oc.Receipt != nil {
			from = oc.Receipt.Version
		}
		out = append(out, Action{
			Node: n.Name, Component: name, Kind: ActionRemove, From: from,
			Reason:     removalReason(d.Components[name], n),
			Disruptive: unitRunning(oc),
		})
	}
	return out
}

func removalReason(info *DesiredComponentInfo, n *DesiredNode) string {
	switch {
	case info == nil:
		return "not in the manifest"
	case !info.Present:
		return "state: absent in manifest"
	case len(info.Roles) > 0:
		return fmt.Sprintf("node no longer has role %s", strings.Join(info.Roles, " or "))
	default:
		return "node no longer matches the component's selector"
	}
}

// unitRunning reports whether the component has a unit that is up or on
// its way up: an action that stops it takes something away. A unit
// waiting to be restarted after a crash is down already.
func unitRunning(oc *probes.Component) bool {
	if oc == nil || !oc.Unit.Exists {
		return false
	}
	h, _ := unitHealth(oc.Unit)
	return h == Healthy || h == Progressing
}

// ObservationValid reports whether obs, taken for the probe request
// taken, holds everything a plan for the request want rests on, so that
// it may be planned from without probing again. Per component of want:
//   - where the node runs another version than want's (by its receipt),
//     the plan is an upgrade whatever the files say, and the upgrade
//     writes every file: nothing more is needed;
//   - otherwise the observation must have asked for the same version,
//     unit and health and leader checks, and hashed every file want
//     names: a digest missing because it was never asked for would read
//     as a file missing on disk, and restart a healthy member for
//     nothing.
//
// Both requests must name the same install root and unit dir. It is pure.
func ObservationValid(want, taken probes.Request, obs probes.Observed) bool {
	if !obs.Known || want.InstallRoot != taken.InstallRoot || want.UnitDir != taken.UnitDir {
		return false
	}
	asked := make(map[string]probes.Want, len(taken.Components))
	for _, w := range taken.Components {
		asked[w.Name] = w
	}
	for _, w := range want.Components {
		if oc := obs.Components[w.Name]; oc != nil && oc.Receipt != nil && oc.Receipt.Version != w.Version {
			continue
		}
		t, ok := asked[w.Name]
		if !ok || !sameWant(w, t) {
			return false
		}
	}
	return true
}

// sameWant reports whether a probe asked for t saw all that w asks for:
// the same version, service, checks, and every file of w.
func sameWant(w, t probes.Want) bool {
	if w.Version != t.Version || w.Service != t.Service || !reflect.DeepEqual(w.Health, t.Health) || !reflect.DeepEqual(w.Leader, t.Leader) {
		return false
	}
	for _, f := range w.Files {
		if !slices.Contains(t.Files, f) {
			return false
		}
	}
	return true
}
