// Command fleetbench runs the real `drover daemon` binary against
// simulated fleets (test/fleetsim) of growing size and writes what it
// costs: cold start, steady-state CPU and memory, the HTTP endpoints, the
// console's event stream and a manifest edit's reaction time, as a
// Markdown report and a PNG plot. `make bench-scale` runs it.
package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/drover-project/drover/test/fleetsim"
)

type config struct {
	bin        string
	sizes      []int
	runs       []int // per size
	steady     time.Duration
	stream     time.Duration
	interval   time.Duration
	out, plot  string
	work       string
	listen     string
	keep       bool
	profileDir string
	rolloutFor time.Duration
	memLimit   string // the daemon's GOMEMLIMIT; "": none
}

func main() {
	var c config
	var sizes string
	flag.StringVar(&c.bin, "bin", "bin/drover", "the drover binary")
	flag.StringVar(&sizes, "nodes", "1000,2000,5000,10000", "fleet sizes, comma-separated")
	runs := flag.String("runs", "1", "runs per fleet size (medians are reported): one count for every size, or one per size of -nodes")
	flag.DurationVar(&c.steady, "steady", 2*time.Minute, "steady-state window")
	flag.DurationVar(&c.stream, "stream", 30*time.Second, "event stream window (one node changes a second)")
	flag.DurationVar(&c.interval, "interval", 30*time.Second, "probeInterval")
	flag.StringVar(&c.out, "out", "docs/BENCHMARKS-SCALE.md", "report to write")
	flag.StringVar(&c.plot, "plot", "docs/bench-scale.png", "plot to write")
	flag.StringVar(&c.profileDir, "profile-dir", "", "after each steady window, save the daemon's 30 s CPU profile, heap and goroutines here")
	flag.DurationVar(&c.rolloutFor, "rollout", 0, "after the edit, wait up to this long for the whole rolling change (0: do not wait)")
	flag.StringVar(&c.memLimit, "gomemlimit", "", "run the daemon with this GOMEMLIMIT (docs/SCALING.md); empty: the Go default, none")
	flag.BoolVar(&c.keep, "keep", false, "keep the work dir (daemon logs, manifests) and say where")
	flag.StringVar(&c.listen, "addr", "127.4.255.254:0", "the daemon's --addr (in the bench's loopback range)")
	shard := flag.String("shard", "", "internal: serve nodes FROM:TO as a shard process (see shard.go)")
	shardPub := flag.String("shard-pub", "", "internal: the shard's authorized key file")
	shardKnown := flag.String("shard-known", "", "internal: where the shard writes its known_hosts")
	shardManifest := flag.String("shard-manifest", "", "internal: the manifest the shard's nodes are seeded from")
	flag.Parse()
	if *shard != "" {
		a, b, _ := strings.Cut(*shard, ":")
		from, err1 := strconv.Atoi(a)
		to, err2 := strconv.Atoi(b)
		if err1 != nil || err2 != nil || from < 0 || to <= from {
			log.Fatalf("-shard: want FROM:TO, got %q", *shard)
		}
		if err := serveShard(from, to, *shardPub, *shardKnown, *shardManifest); err != nil {
			log.Fatalf("shard %s: %v", *shard, err)
		}
		return
	}
	for _, s := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 250000 {
			log.Fatalf("-nodes: bad size %q", s)
		}
		c.sizes = append(c.sizes, n)
	}
	for _, s := range strings.Split(*runs, ",") {
		k, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || k < 1 {
			log.Fatalf("-runs: bad count %q", s)
		}
		c.runs = append(c.runs, k)
	}
	switch len(c.runs) {
	case 1:
		for len(c.runs) < len(c.sizes) {
			c.runs = append(c.runs, c.runs[0])
		}
	case len(c.sizes):
	default:
		log.Fatalf("-runs: %d counts for %d sizes", len(c.runs), len(c.sizes))
	}
	maxN := slices.Max(c.sizes)
	// The daemon inherits the limit and holds a connection per node; the
	// simulator's shards raise their own (shard.go).
	lim, err := fleetsim.RaiseFDLimit(uint64(maxN + 1024))
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("open files limit %d", lim)
	c.work, err = os.MkdirTemp("", "fleetbench-")
	if err != nil {
		log.Fatal(err)
	}
	if c.keep {
		log.Printf("work dir %s is kept", c.work)
	} else {
		defer os.RemoveAll(c.work)
	}
	ctx := context.Background()
	rep := report{started: time.Now(), load0: loadAvg()}
	for k, n := range c.sizes {
		var runs []result
		for i := range c.runs[k] {
			log.Printf("== %d nodes, run %d of %d", n, i+1, c.runs[k])
			r, err := runOne(ctx, c, n)
			if err != nil {
				log.Fatalf("%d nodes: %v", n, err)
			}
			runs = append(runs, r)
		}
		rep.points = append(rep.points, point{nodes: n, runs: runs})
		// After each size, so a long run stopped early keeps what it has.
		rep.load1 = loadAvg()
		rep.took = time.Since(rep.started)
		if err := rep.write(c); err != nil {
			log.Fatal(err)
		}
	}
}

