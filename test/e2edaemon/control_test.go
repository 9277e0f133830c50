package e2edaemon

import (
	"context"
	"errors"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drover-project/drover/reconciler/plan"
	"github.com/drover-project/drover/test/daemonproc"
)

// ctl runs a drover client command against d with the token in
// DROVER_TOKEN ("" for none) and returns its exit code and output.
func (s *suite) ctl(t *testing.T, d *daemonproc.Daemon, token string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.drover, append(args, "--addr", d.Addr())...)
	cmd.Env = append(cmd.Environ(), "DROVER_TOKEN="+token, "DROVER_ADDR=", "NO_COLOR=1")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &ee):
		return ee.ExitCode(), string(out)
	}
	t.Fatalf("drover %v: %v\n%s", args, err, out)
	return 0, ""
}

// mustCtl is ctl with the daemon's token, failing the test unless it
// exits 0.
func (s *suite) mustCtl(t *testing.T, d *daemonproc.Daemon, args ...string) string {
	t.Helper()
	code, out := s.ctl(t, d, d.Token(), args...)
	if code != 0 {
		t.Fatalf("drover %v: exit %d\n%s", args, code, out)
	}
	return out
}

// onEveryNode runs a shell command on every node.
func (s *suite) onEveryNode(t *testing.T, command string) {
	t.Helper()
	for _, n := range s.c.Nodes {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, err := s.c.Exec(ctx, n.Name, command)
		cancel()
		if err != nil {
			t.Fatalf("%s: %s: %v", n.Name, command, err)
		}
	}
}

// waitProbedSince waits until the daemon has probed every node at least
// once since t (at least its own clock says so), and returns the status.
func waitProbedSince(t *testing.T, d *daemonproc.Daemon, since time.Time, within time.Duration) plan.ClusterStatus {
	t.Helper()
	var st plan.ClusterStatus
	daemonproc.WaitFor(t, within, "every node probed again", func() bool {
		st = d.Status()
		for _, n := range st.Nodes {
			if n.LastProbeAttempt.Before(since) {
				return false
			}
		}
		return len(st.Nodes) > 0
	})
	return st
}

// blockFile, while it exists on a node, makes the preStop hook of the
// manifests below fail: a node-side cause of a halted rollout.
const blockFile = "/etc/drover-e2e-block"

