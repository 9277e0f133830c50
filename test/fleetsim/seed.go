package fleetsim

import (
	"encoding/json"
	"path"
	"strings"
	"time"

	"github.com/drover-project/drover/probes"
	"github.com/drover-project/drover/reconciler/plan"
)

// Converge makes the model what drover leaves on a node once it has
// applied d.Nodes' entry for this node: every component unpacked and
// active, its rendered files and unit in place, the unit running and a
// receipt as the executor writes it. A fleet seeded this way starts
// converged, so a scale run measures watching, not installing.
func Converge(m *Model, d *plan.Desired, node *plan.DesiredNode, unitDir string) error {
	if unitDir == "" {
		unitDir = probes.DefaultUnitDir
	}
	for _, c := range node.Components {
		r := probes.Receipt{
			Component: c.Name, Version: c.Version, ArtifactSHA256: strings.ToLower(c.ArtifactSHA256),
			ConfigHash: c.ConfigHash, UnitHash: c.UnitHash, Generation: d.Generation, Time: time.Now().UTC(),
		}
		if r.UnitHash == "" && c.Unit != nil {
			r.UnitHash = sha256Hex(c.Unit)
		}
		for _, f := range c.Files {
			r.Files = append(r.Files, f.Path)
			m.Files[f.Path] = File{Mode: uint32(f.Mode) & 0o7777, SHA256: f.Digest()} // ParseMode keeps the raw octal bits
		}
		data, err := json.Marshal(r)
		if err != nil {
			return err
		}
		m.Receipts[c.Name] = append(data, '\n')
		m.Active[c.Name] = c.Version
		if m.Packages[c.Name] == nil {
			m.Packages[c.Name] = map[string]bool{}
		}
		m.Packages[c.Name][c.Version] = true
		if c.Unit != nil {
			unit := plan.UnitName(c.Name)
			m.Files[path.Join(unitDir, unit)] = File{Mode: 0o644, SHA256: sha256Hex(c.Unit)}
			m.Units[unit] = Unit{Active: "active", Sub: "running", Enabled: true}
		}
		delete(m.HealthFail, c.Name)
	}
	return nil
}
