package harness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Node kinds.
const (
	KindSystemd = "systemd"
	KindLight   = "light"
)

// Defaults for Options.
const (
	DefaultStateDir    = "/run/drover-test"
	DefaultCacheDir    = "/var/cache/drover-test"
	DefaultInstallRoot = "/opt/drover"
	DefaultMirror      = "http://deb.debian.org/debian"
)

// Node is one test node as a manifest and an SSH client see it.
type Node struct {
	Name    string
	Address string // a 127.0.0.0/8 address of its own
	Port    int
	Kind    string // KindSystemd or KindLight
	// Root is the host path where the node's writes land. Light node: its
	// private install root dir, which the node sees at Options.InstallRoot.
	// Systemd node: its overlay upper dir, i.e. only what the node changed
	// relative to the shared image, laid out from the node's "/".
	Root string
}

// Options configure a cluster. Zero values take the defaults.
type Options struct {
	N    int    // number of nodes; required
	Name string // prefix of the cluster name; [a-z0-9-], default "dt"

	// StateDir holds one dir per cluster; addresses are allocated under its
	// lock, so clusters that must not collide share it. Default DefaultStateDir.
	StateDir    string
	CacheDir    string        // rootfs cache (systemd nodes); default DefaultCacheDir
	InstallRoot string        // light nodes: path each node sees its private dir at; default DefaultInstallRoot
	Mirror      string        // debootstrap mirror (systemd nodes); default DefaultMirror
	BootTimeout time.Duration // until every node's sshd answers; default 3m systemd, 60s light
	StopTimeout time.Duration // systemd nodes: orderly shutdown before cgroup.kill; default 15s
	// ConnectTimeout is ssh's ConnectTimeout in Exec; default 5s.
	ConnectTimeout time.Duration
	// Logf receives progress lines (t.Logf fits); nil discards them.
	Logf func(format string, args ...any)
}

