// Command bench is `make bench`: it boots light test nodes (real OpenSSH
// sshd on loopback addresses, test/harness) and measures drover against
// Ansible and parallel-ssh on the same nodes in the same run: the probe
// round (cold and warm), a converge from nothing and its no-change rerun,
// the daemon's steady-state cost and its reaction time to a manifest
// edit; then it runs the Go benchmarks of the probe path. It writes
// docs/BENCHMARKS.md, which is never edited by hand.
//
//	go run ./test/bench -out docs/BENCHMARKS.md      # the full run (~55 min on a busy 2-core machine)
//	go run ./test/bench -quick -out /tmp/b.md         # a smaller one (~20 min)
//
// Most of the full run is the peers at 100 and 500 nodes; Ansible's
// converge of 100 nodes alone runs until it has taken 5x drover's time
// (-settle), which is what its target needs to be settled.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/drover-project/drover/test/harness"
)

func main() { os.Exit(run()) }

// bench is one run: the nodes, the artifacts, the results.
type bench struct {
	cfg        config
	log        *zap.Logger // drover's own logs: discarded (the CLI shows warnings only)
	work       string
	books      string
	sockets    string // short dir for ControlPath dirs
	droverBin  string
	cluster    *harness.Cluster
	cpu        *cpuMeter // nil when cgroups cannot be read: no CPU figures
	probeComps []component
	bigComp    component
	res        *results
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s bench: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// policy is how one measurement is run.
type policy struct {
	// peer marks a peer's measurement: it runs fewer times, down to once,
	// when its runs would overrun -peer-budget.
	peer bool
	// stopAt stops a run that has taken this long (0: never); the run is
	// kept as a lower bound and not repeated.
	stopAt time.Duration
}

// peerPolicy is the policy of a peer's measurement compared with drover's
// (already measured) under a target ratio of issue 8 (0: none). Once a
// peer's run has taken target × drover's median, the target is met
// whatever the run's end would be, so it is stopped there (a lower bound),
// but never before -settle-floor, so that cheap runs give their figure;
// -peer-timeout caps every peer run.
func (b *bench) peerPolicy(target float64, drover stats) policy {
	p := policy{peer: true, stopAt: b.cfg.peerTimeout}
	if target > 0 && b.cfg.settle && drover.ok() {
		settle := max(time.Duration(target*float64(drover.Median)), b.cfg.settleFloor)
		if p.stopAt <= 0 || settle < p.stopAt {
			p.stopAt = settle
		}
	}
	return p
}

// measure runs fn fastRuns times, or slowRuns times when its first run
// took slowAfter or more (verySlowRuns after verySlowAfter), with prepare
// (untimed) before each run. A peer's measurement may run fewer times,
// down to once, when that many runs would overrun peerBudget: on a small
// machine one Ansible run over a hundred nodes takes many minutes. A run
// is stopped at pol.stopAt and kept as a lower bound.
func (b *bench) measure(ctx context.Context, what string, pol policy, prepare func() error, fn func(context.Context) (time.Duration, error)) stats {
	var ds []time.Duration
	var costs []cpuCost
	var st stats
	runs := b.cfg.fastRuns
	for i := 0; i < runs; i++ {
		if prepare != nil {
			if err := prepare(); err != nil {
				st.Failed++
				st.Err = firstNonEmpty(st.Err, "prepare: "+err.Error())
				b.logf("%s: run %d: prepare failed: %v", what, i+1, err)
				if ctx.Err() != nil {
					break
				}
				continue
			}
		}
		rctx, cancel := ctx, context.CancelFunc(func() {})
		if pol.stopAt > 0 {
			rctx, cancel = context.WithTimeout(ctx, pol.stopAt)
		}
		s0 := b.cpu.snap()
		d, err := fn(rctx)
		cost := s0.to(b.cpu.snap())
		stopped := err != nil && rctx.Err() != nil && ctx.Err() == nil
		cancel()
		if stopped {
			// The run would take longer than this: a lower bound, and no
			// point in running it again.
			st.Exceeded = d
			b.logf("%s: run %d stopped after %s (limit %s)", what, i+1, fmtDur(d), fmtDur(pol.stopAt))
			break
		}
		if i == 0 {
			switch {
			case d >= b.cfg.verySlowAfter:
				runs = b.cfg.verySlowRuns
			case d >= b.cfg.slowAfter:
				runs = b.cfg.slowRuns
			}
			st.Planned = runs
			if pol.peer && b.cfg.peerBudget > 0 && d > 0 {
				runs = max(1, min(runs, int(b.cfg.peerBudget/d)))
			}
		}
		if err != nil {
			st.Failed++
			st.Err = firstNonEmpty(st.Err, err.Error())
			b.logf("%s: run %d/%d failed after %s: %v", what, i+1, runs, fmtDur(d), err)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		b.logf("%s: run %d/%d: %s (CPU %s client + %s nodes)", what, i+1, runs, fmtDur(d), fmtDur(cost.Client), fmtDur(cost.Nodes))
		ds = append(ds, d)
		costs = append(costs, cost)
	}
	out := summarise(ds)
	out.Failed, out.Err, out.Planned, out.Exceeded, out.StopAt = st.Failed, st.Err, st.Planned, st.Exceeded, pol.stopAt
	if b.cpu != nil {
		out.CPU = medianCPU(costs)
	}
	return out
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func run() int {
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 2
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "bench: must run as root: the light test nodes are sshd in mount namespaces (test/harness)")
		return 1
	}
	if cfg.fromResults != "" {
		b := &bench{cfg: cfg, res: &results{}}
		if err := b.loadResults(cfg.fromResults); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			return 1
		}
		if err := b.writeReport(); err != nil {
			fmt.Fprintln(os.Stderr, "bench: report:", err)
			return 1
		}
		return 0
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b := &bench{cfg: cfg, log: zap.NewNop(), res: &results{Started: time.Now(), Run: runInfo{
		CommandLine: cfg.commandLine, FastRuns: cfg.fastRuns, SlowRuns: cfg.slowRuns, SlowAfter: cfg.slowAfter,
		VerySlowRuns: cfg.verySlowRuns, VerySlowAfter: cfg.verySlowAfter, Settle: cfg.settle, SettleFloor: cfg.settleFloor,
		PeerBudget: cfg.peerBudget, PeerTimeout: cfg.peerTimeout, ArtifactMB: cfg.artifactMB, MaxProbe: cfg.maxProbe(), AnsibleMax: cfg.ansibleMax, AnsibleConvMax: cfg.ansibleConvMax,
		DefaultConcMax: cfg.defConcMax,
	}}}
	if cfg.verbose {
		if l, err := zap.NewDevelopment(); err == nil {
			b.log = l
		}
	}
	if err := b.run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		b.res.Errors = append(b.res.Errors, err.Error())
		if werr := errors.Join(b.saveResults(), b.writeReport()); werr != nil {
			fmt.Fprintln(os.Stderr, "bench: report:", werr)
		}
		return 1
	}
	if err := errors.Join(b.saveResults(), b.writeReport()); err != nil {
		fmt.Fprintln(os.Stderr, "bench: report:", err)
		return 1
	}
	b.logf("wrote %s (raw results: %s)", cfg.out, cfg.resultsOut)
	return 0
}

