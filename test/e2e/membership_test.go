package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/drover-project/drover/reconciler/plan"
	"github.com/drover-project/drover/test/daemonproc"
	"github.com/drover-project/drover/test/harness"
)

// etcdWriter puts keys into etcd until stopped, with the etcd Go client
// (go.etcd.io/etcd/client/v3, in go.mod) connected to the masters, which
// stay members throughout; it keeps every write etcd acknowledged.
type etcdWriter struct {
	cli    *clientv3.Client
	stop   context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	acked  map[string]string
	failed []string
}

func (s *suite) startEtcdWriter(t *testing.T, prefix string) *etcdWriter {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: strings.Split(s.etcdEndpoints(), ","), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	w := &etcdWriter{cli: cli, stop: stop, done: make(chan struct{}), acked: map[string]string{}}
	go func() {
		defer close(w.done)
		for i := 0; ctx.Err() == nil; i++ {
			k, v := fmt.Sprintf("%s/%06d", prefix, i), fmt.Sprintf("v%d", i)
			pctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err := cli.Put(pctx, k, v)
			cancel()
			w.mu.Lock()
			if err != nil {
				w.failed = append(w.failed, fmt.Sprintf("%s: %v", k, err))
			} else {
				w.acked[k] = v
			}
			w.mu.Unlock()
			time.Sleep(20 * time.Millisecond)
		}
	}()
	return w
}

// finish stops the writer and checks that no write failed and that
// every acknowledged one reads back with its value.
func (w *etcdWriter) finish(t *testing.T, prefix string) {
	t.Helper()
	w.stop()
	<-w.done
	defer w.cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := w.cli.Get(ctx, prefix+"/", clientv3.WithPrefix())
	if err != nil {
		t.Fatalf("read back: %v", err)
	}
	got := map[string]string{}
	for _, kv := range resp.Kvs {
		got[string(kv.Key)] = string(kv.Value)
	}
	lost := 0
	for k, v := range w.acked {
		if got[k] != v {
			lost++
		}
	}
	t.Logf("%d writes acknowledged, %d failed, %d acknowledged and not read back", len(w.acked), len(w.failed), lost)
	for _, f := range w.failed {
		t.Logf("failed put: %s", f)
	}
	if len(w.acked) < 50 || len(w.failed) > 0 || lost > 0 {
		t.Errorf("writes: %d acknowledged, %d failed, %d lost; want none failed or lost, at least 50 acknowledged", len(w.acked), len(w.failed), lost)
	}
}

// etcdMembers are the names of the started members in etcd's own view
// (`etcdctl member list` on the first master) and how many members it
// lists in all.
func (s *suite) etcdMembers(t *testing.T) (started []string, all int) {
	t.Helper()
	n := s.masters[0]
	out := s.exec(t, n, installRoot+"/active/etcd/etcdctl --endpoints=http://"+n.Address+":2379 member list")
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Split(l, ", ")
		if len(f) < 3 {
			continue
		}
		all++
		if f[1] == "started" {
			started = append(started, f[2])
		}
	}
	slices.Sort(started)
	return started, all
}

func nodeNames(ns []harness.Node) []string {
	var out []string
	for _, n := range ns {
		out = append(out, n.Name)
	}
	slices.Sort(out)
	return out
}

func (s *suite) wantMembers(t *testing.T, when string, want []harness.Node) {
	t.Helper()
	started, all := s.etcdMembers(t)
	if names := nodeNames(want); !slices.Equal(started, names) || all != len(names) {
		t.Fatalf("%s: etcd's members: %d listed, started %v; want exactly %v", when, all, started, names)
	}
}