func (o Options) withDefaults(kind string) Options {
	if o.Name == "" {
		o.Name = "dt"
	}
	if o.StateDir == "" {
		o.StateDir = DefaultStateDir
	}
	if o.CacheDir == "" {
		o.CacheDir = DefaultCacheDir
	}
	if o.InstallRoot == "" {
		o.InstallRoot = DefaultInstallRoot
	}
	if o.Mirror == "" {
		o.Mirror = DefaultMirror
	}
	if o.BootTimeout == 0 {
		o.BootTimeout = 60 * time.Second
		if kind == KindSystemd {
			o.BootTimeout = 3 * time.Minute
		}
	}
	if o.StopTimeout == 0 {
		o.StopTimeout = 15 * time.Second
	}
	if o.ConnectTimeout == 0 {
		o.ConnectTimeout = 5 * time.Second
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	return o
}

var namePrefixRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,19}$`)

func (o Options) validate(kind string) error {
	if o.N <= 0 {
		return fmt.Errorf("harness: Options.N must be > 0, got %d", o.N)
	}
	if max := poolSize(kind); o.N > max {
		return fmt.Errorf("harness: Options.N %d exceeds the %s address pool (%d)", o.N, kind, max)
	}
	if !namePrefixRE.MatchString(o.Name) {
		return fmt.Errorf("harness: Options.Name %q must match %s", o.Name, namePrefixRE)
	}
	if !filepath.IsAbs(o.InstallRoot) || filepath.Clean(o.InstallRoot) == "/" {
		return fmt.Errorf("harness: Options.InstallRoot %q must be an absolute path other than /", o.InstallRoot)
	}
	return nil
}

// Cluster is a set of running test nodes. Methods are safe for concurrent use.
type Cluster struct {
	Name           string // unique on this host while it runs: <Options.Name>-<random>
	Kind           string
	Nodes          []Node
	Dir            string // state dir: keys, known_hosts, node dirs, pid records
	User           string // SSH login user
	IdentityFile   string // ed25519 client key authorized on every node
	KnownHostsFile string // every node's ed25519 host key under its address

	opts  Options
	tools map[string]string
	cg    cgroupRoots
	home  string // light nodes: the login user's home, hidden per node

	mu     sync.Mutex
	nodes  map[string]*nodeState
	nftOn  bool // our nftables table exists
	closed bool

	wg        sync.WaitGroup // one per spawned process
	closeOnce sync.Once
	closeErr  error
}

// nodeState is the harness's private view of one node.
type nodeState struct {
	Node
	dir     string   // Dir/nodes/<name>
	rootfs  string   // systemd nodes: the shared image (overlay lower dir)
	cgroups []string // node cgroup in each hierarchy; [0] is the v2 one
	proc    *proc    // nspawn or sshd; nil before the first start
}

// clusterRecord is Dir/cluster.json: enough for a later run to tell whether
// the cluster's owner still lives and which addresses it holds.
type clusterRecord struct {
	Name       string   `json:"name"`
	Kind       string   `json:"kind"`
	OwnerPID   int      `json:"ownerPID"`
	OwnerStart uint64   `json:"ownerStart"`
	Addresses  []string `json:"addresses"`
	Nodes      []string `json:"nodes"`
}

// newCluster reaps leftovers of dead runs, allocates a name and addresses and
// creates the state dir, all under the state-dir lock so that concurrent test
// binaries never pick the same addresses.
func newCluster(ctx context.Context, kind string, opts Options, tools map[string]string) (*Cluster, error) {
	cg, err := findCgroupRoots()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.StateDir, 0o755); err != nil {
		return nil, fmt.Errorf("harness: state dir: %w", err)
	}
	unlock, err := lockFile(ctx, filepath.Join(opts.StateDir, ".lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()

	live, err := reapStale(opts.StateDir, cg, tools["nft"], opts.Logf)
	if err != nil {
		return nil, err
	}
	used := map[string]bool{}
	taken := map[string]bool{}
	for _, r := range live {
		taken[r.Name] = true
		for _, a := range r.Addresses {
			used[a] = true
		}
	}
	addrs := allocAddresses(kind, opts.N, used)
	if len(addrs) < opts.N {
		return nil, fmt.Errorf("harness: only %d free %s addresses, need %d", len(addrs), kind, opts.N)
	}
	var name string
	for {
		b := make([]byte, 2)
		if _, err := rand.Read(b); err != nil {
			return nil, fmt.Errorf("harness: cluster name: %w", err)
		}
		name = opts.Name + "-" + hex.EncodeToString(b)
		if !taken[name] {
			if _, err := os.Stat(filepath.Join(opts.StateDir, name)); errors.Is(err, os.ErrNotExist) {
				break
			}
		}
	}
	self := os.Getpid()
	start, _ := procStartTime(self)
	c := &Cluster{
		Name:  name,
		Kind:  kind,
		Dir:   filepath.Join(opts.StateDir, name),
		User:  "root",
		opts:  opts,
		tools: tools,
		cg:    cg,
		nodes: map[string]*nodeState{},
	}
	c.IdentityFile = filepath.Join(c.Dir, "id_ed25519")
	c.KnownHostsFile = filepath.Join(c.Dir, "known_hosts")
	rec := clusterRecord{Name: name, Kind: kind, OwnerPID: self, OwnerStart: start, Addresses: addrs}
	for i, a := range addrs {
		n := &nodeState{Node: Node{
			Name:    name + "-" + strconv.Itoa(i+1),
			Address: a,
			Port:    22,
			Kind:    kind,
		}}
		n.dir = filepath.Join(c.Dir, "nodes", n.Name)
		n.cgroups = nodeCgroups(cg, name, n.Name, kind)
		c.Nodes = append(c.Nodes, n.Node)
		c.nodes[n.Name] = n
		rec.Nodes = append(rec.Nodes, n.Name)
	}
	for _, d := range []string{c.Dir, filepath.Join(c.Dir, "pids"), filepath.Join(c.Dir, "nodes")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("harness: state dir: %w", err)
		}
	}
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("harness: cluster record: %w", err)
	}
	if err := os.WriteFile(filepath.Join(c.Dir, "cluster.json"), b, 0o644); err != nil {
		return nil, fmt.Errorf("harness: cluster record: %w", err)
	}
	return c, nil
}

// nodeCgroups is where a node's processes live. Systemd nodes need the v1
// name=systemd hierarchy as well on a hybrid host (see cgroupRoots).
func nodeCgroups(cg cgroupRoots, cluster, node, kind string) []string {
	dirs := []string{filepath.Join(cg.v2, cgroupBase, cluster, node)}
	if kind == KindSystemd && cg.v1Systemd != "" {
		dirs = append(dirs, filepath.Join(cg.v1Systemd, cgroupBase, cluster, node))
	}
	return dirs
}

// Address pools: 127.0.X.Y with Y in 1..250. Systemd nodes take X in 2..9,
// light nodes X in 10..250, so the two kinds never collide.
func poolRange(kind string) (lo, hi int) {
	if kind == KindSystemd {
		return 2, 9
	}
	return 10, 250
}

func poolSize(kind string) int {
	lo, hi := poolRange(kind)
	return (hi - lo + 1) * 250
}

// allocAddresses picks the n lowest free addresses of a kind's pool.
func allocAddresses(kind string, n int, used map[string]bool) []string {
	lo, hi := poolRange(kind)
	var out []string
	for x := lo; x <= hi && len(out) < n; x++ {
		for y := 1; y <= 250 && len(out) < n; y++ {
			a := fmt.Sprintf("127.0.%d.%d", x, y)
			if !used[a] {
				out = append(out, a)
			}
		}
	}
	return out
}

// lockFile takes an exclusive flock, polling so that ctx can cancel the wait.
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("harness: lock %s: %w", path, err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("harness: lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("harness: waiting for lock %s: %w", path, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// ownerAlive tells whether the process that created a cluster still runs.
func (r clusterRecord) ownerAlive() bool {
	if r.OwnerPID <= 0 {
		return false
	}
	st, ok := procStartTime(r.OwnerPID)
	return ok && st == r.OwnerStart
}

// readRecord loads Dir/cluster.json.
func readRecord(dir string) (clusterRecord, error) {
	var r clusterRecord
	b, err := os.ReadFile(filepath.Join(dir, "cluster.json"))
	if err != nil {
		return r, err
	}
	return r, json.Unmarshal(b, &r)
}

// node looks a node up by name.
func (c *Cluster) node(name string) (*nodeState, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.nodes[name]
	if !ok {
		return nil, fmt.Errorf("harness: no node %q in cluster %s", name, c.Name)
	}
	return n, nil
}

// prepareClient writes the client key, authorized_keys and known_hosts, and
// returns the per-node host keys (known_hosts and nodes must agree).
func (c *Cluster) prepareClient() (map[string]keyPair, error) {
	client, err := newKeyPair("drover-test@" + c.Name)
	if err != nil {
		return nil, err
	}
	if err := client.write(c.IdentityFile); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(c.Dir, "authorized_keys"), []byte(client.public+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("harness: authorized_keys: %w", err)
	}
	hostKeys := make(map[string]keyPair, len(c.Nodes))
	var kh strings.Builder
	for _, n := range c.Nodes {
		k, err := newKeyPair("root@" + n.Name)
		if err != nil {
			return nil, err
		}
		hostKeys[n.Name] = k
		kh.WriteString(knownHostsLine(n.Address, n.Port, k) + "\n")
	}
	if err := os.WriteFile(c.KnownHostsFile, []byte(kh.String()), 0o644); err != nil {
		return nil, fmt.Errorf("harness: known_hosts: %w", err)
	}
	return hostKeys, nil
}

// NodesYAML renders a manifest `nodes:` block at column 0 (nest it with Indent).
// roles(i) gives the roles of c.Nodes[i]; roles may be nil.
func (c *Cluster) NodesYAML(roles func(i int) []string) string {
	var b strings.Builder
	b.WriteString("nodes:\n")
	for i, n := range c.Nodes {
		fmt.Fprintf(&b, "  - name: %s\n    address: %s\n    port: %d\n", n.Name, n.Address, n.Port)
		if roles != nil {
			if r := roles(i); len(r) > 0 {
				fmt.Fprintf(&b, "    roles: [%s]\n", strings.Join(r, ", "))
			}
		}
	}
	return b.String()
}

// SSHYAML renders a manifest `ssh:` block (docs/DESIGN.md's spec.ssh sketch) at
// column 0 that reaches this cluster's nodes strictly, with no agent.
func (c *Cluster) SSHYAML() string {
	return fmt.Sprintf("ssh:\n  user: %s\n  port: 22\n  identityFiles: [%s]\n  knownHostsFile: %s\n  connectTimeout: %s\n",
		c.User, c.IdentityFile, c.KnownHostsFile, c.opts.ConnectTimeout)
}

// Indent prefixes every non-empty line of block with n spaces, to nest a
// rendered block under `spec:`.
func Indent(block string, n int) string {
	pad := strings.Repeat(" ", n)
	lines := strings.SplitAfter(block, "\n")
	var b strings.Builder
	for _, l := range lines {
		if strings.TrimSpace(l) != "" {
			b.WriteString(pad)
		}
		b.WriteString(l)
	}
	return b.String()
}

// PIDs returns the pids of the node processes the harness started and has
// not yet reaped.
func (c *Cluster) PIDs() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	var pids []int
	for _, n := range c.nodes {
		if n.proc != nil && !n.proc.exited() {
			pids = append(pids, n.proc.pid)
		}
	}
	sort.Ints(pids)
	return pids
}

// Leftovers lists live processes that belong to this cluster: recorded pids
// and anything whose cmdline names the cluster's state dir (every node
// process's does: nspawn's --overlay and sshd's -f point into it). Empty
// after a successful Close.
func (c *Cluster) Leftovers() []string {
	seen := map[int]bool{}
	var out []string
	add := func(ps []procInfo) {
		for _, p := range ps {
			if !seen[p.PID] {
				seen[p.PID] = true
				out = append(out, fmt.Sprintf("%d %s", p.PID, p.Cmdline))
			}
		}
	}
	add(recordedAlive(c.Dir, c.Dir))
	add(scanProcs(func(cl string) bool { return strings.Contains(cl, c.Dir+"/") }))
	for _, dir := range c.cg.clusterDirs(c.Name) {
		for _, pid := range cgroupPids(dir) {
			if !seen[pid] {
				seen[pid] = true
				out = append(out, fmt.Sprintf("%d %s (in %s)", pid, readCmdline(pid), dir))
			}
		}
	}
	sort.Strings(out)
	return out
}

// Close stops every node, deletes the cluster's cgroups, nftables table and
// state dir, and then verifies that no process of the cluster is left.
// Calling it again returns the first result.
func (c *Cluster) Close() error {
	c.closeOnce.Do(func() { c.closeErr = c.close() })
	return c.closeErr
}

func (c *Cluster) close() error {
	c.mu.Lock()
	c.closed = true
	nodes := make([]*nodeState, 0, len(c.nodes))
	for _, n := range c.nodes {
		nodes = append(nodes, n)
	}
	c.mu.Unlock()

	var errs []error
	if c.Kind == KindSystemd {
		// Orderly shutdown in parallel: nspawn turns SIGTERM into a poweroff
		// of the container; cgroup.kill if it overruns.
		var wg sync.WaitGroup
		for _, n := range nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := c.stopNode(n, c.opts.StopTimeout); err != nil {
					c.opts.Logf("harness: %v", err)
				}
			}()
		}
		wg.Wait()
	}
	// One write kills every node's whole tree (light nodes, sessions, and
	// any systemd node that overran its shutdown) at once.
	if err := killCgroup(c.cg.clusterDirs(c.Name)[0], 10*time.Second); err != nil {
		errs = append(errs, err)
	}
	if err := waitGroupTimeout(&c.wg, 10*time.Second); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, c.releaseHostState(nodes)...)
	if left := c.Leftovers(); len(left) > 0 {
		errs = append(errs, fmt.Errorf("harness: cluster %s left processes running:\n  %s", c.Name, strings.Join(left, "\n  ")))
	} else if err := removeTree(c.Dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// releaseHostState removes what lives outside the state dir: cgroups, the
// nftables table and nspawn's per-machine dir in /run/systemd/nspawn.
func (c *Cluster) releaseHostState(nodes []*nodeState) []error {
	var errs []error
	for _, dir := range c.cg.clusterDirs(c.Name) {
		if err := removeCgroupTree(dir, 5*time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	if err := deleteNftTable(c.tools["nft"], nftTableName(c.Name)); err != nil {
		errs = append(errs, err)
	}
	for _, n := range nodes {
		_ = os.RemoveAll(filepath.Join(nspawnPropagateDir, n.Name))
	}
	return errs
}

func waitGroupTimeout(wg *sync.WaitGroup, d time.Duration) error {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-time.After(d):
		return fmt.Errorf("harness: node processes not reaped after %v", d)
	}
}

// Kill powers a node off at once: every process of the node dies together
// (cgroup.kill), with no shutdown. Start boots it again with its disk intact.
func (c *Cluster) Kill(name string) error {
	n, err := c.node(name)
	if err != nil {
		return err
	}
	if err := killCgroup(n.cgroups[0], 10*time.Second); err != nil {
		return err
	}
	if p := c.procOf(n); p != nil && !p.wait(10*time.Second) {
		return fmt.Errorf("harness: kill %s: process %d not reaped", name, p.pid)
	}
	return nil
}

// procOf returns the node's current process (nil before its first start).
func (c *Cluster) procOf(n *nodeState) *proc {
	c.mu.Lock()
	defer c.mu.Unlock()
	return n.proc
}

// Stop shuts a node down: an orderly poweroff for a systemd node (cgroup.kill
// after StopTimeout), a kill for a light node, which has nothing to shut down.
func (c *Cluster) Stop(name string) error {
	n, err := c.node(name)
	if err != nil {
		return err
	}
	if c.Kind == KindSystemd {
		return c.stopNode(n, c.opts.StopTimeout)
	}
	return c.Kill(name)
}

// Start boots a stopped or killed node again and waits until its sshd answers.
func (c *Cluster) Start(ctx context.Context, name string) error {
	n, err := c.node(name)
	if err != nil {
		return err
	}
	if p := c.procOf(n); p != nil && !p.exited() {
		return fmt.Errorf("harness: start %s: already running", name)
	}
	if c.Kind == KindSystemd {
		return c.startSystemdNode(ctx, n)
	}
	return c.startLightNode(ctx, n)
}

// StopSSHD stops the node's sshd and nothing else: the node stays up and
// established sessions survive, as with `systemctl stop ssh` on a real host.
func (c *Cluster) StopSSHD(name string) error {
	n, err := c.node(name)
	if err != nil {
		return err
	}
	if c.Kind == KindSystemd {
		return c.systemctlOnNode(n, "stop", "ssh.service")
	}
	p := c.procOf(n)
	if p == nil || p.exited() {
		return nil
	}
	if err := syscall.Kill(p.pid, syscall.SIGTERM); err != nil {
		return fmt.Errorf("harness: stop sshd on %s: %w", name, err)
	}
	if !p.wait(10 * time.Second) {
		return fmt.Errorf("harness: stop sshd on %s: still running", name)
	}
	return nil
}

// StartSSHD starts the node's sshd again after StopSSHD and waits until it answers.
func (c *Cluster) StartSSHD(ctx context.Context, name string) error {
	n, err := c.node(name)
	if err != nil {
		return err
	}
	if c.Kind == KindSystemd {
		if err := c.systemctlOnNode(n, "start", "ssh.service"); err != nil {
			return err
		}
		return waitTCP(ctx, n, nil, c.opts.BootTimeout)
	}
	return c.startLightNode(ctx, n)
}

// consoleTail returns the end of a node's console log, without terminal
// escapes, for error messages.
func consoleTail(path string, max int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no console log: " + err.Error() + ")"
	}
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return ansiRE.ReplaceAllString(string(b), "")
}

var ansiRE = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]`)
