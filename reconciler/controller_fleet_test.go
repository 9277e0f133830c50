package reconciler

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"

	"github.com/drover-project/drover/inventory"
	"github.com/drover-project/drover/manifests"
	"github.com/drover-project/drover/probes"
	"github.com/drover-project/drover/reconciler/execute"
	"github.com/drover-project/drover/reconciler/internal/localnode"
	"github.com/drover-project/drover/reconciler/plan"
)

// fleetRoot is the install root every fleet node sees. Each node's
// scripts run with file descriptor 3 open on its own directory, which
// every command they start inherits, so /dev/fd/3/opt/drover is that
// node's LocalNode.Root for the scripts, the tools they run and fake
// systemctl's check of ExecStart alike. So one Executor, with one install
// root, drives many LocalNodes running the real on-node scripts. (Not
// /proc/self/cwd: mkdir -p changes directory on its way down.)
const (
	fleetRoot    = "/dev/fd/3/opt/drover"
	fleetUnitDir = "/dev/fd/3/etc/systemd/system"
)

// fleet is a cluster of LocalNodes behind one inventory.Runner and one
// ProbeFunc, for Controller tests. It injects faults per node and
// measures what the controller does: concurrent restarts (the
// disruptive step), overlapping work on one node, attempts over time.
type fleet struct {
	t     *testing.T
	names []string
	nodes map[string]*localnode.LocalNode
	arts  map[string]string // "app-2.0" -> tarball path
	shas  map[string]string

	// RestartDelay widens the window of each "restart unit" step so that
	// concurrency bugs have room to show.
	RestartDelay time.Duration

	mu          sync.Mutex
	unreachable map[string]bool
	failStep    map[string]string // node -> step label that fails
	probePanics map[string]int    // node -> controller probes left to panic
	stepPanics  map[string]int    // node -> steps left to panic
	block       map[string]chan struct{}
	probeGate   map[string]chan struct{}

	restarting    map[string]int // component -> nodes in "restart unit" now
	maxRestarting map[string]int
	busy          map[string]int // node -> controller probes and actions running
	overlaps      []string
	probesOf      map[string][]time.Time // controller probes per node
	attempts      map[string][]time.Time // action starts per node
	maxDisruptive int                    // disruptive actions in flight, by events
	disruptive    int
	events        []Event
	fileReads     int // ReadNodeFiles sessions (the plan's diffs)
}

// newFleet makes n nodes named n1..nN and the artifacts app-1.0, app-2.0
// (good) and app-3.0 (its binary cannot run, so its unit fails), and the
// same for zk.
func newFleet(t *testing.T, n int) *fleet {
	t.Helper()
	f := &fleet{
		t: t, nodes: map[string]*localnode.LocalNode{}, arts: map[string]string{}, shas: map[string]string{},
		unreachable: map[string]bool{}, failStep: map[string]string{}, probePanics: map[string]int{},
		stepPanics: map[string]int{}, block: map[string]chan struct{}{}, probeGate: map[string]chan struct{}{},
		restarting: map[string]int{}, maxRestarting: map[string]int{}, busy: map[string]int{},
		probesOf: map[string][]time.Time{}, attempts: map[string][]time.Time{},
	}
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("n%d", i)
		ln := localnode.NewLocalNode(t)
		ln.Target = inventory.Target{Name: name, Address: fmt.Sprintf("127.0.3.%d", i), Port: 22}
		f.nodes[name] = ln
		f.names = append(f.names, name)
	}
	dir := t.TempDir()
	for _, comp := range []string{"app", "zk"} {
		for _, v := range []string{"1.0", "2.0", "3.0"} {
			mode := int64(0o755)
			if v == "3.0" {
				mode = 0o644
			}
			key := comp + "-" + v
			p := filepath.Join(dir, key+".tar.gz")
			f.shas[key] = localnode.WriteTarGz(t, p, localnode.TarEntry{Name: "bin/" + comp, Mode: mode, Content: "#!/bin/sh\necho " + key + "\n"})
			f.arts[key] = p
		}
	}
	return f
}

// spec is what a test manifest says.
type spec struct {
	app, zk        string // versions; "" leaves the component out
	zkMembers      int    // zk on n1..nK (default 3), app everywhere
	maxUnavailable string
	onFailure      string
	probeInterval  string
	healthTimeout  string
	extra          string // a comment, to make a new generation of the same content
	wrongAppSHA    bool   // app's artifact declared with a sha256 it does not have
	maxFailures    int    // rollout.maxFailures
	// appConfig, when set, is the content of app's conf/app.cfg, and of
	// its sensitive conf/secret.cfg with "secret-" before it.
	appConfig string
}

