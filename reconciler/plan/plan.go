package plan

// ActionKind is what drover does to one component on one node.
type ActionKind string

const (
	ActionInstall     ActionKind = "install"
	ActionUpgrade     ActionKind = "upgrade"
	ActionReconfigure ActionKind = "reconfigure"
	ActionRestart     ActionKind = "restart"
	ActionRemove      ActionKind = "remove"
	ActionRollback    ActionKind = "rollback"
)

// Action is one step of a plan.
type Action struct {
	Node      string     `json:"node"`
	Component string     `json:"component"`
	Kind      ActionKind `json:"action"`
	From      string     `json:"from,omitempty"` // observed version
	To        string     `json:"to,omitempty"`   // desired version
	Reason    string     `json:"reason"`
	// Disruptive actions stop or restart the unit: the node counts as
	// unavailable for the component until its health check passes.
	Disruptive bool `json:"disruptive"`
	// Effect, for a reconfigure of a service, is what the change needs
	// of it: restart, reload or none (the changed files' onChange).
	Effect string `json:"effect,omitempty"`
	// Downgrade marks an upgrade to an older version (semantic versions
	// only: IsDowngrade).
	Downgrade bool `json:"downgrade,omitempty"`
	// Membership, on a quorum component's install or remove, is the
	// change of its group the action makes: MemberJoin or MemberLeave
	// (membership.go). Via is the member that stays which runs the
	// preJoin or postLeave hook; Members are the group's members once
	// the change is made, comma-separated (an Action stays comparable).
	Membership string `json:"membership,omitempty"`
	Via        string `json:"via,omitempty"`
	Members    string `json:"members,omitempty"`
}

// NodePlan is what would change on one node.
type NodePlan struct {
	Node string `json:"node"`
	// Generation is the manifest generation the plan was made for: the
	// daemon keeps each node's last plan, and a plan of another
	// generation says nothing about what the current one needs.
	Generation string   `json:"-"`
	Address    string   `json:"address,omitempty"`
	Known      bool     `json:"known"`
	Reason     string   `json:"reason,omitempty"` // why Unknown, or paused
	Paused     bool     `json:"paused,omitempty"`
	Actions    []Action `json:"actions"`
	// Changes are, per component, the files and unit its action would
	// write differently, with their diffs; filled by AttachDiffs for plan
	// and apply. (Beside the actions, not in them: an Action stays a
	// comparable value.)
	Changes map[string][]FileChange `json:"changes,omitempty"`
}

// Plan is every action needed to converge the cluster, per node in
// manifest order, actions in dependsOn order.
type Plan struct {
	Generation string `json:"generation"`
	// Paused is the cluster-wide pause: the plan is reported, never run.
	Paused bool       `json:"paused,omitempty"`
	Nodes  []NodePlan `json:"nodes"`
}

// Empty reports whether nothing would change.
func (p Plan) Empty() bool {
	for _, n := range p.Nodes {
		if len(n.Actions) > 0 {
			return false
		}
	}
	return true
}
