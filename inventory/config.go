package inventory

import (
	"context"
	"fmt"
	"net"
	"time"

	"go.uber.org/zap"

	"github.com/drover-project/drover/manifests"
)

// Defaults for Config fields left zero.
const (
	DefaultConnectTimeout = 10 * time.Second
	DefaultKeepAlive      = 15 * time.Second
	DefaultIdleTimeout    = 5 * time.Minute
	DefaultConcurrency    = manifests.DefaultConcurrency
	// MaxSessionsPerConn stays under OpenSSH's default MaxSessions (10),
	// leaving room for an operator's own multiplexed session.
	MaxSessionsPerConn = 8
	// MaxOutput bounds what Run keeps of stdout and of stderr.
	MaxOutput = 16 << 20
)

// Config is the cluster-wide part of how the Pool reaches nodes: what a
// Target leaves unset comes from here, then from SSHConfig, then from
// OpenSSH's defaults (see resolver). Zero fields are unset.
type Config struct {
	// User and Port for nodes that set none.
	User string
	Port int
	// IdentityFiles are private keys to offer, before any ssh-agent keys
	// (used when SSH_AUTH_SOCK is set). Unset: ssh_config's IdentityFile,
	// else OpenSSH's default ~/.ssh/id_ed25519, id_ecdsa, id_rsa that exist.
	IdentityFiles []string
	// KnownHostsFile is checked strictly unless AcceptNewHostKeys is set;
	// then first-seen keys are appended to it. A changed key is always refused.
	KnownHostsFile    string
	AcceptNewHostKeys bool
	// Bastion, when set, is the jump host every node connection goes
	// through; Jump is a chain of them, outermost first (set one or the other).
	Bastion *Bastion
	Jump    []Bastion
	// SSHConfig is the operator's ssh_config, consulted for what neither
	// the node nor this Config sets. Nil: none.
	SSHConfig *SSHConfig
	// ConnectTimeout bounds the TCP dial and, separately, the SSH handshake.
	ConnectTimeout time.Duration
	// KeepAlive is the keepalive@openssh.com period; a keepalive left
	// unanswered that long closes the connection. Negative disables them.
	KeepAlive time.Duration
	// IdleTimeout closes connections unused for that long. Negative never does.
	IdleTimeout time.Duration
	// Concurrency bounds dials and sessions in flight across all nodes.
	Concurrency int
	// Dial opens TCP connections to nodes and first jump hosts (default
	// net.Dialer); the pool bounds it with the connect timeout.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Bastion is a jump host. Address may be an ssh_config alias; unset
// fields are resolved as a node's are (Port defaults to 22, not ssh.port).
type Bastion struct {
	Address        string
	Port           int
	User           string
	IdentityFiles  []string
	KnownHostsFile string
}

// jumps is the cluster's chain of jump hosts, nil for none.
func (c Config) jumps() []Bastion {
	if len(c.Jump) > 0 {
		return c.Jump
	}
	if c.Bastion != nil {
		return []Bastion{*c.Bastion}
	}
	return nil
}

// withDefaults fills zero fields.
func (c Config) withDefaults() Config {
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.KeepAlive == 0 {
		c.KeepAlive = DefaultKeepAlive
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.Dial == nil {
		var d net.Dialer
		c.Dial = d.DialContext
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.ConnectTimeout < 0:
		return fmt.Errorf("ssh config: connectTimeout %s is negative", c.ConnectTimeout)
	case c.Concurrency < 0:
		return fmt.Errorf("ssh config: concurrency %d is negative", c.Concurrency)
	case c.Bastion != nil && c.Bastion.Address == "":
		return fmt.Errorf("ssh config: bastion.address is required")
	case c.Bastion != nil && len(c.Jump) > 0:
		return fmt.Errorf("ssh config: set bastion or jump, not both")
	}
	return nil
}

// ConfigFromManifest turns the manifest's ssh section into a Config:
// durations parsed, a leading ~/ expanded. What the manifest leaves unset
// stays unset, for ssh_config and OpenSSH's defaults to fill per node.
// It reads no files (see LoadSSHConfig).
func ConfigFromManifest(s manifests.SSH) (Config, error) {
	var timeout time.Duration
	if s.ConnectTimeout != "" {
		d, err := time.ParseDuration(string(s.ConnectTimeout))
		if err != nil {
			return Config{}, fmt.Errorf("ssh.connectTimeout: %w", err)
		}
		if d <= 0 {
			return Config{}, fmt.Errorf("ssh.connectTimeout: %s is not positive", d)
		}
		timeout = d
	}
	if s.Concurrency < 0 {
		return Config{}, fmt.Errorf("ssh.concurrency: %d is negative", s.Concurrency)
	}
	cfg := Config{
		User:              s.User,
		Port:              s.Port,
		IdentityFiles:     expandAll(s.IdentityFiles),
		KnownHostsFile:    manifests.ExpandHome(s.KnownHostsFile),
		AcceptNewHostKeys: s.AcceptNewHostKeys,
		ConnectTimeout:    timeout,
		Concurrency:       s.Concurrency,
		Jump:              bastions(s.Jump),
	}
	if len(cfg.IdentityFiles) == 0 {
		cfg.IdentityFiles = nil
	}
	if b := s.Bastion; b != nil {
		cfg.Bastion = &bastions([]manifests.Bastion{*b})[0]
	}
	return cfg, nil
}

// PoolConfig is ConfigFromManifest with the operator's ssh_config loaded:
// override (--ssh-config) if set, else ssh.configFile, else ~/.ssh/config.
func PoolConfig(s manifests.SSH, override string, log *zap.Logger) (Config, error) {
	cfg, err := ConfigFromManifest(s)
	if err != nil {
		return Config{}, err
	}
	cfg.SSHConfig, err = LoadSSHConfig(first(override, s.ConfigFile, DefaultSSHConfigFile), log)
	if err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// bastions converts the manifest's jump hosts, ~/ expanded; nil stays nil.
func bastions(in []manifests.Bastion) []Bastion {
	if in == nil {
		return nil
	}
	out := make([]Bastion, 0, len(in))
	for _, b := range in {
		var ids []string
		if len(b.IdentityFiles) > 0 {
			ids = expandAll(b.IdentityFiles)
		}
		out = append(out, Bastion{Address: b.Address, Port: b.Port, User: b.User,
			IdentityFiles: ids, KnownHostsFile: manifests.ExpandHome(b.KnownHostsFile)})
	}
	return out
}

// TargetOf is a node as the transport sees it: the node's own SSH
// settings, or else its roles' (spec.ssh.roles); what both leave unset
// the Pool resolves from the cluster, ssh_config and defaults.
func TargetOf(s *manifests.Spec, n *manifests.Node) Target {
	t := Target{Name: n.Name, Address: n.Address, Port: n.Port, User: n.User,
		IdentityFiles: expandAll(n.IdentityFiles), KnownHostsFile: manifests.ExpandHome(n.KnownHostsFile)}
	if len(t.IdentityFiles) == 0 {
		t.IdentityFiles = nil
	}
	access := s.SSH.RoleAccess(n)
	if len(t.IdentityFiles) == 0 && len(access.IdentityFiles) > 0 {
		t.IdentityFiles = expandAll(access.IdentityFiles)
	}
	if t.KnownHostsFile == "" {
		t.KnownHostsFile = manifests.ExpandHome(access.KnownHostsFile)
	}
	if jump := n.JumpHosts(); jump != nil {
		t.Jump = bastions(jump)
	} else if jump := access.JumpHosts(); jump != nil {
		t.Jump = bastions(jump)
	}
	return t
}

// TargetsFromManifest lists the nodes as the transport sees them.
func TargetsFromManifest(c *manifests.Cluster) []Target {
	targets := make([]Target, 0, len(c.Spec.Nodes))
	for i := range c.Spec.Nodes {
		targets = append(targets, TargetOf(&c.Spec, &c.Spec.Nodes[i]))
	}
	return targets
}