// result is one run at one fleet size.
type result struct {
	nodes             int
	coldStart         time.Duration // exec -> every node probed
	coldCPU           time.Duration // daemon CPU during the cold start
	window            time.Duration
	cpu, simCPU       time.Duration // in the steady window
	probes            int64         // in the steady window
	rss, peakRSS      int64
	goroutines        float64
	heapInuse         int64 // go_memstats_heap_inuse_bytes after the window
	stackInuse        int64 // go_memstats_stack_inuse_bytes: goroutine stacks
	conns             int64
	metricsTime       time.Duration
	metricsBytes      int
	statusTime        time.Duration
	statusBytes       int
	notConvTime       time.Duration
	notConvBytes      int
	streamBytesPerSec float64 // the whole-document view
	deltaBytesPerSec  float64 // ?view=delta
	streamChanges     int
	liveHeap          int64         // go_memstats_heap_inuse_bytes after a forced GC
	consoleLoad       time.Duration // the console's first load in Chromium; 0: no Chromium
	consoleBytes      int           // the cluster page's HTML
	reaction          time.Duration // manifest write -> first step on a node
	reactionLoad      time.Duration // manifest write -> the daemon's "manifest loaded"
	rollout           time.Duration // manifest write -> every node has the new file
	rolloutDone       bool          // else rollout is when the bench stopped waiting
	rolloutNodes      int           // nodes done by then
	load              string
}

func (r result) cpuShare() float64 { return r.cpu.Seconds() / r.window.Seconds() }

// setup writes the files a run needs: a client key, the artifact, the
// manifest for n nodes. The fleet is started and seeded converged.
type run struct {
	dir, key, known, manifest, artifact, artifactSHA string
	sim                                              shards
	nodes                                            int
	interval                                         time.Duration
}

// writeManifest writes the manifest and renames it into place; renamed
// is when (the edit's reaction is timed from the rename).
func (r *run) writeManifest(confLine string) (renamed time.Time, err error) {
	var b strings.Builder
	b.WriteString("apiVersion: drover/v1\nkind: Cluster\nmetadata:\n  name: scale\nspec:\n  installRoot: /opt/drover\n")
	fmt.Fprintf(&b, "  probeInterval: %s\n", r.interval)
	fmt.Fprintf(&b, "  ssh:\n    user: root\n    port: 22\n    identityFiles: [%q]\n    knownHostsFile: %q\n    connectTimeout: 10s\n", r.key, r.known)
	b.WriteString("  rollout:\n    maxUnavailable: \"10%\"\n  nodes:\n")
	for i := range r.nodes {
		fmt.Fprintf(&b, "    - {name: %s, address: %s}\n", nodeName(i), fleetsim.Address(i))
	}
	b.WriteString("  components:\n    - name: app\n      version: \"1.0\"\n")
	fmt.Fprintf(&b, "      artifact: {path: %q, sha256: %s}\n", r.artifact, r.artifactSHA)
	fmt.Fprintf(&b, "      files:\n        - {path: conf/app.conf, template: %q}\n", "address={{ .Node.Address }}\n"+confLine+"\n")
	b.WriteString("      service:\n        exec: \"{{ .Dir }}/bin/app\"\n")
	b.WriteString("      health: {exec: {command: [/opt/drover/active/app/bin/app, --check]}, timeout: 5s}\n")
	tmp := r.manifest + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
		return time.Time{}, err
	}
	renamed = time.Now()
	return renamed, os.Rename(tmp, r.manifest)
}

func nodeName(i int) string { return fmt.Sprintf("sim-%05d", i) }

