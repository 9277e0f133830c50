package wizard

// Setup is what the operator entered in the wizard's first three steps.
// The page sends it whole to preflight and review, so the server keeps no
// state between steps apart from the host keys it has seen.
type Setup struct {
	Cluster       string           `json:"cluster"`
	InstallRoot   string           `json:"installRoot"`
	ProbeInterval string           `json:"probeInterval"`
	SSH           SSHSetup         `json:"ssh"`
	Nodes         []NodeSetup      `json:"nodes"`
	Components    []ComponentSetup `json:"components"`
}

// SSHSetup is how drover logs in. IdentityFile is a path on the bootstrap
// host: the key itself never passes through the wizard.
type SSHSetup struct {
	User         string `json:"user"`
	Port         int    `json:"port"`
	IdentityFile string `json:"identityFile"`
	// Bastion is the jump host every node is reached through:
	// [user@]host[:port], or an ssh_config alias ("" for none).
	Bastion string `json:"bastion,omitempty"`
}

// NodeSetup is one pasted node.
type NodeSetup struct {
	Name    string   `json:"name"`
	Address string   `json:"address"`
	Port    int      `json:"port,omitempty"` // 0: the ssh port
	Roles   []string `json:"roles"`
}

// ComponentSetup is one chosen artifact and how to run it.
type ComponentSetup struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	// Artifact is the file name inside the artifacts folder.
	Artifact string `json:"artifact"`
	// Template names a known component (see templates.go) whose files,
	// service user and quorum flag are filled in; "" is a generic one.
	Template string   `json:"template"`
	Roles    []string `json:"roles"`
	// Exec is the service command line; empty means no service (files only).
	Exec   string      `json:"exec"`
	Health HealthSetup `json:"health"`
	// FilesYAML, when set, replaces the template's files: a YAML list of
	// manifest files ({path, mode, template}).
	FilesYAML string `json:"filesYAML"`
}

// HealthSetup is the component's health check: kind "tcp", "http" or ""
// for none.
type HealthSetup struct {
	Kind string `json:"kind"`
	Port int    `json:"port"`
	Path string `json:"path,omitempty"`
}
