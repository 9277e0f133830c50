// Package manifests owns drover's manifest: the schema as Go types, strict
// parsing, defaults, validation with field paths, and the rendering of
// per-node config files from templates.
package manifests

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// APIVersion and Kind are the only values a manifest may carry today.
const (
	APIVersion = "drover/v1"
	Kind       = "Cluster"
)

// Cluster is the whole manifest.
type Cluster struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Metadata   Metadata `json:"metadata"`
	Spec       Spec     `json:"spec"`

	// nodesFromInventory is set by Load when Spec.Nodes came from
	// Spec.InventoryFile, so Validate can tell that apart from a manifest
	// that sets both and name the inventory file in node problems.
	nodesFromInventory bool
	// decodeProblems are scalars Parse found would not read as written;
	// Validate reports them with everything else.
	decodeProblems Problems
}

// Metadata names the cluster.
type Metadata struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
}

// Spec is the desired state of the cluster.
type Spec struct {
	// InstallRoot is where drover keeps everything it writes on a node,
	// apart from systemd unit files.
	InstallRoot   string   `json:"installRoot,omitempty"`
	ProbeInterval Duration `json:"probeInterval,omitempty"`
	// Paused makes drover probe and report but change nothing.
	Paused bool `json:"paused,omitempty"`
	SSH    SSH  `json:"ssh"`
	// Nodes are listed inline, or loaded from InventoryFile (one of the two).
	Nodes         []Node      `json:"nodes,omitempty"`
	InventoryFile string      `json:"inventoryFile,omitempty"`
	Components    []Component `json:"components"`
	Rollout       Rollout     `json:"rollout"`
}

// SSH says how drover reaches nodes.
type SSH struct {
	User          string   `json:"user,omitempty"`
	Port          int      `json:"port,omitempty"`
	IdentityFiles []string `json:"identityFiles,omitempty"`
	// KnownHostsFile is checked strictly unless AcceptNewHostKeys is set, in
	// which case first-seen keys are recorded there; a changed key is always refused.
	KnownHostsFile    string `json:"knownHostsFile,omitempty"`
	AcceptNewHostKeys bool   `json:"acceptNewHostKeys,omitempty"`
	// Bastion is the jump host every node connection goes through; Jump
	// is a chain of them, outermost first (set one or the other). A node
	// or role with its own replaces them.
	Bastion        *Bastion  `json:"bastion,omitempty"`
	Jump           []Bastion `json:"jump,omitempty"`
	ConnectTimeout Duration  `json:"connectTimeout,omitempty"`
	// Concurrency bounds the dials and sessions in flight across all nodes.
	Concurrency int `json:"concurrency,omitempty"`
	// ConfigFile is the OpenSSH client config consulted for what the
	// manifest leaves unset (default ~/.ssh/config; --ssh-config overrides).
	ConfigFile string `json:"configFile,omitempty"`
	// Roles gives the nodes of a role their own keys, known_hosts or jump
	// hosts; a node's own fields win over its role's.
	Roles map[string]Access `json:"roles,omitempty"`
}

// Bastion is a jump host. Address may be an ssh_config alias.
type Bastion struct {
	Address        string   `json:"address"`
	Port           int      `json:"port,omitempty"`
	User           string   `json:"user,omitempty"`
	IdentityFiles  []string `json:"identityFiles,omitempty"`
	KnownHostsFile string   `json:"knownHostsFile,omitempty"`
}

// Access is how one node, or the nodes of a role, are reached when that
// differs from the cluster's ssh section.
type Access struct {
	IdentityFiles  []string  `json:"identityFiles,omitempty"`
	KnownHostsFile string    `json:"knownHostsFile,omitempty"`
	Bastion        *Bastion  `json:"bastion,omitempty"`
	Jump           []Bastion `json:"jump,omitempty"`
}

// JumpHosts is the chain Bastion or Jump name, nil when neither is set.
func (a Access) JumpHosts() []Bastion {
	if len(a.Jump) > 0 {
		return a.Jump
	}
	if a.Bastion != nil {
		return []Bastion{*a.Bastion}
	}
	return nil
}

// RoleAccess is the access of n's first role that has one (validation
// refuses roles of one node that disagree); zero when none has.
func (s SSH) RoleAccess(n *Node) Access {
	for _, r := range n.Roles {
		if a, ok := s.Roles[r]; ok {
			return a
		}
	}
	return Access{}
}