func newRun(c config, n int) (*run, error) {
	r := &run{dir: filepath.Join(c.work, strconv.Itoa(n)), nodes: n, interval: c.interval}
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		return nil, err
	}
	// Every run is a first start: an earlier run's state store (its
	// action history, 10,000 records with their steps) would come back.
	if err := os.RemoveAll(filepath.Join(r.dir, "state")); err != nil {
		return nil, err
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		return nil, err
	}
	r.key = filepath.Join(r.dir, "id_ed25519")
	if err := os.WriteFile(r.key, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, err
	}
	spub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, err
	}
	if r.artifact, r.artifactSHA, err = writeArtifact(r.dir); err != nil {
		return nil, err
	}
	pubFile := filepath.Join(r.dir, "id_ed25519.pub")
	if err := os.WriteFile(pubFile, ssh.MarshalAuthorizedKey(spub), 0o644); err != nil {
		return nil, err
	}
	r.known = filepath.Join(r.dir, "known_hosts")
	if err := os.WriteFile(r.known, nil, 0o644); err != nil {
		return nil, err
	}
	r.manifest = filepath.Join(r.dir, "cluster.yaml")
	if _, err := r.writeManifest("setting=1"); err != nil {
		return nil, err
	}
	start := time.Now()
	// Each shard seeds its nodes converged, as drover compiles the manifest.
	if r.sim, err = startShards(r.dir, n, pubFile, r.known, r.manifest); err != nil {
		return nil, err
	}
	log.Printf("fleet of %d nodes in %d shard process(es) listening, host keys made, seeded, in %s", n, len(r.sim), time.Since(start).Round(time.Millisecond))
	return r, nil
}

// writeArtifact is a tiny tarball: the simulator never unpacks it.
func writeArtifact(dir string) (string, string, error) {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	body := []byte("#!/bin/sh\nexit 0\n")
	tw.WriteHeader(&tar.Header{Name: "bin/app", Mode: 0o755, Size: int64(len(body))})
	tw.Write(body)
	tw.Close()
	gz.Close()
	p := filepath.Join(dir, "app-1.0.tar.gz")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		return "", "", err
	}
	sum := sha256.Sum256(buf.Bytes())
	return p, hex.EncodeToString(sum[:]), nil
}

