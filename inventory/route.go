package inventory

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/drover-project/drover/manifests"
)

// hop is one SSH connection on the way to a node, every setting
// resolved: the node itself is the last hop of its route.
type hop struct {
	label          string // for messages: "node m1 (10.0.0.1:22)" or "bastion 10.0.0.9:22"
	alias          string // what ssh_config was asked about
	address        string
	port           int
	user           string
	identityFiles  []string
	identitiesOnly bool // offer only identityFiles, not the agent's keys
	knownHosts     string
	acceptNew      bool
	connectTimeout time.Duration
	keepAlive      time.Duration
}

func (h hop) hostport() string {
	return net.JoinHostPort(h.address, strconv.Itoa(h.port))
}

// key names the connection: two nodes behind the same hop share it.
func (h hop) key() string { return h.user + "@" + h.hostport() }

// defaultIdentityNames are the keys OpenSSH tries when none is configured,
// in its order (DSA and the security-key types left out).
var defaultIdentityNames = []string{"id_ed25519", "id_ecdsa", "id_rsa"}

// DefaultIdentities lists OpenSSH's default identity files that exist in
// ~/.ssh, in OpenSSH's order.
func DefaultIdentities() []string {
	home, err := os.UserHomeDir()
	if err != nil {
		return nil
	}
	var out []string
	for _, name := range defaultIdentityNames {
		path := filepath.Join(home, ".ssh", name)
		if st, err := os.Stat(path); err == nil && st.Mode().IsRegular() {
			out = append(out, path)
		}
	}
	return out
}

// resolver turns a Target into its route. Precedence, per setting:
// the node's own fields (a node's, or its role's, in the manifest) >
// the cluster's ssh: section (Config) > the operator's ssh_config for the
// node's address as a Host alias > OpenSSH's defaults (drover's for the
// user: root). See docs/ARCHITECTURE.md, "SSH".
type resolver struct {
	cfg        Config // as given, before defaults: zero means unset
	sc         *SSHConfig
	identities func() []string // OpenSSH's default identity files
}

func newResolver(cfg Config) resolver {
	return resolver{cfg: cfg, sc: cfg.SSHConfig, identities: DefaultIdentities}
}

// route resolves t: its jump hosts, outermost first, then t itself.
// Jump hosts come from the node (Target.Jump), else the cluster
// (Config.Jump or Bastion), else ssh_config's ProxyJump for the address.
func (r resolver) route(t Target) ([]hop, error) {
	if t.Address == "" {
		return nil, fmt.Errorf("node %s: no address", t.Name)
	}
	node, err := r.hop(endpoint{alias: t.Address, port: t.Port, user: t.User, identityFiles: t.IdentityFiles, knownHosts: t.KnownHostsFile}, true)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", describe(t), err)
	}
	node.label = describe(Target{Name: t.Name, Address: node.address, Port: node.port})
	jumps := t.Jump
	if jumps == nil {
		jumps = r.cfg.jumps()
	}
	if jumps == nil {
		if jumps, err = r.proxyJump(t.Address); err != nil {
			return nil, fmt.Errorf("%s: %w", describe(t), err)
		}
	}
	visited := []string{hostKey(t.Address, t.Port)}
	chain, err := r.chain(jumps, visited)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", describe(t), err)
	}
	return append(chain, node), nil
}

// endpoint is a host as the manifest or ssh_config names it; zero fields
// are unset.
type endpoint struct {
	alias         string
	port          int
	user          string
	identityFiles []string
	knownHosts    string
}

// chain resolves jump hosts. As with `ssh -J a,b`, the first hop's own
// ProxyJump in ssh_config is followed (a's may lead through others); the
// later hops are reached through the earlier ones. A host met twice is a
// loop, refused.
func (r resolver) chain(jumps []Bastion, visited []string) ([]hop, error) {
	var out []hop
	for i, b := range jumps {
		name := hostKey(b.Address, b.Port)
		if b.Address == "" {
			return nil, fmt.Errorf("jump host %d has no address", i+1)
		}
		for _, v := range visited {
			if v == name {
				return nil, fmt.Errorf("ProxyJump loop: %s -> %s", strings.Join(visited, " -> "), name)
			}
		}
		visited = append(visited, name)
		if i == 0 {
			before, err := r.proxyJump(b.Address)
			if err != nil {
				return nil, err
			}
			prefix, err := r.chain(before, visited[:len(visited):len(visited)])
			if err != nil {
				return nil, err
			}
			out = append(out, prefix...)
		}
		h, err := r.hop(endpoint{alias: b.Address, port: b.Port, user: b.User, identityFiles: b.IdentityFiles, knownHosts: b.KnownHostsFile}, false)
		if err != nil {
			return nil, fmt.Errorf("jump host %s: %w", b.Address, err)
		}
		h.label = "bastion " + h.hostport()
		out = append(out, h)
	}
	return out, nil
}

// hostKey names a host for loop detection: the alias, and the port when
// one is given (two jump hosts may share an address).
func hostKey(alias string, port int) string {
	if port == 0 {
		return strings.ToLower(alias)
	}
	return net.JoinHostPort(strings.ToLower(alias), strconv.Itoa(port))
}

