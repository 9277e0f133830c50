package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/drover-project/drover/reconciler/plan"
)

// TestFreshInstall installs the DC/OS-like cluster on wiped nodes: a
// three-member ZooKeeper ensemble on the masters whose zoo.cfg lists the
// masters, node_exporter 1.8.2 on every node answering on the node's own
// address, and the master list on the agents.
func TestFreshInstall(t *testing.T) {
	s := setup(t)
	s.wipe(t)
	m := s.write(t, s.base())

	plan := s.run(t, m, "plan")
	const want = "Plan: 10 to install, 0 to upgrade, 0 to reconfigure, 0 to restart, 0 to remove."
	if plan.Code != 2 || lastLine(plan.Stdout) != want {
		t.Fatalf("plan on fresh nodes: exit %d, %q; want exit 2, %q", plan.Code, lastLine(plan.Stdout), want)
	}

	r := s.mustApply(t, m)
	if !strings.Contains(r.Stdout, "5 of 5 nodes converged") {
		t.Errorf("apply summary: %q, want 5 of 5 nodes converged", lastLine(r.Stdout))
	}
	if got := len(actions(r.Stdout)); got < 20 {
		t.Errorf("apply printed %d action lines, want a start and an end for each of the 10 installs", got)
	}

	// ZooKeeper: zoo.cfg from the master list, myid by index, an ensemble
	// with exactly one leader.
	var servers []string
	for i, n := range s.masters {
		servers = append(servers, fmt.Sprintf("server.%d=%s:2888:3888", i+1, n.Address))
	}
	for i, n := range s.masters {
		cfg := s.exec(t, n, "cat "+installRoot+"/active/zookeeper/conf/zoo.cfg")
		for _, line := range append(servers, "clientPortAddress="+n.Address, "admin.enableServer=false") {
			if !strings.Contains(cfg, line+"\n") {
				t.Errorf("%s: zoo.cfg lacks %q:\n%s", n.Name, line, cfg)
			}
		}
		if got := strings.TrimSpace(s.exec(t, n, "cat /var/lib/zookeeper/myid")); got != fmt.Sprint(i+1) {
			t.Errorf("%s: myid %q, want %d", n.Name, got, i+1)
		}
		if rc := s.receipt(t, n, "zookeeper"); rc == nil || rc.Version != s.base().ZooKeeper.Version {
			t.Errorf("%s: zookeeper receipt %+v", n.Name, rc)
		}
	}
	s.requireEnsemble(t)
	s.requireZKWrite(t)

	// node_exporter 1.8.2 on every node's own address; nothing listens on
	// a wildcard address (the nodes share the host's network).
	requireExporters(t, s.nodes(), "1.8.2")
	requireNoWildcardListeners(t)

	// The agents learn the masters from the master list.
	var addrs []string
	for _, n := range s.masters {
		addrs = append(addrs, n.Address)
	}
	for _, n := range s.agents {
		got := strings.TrimSpace(s.exec(t, n, "cat /etc/dcos/master_list"))
		if got != strings.Join(addrs, ",") {
			t.Errorf("%s: master_list %q, want %q", n.Name, got, strings.Join(addrs, ","))
		}
	}
	for _, n := range s.masters {
		if out := s.exec(t, n, "ls /etc/dcos 2>/dev/null || true"); strings.TrimSpace(out) != "" {
			t.Errorf("%s: a master got the master list: %s", n.Name, out)
		}
	}
}

