package e2edaemon

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/drover-project/drover/test/daemonproc"
)

// waitActionStarted waits until the daemon's log, past its first skip
// lines, shows an upgrade that has done step on some node, and returns
// that node's name.
func waitActionStarted(t *testing.T, d *daemonproc.Daemon, step string, skip int) string {
	t.Helper()
	var node string
	daemonproc.WaitFor(t, 2*time.Minute, "an upgrade to reach step "+step, func() bool {
		for _, l := range d.LogLines()[skip:] {
			if l["action"] == "upgrade" && l["step"] == step {
				node, _ = l["node"].(string)
				return true
			}
		}
		return false
	})
	return node
}

// checkWhole fails if a node is half-switched: its active link, receipt
// and running node_exporter must all be one version.
func (s *suite) checkWhole(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, n := range s.c.Nodes {
		active, receipt, unit := s.nodeState(t, n.Name)
		running, err := nodeVersion(n)
		if err != nil {
			running = "down"
		}
		if active != receipt || receipt != running || unit != "active" {
			t.Errorf("%s is half-switched: active link %s, receipt %s, running %s, unit %s", n.Name, active, receipt, running, unit)
		}
		out[n.Name] = receipt
	}
	return out
}

// TestKilledMidRolloutFinishesOnRestart: while a daemon rolls out an
// upgrade, a second one on the same manifest refuses to start; the first
// is then killed with SIGKILL in the middle of an action, and a new daemon
// finishes the rollout correctly.
func TestKilledMidRolloutFinishesOnRestart(t *testing.T) {
	s := setup(t)
	from, to := s.pair()
	m := filepath.Join(t.TempDir(), "cluster.yaml")
	// One node at a time, so that the rollout has a middle.
	s.writeManifest(t, m, spec{version: from, maxUnavailable: "1"})
	d := s.startDaemon(t, m)
	s.waitConverged(t, d, from, rollout)

	skip := len(d.LogLines())
	s.writeManifest(t, m, spec{version: to, maxUnavailable: "1"})
	node := waitActionStarted(t, d, "switch active", skip)

	// A second daemon on the same manifest, while the first runs.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, s.drover, "daemon", "-f", m, "--addr", daemonproc.FreeAddr(t), "--lock-dir", s.lockDir, "--state-dir", s.lockDir).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "another drover daemon already manages") {
		t.Errorf("second daemon: %v\n%s", err, out)
	}

	d.Kill()
	t.Logf("daemon killed during the upgrade of %s", node)
	d2 := s.startDaemon(t, m)
	s.waitConverged(t, d2, to, rollout)
	for n, v := range s.checkWhole(t) {
		if v != to {
			t.Errorf("%s ended on %s", n, v)
		}
	}
	// No temp link or half-written receipt left behind.
	for _, n := range s.c.Nodes {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		left, err := s.c.Exec(ctx, n.Name, "ls -A /opt/drover/active /opt/drover/receipts | grep '^\\.' || true")
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimSpace(left) != "" {
			t.Errorf("%s: leftovers: %s", n.Name, left)
		}
	}
}

// TestSigtermLetsActionFinish: SIGTERM during an upgrade stops taking new
// work, lets the running action finish, and exits 0 well within the
// grace period; no node is half-switched and only the node that was being
// upgraded moved.
func TestSigtermLetsActionFinish(t *testing.T) {
	s := setup(t)
	from, to := s.pair()
	m := filepath.Join(t.TempDir(), "cluster.yaml")
	// One node at a time, so that the rollout has a middle.
	s.writeManifest(t, m, spec{version: from, maxUnavailable: "1"})
	d := s.startDaemon(t, m)
	s.waitConverged(t, d, from, rollout)

	skip := len(d.LogLines())
	s.writeManifest(t, m, spec{version: to, maxUnavailable: "1"})
	node := waitActionStarted(t, d, "switch active", skip)
	start := time.Now()
	if err := d.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	code, exited := d.ExitedWithin(60 * time.Second)
	if !exited || code != 0 {
		t.Fatalf("after SIGTERM: exited %v, code %d\n%s", exited, code, d.Tail(20))
	}
	t.Logf("exited %s after SIGTERM", since(start))
	if !d.LogHas(map[string]string{"msg": "action succeeded", "node": node, "action": "upgrade"}) {
		t.Errorf("the upgrade of %s did not finish before exit", node)
	}
	if !d.LogHas(map[string]string{"msg": "drover daemon stopped"}) {
		t.Error("no 'drover daemon stopped' line")
	}
	for n, v := range s.checkWhole(t) {
		want := from
		if n == node {
			want = to
		}
		if v != want {
			t.Errorf("%s on %s, want %s (only %s was being upgraded)", n, v, want, node)
		}
	}
}