func (b *bench) run(ctx context.Context) (err error) {
	defer func() { b.res.Took = time.Since(b.res.Started) }()
	// Hundreds of connections from the bench, and as many ssh clients of
	// the peers: the default soft limit (1024 here) is too small.
	if err := raiseNofile(1 << 16); err != nil {
		return err
	}
	if b.books, err = filepath.Abs("test/bench/playbooks"); err != nil {
		return err
	}
	if _, err := os.Stat(b.books); err != nil {
		return fmt.Errorf("run from the repository root: %w", err)
	}
	if b.work, err = os.MkdirTemp("", "drover-bench-"); err != nil {
		return err
	}
	if b.cfg.keepWork {
		b.logf("work dir: %s (kept)", b.work)
	} else {
		defer os.RemoveAll(b.work)
	}
	// ControlPath sockets need short paths (108 bytes with OpenSSH's
	// 17-byte temp suffix and a 40-byte %C): they get their own short dir.
	if b.sockets, err = os.MkdirTemp("/tmp", "dbs"); err != nil {
		return err
	}
	defer os.RemoveAll(b.sockets)
	b.res.Machine = describeMachine(ctx)
	if b.cfg.peers {
		for _, tool := range []string{"ansible-playbook", "parallel-ssh", "parallel-scp"} {
			if _, err := exec.LookPath(tool); err != nil {
				return fmt.Errorf("%s not found: run ./test/deps.sh ansible pssh (or make bench), or pass -no-peers", tool)
			}
		}
	}
	if b.droverBin, err = b.buildDrover(ctx); err != nil {
		return err
	}
	if err := b.makeArtifacts(); err != nil {
		return err
	}
	if n := b.nodesNeeded(); n > 0 {
		start := time.Now()
		b.cluster, err = harness.BootLight(ctx, harness.Options{N: n, Name: "bench", Logf: b.logf, ConnectTimeout: connectTimeout})
		if err != nil {
			return err
		}
		b.res.Boot = time.Since(start)
		b.res.Nodes = n
		defer func() {
			if cerr := b.cluster.Close(); cerr != nil {
				err = errors.Join(err, cerr)
			}
		}()
		if b.cpu, err = newCPUMeter(b.cluster.Name); err != nil {
			b.logf("no CPU figures: %v", err)
			b.cpu = nil
		}
		b.res.Run.CPUMeasured = b.cpu != nil
		defer func() {
			if cerr := b.cpu.close(); cerr != nil {
				err = errors.Join(err, cerr)
			}
		}()
	}
	phases := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"converge", b.convergePhase},
		{"seed", b.seedPhase},
		{"probe", b.probePhase},
		{"steady", b.steadyPhase},
		{"reaction", b.reactionPhase},
	}
	for _, p := range phases {
		if p.name == "seed" {
			if !b.cfg.phases["probe"] && !b.cfg.phases["steady"] && !b.cfg.phases["reaction"] {
				continue
			}
		} else if !b.cfg.phases[p.name] {
			continue
		}
		start, load := time.Now(), loadAvg()
		err := p.fn(ctx)
		b.res.Load = append(b.res.Load, phaseLoad{Phase: p.name, Start: load, End: loadAvg()})
		if err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
		b.logf("phase %s done in %s", p.name, fmtDur(time.Since(start)))
	}
	if b.cluster != nil {
		// The Go benchmarks boot their own nodes: free the machine first.
		if err := b.cluster.Close(); err != nil {
			return err
		}
	}
	if b.cfg.phases["gobench"] {
		load := loadAvg()
		err := b.goBenchPhase(ctx)
		b.res.Load = append(b.res.Load, phaseLoad{Phase: "gobench", Start: load, End: loadAvg()})
		if err != nil {
			return fmt.Errorf("gobench: %w", err)
		}
	}
	return nil
}

