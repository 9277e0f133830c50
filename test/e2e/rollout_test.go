package e2e

import (
	"context"
	"net"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/drover-project/drover/test/harness"
)

// availability is what a poller saw of node_exporter across the nodes.
type availability struct {
	samples  int
	maxDown  int
	worst    []string // the nodes down in the sample with the most down
	downSeen map[string]bool
}

// pollExporters connects to every node's :9100 every 50ms until ctx ends.
// A stopped exporter refuses the connection at once, so a sample tells
// exactly which nodes are not serving at that moment.
func pollExporters(ctx context.Context, nodes []harness.Node) <-chan availability {
	ch := make(chan availability, 1)
	go func() {
		a := availability{downSeen: map[string]bool{}}
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			var mu sync.Mutex
			var down []string
			onEach(nodes, func(n harness.Node) {
				conn, err := net.DialTimeout("tcp", net.JoinHostPort(n.Address, "9100"), 2*time.Second)
				if err != nil {
					mu.Lock()
					down = append(down, n.Name)
					mu.Unlock()
					return
				}
				conn.Close()
			})
			a.samples++
			for _, n := range down {
				a.downSeen[n] = true
			}
			if len(down) > a.maxDown {
				slices.Sort(down)
				a.maxDown, a.worst = len(down), down
			}
			select {
			case <-ctx.Done():
				ch <- a
				return
			case <-tick.C:
			}
		}
	}()
	return ch
}

// TestFailedUpgradeRollsBack upgrades node_exporter to a build that exits
// at once (same health check, its own ExecStart) with onFailure: rollback
// and a batch of one:
// apply fails, says the rollout halted and rolled back, the first node
// serves 1.8.2 again, and no other node was touched.
func TestFailedUpgradeRollsBack(t *testing.T) {
	s := setup(t)
	s.baseline(t)
	first, rest := s.masters[0], s.nodes()[1:]
	before := map[string]string{}
	for _, n := range rest {
		before[n.Name] = s.footprint(t, n)
	}
	sp := s.base().withNodeExporter(s.arts[harness.ArtifactFailing])
	sp.NodeExporter.Exec = "{{ .Dir }}/bin/failing --web.listen-address={{ .Node.Address }}:9100"
	sp.NodeExporter.MaxUnavailable = "1"
	sp.HealthTimeout = "15s"
	m := s.write(t, sp)

	r := s.run(t, m, "apply", "--yes")
	if r.Code == 0 {
		t.Fatalf("apply of a failing build exited 0")
	}
	out := r.Stdout + r.Stderr
	for _, want := range []string{"rollout halted", "rolled back to 1.8.2"} {
		if !strings.Contains(out, want) {
			t.Errorf("apply output does not say %q", want)
		}
	}
	var upgraded []string
	for _, a := range actions(r.Stdout) {
		if a.Kind == "upgrade" && a.Event == "start" {
			upgraded = append(upgraded, a.Node)
		}
	}
	if len(upgraded) != 1 || upgraded[0] != first.Name {
		t.Errorf("apply started upgrades on %v, want only %s", upgraded, first.Name)
	}
	requireExporters(t, []harness.Node{first}, "1.8.2")
	if v := s.active(t, first, "node-exporter"); !strings.HasSuffix(v, "/1.8.2") {
		t.Errorf("%s: active link %q, want 1.8.2", first.Name, v)
	}
	if rc := s.receipt(t, first, "node-exporter"); rc == nil || rc.Version != "1.8.2" {
		t.Errorf("%s: receipt %+v, want version 1.8.2", first.Name, rc)
	}
	// The failed version came with another ExecStart: the rollback put
	// back the unit 1.8.2 runs with.
	if unit := s.exec(t, first, "cat /etc/systemd/system/drover-node-exporter.service"); !strings.Contains(unit, "/bin/node_exporter ") {
		t.Errorf("%s: unit after rollback is not 1.8.2's:\n%s", first.Name, unit)
	}
	// The failed version rewrote a file outside its version dir: the
	// rollback put back 1.8.2's.
	if got := s.exec(t, first, "cat /etc/default/drover-node-exporter"); got != "# node-exporter 1.8.2\n" {
		t.Errorf("%s: /etc/default/drover-node-exporter after rollback: %q", first.Name, got)
	}
	for _, n := range rest {
		if after := s.footprint(t, n); after != before[n.Name] {
			t.Errorf("%s was touched by the halted rollout:\nbefore:\n%s\nafter:\n%s", n.Name, before[n.Name], after)
		}
	}
	requireExporters(t, rest, "1.8.2")
}

