package plan

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/drover-project/drover/manifests"
	"github.com/drover-project/drover/probes"
)

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
	if err == nil || !strings.Contains(err.Error(), "spec.components[0].health.http.host: node m1:") {
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
	oc.Receipt.Hooks = KeptHooks(want)
	if a, ok := diffComponent("m1", want, oc); ok {
		t.Fatalf("hooks in the receipt: still %+v", a)
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
