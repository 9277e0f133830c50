package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// steadyResult is the daemon watching a converged cluster.
type steadyResult struct {
	Nodes    int
	Interval time.Duration
	// Startup: from exec until every node was probed and converged.
	StartupWall time.Duration
	StartupCPU  time.Duration
	// Window is the measured steady state after startup.
	Window          time.Duration
	CPU             time.Duration // CPU time used in the window
	CPUPerMin       time.Duration
	Probes          float64 // probes in the window (drover_probe_duration_seconds_count)
	PeakRSS, EndRSS int64
	Samples         []steadySample
}

// steadySample is one point of the window, for the timeline.
type steadySample struct {
	At  time.Duration
	CPU time.Duration
	RSS int64
}

// steadyPhase runs the daemon binary over the first n nodes (converged by
// seed) at the default probe interval and measures what it costs.
func (b *bench) steadyPhase(ctx context.Context) error {
	n := b.cfg.steadyNodes
	if n > len(b.cluster.Nodes) {
		return fmt.Errorf("steady: %d nodes asked, %d booted", n, len(b.cluster.Nodes))
	}
	r := &steadyResult{Nodes: n, Interval: 30 * time.Second}
	b.res.Steady = r
	dir := filepath.Join(b.work, "steady")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	manifest := filepath.Join(dir, "cluster.yaml")
	if err := writeManifest(manifest, b.cluster, manifestSpec{Nodes: b.cluster.Nodes[:n], Components: b.probeComps, ProbeInterval: r.Interval}); err != nil {
		return err
	}
	b.logf("steady state: daemon over %d nodes, probe interval %s, window %s", n, r.Interval, b.cfg.steadyFor)
	start := time.Now()
	var extra []string
	if b.cfg.profileDir != "" {
		extra = append(extra, "--pprof")
	}
	d, err := startDaemon(ctx, b.droverBin, manifest, dir, filepath.Join(dir, "daemon.log"), extra...)
	if err != nil {
		return err
	}
	defer d.stop()
	if err := d.waitConverged(ctx, n, b.probeVersions(), 2*time.Second, 5*time.Minute); err != nil {
		return err
	}
	r.StartupWall = time.Since(start)
	if r.StartupCPU, err = d.cpu(); err != nil {
		return err
	}
	b.logf("daemon converged on %d nodes in %s, %s CPU", n, fmtDur(r.StartupWall), fmtDur(r.StartupCPU))

	probes0, err := probeCount(ctx, d)
	if err != nil {
		return err
	}
	cpu0, err := d.cpu()
	if err != nil {
		return err
	}
	w0 := time.Now()
	// Only /proc is read during the window: asking the daemon anything
	// would cost it CPU that the measurement would count.
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	for done := false; !done; {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-d.exited:
			return fmt.Errorf("daemon exited: %v\n%s", d.err, fileTail(d.logPath, 2000))
		case <-tick.C:
			c, _ := d.cpu()
			_, rss, _ := d.memory()
			r.Samples = append(r.Samples, steadySample{At: time.Since(w0), CPU: c - cpu0, RSS: rss})
			done = time.Since(w0) >= b.cfg.steadyFor
		}
	}
	cpu1, err := d.cpu()
	if err != nil {
		return err
	}
	r.Window = time.Since(w0)
	r.CPU = cpu1 - cpu0
	r.CPUPerMin = time.Duration(float64(r.CPU) / r.Window.Minutes())
	if r.PeakRSS, r.EndRSS, err = d.memory(); err != nil {
		return err
	}
	probes1, err := probeCount(ctx, d)
	if err != nil {
		return err
	}
	r.Probes = probes1 - probes0
	b.logf("steady: %s CPU in %s (%s/min, %.2f%% of a core), peak RSS %.1f MB, %0.f probes",
		fmtDur(r.CPU), fmtDur(r.Window), fmtDur(r.CPUPerMin), r.cpuPercent(), float64(r.PeakRSS)/1e6, r.Probes)
	// Still converged at the end: the window measured a healthy daemon.
	if err := d.waitConverged(ctx, n, b.probeVersions(), time.Second, time.Minute); err != nil {
		return err
	}
	if b.cfg.profileDir != "" {
		if err := b.profileDaemon(ctx, d, b.cfg.steadyFor); err != nil {
			return err
		}
	}
	return d.stop()
}

// nominalPercent is cpuPercent scaled to one probe per node per interval,
// the rate the daemon aims at, when the nodes answered fewer probes than
// that (on shared CPUs a probe waits for its node); 0 when unknown.
func (r *steadyResult) nominalPercent() float64 {
	want := r.Window.Seconds() / r.Interval.Seconds() * float64(r.Nodes)
	if r.Probes <= 0 || want <= 0 {
		return 0
	}
	return r.cpuPercent() * want / r.Probes
}