// proxyJump is ssh_config's ProxyJump for alias ("none" is no jump).
func (r resolver) proxyJump(alias string) ([]Bastion, error) {
	v := r.sc.get(alias, "ProxyJump")
	if v == "" || strings.EqualFold(v, "none") {
		return nil, nil
	}
	var out []Bastion
	for _, spec := range strings.Split(v, ",") {
		b, err := manifests.ParseJumpHost(strings.TrimSpace(spec))
		if err != nil {
			return nil, fmt.Errorf("ssh_config %s: ProxyJump for %s: %w", r.sc.Path(), alias, err)
		}
		out = append(out, Bastion{Address: b.Address, Port: b.Port, User: b.User})
	}
	return out, nil
}

// hop resolves one host. isNode says whether the cluster's node-wide user
// and port apply (to a bastion, only the cluster's user does, as before).
func (r resolver) hop(ep endpoint, isNode bool) (hop, error) {
	sc, alias := r.sc, ep.alias
	h := hop{alias: alias}

	h.address = alias
	if hn := sc.get(alias, "HostName"); hn != "" {
		h.address = strings.ReplaceAll(strings.ReplaceAll(hn, "%h", alias), "%%", "%")
	}

	h.user = first(ep.user, r.cfg.User, sc.get(alias, "User"), manifests.DefaultSSHUser)

	h.port = ep.port
	if h.port == 0 && isNode {
		h.port = r.cfg.Port
	}
	if h.port == 0 {
		if v := sc.get(alias, "Port"); v != "" {
			p, err := strconv.Atoi(v)
			if err != nil || p < 1 || p > 65535 {
				return hop{}, fmt.Errorf("ssh_config %s: Port %q for %s is not a port", sc.Path(), v, alias)
			}
			h.port = p
		}
	}
	if h.port == 0 {
		h.port = manifests.DefaultSSHPort
	}

	switch {
	case len(ep.identityFiles) > 0:
		h.identityFiles = expandAll(ep.identityFiles)
	case len(r.cfg.IdentityFiles) > 0:
		h.identityFiles = expandAll(r.cfg.IdentityFiles)
	case len(sc.getAll(alias, "IdentityFile")) > 0:
		h.identityFiles = expandAll(sc.getAll(alias, "IdentityFile"))
	default:
		h.identityFiles = r.identities()
	}
	h.identitiesOnly = strings.EqualFold(sc.get(alias, "IdentitiesOnly"), "yes")

	fromSSHConfig := false
	h.knownHosts = first(ep.knownHosts, r.cfg.KnownHostsFile)
	if h.knownHosts == "" {
		if fields := strings.Fields(sc.get(alias, "UserKnownHostsFile")); len(fields) > 0 {
			h.knownHosts, fromSSHConfig = fields[0], true
		}
	}
	if h.knownHosts == "" {
		h.knownHosts = manifests.DefaultKnownHosts
	}
	h.knownHosts = manifests.ExpandHome(h.knownHosts)
	if h.knownHosts == os.DevNull {
		where := "the manifest"
		if fromSSHConfig {
			where = "ssh_config " + sc.Path()
		}
		return hop{}, fmt.Errorf("%s sets UserKnownHostsFile %s for %s: drover never skips host-key checks; name a real known_hosts file (or leave it unset for ~/.ssh/known_hosts)", where, os.DevNull, alias)
	}

	h.acceptNew = r.cfg.AcceptNewHostKeys
	switch strict := strings.ToLower(sc.get(alias, "StrictHostKeyChecking")); strict {
	case "", "accept-new":
		// accept-new only loosens: ssh.acceptNewHostKeys decides.
	case "yes", "ask":
		h.acceptNew = false // tightens: no first-seen key is recorded
	case "no", "off":
		return hop{}, fmt.Errorf("ssh_config %s sets StrictHostKeyChecking %s for %s: drover never accepts an unchecked host key; remove it for this host, and to record first-seen keys set ssh.acceptNewHostKeys: true (a changed key is still refused)", sc.Path(), strict, alias)
	default:
		return hop{}, fmt.Errorf("ssh_config %s: StrictHostKeyChecking %q for %s is not yes, ask, accept-new or no", sc.Path(), strict, alias)
	}

	h.connectTimeout = r.cfg.ConnectTimeout
	if h.connectTimeout == 0 {
		if v := sc.get(alias, "ConnectTimeout"); v != "" {
			secs, err := strconv.Atoi(v)
			if err != nil || secs <= 0 {
				return hop{}, fmt.Errorf("ssh_config %s: ConnectTimeout %q for %s is not a positive number of seconds", sc.Path(), v, alias)
			}
			h.connectTimeout = time.Duration(secs) * time.Second
		}
	}
	if h.connectTimeout == 0 {
		h.connectTimeout = DefaultConnectTimeout
	}

	h.keepAlive = r.cfg.KeepAlive
	if v := sc.get(alias, "ServerAliveInterval"); v != "" && h.keepAlive == 0 {
		secs, err := strconv.Atoi(v)
		if err != nil || secs < 0 {
			return hop{}, fmt.Errorf("ssh_config %s: ServerAliveInterval %q for %s is not a number of seconds", sc.Path(), v, alias)
		}
		h.keepAlive = time.Duration(secs) * time.Second
		if secs == 0 {
			h.keepAlive = -1 // 0 turns them off, as in OpenSSH
		}
	}
	if h.keepAlive == 0 {
		h.keepAlive = DefaultKeepAlive
	}
	return h, nil
}

// first is the first non-empty string.
func first(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

func expandAll(paths []string) []string {
	out := make([]string, 0, len(paths))
	for _, p := range paths {
		out = append(out, manifests.ExpandHome(p))
	}
	return out
}