// Node is one machine drover manages.
type Node struct {
	Name    string            `json:"name"`
	Address string            `json:"address"`
	Port    int               `json:"port,omitempty"`
	User    string            `json:"user,omitempty"`
	Roles   []string          `json:"roles,omitempty"`
	Labels  map[string]string `json:"labels,omitempty"`
	// Paused makes drover probe and plan this node but change nothing on it.
	Paused bool `json:"paused,omitempty"`
	// Access: the node's own identityFiles, knownHostsFile, bastion, jump.
	Access
}

// Inventory is the content of an inventoryFile.
type Inventory struct {
	Nodes []Node `json:"nodes"`
}

// Component states.
const (
	StatePresent = "present"
	StateAbsent  = "absent"
)

// Component is one piece of software drover installs on matching nodes.
type Component struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	// Roles and Selector choose the nodes: a node matches when it has any of
	// Roles, or all of Selector's labels. With neither, every node matches.
	Roles     []string          `json:"roles,omitempty"`
	Selector  map[string]string `json:"selector,omitempty"`
	Artifact  *Artifact         `json:"artifact,omitempty"`
	Files     []File            `json:"files,omitempty"`
	Service   *Service          `json:"service,omitempty"`
	Health    *Health           `json:"health,omitempty"`
	DependsOn []string          `json:"dependsOn,omitempty"`
	// Quorum marks members of a majority-based ensemble: they change one
	// at a time and only while every other member is healthy.
	Quorum bool `json:"quorum,omitempty"`
	// Leader, for a quorum component, is an exec check that passes on the
	// member that leads. A rolling change takes that member last, so the
	// ensemble elects a new leader once rather than once per restart.
	Leader  *Health           `json:"leader,omitempty"`
	Hooks   *Hooks            `json:"hooks,omitempty"`
	Rollout *ComponentRollout `json:"rollout,omitempty"`
	State   string            `json:"state,omitempty"`
}

// Artifact is a tar.gz unpacked into the component's version directory.
type Artifact struct {
	// Path is relative to the manifest's directory (uploaded by drover);
	// URL is fetched by the node itself. Exactly one is set.
	Path   string `json:"path,omitempty"`
	URL    string `json:"url,omitempty"`
	SHA256 string `json:"sha256"`
	// StripComponents drops that many leading path elements of every
	// member when unpacking (tar --strip-components), so a release
	// tarball's top folder (etcd-v3.5.17-linux-amd64/) does not end up in
	// every path: {{ .Dir }}/bin/etcd.
	StripComponents int `json:"stripComponents,omitempty"`
}

// MaxStripComponents bounds artifact.stripComponents: no real release
// nests its files deeper.
const MaxStripComponents = 8

// File is a config file rendered per node on the bootstrap host.
type File struct {
	// Path is relative to the component's version directory, or absolute.
	Path     string `json:"path"`
	Mode     string `json:"mode,omitempty"`
	Template string `json:"template"`
	// OnChange is what a change or drift of this file needs: restart
	// (the default), reload (the unit's ExecReload, service.reload) or
	// none (a file only a check or a hook reads).
	OnChange string `json:"onChange,omitempty"`
	// Sensitive keeps the content out of plans and diffs (secrets): they
	// say only that it changed, and drover never reads it back.
	Sensitive bool `json:"sensitive,omitempty"`
}

// File change policies (File.OnChange), weakest last.
const (
	OnChangeRestart = "restart"
	OnChangeReload  = "reload"
	OnChangeNone    = "none"
)

// Service is the systemd unit drover writes for a component.
type Service struct {
	// Exec is the command line (a template: {{ .Dir }} is the active
	// dir): one systemd command line, or in the manifest a list of
	// arguments (ExecArgs), each a template, quoted for systemd by drover.
	Exec string `json:"exec" drover:"textOrList"`
	// ExecArgs is exec given as a list; Exec is then "".
	ExecArgs []string `json:"-"`
	// Reload is the command systemd runs for a reload (ExecReload=), in
	// the same two forms as exec; files with onChange: reload need it.
	Reload      string            `json:"reload,omitempty" drover:"textOrList"`
	ReloadArgs  []string          `json:"-"`
	User        string            `json:"user,omitempty"`
	Group       string            `json:"group,omitempty"`
	Environment map[string]string `json:"environment,omitempty"`
	// Restart is systemd's Restart= (default on-failure).
	Restart string `json:"restart,omitempty"`
}