func (f *fleet) manifest(s spec) string {
	f.t.Helper()
	if s.maxUnavailable == "" {
		s.maxUnavailable = "1"
	}
	if s.onFailure == "" {
		s.onFailure = "halt"
	}
	if s.probeInterval == "" {
		s.probeInterval = "1h"
	}
	if s.healthTimeout == "" {
		s.healthTimeout = "1s"
	}
	if s.zkMembers == 0 {
		s.zkMembers = 3
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\napiVersion: drover/v1\nkind: Cluster\nmetadata: {name: fleet}\nspec:\n  installRoot: %s\n  probeInterval: %s\n  nodes:\n",
		s.extra, fleetRoot, s.probeInterval)
	for i, name := range f.names {
		role := "agent"
		if i < s.zkMembers {
			role = "master"
		}
		fmt.Fprintf(&b, "    - {name: %s, address: %s, roles: [%s]}\n", name, f.nodes[name].Target.Address, role)
	}
	b.WriteString("  components:\n")
	if s.zk != "" {
		key := "zk-" + s.zk
		fmt.Fprintf(&b, `    - name: zk
      version: %q
      roles: [master]
      quorum: true
      artifact: {path: %s, sha256: %s}
      service: {exec: "{{ .Dir }}/bin/zk"}
      health: {tcp: {port: 2181}}
`, s.zk, f.arts[key], f.shas[key])
	}
	if s.app != "" {
		key := "app-" + s.app
		appSHA := f.shas[key]
		if s.wrongAppSHA {
			appSHA = strings.Repeat("ab", 32)
		}
		fmt.Fprintf(&b, `    - name: app
      version: %q
      artifact: {path: %s, sha256: %s}
      service: {exec: "{{ .Dir }}/bin/app"}
      health: {tcp: {port: 9100}}
`, s.app, f.arts[key], appSHA)
		if s.appConfig != "" {
			fmt.Fprintf(&b, "      files:\n        - {path: conf/app.cfg, template: %q}\n        - {path: conf/secret.cfg, sensitive: true, template: %q}\n",
				s.appConfig, "secret-"+s.appConfig)
		}
	}
	fmt.Fprintf(&b, "  rollout:\n    maxUnavailable: %s\n    healthTimeout: %s\n    onFailure: %s\n    maxFailures: %d\n", s.maxUnavailable, s.healthTimeout, s.onFailure, s.maxFailures)
	return b.String()
}

// desired loads and compiles a manifest as the daemon does.
func (f *fleet) desired(s spec) *plan.Desired {
	f.t.Helper()
	text := f.manifest(s)
	l, err := manifests.LoadBytes("/srv/fleet/cluster.yaml", []byte(text))
	if err != nil {
		f.t.Fatalf("manifest: %v\n%s", err, text)
	}
	d, err := plan.Compile(l)
	if err != nil {
		f.t.Fatalf("compile: %v", err)
	}
	return d
}

// controller is a controller over the fleet with fast timings. It runs
// until the test ends; the cleanup stops it, checks Run returns, and
// checks that no goroutine is left.
func (f *fleet) controller(o ControllerOptions) (*Controller, context.CancelFunc) {
	f.t.Helper()
	c, cancel, _ := f.stoppableController(o)
	return c, cancel
}

// stoppableController is controller, and stop stops it and waits for Run
// to return (a restart of the daemon).
func (f *fleet) stoppableController(o ControllerOptions) (c *Controller, cancel context.CancelFunc, stop func()) {
	f.t.Helper()
	leaks := goleak.IgnoreCurrent()
	log := zaptest.NewLogger(f.t, zaptest.Level(zap.WarnLevel))
	if o.Log != nil { // the test reads the log too
		log = zap.New(zapcore.NewTee(log.Core(), o.Log.Core()))
	}
	if o.Workers == 0 {
		o.Workers = 16
	}
	if o.BackoffBase == 0 {
		o.BackoffBase = 20 * time.Millisecond
	}
	if o.BackoffMax == 0 {
		o.BackoffMax = 200 * time.Millisecond
	}
	if o.WaitRetry == 0 {
		o.WaitRetry = 50 * time.Millisecond
	}
	o.Runner = f
	o.Probe = f.controllerProbe
	o.Log = log
	o.Executor = &execute.Config{
		Runner: f, InstallRoot: "/unused", Log: log, HealthPoll: 10 * time.Millisecond,
		LockWait: 2 * time.Second, UnitDir: fleetUnitDir, Probe: f.Probe,
	}
	next := o.OnEvent
	o.OnEvent = func(e Event) {
		f.event(e)
		if next != nil {
			next(e)
		}
	}
	c = NewController(o)
	if err := c.Restore(); err != nil {
		f.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		// A grace long enough for any action on a loaded machine: the
		// tests stop the controller mid-action and expect it to finish.
		c.Run(ctx, 2*time.Minute)
	}()
	f.t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(3 * time.Minute):
			f.t.Fatal("Run did not return after stop")
		}
		goleak.VerifyNone(f.t, leaks)
	})
	stop = func() {
		cancel()
		select {
		case <-done:
		case <-time.After(3 * time.Minute):
			f.t.Fatal("Run did not return after stop")
		}
	}
	return c, cancel, stop
}

