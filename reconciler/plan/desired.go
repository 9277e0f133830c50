// Package reconciler turns (Desired, Observed) into a Plan, rolls it out
// safely, and keeps the status of every node.
package plan

import (
	"time"

	"github.com/drover-project/drover/inventory"
	"github.com/drover-project/drover/manifests"
)

// Desired is a compiled manifest: everything every node should have, with
// files and units already rendered, so diffing is pure and cheap.
type Desired struct {
	Cluster     string
	Generation  string // the manifest's content hash
	InstallRoot string
	Paused      bool
	// ProbeInterval is how often a converged node is looked at again.
	ProbeInterval time.Duration
	// Order is every component name in dependsOn order (dependencies first).
	Order []string
	// Components are the cluster-level component facts, by name.
	Components map[string]*DesiredComponentInfo
	Nodes      []*DesiredNode // manifest order
	Rollout    RolloutPolicy
	// OnlyComponents, when set, are the components whose actions may
	// start (apply --component); the others' are held: planned, reported
	// and counted (dependents and removals wait for them), never started.
	OnlyComponents []string

	// nodeIndex maps a node's name to its index in Nodes (IndexNodes):
	// Node is called for every probe and by the rollout planner, and a
	// scan is O(nodes) each time (12% of the daemon's CPU at 10,000
	// nodes). A copy of the Desired shares it; Node checks each hit.
	nodeIndex map[string]int
	// loaded is the manifest it was compiled from: a join or a leave
	// renders its templates for that change only when it runs
	// (ForMembership), since what they see depends on the group then.
	loaded *manifests.Loaded
}

// DesiredComponentInfo is what is the same for a component on every node.
type DesiredComponentInfo struct {
	Name      string
	Version   string
	Present   bool // false: state absent, remove everywhere
	Quorum    bool
	DependsOn []string
	// Members are the nodes it belongs on, manifest order.
	Members []string
	// MaxUnavailable is the component's own bound, nil if unset.
	MaxUnavailable *manifests.IntOrPercent
	// Roles the component is placed by (for roleOrder).
	Roles []string
}

// RolloutPolicy is the cluster-wide rollout policy, parsed.
type RolloutPolicy struct {
	RoleOrder      []string
	MaxUnavailable manifests.IntOrPercent
	HealthTimeout  time.Duration
	OnFailure      string // manifests.OnFailureRollback or OnFailureHalt
	// MaxFailures is how many nodes may hold a failed step before the
	// rollout halts.
	MaxFailures int
}

// DesiredNode is one node and the components it should have.
type DesiredNode struct {
	Name   string
	Target inventory.Target
	Roles  []string
	Labels map[string]string
	Paused bool
	// Components it should have, in dependsOn order.
	Components []*DesiredComponent
}

// DesiredComponent is one component exactly as one node should have it.
type DesiredComponent struct {
	Name    string
	Version string
	// ArtifactPath is the artifact on the bootstrap host (absolute), or
	// ArtifactURL for the node to fetch; ArtifactSHA256 verifies either.
	ArtifactPath   string
	ArtifactURL    string
	ArtifactSHA256 string
	// ArtifactStrip is artifact.stripComponents.
	ArtifactStrip int
	// ArtifactSize is the local artifact's size in bytes, 0 when not
	// known (a URL, or a file not there: the action says so).
	ArtifactSize int64
	Files        []manifests.RenderedFile
	ConfigHash   string
	// Unit is the systemd unit text, nil for a files-only component.
	Unit     []byte
	UnitHash string
	// Health, Leader and Hooks are rendered for this node.
	Health *manifests.Health
	// Leader is a quorum component's leader check, probed with the rest.
	Leader *manifests.Health
	Hooks  map[string]*manifests.Hook
	// Reload: the unit has ExecReload= (service.reload).
	Reload bool
	// EnvMigration is set for a service with environment (EnvMigration).
	EnvMigration *EnvMigration
}

// EnvMigration is what the receipt of a drover from before the
// environment file holds for a component: the unit hash with
// service.environment inline (Environment=) and the config hash without
// .drover-env. A node at exactly those already runs with the wanted
// environment, so moving it into the file is a reconfigure that restarts
// nothing (EnvMigrates): upgrading drover restarts no service.
type EnvMigration struct {
	UnitHash, ConfigHash string
}

// UnitName is the systemd unit drover manages for a component.
func UnitName(component string) string { return "drover-" + component + ".service" }

// IndexNodes makes Node a map lookup; call it once Nodes is complete
// (Compile does), and again after editing Nodes. Without it, or when
// Nodes grew since, Node scans.
func (d *Desired) IndexNodes() {
	m := make(map[string]int, len(d.Nodes))
	for i, n := range d.Nodes {
		if _, dup := m[n.Name]; !dup {
			m[n.Name] = i // the first, as the scan finds
		}
	}
	d.nodeIndex = m
}

// Node finds a desired node by name.
func (d *Desired) Node(name string) *DesiredNode {
	if i, ok := d.nodeIndex[name]; ok && i < len(d.Nodes) && d.Nodes[i].Name == name {
		return d.Nodes[i]
	}
	if d.nodeIndex != nil && len(d.nodeIndex) == len(d.Nodes) {
		return nil // indexed and not there (names are unique once validated)
	}
	for _, n := range d.Nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// Component finds a component the node should have.
func (n *DesiredNode) Component(name string) *DesiredComponent {
	for _, c := range n.Components {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// KeptHooks are the hooks a receipt keeps for a remove: preStop and
// preRemove, nil when the component has neither.
func KeptHooks(w *DesiredComponent) map[string]*manifests.Hook {
	var out map[string]*manifests.Hook
	for _, name := range []string{"preStop", "preRemove"} {
		if h := w.Hooks[name]; h != nil {
			if out == nil {
				out = map[string]*manifests.Hook{}
			}
			out[name] = h
		}
	}
	return out
}