func runOne(ctx context.Context, c config, n int) (result, error) {
	res := result{nodes: n}
	r, err := newRun(c, n)
	if err != nil {
		return res, err
	}
	defer r.sim.close()
	d, err := startDaemon(c, r)
	if err != nil {
		return res, err
	}
	defer d.stop()
	coldProfile := make(chan error, 1)
	if c.profileDir != "" {
		// What the cold start spends its CPU on.
		go func() { coldProfile <- d.profileOne(c.profileDir, "cold", n, 30*time.Second) }()
	} else {
		coldProfile <- nil
	}

	// Cold start: exec -> every node answered a probe.
	for r.sim.stats().Probed < int64(n) {
		if time.Since(d.started) > 10*time.Minute {
			return res, fmt.Errorf("cold start: %d of %d nodes probed after 10m", r.sim.stats().Probed, n)
		}
		if d.exited() {
			return res, fmt.Errorf("daemon exited during cold start:\n%s", d.logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
	res.coldStart = time.Since(d.started)
	res.coldCPU, _ = d.cpu()
	log.Printf("cold start %s (daemon CPU %s)", res.coldStart.Round(time.Millisecond), res.coldCPU.Round(time.Millisecond))
	if err := d.waitConverged(ctx, n, 3*c.interval); err != nil {
		return res, err
	}
	if err := <-coldProfile; err != nil {
		return res, err
	}
	// Let the first round's burst of handshakes spread into the steady
	// rhythm before measuring.
	time.Sleep(c.interval / 2)

	cpu0, _ := d.cpu()
	sim0 := r.sim.cpu()
	st0 := r.sim.stats()
	t0 := time.Now()
	time.Sleep(c.steady)
	res.window = time.Since(t0)
	cpu1, _ := d.cpu()
	res.cpu, res.simCPU = cpu1-cpu0, r.sim.cpu()-sim0
	st1 := r.sim.stats()
	res.probes = st1.Probes - st0.Probes
	res.peakRSS, res.rss = d.memory()
	res.conns = st1.Open
	res.load = loadAvg()
	log.Printf("steady: %.1f%% of a core, %d probes, RSS %.0f MB, simulator %.1f%% of a core", 100*res.cpuShare(), res.probes, mb(res.rss), 100*res.simCPU.Seconds()/res.window.Seconds())

	if c.profileDir != "" {
		// After the window, so profiling does not count in it.
		if err := d.profile(c.profileDir, n, 20*time.Second); err != nil {
			return res, err
		}
	}
	res.metricsTime, res.metricsBytes, err = d.timeGet("/metrics", 5)
	if err != nil {
		return res, err
	}
	res.goroutines = d.gauge("go_goroutines")
	res.heapInuse = int64(d.gauge("go_memstats_heap_inuse_bytes"))
	res.stackInuse = int64(d.gauge("go_memstats_stack_inuse_bytes"))
	// The live heap: what a forced collection leaves (the heap profile's
	// gc=1 runs one).
	if _, _, err := d.timeGet("/debug/pprof/heap?gc=1", 1); err != nil {
		return res, err
	}
	res.liveHeap = int64(d.gauge("go_memstats_heap_inuse_bytes"))
	if _, res.consoleBytes, err = d.timeGet("/", 1); err != nil {
		return res, err
	}
	if res.consoleLoad, err = d.consoleLoad(ctx, 3); err != nil {
		return res, err
	}
	log.Printf("live heap %.0f MB; console first load %s (%d B of HTML)", mb(res.liveHeap), res.consoleLoad.Round(time.Millisecond), res.consoleBytes)
	res.statusTime, res.statusBytes, err = d.timeGet("/api/v1/status", 3)
	if err != nil {
		return res, err
	}
	res.notConvTime, res.notConvBytes, err = d.timeGet("/api/v1/status?state=notConverged", 3)
	if err != nil {
		return res, err
	}
	log.Printf("/metrics %s %d B; /api/v1/status %s %d B; ?state=notConverged %s %d B", res.metricsTime, res.metricsBytes, res.statusTime, res.statusBytes, res.notConvTime, res.notConvBytes)

	res.streamBytesPerSec, res.deltaBytesPerSec, res.streamChanges, err = d.streamRates(ctx, r, c.stream)
	if err != nil {
		return res, err
	}
	log.Printf("event stream %.0f B/s whole, %.0f B/s ?view=delta, while %d nodes changed", res.streamBytesPerSec, res.deltaBytesPerSec, res.streamChanges)

	// Reaction: a manifest edit -> the first action step on a node.
	// The stream's failures are being repaired: wait for quiet first. A
	// failure made in its last seconds is seen only at the node's next
	// probe, up to an interval (and its jitter) later, and until then the
	// node still reads converged: wait that long first, or its repair is
	// taken for the edit's first action.
	time.Sleep(c.interval + c.interval/5 + time.Second)
	if err := d.waitConverged(ctx, n, 3*c.interval); err != nil {
		return res, err
	}
	r.sim.arm()
	editProfile := make(chan error, 1)
	if c.profileDir != "" {
		// What the reaction spends its CPU on: a profile from just
		// before the edit.
		go func() { editProfile <- d.profileOne(c.profileDir, "edit", n, 3*time.Second) }()
		time.Sleep(100 * time.Millisecond)
	} else {
		editProfile <- nil
	}
	edit, err := r.writeManifest("setting=2")
	if err != nil {
		return res, err
	}
	for {
		if at := r.sim.stats().FirstStep; at != 0 {
			res.reaction = time.Unix(0, at).Sub(edit)
			break
		}
		if time.Since(edit) > time.Minute {
			return res, errors.New("no action a minute after the manifest edit")
		}
		time.Sleep(2 * time.Millisecond)
	}
	if err := <-editProfile; err != nil {
		return res, err
	}
	// The daemon logs the load after handing the manifest to its
	// workers, and on its one P they may run first: wait for the line.
	for wait := time.Now(); d.loadedAt.Load() < edit.UnixNano() && time.Since(wait) < 10*time.Second; {
		time.Sleep(5 * time.Millisecond)
	}
	res.reactionLoad = time.Unix(0, d.loadedAt.Load()).Sub(edit)
	log.Printf("manifest edit -> first step %s (loaded after %s: load %s, compile %s)", res.reaction.Round(time.Millisecond), res.reactionLoad.Round(time.Millisecond),
		time.Duration(d.loadTook.Load()).Round(time.Millisecond), time.Duration(d.compileTook.Load()).Round(time.Millisecond))
	if c.rolloutFor <= 0 {
		return res, nil
	}
	// The whole rolling change, maxUnavailable 10%: every node's file
	// rewritten, unit restarted, health waited for and receipt written.
	done, err := d.waitGeneration(ctx, n, r.sim, edit, c.rolloutFor)
	if err != nil {
		return res, err
	}
	res.rolloutDone, res.rolloutNodes = done == n, done
	res.rollout = time.Since(edit)
	log.Printf("rolling change: %d of %d nodes done %s after the edit", done, n, res.rollout.Round(time.Millisecond))
	return res, nil
}

func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func mb(b int64) float64 { return float64(b) / 1e6 }

// daemon is `drover daemon` as a child process.
type daemon struct {
	cmd     *exec.Cmd
	started time.Time
	base    string
	logPath string
	// loadedAt is when the daemon last logged "manifest loaded", unix ns.
	loadedAt atomic.Int64
	// loadTook and compileTook are that line's times, ns.
	loadTook, compileTook atomic.Int64
	done                  chan struct{}
	http                  *http.Client
}

func startDaemon(c config, r *run) (*daemon, error) {
	logPath := filepath.Join(r.dir, "daemon.log")
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	state := filepath.Join(r.dir, "state")
	cmd := exec.Command(c.bin, "daemon", "-f", r.manifest, "--addr", c.listen, "--lock-dir", state, "--state-dir", state, "--grace", "5s", "--pprof")
	cmd.Stdout, cmd.Stderr = pw, pw
	if c.memLimit != "" {
		cmd.Env = append(os.Environ(), "GOMEMLIMIT="+c.memLimit)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	d := &daemon{cmd: cmd, logPath: logPath, done: make(chan struct{}), http: &http.Client{Timeout: time.Minute}}
	d.started = time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	pw.Close()
	listen := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(io.TeeReader(pr, lf))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			// The daemon logs where it listens; the port is random.
			var l struct {
				Msg, Listen   string
				Ts            float64
				Load, Compile float64 // seconds
			}
			if json.Unmarshal(sc.Bytes(), &l) != nil {
				continue
			}
			switch l.Msg {
			case "drover daemon started":
				select {
				case listen <- l.Listen:
				default:
				}
			case "manifest loaded":
				d.loadedAt.Store(int64(l.Ts * 1e9))
				d.loadTook.Store(int64(l.Load * 1e9))
				d.compileTook.Store(int64(l.Compile * 1e9))
			}
		}
		io.Copy(lf, pr)
		lf.Close()
	}()
	go func() { cmd.Wait(); close(d.done) }()
	select {
	case a := <-listen:
		d.base = "http://" + a
	case <-d.done:
		return nil, fmt.Errorf("daemon exited:\n%s", d.logTail())
	case <-time.After(time.Minute):
		d.stop()
		return nil, fmt.Errorf("daemon did not say where it listens:\n%s", d.logTail())
	}
	return d, nil
}

func (d *daemon) exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

func (d *daemon) logTail() string {
	b, _ := os.ReadFile(d.logPath)
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

func (d *daemon) stop() {
	if d.exited() {
		return
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(30 * time.Second):
		d.cmd.Process.Kill()
		<-d.done
	}
}

// cpu is the daemon's user+system CPU so far.
func (d *daemon) cpu() (time.Duration, error) { return procCPU(d.cmd.Process.Pid) }

// procCPU is a process's user+system CPU so far, from /proc.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * (time.Second / 100), nil // USER_HZ is 100 on Linux
}

// memory is the daemon's peak and current RSS.
func (d *daemon) memory() (peak, now int64) {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.cmd.Process.Pid))
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, _ := strings.Cut(line, ":")
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		kb, _ := strconv.ParseInt(f[0], 10, 64)
		switch k {
		case "VmHWM":
			peak = kb * 1024
		case "VmRSS":
			now = kb * 1024
		}
	}
	return peak, now
}

