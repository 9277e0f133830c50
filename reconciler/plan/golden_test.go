package plan

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/drover-project/drover/manifests"
	"github.com/drover-project/drover/probes"
	"sigs.k8s.io/yaml"
)

var updateGolden = flag.Bool("update", false, "rewrite the expected sections of testdata/*.plantest")

// Each testdata/*.plantest file is a manifest, then "---- observed" and
// the probe results in the compact form goldenComponent describes, then
// the expected output: "---- plan" (WritePlanText), "---- wave" (NextWave
// with nothing in flight) and "---- status" (NodeStatuses).
const (
	sepObserved = "---- observed\n"
	sepPlan     = "---- plan\n"
	sepWave     = "---- wave\n"
	sepStatus   = "---- status\n"
)

func TestGoldenPlans(t *testing.T) {
	files, err := filepath.Glob("testdata/*.plantest")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 8 {
		t.Fatalf("found %d plantest files, want at least 8", len(files))
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".plantest"), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			manifest, rest, ok := strings.Cut(string(data), sepObserved)
			if !ok {
				t.Fatalf("no %q line", strings.TrimSpace(sepObserved))
			}
			observedText, expected, ok := strings.Cut(rest, sepPlan)
			if !ok {
				t.Fatalf("no %q line", strings.TrimSpace(sepPlan))
			}
			got := goldenOutput(t, file, manifest, observedText)
			if *updateGolden {
				out := manifest + sepObserved + observedText + sepPlan + got
				if err := os.WriteFile(file, []byte(out), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if got != expected {
				t.Errorf("output differs (run with -update to accept):\n--- got\n%s\n--- want\n%s", got, expected)
			}
		})
	}
}

func goldenOutput(t *testing.T, file, manifest, observedText string) string {
	t.Helper()
	l, err := manifests.LoadBytes(file, []byte(manifest))
	if err != nil {
		t.Fatalf("load manifest: %v", err)
	}
	d, err := Compile(l)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	obs, err := parseGoldenObserved(d, []byte(observedText))
	if err != nil {
		t.Fatalf("observed: %v", err)
	}
	plan := Diff(d, obs)
	var b bytes.Buffer
	if err := WritePlanText(&b, plan); err != nil {
		t.Fatal(err)
	}
	b.WriteString(sepWave)
	w := NextWave(d, plan, obs, RolloutState{})
	if w.Halted {
		fmt.Fprintf(&b, "halted: %s\n", w.HaltReason)
	}
	for _, a := range w.Actions {
		fmt.Fprintf(&b, "start %s: %s\n", a.Node, a.Describe())
	}
	for _, why := range w.Waiting {
		fmt.Fprintf(&b, "wait: %s\n", why)
	}
	b.WriteString(sepStatus)
	for _, ns := range NodeStatuses(d, obs, plan) {
		state := "converged"
		if !ns.Converged {
			state = "not converged: " + ns.Reason
		}
		fmt.Fprintf(&b, "%s: %s\n", ns.Name, state)
	}
	return b.String()
}

// goldenComponent is one component on one node, written either as a bare
// version ("node-exporter: 1.8.2", meaning installed at that version,
// running and healthy, with the files and unit the manifest gives for
// that version) or as an object whose fields spoil that picture.
type goldenComponent struct {
	Version string `json:"version"`
	// Receipt false: no receipt on the node.
	Receipt *bool `json:"receipt,omitempty"`
	// Active overrides what the active link points at ("" for none).
	Active *string `json:"active,omitempty"`
	// Package is "missing" or "incomplete" for the version's dir.
	Package string `json:"package,omitempty"`
	// Stale lists receipt fields recorded from an older manifest:
	// config, unit, artifact.
	Stale []string `json:"stale,omitempty"`
	// Drift lists what was edited on the node: file base names, "unit",
	// or "missing:NAME" / "missing:unit" for a deleted one.
	Drift []string `json:"drift,omitempty"`
	// Unit is the unit's ActiveState, "active" by default.
	Unit     string `json:"unit,omitempty"`
	Disabled bool   `json:"disabled,omitempty"`
	// Health is the message of a failing check.
	Health string `json:"health,omitempty"`
}

func (g *goldenComponent) UnmarshalJSON(b []byte) error {
	var v string
	if err := json.Unmarshal(b, &v); err == nil {
		*g = goldenComponent{Version: v}
		return nil
	}
	type plain goldenComponent
	return json.Unmarshal(b, (*plain)(g))
}