// TestOperatorControl drives a running daemon through the operator's
// commands, on the real binary and nodes:
//   - the control endpoints refuse a request without the token, and the
//     CLI says what is missing or wrong;
//   - suspend, then an edit that upgrades every node: nothing changes on
//     the nodes while probes go on and status and metrics say suspended;
//     a restarted daemon is still suspended; resume converges;
//   - an upgrade halted by a preStop hook that fails on the nodes; once the
//     node-side cause is removed the halt still holds, and drover retry
//     lifts it without a manifest edit, and the cluster converges;
//   - with a 10 minute probe interval, a stopped service is found and
//     repaired right after drover reconcile --node, long before the
//     interval, and no other node is probed for it.
func TestOperatorControl(t *testing.T) {
	s := setup(t)
	from, to := s.pair()
	m := filepath.Join(t.TempDir(), "cluster.yaml")
	t.Cleanup(func() { s.onEveryNode(t, "rm -f "+blockFile) })
	hook := "if test -e " + blockFile + "; then echo drain blocked by " + blockFile + " >&2; exit 1; fi"
	s.writeManifest(t, m, spec{version: from, preStop: hook})
	d := s.startDaemon(t, m)
	s.waitConverged(t, d, from, rollout)

	// refused without the token
	{
		t.Log("phase: refused without the token")
		for _, path := range []string{"/api/v1/suspend", "/api/v1/resume", "/api/v1/retry", "/api/v1/reconcile"} {
			resp, err := http.Post(d.URL(path), "application/json", strings.NewReader("{}"))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("POST %s without the token: %s, want 401", path, resp.Status)
			}
		}
		if code, out := s.ctl(t, d, "", "suspend"); code != 1 || !strings.Contains(out, "needs its console token") {
			t.Errorf("suspend without a token: exit %d\n%s", code, out)
		}
		if code, out := s.ctl(t, d, "wrong-token-0123456789abcdef", "suspend"); code != 1 || !strings.Contains(out, "refused the console token: wrong console token") {
			t.Errorf("suspend with a wrong token: exit %d\n%s", code, out)
		}
		if code, out := s.ctl(t, d, d.Token(), "reconcile", "--node", "no-such-node"); code != 1 || !strings.Contains(out, `no such node in the manifest in force: "no-such-node"`) {
			t.Errorf("reconcile of an unknown node: exit %d\n%s", code, out)
		}
		if d.Status().Suspended {
			t.Fatal("suspended by a refused request")
		}
	}

	// suspend, edit, restart, resume
	{
		t.Log("phase: suspend, edit, restart, resume")
		if out := s.mustCtl(t, d, "suspend"); !strings.Contains(out, "suspended: no action starts") {
			t.Errorf("suspend said:\n%s", out)
		}
		gen := d.Status().Generation
		s.writeManifest(t, m, spec{version: to, preStop: hook})
		daemonproc.WaitFor(t, 30*time.Second, "the daemon to load the edit", func() bool { return d.Status().Generation > gen })
		edited := time.Now()
		// Two rounds of probes: the first after the edit could plan from
		// the last probe; the second is a real look at every node.
		waitProbedSince(t, d, edited, time.Minute)
		st := waitProbedSince(t, d, time.Now(), time.Minute)
		if !st.Suspended {
			t.Error("status does not say suspended")
		}
		for _, n := range st.Nodes {
			if n.Converged || !strings.Contains(n.Reason, "suspended by the operator") {
				t.Errorf("%s: converged %v, reason %q: want pending and suspended", n.Name, n.Converged, n.Reason)
			}
		}
		for n, v := range s.versions() {
			if v != from {
				t.Errorf("%s runs %s while suspended, want %s", n, v, from)
			}
		}
		if !hasMetric(d.Metrics(), "drover_suspended 1") {
			t.Error("metrics lack drover_suspended 1")
		}
		if code, out := s.ctl(t, d, "", "status"); code != 0 || !strings.Contains(out, "SUSPENDED by the operator") {
			t.Errorf("drover status: exit %d\n%s", code, out)
		}

		d.Stop()
		d = s.startDaemon(t, m)
		restarted := time.Now()
		waitProbedSince(t, d, restarted, time.Minute)
		st = waitProbedSince(t, d, time.Now(), time.Minute)
		if !st.Suspended || !hasMetric(d.Metrics(), "drover_suspended 1") {
			t.Fatalf("not suspended after the restart (status %v)", st.Suspended)
		}
		for n, v := range s.versions() {
			if v != from {
				t.Errorf("%s runs %s after the restart while suspended, want %s", n, v, from)
			}
		}

		if out := s.mustCtl(t, d, "resume"); !strings.Contains(out, "resumed") {
			t.Errorf("resume said:\n%s", out)
		}
		s.waitConverged(t, d, to, rollout)
		if d.Status().Suspended || !hasMetric(d.Metrics(), "drover_suspended 0") {
			t.Error("still suspended after resume")
		}
	}

	// retry after a node-side fix
	{
		t.Log("phase: retry after a node-side fix")
		s.onEveryNode(t, "touch "+blockFile)
		gen := d.Status().Generation
		s.writeManifest(t, m, spec{version: from, preStop: hook})
		daemonproc.WaitFor(t, 2*time.Minute, "the rollout to halt", func() bool { return d.Status().Rollout.Halted })
		halt := d.Status().Rollout
		if !strings.Contains(halt.Reason, "preStop") {
			t.Errorf("halt reason %q does not name the preStop hook", halt.Reason)
		}
		// The hook's own words are in the status: the halt, or the failed
		// action's message or steps.
		said := strings.Contains(halt.Reason, "drain blocked by")
		for _, n := range d.Status().Nodes {
			if la := n.LastAction; la != nil {
				said = said || strings.Contains(la.Message, "drain blocked by")
				for _, st := range la.Steps {
					said = said || strings.Contains(st.Output, "drain blocked by")
				}
			}
		}
		if !said {
			t.Errorf("the status does not show the failing preStop's output (halt %q)", halt.Reason)
		}
		s.onEveryNode(t, "rm -f "+blockFile)
		// Fixed on the nodes, but a halt holds until someone says so.
		waitProbedSince(t, d, time.Now(), time.Minute)
		waitProbedSince(t, d, time.Now(), time.Minute)
		if st := d.Status(); !st.Rollout.Halted {
			t.Fatalf("the halt was lifted without a retry: %+v", st.Rollout)
		}
		for n, v := range s.versions() {
			if v != to {
				t.Errorf("%s runs %s while halted, want %s", n, v, to)
			}
		}
		halt = d.Status().Rollout // several nodes may have failed: the last one's reason holds
		out := s.mustCtl(t, d, "retry")
		if !strings.Contains(out, "halt lifted: "+halt.Reason) {
			t.Errorf("retry said:\n%s\nwant the halt %q", out, halt.Reason)
		}
		s.waitConverged(t, d, from, rollout)
		if st := d.Status(); st.Generation != gen+1 || st.Rollout.Halted {
			t.Errorf("after retry: generation %d (want %d, no edit), halted %v", st.Generation, gen+1, st.Rollout.Halted)
		}
		if code, out := s.ctl(t, d, d.Token(), "retry"); code != 1 || !strings.Contains(out, "nothing to retry") {
			t.Errorf("a second retry: exit %d\n%s", code, out)
		}
	}

	// reconcile a node now
	{
		t.Log("phase: reconcile a node now")
		gen := d.Status().Generation
		edited := time.Now()
		s.writeManifest(t, m, spec{version: from, preStop: hook, probeInterval: "10m"})
		daemonproc.WaitFor(t, 30*time.Second, "the daemon to load the edit", func() bool { return d.Status().Generation > gen })
		// An edit queues every node at once: the probes after it are the
		// last ones for 10 minutes.
		waitProbedSince(t, d, edited, time.Minute)
		s.waitConverged(t, d, from, time.Minute)
		time.Sleep(time.Second) // the last passes of the edit end
		before := map[string]time.Time{}
		for _, n := range d.Status().Nodes {
			before[n.Name] = n.LastProbeAttempt
		}

		node := s.c.Nodes[1]
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := s.c.Exec(ctx, node.Name, "systemctl stop drover-"+component+".service"); err != nil {
			t.Fatal(err)
		}
		stopped := time.Now()
		out := s.mustCtl(t, d, "reconcile", "--node", node.Name)
		if !strings.Contains(out, "1 node(s) queued for a probe now") || !strings.Contains(out, node.Name) {
			t.Errorf("reconcile said:\n%s", out)
		}
		daemonproc.WaitFor(t, time.Minute, "node_exporter running again on "+node.Name, func() bool {
			v, err := nodeVersion(node)
			return err == nil && v == from
		})
		t.Logf("drift on %s repaired %s after the stop, with a 10m probe interval", node.Name, since(stopped))
		// The action is recorded once its health gate passed.
		daemonproc.WaitFor(t, time.Minute, "a restart in "+node.Name+"'s history", func() bool {
			for _, n := range d.Status().Nodes {
				if n.Name == node.Name {
					return n.LastAction != nil && n.LastAction.Action == "restart" && n.LastAction.Time.After(stopped)
				}
			}
			return false
		})
		for _, n := range d.Status().Nodes {
			if n.Name != node.Name && !n.LastProbeAttempt.Equal(before[n.Name]) {
				t.Errorf("%s was probed too (%s, before %s)", n.Name, n.LastProbeAttempt, before[n.Name])
			}
		}
	}
}