// timeGet fetches path runs times and returns the median time and the size.
func (d *daemon) timeGet(path string, runs int) (time.Duration, int, error) {
	var times []time.Duration
	size := 0
	for range runs {
		start := time.Now()
		resp, err := d.http.Get(d.base + path)
		if err != nil {
			return 0, 0, err
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			return 0, 0, fmt.Errorf("GET %s: HTTP %d %v", path, resp.StatusCode, err)
		}
		times = append(times, time.Since(start))
		size = int(n)
	}
	return median(times), size, nil
}

func median(v []time.Duration) time.Duration {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// gauge reads one unlabelled metric from /metrics.
func (d *daemon) gauge(name string) float64 {
	resp, err := d.http.Get(d.base + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return -1
}

// waitConverged polls the status until every node is converged.
func (d *daemon) waitConverged(ctx context.Context, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		st, err := d.status(ctx)
		bad := n
		if err == nil && len(st.Nodes) == n {
			bad = 0
			for _, node := range st.Nodes {
				if !node.Converged {
					bad++
				}
			}
			if bad == 0 {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d nodes not converged after %s (%v)", bad, n, timeout, err)
		}
		if d.exited() {
			return fmt.Errorf("daemon exited:\n%s", d.logTail())
		}
		time.Sleep(2 * time.Second)
	}
}
