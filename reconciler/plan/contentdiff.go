package plan

import (
	"fmt"
	"path"
	"strings"

	udiff "github.com/aymanbagabas/go-udiff"
	"golang.org/x/mod/semver"

	"github.com/drover-project/drover/manifests"
	"github.com/drover-project/drover/probes"
)

// FileChange is one rendered file or unit an action would write with
// other content or mode than the node has: what `plan` shows line by line.
type FileChange struct {
	Path string `json:"path"`
	// Change is create (not on the node), update or delete (a unit the
	// manifest no longer has).
	Change string `json:"change"`
	// ModeFrom and ModeTo are set when the mode changes ("0644").
	ModeFrom string `json:"modeFrom,omitempty"`
	ModeTo   string `json:"modeTo,omitempty"`
	// Sensitive files show no content: Diff is empty and Note says so.
	Sensitive bool `json:"sensitive,omitempty"`
	// Diff is a unified diff from the node's content to the rendered one.
	Diff string `json:"diff,omitempty"`
	// Note is said instead of a diff: sensitive, or why the node's
	// content is not known.
	Note string `json:"note,omitempty"`
}

// File change kinds.
const (
	ChangeCreate = "create"
	ChangeUpdate = "update"
	ChangeDelete = "delete"
)

// NoteSensitive is all a plan says of a sensitive file's change.
const NoteSensitive = "(sensitive content changed)"

// ContentRequest names, per node, the files whose current bytes a diff
// needs: those present on the node with other content than rendered.
// Sensitive files are never asked for. The I/O edge reads them (one
// round trip per node: ReadNodeFiles) and gives them to AttachDiffs.
func ContentRequest(d *Desired, p Plan, obs map[string]probes.Observed, unitDir string) map[string][]string {
	out := map[string][]string{}
	forEachChange(d, p, obs, unitDir, func(node string, c pendingChange) {
		if c.needsCurrent {
			out[node] = append(out[node], c.path)
		}
	})
	return out
}

// CurrentFiles is what ReadNodeFiles found: node, then path, to content.
// A path asked for and absent could not be read.
type CurrentFiles map[string]map[string][]byte

// AttachDiffs fills every node's Changes: for each rendered file and
// unit the action would write differently, a unified diff from current
// (the node's bytes, for files ContentRequest named) to the rendered
// content. It is pure: the same plan, observations and bytes give the
// same diffs.
func AttachDiffs(d *Desired, p *Plan, obs map[string]probes.Observed, current CurrentFiles, unitDir string) {
	changes := map[string]map[string][]FileChange{} // node, component
	forEachChange(d, *p, obs, unitDir, func(node string, c pendingChange) {
		if changes[node] == nil {
			changes[node] = map[string][]FileChange{}
		}
		changes[node][c.component] = append(changes[node][c.component], c.render(current[node]))
	})
	for i := range p.Nodes {
		p.Nodes[i].Changes = changes[p.Nodes[i].Node]
	}
}

// pendingChange is a file an action would write, before its diff.
type pendingChange struct {
	component     string
	path          string
	change        string
	modeFrom      string
	modeTo        string
	sensitive     bool
	want          []byte
	needsCurrent  bool
	contentEquals bool // only the mode differs
}

func (c pendingChange) render(current map[string][]byte) FileChange {
	fc := FileChange{Path: c.path, Change: c.change, ModeFrom: c.modeFrom, ModeTo: c.modeTo, Sensitive: c.sensitive}
	switch {
	case c.contentEquals:
	case c.sensitive:
		fc.Note = NoteSensitive
	case c.change == ChangeCreate:
		fc.Diff = unifiedDiff(c.path, nil, c.want)
	case c.change == ChangeDelete:
		if cur, ok := current[c.path]; ok {
			fc.Diff = unifiedDiff(c.path, cur, nil)
		}
	default:
		cur, ok := current[c.path]
		if !ok {
			fc.Note = "(content changed; the node's copy was not read)"
			break
		}
		fc.Diff = unifiedDiff(c.path, cur, c.want)
	}
	return fc
}

