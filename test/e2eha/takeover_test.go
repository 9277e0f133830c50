package e2eha

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/drover-project/drover/internal/etcdtest"
	"github.com/drover-project/drover/reconciler/plan"
	"github.com/drover-project/drover/test/daemonproc"
	"github.com/drover-project/drover/test/harness"
)

// Addresses of this package (the brief's 127.5.0.0/16): etcd members on
// .1-.3, daemons on .11-.13.
var (
	etcdAddrs   = []string{"127.5.0.1", "127.5.0.2", "127.5.0.3"}
	daemonAddrs = []string{"127.5.0.11:9464", "127.5.0.12:9464", "127.5.0.13:9464"}
)

const (
	leaseTTL = 3 * time.Second
	// startTime is how long slow 2.0 takes to come up on a node: longer
	// than the lease, so a leader killed while nodes start leaves them
	// starting for its successor to see.
	startTime  = 5 * time.Second
	recordName = "ha-avail"
)

// artifact writes slow-<v>.tar.gz with bin/check, its health check, and
// returns its path and sha256. 1.0 is always healthy. 2.0 is unavailable
// from the moment it became active (the active link's own mtime, written
// by drover's switch step) for startTime; the first check that passes
// writes "<down> <up>" (seconds since the epoch) to the node's record in
// its private home, which the test reads.
func artifact(t *testing.T, v, home string) (string, string) {
	t.Helper()
	check := "#!/bin/sh\nexit 0\n"
	if v == "2.0" {
		check = fmt.Sprintf(`#!/bin/sh
t0=$(stat -c %%.9Y /opt/drover/active/slow) || exit 1
now=$(date +%%s.%%N)
if awk "BEGIN { exit !($now < $t0 + %d) }"; then echo "starting since $t0"; exit 1; fi
[ -e %[2]s ] || printf '%%s %%s\n' "$t0" "$now" > %[2]s
echo up
`, int(startTime/time.Second), filepath.Join(home, recordName))
	}
	p := filepath.Join(work, "slow-"+v+".tar.gz")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	gz := gzip.NewWriter(f)
	tw := tar.NewWriter(gz)
	for _, e := range []struct {
		name, body string
		mode       int64
	}{{"bin/check", check, 0o755}, {"VERSION", v + "\n", 0o644}} {
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Mode: e.mode, Size: int64(len(e.body)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(e.body))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	gz.Close()
	f.Close()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return p, hex.EncodeToString(sum[:])
}

func manifest(v, art, sha string) string {
	var b strings.Builder
	b.WriteString("apiVersion: drover/v1\nkind: Cluster\nmetadata:\n  name: eha\nspec:\n  installRoot: /opt/drover\n  probeInterval: 2s\n")
	b.WriteString(harness.Indent(cluster.SSHYAML(), 2))
	b.WriteString("  rollout:\n    maxUnavailable: 2\n    healthTimeout: 60s\n")
	b.WriteString(harness.Indent(cluster.NodesYAML(nil), 2))
	fmt.Fprintf(&b, `  components:
    - name: slow
      version: %q
      artifact: {path: %s, sha256: %q}
      health: {exec: {command: [/opt/drover/active/slow/bin/check]}, timeout: 5s}
`, v, art, sha)
	return b.String()
}

// ring is the three daemons, each with its own manifest file, lock dir
// and listen address.
type ring struct {
	t         *testing.T
	daemons   []*daemonproc.Daemon
	manifests []string
	dead      map[int]bool
}

func (r *ring) write(content string) { r.writeTo(content, 0, 1, 2) }

// writeTo writes content as the manifest of the daemons given.
func (r *ring) writeTo(content string, daemons ...int) {
	r.t.Helper()
	for _, i := range daemons {
		p := r.manifests[i]
		tmp := p + ".tmp"
		if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
			r.t.Fatal(err)
		}
		if err := os.Rename(tmp, p); err != nil {
			r.t.Fatal(err)
		}
	}
}

// metric is the value of an unlabelled series on daemon i, or -1.
func (r *ring) metric(i int, name string) float64 {
	b, err := r.daemons[i].Get("/metrics")
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return -1
}

// leaders are the live daemons that say they lead.
func (r *ring) leaders() []int {
	var out []int
	for i := range r.daemons {
		if !r.dead[i] && r.metric(i, "drover_ha_leader") == 1 {
			out = append(out, i)
		}
	}
	return out
}

// leader waits for exactly one live leader and returns it.
func (r *ring) leader(within time.Duration) int {
	r.t.Helper()
	var l []int
	daemonproc.WaitFor(r.t, within, "one leader", func() bool { l = r.leaders(); return len(l) == 1 })
	return l[0]
}

// status asks a live standby (forwarded to the leader).
func (r *ring) status(via int) plan.ClusterStatus { return r.daemons[via].Status() }

func (r *ring) kill(i int) {
	r.daemons[i].Kill()
	r.dead[i] = true
}

