package plan

import (
	"time"

	"github.com/drover-project/drover/probes"
)

// Sync says whether a component on a node matches the manifest.
type Sync string

const (
	Synced      Sync = "Synced"
	OutOfSync   Sync = "OutOfSync"
	SyncUnknown Sync = "Unknown"
)

// Health says whether a component on a node works.
type Health string

const (
	Healthy       Health = "Healthy"
	Progressing   Health = "Progressing"
	Degraded      Health = "Degraded"
	Missing       Health = "Missing"
	HealthUnknown Health = "Unknown"
)

// ComponentStatus is one component on one node.
type ComponentStatus struct {
	Name            string `json:"name"`
	DesiredVersion  string `json:"desiredVersion"` // "" when it should be absent
	ObservedVersion string `json:"observedVersion"`
	Sync            Sync   `json:"sync"`
	Health          Health `json:"health"`
	Reason          string `json:"reason,omitempty"`
	// What the node has, as its last probe saw it (empty when unknown):
	// the receipt drover wrote there (version, artifact sha256, config
	// hash, unit hash, generation), the version the active link points at
	// and the unit's state, e.g. "active (running)".
	Receipt *probes.Receipt `json:"receipt,omitempty"`
	Active  string          `json:"active,omitempty"`
	Unit    string          `json:"unit,omitempty"`
	// Leader is set on the quorum member whose leader check passed at the
	// last probe: a rolling change takes it last.
	Leader bool `json:"leader,omitempty"`
}

// ActionRecord is one action drover ran on a node.
type ActionRecord struct {
	Time      time.Time     `json:"time"`
	Action    string        `json:"action"`
	Component string        `json:"component"`
	Version   string        `json:"version,omitempty"`
	Result    string        `json:"result"` // success, failure
	Message   string        `json:"message,omitempty"`
	Duration  time.Duration `json:"duration"`
	// Membership is the change of a quorum group the action made: join
	// or leave (Action.Membership).
	Membership string `json:"membership,omitempty"`
	// Steps are the steps the action ran on the node, in order: its
	// output for the operator (a failure's stderr is in Message).
	Steps []StepRecord `json:"steps,omitempty"`
}

// StepRecord is one step of an action as it ran on the node.
type StepRecord struct {
	Name     string        `json:"name"`
	Result   string        `json:"result"` // changed, in-place, failed
	Duration time.Duration `json:"duration"`
	// Node is where the step ran when that is not the action's node: a
	// membership hook runs on a member that stays.
	Node string `json:"node,omitempty"`
	// Output is what a hook printed (its tail), for the operator.
	Output string `json:"output,omitempty"`
}

// Step results: the step changed the node, found it already in place
// (a resumed or repeated action), or failed.
const (
	StepChanged = "changed"
	StepInPlace = "in-place"
	StepFailed  = "failed"
)

// NodeStatus is everything drover knows of one node now.
type NodeStatus struct {
	Name      string `json:"name"`
	Address   string `json:"address"`
	Reachable bool   `json:"reachable"`
	// Converged: every component it should have is Synced and Healthy
	// and nothing it should not have is present.
	Converged bool `json:"converged"`
	// Reason says why it is not converged (or unreachable).
	Reason              string            `json:"reason,omitempty"`
	Paused              bool              `json:"paused,omitempty"`
	ObservedGeneration  string            `json:"observedGeneration,omitempty"`
	LastProbe           time.Time         `json:"lastProbe"`
	LastConverged       time.Time         `json:"lastConverged"`
	ConsecutiveFailures int               `json:"consecutiveFailures"`
	LastAction          *ActionRecord     `json:"lastAction,omitempty"`
	History             []ActionRecord    `json:"history,omitempty"`
	Components          []ComponentStatus `json:"components"`

	// For the console: the node as the manifest places it, the facts of
	// its last successful probe (kept while it is unreachable), and the
	// outcome of its last probe attempt, successful or not.
	Roles            []string          `json:"roles,omitempty"`
	Labels           map[string]string `json:"labels,omitempty"`
	Facts            *NodeFacts        `json:"facts,omitempty"`
	LastProbeAttempt time.Time         `json:"lastProbeAttempt,omitzero"`
	ProbeDuration    time.Duration     `json:"probeDuration,omitempty"`
	// ProbeError is why the last probe learnt nothing, e.g.
	// "unreachable: dial tcp 127.0.2.3:22: i/o timeout".
	ProbeError string `json:"probeError,omitempty"`
	// InFlight is the action running on the node (or ended and not yet
	// seen by a probe); Waiting says why its pending actions do not start.
	InFlight *Action `json:"inFlight,omitempty"`
	Waiting  string  `json:"waiting,omitempty"`
}