// nodesNeeded is the size of the one cluster every phase uses a prefix of.
func (b *bench) nodesNeeded() int {
	n := 0
	if b.cfg.phases["probe"] {
		n = max(n, b.cfg.maxProbe())
	}
	if b.cfg.phases["converge"] {
		n = max(n, b.cfg.maxConverge())
	}
	if b.cfg.phases["steady"] {
		n = max(n, b.cfg.steadyNodes)
	}
	if b.cfg.phases["reaction"] {
		n = max(n, b.cfg.reactionNodes)
	}
	return n
}

// buildDrover builds the binary from this tree unless one was given.
func (b *bench) buildDrover(ctx context.Context) (string, error) {
	if b.cfg.droverBin != "" {
		return filepath.Abs(b.cfg.droverBin)
	}
	if !b.cfg.phases["steady"] && !b.cfg.phases["reaction"] {
		return "", nil
	}
	bin := filepath.Join(b.work, "drover")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bin, "./cmd/drover")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build drover: %w\n%s", err, out)
	}
	return bin, nil
}

// makeArtifacts writes the probe components' small artifact and the
// converge component's big one.
func (b *bench) makeArtifacts() error {
	dir := filepath.Join(b.work, "artifacts")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	small, err := makeArtifact(dir, "app", "1", 0)
	if err != nil {
		return err
	}
	tool, err := makeArtifact(dir, "agent", "1", 0)
	if err != nil {
		return err
	}
	// VERSION in the tarball must match the component version for
	// verifyInstalled; the probe components are not verified that way.
	b.probeComps = []component{
		{Name: "app", Version: "1.0", Art: small, Health: true},
		{Name: "agent", Version: "1.0", Art: tool},
	}
	big, err := makeArtifact(dir, "bigapp", "1.0", int64(b.cfg.artifactMB)<<20)
	if err != nil {
		return err
	}
	b.bigComp = component{Name: "bigapp", Version: "1.0", Art: big}
	return nil
}

