package probes_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/drover-project/drover/inventory"
	"github.com/drover-project/drover/manifests"
	"github.com/drover-project/drover/probes"
	"github.com/drover-project/drover/test/harness"
)

// BenchmarkProbe measures probes.ProbeAll against real OpenSSH light
// nodes (test/harness), each holding one installed component with two
// rendered files and an exec health check, as a converged node does.
// One op is one probe round over all the nodes of the sub-benchmark:
//   - warm: one pool, connections made before the timer starts (the
//     daemon's steady state);
//   - cold: a new pool per op, so every node costs a TCP connect and an
//     SSH handshake (`drover probe`, or the daemon's first round).
//
// Besides ns/op and allocs/op (per round) it reports ns/node and
// allocs/probe. The numbers go into docs/BENCHMARKS.md (make bench).
func BenchmarkProbe(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("BenchmarkProbe needs root: it boots light sshd nodes (test/harness)")
	}
	if testing.Short() {
		b.Skip("BenchmarkProbe boots 100 sshd nodes; skipped in -short")
	}
	sizes := []int{1, 10, 100}
	cluster, err := harness.BootLight(context.Background(), harness.Options{N: sizes[len(sizes)-1], Name: "pbench", Logf: b.Logf})
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		if err := cluster.Close(); err != nil {
			b.Error(err)
		}
	}()
	cfg := inventory.Config{
		IdentityFiles:  []string{cluster.IdentityFile},
		KnownHostsFile: cluster.KnownHostsFile,
		// A hundred handshakes at once on a small, shared machine can take
		// well over 10 s; a timeout here would fail the benchmark, not
		// measure it.
		ConnectTimeout: time.Minute,
		Concurrency:    sizes[len(sizes)-1],
	}
	req := benchRequest()
	var targets []inventory.Target
	reqs := map[string]probes.Request{}
	for _, n := range cluster.Nodes {
		seedBenchNode(b, n.Root)
		targets = append(targets, inventory.Target{Name: n.Name, Address: n.Address, Port: n.Port, User: cluster.User})
		reqs[n.Name] = req
	}
	b.Setenv("SSH_AUTH_SOCK", "")
	for _, n := range sizes {
		ts := targets[:n]
		b.Run(fmt.Sprintf("nodes=%d/warm", n), func(b *testing.B) {
			pool := newBenchPool(b, cfg)
			defer pool.Close()
			probeRound(b, pool, ts, reqs) // connects
			benchRounds(b, n, func() { probeRound(b, pool, ts, reqs) })
		})
		b.Run(fmt.Sprintf("nodes=%d/cold", n), func(b *testing.B) {
			benchRounds(b, n, func() {
				pool := newBenchPool(b, cfg)
				probeRound(b, pool, ts, reqs)
				pool.Close()
			})
		})
	}
}

// benchRounds times round b.N times and reports per-node figures.
func benchRounds(b *testing.B, nodes int, round func()) {
	b.ReportAllocs()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	cpuBefore := processCPU(b)
	for b.Loop() {
		round()
	}
	cpu := processCPU(b) - cpuBefore
	runtime.ReadMemStats(&after)
	probesDone := float64(b.N * nodes)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/probesDone, "ns/node")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/probesDone, "allocs/probe")
	// What the daemon's steady-state target is about: the client's CPU
	// (user+system, every thread, the scheduler's idle work included) per
	// probe. The nodes' sshd and shells are other processes.
	b.ReportMetric(float64(cpu.Nanoseconds())/probesDone, "cpu-ns/probe")
}

// processCPU is the CPU time this process has used so far.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func newBenchPool(b *testing.B, cfg inventory.Config) *inventory.Pool {
	pool, err := inventory.NewPool(cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	return pool
}

// probeRound probes every target and fails the benchmark unless each
// probe found the installed component: a fast failure is not a result.
func probeRound(b *testing.B, pool *inventory.Pool, ts []inventory.Target, reqs map[string]probes.Request) {
	obs := probes.ProbeAll(context.Background(), pool, ts, reqs, len(ts))
	for _, t := range ts {
		o := obs[t.Name]
		if !o.Known {
			b.Fatalf("%s: %s: %s", t.Name, o.Reason, o.Error)
		}
		c := o.Components["app"]
		if c == nil || c.Receipt == nil || c.Receipt.Version != "1.0" || c.Active != "1.0" || len(c.Files) != 2 || !c.Health.OK {
			b.Fatalf("%s: app = %+v", t.Name, c)
		}
	}
}

const benchRoot = harness.DefaultInstallRoot

func benchRequest() probes.Request {
	dir := filepath.Join(benchRoot, "packages/app/1.0")
	return probes.Request{InstallRoot: benchRoot, Components: []probes.Want{{
		Name:    "app",
		Version: "1.0",
		Files:   []string{filepath.Join(dir, "conf/app.conf"), filepath.Join(dir, "conf/peers.conf")},
		Health:  &manifests.Health{Exec: &manifests.ExecCheck{Command: []string{filepath.Join(benchRoot, "active/app/bin/app")}}, Timeout: "5s"},
	}}}
}

// seedBenchNode lays out, under a light node's private install root (root
// on the host), what an install of app 1.0 leaves.
func seedBenchNode(b *testing.B, root string) {
	rcpt, err := json.Marshal(probes.Receipt{Component: "app", Version: "1.0", ConfigHash: "bench", Generation: "bench", Time: time.Unix(1_700_000_000, 0).UTC()})
	if err != nil {
		b.Fatal(err)
	}
	files := map[string]string{
		"receipts/app.json":                string(rcpt) + "\n",
		"packages/app/1.0/.complete":       "none\n",
		"packages/app/1.0/bin/app":         "#!/bin/sh\nexit 0\n",
		"packages/app/1.0/conf/app.conf":   "address=127.0.0.1\n",
		"packages/app/1.0/conf/peers.conf": "server.0=127.0.0.1:2888:3888\n",
	}
	for p, content := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			b.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if filepath.Base(p) == "app" {
			mode = 0o755
		}
		if err := os.WriteFile(full, []byte(content), mode); err != nil {
			b.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(root, "active"), 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.Symlink("../packages/app/1.0", filepath.Join(root, "active/app")); err != nil {
		b.Fatal(err)
	}
}
