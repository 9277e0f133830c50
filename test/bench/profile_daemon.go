package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sync"
	"time"

	"github.com/drover-project/drover/metrics"
	"github.com/drover-project/drover/reconciler"
)

// profileDaemon runs, in this process, the loop `drover daemon` runs (the
// controller with its metrics observer over a pool, as cmd/drover/daemon.go
// wires them) over the steady-state manifest, and writes a CPU profile of
// window of its steady state, plus a heap profile: the daemon binary
// serves no pprof, and this is the same code.
func (b *bench) profileDaemon(ctx context.Context, manifest string, nodes int, window time.Duration) error {
	dc, err := loadDrover(manifest, b.log)
	if err != nil {
		return err
	}
	pool, err := dc.newPool()
	if err != nil {
		return err
	}
	defer pool.Close()
	d := dc.desired
	ctrl := reconciler.NewController(reconciler.ControllerOptions{
		Runner:   pool,
		Executor: &reconciler.Executor{Runner: pool, InstallRoot: d.InstallRoot, Generation: d.Generation, Log: b.log},
		Log:      b.log,
		Workers:  dc.concurrency(),
	})
	m := metrics.New(metrics.NewRegistry(), ctrl.Status, pool.Connections)
	ctrl.Observer = m
	ctrl.SetDesired(d)
	m.SetProbeInterval(d.ProbeInterval)
	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { ctrl.Run(rctx, 10*time.Second) })
	defer func() { cancel(); wg.Wait() }()

	deadline := time.Now().Add(5 * time.Minute)
	for {
		st := ctrl.Status()
		if convergedText(st, nodes, b.probeVersions()) == "" {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("in-process daemon: not converged: %s", convergedText(st, nodes, b.probeVersions()))
		}
		time.Sleep(time.Second)
	}
	if err := os.MkdirAll(b.cfg.profileDir, 0o755); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(b.cfg.profileDir, "daemon-steady.pprof"))
	if err != nil {
		return err
	}
	defer f.Close()
	var ru0, ru1 time.Duration
	ru0 = b.cpu.snap().self
	if err := pprof.StartCPUProfile(f); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case <-time.After(window):
	}
	pprof.StopCPUProfile()
	ru1 = b.cpu.snap().self
	b.logf("in-process daemon loop: %s CPU in %s (%.2f%% of a core); profile in %s", fmtDur(ru1-ru0), window, 100*(ru1-ru0).Seconds()/window.Seconds(), b.cfg.profileDir)
	runtime.GC()
	h, err := os.Create(filepath.Join(b.cfg.profileDir, "daemon-heap.pprof"))
	if err != nil {
		return err
	}
	defer h.Close()
	return pprof.WriteHeapProfile(h)
}