func (r *steadyResult) cpuPercent() float64 {
	if r.Window <= 0 {
		return 0
	}
	return 100 * r.CPU.Seconds() / r.Window.Seconds()
}

// probeCount reads drover_probe_duration_seconds_count from /metrics.
func probeCount(ctx context.Context, d *daemonProc) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.base+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := d.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "drover_probe_duration_seconds_count "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("metrics: no drover_probe_duration_seconds_count")
}

// reactionResult is the time from a manifest write to the first action.
type reactionResult struct {
	Nodes int
	// Total: write to the first action start on any node. Load: write to
	// the daemon's "manifest loaded" log line (file watch + debounce +
	// parse + compile); the rest is queueing, the probe and the diff.
	Total, Load stats
}

// reactionPhase runs the daemon over the first n nodes (converged by
// seed), then writes a new version of the app component again and again,
// each time measuring when the first upgrade started and waiting until
// every node has it.
func (b *bench) reactionPhase(ctx context.Context) error {
	n := b.cfg.reactionNodes
	r := &reactionResult{Nodes: n}
	b.res.Reaction = r
	dir := filepath.Join(b.work, "reaction")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	manifest := filepath.Join(dir, "cluster.yaml")
	nodes := b.cluster.Nodes[:n]
	spec := manifestSpec{Nodes: nodes, Components: b.probeComps, ProbeInterval: 30 * time.Second}
	if err := writeManifest(manifest, b.cluster, spec); err != nil {
		return err
	}
	b.logf("reaction: daemon over %d nodes", n)
	d, err := startDaemon(ctx, b.droverBin, manifest, dir, filepath.Join(dir, "daemon.log"))
	if err != nil {
		return err
	}
	defer d.stop()
	if err := d.waitConverged(ctx, n, b.probeVersions(), 200*time.Millisecond, 2*time.Minute); err != nil {
		return err
	}
	var totals, loads []time.Duration
	for i := range b.cfg.reactionRuns {
		version := fmt.Sprintf("1.%d", i+1)
		comps := append([]component(nil), b.probeComps...)
		comps[0].Version = version
		spec.Components = comps
		total, load, err := b.reactOnce(ctx, d, manifest, spec, version)
		if err != nil {
			r.Total.Failed++
			r.Total.Err = err.Error()
			b.logf("reaction run %d: %v", i+1, err)
			continue
		}
		b.logf("reaction run %d/%d: %s (manifest loaded after %s)", i+1, b.cfg.reactionRuns, fmtDur(total), fmtDur(load))
		totals = append(totals, total)
		loads = append(loads, load)
		want := b.probeVersions()
		want[comps[0].Name] = version
		if err := d.waitConverged(ctx, n, want, 200*time.Millisecond, 2*time.Minute); err != nil {
			return err
		}
		// Let the cluster sit still a moment, as between two real edits.
		time.Sleep(time.Second)
	}
	failed, msg := r.Total.Failed, r.Total.Err
	r.Total, r.Load = summarise(totals), summarise(loads)
	r.Total.Failed, r.Total.Err = failed, msg
	return d.stop()
}

// reactOnce writes the manifest and returns how long until the first
// upgrade to version started. The daemon records each action with its end
// time and duration, both from its own clock: start = end - duration, so
// the status polling interval adds no error; the write time is taken just
// before rename(2) makes the new manifest visible.
func (b *bench) reactOnce(ctx context.Context, d *daemonProc, manifest string, spec manifestSpec, version string) (total, load time.Duration, err error) {
	tmp := filepath.Join(filepath.Dir(manifest), "."+filepath.Base(manifest)+".new")
	if err := writeManifest(tmp, b.cluster, spec); err != nil {
		return 0, 0, err
	}
	t0 := time.Now()
	if err := os.Rename(tmp, manifest); err != nil {
		return 0, 0, err
	}
	deadline := t0.Add(time.Minute)
	for time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		st, err := d.status(ctx)
		if err != nil {
			continue
		}
		// Wait for every node's record: the first to finish need not be
		// the first to start.
		var first time.Time
		seen := 0
		for _, n := range st.Nodes {
			for _, a := range n.History {
				if a.Version == version && a.Component == spec.Components[0].Name {
					seen++
					if s := a.Time.Add(-a.Duration); first.IsZero() || s.Before(first) {
						first = s
					}
					break
				}
			}
		}
		if seen < len(spec.Nodes) {
			continue
		}
		ev, ok := d.loadedAfter(t0)
		if !ok {
			return 0, 0, fmt.Errorf("no \"manifest loaded\" log line after the write")
		}
		return first.Sub(t0), ev.Time.Sub(t0), nil
	}
	return 0, 0, fmt.Errorf("no action for version %s within a minute", version)
}
