// Package fleetsim simulates a fleet of nodes for scale tests of drover's
// client side: thousands of SSH endpoints in one process, each on its own
// loopback address with its own host key, each backed by a small model of
// a node (components, receipts, files, units, health) instead of a shell.
// A node answers drover's real probe protocol (the script probes.Script
// builds, framed by inventory.Pool.Query's resident shell) with the bytes
// a real node's shell would print, and applies drover's action steps to
// its model. It is a tool to measure what the daemon costs at 10,000
// nodes; real OpenSSH nodes stay the truth for behaviour.
package fleetsim

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// File is one regular file on a simulated node: its mode and sha256.
type File struct {
	Mode   uint32 // permission bits, as stat -c %a prints them in octal
	SHA256 string
}

// Unit is what systemd says of one unit on a simulated node.
type Unit struct {
	Active, Sub string // ActiveState, SubState
	Enabled     bool
}

// Model is the state of one simulated node. The zero value is a node with
// nothing installed; use NewModel for one with OS facts.
type Model struct {
	Hostname  string
	OSID      string
	OSVersion string
	Arch      string
	FreeBytes int64 // -1: df failed
	// Files are the regular files, by absolute path (rendered files and
	// unit files alike).
	Files map[string]File
	// Receipts are the raw receipt files, by component.
	Receipts map[string][]byte
	// Active is where <root>/active/<component> points (a version).
	Active map[string]string
	// Packages are the version dirs of each component and whether each
	// is complete.
	Packages map[string]map[string]bool
	// Units are the units systemd knows, by unit name.
	Units map[string]Unit
	// HealthFail is the exit code of a component's exec health check
	// when it fails; absent means it passes.
	HealthFail map[string]int
	// Leader is the component whose exec leader check passes here.
	Leader map[string]bool
}

// NewModel is an empty Debian node.
func NewModel(hostname string) *Model {
	return &Model{
		Hostname: hostname, OSID: "debian", OSVersion: "12", Arch: "x86_64", FreeBytes: 10 << 30,
		Files: map[string]File{}, Receipts: map[string][]byte{}, Active: map[string]string{},
		Packages: map[string]map[string]bool{}, Units: map[string]Unit{}, HealthFail: map[string]int{}, Leader: map[string]bool{},
	}
}

// Clone is a deep copy.
func (m *Model) Clone() *Model {
	c := *m
	c.Files = maps.Clone(m.Files)
	c.Receipts = map[string][]byte{}
	for k, v := range m.Receipts {
		c.Receipts[k] = slices.Clone(v)
	}
	c.Active = maps.Clone(m.Active)
	c.Packages = map[string]map[string]bool{}
	for k, v := range m.Packages {
		c.Packages[k] = maps.Clone(v)
	}
	c.Units = maps.Clone(m.Units)
	c.HealthFail = maps.Clone(m.HealthFail)
	c.Leader = maps.Clone(m.Leader)
	return &c
}

// unitFor is systemctl show's view of a unit: a unit systemd does not
// know is inactive/dead and not enabled.
func (m *Model) unitFor(name string) Unit {
	if u, ok := m.Units[name]; ok {
		return u
	}
	return Unit{Active: "inactive", Sub: "dead"}
}

// Node is one simulated node: its model behind a lock.
type Node struct {
	Name    string
	Address string // loopback address; the node listens on port 22
	mu      sync.Mutex
	model   *Model
	probes  int64 // probe scripts answered
	steps   int64 // action steps applied
	fleet   *Fleet
}

// Do runs f on the node's model under its lock.
func (n *Node) Do(f func(m *Model)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	f(n.model)
}

// Snapshot is a copy of the node's model.
func (n *Node) Snapshot() *Model {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.model.Clone()
}

// Counts are how many probes and steps the node answered.
func (n *Node) Counts() (probes, steps int64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.probes, n.steps
}

// token is what the probe's dp_tok lets through, else "-".
func token(v string) string {
	if v == "" || v[0] == '.' {
		return "-"
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("._+~-", c) >= 0) {
			return "-"
		}
	}
	return v
}