// Health is how drover decides a component works on a node. Exactly one
// of Exec, HTTP and TCP is set; checks run from the node.
type Health struct {
	Exec    *ExecCheck `json:"exec,omitempty"`
	HTTP    *HTTPCheck `json:"http,omitempty"`
	TCP     *TCPCheck  `json:"tcp,omitempty"`
	Timeout Duration   `json:"timeout,omitempty"`
}

// ExecCheck passes when the command exits 0. Command is an argv, never
// pasted into a shell; use ["sh","-c","..."] for shell syntax.
type ExecCheck struct {
	Command []string `json:"command"`
}

// HTTPCheck passes when GET answers one of the expected statuses
// (ExpectStatus, or any of ExpectStatuses; default 200) and, when set,
// the body matches BodyRegexp and has every JSON field of BodyJSON.
type HTTPCheck struct {
	// Host defaults to the node's own address.
	Host           string `json:"host,omitempty"`
	Port           int    `json:"port"`
	Path           string `json:"path,omitempty"`
	ExpectStatus   int    `json:"expectStatus,omitempty"`
	ExpectStatuses []int  `json:"expectStatuses,omitempty"`
	// Headers are sent with the request (Host: sets the virtual host).
	Headers map[string]string `json:"headers,omitempty"`
	// BodyRegexp must match somewhere in the body (Go RE2 syntax).
	BodyRegexp string `json:"bodyRegexp,omitempty"`
	// BodyJSON names top-level fields of a JSON body and the value each
	// must have, compared as text: {"health": "true"} passes for
	// {"health":"true"} and for {"health":true}.
	BodyJSON map[string]string `json:"bodyJSON,omitempty"`
}

// Statuses is every status the check accepts.
func (c *HTTPCheck) Statuses() []int {
	out := slices.Clone(c.ExpectStatuses)
	if c.ExpectStatus != 0 && !slices.Contains(out, c.ExpectStatus) {
		out = append([]int{c.ExpectStatus}, out...)
	}
	if len(out) == 0 {
		out = []int{200}
	}
	return out
}

// Hooks are commands drover runs on the node around what it does to the
// service, each an argv (like an exec check: templates, no shell).
type Hooks struct {
	// PreStop runs before drover stops or restarts a running service:
	// drain, move leadership away.
	PreStop *Hook `json:"preStop,omitempty"`
	// PostStart runs after drover (re)starts the service, before the
	// health gate.
	PostStart *Hook `json:"postStart,omitempty"`
	// PreRemove runs before drover removes the component from the node.
	PreRemove *Hook `json:"preRemove,omitempty"`
	// PreJoin, for a quorum component, runs on a member that stays
	// before a node joins a group that has healthy members: the
	// service's own membership command (etcdctl member add). .Node is
	// the member it runs on, .Member the node that joins.
	PreJoin *Hook `json:"preJoin,omitempty"`
	// PostLeave, for a quorum component, runs on a member that stays
	// after drover stopped the service on a node that leaves the group
	// (etcdctl member remove), before the rest of the remove. .Member is
	// the node that leaves.
	PostLeave *Hook `json:"postLeave,omitempty"`
}

// Hook is one command and how long it may take.
type Hook struct {
	Command []string `json:"command"`
	Timeout Duration `json:"timeout,omitempty"`
}

// DefaultHookTimeout bounds a hook that sets no timeout.
const DefaultHookTimeout = "60s"

// HookNames are the hooks in the order of Hooks' fields.
var HookNames = []string{"preStop", "postStart", "preRemove", "preJoin", "postLeave"}

// MembershipHooks are the hooks that run on a member that stays, for a
// change of a quorum group's membership: rendered for that change
// (Renderer.ForMembership), not with the node's other templates.
var MembershipHooks = []string{"preJoin", "postLeave"}

// ByName is the hook of that name, nil when unset.
func (h *Hooks) ByName(name string) *Hook {
	if h == nil {
		return nil
	}
	switch name {
	case "preStop":
		return h.PreStop
	case "postStart":
		return h.PostStart
	case "preRemove":
		return h.PreRemove
	case "preJoin":
		return h.PreJoin
	case "postLeave":
		return h.PostLeave
	}
	return nil
}

// TCPCheck passes when a TCP connection is accepted.
type TCPCheck struct {
	// Host defaults to the node's own address.
	Host string `json:"host,omitempty"`
	Port int    `json:"port"`
}