// forEachChange calls fn for every file and unit an action of p would
// write with other content or mode than the node has. Version upgrades
// are left out: they write a new version's directory, and the plan shows
// the version change itself.
func forEachChange(d *Desired, p Plan, obs map[string]probes.Observed, unitDir string, fn func(node string, c pendingChange)) {
	if unitDir == "" {
		unitDir = probes.DefaultUnitDir
	}
	for _, np := range p.Nodes {
		dn := d.Node(np.Node)
		o, ok := obs[np.Node]
		if dn == nil || !ok || !o.Known {
			continue
		}
		for _, a := range np.Actions {
			if a.Kind == ActionRemove || a.Kind == ActionRestart || (a.Kind == ActionUpgrade && a.From != a.To) {
				continue
			}
			want := dn.Component(a.Component)
			if want == nil {
				continue
			}
			oc := o.Components[a.Component]
			for _, c := range fileChanges(want, oc) {
				fn(np.Node, c)
			}
			if c, ok := unitChange(want, oc, unitDir); ok {
				fn(np.Node, c)
			}
		}
	}
}

func fileChanges(want *DesiredComponent, oc *probes.Component) []pendingChange {
	onDisk := map[string]manifests.FileDigest{}
	if oc != nil {
		for _, f := range oc.Files {
			onDisk[f.Path] = f
		}
	}
	var out []pendingChange
	for _, f := range want.Files {
		c := pendingChange{component: want.Name, path: f.Path, sensitive: f.Sensitive, want: f.Content}
		got, ok := onDisk[f.Path]
		switch {
		case !ok:
			c.change = ChangeCreate
		case got.SHA256 != f.Digest():
			c.change, c.needsCurrent = ChangeUpdate, !f.Sensitive
		case got.Mode&manifests.ModeBits != f.Mode&manifests.ModeBits:
			c.change, c.contentEquals = ChangeUpdate, true
		default:
			continue
		}
		if ok && got.Mode&manifests.ModeBits != f.Mode&manifests.ModeBits {
			c.modeFrom, c.modeTo = fmt.Sprintf("%04o", got.Mode&manifests.ModeBits), fmt.Sprintf("%04o", f.Mode&manifests.ModeBits)
		}
		out = append(out, c)
	}
	return out
}

func unitChange(want *DesiredComponent, oc *probes.Component, unitDir string) (pendingChange, bool) {
	c := pendingChange{component: want.Name, path: path.Join(unitDir, UnitName(want.Name)), want: want.Unit}
	exists := oc != nil && oc.Unit.Exists
	switch {
	case want.Unit == nil && exists:
		c.change, c.needsCurrent = ChangeDelete, true
	case want.Unit == nil:
		return c, false
	case !exists:
		c.change = ChangeCreate
	case oc.Unit.Hash != want.UnitHash:
		c.change, c.needsCurrent = ChangeUpdate, true
	default:
		return c, false
	}
	return c, true
}

// MaxDiffBytes bounds what is diffed: a larger file is said to change,
// not shown.
const MaxDiffBytes = 256 << 10

// unifiedDiff is the diff of one file from before to after, labelled as
// diff -u labels a file on the node against the manifest's rendering.
func unifiedDiff(name string, before, after []byte) string {
	if len(before) > MaxDiffBytes || len(after) > MaxDiffBytes {
		return fmt.Sprintf("(more than %d KiB: not shown)\n", MaxDiffBytes>>10)
	}
	if isBinary(before) || isBinary(after) {
		return "(binary content changed)\n"
	}
	from, to := name+" (on the node)", name+" (from the manifest)"
	if before == nil {
		from = "/dev/null"
	}
	if after == nil {
		to = "/dev/null"
	}
	return udiff.Unified(from, to, string(before), string(after))
}

func isBinary(b []byte) bool {
	return strings.ContainsRune(string(b[:min(len(b), 8000)]), 0)
}

// IsDowngrade reports whether to is an older version than from, when both
// read as semantic versions (a leading "v" optional; "1.2" is 1.2.0).
// Versions that do not parse are never called a downgrade: drover does
// not guess an order for "2024-05" against "2024-06b".
func IsDowngrade(from, to string) bool {
	f, t := canonicalSemver(from), canonicalSemver(to)
	if f == "" || t == "" {
		return false
	}
	return semver.Compare(t, f) < 0
}

func canonicalSemver(v string) string {
	if !strings.HasPrefix(v, "v") {
		v = "v" + v
	}
	if !semver.IsValid(v) {
		return ""
	}
	return v
}
