package wizard

import (
	"context"
	"sync"

	"go.uber.org/zap"
	"golang.org/x/crypto/ssh"

	"github.com/drover-project/drover/inventory"
	"github.com/drover-project/drover/manifests"
)

// NodeReport is preflight's answer for one node.
type NodeReport struct {
	Name     string   `json:"name"`
	Address  string   `json:"address"`
	HostPort string   `json:"hostport"`
	HostKey  *KeyInfo `json:"hostKey,omitempty"`
	Checks   []Check  `json:"checks"`
	Facts    *Facts   `json:"facts,omitempty"`
}

// KeyInfo is the host key a node presented, for the operator to confirm,
// or a jump host on its way did (HostPort says whose).
type KeyInfo struct {
	HostPort    string   `json:"hostport"`
	Type        string   `json:"type"`
	Fingerprint string   `json:"fingerprint"` // SHA256:...
	Status      string   `json:"status"`      // known, unknown, changed, revoked
	Known       []string `json:"known,omitempty"`
}

// PreflightReport is every node's report, in the order the nodes were given.
type PreflightReport struct {
	Nodes  []NodeReport   `json:"nodes"`
	Counts map[string]int `json:"counts"` // checks by status
}

// preflightParallel bounds the nodes visited at once.
const preflightParallel = 32

// preflight visits every node of the setup at once and checks what the
// chosen components need there. The host keys seen are remembered so that
// accepting one writes exactly the key that was shown.
func (w *Wizard) preflight(ctx context.Context, s Setup) PreflightReport {
	c, _ := w.build(s) // problems are review's business; preflight checks the nodes
	c.SetDefaults()
	sizes := map[string]int64{}
	for _, cs := range s.Components {
		if a, err := w.artifacts.find(cs.Artifact); err == nil {
			sizes[cs.Name] = a.Size
		}
	}
	script := factsScript(c.Spec.InstallRoot)
	pool, targets, poolErr := w.preflightPool(c)
	if pool != nil {
		defer pool.Close()
	}

	report := PreflightReport{Nodes: make([]NodeReport, len(targets)), Counts: map[string]int{}}
	sem := make(chan struct{}, preflightParallel)
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			node := &c.Spec.Nodes[i]
			report.Nodes[i] = w.checkNode(ctx, pool, poolErr, t, node, needsOf(c, node, sizes), script)
		})
	}
	wg.Wait()
	for _, n := range report.Nodes {
		for _, ch := range n.Checks {
			report.Counts[ch.Status]++
		}
	}
	return report
}

func (w *Wizard) checkNode(ctx context.Context, pool *inventory.Pool, poolErr error, t inventory.Target, node *manifests.Node, n need, script string) NodeReport {
	ctx, cancel := context.WithTimeout(ctx, w.opts.ConnectTimeout+w.opts.FactsTimeout)
	defer cancel()
	var v visit
	if poolErr == nil {
		var err error
		if t, err = pool.Resolved(t); err != nil {
			poolErr = err
		}
	}
	if poolErr != nil {
		v.connErr = poolErr
	} else {
		v = w.visitNode(ctx, pool, t, script)
	}
	hostport := t.HostPort()
	r := NodeReport{Name: node.Name, Address: node.Address, HostPort: hostport}
	if v.key != nil {
		w.rememberKey(v.keyHostPort, v.key)
		r.HostKey = &KeyInfo{HostPort: v.keyHostPort, Type: v.key.Type(), Fingerprint: ssh.FingerprintSHA256(v.key), Status: v.keyStatus, Known: v.knownKeys}
	}
	r.Checks = append(r.Checks, reachableCheck(v, hostport), hostKeyCheck(v, hostport))
	login, ok := loginCheck(v, t.User)
	r.Checks = append(r.Checks, login)
	rest := []string{"os", "systemd", "disk", "ports", "clock"}
	if !ok {
		for _, name := range rest {
			r.Checks = append(r.Checks, Check{Name: name, Status: Skip, Message: "needs a login"})
		}
		return r
	}
	f, err := parseFacts(string(v.stdout))
	if err != nil {
		w.log.Warn("preflight output not understood", zap.String("node", t.Name), zap.Error(err))
		r.Checks = append(r.Checks, Check{Name: "facts", Status: Fail, Message: "the node's answer was not understood: " + err.Error()})
		for _, name := range rest {
			r.Checks = append(r.Checks, Check{Name: name, Status: Skip, Message: "needs the facts"})
		}
		return r
	}
	r.Facts = &f
	r.Checks = append(r.Checks, osCheck(f), systemdCheck(f, n), diskCheck(f, n), portsCheck(f, n), clockCheck(v.clock))
	return r
}

// rememberKey keeps the last key each host presented, for accept.
func (w *Wizard) rememberKey(hostport string, key ssh.PublicKey) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.seen) >= maxSeenKeys {
		clear(w.seen) // a bound, not a cache policy: run preflight again
	}
	w.seen[hostport] = key
}

// maxSeenKeys bounds the host keys kept between preflight and accept.
const maxSeenKeys = 10000

func (w *Wizard) seenKey(hostport string) (ssh.PublicKey, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	k, ok := w.seen[hostport]
	return k, ok
}

// preflightPool is the SSH pool preflight visits the nodes with: the
// daemon's transport (ssh_config, jump hosts, per-node keys), checking
// against the wizard's known_hosts and never recording a key itself (the
// operator accepts each one). The identity file given in the form is
// each node's, so a missing one fails that node's login with its name
// after its host key is shown, not the whole preflight.
func (w *Wizard) preflightPool(c *manifests.Cluster) (*inventory.Pool, []inventory.Target, error) {
	targets := inventory.TargetsFromManifest(c)
	cfg, err := inventory.PoolConfig(c.Spec.SSH, w.opts.SSHConfigFile, w.log.Named("ssh"))
	if err != nil {
		return nil, targets, err
	}
	ownKeys := func(ids *[]string) {
		if *ids == nil {
			*ids = cfg.IdentityFiles
		}
	}
	for i := range targets {
		ownKeys(&targets[i].IdentityFiles)
		for j := range targets[i].Jump {
			ownKeys(&targets[i].Jump[j].IdentityFiles)
		}
	}
	if cfg.Bastion != nil {
		ownKeys(&cfg.Bastion.IdentityFiles)
	}
	for j := range cfg.Jump {
		ownKeys(&cfg.Jump[j].IdentityFiles)
	}
	cfg.IdentityFiles = nil
	cfg.KnownHostsFile = w.knownHosts
	cfg.AcceptNewHostKeys = false
	cfg.ConnectTimeout = w.opts.ConnectTimeout
	cfg.Concurrency = preflightParallel
	cfg.IdleTimeout = -1
	cfg.Dial = w.opts.Dial
	pool, err := inventory.NewPool(cfg, w.log.Named("ssh"))
	return pool, targets, err
}