// ComponentRollout tightens the cluster's rollout for one component.
type ComponentRollout struct {
	MaxUnavailable *IntOrPercent `json:"maxUnavailable,omitempty"`
}

// Failure policies.
const (
	OnFailureRollback = "rollback"
	OnFailureHalt     = "halt"
)

// Rollout is the cluster-wide rollout policy.
type Rollout struct {
	RoleOrder      []string      `json:"roleOrder,omitempty"`
	MaxUnavailable *IntOrPercent `json:"maxUnavailable,omitempty"`
	HealthTimeout  Duration      `json:"healthTimeout,omitempty"`
	OnFailure      string        `json:"onFailure,omitempty"`
	// MaxFailures is how many nodes may hold an action that failed at a
	// step (upload, unpack, a script, a hook) before the rollout halts
	// (default 0: the first such failure halts it). A failed node keeps
	// its slot in maxUnavailable until an action there succeeds.
	MaxFailures int `json:"maxFailures,omitempty"`
}

// Duration is a Go duration string such as "30s". It is kept as text so
// that a bad value is reported by Validate with its field path instead of
// failing the whole parse.
type Duration string

// Get returns the parsed duration, or def when the field is empty or bad
// (Validate reports bad values).
func (d Duration) Get(def time.Duration) time.Duration {
	if d == "" {
		return def
	}
	v, err := time.ParseDuration(string(d))
	if err != nil {
		return def
	}
	return v
}

// UnmarshalJSON accepts a string, or a bare number that Validate will
// report as missing its unit ("30" is not a duration, "30s" is).
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*d = Duration(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("must be a duration string such as \"30s\"")
	}
	*d = Duration(n.String())
	return nil
}

// IntOrPercent is a count ("maxUnavailable: 2") or a percentage of a
// group ("maxUnavailable: 10%").
type IntOrPercent struct {
	Value   int
	Percent bool
	// invalid marks a value that did not parse; raw keeps its text for
	// Validate to report.
	invalid bool
	raw     string
}

// NewCount and NewPercent build IntOrPercent values in code.
func NewCount(n int) *IntOrPercent   { return &IntOrPercent{Value: n} }
func NewPercent(p int) *IntOrPercent { return &IntOrPercent{Value: p, Percent: true} }

// UnmarshalJSON accepts a number or a string ("3", "25%"). Anything else
// is kept as text and reported by Validate with its field path, rather
// than failing the whole parse.
func (v *IntOrPercent) UnmarshalJSON(b []byte) error {
	var n json.Number
	if err := json.Unmarshal(b, &n); err == nil && n != "" {
		i, err := strconv.Atoi(n.String())
		if err != nil {
			*v = IntOrPercent{invalid: true, raw: n.String()}
			return nil
		}
		*v = IntOrPercent{Value: i}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		*v = IntOrPercent{invalid: true, raw: string(b)}
		return nil
	}
	*v = parseIntOrPercent(s)
	return nil
}

func parseIntOrPercent(s string) IntOrPercent {
	t := strings.TrimSpace(s)
	pct := strings.HasSuffix(t, "%")
	i, err := strconv.Atoi(strings.TrimSuffix(t, "%"))
	if err != nil {
		return IntOrPercent{invalid: true, raw: s}
	}
	return IntOrPercent{Value: i, Percent: pct}
}

// MarshalJSON writes the manifest form back.
func (v IntOrPercent) MarshalJSON() ([]byte, error) {
	if v.invalid {
		return json.Marshal(v.raw)
	}
	if v.Percent {
		return json.Marshal(strconv.Itoa(v.Value) + "%")
	}
	return json.Marshal(v.Value)
}

// String is the manifest form.
func (v IntOrPercent) String() string {
	b, _ := v.MarshalJSON()
	return strings.Trim(string(b), `"`)
}

// Valid reports whether the value parsed and is in range.
func (v IntOrPercent) Valid() bool {
	if v.invalid || v.Value < 0 {
		return false
	}
	return !v.Percent || v.Value <= 100
}

// Of resolves the value against a group of total members: a percentage
// rounds down, and the result is at least 1 so a rollout always moves.
func (v IntOrPercent) Of(total int) int {
	n := v.Value
	if v.Percent {
		n = total * v.Value / 100
	}
	if n < 1 {
		n = 1
	}
	return n
}

// HasExec reports whether exec is set in either form.
func (s *Service) HasExec() bool { return s.Exec != "" || s.ExecArgs != nil }
