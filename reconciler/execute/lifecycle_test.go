package execute

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/drover-project/drover/manifests"
	"github.com/drover-project/drover/reconciler/internal/localnode"
	"github.com/drover-project/drover/reconciler/plan"
)

// hookCmd is a hook that appends its name to the node's hooks.log.
func (f *fixture) hookCmd(name string) *manifests.Hook {
	return &manifests.Hook{Command: []string{"sh", "-c", `echo "$0" >> "$1"`, name, filepath.Join(f.n.Dir, "hooks.log")}, Timeout: "10s"}
}

func (f *fixture) hooksRun(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(f.n.Dir, "hooks.log"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(b))
}

// TestActionHooksAroundRestart: postStart follows every start; preStop
// runs only when the service runs (not on a fresh install), before the
// restart, each its own step of the action.
func TestActionHooksAroundRestart(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	want := f.component(t, "1.0.0", false)
	want.Hooks = map[string]*manifests.Hook{"preStop": f.hookCmd("preStop"), "postStart": f.hookCmd("postStart")}
	f.mustDo(t, plan.ActionInstall, want)
	if got := f.hooksRun(t); !slices.Equal(got, []string{"postStart"}) {
		t.Fatalf("install ran hooks %q, want postStart only", got)
	}
	f.n.Runner.Reset()
	f.mustDo(t, plan.ActionRestart, want)
	if got := f.hooksRun(t); !slices.Equal(got, []string{"postStart", "preStop", "postStart"}) {
		t.Fatalf("hooks %q", got)
	}
	if got := f.n.Runner.Steps(); !slices.Equal(got, []string{"hook preStop", "restart unit", "hook postStart"}) {
		t.Errorf("steps %q", got)
	}
}

// TestActionFailingPreStopHalts: a failing preStop fails the action as a
// failed step (the rollout halts; nothing changed to roll back), names
// the hook and carries its output, and the service is not restarted.
func TestActionFailingPreStopHalts(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	want := f.component(t, "1.0.0", false)
	f.mustDo(t, plan.ActionInstall, want)
	want.Hooks = map[string]*manifests.Hook{"preStop": {Command: []string{"sh", "-c", "echo leadership not moved: no other member >&2; exit 3"}, Timeout: "10s"}}
	f.n.ResetCalls(t)
	err := f.do(t, plan.ActionRestart, want)
	if err == nil || errors.Is(err, ErrUnhealthy) || !strings.Contains(err.Error(), "hook preStop failed") || !strings.Contains(err.Error(), "leadership not moved: no other member") {
		t.Fatalf("error %v", err)
	}
	for _, c := range f.n.SystemctlCalls(t) {
		if strings.HasPrefix(c, "restart") {
			t.Fatalf("restarted after a failed preStop: %q", f.n.SystemctlCalls(t))
		}
	}
}

// TestActionFailingPreStopChangesNothing: preStop (drain, move the
// leadership away) runs before anything the running service sees
// changes. When it fails, the running version's active link, files and
// unit are as they were (the new version is only unpacked beside it), so
// a crash restart of the service cannot start the new version outside the
// rollout; and the failure is a failed step, not a failed health gate:
// there is nothing to roll back, and a rollback would only run the
// failing hook again.
func TestActionFailingPreStopChangesNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	v1 := f.component(t, "1.0.0", false)
	f.mustDo(t, plan.ActionInstall, v1)
	haveBefore := f.n.Observe(t, "app")
	before := content(snapshot(t, f.n))
	v2 := f.component(t, "2.0.0", false)
	v2.Hooks = map[string]*manifests.Hook{"preStop": {Command: []string{"sh", "-c", "echo drain refused >&2; exit 3"}, Timeout: "10s"}}
	f.n.ResetCalls(t)
	up := plan.Action{Node: "local", Component: "app", Kind: plan.ActionUpgrade, From: "1.0.0", To: "2.0.0"}
	err := f.e.Do(context.Background(), f.n.DesiredNode(), up, v2, haveBefore)
	if err == nil || errors.Is(err, ErrUnhealthy) || !strings.Contains(err.Error(), "hook preStop failed") || !strings.Contains(err.Error(), "drain refused") {
		t.Fatalf("error %v, want the failed hook with its output, not ErrUnhealthy", err)
	}
	if oc := f.n.Observe(t, "app"); oc.Active != "1.0.0" || oc.Receipt == nil || oc.Receipt.Version != "1.0.0" {
		t.Errorf("after a failed preStop: active %q, receipt %+v; want 1.0.0 untouched", oc.Active, oc.Receipt)
	}
	for _, d := range diffSnapshots(before, content(snapshot(t, f.n))) {
		if !strings.Contains(d, "/2.0.0") && !strings.Contains(d, "cache") {
			t.Errorf("a failed preStop changed %s (only the new version's own dir and the cache may)", d)
		}
	}
	for _, c := range f.n.SystemctlCalls(t) {
		if strings.HasPrefix(c, "restart") || strings.HasPrefix(c, "daemon-reload") {
			t.Errorf("systemctl %q after a failed preStop", c)
		}
	}
}