// saveResults writes the results as JSON when -results asks for it.
func (b *bench) saveResults() error {
	if b.cfg.resultsOut == "" {
		return nil
	}
	data, err := json.MarshalIndent(b.res, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(b.cfg.resultsOut, data)
}

// loadResults reads the results of one or more runs (comma-separated
// files), e.g. phases run as separate invocations, into one report: the
// machine and settings of the first, the measurements of all.
func (b *bench) loadResults(files string) error {
	for i, p := range strings.Split(files, ",") {
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		var r results
		if err := json.Unmarshal(data, &r); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if i == 0 {
			*b.res = r
			continue
		}
		m := b.res
		m.Run.CommandLine += "` and `" + r.Run.CommandLine
		m.Run.CPUMeasured = m.Run.CPUMeasured && r.Run.CPUMeasured
		m.Run.MaxProbe = max(m.Run.MaxProbe, r.Run.MaxProbe)
		m.Took += r.Took
		m.Nodes = max(m.Nodes, r.Nodes)
		m.Load = append(m.Load, r.Load...)
		m.Probe = append(m.Probe, r.Probe...)
		m.Converge = append(m.Converge, r.Converge...)
		m.Errors = append(m.Errors, r.Errors...)
		if r.Seed > 0 {
			m.Seed = r.Seed
		}
		if r.Steady != nil {
			m.Steady = r.Steady
		}
		if r.Reaction != nil {
			m.Reaction = r.Reaction
		}
		if r.GoBench != nil {
			m.GoBench = r.GoBench
		}
	}
	return nil
}

// socketDir is a new, short ControlPath dir.
func (b *bench) socketDir() (string, error) {
	return os.MkdirTemp(b.sockets, "")
}

func (b *bench) blobSize() int64 { return int64(b.cfg.artifactMB) << 20 }

// probeVersions is component -> version of the seeded probe components.
func (b *bench) probeVersions() map[string]string {
	m := map[string]string{}
	for _, c := range b.probeComps {
		m[c.Name] = c.Version
	}
	return m
}

// raiseNofile raises RLIMIT_NOFILE to want, or to the hard limit when
// that cannot be raised.
func raiseNofile(want uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	if lim.Cur >= want {
		return nil
	}
	// Raising the hard limit needs CAP_SYS_RESOURCE, which a container's
	// root may lack: then the hard limit it is.
	raised := lim
	raised.Cur, raised.Max = want, max(lim.Max, want)
	if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised) == nil {
		return nil
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("raise open-file limit to %d: %w", lim.Cur, err)
	}
	return nil
}
