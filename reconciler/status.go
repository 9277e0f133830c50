package reconciler

import "time"

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
}

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
}

// RolloutStatus is the state of the cluster-wide rollout.
type RolloutStatus struct {
	Halted    bool   `json:"halted"`
	Reason    string `json:"reason,omitempty"`
	Component string `json:"component,omitempty"`
	Node      string `json:"node,omitempty"`
	// Generation the halt applies to: a new manifest lifts it.
	Generation string `json:"generation,omitempty"`
}

// ClusterStatus is a snapshot of the whole cluster, read by the HTTP API,
// `drover status` and the metrics collector at scrape time.
type ClusterStatus struct {
	Cluster string `json:"cluster"`
	// Generation counts accepted manifest changes; Hash is the content hash.
	Generation   int64         `json:"generation"`
	Hash         string        `json:"hash"`
	LoadSuccess  bool          `json:"loadSuccess"`
	LoadError    string        `json:"loadError,omitempty"`
	LastLoadTime time.Time     `json:"lastLoadTime"`
	Paused       bool          `json:"paused"`
	Rollout      RolloutStatus `json:"rollout"`
	Nodes        []NodeStatus  `json:"nodes"`
}
