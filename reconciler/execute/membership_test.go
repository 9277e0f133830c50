package execute

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/drover-project/drover/manifests"
	"github.com/drover-project/drover/reconciler/plan"
)

// joinDesired is a manifest that places app on m1 and the local node,
// which joins; preJoin, rendered for m1, runs cmd.
func (f *fixture) joinDesired(t *testing.T, cmd string) *plan.Desired {
	t.Helper()
	text := fmt.Sprintf(`
apiVersion: drover/v1
kind: Cluster
metadata: {name: t}
spec:
  installRoot: %s
  nodes:
    - {name: local, address: 127.0.0.1, roles: [db]}
    - {name: m1, address: 127.0.0.1, roles: [db]}
  components:
    - name: app
      version: 1.0.0
      roles: [db]
      quorum: true
      files: [{path: conf/initial, template: "{{ .Component.Joining }} {{ range .Component.Members }}{{ .Name }} {{ end }}"}]
      hooks:
        preJoin: {command: [sh, -c, %q, "{{ .Node.Name }}", "{{ .Member.Name }}", %q], timeout: 10s}
`, f.n.Root, cmd, filepath.Join(f.n.Dir, "hooks.log"))
	c, err := manifests.Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	c.SetDefaults()
	d, err := plan.Compile(&manifests.Loaded{Cluster: c, Path: "/srv/c.yaml", Dir: "/srv", Hash: "gen-2"})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func (f *fixture) join(t *testing.T, d *plan.Desired) ([]plan.StepRecord, error) {
	t.Helper()
	f.e.Desired = d
	a := plan.Action{Node: "local", Component: "app", Kind: plan.ActionInstall, To: "1.0.0", Membership: plan.MemberJoin, Via: "m1", Members: "m1,local"}
	return f.e.DoSteps(context.Background(), f.n.DesiredNode(), a, d.Node("local").Component("app"), nil)
}

// TestActionJoin: a join runs preJoin on the member that stays first,
// then installs the component as rendered for the join; a failing
// preJoin fails the action with its output and leaves the node as it
// was.
func TestActionJoin(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	_, err := f.join(t, f.joinDesired(t, `echo "cluster refuses $1" >&2; exit 3`))
	if err == nil || !strings.Contains(err.Error(), "hook preJoin failed") || !strings.Contains(err.Error(), "cluster refuses local") {
		t.Fatalf("error %v", err)
	}
	if oc := f.n.Observe(t, "app"); oc != nil && (oc.Receipt != nil || oc.Active != "") {
		t.Fatalf("a failed preJoin left %+v on the node", oc)
	}
	steps, err := f.join(t, f.joinDesired(t, `echo "member add $1 on $0" | tee -a "$2"`))
	if err != nil {
		t.Fatal(err)
	}
	if steps[0].Name != "hook preJoin" || steps[0].Node != "m1" || steps[0].Output != "member add local on m1" {
		t.Errorf("first step %+v: want preJoin on m1 with its output", steps[0])
	}
	b, err := os.ReadFile(filepath.Join(manifests.ActiveDir(f.n.Root, "app"), "conf/initial"))
	if err != nil || string(b) != "true m1 local " {
		t.Errorf("conf/initial %q (%v): want it rendered for the join", b, err)
	}
}

// leaveDesired is a manifest that keeps app on m1 only: the local node
// leaves its group; postLeave, rendered for m1, runs cmd.
func (f *fixture) leaveDesired(t *testing.T, cmd string) *plan.Desired {
	t.Helper()
	text := fmt.Sprintf(`
apiVersion: drover/v1
kind: Cluster
metadata: {name: t}
spec:
  installRoot: %s
  nodes:
    - {name: local, address: 127.0.0.1}
    - {name: m1, address: 127.0.0.1, roles: [db]}
  components:
    - name: app
      version: 1.0.0
      roles: [db]
      quorum: true
      files: [{path: conf/x, template: x}]
      hooks:
        postLeave: {command: [sh, -c, %q, "{{ .Node.Name }}", "{{ .Member.Name }}", %q], timeout: 10s}
`, f.n.Root, cmd, filepath.Join(f.n.Dir, "hooks.log"))
	c, err := manifests.Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	c.SetDefaults()
	d, err := plan.Compile(&manifests.Loaded{Cluster: c, Path: "/srv/c.yaml", Dir: "/srv", Hash: "gen-2"})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func (f *fixture) leave(t *testing.T, d *plan.Desired) ([]plan.StepRecord, error) {
	t.Helper()
	f.e.Desired = d
	a := plan.Action{Node: "local", Component: "app", Kind: plan.ActionRemove, From: "1.0.0", Membership: plan.MemberLeave, Via: "m1", Members: "m1"}
	return f.e.DoSteps(context.Background(), f.n.DesiredNode(), a, nil, f.n.Observe(t, "app"))
}

// TestActionLeave: a leave stops the member first, then runs postLeave
// on the member that stays (recorded as its step there, with its
// output), then removes the component.
func TestActionLeave(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.mustDo(t, plan.ActionInstall, f.component(t, "1.0.0", false))
	f.n.ResetCalls(t)
	steps, err := f.leave(t, f.leaveDesired(t, `echo "postLeave on $0: $1 removed" | tee -a "$2"`))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range steps {
		names = append(names, s.Name)
	}
	stop, hook := slices.Index(names, "stop unit"), slices.Index(names, "hook postLeave")
	if stop < 0 || hook < stop || !slices.Contains(names[hook:], "delete receipt") {
		t.Fatalf("steps %q: want the stop, then postLeave, then the remove", names)
	}
	if s := steps[hook]; s.Node != "m1" || s.Output != "postLeave on m1: local removed" {
		t.Errorf("postLeave step %+v: want it on m1 with its output", s)
	}
	if got := f.hooksRun(t); strings.Join(got, " ") != "postLeave on m1: local removed" {
		t.Errorf("hooks.log %q", got)
	}
}

// TestActionFailingPostLeave: a failing postLeave fails the action with
// its output (ErrUnhealthy: the rollout halts), starts the member again
// (the service still lists it) and removes nothing.
func TestActionFailingPostLeave(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.mustDo(t, plan.ActionInstall, f.component(t, "1.0.0", false))
	f.n.ResetCalls(t)
	_, err := f.leave(t, f.leaveDesired(t, `echo "member remove refused for $1" >&2; exit 3`))
	if err == nil || !strings.Contains(err.Error(), "hook postLeave failed") || !strings.Contains(err.Error(), "member remove refused for local") {
		t.Fatalf("error %v", err)
	}
	calls := f.n.SystemctlCalls(t)
	stop := slices.IndexFunc(calls, func(c string) bool { return strings.HasPrefix(c, "stop") })
	restart := slices.IndexFunc(calls, func(c string) bool { return strings.HasPrefix(c, "restart") })
	if stop < 0 || restart < stop {
		t.Errorf("systemctl %q: want a stop, then the start again", calls)
	}
	if oc := f.n.Observe(t, "app"); oc == nil || oc.Receipt == nil {
		t.Error("the receipt is gone after a failed postLeave")
	}
}