// TestUpgradeWithinMaxUnavailable upgrades node_exporter 1.8.2 -> 1.9.1
// on all five nodes with maxUnavailable 2: masters first, never more than
// two nodes down (by apply's own action lines and by a poller from the
// host), and 1.9.1 answering everywhere at the end.
func TestUpgradeWithinMaxUnavailable(t *testing.T) {
	s := setup(t)
	s.baseline(t)
	const maxUnavailable = 2
	m := s.write(t, s.base().withNodeExporter(s.arts[harness.ArtifactNodeExporterNew]))

	ctx, stop := context.WithCancel(context.Background())
	polled := pollExporters(ctx, s.nodes())
	r := s.run(t, m, "apply", "--yes")
	stop()
	avail := <-polled
	if r.Code != 0 {
		t.Fatalf("apply exited %d, want 0", r.Code)
	}
	t.Logf("poller: %d samples, at most %d down at once %v, down at some point: %v", avail.samples, avail.maxDown, avail.worst, avail.downSeen)
	if avail.maxDown > maxUnavailable {
		t.Errorf("poller saw %d nodes down at once %v, maxUnavailable is %d", avail.maxDown, avail.worst, maxUnavailable)
	}
	overlap, order := maxOverlap(r.Stdout, "node-exporter")
	t.Logf("apply ran at most %d node-exporter upgrades at once, in order %v", overlap, order)
	if overlap > maxUnavailable || overlap < 1 {
		t.Errorf("apply ran %d node-exporter actions at once, want 1..%d", overlap, maxUnavailable)
	}
	if len(order) != len(s.nodes()) {
		t.Errorf("apply upgraded %d nodes, want %d", len(order), len(s.nodes()))
	}
	// roleOrder [master, agent]: every master starts before any agent.
	for i, name := range order {
		if i < numMasters && !slices.ContainsFunc(s.masters, func(n harness.Node) bool { return n.Name == name }) {
			t.Errorf("upgrade %d ran on %s, an agent, before every master had started", i+1, name)
		}
	}
	requireExporters(t, s.nodes(), "1.9.1")
	for _, n := range s.nodes() {
		if rc := s.receipt(t, n, "node-exporter"); rc == nil || rc.Version != "1.9.1" || rc.Previous != "1.8.2" {
			t.Errorf("%s: receipt %+v, want version 1.9.1, previous 1.8.2", n.Name, rc)
		}
	}
	s.mustPlanEmpty(t, m)
}

// TestKilledApplyConverges kills apply with SIGKILL in the middle of an
// upgrade across the nodes, twice (as the first action starts, and as
// the first one ends while others run), then applies again: the cluster
// converges, and every node runs the version its active link and receipt
// name, with no temp file left behind.
func TestKilledApplyConverges(t *testing.T) {
	s := setup(t)
	s.baseline(t)
	m := s.write(t, s.base().withNodeExporter(s.arts[harness.ArtifactNodeExporterNew]))

	kills := []struct {
		name string
		at   func(actionLine) bool
	}{
		{"first action start", func(a actionLine) bool { return a.Event == "start" }},
		{"first action end", func(a actionLine) bool { return a.Event == "done" }},
	}
	for _, k := range kills {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		cmd := s.droverCmd(ctx, m, "apply", "--yes")
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		w := newLineWatcher(stdout)
		hit := w.waitFor(func(l string) bool {
			a, ok := parseActionLine(l)
			return ok && k.at(a)
		})
		if hit {
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
		}
		out := w.wait()
		err = cmd.Wait()
		cancel()
		t.Logf("apply killed at %s after %v (err %v):\n%s", k.name, since(start), err, out)
		if !hit {
			t.Fatalf("apply ended before %s: nothing to kill", k.name)
		}
	}

	s.mustApply(t, m)
	s.mustPlanEmpty(t, m)
	requireExporters(t, s.nodes(), "1.9.1")
	for _, n := range s.nodes() {
		if v := s.active(t, n, "node-exporter"); v != "../packages/node-exporter/1.9.1" {
			t.Errorf("%s: active link %q, want ../packages/node-exporter/1.9.1", n.Name, v)
		}
		if rc := s.receipt(t, n, "node-exporter"); rc == nil || rc.Version != "1.9.1" {
			t.Errorf("%s: receipt %+v, want 1.9.1", n.Name, rc)
		}
		if active, _, _ := s.unitState(t, n, "node-exporter"); active != "active" {
			t.Errorf("%s: unit %s, want active", n.Name, active)
		}
		if left := s.exec(t, n, "find "+installRoot+" /etc/systemd/system -name '*.tmp' -o -name '*.part' -o -name '*.old'"); strings.TrimSpace(left) != "" {
			t.Errorf("%s: temp files left behind:\n%s", n.Name, left)
		}
	}
}
