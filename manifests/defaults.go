package manifests

import "strings"

// Defaults for fields a manifest may leave out.
const (
	DefaultInstallRoot    = "/opt/drover"
	DefaultProbeInterval  = "30s"
	DefaultSSHUser        = "root"
	DefaultSSHPort        = 22
	DefaultKnownHosts     = "~/.ssh/known_hosts"
	DefaultConnectTimeout = "10s"
	DefaultConcurrency    = 64
	DefaultHealthTimeout  = "5m"
	DefaultCheckTimeout   = "5s"
	DefaultFileMode       = "0644"
	DefaultRestart        = "on-failure"
)

// SetDefaults fills every field the manifest left out. It is idempotent.
func (c *Cluster) SetDefaults() {
	s := &c.Spec
	if s.InstallRoot == "" {
		s.InstallRoot = DefaultInstallRoot
	}
	if s.ProbeInterval == "" {
		s.ProbeInterval = DefaultProbeInterval
	}
	// The ssh section, nodes' user and port and jump hosts are left as
	// written: what they leave unset comes, per node, from the operator's
	// ssh_config before drover's defaults (inventory resolves it).
	if s.SSH.Concurrency == 0 {
		s.SSH.Concurrency = DefaultConcurrency
	}
	for i := range s.Components {
		comp := &s.Components[i]
		if comp.State == "" {
			comp.State = StatePresent
		}
		// sha256sum prints lowercase; keep one spelling so comparisons hold.
		if a := comp.Artifact; a != nil {
			a.SHA256 = strings.ToLower(a.SHA256)
		}
		for j := range comp.Files {
			if comp.Files[j].Mode == "" {
				comp.Files[j].Mode = DefaultFileMode
			}
		}
		if comp.Service != nil && comp.Service.Restart == "" {
			comp.Service.Restart = DefaultRestart
		}
		if h := comp.Health; h != nil {
			h.setDefaults()
		}
	}
	r := &s.Rollout
	if r.MaxUnavailable == nil {
		r.MaxUnavailable = NewCount(1)
	}
	if r.HealthTimeout == "" {
		r.HealthTimeout = DefaultHealthTimeout
	}
	if r.OnFailure == "" {
		r.OnFailure = OnFailureRollback
	}
	// r.MaxFailures stays 0 when unset: the first failed step halts.
}
