package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"time"
)

// probeResult is one row of the probe table: one node count, cold or warm.
type probeResult struct {
	Nodes int
	Warm  bool
	// Drover uses ssh.concurrency = the node count (as the peers get forks
	// = the node count); DroverDefault the manifest default (64), when
	// that differs.
	Drover, DroverDefault stats
	Ansible, PSSH         stats
}

// probePhase measures the probe round at each size on the first n nodes,
// which seed has converged to the probe components.
func (b *bench) probePhase(ctx context.Context) error {
	for _, n := range b.cfg.probeSizes {
		if n > len(b.cluster.Nodes) {
			return fmt.Errorf("probe: %d nodes asked, %d booted", n, len(b.cluster.Nodes))
		}
		cold, warm, err := b.probeAt(ctx, n)
		b.res.Probe = append(b.res.Probe, cold, warm)
		if err != nil {
			return err
		}
	}
	return nil
}

func (b *bench) probeAt(ctx context.Context, n int) (cold, warm probeResult, err error) {
	cold, warm = probeResult{Nodes: n}, probeResult{Nodes: n, Warm: true}
	nodes := b.cluster.Nodes[:n]
	b.logf("probe round, %d nodes", n)
	dir := filepath.Join(b.work, fmt.Sprintf("probe-%d", n))
	mk := func(name string, concurrency int) (*droverCluster, error) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		if err := writeManifest(p, b.cluster, manifestSpec{Nodes: nodes, Components: b.probeComps, Concurrency: concurrency}); err != nil {
			return nil, err
		}
		return loadDrover(p, b.log)
	}
	dc, err := mk("cluster.yaml", n)
	if err != nil {
		return cold, warm, err
	}
	cold.Drover, warm.Drover = b.droverProbe(ctx, dc, fmt.Sprintf("drover c=%d", n), n == b.cfg.maxProbe())
	switch {
	case n <= dc64Concurrency:
		// The same settings as above.
	case n > b.cfg.defConcMax:
		cold.DroverDefault.Skipped, warm.DroverDefault.Skipped = true, true
	default:
		d64, err := mk("cluster-default.yaml", 0)
		if err != nil {
			return cold, warm, err
		}
		cold.DroverDefault, warm.DroverDefault = b.droverProbe(ctx, d64, "drover c=64", false)
	}
	if !b.cfg.peers {
		return cold, warm, nil
	}
	script := peerProbeScript(b.probeComps)
	// Cold runs start with no ControlPersist master; the last cold run
	// leaves them up for the warm runs (or, if it was stopped, an untimed
	// run makes them).
	cps, err := b.socketDir()
	if err != nil {
		return cold, warm, err
	}
	ps, err := newPSSH(filepath.Join(dir, "pssh"), cps, b.cluster, nodes, b.cpu.procAttr())
	if err != nil {
		return cold, warm, err
	}
	run := func(ctx context.Context) (time.Duration, error) { return ps.ssh(ctx, script, "health app ok") }
	cold.PSSH = b.measure(ctx, "pssh cold", b.peerPolicy(psshProbeTarget, cold.Drover), ps.coldStart, run)
	warm.PSSH = b.measure(ctx, "pssh warm", b.peerPolicy(psshProbeTarget, warm.Drover), warmUp(ctx, cps, run), run)
	if err := ps.close(); err != nil {
		return cold, warm, err
	}

	if n > b.cfg.ansibleMax {
		b.logf("ansible: not run at %d nodes (-ansible-max-nodes %d)", n, b.cfg.ansibleMax)
		cold.Ansible.Skipped, warm.Ansible.Skipped = true, true
		return cold, warm, nil
	}
	cp, err := b.socketDir()
	if err != nil {
		return cold, warm, err
	}
	an, err := newAnsible(filepath.Join(dir, "ansible"), cp, b.books, b.cluster, nodes, n, b.cpu.procAttr())
	if err != nil {
		return cold, warm, err
	}
	defer an.close()
	vars := map[string]any{"probe_script": script}
	play := func(ctx context.Context) (time.Duration, error) { return an.play(ctx, "probe.yml", vars) }
	cold.Ansible = b.measure(ctx, "ansible cold", b.peerPolicy(ansibleProbeTarget, cold.Drover), an.coldStart, play)
	warm.Ansible = b.measure(ctx, "ansible warm", b.peerPolicy(ansibleProbeTarget, warm.Drover), warmUp(ctx, cp, play), play)
	return cold, warm, an.close()
}

// The ratios issue 8 sets as targets: drover at least this many times
// faster than the peer.
const (
	ansibleProbeTarget    = 10
	psshProbeTarget       = 3
	ansibleConvergeTarget = 5
)

// warmUp is the prepare of a warm measurement: when no ControlPersist
// master is up in dir (the cold runs were stopped, or none ran), one
// untimed run makes them.
func warmUp(ctx context.Context, dir string, run func(context.Context) (time.Duration, error)) func() error {
	return func() error {
		if socks, _ := filepath.Glob(filepath.Join(dir, "*")); len(socks) > 0 {
			return nil
		}
		_, err := run(ctx)
		return err
	}
}

// dc64Concurrency is the manifest default of ssh.concurrency.
const dc64Concurrency = 64

// droverProbe measures cold rounds (new pool each) and warm rounds (one
// pool, after one untimed round that connects). With profile set and a
// profile dir configured, it writes CPU profiles of both.
func (b *bench) droverProbe(ctx context.Context, dc *droverCluster, what string, profile bool) (cold, warm stats) {
	stop := b.startProfile(profile, "probe-cold")
	cold = b.measure(ctx, what+" cold", policy{}, nil, func(ctx context.Context) (time.Duration, error) { return dc.coldProbe(ctx) })
	stop()
	pool, err := dc.newPool()
	if err != nil {
		warm.Err = err.Error()
		return cold, warm
	}
	defer pool.Close()
	if err := dc.probeRound(ctx, pool); err != nil {
		b.logf("%s warm-up: %v", what, err)
	}
	stop = b.startProfile(profile, "probe-warm")
	warm = b.measure(ctx, what+" warm", policy{}, nil, func(ctx context.Context) (time.Duration, error) {
		start := time.Now()
		err := dc.probeRound(ctx, pool)
		return time.Since(start), err
	})
	stop()
	return cold, warm
}

// startProfile starts a CPU profile into the profile dir; the returned
// func stops it.
func (b *bench) startProfile(on bool, name string) func() {
	if !on || b.cfg.profileDir == "" {
		return func() {}
	}
	if err := os.MkdirAll(b.cfg.profileDir, 0o755); err != nil {
		b.logf("profile: %v", err)
		return func() {}
	}
	f, err := os.Create(filepath.Join(b.cfg.profileDir, name+".pprof"))
	if err != nil {
		b.logf("profile: %v", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.logf("profile: %v", err)
		f.Close()
		return func() {}
	}
	return func() { pprof.StopCPUProfile(); f.Close() }
}