// event measures disruptive actions in flight and work on each node.
func (f *fleet) event(e Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, e)
	switch e.Kind {
	case "action-start":
		f.attempts[e.Node] = append(f.attempts[e.Node], e.Time)
		f.enter(e.Node, "action")
		if e.Action.Disruptive {
			f.disruptive++
			f.maxDisruptive = max(f.maxDisruptive, f.disruptive)
		}
	case "action-done", "action-failed":
		f.busy[e.Node]--
		if e.Action.Disruptive {
			f.disruptive--
		}
	}
}

// enter marks work starting on a node; work already running there is a
// node reconciled by two workers at once.
func (f *fleet) enter(node, what string) {
	if f.busy[node] > 0 {
		f.overlaps = append(f.overlaps, node+": "+what+" while busy")
	}
	f.busy[node]++
}

// controllerProbe is the controller's probe: a reconcile pass starts here.
func (f *fleet) controllerProbe(ctx context.Context, r inventory.Runner, t inventory.Target, req probes.Request) probes.Observed {
	f.mu.Lock()
	f.enter(t.Name, "probe")
	f.probesOf[t.Name] = append(f.probesOf[t.Name], time.Now())
	gate := f.probeGate[t.Name]
	panics := f.probePanics[t.Name] > 0
	if panics {
		f.probePanics[t.Name]--
	}
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.busy[t.Name]--
		f.mu.Unlock()
	}()
	if panics {
		panic("injected probe panic on " + t.Name)
	}
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
		}
	}
	time.Sleep(2 * time.Millisecond) // room for a second worker to collide
	return f.Probe(ctx, r, t, req)
}

// Probe reads the node's files (LocalNode.Probe), or fails as an
// unreachable node's probe does.
func (f *fleet) Probe(ctx context.Context, r inventory.Runner, t inventory.Target, req probes.Request) probes.Observed {
	f.mu.Lock()
	down := f.unreachable[t.Name]
	f.mu.Unlock()
	if down {
		return probes.Observed{Node: t.Name, Reason: "dial", Error: "connection refused"}
	}
	n := f.nodes[t.Name]
	obs := n.Probe(ctx, r, t, req)
	obs.Node = t.Name
	// LocalNode.Probe looks at no rendered file: hash the wanted ones as
	// the probe script does (fleetRoot is the node's Dir to its scripts).
	for _, w := range req.Components {
		c := obs.Components[w.Name]
		if c == nil || len(w.Files) == 0 {
			continue
		}
		for _, path := range w.Files {
			b, err := os.ReadFile(filepath.Join(n.Dir, strings.TrimPrefix(path, "/dev/fd/3")))
			if err != nil {
				c.MissingFiles = append(c.MissingFiles, path)
				continue
			}
			fi, _ := os.Stat(filepath.Join(n.Dir, strings.TrimPrefix(path, "/dev/fd/3")))
			c.Files = append(c.Files, manifests.FileDigest{Path: path, Mode: fi.Mode().Perm(), SHA256: manifests.SHA256Hex(b)})
		}
		c.FilesHash = manifests.ConfigHash(c.Files)
	}
	return obs
}

var _ inventory.Runner = (*fleet)(nil)

// inBatch reports whether a batch's label ("steps: a, b") holds the step
// labelled step ("step: b"): the batch fails as that step would.
func inBatch(label, step string) bool {
	names, ok := strings.CutPrefix(label, "steps: ")
	name, isStep := strings.CutPrefix(step, "step: ")
	return ok && isStep && slices.Contains(strings.Split(names, ", "), name)
}