func (r *ring) standby() int {
	for i := range r.daemons {
		if !r.dead[i] && !slices.Contains(r.leaders(), i) {
			return i
		}
	}
	r.t.Fatal("no live standby")
	return -1
}

// startRing writes content as every daemon's manifest and starts the
// three daemons, daemon i on etcd's endpoints(i).
func startRing(t *testing.T, endpoints func(i int) []string, content string) *ring {
	t.Helper()
	return startRingTTL(t, endpoints, content, leaseTTL)
}

// startRingTTL is startRing with daemons on a lease of ttl.
func startRingTTL(t *testing.T, endpoints func(i int) []string, content string, ttl time.Duration) *ring {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(work, "logs"), 0o755); err != nil {
		t.Fatal(err)
	}
	r := &ring{t: t, dead: map[int]bool{}}
	for i := range daemonAddrs {
		dir := filepath.Join(t.TempDir(), fmt.Sprintf("d%d", i+1))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		r.manifests = append(r.manifests, filepath.Join(dir, "cluster.yaml"))
	}
	r.write(content)
	for i, addr := range daemonAddrs {
		r.daemons = append(r.daemons, daemonproc.Start(t, daemonproc.Options{
			Binary: drover, Manifest: r.manifests[i], LockDir: filepath.Join(filepath.Dir(r.manifests[i]), "lock"),
			Token: "e2eha-token-0123456789", Addr: addr, Grace: 5 * time.Second, LogDir: filepath.Join(work, "logs"),
			Args: []string{"--etcd-endpoints", strings.Join(endpoints(i), ","), "--ha-name", fmt.Sprintf("d%d", i+1),
				"--lease-ttl", ttl.String(), "--log-level", "debug"},
		}))
	}
	return r
}