// Answer is what the probe script for req prints on a node in state m,
// byte for byte what dp_o holds at the end of the script on a real node.
func (m *Model) Answer(req ProbeRequest) []byte {
	var b bytes.Buffer
	p := func(words ...string) {
		b.WriteString(strings.Join(words, " "))
		b.WriteByte('\n')
	}
	p("drover-probe", "2")
	free := "-"
	if m.FreeBytes >= 0 {
		// df -Pk counts in KiB; the script multiplies back.
		free = strconv.FormatInt(m.FreeBytes/1024*1024, 10)
	}
	p("os", "id="+token(m.OSID), "version_id="+token(m.OSVersion), "arch="+token(m.Arch), "hostname="+token(m.Hostname), "free="+free)

	wanted := map[string]bool{}
	for _, w := range req.Components {
		wanted[w.Name] = true
	}
	var extra []string
	for name := range m.Receipts {
		if !wanted[name] && goodComponentName(name) {
			extra = append(extra, name)
		}
	}
	slices.Sort(extra) // the shell's glob order (LC_ALL=C)

	for _, w := range req.Components {
		m.writeBlock(&b, req.Root, req.Units, w.Name)
		for _, f := range w.Files {
			if fi, ok := m.Files[f]; ok {
				p("file", strconv.FormatUint(uint64(fi.Mode), 8), fi.SHA256, f)
			} else {
				p("file", "missing", f)
			}
		}
		ua := m.writeUnit(&b, req.Units, w.Name, w.Service)
		_, cond := m.Receipts[w.Name] // rcpt=1: a receipt file is there
		if w.Service {
			cond = ua == "active"
		}
		if cond && w.Health {
			writeExec(&b, "health", m.HealthFail[w.Name])
		}
		if cond && w.Leader {
			code := 0
			if !m.Leader[w.Name] {
				code = 1
			}
			writeExec(&b, "leader", code)
		}
		p("end")
	}
	for _, name := range extra {
		m.writeBlock(&b, req.Root, req.Units, name)
		m.writeUnit(&b, req.Units, name, false)
		p("end")
	}
	p("done")
	return b.Bytes()
}

func writeExec(b *bytes.Buffer, kind string, code int) {
	if code == 0 {
		fmt.Fprintf(b, "%s exec ok 0\n", kind)
	} else {
		fmt.Fprintf(b, "%s exec fail %d\n", kind, code)
	}
}

// writeBlock is dp_begin: the component line, its receipt, active link
// and packages.
func (m *Model) writeBlock(b *bytes.Buffer, root, units, name string) {
	fmt.Fprintf(b, "component %s\n", name)
	switch r, ok := m.Receipts[name]; {
	case !ok:
		b.WriteString("receipt -\n")
	case len(r) == 0:
		b.WriteString("receipt !\n")
	default:
		// read -r per line; a last line without newline is read too.
		for _, l := range strings.SplitAfter(string(r), "\n") {
			if l == "" {
				continue
			}
			fmt.Fprintf(b, "receipt = %s\n", strings.TrimSuffix(l, "\n"))
		}
	}
	act := "-"
	if v, ok := m.Active[name]; ok {
		act = token(v)
		if act == "-" {
			act = "!"
		}
	}
	fmt.Fprintf(b, "active %s\n", act)
	versions := slices.Sorted(maps.Keys(m.Packages[name]))
	for _, v := range versions {
		if token(v) == "-" {
			continue
		}
		state := "incomplete"
		if m.Packages[name][v] {
			state = "complete"
		}
		fmt.Fprintf(b, "package %s %s\n", v, state)
	}
}

// writeUnit is dp_unitline; it returns the unit's ActiveState.
func (m *Model) writeUnit(b *bytes.Buffer, units, name string, service bool) string {
	unit := "drover-" + name + ".service"
	f, exists := m.Files[units+"/"+unit]
	u := m.unitFor(unit)
	if service || exists {
		hash, ex := "-", "0"
		if exists {
			hash, ex = f.SHA256, "1"
		}
		en := "0"
		if u.Enabled {
			en = "1"
		}
		fmt.Fprintf(b, "unit exists=%s hash=%s active=%s sub=%s enabled=%s\n", ex, hash, u.Active, u.Sub, en)
	}
	return u.Active
}

// goodComponentName is dp_discover's filter on receipt file names.
func goodComponentName(n string) bool {
	if n == "" || !(n[0] >= 'a' && n[0] <= 'z' || n[0] >= '0' && n[0] <= '9') {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