// requireZKWrite writes through one member with the Go client, reads it
// through another, and reads it once more with ZooKeeper's own Java CLI
// from the tarball, on a master: the ensemble replicates real writes.
func (s *suite) requireZKWrite(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	addrs := s.zkAddrs()
	path := fmt.Sprintf("/drover-e2e-fresh-%d", time.Now().UnixNano())
	if _, err := zkCreateOnce(ctx, addrs[:1], path, []byte("hello")); err != nil {
		t.Fatalf("zookeeper create %s on %s: %v", path, addrs[0], err)
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	sess, err := zkDial(cctx, addrs[2], 4*time.Second)
	if err != nil {
		t.Fatalf("zookeeper session on %s: %v", addrs[2], err)
	}
	ok, err := sess.exists(path)
	sess.close()
	if err != nil || !ok {
		t.Fatalf("zookeeper %s: %s exists = %v, %v; want it replicated", addrs[2], path, ok, err)
	}
	start := time.Now()
	out := s.exec(t, s.masters[1], fmt.Sprintf(
		"java -Xmx64m -XX:TieredStopAtLevel=1 -cp '%s/active/zookeeper/lib/*' org.apache.zookeeper.ZooKeeperMain -server %s get %s 2>/dev/null",
		installRoot, addrs[1], path))
	if !strings.Contains(out, "hello") {
		t.Errorf("zkCli get %s on %s: %q, want hello", path, addrs[1], out)
	}
	t.Logf("zkCli read the znode back in %v", since(start))
}

// requireNoWildcardListeners fails if anything listens on a wildcard
// address on the services' ports: every service must bind its node's own.
func requireNoWildcardListeners(t *testing.T) {
	t.Helper()
	out, err := exec.Command("ss", "-Hltn").Output()
	if err != nil {
		t.Logf("ss not available, listener check skipped: %v", err)
		return
	}
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) < 4 {
			continue
		}
		host, port, err := net.SplitHostPort(f[3])
		if err != nil {
			continue
		}
		switch port {
		case "9100", "2181", "2888", "3888", "8080":
			if host == "0.0.0.0" || host == "*" || host == "::" || host == "[::]" {
				t.Errorf("something listens on %s: %s", f[3], l)
			}
		}
	}
}

// TestPlanAfterConvergence: a converged cluster plans no change, exit 0,
// in text and in JSON.
func TestPlanAfterConvergence(t *testing.T) {
	s := setup(t)
	m := s.baseline(t)
	s.mustPlanEmpty(t, m)

	r := s.run(t, m, "plan", "-o", "json")
	if r.Code != 0 {
		t.Fatalf("plan -o json exited %d, want 0", r.Code)
	}
	var p plan.Plan
	if err := json.Unmarshal([]byte(r.Stdout), &p); err != nil {
		t.Fatalf("plan -o json is not a plan: %v\n%s", err, r.Stdout)
	}
	if p.Generation == "" || len(p.Nodes) != len(s.nodes()) {
		t.Fatalf("plan -o json: generation %q, %d nodes; want a generation and %d nodes", p.Generation, len(p.Nodes), len(s.nodes()))
	}
	for i, np := range p.Nodes {
		if np.Node != s.nodes()[i].Name || !np.Known || len(np.Actions) != 0 {
			t.Errorf("plan -o json node %d: %+v, want %s known with no actions", i, np, s.nodes()[i].Name)
		}
	}
}

// TestApplyTwiceChangesNothing: apply on a converged cluster prints no
// changes, runs no action, and leaves every node exactly as it was.
func TestApplyTwiceChangesNothing(t *testing.T) {
	s := setup(t)
	m := s.baseline(t)
	before := map[string]string{}
	for _, n := range s.nodes() {
		before[n.Name] = s.footprint(t, n)
	}
	r := s.mustApply(t, m)
	if !strings.Contains(r.Stdout, noChanges) {
		t.Errorf("second apply did not say %q", noChanges)
	}
	if as := actions(r.Stdout); len(as) > 0 {
		t.Errorf("second apply ran actions: %+v", as)
	}
	for _, n := range s.nodes() {
		if after := s.footprint(t, n); after != before[n.Name] {
			t.Errorf("%s changed on a second apply:\nbefore:\n%s\nafter:\n%s", n.Name, before[n.Name], after)
		}
	}
}