func TestTakeoverKeepsHaltAndBudget(t *testing.T) {
	setup(t)
	etcd := etcdtest.Start(t, etcdAddrs...)
	home, err := os.UserHomeDir()
	if err != nil {
		t.Fatal(err)
	}
	art1, sha1 := artifact(t, "1.0", home)
	art2, sha2 := artifact(t, "2.0", home)
	r := startRing(t, func(int) []string { return etcd.Endpoints() }, manifest("1.0", art1, sha1))
	first := r.leader(30 * time.Second)
	sb := r.standby()
	if m := r.metric(sb, "drover_ha_members"); m != 3 {
		daemonproc.WaitFor(t, 5*time.Second, "3 members on a standby", func() bool { return r.metric(sb, "drover_ha_members") == 3 })
	}
	converged := func(v string) func() bool {
		return func() bool {
			st := r.status(r.standby())
			if len(st.Nodes) != nodes {
				return false
			}
			for _, n := range st.Nodes {
				if !n.Converged || len(n.Components) != 1 || n.Components[0].ObservedVersion != v {
					return false
				}
			}
			return true
		}
	}
	daemonproc.WaitFor(t, 2*time.Minute, "1.0 everywhere, read through a standby", converged("1.0"))

	// A halt: 2.0 with a wrong sha256 halts the rollout before any node
	// changes. The leader is killed; its successor is still halted.
	bad := strings.Repeat("0", 64)
	r.write(manifest("2.0", art2, bad))
	daemonproc.WaitFor(t, time.Minute, "the rollout to halt", func() bool { return r.status(r.standby()).Rollout.Halted })
	halt := r.status(r.standby()).Rollout
	sb = r.standby()
	seen := histories(r.status(sb))
	if len(seen) == 0 {
		t.Fatal("no action history to compare")
	}
	r.kill(first)
	killed := time.Now()
	// No daemon leads until the lease runs out: the standby answers from
	// the shared state in etcd, with the same history and the halt.
	if st := r.status(sb); st.HA == nil || st.HA.Answer != "etcd" || !st.Rollout.Halted || st.Rollout.Reason != halt.Reason {
		t.Errorf("the standby's answer with the leader dead: ha %+v, rollout %+v", st.HA, st.Rollout)
	} else if h := histories(st); !reflect.DeepEqual(h, seen) {
		t.Errorf("the standby's history from etcd:\n%v\nthe leader's was:\n%v", h, seen)
	}
	second := r.leader(leaseTTL + 10*time.Second)
	took := time.Since(killed)
	t.Logf("d%d leads %s after d%d was killed", second+1, took.Round(time.Millisecond), first+1)
	if took > leaseTTL+2*time.Second+time.Second { // +1s: this test's polling
		t.Errorf("takeover took %s, want within the lease TTL %s + 2s", took, leaseTTL)
	}
	// The new leader has probed and planned; the halt holds.
	time.Sleep(3 * time.Second)
	st := r.status(r.standby())
	if !st.Rollout.Halted || st.Rollout.Reason != halt.Reason {
		t.Fatalf("after the takeover the rollout is %+v, want still halted: %q", st.Rollout, halt.Reason)
	}
	for _, n := range st.Nodes {
		if n.Components[0].ObservedVersion != "1.0" {
			t.Fatalf("%s changed under a halt: %+v", n.Name, n.Components[0])
		}
	}

	// The fixed manifest: a rolling upgrade at maxUnavailable 2, each
	// node taking startTime to come up. The second leader is killed
	// mid-rollout; the third finishes it.
	// Records an earlier 2.0 rollout left (TestLeaderCutOffFromEtcdFences
	// runs one on the same nodes) would count as up already.
	for _, n := range cluster.Nodes {
		if err := os.Remove(filepath.Join(filepath.Dir(n.Root), "home", recordName)); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	r.write(manifest("2.0", art2, sha2))
	records := func() map[string][2]float64 {
		out := map[string][2]float64{}
		for _, n := range cluster.Nodes {
			b, err := os.ReadFile(filepath.Join(filepath.Dir(n.Root), "home", recordName))
			if err != nil {
				continue
			}
			f := strings.Fields(string(b))
			if len(f) != 2 {
				t.Fatalf("%s: record %q", n.Name, b)
			}
			down, _ := strconv.ParseFloat(f[0], 64)
			up, _ := strconv.ParseFloat(f[1], 64)
			out[n.Name] = [2]float64{down, up}
		}
		return out
	}
	// starting are the nodes on which 2.0 is active and not up yet.
	starting := func() []string {
		rec := records()
		var out []string
		for _, n := range cluster.Nodes {
			link, err := os.Readlink(filepath.Join(n.Root, "active", "slow"))
			if _, up := rec[n.Name]; err == nil && strings.Contains(link, "2.0") && !up {
				out = append(out, n.Name)
			}
		}
		return out
	}
	daemonproc.WaitFor(t, 2*time.Minute, "the rollout to be midway, nodes starting", func() bool {
		n := len(records())
		return n >= 2 && n <= nodes-4 && len(starting()) > 0
	})
	t.Logf("killing the leader while %v start", starting())
	r.kill(second)
	killed = time.Now()
	third := r.leader(leaseTTL + 10*time.Second)
	took = time.Since(killed)
	t.Logf("d%d leads %s after d%d was killed mid-rollout (%d nodes up on 2.0)", third+1, took.Round(time.Millisecond), second+1, len(records()))
	if took > leaseTTL+2*time.Second+time.Second {
		t.Errorf("takeover took %s, want within the lease TTL %s + 2s", took, leaseTTL)
	}
	daemonproc.WaitFor(t, 3*time.Minute, "2.0 everywhere", func() bool {
		st, err := r.daemons[third].Get("/api/v1/status")
		return err == nil && len(st) > 0 && converged2(r, third)
	})
	rec := records()
	if len(rec) != nodes {
		t.Fatalf("records from %d nodes, want %d: %v", len(rec), nodes, rec)
	}
	worst, at := maxOverlap(rec)
	t.Logf("at most %d nodes unavailable at once (at %s)", worst, at)
	if worst > 2 {
		t.Errorf("%d nodes unavailable at once across both leaders, want at most maxUnavailable 2: %v", worst, rec)
	}
	_ = etcd
}

// histories are every node's action history in a status, one line an
// action.
func histories(st plan.ClusterStatus) map[string][]string {
	out := map[string][]string{}
	for _, n := range st.Nodes {
		for _, a := range n.History {
			out[n.Name] = append(out[n.Name], fmt.Sprintf("%s %s %s %s %s", a.Time.UTC().Format(time.RFC3339Nano), a.Action, a.Component, a.Version, a.Result))
		}
	}
	return out
}

func converged2(r *ring, i int) bool {
	st := r.daemons[i].Status()
	if len(st.Nodes) != nodes {
		return false
	}
	for _, n := range st.Nodes {
		if !n.Converged || n.Components[0].ObservedVersion != "2.0" {
			return false
		}
	}
	return true
}

// maxOverlap is the most intervals open at one instant, and which.
func maxOverlap(rec map[string][2]float64) (int, string) {
	type edge struct {
		t    float64
		d    int
		node string
	}
	var es []edge
	for n, w := range rec {
		es = append(es, edge{w[0], 1, n}, edge{w[1], -1, n})
	}
	// Ends before starts at the same instant: a node up when another goes down.
	sort.Slice(es, func(i, j int) bool {
		if es[i].t != es[j].t {
			return es[i].t < es[j].t
		}
		return es[i].d < es[j].d
	})
	open := map[string]bool{}
	worst, at := 0, ""
	for _, e := range es {
		if e.d > 0 {
			open[e.node] = true
		} else {
			delete(open, e.node)
		}
		if len(open) > worst {
			worst = len(open)
			names := make([]string, 0, len(open))
			for n := range open {
				names = append(names, n)
			}
			sort.Strings(names)
			at = strings.Join(names, ", ")
		}
	}
	return worst, at
}
