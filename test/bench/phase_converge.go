package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/drover-project/drover/inventory"
	"github.com/drover-project/drover/test/harness"
)

// convergeResult is one node count of the converge table.
type convergeResult struct {
	Nodes int
	// Install from nothing, then the same manifest again with nothing to do.
	Drover, Ansible, PSSH   stats
	DroverNoop, AnsibleNoop stats
}

// convergePhase installs the big component on the first n nodes from
// nothing with each tool, wiping the nodes before every run and checking
// the result after it, then measures the no-change run.
func (b *bench) convergePhase(ctx context.Context) error {
	for _, n := range b.cfg.convergeSizes {
		if n > len(b.cluster.Nodes) {
			return fmt.Errorf("converge: %d nodes asked, %d booted", n, len(b.cluster.Nodes))
		}
		r, err := b.convergeAt(ctx, n)
		b.res.Converge = append(b.res.Converge, r)
		if err != nil {
			return err
		}
	}
	// The probe phase expects no leftovers of the big component.
	return wipe(b.cluster.Nodes[:b.cfg.maxConverge()])
}

func (b *bench) convergeAt(ctx context.Context, n int) (convergeResult, error) {
	r := convergeResult{Nodes: n}
	nodes := b.cluster.Nodes[:n]
	comp := b.bigComp
	dir := filepath.Join(b.work, fmt.Sprintf("converge-%d", n))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return r, err
	}
	b.logf("converge, %d nodes, %.1f MB artifact", n, float64(comp.Art.Size)/1e6)
	manifest := filepath.Join(dir, "cluster.yaml")
	if err := writeManifest(manifest, b.cluster, manifestSpec{Nodes: nodes, Components: []component{comp}, Concurrency: n}); err != nil {
		return r, err
	}
	dc, err := loadDrover(manifest, b.log)
	if err != nil {
		return r, err
	}
	fresh := func() error { return wipe(nodes) }
	check := func(d time.Duration, err error) (time.Duration, error) {
		if err != nil {
			return d, err
		}
		return d, verifyInstalled(nodes, nodes, comp, b.blobSize())
	}
	r.Drover = b.measure(ctx, "drover apply", policy{}, fresh, func(ctx context.Context) (time.Duration, error) { return check(dc.apply(ctx)) })
	// The last run left the cluster converged: nothing to do now.
	r.DroverNoop = b.measure(ctx, "drover apply, no change", policy{}, nil, func(ctx context.Context) (time.Duration, error) { return check(dc.apply(ctx)) })
	if !b.cfg.peers {
		return r, nil
	}

	if n > b.cfg.ansibleConvMax {
		b.logf("ansible: converge not run at %d nodes (-ansible-converge-max-nodes %d)", n, b.cfg.ansibleConvMax)
		r.Ansible.Skipped, r.AnsibleNoop.Skipped = true, true
		return r, b.psshConverge(ctx, &r, dir, nodes, comp, fresh, check)
	}
	cp, err := b.socketDir()
	if err != nil {
		return r, err
	}
	an, err := newAnsible(filepath.Join(dir, "ansible"), cp, b.books, b.cluster, nodes, n, b.cpu.procAttr())
	if err != nil {
		return r, err
	}
	defer an.close()
	vars := map[string]any{
		"root": installRoot, "component": comp.Name, "version": comp.Version,
		"artifact": comp.Art.Path, "artifact_sha256": comp.Art.SHA256, "artifact_sha1": comp.Art.SHA1,
	}
	play := func(ctx context.Context) (time.Duration, error) { return check(an.play(ctx, "converge.yml", vars)) }
	// The no-change run first, on the nodes drover just converged: they
	// are what the playbook leaves too (same cache file, version dir,
	// files and link), and an install stopped at its limit would leave
	// them half done. The issue sets no target for it; it is stopped like
	// the install, at the install's target ratio.
	var noopCheck error
	r.AnsibleNoop = b.measure(ctx, "ansible, no change", b.peerPolicy(ansibleConvergeTarget, r.DroverNoop), func() error {
		if noopCheck == nil {
			noopCheck = verifyInstalled(nodes, nodes, comp, b.blobSize())
		}
		return errors.Join(noopCheck, an.coldStart())
	}, play)
	coldFresh := func() error {
		if err := an.coldStart(); err != nil {
			return err
		}
		return fresh()
	}
	r.Ansible = b.measure(ctx, "ansible install", b.peerPolicy(ansibleConvergeTarget, r.Drover), coldFresh, play)
	if err := an.close(); err != nil {
		return r, err
	}

	return r, b.psshConverge(ctx, &r, dir, nodes, comp, fresh, check)
}

// psshConverge measures the pssh install, wiping the nodes and closing
// the ControlPersist masters before each run.
func (b *bench) psshConverge(ctx context.Context, r *convergeResult, dir string, nodes []harness.Node, comp component, fresh func() error, check func(time.Duration, error) (time.Duration, error)) error {
	cps, err := b.socketDir()
	if err != nil {
		return err
	}
	ps, err := newPSSH(filepath.Join(dir, "pssh"), cps, b.cluster, nodes, b.cpu.procAttr())
	if err != nil {
		return err
	}
	defer ps.close()
	coldFresh := func() error {
		if err := ps.coldStart(); err != nil {
			return err
		}
		return fresh()
	}
	r.PSSH = b.measure(ctx, "pssh install", policy{peer: true, stopAt: b.cfg.peerTimeout}, coldFresh, func(ctx context.Context) (time.Duration, error) {
		return check(psshInstall(ctx, ps, comp, peersConf(nodes)))
	})
	return ps.close()
}

// psshInstall is the converge as a pssh user scripts it: make the cache
// dir, parallel-scp the artifact, then one parallel-ssh that checks its
// sha256, unpacks it, writes the two files (app.conf from the address the
// node was reached on) and switches the link. The three share connections
// through ControlPersist masters (made by the first).
func psshInstall(ctx context.Context, ps *pssh, c component, peers string) (time.Duration, error) {
	start := time.Now()
	cache := installRoot + "/cache"
	if _, err := ps.ssh(ctx, "mkdir -p "+cache, ""); err != nil {
		return time.Since(start), err
	}
	remote := fmt.Sprintf("%s/%s.tar.gz", cache, c.Art.SHA256)
	if _, err := ps.scp(ctx, c.Art.Path, remote); err != nil {
		return time.Since(start), err
	}
	dir := versionDir(c)
	script := strings.Join([]string{
		"set -e",
		fmt.Sprintf("echo %s | sha256sum -c --quiet -", inventory.Quote(c.Art.SHA256+"  "+remote)),
		fmt.Sprintf("mkdir -p %s/conf %s/active", inventory.Quote(dir), installRoot),
		fmt.Sprintf("tar -xzf %s -C %s", inventory.Quote(remote), inventory.Quote(dir)),
		"set -- $SSH_CONNECTION",
		fmt.Sprintf(`printf 'address=%%s\nversion=%%s\n' "$3" %s > %s/conf/app.conf`, inventory.Quote(c.Version), inventory.Quote(dir)),
		fmt.Sprintf("printf '%%s' %s > %s/conf/peers.conf", inventory.Quote(peers), inventory.Quote(dir)),
		fmt.Sprintf("ln -sfn ../packages/%s/%s %s/active/%s", c.Name, c.Version, installRoot, c.Name),
		"echo installed",
	}, "\n")
	_, err := ps.ssh(ctx, script, "installed")
	return time.Since(start), err
}