// TestActionHookTimeout: a hook that outlives its timeout is killed and
// says so.
func TestActionHookTimeout(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	want := f.component(t, "1.0.0", false)
	want.Hooks = map[string]*manifests.Hook{"postStart": {Command: []string{"sleep", "30"}, Timeout: "1s"}}
	err := f.do(t, plan.ActionInstall, want)
	if err == nil || !strings.Contains(err.Error(), "hook postStart failed") || !strings.Contains(err.Error(), "timed out after 1s") {
		t.Fatalf("error %v", err)
	}
}

// TestActionPreRemoveFromReceipt: a remove has no manifest entry, so the
// preStop and preRemove hooks come from the receipt the install wrote.
func TestActionPreRemoveFromReceipt(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	want := f.component(t, "1.0.0", false)
	want.Hooks = map[string]*manifests.Hook{"preStop": f.hookCmd("preStop"), "preRemove": f.hookCmd("preRemove")}
	f.mustDo(t, plan.ActionInstall, want)
	if r := f.receipt(t); r.Hooks["preRemove"] == nil || r.Hooks["preStop"] == nil {
		t.Fatalf("receipt hooks %v", r.Hooks)
	}
	f.mustDo(t, plan.ActionRemove, nil)
	if got := f.hooksRun(t); !slices.Equal(got, []string{"preRemove", "preStop"}) {
		t.Fatalf("hooks %q", got)
	}
}

// TestActionDryRunRunsNoHook: hooks go through the gate like every step.
func TestActionDryRunRunsNoHook(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	want := f.component(t, "1.0.0", false)
	want.Hooks = map[string]*manifests.Hook{"preStop": f.hookCmd("preStop"), "postStart": f.hookCmd("postStart")}
	f.mustDo(t, plan.ActionInstall, want)
	f.e.DryRun = true
	f.mustDo(t, plan.ActionRestart, want)
	if got := f.hooksRun(t); !slices.Equal(got, []string{"postStart"}) {
		t.Fatalf("hooks %q after a dry run", got)
	}
	if n := len(f.logs.FilterMessage("would: hook preStop").All()); n != 1 {
		t.Errorf("dry run logged %d would: hook preStop", n)
	}
}

// reconfigure runs a reconfigure with the effect the plan chose.
func (f *fixture) reconfigure(t *testing.T, want *plan.DesiredComponent, effect string) {
	t.Helper()
	a := plan.Action{Node: "local", Component: "app", Kind: plan.ActionReconfigure, To: want.Version, Effect: effect}
	if err := f.e.Do(context.Background(), f.n.DesiredNode(), a, want, f.n.Observe(t, "app")); err != nil {
		t.Fatal(err)
	}
}

// TestActionReconfigureEffects: reload reloads and none leaves the
// service alone; both still write the file.
func TestActionReconfigureEffects(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ effect, call string }{{"reload", "reload drover-app.service"}, {"none", ""}, {"restart", "restart drover-app.service"}} {
		t.Run(tc.effect, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			v := f.component(t, "1.0.0", false)
			f.mustDo(t, plan.ActionInstall, v)
			f.n.ResetCalls(t)
			conf := manifests.RenderedFile{Path: f.n.Outside + "/app.env", Mode: 0o600, Content: []byte("SECRET=new\n"), OnChange: tc.effect}
			v = f.withFiles(v, []manifests.RenderedFile{v.Files[0], conf})
			f.reconfigure(t, v, tc.effect)
			if got := readFile(t, conf.Path); got != "SECRET=new\n" {
				t.Errorf("file %q", got)
			}
			var service []string
			for _, c := range f.n.SystemctlCalls(t) {
				if strings.HasPrefix(c, "restart") || strings.HasPrefix(c, "reload") || strings.HasPrefix(c, "stop") {
					service = append(service, c)
				}
			}
			if want := slices.DeleteFunc([]string{tc.call}, func(s string) bool { return s == "" }); !slices.Equal(service, want) {
				t.Errorf("service calls %q, want %q", service, want)
			}
		})
	}
}

// TestActionStripComponents: a tarball with a top folder unpacks
// without it; unpacked another way, the same artifact is unpacked again.
func TestActionStripComponents(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	p := filepath.Join(f.arts, "app-top.tar.gz")
	sha := localnode.WriteTarGz(t, p, localnode.TarEntry{Name: "app-1.0.0-linux/bin/app", Mode: 0o755, Content: "#!/bin/sh\necho app\n"})
	want := f.withFiles(&plan.DesiredComponent{Name: "app", Version: "1.0.0", ArtifactPath: p, ArtifactSHA256: sha, ArtifactStrip: 1}, nil)
	f.mustDo(t, plan.ActionInstall, want)
	vdir := manifests.VersionDir(f.n.Root, "app", "1.0.0")
	if _, err := os.Stat(filepath.Join(vdir, "bin/app")); err != nil {
		t.Fatalf("bin/app not at the top of the version dir: %v", err)
	}
	if r := f.receipt(t); r.ArtifactStrip != 1 {
		t.Errorf("receipt strip %d", r.ArtifactStrip)
	}
	want.ArtifactStrip = 0
	f.mustDo(t, plan.ActionUpgrade, want)
	if _, err := os.Stat(filepath.Join(vdir, "app-1.0.0-linux/bin/app")); err != nil {
		t.Fatalf("not unpacked again without strip: %v", err)
	}
}