// parseGoldenObserved reads the observed section: node name to its
// components; the key "_unknown" ("REASON: ERROR") makes the node
// Unknown. Nodes not listed were probed and have nothing installed.
func parseGoldenObserved(d *Desired, text []byte) (map[string]probes.Observed, error) {
	var raw map[string]map[string]json.RawMessage
	if err := yaml.UnmarshalStrict(text, &raw); err != nil {
		return nil, err
	}
	obs := map[string]probes.Observed{}
	for _, n := range d.Nodes {
		obs[n.Name] = probes.Observed{Node: n.Name, Known: true, Components: map[string]*probes.Component{}}
	}
	for node, comps := range raw {
		dn := d.Node(node)
		if dn == nil {
			return nil, fmt.Errorf("node %s is not in the manifest", node)
		}
		o := obs[node]
		if msg, ok := comps["_unknown"]; ok {
			var s string
			if err := json.Unmarshal(msg, &s); err != nil {
				return nil, err
			}
			reason, detail, _ := strings.Cut(s, ": ")
			obs[node] = probes.Observed{Node: node, Reason: reason, Error: detail}
			continue
		}
		for name, rawComp := range comps {
			var g goldenComponent
			if err := json.Unmarshal(rawComp, &g); err != nil {
				return nil, fmt.Errorf("%s/%s: %w", node, name, err)
			}
			oc, err := g.observe(name, dn.Component(name))
			if err != nil {
				return nil, fmt.Errorf("%s/%s: %w", node, name, err)
			}
			o.Components[name] = oc
		}
	}
	return obs, nil
}

// observe builds the probe result g describes. want is nil for a
// component the node should not have.
func (g goldenComponent) observe(name string, want *DesiredComponent) (*probes.Component, error) {
	if g.Version == "" {
		return nil, fmt.Errorf("version is required")
	}
	current := want != nil && want.Version == g.Version
	var oc *probes.Component
	if current {
		oc = observedSynced(want)
	} else {
		// An older (or unwanted) version: nothing matches the manifest.
		oc = &probes.Component{
			Name:     name,
			Receipt:  &probes.Receipt{Component: name, Version: g.Version, ArtifactSHA256: "old", ConfigHash: "old", UnitHash: "old"},
			Active:   g.Version,
			Packages: map[string]bool{g.Version: true},
			Unit:     probes.UnitState{Exists: true, Hash: "old", ActiveState: "active", SubState: "running", Enabled: true},
		}
		if want != nil {
			oc.FilesHash = "old"
			oc.Health = probes.HealthResult{Checked: want.Health != nil, OK: true}
		}
	}
	if g.Receipt != nil && !*g.Receipt {
		oc.Receipt = nil
	}
	if g.Active != nil {
		oc.Active = *g.Active
	}
	switch g.Package {
	case "":
	case "missing":
		delete(oc.Packages, g.Version)
	case "incomplete":
		oc.Packages[g.Version] = false
	default:
		return nil, fmt.Errorf("package %q: want missing or incomplete", g.Package)
	}
	for _, s := range g.Stale {
		if oc.Receipt == nil {
			return nil, fmt.Errorf("stale %s without a receipt", s)
		}
		switch s {
		case "config":
			oc.Receipt.ConfigHash = "old"
		case "unit":
			oc.Receipt.UnitHash = "old"
		case "artifact":
			oc.Receipt.ArtifactSHA256 = "old"
		default:
			return nil, fmt.Errorf("stale %q: want config, unit or artifact", s)
		}
	}
	for _, what := range g.Drift {
		if err := applyDrift(oc, what); err != nil {
			return nil, err
		}
	}
	if g.Unit != "" {
		oc.Unit.ActiveState = g.Unit
		oc.Unit.SubState = map[string]string{"inactive": "dead", "failed": "failed", "activating": "start"}[g.Unit]
	}
	if g.Disabled {
		oc.Unit.Enabled = false
	}
	if g.Health != "" {
		oc.Health = probes.HealthResult{Checked: true, Message: g.Health}
	}
	return oc, nil
}

func applyDrift(oc *probes.Component, what string) error {
	missing := false
	if rest, ok := strings.CutPrefix(what, "missing:"); ok {
		what, missing = rest, true
	}
	if what == "unit" {
		if missing {
			oc.Unit = probes.UnitState{}
		} else {
			oc.Unit.Hash = "edited"
		}
		return nil
	}
	i := slices.IndexFunc(oc.Files, func(f manifests.FileDigest) bool { return filepath.Base(f.Path) == what })
	if i < 0 {
		return fmt.Errorf("drift %q: no such file", what)
	}
	if missing {
		oc.Files = slices.Delete(oc.Files, i, i+1)
	} else {
		oc.Files[i].SHA256 = "edited"
	}
	oc.FilesHash = manifests.ConfigHash(oc.Files)
	return nil
}

// observedSynced is what a probe finds on a node where want is fully
// installed, running and healthy.
func observedSynced(want *DesiredComponent) *probes.Component {
	oc := &probes.Component{
		Name: want.Name,
		Receipt: &probes.Receipt{
			Component: want.Name, Version: want.Version, ArtifactSHA256: want.ArtifactSHA256,
			ConfigHash: want.ConfigHash, UnitHash: want.UnitHash,
		},
		Active:    want.Version,
		Packages:  map[string]bool{want.Version: true},
		Files:     manifests.Digests(want.Files),
		FilesHash: want.ConfigHash,
	}
	if want.Unit != nil {
		oc.Unit = probes.UnitState{Exists: true, Hash: want.UnitHash, ActiveState: "active", SubState: "running", Enabled: true}
	}
	if want.Health != nil {
		oc.Health = probes.HealthResult{Checked: true, OK: true}
	}
	return oc
}
