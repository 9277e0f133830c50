package wizard

import (
	"cmp"
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

// KeyInfo is the host key a node presented, for the operator to confirm.
type KeyInfo struct {
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
	auth, closeAuth, authErr := loadAuth(manifests.ExpandHome(firstIdentity(c)))
	defer closeAuth()
	script := factsScript(c.Spec.InstallRoot)
	targets := inventory.TargetsFromManifest(c)
	// Stopgap until preflight dials through inventory's route resolution:
	// a node's target leaves the cluster's user and port to that resolution.
	for i := range targets {
		if targets[i].Port == 0 {
			targets[i].Port = cmp.Or(c.Spec.SSH.Port, manifests.DefaultSSHPort)
		}
		if targets[i].User == "" {
			targets[i].User = cmp.Or(c.Spec.SSH.User, manifests.DefaultSSHUser)
		}
	}

	report := PreflightReport{Nodes: make([]NodeReport, len(targets)), Counts: map[string]int{}}
	sem := make(chan struct{}, preflightParallel)
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			node := &c.Spec.Nodes[i]
			report.Nodes[i] = w.checkNode(ctx, t, node, needsOf(c, node, sizes), auth, authErr, script)
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

func (w *Wizard) checkNode(ctx context.Context, t inventory.Target, node *manifests.Node, n need, auth []ssh.AuthMethod, authErr error, script string) NodeReport {
	ctx, cancel := context.WithTimeout(ctx, w.opts.ConnectTimeout+w.opts.FactsTimeout)
	defer cancel()
	hostport := t.HostPort()
	r := NodeReport{Name: t.Name, Address: t.Address, HostPort: hostport}
	v := w.visitNode(ctx, t, auth, script)
	if v.key != nil {
		w.rememberKey(hostport, v.key)
		r.HostKey = &KeyInfo{Type: v.key.Type(), Fingerprint: ssh.FingerprintSHA256(v.key), Status: v.keyStatus, Known: v.knownKeys}
	}
	r.Checks = append(r.Checks, reachableCheck(v, hostport), hostKeyCheck(v, hostport))
	login, ok := loginCheck(v, t.User, authErr)
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

func firstIdentity(c *manifests.Cluster) string {
	if len(c.Spec.SSH.IdentityFiles) == 0 {
		return ""
	}
	return c.Spec.SSH.IdentityFiles[0]
}
