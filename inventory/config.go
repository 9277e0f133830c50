package inventory

import (
	"fmt"
	"time"

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

// Config is how the Pool reaches nodes. Paths are used as given (no ~).
type Config struct {
	// IdentityFiles are private keys to offer, before any ssh-agent keys
	// (used when SSH_AUTH_SOCK is set).
	IdentityFiles []string
	// KnownHostsFile is checked strictly unless AcceptNewHostKeys is set;
	// then first-seen keys are appended to it. A changed key is always refused.
	KnownHostsFile    string
	AcceptNewHostKeys bool
	// Bastion, when set, is the jump host every node connection goes through.
	Bastion *Bastion
	// ConnectTimeout bounds the TCP dial and, separately, the SSH handshake.
	ConnectTimeout time.Duration
	// KeepAlive is the keepalive@openssh.com period; a keepalive left
	// unanswered that long closes the connection. Negative disables them.
	KeepAlive time.Duration
	// IdleTimeout closes connections unused for that long. Negative never does.
	IdleTimeout time.Duration
	// Concurrency bounds dials and sessions in flight across all nodes.
	Concurrency int
}

// Bastion is a jump host.
type Bastion struct {
	Address string
	Port    int
	User    string
}

// Target is the bastion as a dialable target.
func (b Bastion) Target() Target {
	return Target{Name: "bastion", Address: b.Address, Port: b.Port, User: b.User}
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
	return c
}

func (c Config) validate() error {
	switch {
	case c.KnownHostsFile == "":
		return fmt.Errorf("ssh config: knownHostsFile is required")
	case c.ConnectTimeout < 0:
		return fmt.Errorf("ssh config: connectTimeout %s is negative", c.ConnectTimeout)
	case c.Concurrency < 0:
		return fmt.Errorf("ssh config: concurrency %d is negative", c.Concurrency)
	case c.Bastion != nil && c.Bastion.Address == "":
		return fmt.Errorf("ssh config: bastion.address is required")
	}
	return nil
}

// ConfigFromManifest turns the manifest's ssh section into a Config:
// durations parsed, a leading ~/ expanded, defaults applied. It reads no files.
func ConfigFromManifest(s manifests.SSH) (Config, error) {
	timeout := DefaultConnectTimeout
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
	knownHosts := s.KnownHostsFile
	if knownHosts == "" {
		knownHosts = manifests.DefaultKnownHosts
	}
	cfg := Config{
		KnownHostsFile:    manifests.ExpandHome(knownHosts),
		AcceptNewHostKeys: s.AcceptNewHostKeys,
		ConnectTimeout:    timeout,
		Concurrency:       s.Concurrency,
	}
	for _, f := range s.IdentityFiles {
		cfg.IdentityFiles = append(cfg.IdentityFiles, manifests.ExpandHome(f))
	}
	if b := s.Bastion; b != nil {
		cfg.Bastion = &Bastion{Address: b.Address, Port: b.Port, User: b.User}
		if cfg.Bastion.Port == 0 {
			cfg.Bastion.Port = manifests.DefaultSSHPort
		}
		if cfg.Bastion.User == "" {
			cfg.Bastion.User = orDefault(s.User, manifests.DefaultSSHUser)
		}
	}
	return cfg.withDefaults(), nil
}

// TargetsFromManifest lists the nodes as the transport sees them, with
// the cluster's ssh user and port where a node has none of its own.
func TargetsFromManifest(c *manifests.Cluster) []Target {
	spec := c.Spec
	targets := make([]Target, 0, len(spec.Nodes))
	for _, n := range spec.Nodes {
		t := Target{Name: n.Name, Address: n.Address, Port: n.Port, User: n.User}
		if t.Port == 0 {
			t.Port = spec.SSH.Port
		}
		if t.Port == 0 {
			t.Port = manifests.DefaultSSHPort
		}
		if t.User == "" {
			t.User = orDefault(spec.SSH.User, manifests.DefaultSSHUser)
		}
		targets = append(targets, t)
	}
	return targets
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