// Run runs a script on the node it is for, with the faults injected
// there, and counts nodes restarting a unit at once per component.
func (f *fleet) Run(ctx context.Context, t inventory.Target, script string, stdin io.Reader) (inventory.Result, error) {
	label, _, _ := strings.Cut(script, "\n")
	label = strings.TrimPrefix(label, "# drover ")
	f.mu.Lock()
	down := f.unreachable[t.Name]
	fail := f.failStep[t.Name] != "" && (f.failStep[t.Name] == label || inBatch(label, f.failStep[t.Name]))
	panics := f.stepPanics[t.Name] > 0 && (strings.HasPrefix(label, "step: ") || strings.HasPrefix(label, "steps: "))
	if panics {
		f.stepPanics[t.Name]--
	}
	gate := f.block[t.Name]
	if strings.HasPrefix(script, "for p in") {
		f.fileReads++
	}
	f.mu.Unlock()
	switch {
	case down:
		return inventory.Result{}, fmt.Errorf("%w: %s", inventory.ErrUnreachable, t.Name)
	case panics:
		panic("injected step panic on " + t.Name)
	case fail:
		return inventory.Result{ExitCode: 1, Stderr: []byte("injected failure of " + label)}, nil
	}
	if gate != nil && label == "step: restart unit" {
		select {
		case <-gate:
		case <-ctx.Done():
			return inventory.Result{}, fmt.Errorf("local run: %w", ctx.Err())
		}
	}
	if label == "step: restart unit" {
		comp := unitComponent(script)
		f.mu.Lock()
		f.restarting[comp]++
		f.maxRestarting[comp] = max(f.maxRestarting[comp], f.restarting[comp])
		f.mu.Unlock()
		defer func() {
			f.mu.Lock()
			f.restarting[comp]--
			f.mu.Unlock()
		}()
		time.Sleep(f.RestartDelay)
	}
	return f.run(ctx, f.nodes[t.Name], script, stdin)
}

// run runs a script as LocalRunner does, with fd 3 open on the node's
// directory (see fleetRoot).
func (f *fleet) run(ctx context.Context, n *localnode.LocalNode, script string, stdin io.Reader) (inventory.Result, error) {
	dir, err := os.Open(n.Dir)
	if err != nil {
		return inventory.Result{}, err
	}
	defer dir.Close()
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", script)
	cmd.Dir, cmd.Env, cmd.Stdin = n.Runner.Dir, n.Runner.Env, stdin
	cmd.ExtraFiles = []*os.File{dir}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	res := inventory.Result{Stdout: out.Bytes(), Stderr: errb.Bytes()}
	if ee := (*exec.ExitError)(nil); errors.As(err, &ee) && ctx.Err() == nil {
		res.ExitCode = ee.ExitCode()
		err = nil
	}
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	if err != nil {
		return res, fmt.Errorf("local run: %w", err)
	}
	return res, nil
}

// unitComponent is the component whose drover-<c>.service a script names.
func unitComponent(script string) string {
	_, rest, ok := strings.Cut(script, "\nu=drover-")
	if !ok {
		return ""
	}
	name, _, _ := strings.Cut(rest, ".service")
	return name
}

func (f *fleet) DialTCP(context.Context, inventory.Target, string) (net.Conn, error) {
	return nil, errors.New("fleet nodes are not dialled")
}

// set changes a fault under the lock.
func (f *fleet) set(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn()
}

// versionOn is the version the node's receipt records for comp ("" if
// none) and whether its unit is active.
func (f *fleet) versionOn(node, comp string) (string, bool) {
	c := f.nodes[node].Component(comp)
	v := ""
	if c.Receipt != nil {
		v = c.Receipt.Version
	}
	return v, c.Unit.ActiveState == "active"
}

// waitFor polls cond until it holds or the time is up.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// converged reports whether Status says every node is converged.
func converged(c *Controller) bool {
	st := c.Status()
	if len(st.Nodes) == 0 {
		return false
	}
	for _, n := range st.Nodes {
		if !n.Converged {
			return false
		}
	}
	return true
}

// allAt reports whether every node given has comp at version v, running.
func (f *fleet) allAt(comp, v string, nodes ...string) bool {
	if nodes == nil {
		nodes = f.names
	}
	for _, n := range nodes {
		if got, active := f.versionOn(n, comp); got != v || !active {
			return false
		}
	}
	return true
}

// checkNoOverlap fails the test if a node was worked on by two workers.
func (f *fleet) checkNoOverlap() {
	f.t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.overlaps) > 0 {
		f.t.Errorf("a node was reconciled by two workers at once: %v", f.overlaps[:min(5, len(f.overlaps))])
	}
}

// resetCounts forgets the measurements so far.
func (f *fleet) resetCounts() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.maxRestarting = map[string]int{}
	f.maxDisruptive = 0
	f.attempts = map[string][]time.Time{}
	f.probesOf = map[string][]time.Time{}
	f.events = nil
}

func (f *fleet) eventsOf(kind EventKind) []Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Event
	for _, e := range f.events {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

// writeFile is a helper for drift made by hand.
func writeFile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

var _ = slices.Contains[[]string]