// etcdGrowShrink: the three-member etcd group of the masters is asked to
// grow to every node with a preJoin that fails (the rollout halts with the
// hook's output, nothing is installed, etcd still has three members), then
// grows to five (one join at a time, each a member add run on a master,
// the new member started with --initial-cluster-state existing and the
// members present at its join; the masters are not restarted), then shrinks back to three under a daemon,
// whose status shows the postLeave hook's output (member remove). A
// writer runs throughout: no write fails, every acknowledged write reads
// back at the end.
func (s *suite) etcdGrowShrink(t *testing.T, sp spec, e etcdSpec) {
	const prefix = "/drover-e2e-membership"
	w := s.startEtcdWriter(t, prefix)
	s.wantMembers(t, "before", s.masters)

	// A failing preJoin halts and leaves the group as it was.
	bad := e
	bad.Roles, bad.OnFailure = "[master, agent]", "halt"
	bad.PreJoin = `[/bin/sh, -c, "echo refusing {{ .Member.Name }} >&2; exit 3"]`
	r := s.run(t, s.writeEtcd(t, sp, bad), "apply", "--yes")
	out := r.Stdout + r.Stderr
	if r.Code == 0 || !strings.Contains(out, "hook preJoin failed") || !strings.Contains(out, "refusing "+s.agents[0].Name) || !strings.Contains(out, "halt") {
		t.Errorf("apply with a failing preJoin exited %d; want a halt naming the hook and its output", r.Code)
	}
	for _, n := range s.agents {
		if rc := s.receipt(t, n, "etcd"); rc != nil {
			t.Errorf("%s: etcd installed although its preJoin failed", n.Name)
		}
	}
	s.wantMembers(t, "after the failed preJoin", s.masters)

	// Grow 3 -> 5.
	grow := e
	grow.Roles = "[master, agent]"
	pids := map[string]string{}
	for _, n := range s.masters {
		_, _, pids[n.Name] = s.unitState(t, n, "etcd")
	}
	m := s.writeEtcd(t, sp, grow)
	if plan := s.run(t, m, "plan"); strings.Count(plan.Stdout, "[join") != len(s.agents) {
		t.Errorf("plan does not show %d joins:\n%s", len(s.agents), plan.Stdout)
	}
	start := time.Now()
	r = s.mustApply(t, m)
	t.Logf("3 -> 5 in %s", since(start))
	joined := map[string]string{} // node: event
	for _, a := range actions(r.Stdout) {
		if a.Component != "etcd" || a.Kind != "install" {
			continue
		}
		for n, ev := range joined {
			if ev == "start" && a.Event == "start" {
				t.Errorf("%s joined while %s was joining: want one member at a time", a.Node, n)
			}
		}
		joined[a.Node] = a.Event
	}
	if len(joined) != len(s.agents) {
		t.Errorf("installs on %v; want one on each agent", joined)
	}
	s.wantMembers(t, "after 3 -> 5", s.nodes())
	for _, n := range s.masters {
		if _, _, pid := s.unitState(t, n, "etcd"); pid != pids[n.Name] {
			t.Errorf("%s: etcd main pid %s, was %s: a join restarted a member", n.Name, pid, pids[n.Name])
		}
	}
	s.mustPlanEmpty(t, m)

	// Shrink 5 -> 3, by a daemon.
	m = s.writeEtcd(t, sp, e)
	start = time.Now()
	d := daemonproc.Start(t, daemonproc.Options{Binary: s.drover, Manifest: m, LogDir: s.work})
	var st plan.ClusterStatus
	daemonproc.WaitFor(t, 3*time.Minute, "the agents to leave etcd", func() bool {
		st = d.Status()
		for _, ns := range st.Nodes {
			if slices.Contains(nodeNames(s.agents), ns.Name) && !leftEtcd(ns) {
				return false
			}
		}
		return true
	})
	t.Logf("5 -> 3 in %s", since(start))
	d.Stop()
	s.wantMembers(t, "after 5 -> 3", s.masters)
	for _, ns := range st.Nodes {
		if !slices.Contains(nodeNames(s.agents), ns.Name) {
			continue
		}
		if out := hookOutput(ns, "postLeave"); !strings.Contains(out, "Member") || !strings.Contains(out, "removed") {
			t.Errorf("%s: the status shows no postLeave output of member remove: %q", ns.Name, out)
		}
	}
	// One leave at a time: by the records' times, no two overlap.
	var spans [][2]time.Time
	for _, ns := range st.Nodes {
		for _, a := range ns.History {
			if a.Component == "etcd" && a.Action == "remove" && a.Membership == "leave" {
				spans = append(spans, [2]time.Time{a.Time.Add(-a.Duration), a.Time})
			}
		}
	}
	if len(spans) != len(s.agents) {
		t.Errorf("%d leaves in the status, want %d", len(spans), len(s.agents))
	} else if spans[0][0].Before(spans[1][1]) && spans[1][0].Before(spans[0][1]) {
		t.Errorf("the leaves overlap: %v", spans)
	}
	s.mustPlanEmpty(t, m)
	w.finish(t, prefix)
}

// leftEtcd reports whether the node's status has etcd removed by a leave.
func leftEtcd(ns plan.NodeStatus) bool {
	for _, c := range ns.Components {
		if c.Name == "etcd" {
			return false
		}
	}
	return hookOutput(ns, "postLeave") != ""
}

// hookOutput is the output of the named hook's step in the node's last
// etcd remove, as the status has it.
func hookOutput(ns plan.NodeStatus, hook string) string {
	for i := len(ns.History) - 1; i >= 0; i-- {
		a := ns.History[i]
		if a.Component != "etcd" || a.Action != "remove" {
			continue
		}
		for _, s := range a.Steps {
			if s.Name == "hook "+hook {
				return s.Output
			}
		}
	}
	return ""
}