// NodeFacts are what a probe learnt of the node's system.
type NodeFacts struct {
	OSID      string `json:"osId"`
	OSVersion string `json:"osVersionId"`
	Arch      string `json:"arch"`
	Hostname  string `json:"hostname,omitempty"`
	// FreeBytes under the install root; -1 when unknown.
	FreeBytes int64 `json:"freeBytes"`
}

// RolloutStatus is the state of the cluster-wide rollout.
type RolloutStatus struct {
	Halted    bool   `json:"halted"`
	Reason    string `json:"reason,omitempty"`
	Component string `json:"component,omitempty"`
	Node      string `json:"node,omitempty"`
	// Generation the halt applies to: a new manifest lifts it.
	Generation string `json:"generation,omitempty"`

	// The rollout in progress (in ClusterStatus only, never in a halt):
	// the current batch (actions running, or ended and not yet seen by a
	// probe), how many actions wait their turn, and why, per node.
	InFlight []Action      `json:"inFlight,omitempty"`
	Pending  int           `json:"pending,omitempty"`
	Waiting  []NodeWaiting `json:"waiting,omitempty"`
}

// NodeWaiting says why a node's pending actions do not start yet.
type NodeWaiting struct {
	Node   string `json:"node"`
	Reason string `json:"reason"`
}

// ClusterStatus is a snapshot of the whole cluster, read by the HTTP API,
// `drover status` and the metrics collector at scrape time.
type ClusterStatus struct {
	Cluster string `json:"cluster"`
	// Generation counts accepted manifest changes; Hash is the content hash.
	Generation   int64     `json:"generation"`
	Hash         string    `json:"hash"`
	LoadSuccess  bool      `json:"loadSuccess"`
	LoadError    string    `json:"loadError,omitempty"`
	LastLoadTime time.Time `json:"lastLoadTime"`
	Paused       bool      `json:"paused"`
	// Suspended: the operator suspended the daemon (drover suspend); it
	// probes and reports, and starts no action until drover resume.
	Suspended bool          `json:"suspended"`
	Rollout   RolloutStatus `json:"rollout"`
	Nodes     []NodeStatus  `json:"nodes"`
	// HA is the answering daemon's part when it is one of several on
	// etcd (absent for a daemon alone).
	HA *HAStatus `json:"ha,omitempty"`
}

// HAStatus is one daemon of several on etcd: who leads, whether this
// daemon's manifest agrees with the generation acted on, and why it
// changes no node when it does not.
type HAStatus struct {
	Name    string `json:"name"` // this daemon's --ha-name
	Leading bool   `json:"leading"`
	Leader  string `json:"leader,omitempty"` // "" while none leads
	Members int    `json:"members"`
	// Why says why this daemon changes no node now: it stands by, lost
	// its lease (etcd away or without quorum), or its manifest is stale
	// or not yet published. Empty while it leads and may act.
	Why string `json:"why,omitempty"`
	// Manifest is the hash of this daemon's own manifest file; Acted the
	// generation the leader published and acts on.
	Manifest string           `json:"manifest"`
	Acted    *ActedGeneration `json:"acted,omitempty"`
	// ManifestMismatch: this daemon's file is not the acted generation.
	// ManifestStale: it is one acted on before and superseded.
	ManifestMismatch bool `json:"manifestMismatch"`
	ManifestStale    bool `json:"manifestStale,omitempty"`
	// Answer says where the rest of the document comes from when a
	// standby answered: "leader" (forwarded), or "etcd" (the shared
	// state the leader wrote, nodes not probed by this daemon).
	Answer string `json:"answer,omitempty"`
}

// ActedGeneration is the manifest generation the leader published.
type ActedGeneration struct {
	Hash string `json:"hash"`
	// Seq counts the generations acted on in the cluster; Revision is
	// the etcd revision at which this one became the acted one.
	Seq      int64     `json:"seq"`
	Revision int64     `json:"revision"`
	By       string    `json:"by"`
	Time     time.Time `json:"time"`
}

// Node states a reader selects nodes by: the API's ?state= and the
// console's pages.
const (
	StateConverged    = "converged"
	StateNotConverged = "notConverged"
	StateUnreachable  = "unreachable"
)

// InState says whether n is in state; "" is every node.
func (n NodeStatus) InState(state string) bool {
	switch state {
	case StateConverged:
		return n.Converged
	case StateNotConverged:
		return !n.Converged
	case StateUnreachable:
		return !n.Reachable
	}
	return true
}
