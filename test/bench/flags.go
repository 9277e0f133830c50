package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// config is what the flags choose.
type config struct {
	out            string
	quick          bool
	probeSizes     []int
	convergeSizes  []int
	steadyNodes    int
	steadyFor      time.Duration
	reactionNodes  int
	reactionRuns   int
	peerBudget     time.Duration
	ansibleMax     int
	peerTimeout    time.Duration
	settle         bool
	settleFloor    time.Duration
	ansibleConvMax int
	defConcMax     int
	resultsOut     string
	fromResults    string
	fastRuns       int
	slowRuns       int
	slowAfter      time.Duration
	verySlowRuns   int
	verySlowAfter  time.Duration
	artifactMB     int
	phases         map[string]bool
	peers          bool
	droverBin      string
	profileDir     string
	goBenchTime    string
	keepWork       bool
	verbose        bool
	commandLine    string
}

var allPhases = []string{"converge", "probe", "steady", "reaction", "gobench"}

func (c config) maxProbe() int    { return maxOf(c.probeSizes) }
func (c config) maxConverge() int { return maxOf(c.convergeSizes) }

func maxOf(v []int) int {
	m := 0
	for _, x := range v {
		m = max(m, x)
	}
	return m
}

func parseFlags(args []string) (config, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var c config
	var probeSizes, convergeSizes, only string
	fs.StringVar(&c.out, "out", "docs/BENCHMARKS.md", "the report to write")
	fs.BoolVar(&c.quick, "quick", false, "a smaller run: probe at 10 and 100 nodes (Ansible at 10), converge at 10, the daemon over 100 nodes for 1m, 3 reaction runs")
	fs.StringVar(&probeSizes, "probe-nodes", "10,100,500", "node counts of the probe round")
	fs.StringVar(&convergeSizes, "converge-nodes", "100", "node counts of the converge (issue 8's target is at 100)")
	fs.IntVar(&c.steadyNodes, "steady-nodes", 500, "nodes the daemon watches in the steady-state measurement")
	fs.DurationVar(&c.steadyFor, "steady", 3*time.Minute, "how long the steady state is measured (after the daemon converged)")
	fs.IntVar(&c.reactionNodes, "reaction-nodes", 10, "nodes of the reaction measurement")
	fs.IntVar(&c.reactionRuns, "reaction-runs", 7, "manifest edits timed in the reaction measurement")
	fs.IntVar(&c.fastRuns, "runs", 5, "runs of each measurement whose first run took under -slow")
	fs.IntVar(&c.slowRuns, "slow-runs", 3, "runs of each measurement whose first run took -slow or more")
	fs.DurationVar(&c.slowAfter, "slow", 10*time.Second, "a first run this long makes a measurement slow")
	fs.IntVar(&c.verySlowRuns, "very-slow-runs", 2, "runs of each measurement whose first run took -very-slow or more")
	fs.DurationVar(&c.verySlowAfter, "very-slow", time.Minute, "a first run this long makes a measurement very slow")
	fs.DurationVar(&c.peerBudget, "peer-budget", 3*time.Minute, "time one peer measurement may take before it runs fewer times (down to once); 0: no limit")
	fs.BoolVar(&c.settle, "settle", true, "stop a peer's run once it has taken the target ratio times drover's median: the target is met, the figure a lower bound")
	fs.DurationVar(&c.settleFloor, "settle-floor", 2*time.Minute, "never stop a peer's run under -settle before this")
	fs.DurationVar(&c.peerTimeout, "peer-timeout", 20*time.Minute, "stop any peer's run after this long and report it as a lower bound; 0: never")
	fs.IntVar(&c.ansibleConvMax, "ansible-converge-max-nodes", 100, "largest node count Ansible's converge is run at")
	fs.IntVar(&c.ansibleMax, "ansible-max-nodes", 100, "largest node count Ansible's probe round is run at (a round of 500 nodes takes it many minutes on 2 cores)")
	fs.IntVar(&c.defConcMax, "default-concurrency-max-nodes", 0, "largest node count the probe round is also measured at with the default ssh.concurrency (64); 0: never")
	fs.StringVar(&c.resultsOut, "results", filepath.Join(os.TempDir(), "drover-bench-results.json"), "also write the raw results as JSON here (for -from-results); \"\": do not")
	fs.StringVar(&c.fromResults, "from-results", "", "write the report from a results JSON of an earlier run (-results) instead of measuring")
	fs.IntVar(&c.artifactMB, "artifact-mb", 20, "size of the converge artifact in MiB")
	fs.StringVar(&only, "only", strings.Join(allPhases, ","), "phases to run, of "+strings.Join(allPhases, ","))
	noPeers := fs.Bool("no-peers", false, "measure drover only (no Ansible, no pssh)")
	fs.StringVar(&c.droverBin, "drover", "", "drover binary for the daemon measurements (default: built from this tree)")
	fs.StringVar(&c.profileDir, "cpuprofile-dir", "", "write CPU profiles of drover's largest probe rounds and of the daemon's steady state here")
	fs.StringVar(&c.goBenchTime, "gobench-time", "3s", "go test -benchtime of the Go benchmarks")
	fs.BoolVar(&c.keepWork, "keep", false, "keep the work dir (manifests, playbook logs, daemon logs)")
	fs.BoolVar(&c.verbose, "v", false, "log every SSH step drover takes (to stderr)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	c.peers = !*noPeers
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if c.quick {
		if !set["probe-nodes"] {
			probeSizes = "10,100"
		}
		if !set["converge-nodes"] {
			convergeSizes = "10"
		}
		if !set["steady-nodes"] {
			c.steadyNodes = 100
		}
		if !set["steady"] {
			c.steadyFor = time.Minute
		}
		if !set["reaction-runs"] {
			c.reactionRuns = 3
		}
		if !set["ansible-max-nodes"] {
			c.ansibleMax = 10
		}
	}
	var err error
	if c.probeSizes, err = parseSizes(probeSizes); err != nil {
		return c, fmt.Errorf("-probe-nodes: %w", err)
	}
	if c.convergeSizes, err = parseSizes(convergeSizes); err != nil {
		return c, fmt.Errorf("-converge-nodes: %w", err)
	}
	c.phases = map[string]bool{}
	for _, p := range strings.Split(only, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if !contains(allPhases, p) {
			return c, fmt.Errorf("-only: unknown phase %q", p)
		}
		c.phases[p] = true
	}
	if c.fastRuns < 1 || c.slowRuns < 1 || c.verySlowRuns < 1 || c.reactionRuns < 1 {
		return c, errors.New("-runs, -slow-runs, -very-slow-runs and -reaction-runs must be at least 1")
	}
	c.commandLine = strings.Join(append([]string{"go run ./test/bench"}, args...), " ")
	return c, nil
}

func parseSizes(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if strings.TrimSpace(f) == "" {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("bad node count %q", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func contains(v []string, s string) bool {
	for _, x := range v {
		if x == s {
			return true
		}
	}
	return false
}
