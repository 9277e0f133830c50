package reconciler

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/drover-project/drover/manifests"
	"github.com/drover-project/drover/probes"
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
	f.mustDo(t, ActionInstall, want)
	if got := f.hooksRun(t); !slices.Equal(got, []string{"postStart"}) {
		t.Fatalf("install ran hooks %q, want postStart only", got)
	}
	f.n.Runner.Reset()
	f.mustDo(t, ActionRestart, want)
	if got := f.hooksRun(t); !slices.Equal(got, []string{"postStart", "preStop", "postStart"}) {
		t.Fatalf("hooks %q", got)
	}
	if got := f.n.Runner.Steps(); !slices.Equal(got, []string{"hook preStop", "restart unit", "hook postStart"}) {
		t.Errorf("steps %q", got)
	}
}

// TestActionFailingPreStopHalts: a failing preStop fails the action as
// a failed health gate does (the rollout rolls back or halts), names the
// hook and carries its output, and the service is not restarted.
func TestActionFailingPreStopHalts(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	want := f.component(t, "1.0.0", false)
	f.mustDo(t, ActionInstall, want)
	want.Hooks = map[string]*manifests.Hook{"preStop": {Command: []string{"sh", "-c", "echo leadership not moved: no other member >&2; exit 3"}, Timeout: "10s"}}
	f.n.ResetCalls(t)
	err := f.do(t, ActionRestart, want)
	if !errors.Is(err, ErrUnhealthy) || !strings.Contains(err.Error(), "hook preStop failed") || !strings.Contains(err.Error(), "leadership not moved: no other member") {
		t.Fatalf("error %v", err)
	}
	for _, c := range f.n.SystemctlCalls(t) {
		if strings.HasPrefix(c, "restart") {
			t.Fatalf("restarted after a failed preStop: %q", f.n.SystemctlCalls(t))
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
	err := f.do(t, ActionInstall, want)
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
	f.mustDo(t, ActionInstall, want)
	if r := f.receipt(t); r.Hooks["preRemove"] == nil || r.Hooks["preStop"] == nil {
		t.Fatalf("receipt hooks %v", r.Hooks)
	}
	f.mustDo(t, ActionRemove, nil)
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
	f.mustDo(t, ActionInstall, want)
	f.e.DryRun = true
	f.mustDo(t, ActionRestart, want)
	if got := f.hooksRun(t); !slices.Equal(got, []string{"postStart"}) {
		t.Fatalf("hooks %q after a dry run", got)
	}
	if n := len(f.logs.FilterMessage("would: hook preStop").All()); n != 1 {
		t.Errorf("dry run logged %d would: hook preStop", n)
	}
}

// reconfigure runs a reconfigure with the effect the plan chose.
func (f *fixture) reconfigure(t *testing.T, want *DesiredComponent, effect string) {
	t.Helper()
	a := Action{Node: "local", Component: "app", Kind: ActionReconfigure, To: want.Version, Effect: effect}
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
			f.mustDo(t, ActionInstall, v)
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
	sha := WriteTarGz(t, p, TarEntry{Name: "app-1.0.0-linux/bin/app", Mode: 0o755, Content: "#!/bin/sh\necho app\n"})
	want := f.withFiles(&DesiredComponent{Name: "app", Version: "1.0.0", ArtifactPath: p, ArtifactSHA256: sha, ArtifactStrip: 1}, nil)
	f.mustDo(t, ActionInstall, want)
	vdir := manifests.VersionDir(f.n.Root, "app", "1.0.0")
	if _, err := os.Stat(filepath.Join(vdir, "bin/app")); err != nil {
		t.Fatalf("bin/app not at the top of the version dir: %v", err)
	}
	if r := f.receipt(t); r.ArtifactStrip != 1 {
		t.Errorf("receipt strip %d", r.ArtifactStrip)
	}
	want.ArtifactStrip = 0
	f.mustDo(t, ActionUpgrade, want)
	if _, err := os.Stat(filepath.Join(vdir, "app-1.0.0-linux/bin/app")); err != nil {
		t.Fatalf("not unpacked again without strip: %v", err)
	}
}

// TestChangeEffect: the strongest onChange of the files that differ on
// disk decides; a unit change, a dropped file, or no visible difference
// restarts; reload without service.reload restarts.
func TestChangeEffect(t *testing.T) {
	file := func(p, content, policy string) manifests.RenderedFile {
		return manifests.RenderedFile{Path: p, Mode: 0o644, Content: []byte(content), OnChange: policy}
	}
	want := &DesiredComponent{Unit: []byte("u"), UnitHash: "uh", Reload: true, Files: []manifests.RenderedFile{
		file("/a", "a", "none"), file("/b", "b", "reload"), file("/c", "c", ""),
	}}
	onDisk := func(changed ...string) *probes.Component {
		oc := &probes.Component{Receipt: &probes.Receipt{UnitHash: "uh", Files: []string{"/a", "/b", "/c"}}}
		oc.Unit.Exists, oc.Unit.Hash = true, "uh"
		for _, f := range want.Files {
			d := manifests.FileDigest{Path: f.Path, Mode: f.Mode, SHA256: f.Digest()}
			if slices.Contains(changed, f.Path) {
				d.SHA256 = "other"
			}
			oc.Files = append(oc.Files, d)
		}
		return oc
	}
	cases := []struct {
		name string
		oc   *probes.Component
		want string
	}{
		{"none file", onDisk("/a"), "none"},
		{"reload file", onDisk("/b"), "reload"},
		{"reload and none", onDisk("/a", "/b"), "reload"},
		{"default file", onDisk("/a", "/c"), "restart"},
		{"receipt only", onDisk(), "restart"},
		{"unit changed", func() *probes.Component { oc := onDisk("/a"); oc.Receipt.UnitHash = "old"; return oc }(), "restart"},
		{"file dropped", func() *probes.Component {
			oc := onDisk("/a")
			oc.Receipt.Files = append(oc.Receipt.Files, "/gone")
			return oc
		}(), "restart"},
	}
	for _, tc := range cases {
		if got := changeEffect(want, tc.oc); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
	noReload := *want
	noReload.Reload = false
	if got := changeEffect(&noReload, onDisk("/b")); got != "restart" {
		t.Errorf("reload without ExecReload: %s", got)
	}
}

// TestUnitExecListAndReload: a list exec is rendered per argument and
// quoted for systemd, so a value with a space, a quote or a $ stays one
// literal argument; reload becomes ExecReload=.
func TestUnitExecListAndReload(t *testing.T) {
	got, err := renderFixtureUnit(t, &manifests.Service{
		ExecArgs:   []string{"{{ .Dir }}/bin/app", "--name={{ .Node.Name }}", `a "b" $HOME 100%`},
		ReloadArgs: []string{"/bin/kill", "-HUP", "$MAINPID"},
	}, "m1")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		`ExecStart="/opt/drover/active/app/bin/app" "--name=m1" "a \"b\" $$HOME 100%%"`,
		`ExecReload="/bin/kill" "-HUP" "$$MAINPID"`,
	} {
		if !strings.Contains(got, line+"\n") {
			t.Errorf("unit lacks %s:\n%s", line, got)
		}
	}
	if _, err := renderFixtureUnit(t, &manifests.Service{ExecArgs: []string{"/bin/app", "a\nb"}}, "m1"); !errors.Is(err, ErrUnitNewline) {
		t.Errorf("newline in an argument: %v", err)
	}
}

const templatedChecks = `apiVersion: drover/v1
kind: Cluster
metadata: {name: t}
spec:
  nodes:
    - {name: m1, address: 127.0.2.1, roles: [etcd]}
    - {name: m2, address: 127.0.2.2, roles: [etcd]}
  components:
    - name: etcd
      version: "3.4"
      roles: [etcd]
      quorum: true
      artifact: {path: etcd.tar.gz, sha256: "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789", stripComponents: 1}
      files: [{path: conf/x, template: "x", onChange: none}]
      service:
        exec: ["{{ .Dir }}/bin/etcd", "--name={{ .Node.Name }}"]
        reload: "/bin/kill -HUP $MAINPID"
      health: {http: {host: "{{ .Node.Address }}", port: 2379, path: /health, bodyJSON: {health: "true"}}}
      leader: {exec: {command: ["{{ .Dir }}/bin/leads", "{{ .Node.Address }}:2379"]}}
      hooks:
        preStop: {command: ["{{ .Dir }}/bin/etcdctl", "--endpoints={{ .Node.Address }}:2379", move-leader]}
`

// TestCompileRendersChecksAndHooksPerNode: every node gets its own
// rendered check, leader check and hooks; the manifest keeps its templates.
func TestCompileRendersChecksAndHooksPerNode(t *testing.T) {
	d, err := compileYAML(t, "/srv/c/drover.yaml", templatedChecks)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []struct{ name, addr string }{{"m1", "127.0.2.1"}, {"m2", "127.0.2.2"}} {
		c := d.Node(n.name).Component("etcd")
		if c.Health.HTTP.Host != n.addr || c.Health.HTTP.BodyJSON["health"] != "true" {
			t.Errorf("%s: health %+v", n.name, c.Health.HTTP)
		}
		if got := c.Leader.Exec.Command; !slices.Equal(got, []string{"/opt/drover/active/etcd/bin/leads", n.addr + ":2379"}) {
			t.Errorf("%s: leader %q", n.name, got)
		}
		if got := c.Hooks["preStop"].Command; !slices.Equal(got, []string{"/opt/drover/active/etcd/bin/etcdctl", "--endpoints=" + n.addr + ":2379", "move-leader"}) {
			t.Errorf("%s: preStop %q", n.name, got)
		}
		if c.ArtifactStrip != 1 || !c.Reload || c.Files[0].OnChange != "none" {
			t.Errorf("%s: strip %d reload %t onChange %q", n.name, c.ArtifactStrip, c.Reload, c.Files[0].OnChange)
		}
		if !strings.Contains(string(c.Unit), `ExecStart="/opt/drover/active/etcd/bin/etcd" "--name=`+n.name+`"`) {
			t.Errorf("%s: unit\n%s", n.name, c.Unit)
		}
	}
	_, err = compileYAML(t, "/srv/c/drover.yaml", strings.Replace(templatedChecks, `host: "{{ .Node.Address }}"`, `host: "{{ .Node.Labels.zone }}"`, 1))
	if err == nil || !strings.Contains(err.Error(), "component etcd health.http.host: node m1:") {
		t.Fatalf("error %v", err)
	}
}

// TestDiffHooksChanged: a changed preStop or preRemove rewrites only the
// receipt (a remove reads them there), touching no service.
func TestDiffHooksChanged(t *testing.T) {
	want := &DesiredComponent{Name: "app", Version: "1", Unit: []byte("u"), UnitHash: "uh", ConfigHash: manifests.ConfigHash(nil),
		Hooks: map[string]*manifests.Hook{"preRemove": {Command: []string{"/bin/rm", "-rf", "/var/lib/app"}, Timeout: "60s"}}}
	oc := &probes.Component{Active: "1", Packages: map[string]bool{"1": true},
		Receipt: &probes.Receipt{Version: "1", UnitHash: "uh", ConfigHash: want.ConfigHash}}
	oc.Unit.Exists, oc.Unit.Hash, oc.Unit.Enabled, oc.Unit.ActiveState = true, "uh", true, "active"
	a, ok := diffComponent("m1", want, oc)
	if !ok || a.Kind != ActionReconfigure || a.Effect != "none" || a.Disruptive || a.Reason != "hooks changed in manifest" {
		t.Fatalf("action %+v, %t", a, ok)
	}
	oc.Receipt.Hooks = keptHooks(want)
	if a, ok := diffComponent("m1", want, oc); ok {
		t.Fatalf("hooks in the receipt: still %+v", a)
	}
}
